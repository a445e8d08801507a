//! The error-log parser and classifier on arbitrary bytes: nothing panics, and the fast
//! `may_be_failure` prefilter never rejects an entry that `classify` would call a failure (the
//! scanner skips the context of entries the prefilter rejects, so a miss would lose a finding).
#![no_main]

use libfuzzer_sys::fuzz_target;
use medic_parse::error_log::{
    classify, may_be_failure, parse, parse_head, parse_rest, starts_entry, FailureClass,
};

fuzz_target!(|data: &[u8]| {
    let _ = starts_entry(data);
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
    assert_eq!((head.time, head.level, head.pid, head.tid, head.cid), (e.time, e.level, e.pid, e.tid, e.cid));

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
