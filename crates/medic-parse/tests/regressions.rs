//! Inputs the fuzz targets and the property tests found, kept as plain tests.

use medic_parse::access_log::{Field, LogFormat};
use medic_parse::error_log::{classify, may_be_failure, parse, parse_head, FailureClass};

fn class(line: &str) -> FailureClass {
    classify(&parse(line.as_bytes()).unwrap_or_else(|| panic!("not parsed: {line}")))
}

fn prefilter(line: &str) -> bool {
    let h = parse_head(line.as_bytes()).unwrap();
    may_be_failure(h.level, &line.as_bytes()[h.message_start..])
}

/// `ngx_http_upstream_resolve_handler` writes the name first, so an [error] resolver failure may
/// start with any letter; the prefilter used to drop those starting with "c", "u", "l", "p", "S"
/// or "F" (the letters of its other prefixes), and the scan lost them.
#[test]
fn resolver_errors_pass_the_prefilter_whatever_the_name() {
    for name in [
        "cdn.example.com",
        "upstream.svc.cluster.local",
        "localhost",
        "php",
        "Service",
        "Foo",
    ] {
        let line = format!("2026/11/20 14:32:10 [error] 7#7: *3 {name} could not be resolved (3: Host not found), client: 10.0.0.1, server: x, request: \"GET / HTTP/1.1\", host: \"x\"");
        assert_eq!(class(&line), FailureClass::DnsFailure, "{name}");
        assert!(prefilter(&line), "{name}");
    }
}

/// Found by fuzz/error_log: a message below [error] that holds " could not be resolved (" was
/// classified a DNS failure although the prefilter (rightly) skipped it.
#[test]
fn below_error_the_classifier_follows_the_prefilter() {
    let line = "2022/04/02 13:39:51 [info] 8#8: *6631 client login failed: \"AUTH not supported\" while in http auth state, client [error] 368#368: *5 wordpress could not be resolved (: 5.34.207.182, server: 0.0.0.0:25, login: \"linkinpark@example.com\"";
    assert!(!prefilter(line));
    assert_eq!(class(line), FailureClass::Other);
    for line in [
        "2026/11/20 14:32:10 [warn] 1#1: *1 accept4() failed (24: Too many open files)",
        "2026/11/20 14:32:10 [info] 1#1: *1 x.example could not be resolved (3: Host not found)",
    ] {
        assert!(!prefilter(line), "{line}");
        assert_eq!(class(line), FailureClass::Other, "{line}");
    }
    // What nginx writes at [error] and above keeps its class.
    let line = "2026/11/20 14:32:10 [crit] 1#1: *1 accept4() failed (24: Too many open files)";
    assert_eq!(class(line), FailureClass::WorkerLimits);
}

/// Found by fuzz/access_log: with a variable named twice, `parse` kept the last value and
/// `parse_upto` the first.
#[test]
fn a_variable_named_twice_gives_its_first_value() {
    let f = LogFormat::compile("$remote_addr $request | $status | $realip_remote_addr").unwrap();
    let line = b"10.0.0.1 GET / HTTP/1.1 | 502 | 192.168.0.9";
    let full = f.parse(line).unwrap();
    let part = f.parse_upto(line, &[Field::RemoteAddr]).unwrap();
    assert_eq!(full.get(Field::RemoteAddr), Some(&b"10.0.0.1"[..]));
    assert_eq!(part.get(Field::RemoteAddr), full.get(Field::RemoteAddr));
}

/// Found by the access-line property: a ` - ` after an upstream list matched inside ` : -`.
#[test]
fn a_list_ending_in_a_dash_group_before_a_dash_separator() {
    let f = LogFormat::compile("$upstream_status - $upstream_header_time - $status").unwrap();
    let r = f.parse_exact(b"502 : - - 0.004 : - - 502").unwrap();
    assert_eq!(r.get(Field::UpstreamStatus), Some(&b"502 : -"[..]));
    assert_eq!(r.get(Field::UpstreamHeaderTime), Some(&b"0.004 : -"[..]));
    assert_eq!(r.status(), Some(502));
}

/// Found by the cut-entry property: an entry cut before its action's first word is whole cannot
/// say which timeout it was, and "upstream sent too big hea" is not an invalid response.
#[test]
fn cut_entries_are_not_given_another_class() {
    let p = "2026/11/20 14:32:10 [error] 1#1: *1 ";
    for (msg, want) in [
        (
            "upstream timed out (110: Connection timed out) while connecting to upstream",
            FailureClass::ConnectTimeout,
        ),
        (
            "upstream timed out (110: Connection timed out) while connecting",
            FailureClass::ConnectTimeout,
        ),
        (
            "upstream timed out (110: Connection timed out) while conn",
            FailureClass::Other,
        ),
        (
            "upstream timed out (110: Connection timed out) while s",
            FailureClass::Other,
        ),
        (
            "upstream timed out (110: Connection timed out) while ",
            FailureClass::Other,
        ),
        (
            "upstream timed out (110: Connection timed out)",
            FailureClass::Other,
        ),
        (
            "upstream timed out (110: Connection timed out) while r",
            FailureClass::ReadTimeout,
        ),
        (
            "upstream timed out (110: Connection timed out) while proxying upgraded connection",
            FailureClass::ReadTimeout,
        ),
        ("upstream sent too big hea", FailureClass::Other),
        (
            "upstream sent too big header while reading response header from upstream",
            FailureClass::HeaderTooBig,
        ),
        (
            "upstream sent invalid header while reading response header from upstream",
            FailureClass::InvalidResponse,
        ),
    ] {
        assert_eq!(class(&format!("{p}{msg}")), want, "{msg}");
    }
}
