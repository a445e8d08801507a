//! The PHP-FPM ini parser and log-line parser on arbitrary text: nothing panics, and every pool
//! has a name.
#![no_main]

use libfuzzer_sys::fuzz_target;
use medic_parse::fpm::{iso_time, parse_ini, parse_log_line};

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let ini = parse_ini(&text);
    for p in ini.pools() {
        assert!(!p.name.is_empty());
        let _ = (p.listen(), p.max_children(), p.listen_backlog(), p.user());
    }
    let _ = ini.global().count();
    for line in text.lines() {
        if let Some(e) = parse_log_line(line) {
            let _ = iso_time(e.time);
        }
    }
});
