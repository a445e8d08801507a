//! The error-log parser and classifier on arbitrary bytes: nothing panics; the fast paths agree
//! with the slow ones (`HeadParser` with `parse_head`, `parse_rest_lean` with `parse_rest`); and
//! the `may_be_failure` prefilter never rejects an entry that `classify` would call a failure (the
//! scan skips the context of entries the prefilter rejects, so a miss would lose a finding).
#![no_main]

use libfuzzer_sys::fuzz_target;
use medic_parse::error_log::{
    classify, may_be_failure, parse, parse_head, parse_rest, parse_rest_lean, starts_entry,
    FailureClass, HeadParser,
};

fuzz_target!(|data: &[u8]| {
    // The timestamp cache sees runs of lines, as in a log.
    let mut heads = HeadParser::default();
    for line in data.split(|&c| c == b'\n') {
        assert_eq!(
            heads.parse(line),
            parse_head(line),
            "{:?}",
            String::from_utf8_lossy(line)
        );
        let _ = starts_entry(line);
    }

    let Some(e) = parse(data) else {
        return;
    };
    let class = classify(&e);
    let _ = (class.id(), class.usual_status(), class.is_failure());

    // `parse` drops one trailing `\r`; the head is that of the same bytes.
    let entry = data.strip_suffix(b"\r").unwrap_or(data);
    let head = parse_head(entry).expect("parse() succeeded, so parse_head() must");
    assert!(head.message_start <= entry.len());
    assert_eq!(parse_rest(entry, &head), e);
    assert_eq!(
        (head.time, head.level, head.pid, head.tid, head.cid),
        (e.time, e.level, e.pid, e.tid, e.cid)
    );

    let lean = parse_rest_lean(entry, &head);
    assert_eq!(
        (
            lean.message,
            lean.text,
            lean.errno,
            lean.action,
            lean.resolver
        ),
        (e.message, e.text, e.errno, e.action, e.resolver)
    );
    // The lean parse stops at `upstream`: it has the same upstream, and of the keys nginx writes
    // before it (which garbage may also put after it) nothing the full parse does not have.
    let (c, l) = (e.context, lean.context);
    assert_eq!(l.upstream, c.upstream);
    for (lv, cv) in [
        (l.client, c.client),
        (l.server, c.server),
        (l.request, c.request),
        (l.subrequest, c.subrequest),
    ] {
        assert!(lv.is_none() || lv == cv, "{lv:?} {cv:?}");
    }
    assert_eq!(classify(&lean), class);

    if class != FailureClass::Other {
        assert!(
            may_be_failure(head.level, &entry[head.message_start..]),
            "may_be_failure rejected an entry classified {class:?}: {:?}",
            String::from_utf8_lossy(entry)
        );
    }
    if let Some(u) = e.context.upstream {
        let _ = medic_parse::upstream::target(u);
    }
});
