//! The access-log scan's fast path ([`PrefixWalk`]) against the full parse
//! ([`LogFormat::parse_prefix_into`]): on every line, the walk either declines or reads exactly
//! the fields the full parse reads, and it declines exactly the lines the full parse rejects.
//! The scan trusts the walk's answer and counts a line on it alone, so any difference here is a
//! wrong count there.

use std::path::Path;

mod common;

use proptest::collection::vec;
use proptest::prelude::*;
use proptest::sample::select;

use medic_parse::access_log::{AccessRecord, Escape, Field, LogFormat, COMBINED, KNOWN, MAIN};

/// The formats the walk should handle, and a few it should handle in unusual shapes.
fn formats() -> Vec<LogFormat> {
    let mut v: Vec<LogFormat> = KNOWN
        .iter()
        .map(|(_, f)| LogFormat::compile(f).unwrap())
        .collect();
    for f in [COMBINED, MAIN] {
        v.push(LogFormat::compile(f).unwrap());
    }
    // A leading literal, a variable named twice, `$time_local` not in brackets.
    v.push(
        LogFormat::compile("log: $remote_addr | $status | $remote_addr | $time_local |").unwrap(),
    );
    v.push(
        LogFormat::compile("$time_local $remote_addr \"$request\" $status $request_time").unwrap(),
    );
    // A literal longer than a word.
    v.push(LogFormat::compile("$remote_addr <<separator>> $status <<separator>> end").unwrap());
    for escape in [Escape::Json, Escape::Default] {
        v.push(
            LogFormat::compile_with(
                "{\"addr\":\"$remote_addr\",\"request\":\"$request\",\"ua\":\"$http_user_agent\",\"status\":\"$status\",\"t\":\"$time_local\"}",
                escape,
            )
            .unwrap(),
        );
    }
    v
}

/// Checks every walkable prefix of `f` on the first line of `text`, both as the last line of a
/// chunk and followed by another line. Returns how many prefixes the walk read.
fn check(f: &LogFormat, text: &[u8]) -> usize {
    // The full parse sees the line without its newline, as the scan cuts it.
    let line = text.split(|&c| c == b'\n').next().unwrap_or(b"");
    let mut walked = 0;
    let mut followed = text.to_vec();
    followed
        .extend_from_slice(b"\n1.2.3.4 - - [26/Oct/2023:00:00:01 +0000] \"GET / HTTP/1.1\" 200 1");
    for segments in 0..=f.prefix_for(&Field::ALL) {
        let Some(walk) = f.prefix_walk(segments) else {
            continue;
        };
        let mut full = AccessRecord::default();
        let full_ok = f.parse_prefix_into(line, segments, &mut full).is_ok();
        for text in [text, &followed[..]] {
            let mut fast = AccessRecord::default();
            let stop = walk.walk(text, &mut fast);
            assert_eq!(
                stop.is_some(),
                full_ok,
                "format {:?}, {segments} segments, line {:?}",
                f.source(),
                String::from_utf8_lossy(line)
            );
            let Some(stop) = stop else { continue };
            walked += 1;
            assert!(stop <= line.len(), "stopped past the line: {line:?}");
            for field in Field::ALL {
                assert_eq!(
                    fast.get(field),
                    full.get(field),
                    "{field:?}: format {:?}, {segments} segments, line {:?}",
                    f.source(),
                    String::from_utf8_lossy(line)
                );
            }
        }
    }
    walked
}

#[test]
fn corpus_lines_and_every_cut_of_them() {
    let formats = formats();
    let combined = LogFormat::compile(COMBINED).unwrap();
    let (mut lines, mut walked, mut cut_lines) = (0, 0, 0);
    // The corpus's log files, access and error logs alike: the walk must also decline well.
    for path in common::log_files(&Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/corpus")) {
        let text = std::fs::read(&path).unwrap();
        for line in text.split(|&c| c == b'\n') {
            lines += 1;
            for f in &formats {
                walked += check(f, line);
            }
            // Real access lines cut at every byte: the walk meets the end of the line in every
            // field.
            if cut_lines < 200 && combined.parse(line).is_ok() {
                cut_lines += 1;
                for cut in 0..line.len() {
                    check(&combined, &line[..cut]);
                }
            }
        }
    }
    assert!(lines > 1000, "{lines} corpus lines");
    assert!(cut_lines >= 50, "{cut_lines} access lines in the corpus");
    assert!(walked > 10_000, "the walk read only {walked} prefixes");
}

