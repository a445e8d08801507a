//! The upstream-name helpers on arbitrary bytes: nothing panics, the list iterator ends, and
//! every piece is a piece of the input.
#![no_main]

use libfuzzer_sys::fuzz_target;
use medic_parse::upstream::{is_none, last, list, target};

fn within(outer: &[u8], inner: &[u8]) -> bool {
    let (o, i) = (outer.as_ptr() as usize, inner.as_ptr() as usize);
    i >= o && i + inner.len() <= o + outer.len()
}

fuzz_target!(|data: &[u8]| {
    let t = target(data);
    assert!(within(data, t));
    let l = last(data);
    assert!(within(data, l));
    let _ = is_none(l);
    let mut n = 0usize;
    let mut group = 0usize;
    let mut last_item = None;
    for item in list(data) {
        assert!(within(data, item.value));
        assert!(item.group >= group, "groups never go back");
        group = item.group;
        n += 1;
        // Each item consumes at least its separator, so there are at most len + 1 items.
        assert!(n <= data.len() + 1);
        let _ = target(item.value);
        last_item = Some(item.value);
    }
    assert_eq!(n == 0, data.is_empty());
    let _ = last_item;
});
