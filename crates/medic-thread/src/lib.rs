//! The threads of split jobs: started on another CPU than the thread that starts them, and
//! handing work to each other without sleeping when the wait is short.
//!
//! nginx-medic splits its big jobs in two (the config's files, the model's servers, the rules):
//! on the two-core machines it runs on, the halves only finish early if the new thread gets
//! the other core at once. Linux places a new thread as it likes, and on the 2-vCPU VM we
//! measure on it put it on its parent's CPU in most runs (`perf record -e
//! sched:sched_wakeup_new`), where the two took turns for 1 to 15 ms until the load balancer
//! moved one: the parse of a 500-file config ran on one core for 8-15 ms of its 20.
//!
//! [`spawn_scoped`] starts the thread, lets it run first (the parent waits for it, at most
//! [`MOVE_WAIT`]), and the thread moves itself off the parent's CPU with
//! `sched_setaffinity`, then allows every CPU again so that the kernel still balances it
//! later. Where the parent's CPU is the only one allowed, or the calls fail (a seccomp
//! filter, another OS), the thread runs where the kernel put it: placement is best effort,
//! never a reason to fail.
//!
//! The threads then hand work to each other, and a thread that sleeps for it is woken late on
//! that VM: a wake-up sent to the other, idle CPU often took effect only at its next scheduler
//! tick, 4 ms later (`perf sched timehist`: the woken thread runnable for 3.3-3.9 ms while its
//! CPU stayed idle). A parse that took the plan's lock by turns ran one thread at a time in
//! those runs, 28 ms against 17. [`lock`], [`recv`] and [`join`] poll for up to [`POLL_WAIT`]
//! before they sleep, yielding the CPU between polls.

use std::cell::Cell;
use std::io;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{Receiver, RecvError, TryRecvError};
use std::sync::{Arc, Mutex, MutexGuard, TryLockError};
use std::thread::{Scope, ScopedJoinHandle};
use std::time::{Duration, Instant};

use nix::sched::{sched_getaffinity, sched_getcpu, sched_setaffinity, CpuSet};
use nix::unistd::Pid;

/// How long the parent waits for the new thread to have moved: a thread starts in tens of
/// microseconds; on a machine too busy to start it in this time, waiting longer gains nothing.
pub const MOVE_WAIT: Duration = Duration::from_millis(2);

/// How long a thread polls for what another one makes before it sleeps: the waits of a split
/// job are tens of microseconds to a few milliseconds, and a late wake-up costs up to 4 ms.
pub const POLL_WAIT: Duration = Duration::from_millis(2);

thread_local! {
    /// The move a thread made when it started, `(from, to)`: what the tests check, since the
    /// kernel may move the thread anywhere it is allowed once the move is over.
    static MOVED: Cell<Option<(usize, usize)>> = const { Cell::new(None) };
}

/// `std::thread::Builder::new().name(name).spawn_scoped(scope, f)`, with the thread moved off
/// the caller's CPU before `f` runs (see the crate's documentation).
pub fn spawn_scoped<'scope, 'env, F, T>(
    scope: &'scope Scope<'scope, 'env>,
    name: &str,
    f: F,
) -> io::Result<ScopedJoinHandle<'scope, T>>
where
    F: FnOnce() -> T + Send + 'scope,
    T: Send + 'scope,
{
    let parent = sched_getcpu().ok();
    let moved = Arc::new(AtomicBool::new(false));
    let has_moved = Arc::clone(&moved);
    let handle = std::thread::Builder::new()
        .name(name.to_string())
        .spawn_scoped(scope, move || {
            if let (Some(from), Some(to)) = (parent, move_off(parent)) {
                MOVED.set(Some((from, to)));
            }
            moved.store(true, Ordering::Release);
            f()
        })?;
    if parent.is_some() {
        // Polled, not slept on: the thread that wakes its parent is on the other CPU by then,
        // and a parent woken there would share it (the kernel often places a woken thread by
        // its waker).
        poll_for(MOVE_WAIT, || has_moved.load(Ordering::Acquire));
    }
    Ok(handle)
}

