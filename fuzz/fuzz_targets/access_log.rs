//! `log_format` compilation and access-line parsing on arbitrary bytes. The input is
//! `FORMAT \0 LINES`; without a NUL the lines are parsed with `combined`. The first byte of the
//! format picks the escaping when it is `\x01` (json) or `\x02` (none).
#![no_main]

use libfuzzer_sys::fuzz_target;
use medic_parse::access_log::{origin, Escape, Field, LogFormat};

const FIELDS: [Field; Field::COUNT] = Field::ALL;

fuzz_target!(|data: &[u8]| {
    let (format, lines) = match memchr_nul(data) {
        Some(p) => (&data[..p], &data[p + 1..]),
        None => (&b"combined"[..], data),
    };
    let (escape, format) = match format.first() {
        Some(1) => (Escape::Json, &format[1..]),
        Some(2) => (Escape::None, &format[1..]),
        _ => (Escape::Default, format),
    };
    let format = String::from_utf8_lossy(format);
    let Ok(f) = LogFormat::compile_with(&format, escape) else {
        return;
    };
    let _ = (f.source(), &f.warnings);
    for line in lines.split(|&c| c == b'\n') {
        let full = f.parse(line);
        if let Ok(r) = &full {
            let _ = (r.status(), r.time());
            let _ = origin(
                r.get(Field::UpstreamStatus),
                r.get(Field::UpstreamHeaderTime),
            );
            for v in FIELDS.iter().filter_map(|&x| r.get(x)) {
                let _ = medic_parse::upstream::last(v);
            }
        }
        // A partial parse is a prefix of the full one: where the full parse succeeds, the
        // partial one must too, with the same values.
        for k in 0..FIELDS.len() {
            let want = &FIELDS[k..=k];
            let part = f.parse_upto(line, want);
            if let (Ok(r), Ok(p)) = (&full, &part) {
                assert_eq!(r.get(want[0]), p.get(want[0]), "{:?}", want[0]);
            } else if full.is_ok() {
                panic!("parse() Ok but parse_upto({:?}) {:?}", want[0], part);
            }
        }
        let _ = f.parse_upto(line, &FIELDS);
        let _ = f.parse_upto(line, &[]);
        // A line read whole is read the same by `parse`.
        if let Ok(x) = f.parse_exact(line) {
            let r = full.as_ref().expect("parse_exact() Ok but parse() not");
            for &k in &FIELDS {
                assert_eq!(x.get(k), r.get(k), "{k:?}");
            }
        }
    }
    let candidates = [f];
    let _ = LogFormat::detect(lines, &candidates);
});

fn memchr_nul(b: &[u8]) -> Option<usize> {
    b.iter().position(|&c| c == 0)
}
