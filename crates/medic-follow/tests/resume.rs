//! Resume after `kill -9`: the `follow-lines` helper follows a log with a state file while it
//! is rotated by rename (USR1 0-2 s late), and is killed at random points and restarted,
//! sometimes after rotations happened while it was down. Every line written must be in its
//! output; duplicates are allowed (at-least-once) and counted.

mod common;

use std::process::{Child, Command};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::*;

fn spawn(log: &std::path::Path, state: &std::path::Path, out: &std::path::Path) -> Child {
    Command::new(env!("CARGO_BIN_EXE_follow-lines"))
        .arg(log)
        .arg(state)
        .arg(out)
        .spawn()
        .expect("start follow-lines")
}

fn run(label: &str, secs: u64, rate: u64) {
    let seed = seed(label);
    let mut rng = rng(seed);
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("logs")).unwrap();
    let log = dir.path().join("logs/x.log");
    let state = dir.path().join("state.json");
    let out = dir.path().join("out");
    std::fs::write(&log, b"").unwrap();
    let mut child = spawn(&log, &state, &out);
    std::thread::sleep(Duration::from_millis(200));
    let writer = Arc::new(std::sync::Mutex::new(Writer::start(&log, rate)));

    let rotating = Arc::new(AtomicBool::new(true));
    let (r, w, l, rot_seed) = (rotating.clone(), writer.clone(), log.clone(), seed ^ 0x5eed);
    let rotator = std::thread::spawn(move || {
        let mut rng = common::rng(rot_seed);
        let t0 = Instant::now();
        let mut n = 0;
        while t0.elapsed() < Duration::from_secs(secs) {
            std::thread::sleep(Duration::from_millis(300));
            // Keep 12 generations: a file the writer may still write to (USR1 up to 2 s
            // late) is never deleted while the follower is down, which would lose lines that
            // no follower could read.
            rotate_rename(&l, 12, &w.lock().unwrap(), random_ms(&mut rng, 2000));
            n += 1;
        }
        r.store(false, Ordering::Release);
        n
    });

    let mut kills = 0;
    while rotating.load(Ordering::Acquire) {
        std::thread::sleep(Duration::from_millis(300) + random_ms(&mut rng, 1200));
        child.kill().expect("kill -9");
        child.wait().unwrap();
        kills += 1;
        // Down for a while: rotations may happen meanwhile.
        std::thread::sleep(random_ms(&mut rng, 500));
        child = spawn(&log, &state, &out);
    }
    let rotations = rotator.join().unwrap();
    std::thread::sleep(Duration::from_millis(2100));
    let written = writer.lock().unwrap().finish();

    // Wait until the follower has written everything out.
    let give_up = Instant::now() + Duration::from_secs(20);
    let tally = loop {
        let mut t = Tally::default();
        t.add_chunk(&std::fs::read(&out).unwrap_or_default());
        if t.lost_dup(written).0 == 0 || Instant::now() > give_up {
            break t;
        }
        std::thread::sleep(Duration::from_millis(250));
    };
    child.kill().unwrap();
    child.wait().unwrap();
    let (lost, dup) = tally.lost_dup(written);
    println!(
        "{label}: {rotations} rename rotations (USR1 0-2 s late), {kills} kill -9 + restarts, {rate} lines/s: \
         written {written}, lost {lost}, duplicated {dup} (at-least-once), garbage {}",
        tally.garbage
    );
    assert_eq!(
        lost,
        0,
        "lines lost across kill -9; first missing runs {:?}",
        tally.missing_runs(written, 10)
    );
    assert_eq!(tally.garbage, 0, "partial or torn lines in the output");
}

#[test]
fn kill_9_and_restart_lose_nothing() {
    run("resume", 8, 20_000);
}

/// `cargo test -p medic-follow --release --test resume -- --ignored --nocapture`
#[test]
#[ignore]
fn resume_benchmark() {
    run("resume-benchmark", 60, 50_000);
}