/// Calls `ready` until it holds or `wait` has passed, yielding the CPU between calls (to a
/// thread that shares it, which may be the one `ready` waits for). Whether it held.
fn poll_for(wait: Duration, mut ready: impl FnMut() -> bool) -> bool {
    let start = Instant::now();
    loop {
        if ready() {
            return true;
        }
        if start.elapsed() >= wait {
            return false;
        }
        std::thread::yield_now();
    }
}

/// Calls `ready` until it holds, for up to [`POLL_WAIT`], yielding the CPU between calls.
/// Whether it held; the caller then sleeps on what it waits for.
pub fn poll(ready: impl FnMut() -> bool) -> bool {
    poll_for(POLL_WAIT, ready)
}

/// `m.lock()`, polled for up to [`POLL_WAIT`] before it sleeps. A poisoned lock is taken as
/// it is: the thread that panicked holding it has its panic reported by its join.
pub fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    let mut guard = None;
    poll_for(POLL_WAIT, || match m.try_lock() {
        Ok(g) => {
            guard = Some(g);
            true
        }
        Err(TryLockError::Poisoned(e)) => {
            guard = Some(e.into_inner());
            true
        }
        Err(TryLockError::WouldBlock) => false,
    });
    guard.unwrap_or_else(|| m.lock().unwrap_or_else(|e| e.into_inner()))
}

/// `rx.recv()`, polled for up to [`POLL_WAIT`] before it sleeps.
pub fn recv<T>(rx: &Receiver<T>) -> Result<T, RecvError> {
    let mut got = None;
    poll_for(POLL_WAIT, || match rx.try_recv() {
        Ok(v) => {
            got = Some(Ok(v));
            true
        }
        Err(TryRecvError::Disconnected) => {
            got = Some(Err(RecvError));
            true
        }
        Err(TryRecvError::Empty) => false,
    });
    got.unwrap_or_else(|| rx.recv())
}

/// `handle.join()`, polled for up to [`POLL_WAIT`] before it sleeps.
pub fn join<T>(handle: ScopedJoinHandle<'_, T>) -> std::thread::Result<T> {
    poll_for(POLL_WAIT, || handle.is_finished());
    handle.join()
}

/// Moves the calling thread off `cpu` when another CPU is allowed, then allows every CPU it
/// was allowed before. Returns the CPU the thread ran on while `cpu` was not allowed, or
/// `None` when it did not move.
fn move_off(cpu: Option<usize>) -> Option<usize> {
    let cpu = cpu?;
    let me = Pid::from_raw(0);
    let allowed = sched_getaffinity(me).ok()?;
    let mut others = allowed;
    if others.unset(cpu).is_err() || !(0..CpuSet::count()).any(|c| others.is_set(c) == Ok(true)) {
        return None;
    }
    // Setting a mask without the current CPU migrates the thread before the call returns.
    sched_setaffinity(me, &others).ok()?;
    let moved_to = sched_getcpu().ok();
    let _ = sched_setaffinity(me, &allowed);
    moved_to
}

#[cfg(test)]
mod tests {
    use super::*;

    fn allowed_cpus() -> usize {
        let set = sched_getaffinity(Pid::from_raw(0)).unwrap();
        (0..CpuSet::count())
            .filter(|&c| set.is_set(c) == Ok(true))
            .count()
    }

    /// Off each CPU in turn, the move lands on another allowed CPU. Only the kernel's own
    /// guarantee is checked (a thread never runs on a CPU its mask leaves out): whether the
    /// two threads then stay apart is the scheduler's call, and depends on what else runs.
    #[test]
    fn the_move_leaves_the_cpu() {
        let me = Pid::from_raw(0);
        let allowed = sched_getaffinity(me).unwrap();
        let cpus: Vec<usize> = (0..CpuSet::count())
            .filter(|&c| allowed.is_set(c) == Ok(true))
            .collect();
        assert!(
            cpus.len() >= 2,
            "this test needs two CPUs: the machines nginx-medic is measured on have two"
        );
        for &cpu in &cpus {
            let to = move_off(Some(cpu)).expect("another CPU is allowed, so the thread moves");
            assert_ne!(to, cpu);
            assert!(cpus.contains(&to));
        }
        assert_eq!(sched_getaffinity(me).unwrap(), allowed);
    }

