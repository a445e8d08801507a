//! A log writer that behaves like nginx (one `write` per line, O_APPEND, reopens the path only
//! when "signalled"), a rotator that behaves like logrotate, and the bookkeeping to tell lost
//! from duplicated lines.

#![allow(dead_code)] // each test binary uses part of it

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::fs::{self, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use rand::rngs::StdRng;
use rand::{RngExt, SeedableRng};

pub const LINE_LEN: usize = 64;

/// `line 000000123 xxxx...\n`, LINE_LEN bytes.
pub fn line(n: u64) -> Vec<u8> {
    let mut l = format!("line {n:09} ").into_bytes();
    l.resize(LINE_LEN - 1, b'x');
    l.push(b'\n');
    l
}

/// The number of a line written by `line`, if it is one.
pub fn number(l: &[u8]) -> Option<u64> {
    let d = l.strip_prefix(b"line ")?.get(..9)?;
    std::str::from_utf8(d).ok()?.parse().ok()
}

/// The seed: `MEDIC_FOLLOW_SEED` to replay a run, else from the clock. Printed either way.
pub fn seed(test: &str) -> u64 {
    let seed = std::env::var("MEDIC_FOLLOW_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_nanos() as u64)
                .unwrap_or(1)
        });
    println!("{test}: seed {seed} (MEDIC_FOLLOW_SEED={seed} to replay)");
    seed
}

/// "USR1" deadlines: the writer reopens its path at the first one that has passed.
pub type Signals = Arc<Mutex<BinaryHeap<Reverse<Instant>>>>;

pub struct Writer {
    pub stop: Arc<AtomicBool>,
    pub written: Arc<AtomicU64>,
    pub signals: Signals,
    handle: Option<JoinHandle<()>>,
}

impl Writer {
    /// Writes numbered lines to `path` at `rate` lines/s, like an nginx worker.
    pub fn start(path: &Path, rate: u64) -> Writer {
        let stop = Arc::new(AtomicBool::new(false));
        let written = Arc::new(AtomicU64::new(0));
        let signals: Signals = Arc::default();
        let (s, w, sig, path) = (
            stop.clone(),
            written.clone(),
            signals.clone(),
            path.to_path_buf(),
        );
        let handle = std::thread::spawn(move || {
            let open = || {
                OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(&path)
                    .expect("writer opens the log")
            };
            let mut f = open();
            let t0 = Instant::now();
            let mut n = 0u64;
            while !s.load(Ordering::Relaxed) {
                let now = Instant::now();
                let mut reopen = false;
                {
                    let mut q = sig.lock().unwrap();
                    while q.peek().is_some_and(|Reverse(t)| *t <= now) {
                        q.pop();
                        reopen = true;
                    }
                }
                if reopen {
                    f = open();
                }
                let target = (t0.elapsed().as_secs_f64() * rate as f64) as u64;
                // Catch up in batches of at most 10 ms of lines, so a reopen is never late by
                // much and the rate holds even when a sleep oversleeps.
                let until = target.min(n + rate / 100 + 1);
                while n < until {
                    f.write_all(&line(n)).expect("writer writes");
                    n += 1;
                }
                w.store(n, Ordering::Release);
                std::thread::sleep(Duration::from_millis(1));
            }
        });
        Writer {
            stop,
            written,
            signals,
            handle: Some(handle),
        }
    }

    /// Stops writing; returns how many lines were written.
    pub fn finish(&mut self) -> u64 {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(h) = self.handle.take() {
            h.join().expect("writer thread");
        }
        self.written.load(Ordering::Acquire)
    }

    pub fn signal_at(&self, t: Instant) {
        self.signals.lock().unwrap().push(Reverse(t));
    }
}

fn numbered(path: &Path, k: u32) -> PathBuf {
    let mut s = path.as_os_str().to_os_string();
    s.push(format!(".{k}"));
    PathBuf::from(s)
}

