//! copytruncate under load: logrotate copies the file, then truncates it in place while the
//! writer keeps its O_APPEND fd. Lines written between the copy and the truncation are in
//! neither file; the follower must count at least as many as it failed to deliver.

mod common;

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::*;
use medic_follow::{Event, Follower, Options};

fn run(label: &str, rotations: u32, interval: Duration, max_gap_ms: u64, rate: u64) {
    let seed = seed(label);
    let mut rng = rng(seed);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("x.log");
    std::fs::write(&path, b"").unwrap();
    let opts = Options {
        from_start: true,
        ..Options::default()
    };
    let mut follower = Follower::open(std::slice::from_ref(&path), opts).unwrap();
    let done = Arc::new(AtomicBool::new(false));
    let target = Arc::new(AtomicU64::new(u64::MAX));
    let (d, t) = (done.clone(), target.clone());
    let reader = std::thread::spawn(move || {
        let mut tally = Tally::default();
        let (mut truncs, mut recovered, mut lost_lines, mut lost_bytes, mut from_copy) =
            (0u64, 0u64, 0u64, 0u64, 0u64);
        let mut stopped_at: Option<Instant> = None;
        loop {
            follower
                .step(Duration::from_millis(100), &mut |e| match e {
                    Event::Lines { bytes, .. } => tally.add_chunk(bytes),
                    Event::Truncated {
                        recovered_from,
                        recovered_lines,
                        suspected_lost_lines,
                        suspected_lost_bytes,
                        ..
                    } => {
                        truncs += 1;
                        from_copy += u64::from(recovered_from.is_some());
                        recovered += recovered_lines;
                        lost_lines += suspected_lost_lines;
                        lost_bytes += suspected_lost_bytes;
                    }
                    Event::Problem { path, why, .. } => {
                        println!("problem: {}: {why}", path.display())
                    }
                    other => panic!("unexpected {other:?}"),
                })
                .unwrap();
            if d.load(Ordering::Acquire) {
                let s = *stopped_at.get_or_insert_with(Instant::now);
                // Lost lines never come: stop once the file is quiet and read to its end.
                if s.elapsed() > Duration::from_secs(1) {
                    break;
                }
            }
            let _ = t.load(Ordering::Relaxed);
        }
        (tally, truncs, from_copy, recovered, lost_lines, lost_bytes)
    });

    let mut writer = Writer::start(&path, rate);
    for _ in 0..rotations {
        std::thread::sleep(interval);
        rotate_copytruncate(&path, 5, random_ms(&mut rng, max_gap_ms));
    }
    std::thread::sleep(Duration::from_millis(200));
    let written = writer.finish();
    target.store(written, Ordering::Release);
    done.store(true, Ordering::Release);
    let (tally, truncs, from_copy, recovered, counted, counted_bytes) = reader.join().unwrap();
    let (missing, dup) = tally.lost_dup(written);
    println!(
        "{label}: {rotations} copytruncates every {interval:?}, 0-{max_gap_ms} ms between copy and truncate, {rate} lines/s: \
         written {written}, missing {missing}, counted as suspected lost {counted} ({counted_bytes} bytes), \
         duplicated {dup}, garbage {}; Truncated events {truncs} ({from_copy} with the copy found, {recovered} lines recovered from copies)",
        tally.garbage
    );
    assert_eq!(truncs, rotations as u64, "one Truncated per copytruncate");
    assert!(
        missing <= counted,
        "{missing} lines missing but only {counted} counted as suspected lost"
    );
    assert_eq!(dup, 0, "duplicated lines");
    assert_eq!(tally.garbage, 0, "partial or torn lines delivered");
    assert_eq!(
        tally.out_of_order, 0,
        "lines out of order within a generation"
    );
}

#[test]
fn copytruncate_losses_are_counted() {
    run("copytruncate", 20, Duration::from_millis(250), 20, 50_000);
}

/// `cargo test -p medic-follow --release --test copytruncate -- --ignored --nocapture`
#[test]
#[ignore]
fn copytruncate_benchmark() {
    run(
        "copytruncate-benchmark",
        100,
        Duration::from_millis(300),
        50,
        50_000,
    );
}
