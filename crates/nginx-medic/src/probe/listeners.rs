//! Every listening socket and its processes, as `ss -tlpnx` shows them, without running `ss`:
//! `/proc/net/{tcp,tcp6,unix}` joined with the socket inodes of `/proc/PID/fd/*`.
//!
//! A process whose `fd` directory is unreadable (another user's, when not root) is recorded in
//! [`Listeners::denied_pids`] and reported as skipped: its sockets then show no process, which is
//! not the same as "no process".

use std::collections::HashMap;
use std::fs;

use medic_core::facts::{Listener, Listeners, ProcessInfo, Skipped, SocketKind};
use procfs::net::{TcpState, UnixState};
use procfs::process::FDTarget;
use procfs::ProcError;

/// Reads the listener tables and the processes that hold them.
pub fn gather(skipped: &mut Vec<Skipped>) -> Listeners {
    let mut sockets = Vec::new();
    for (kind, table) in [
        (SocketKind::Tcp, procfs::net::tcp()),
        (SocketKind::Tcp6, procfs::net::tcp6()),
    ] {
        match table {
            Ok(entries) => sockets.extend(
                entries
                    .into_iter()
                    .filter(|e| e.state == TcpState::Listen)
                    .map(|e| Listener {
                        kind,
                        ip: Some(e.local_address.ip()),
                        port: Some(e.local_address.port()),
                        path: None,
                        inode: e.inode,
                        uid: Some(e.uid),
                        processes: Vec::new(),
                    }),
            ),
            Err(e) => skipped.push(Skipped::new(
                format!("listeners ({kind:?})").to_lowercase(),
                format!("read /proc/net table: {e}"),
            )),
        }
    }
    match procfs::net::unix() {
        Ok(entries) => sockets.extend(
            entries
                .into_iter()
                .filter(|e| e.state == UnixState::UNCONNECTED && e.path.is_some())
                .map(|e| Listener {
                    kind: SocketKind::Unix,
                    ip: None,
                    port: None,
                    path: e.path.map(|p| p.display().to_string()),
                    inode: e.inode,
                    uid: None,
                    processes: Vec::new(),
                }),
        ),
        Err(e) => skipped.push(Skipped::new(
            "listeners (unix)",
            format!("read /proc/net/unix: {e}"),
        )),
    }

    let mut by_inode: HashMap<u64, usize> = HashMap::new();
    for (i, l) in sockets.iter().enumerate() {
        by_inode.insert(l.inode, i);
    }
    let mut denied_pids = Vec::new();
    let procs = match procfs::process::all_processes() {
        Ok(p) => p,
        Err(e) => {
            skipped.push(Skipped::new(
                "listener processes",
                format!("list /proc: {e}"),
            ));
            return Listeners {
                sockets,
                denied_pids,
            };
        }
    };
    for proc in procs.flatten() {
        let fds = match proc.fd() {
            Ok(fds) => fds,
            Err(ProcError::PermissionDenied(_)) => {
                denied_pids.push(proc.pid as u32);
                continue;
            }
            // Gone since the listing, or a kernel thread: nothing to join.
            Err(_) => continue,
        };
        let mut info: Option<ProcessInfo> = None;
        for fd in fds {
            let fd = match fd {
                Ok(fd) => fd,
                Err(ProcError::PermissionDenied(_)) => {
                    denied_pids.push(proc.pid as u32);
                    break;
                }
                Err(_) => continue,
            };
            let FDTarget::Socket(inode) = fd.target else {
                continue;
            };
            let Some(&i) = by_inode.get(&inode) else {
                continue;
            };
            let info = info.get_or_insert_with(|| process_info(&proc));
            if !sockets[i].processes.iter().any(|p| p.pid == info.pid) {
                sockets[i].processes.push(info.clone());
            }
        }
    }
    denied_pids.sort_unstable();
    denied_pids.dedup();
    if !denied_pids.is_empty() {
        skipped.push(Skipped::new(
            "listener processes",
            format!(
                "{} processes of other users could not be inspected (/proc/PID/fd denied): their \
                 sockets show no process; run as root to see other users' processes",
                denied_pids.len()
            ),
        ));
    }
    Listeners {
        sockets,
        denied_pids,
    }
}

fn process_info(proc: &procfs::process::Process) -> ProcessInfo {
    let pid = proc.pid as u32;
    let stat = proc.stat().ok();
    let start_time = stat.as_ref().and_then(start_time);
    let program = stat.map(|s| s.comm).unwrap_or_default();
    let cmdline = proc.cmdline().map(|c| c.join(" ")).unwrap_or_default();
    let uid = proc.uid().ok();
    let cgroup = fs::read_to_string(format!("/proc/{pid}/cgroup")).unwrap_or_default();
    let (unit, container) = parse_cgroup(&cgroup);
    ProcessInfo {
        pid,
        program,
        cmdline,
        uid,
        unit,
        container,
        start_time,
    }
}

