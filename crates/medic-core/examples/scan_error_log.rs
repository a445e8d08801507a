//! The error-log scan alone, for profiling and instruction counts without the binary's report:
//! `cargo run --release -p medic-core --example scan_error_log -- FILE [THREADS]`.
//! Prints the totals the summary kept, so two builds can be compared on the same input.

use std::os::unix::fs::FileExt;

use medic_core::logs::error_summary::ErrorSummary;
use medic_core::logs::Window;
use medic_parse::input::{self, ReadOptions, Source};

fn main() {
    let mut args = std::env::args().skip(1);
    let path = args.next().expect("usage: scan_error_log FILE [THREADS]");
    let threads = args
        .next()
        .map_or(2, |t| t.parse().expect("THREADS is a number"));
    let (sources, errors) = input::expand(&[path]);
    assert!(errors.is_empty(), "{errors:?}");
    let opts = ReadOptions {
        threads,
        kind: None,
        progress: None,
    };
    let source: &Source = &sources[0];
    let outcome = input::read(source, 0, &opts, |_| {
        ErrorSummary::new(Window::default(), None)
    })
    .expect("readable");
    let mut all = ErrorSummary::new(Window::default(), None);
    for s in outcome.sinks {
        all.merge(s);
    }
    all.finish();
    let lost = outcome.file.map_or(0, |f| {
        all.read_back_examples(0, |at, buf| f.read_exact_at(buf, at))
    });
    assert_eq!(lost, 0, "the file changed while it was read");
    let cells: usize = all.cells.iter().map(|m| m.len()).sum();
    let counted: u64 = all
        .cells
        .iter()
        .flat_map(|m| m.values())
        .map(|c| c.count)
        .sum();
    println!(
        "lines {} entries {} cells {cells} counted {counted} overflow {}",
        all.lines, all.entries, all.overflow
    );
}