#[test]
fn edge_lines() {
    let lines: &[&[u8]] = &[
        b"",
        b"\r",
        b"1.2.3.4 - - [26/Oct/2023:00:00:01 +0000] \"GET /a HTTP/1.1\" 502 5 \"-\" \"curl\"\r",
        b"1.2.3.4 - - [26/Oct/2023:00:00:01 +0000] \"GET /a HTTP/1.1\" 502\r",
        b"1.2.3.4 - - [26/Oct/2023:00:00:01 +0000] \"GET /a HTTP/1.1\" 502",
        // Escaped quotes inside $request and $http_user_agent (escape=json, or a proxy's own).
        br#"1.2.3.4 - - [26/Oct/2023:00:00:01 +0000] "GET /\"q\" HTTP/1.1" 502 5 "-" "a \"b\" c""#,
        br#"1.2.3.4 - - [26/Oct/2023:00:00:01 +0000] "GET /\\" 404 5 "-" "x\\""#,
        br#"{"addr":"1.2.3.4","request":"GET /\"a\" HTTP/1.1","ua":"x \\\" y","status":"502","t":"26/Oct/2023:00:00:01 +0000"}"#,
        br#"{"addr":"1.2.3.4","request":"GET /\\","ua":"\\\\","status":"499","t":"26/Oct/2023:00:00:01 +0000"}"#,
        // A user with the separators in it, a time of the wrong width, a time with a newline.
        b"1.2.3.4 - a - b [c [26/Oct/2023:00:00:01 +0000] \"GET / HTTP/1.1\" 200 1 \"-\" \"-\"",
        b"1.2.3.4 - - [26/Oct/2023:00:00:01 +00000] \"GET / HTTP/1.1\" 200 1 \"-\" \"-\"",
        b"1.2.3.4 - - [26/Oct/2023:00:00:01] \"GET / HTTP/1.1\" 200 1 \"-\" \"-\"",
        b"1.2.3.4 - - [26/Oct/2023:0\n:00:01 +0000] \"GET / HTTP/1.1\" 200 1 \"-\" \"-\"",
        b"1.2.3.4 - - [26/Oct/2023:00:00:01 +0000] \"\" 400 0 \"-\" \"-\"",
        b"1.2.3.4 - - [26/Oct/2023:00:00:01 +0000] \"GET / HTTP/1.1\"\" 200 1",
        b"log: 10.0.0.1 | 502 | 10.0.0.2 | 26/Oct/2023:00:00:01 +0000 |",
        b"log: 10.0.0.1 | 502 | 10.0.0.2 | 26/Oct/2023:00:00:01 +0000|",
        b"10.0.0.1 <<separator>> 504 <<separator>> end",
        b"10.0.0.1 <<separator> 504 <<separator>> end",
        b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03",
    ];
    for f in formats() {
        for line in lines {
            check(&f, line);
            for cut in 0..line.len() {
                check(&f, &line[..cut]);
            }
        }
    }
}

#[test]
fn the_common_formats_are_walked_and_unusual_shapes_are_not() {
    for (name, f) in KNOWN {
        let f = LogFormat::compile(f).unwrap();
        let segments = f.prefix_for(&[Field::Status, Field::TimeLocal]);
        assert!(f.prefix_walk(segments).is_some(), "{name}");
    }
    // Unquoted `$request` (three words), `$upstream_*` lists, two variables with no text
    // between them, a variable that runs to the end of the line: the full parse reads them.
    for format in [
        "$remote_addr $request $status x",
        "$upstream_addr $status x",
        "$remote_addr$status x",
        "$remote_addr $status",
        "$remote_addr\r$status x",
    ] {
        let f = LogFormat::compile(format).unwrap();
        assert!(
            f.prefix_walk(f.prefix_for(&[Field::Status])).is_none(),
            "{format}"
        );
    }
}

/// Pieces of access lines, so that random lines get far into the formats.
const PIECES: &[&str] = &[
    "1.2.3.4",
    "::1",
    " ",
    " - ",
    "-",
    " [",
    "[",
    "]",
    "] \"",
    "\"",
    "\" ",
    "\\\"",
    "\\",
    "\\\\",
    "26/Oct/2023:00:00:01 +0000",
    "26/Oct/2023:00:00:01",
    "GET /x HTTP/1.1",
    "502",
    "200",
    "499",
    "\r",
    "\n",
    "|",
    " | ",
    "log: ",
    "<<separator>>",
    "{\"addr\":\"",
    "\",\"status\":\"",
    "x",
];

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2048))]

    #[test]
    fn random_lines_agree(pieces in vec(select(PIECES), 0..24), f in 0usize..64) {
        let formats = formats();
        let text: String = pieces.concat();
        check(&formats[f % formats.len()], text.as_bytes());
    }
}
