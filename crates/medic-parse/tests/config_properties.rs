//! Property tests of the config parser: any bytes, and any mix of config-ish tokens, go through
//! the lexer, parser, JSON printer and `nginx -T` splitter without panicking, and the output is
//! always a whole JSON document.

use proptest::collection::vec;
use proptest::prelude::*;
use proptest::sample::select;

use medic_parse::config::{
    lexer, parse_bytes, parse_nginx_t, split_nginx_t, to_json, JsonStyle, Options,
};

fn all_modes(bytes: &[u8]) {
    for opts in [
        Options::default(),
        Options::syntax_only(),
        Options {
            comments: true,
            ..Options::nginx()
        },
    ] {
        let c = parse_bytes("/p/nginx.conf", bytes, &opts);
        let j = to_json(&c, JsonStyle::default());
        assert!(j.starts_with("{\"status\":") && j.ends_with("}\n"));
        // Every error has a position in a file the config knows.
        for e in c.errors() {
            assert!(c.files.iter().any(|f| f.path == e.file));
        }
    }
    let _ = lexer::lex(&lexer::decode(bytes));
    let _ = split_nginx_t(bytes);
    let _ = parse_nginx_t(bytes, &Options::nginx());
}

const PIECES: &[&str] = &[
    "http",
    "server",
    "location",
    "if",
    "(",
    ")",
    "map",
    "include",
    "events",
    "upstream",
    "{",
    "}",
    ";",
    " ",
    "\n",
    "\r\n",
    "\t",
    "#",
    "# c\n",
    "\"",
    "'",
    "\\",
    "\\\"",
    "$",
    "${",
    "${a}",
    "~",
    "~*^a$",
    "content_by_lua_block",
    "set_by_lua_block",
    "server_rewrite_by_lua_block",
    "[[",
    "]]",
    "--[==[",
    "]==]",
    "--",
    "listen",
    "80",
    "proxy_pass",
    "on",
    "\u{a0}",
    "\u{feff}",
    "\u{fffd}",
    "é",
    "\x00",
    "*.conf",
    "/etc/nginx/x.conf",
    "gzip",
    "user",
    "types",
];

proptest! {
    #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]

    #[test]
    fn random_bytes_never_panic(bytes in vec(any::<u8>(), 0..600)) {
        all_modes(&bytes);
    }

    #[test]
    fn config_like_tokens_never_panic(pieces in vec(select(PIECES), 0..120)) {
        let text: String = pieces.concat();
        all_modes(text.as_bytes());
        let dump = format!("# configuration file /p/nginx.conf:\n{text}\n\n# configuration file /p/x.conf:\n{text}\n");
        all_modes(dump.as_bytes());
    }
}

#[test]
fn huge_single_line_and_deep_nesting() {
    let mut big = vec![b'a'; 10 << 20];
    big.extend_from_slice(b" b;");
    let c = parse_bytes("n.conf", &big, &Options::default());
    assert_eq!(c.files[0].parsed[0].args[..], ["b"]);
    // 100k nested blocks: the recursion must not blow the stack.
    let deep = "a {".repeat(100_000) + &"}".repeat(100_000);
    let c = parse_bytes("n.conf", deep.as_bytes(), &Options::default());
    let _ = to_json(&c, JsonStyle::default());
}