    /// A started thread has moved off the CPU its parent was on before its function runs.
    #[test]
    fn a_thread_moves_before_it_runs() {
        assert!(
            allowed_cpus() >= 2,
            "this test needs two CPUs: the machines nginx-medic is measured on have two"
        );
        for _ in 0..10 {
            let moved = std::thread::scope(|scope| {
                spawn_scoped(scope, "test", || MOVED.get())
                    .unwrap()
                    .join()
                    .unwrap()
            });
            let (from, to) = moved.expect("the thread moved before its function ran");
            assert_ne!(from, to);
        }
    }

    /// The thread may run on every CPU it could before: the move does not pin it.
    #[test]
    fn the_thread_keeps_its_allowed_cpus() {
        let before = allowed_cpus();
        let after = std::thread::scope(|scope| {
            spawn_scoped(scope, "test", allowed_cpus)
                .unwrap()
                .join()
                .unwrap()
        });
        assert_eq!(before, after);
    }

    /// A thread pinned to one CPU stays there, and what it starts still runs.
    #[test]
    fn one_allowed_cpu_is_kept() {
        std::thread::scope(|scope| {
            spawn_scoped(scope, "pinned", || {
                let me = Pid::from_raw(0);
                let cpu = sched_getcpu().unwrap();
                let mut one = CpuSet::new();
                one.set(cpu).unwrap();
                sched_setaffinity(me, &one).unwrap();
                let child = std::thread::scope(|inner| {
                    spawn_scoped(inner, "child", || (sched_getcpu().unwrap(), allowed_cpus()))
                        .unwrap()
                        .join()
                        .unwrap()
                });
                assert_eq!(child, (cpu, 1));
            })
            .unwrap()
            .join()
            .unwrap();
        });
    }

    /// A lock held past [`POLL_WAIT`] is still taken (by sleeping on it), with what its holder
    /// wrote.
    #[test]
    fn lock_waits_for_a_long_holder() {
        let m = Mutex::new(0);
        let m = &m;
        std::thread::scope(|scope| {
            let (held, is_held) = std::sync::mpsc::channel();
            scope.spawn(move || {
                let mut g = m.lock().unwrap();
                held.send(()).unwrap();
                std::thread::sleep(POLL_WAIT * 3);
                *g = 7;
            });
            is_held.recv().unwrap();
            assert_eq!(*lock(m), 7);
        });
    }

    /// A thread that panicked holding the lock leaves it poisoned; the lock is taken as is.
    #[test]
    fn lock_takes_a_poisoned_lock() {
        let m = Mutex::new(1);
        let _ = std::thread::scope(|scope| {
            scope
                .spawn(|| {
                    let _g = m.lock().unwrap();
                    panic!("poisons the lock");
                })
                .join()
        });
        assert!(m.is_poisoned());
        assert_eq!(*lock(&m), 1);
    }

    /// A value sent after [`POLL_WAIT`] is received, and a sender gone without sending is an
    /// error, not a hang.
    #[test]
    fn recv_gets_late_values_and_sees_a_dropped_sender() {
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::scope(|scope| {
            scope.spawn(move || {
                std::thread::sleep(POLL_WAIT * 3);
                tx.send(5).unwrap();
            });
            assert_eq!(recv(&rx), Ok(5));
            assert_eq!(recv(&rx), Err(RecvError));
        });
    }

    /// The result of a thread that ends after [`POLL_WAIT`], and the panic of one that
    /// panics.
    #[test]
    fn join_returns_the_result_or_the_panic() {
        std::thread::scope(|scope| {
            let slow = scope.spawn(|| {
                std::thread::sleep(POLL_WAIT * 3);
                3
            });
            assert_eq!(join(slow).unwrap(), 3);
            let failed = scope.spawn(|| panic!("a worker fails"));
            assert!(join(failed).is_err());
        });
    }

    /// `poll` reports whether what it waits for came within [`POLL_WAIT`].
    #[test]
    fn poll_reports_whether_it_came() {
        assert!(!poll(|| false));
        let mut calls = 0;
        assert!(poll(|| {
            calls += 1;
            calls == 3
        }));
        assert_eq!(calls, 3);
    }
}
