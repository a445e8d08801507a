//! Rename rotation under load: logrotate `create` + a `USR1` that reaches the writer 0-2 s
//! later, so several old generations are written to and drained at once. Nothing may be lost
//! or duplicated, and every old fd must be closed in the end.

mod common;

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::*;
use medic_follow::{Event, Follower, Options};

struct Figures {
    written: u64,
    lost: u64,
    dup: u64,
    garbage: u64,
    out_of_order: u64,
    rotated_events: u64,
    max_open: usize,
    open_at_end: usize,
    cpu: Duration,
    secs: f64,
}

fn run(label: &str, rotations: u32, interval: Duration, max_delay_ms: u64, rate: u64) -> Figures {
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
    let target = Arc::new(std::sync::atomic::AtomicU64::new(u64::MAX));
    let (d, t) = (done.clone(), target.clone());
    let t0 = Instant::now();
    let reader = std::thread::spawn(move || {
        let cpu0 = thread_cpu();
        let mut tally = Tally::default();
        let mut rotated = 0u64;
        let mut checking = Duration::ZERO;
        let mut max_open = 0;
        let mut problems: Vec<(PathBuf, String)> = Vec::new();
        let give_up = Duration::from_secs(30);
        let mut stopped_at: Option<Instant> = None;
        loop {
            follower
                .step(Duration::from_millis(100), &mut |e| match e {
                    Event::Lines { bytes, .. } => {
                        let t = Instant::now();
                        tally.add_chunk(bytes);
                        checking += t.elapsed();
                    }
                    Event::Rotated { .. } => rotated += 1,
                    Event::Problem { path, why, .. } => problems.push((path.into(), why)),
                    other => panic!("unexpected {other:?}"),
                })
                .unwrap();
            max_open = max_open.max(follower.open_files());
            if d.load(Ordering::Acquire) {
                let s = *stopped_at.get_or_insert_with(Instant::now);
                let all = tally.delivered() >= t.load(Ordering::Acquire);
                if (all && follower.open_files() == 1) || s.elapsed() > give_up {
                    break;
                }
            }
        }
        for (p, why) in &problems {
            println!("problem: {}: {why}", p.display());
        }
        (
            tally,
            rotated,
            max_open,
            follower.open_files(),
            thread_cpu() - cpu0,
        )
    });

    let mut writer = Writer::start(&path, rate);
    for _ in 0..rotations {
        std::thread::sleep(interval);
        let delay = random_ms(&mut rng, max_delay_ms);
        rotate_rename(&path, 5, &writer, delay);
    }
    // Let the last signal arrive, so the writer ends on the newest file like nginx would.
    std::thread::sleep(Duration::from_millis(max_delay_ms + 100));
    let written = writer.finish();
    let secs = t0.elapsed().as_secs_f64();
    target.store(written, Ordering::Release);
    done.store(true, Ordering::Release);
    let (tally, rotated_events, max_open, open_at_end, cpu) = reader.join().unwrap();
    let (lost, dup) = tally.lost_dup(written);
    let f = Figures {
        written,
        lost,
        dup,
        garbage: tally.garbage,
        out_of_order: tally.out_of_order,
        rotated_events,
        max_open,
        open_at_end,
        cpu,
        secs,
    };
    println!(
        "{label}: {rotations} rotations every {interval:?}, USR1 after 0-{max_delay_ms} ms, {rate} lines/s: \
         written {} lost {} duplicated {} garbage {} out-of-order {}; Rotated events {}; fds max {} end {}; \
         {:.0} lines/s over {:.1} s; follower CPU (the checker's time taken out) {:.2} s = {:.1}% of a core, {:.3} s per 50k lines/s-second",
        f.written,
        f.lost,
        f.dup,
        f.garbage,
        f.out_of_order,
        f.rotated_events,
        f.max_open,
        f.open_at_end,
        f.written as f64 / f.secs,
        f.secs,
        f.cpu.as_secs_f64(),
        100.0 * f.cpu.as_secs_f64() / f.secs,
        f.cpu.as_secs_f64() / (f.written as f64 / 50_000.0),
    );
    f
}

fn check(f: &Figures, rotations: u32) {
    assert_eq!(f.lost, 0, "lost lines");
    assert_eq!(f.dup, 0, "duplicated lines");
    assert_eq!(f.garbage, 0, "partial or torn lines delivered");
    assert_eq!(f.out_of_order, 0, "lines out of order within a generation");
    assert_eq!(f.open_at_end, 1, "old fds left open");
    assert_eq!(
        f.rotated_events, rotations as u64,
        "one Rotated per rotation"
    );
}

#[test]
fn rename_rotations_with_late_usr1_lose_nothing() {
    let f = run("rename", 100, Duration::from_millis(250), 2000, 50_000);
    check(&f, 100);
    assert!(
        f.max_open > 2,
        "generations should overlap (max {} fds)",
        f.max_open
    );
}

/// The benchmark: `cargo test -p medic-follow --release --test rename -- --ignored --nocapture`.
/// MEDIC_FOLLOW_ROTATIONS, MEDIC_FOLLOW_INTERVAL_MS, MEDIC_FOLLOW_RATE change the load.
#[test]
#[ignore]
fn rename_benchmark() {
    let env = |k: &str, d: u64| {
        std::env::var(k)
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(d)
    };
    let rotations = env("MEDIC_FOLLOW_ROTATIONS", 100) as u32;
    let interval = Duration::from_millis(env("MEDIC_FOLLOW_INTERVAL_MS", 300));
    let rate = env("MEDIC_FOLLOW_RATE", 50_000);
    let f = run("rename-benchmark", rotations, interval, 2000, rate);
    check(&f, rotations);
}
