//! Starts worker threads on another CPU than the thread that starts them.
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

use std::io;
use std::sync::mpsc;
use std::thread::{Scope, ScopedJoinHandle};
use std::time::Duration;

use nix::sched::{sched_getaffinity, sched_getcpu, sched_setaffinity, CpuSet};
use nix::unistd::Pid;

/// How long the parent waits for the new thread to have moved: a thread starts in tens of
/// microseconds; on a machine too busy to start it in this time, waiting longer gains nothing.
pub const MOVE_WAIT: Duration = Duration::from_millis(2);

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
    let (moved, has_moved) = mpsc::sync_channel(1);
    let handle = std::thread::Builder::new()
        .name(name.to_string())
        .spawn_scoped(scope, move || {
            move_off(parent);
            let _ = moved.try_send(());
            f()
        })?;
    if parent.is_some() {
        // Returns at once if the thread was not started (its sender is dropped with it).
        let _ = has_moved.recv_timeout(MOVE_WAIT);
    }
    Ok(handle)
}

/// Moves the calling thread off `cpu` when another CPU is allowed, then allows every CPU it
/// was allowed before.
fn move_off(cpu: Option<usize>) {
    let Some(cpu) = cpu else { return };
    let me = Pid::from_raw(0);
    let Ok(allowed) = sched_getaffinity(me) else {
        return;
    };
    let mut others = allowed;
    if others.unset(cpu).is_err() || !(0..CpuSet::count()).any(|c| others.is_set(c) == Ok(true)) {
        return;
    }
    // Setting a mask without the current CPU migrates the thread before the call returns.
    if sched_setaffinity(me, &others).is_ok() {
        let _ = sched_setaffinity(me, &allowed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::time::Instant;

    fn allowed_cpus() -> usize {
        let set = sched_getaffinity(Pid::from_raw(0)).unwrap();
        (0..CpuSet::count())
            .filter(|&c| set.is_set(c) == Ok(true))
            .count()
    }

    /// The thread starts on another CPU than its parent's, which keeps running (as the
    /// threads that split a job do). The kernel may move either later, so each try reads both
    /// CPUs while both run, and nine tries in ten must see them apart. Without the move, this
    /// VM gave 0, 1, 4, 10 and 10 in five runs.
    #[test]
    fn a_thread_starts_on_another_cpu() {
        assert!(
            allowed_cpus() >= 2,
            "this test needs two CPUs: the machines nginx-medic is measured on have two"
        );
        let apart = (0..10)
            .filter(|_| {
                let child_cpu = AtomicUsize::new(usize::MAX);
                std::thread::scope(|scope| {
                    let child = spawn_scoped(scope, "test", || {
                        child_cpu.store(sched_getcpu().unwrap(), Ordering::SeqCst);
                    })
                    .unwrap();
                    // Busy, as a parent that goes on with its half is.
                    let started = Instant::now();
                    let mut parent = sched_getcpu().unwrap();
                    while child_cpu.load(Ordering::SeqCst) == usize::MAX
                        && started.elapsed() < Duration::from_secs(1)
                    {
                        parent = sched_getcpu().unwrap();
                    }
                    child.join().unwrap();
                    parent != child_cpu.load(Ordering::SeqCst)
                })
            })
            .count();
        assert!(
            apart >= 9,
            "the thread ran on its parent's CPU in {} of 10 tries",
            10 - apart
        );
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
}
