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

use std::cell::Cell;
use std::io;
use std::sync::mpsc;
use std::thread::{Scope, ScopedJoinHandle};
use std::time::Duration;

use nix::sched::{sched_getaffinity, sched_getcpu, sched_setaffinity, CpuSet};
use nix::unistd::Pid;

/// How long the parent waits for the new thread to have moved: a thread starts in tens of
/// microseconds; on a machine too busy to start it in this time, waiting longer gains nothing.
pub const MOVE_WAIT: Duration = Duration::from_millis(2);

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
    let (moved, has_moved) = mpsc::sync_channel(1);
    let handle = std::thread::Builder::new()
        .name(name.to_string())
        .spawn_scoped(scope, move || {
            if let (Some(from), Some(to)) = (parent, move_off(parent)) {
                MOVED.set(Some((from, to)));
            }
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
}