/// logrotate's shift: drop `.keep`, then `.k` -> `.k+1`.
pub fn shift(path: &Path, keep: u32) {
    let _ = fs::remove_file(numbered(path, keep));
    for k in (1..keep).rev() {
        let _ = fs::rename(numbered(path, k), numbered(path, k + 1));
    }
}

/// logrotate `create` + `postrotate kill -USR1` (the signal arriving after `delay`).
pub fn rotate_rename(path: &Path, keep: u32, writer: &Writer, delay: Duration) {
    shift(path, keep);
    fs::rename(path, numbered(path, 1)).expect("rename the log");
    OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .expect("create the new log");
    writer.signal_at(Instant::now() + delay);
}

/// logrotate `copytruncate`: copy, then truncate in place (after `gap`, the window in which
/// lines are lost); the writer keeps its O_APPEND fd.
pub fn rotate_copytruncate(path: &Path, keep: u32, gap: Duration) {
    shift(path, keep);
    fs::copy(path, numbered(path, 1)).expect("copy the log");
    std::thread::sleep(gap);
    OpenOptions::new()
        .write(true)
        .open(path)
        .and_then(|f| f.set_len(0))
        .expect("truncate the log");
}

pub fn rng(seed: u64) -> StdRng {
    StdRng::seed_from_u64(seed)
}

pub fn random_ms(rng: &mut StdRng, max_ms: u64) -> Duration {
    Duration::from_millis(rng.random_range(0..=max_ms))
}

/// How often each line number was delivered.
#[derive(Default)]
pub struct Tally {
    pub seen: Vec<u32>,
    /// Lines that are not ours: must stay 0 (a torn or partial line would land here).
    pub garbage: u64,
    /// Breaks of the +1 sequence inside one event (one file generation, in file order).
    pub out_of_order: u64,
}

impl Tally {
    pub fn add_chunk(&mut self, bytes: &[u8]) {
        let mut prev: Option<u64> = None;
        for l in bytes.split_inclusive(|&b| b == b'\n') {
            match number(l).filter(|_| l.len() == LINE_LEN && l.ends_with(b"\n")) {
                Some(n) => {
                    let i = n as usize;
                    if self.seen.len() <= i {
                        self.seen.resize(i + 1, 0);
                    }
                    self.seen[i] += 1;
                    if prev.is_some_and(|p| p + 1 != n) {
                        self.out_of_order += 1;
                    }
                    prev = Some(n);
                }
                None => self.garbage += 1,
            }
        }
    }

    pub fn delivered(&self) -> u64 {
        self.seen.iter().map(|&c| c as u64).sum()
    }

    /// The first few runs of missing numbers, as (first, count), for a failure message.
    pub fn missing_runs(&self, written: u64, max: usize) -> Vec<(u64, u64)> {
        let mut runs: Vec<(u64, u64)> = Vec::new();
        for i in 0..written {
            if self.seen.get(i as usize).copied().unwrap_or(0) == 0 {
                let full = runs.len() >= max;
                match runs.last_mut() {
                    Some((a, n)) if *a + *n == i => *n += 1,
                    _ if full => break,
                    _ => runs.push((i, 1)),
                }
            }
        }
        runs
    }

    /// (lost, duplicated) among lines 0..written.
    pub fn lost_dup(&self, written: u64) -> (u64, u64) {
        let mut lost = 0;
        let mut dup = 0;
        for i in 0..written as usize {
            match self.seen.get(i).copied().unwrap_or(0) {
                0 => lost += 1,
                c => dup += c as u64 - 1,
            }
        }
        (lost, dup)
    }
}

/// CPU time (user + system) used by the calling thread.
pub fn thread_cpu() -> Duration {
    use nix::sys::resource::{getrusage, UsageWho};
    let Ok(u) = getrusage(UsageWho::RUSAGE_THREAD) else {
        return Duration::ZERO;
    };
    let tv = |t: nix::sys::time::TimeVal| {
        Duration::from_secs(t.tv_sec() as u64) + Duration::from_micros(t.tv_usec() as u64)
    };
    tv(u.user_time()) + tv(u.system_time())
}