/// The process's start on the local wall clock (nginx's log times are local too): boot time
/// plus `starttime` clock ticks.
fn start_time(stat: &procfs::process::Stat) -> Option<String> {
    let boot = boot_time().or_else(|| procfs::boot_time_secs().ok().map(|b| b as f64))?;
    let tps = procfs::ticks_per_second();
    let secs = boot + stat.starttime as f64 / tps as f64;
    let utc = chrono::DateTime::from_timestamp(secs.floor() as i64, 0)?;
    Some(
        utc.with_timezone(&chrono::Local)
            .naive_local()
            .format("%Y-%m-%dT%H:%M:%S")
            .to_string(),
    )
}

/// When the machine booted, to the hundredth of a second: now minus `/proc/uptime`. The
/// kernel's `btime` (`/proc/stat`) is truncated to whole seconds, which put process starts up
/// to a second early: a backend restarted after nginx's first refusal looked as if it had
/// started in the refusal's second (`backend-starting` cannot tell that tie).
fn boot_time() -> Option<f64> {
    let uptime: f64 = std::fs::read_to_string("/proc/uptime")
        .ok()?
        .split_whitespace()
        .next()?
        .parse()
        .ok()?;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .ok()?
        .as_secs_f64();
    Some(now - uptime)
}

/// The systemd unit and the container named by `/proc/PID/cgroup`.
///
/// cgroup v2 has one line `0::/system.slice/php8.2-fpm.service`; v1 has one line per hierarchy
/// (the `name=systemd` one carries the unit). Containers show as
/// `/system.slice/docker-<id>.scope`, `/docker/<id>`, `/kubepods/.../<id>`,
/// `/machine.slice/libpod-<id>.scope`.
pub fn parse_cgroup(text: &str) -> (Option<String>, Option<String>) {
    let mut unit = None;
    let mut container = None;
    for line in text.lines() {
        let mut parts = line.splitn(3, ':');
        let (Some(_), Some(ctrl), Some(path)) = (parts.next(), parts.next(), parts.next()) else {
            continue;
        };
        if !(ctrl.is_empty() || ctrl == "name=systemd") {
            continue;
        }
        let segments: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
        for (i, seg) in segments.iter().enumerate() {
            for (prefix, engine) in [
                ("docker-", "docker"),
                ("libpod-", "podman"),
                ("cri-containerd-", "containerd"),
                ("crio-", "cri-o"),
            ] {
                if let Some(id) = seg
                    .strip_prefix(prefix)
                    .and_then(|s| s.strip_suffix(".scope"))
                {
                    container = Some(format!("{engine}:{}", short_id(id)));
                }
            }
            if (*seg == "docker" || seg.starts_with("kubepods")) && i + 1 < segments.len() {
                let engine = if *seg == "docker" {
                    "docker"
                } else {
                    "kubernetes"
                };
                let id = segments.last().copied().unwrap_or_default();
                container = Some(format!("{engine}:{}", short_id(id)));
            }
        }
        if let Some(u) = segments
            .iter()
            .rev()
            .find(|s| s.ends_with(".service") || s.ends_with(".scope"))
        {
            // A container's scope is not a unit anyone restarts; a service is.
            if container.is_none() || u.ends_with(".service") {
                unit = Some((*u).to_string());
            }
        }
    }
    (unit, container)
}

fn short_id(id: &str) -> &str {
    let id = id.rsplit('-').next().unwrap_or(id);
    let id = id.strip_suffix(".scope").unwrap_or(id);
    &id[..id.len().min(12)]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cgroups() {
        assert_eq!(
            parse_cgroup("0::/system.slice/php8.2-fpm.service\n"),
            (Some("php8.2-fpm.service".into()), None)
        );
        assert_eq!(
            parse_cgroup("0::/system.slice/docker-0123456789abcdef0123.scope\n"),
            (None, Some("docker:0123456789ab".into()))
        );
        assert_eq!(
            parse_cgroup(
                "12:pids:/x\n1:name=systemd:/user.slice/user-1000.slice/session-2.scope\n"
            ),
            (Some("session-2.scope".into()), None)
        );
        assert_eq!(parse_cgroup("0::/\n"), (None, None));
    }

    #[test]
    fn sees_own_listener() {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = l.local_addr().unwrap().port();
        let mut skipped = Vec::new();
        let all = gather(&mut skipped);
        let found = all
            .tcp("127.0.0.1".parse().unwrap(), port)
            .expect("our listener");
        assert!(found.processes.iter().any(|p| p.pid == std::process::id()));
    }
}
