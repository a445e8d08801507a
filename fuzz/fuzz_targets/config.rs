//! The config lexer, parser, crossplane JSON printer and `nginx -T` splitter on arbitrary
//! bytes: nothing panics, nothing recurses without bound, and the JSON is always whole.
#![no_main]

use libfuzzer_sys::fuzz_target;
use medic_parse::config::{parse_bytes, parse_nginx_t, to_json, JsonStyle, Options};

fuzz_target!(|data: &[u8]| {
    for opts in [Options::default(), Options { comments: true, ..Options::syntax_only() }] {
        let c = parse_bytes("/f/nginx.conf", data, &opts);
        let j = to_json(&c, JsonStyle::default());
        assert!(j.ends_with("}\n"));
    }
    if let Some(c) = parse_nginx_t(data, &Options::nginx()) {
        let _ = to_json(&c, JsonStyle { single_file: false, indent: Some(4) });
    }
});
