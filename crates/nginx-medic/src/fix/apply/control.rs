//! Controlling and watching the running nginx and the backends: `nginx -t`, reloads, restarts,
//! the master's liveness, its worker generation, and what its error logs said since an offset.
//!
//! Every program runs through [`crate::exec::run`] with a timeout: a `systemctl` stuck behind a
//! hung unit must not hang the fix halfway (the journal then says it timed out).

use std::ffi::OsString;
use std::fs;
use std::io::{Read, Seek, SeekFrom};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use super::{Action, NginxCtl};

/// How long any one program may run.
pub(crate) const TIMEOUT: Duration = Duration::from_secs(10);

/// `-p P -c C [-e E]`: the same paths the running nginx was started with.
pub(crate) fn nginx_paths(ctl: &NginxCtl) -> Vec<OsString> {
    let mut a: Vec<OsString> = Vec::new();
    if let Some(p) = &ctl.prefix {
        // nginx appends relative paths to the prefix as it is: it must end with a slash.
        let mut s = p.clone().into_os_string();
        if !s.to_string_lossy().ends_with('/') {
            s.push("/");
        }
        a.extend(["-p".into(), s]);
    }
    a.extend(["-c".into(), ctl.conf.clone().into_os_string()]);
    if let Some(e) = &ctl.startup_error_log {
        a.extend(["-e".into(), e.clone().into_os_string()]);
    }
    a
}

/// Runs a command, `Ok(output text)` when it exits 0, `Err(what it said)` otherwise.
pub(crate) fn run(cmd: &mut Command, what: &str) -> Result<String, String> {
    match crate::exec::run(cmd, TIMEOUT) {
        Ok(out) => {
            let mut text = String::from_utf8_lossy(&out.stderr).into_owned();
            text.push_str(&String::from_utf8_lossy(&out.stdout));
            let text = text.trim().to_string();
            if out.status.success() {
                Ok(text)
            } else {
                Err(format!("{what}: {} {text}", out.status))
            }
        }
        Err(e) if e.kind() == std::io::ErrorKind::TimedOut => Err(format!(
            "{what}: timed out after {} s: {e}",
            TIMEOUT.as_secs()
        )),
        Err(e) => Err(format!("{what}: {e}")),
    }
}

/// `nginx -t -p P -c C` on the files as they are on disk.
pub(crate) fn test_on_disk(ctl: &NginxCtl) -> Result<String, String> {
    run(
        Command::new(&ctl.binary).arg("-t").args(nginx_paths(ctl)),
        &format!("{} -t", ctl.binary.display()),
    )
}

/// The reload command: `systemctl reload UNIT` when a unit runs nginx (so systemd's idea of
/// the service stays right), else `nginx -s reload -p P -c C`.
pub(crate) fn reload_argv(ctl: &NginxCtl) -> Vec<OsString> {
    match &ctl.unit {
        Some(u) => vec!["systemctl".into(), "reload".into(), u.into()],
        None => {
            let mut a: Vec<OsString> = vec![ctl.binary.clone().into_os_string(), "-s".into()];
            a.push("reload".into());
            a.extend(nginx_paths(ctl));
            a
        }
    }
}

pub(crate) fn reload(ctl: &NginxCtl) -> Result<String, String> {
    let argv = reload_argv(ctl);
    let line = argv
        .iter()
        .map(|a| a.to_string_lossy())
        .collect::<Vec<_>>()
        .join(" ");
    run(Command::new(&argv[0]).args(&argv[1..]), &line).map(|out| {
        if out.is_empty() {
            line
        } else {
            format!("{line}: {out}")
        }
    })
}

/// The master's PID from the pid file.
pub(crate) fn master_pid(pid_file: &Path) -> Result<i32, String> {
    let text = fs::read_to_string(pid_file)
        .map_err(|e| format!("read the pid file {}: {e}", pid_file.display()))?;
    text.trim()
        .parse()
        .map_err(|_| format!("the pid file {} holds {text:?}", pid_file.display()))
}

/// Whether `pid` runs: a zombie (exited, not yet reaped by its parent) does not.
pub(crate) fn alive(pid: i32) -> bool {
    procfs::process::Process::new(pid)
        .and_then(|p| p.stat())
        .is_ok_and(|s| !matches!(s.state, 'Z' | 'X' | 'x'))
}

/// The master's children: (PID, start time in clock ticks since boot). A reload that took
/// replaces every one of them; the start time tells a recycled PID from the same process.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct Generation(pub Vec<(i32, u64)>);

impl Generation {
    pub fn of(master: i32) -> Result<Generation, String> {
        let all = procfs::process::all_processes().map_err(|e| format!("list /proc: {e}"))?;
        let mut kids: Vec<(i32, u64)> = all
            .filter_map(|p| p.ok()?.stat().ok())
            .filter(|s| s.ppid == master && !matches!(s.state, 'Z' | 'X' | 'x'))
            .map(|s| (s.pid, s.starttime))
            .collect();
        kids.sort_unstable();
        Ok(Generation(kids))
    }

    /// Whether `now` holds a child that was not in `self` (a worker of the new configuration)
    /// and every child of `self` is gone or retiring. nginx starts the new workers before it
    /// tells the old ones to quit, and an old worker accepts until it has been told: a request
    /// in that instant is served by the old configuration, so the new one has not taken over.
    pub fn renewed_in(&self, now: &Generation) -> bool {
        now.0.iter().any(|c| !self.0.contains(c))
            && self
                .0
                .iter()
                .filter(|c| now.0.contains(c))
                .all(|(pid, _)| retiring(*pid))
    }

    pub fn pids(&self) -> String {
        self.0
            .iter()
            .map(|(p, _)| p.to_string())
            .collect::<Vec<_>>()
            .join(",")
    }
}

/// Whether a worker has been told to quit: nginx renames it `worker process is shutting down`
/// (`ngx_worker_process_cycle()`, `ngx_setproctitle`) and it accepts no new connection. A
/// process that is gone counts too.
fn retiring(pid: i32) -> bool {
    match fs::read(format!("/proc/{pid}/cmdline")) {
        Ok(title) => title.windows(13).any(|w| w == b"shutting down") || title.is_empty(),
        Err(_) => true,
    }
}

/// The current size of each error log (a missing one counts as empty: nginx creates it).
pub(crate) fn offsets(logs: &[PathBuf]) -> Vec<(PathBuf, u64)> {
    logs.iter()
        .map(|l| (l.clone(), fs::metadata(l).map(|m| m.len()).unwrap_or(0)))
        .collect()
}

/// The `[emerg]`, `[alert]` and `[crit]` lines written since the offsets: a reload that failed
/// (bind(), a missing certificate) says so at `emerg`; a worker that crashed at `alert`
/// (ngx_process.c, "worker process N exited on signal"). A log shorter than its offset was
/// rotated; it is read from its start.
pub(crate) fn severe_since(offsets: &[(PathBuf, u64)]) -> Vec<String> {
    let mut found = Vec::new();
    for (path, off) in offsets {
        let Ok(mut f) = fs::File::open(path) else {
            continue;
        };
        let len = f.metadata().map(|m| m.len()).unwrap_or(0);
        let start = if len < *off { 0 } else { *off };
        let mut buf = Vec::new();
        if f.seek(SeekFrom::Start(start)).is_err() || f.read_to_end(&mut buf).is_err() {
            found.push(format!("could not read {}", path.display()));
            continue;
        }
        for line in buf.split(|&b| b == b'\n') {
            if [&b"[emerg]"[..], b"[alert]", b"[crit]"]
                .iter()
                .any(|lvl| memchr::memmem::find(line, lvl).is_some())
            {
                found.push(String::from_utf8_lossy(line).into_owned());
            }
        }
    }
    found
}

/// Runs a restart action.
pub(crate) fn restart(action: &Action) -> Result<String, String> {
    match action {
        Action::RestartUnit { unit } => run(
            Command::new("systemctl").args(["restart", unit]),
            &format!("systemctl restart {unit}"),
        ),
        Action::RestartPm2 { app, user, home } => {
            let mut cmd = Command::new("pm2");
            cmd.args(["restart", app]);
            // The daemon the diagnosis found, not whichever PM2_HOME our caller has.
            cmd.env_remove("PM2_HOME");
            if let Some(h) = home {
                cmd.env("PM2_HOME", h);
            }
            if let Some((uid, gid)) = *user {
                // pm2 keeps its process list under the user's ~/.pm2: run as that user, with
                // that user's HOME, or we would talk to root's (empty) pm2 daemon.
                cmd.uid(uid).gid(gid);
                match nix::unistd::User::from_uid(nix::unistd::Uid::from_raw(uid)) {
                    Ok(Some(u)) => {
                        cmd.env("HOME", &u.dir);
                    }
                    Ok(None) => return Err(format!("pm2 user {uid}: no such user")),
                    Err(e) => return Err(format!("look up pm2 user {uid}: {e}")),
                }
            }
            run(&mut cmd, &format!("pm2 restart {app}"))
        }
    }
}

/// What systemd says about a unit, for the journal of a failed restart.
pub(crate) fn unit_state(unit: &str) -> String {
    match run(
        Command::new("systemctl").args([
            "show",
            "--property=ActiveState,SubState,Result,ExecMainStatus",
            unit,
        ]),
        &format!("systemctl show {unit}"),
    ) {
        Ok(s) => s.replace('\n', " "),
        Err(e) => e,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generation_renewal() {
        let old = Generation(vec![(10, 100), (11, 100)]);
        assert!(!old.renewed_in(&Generation(vec![(10, 100)])));
        assert!(old.renewed_in(&Generation(vec![(10, 100), (12, 200)])));
        // The same PID with another start time is another process.
        assert!(old.renewed_in(&Generation(vec![(10, 300)])));
    }

    #[test]
    fn severe_lines_after_offset_only() {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("error.log");
        fs::write(&log, "2026/01/01 00:00:00 [emerg] 1#1: old\n").unwrap();
        let off = offsets(std::slice::from_ref(&log));
        let mut text = fs::read_to_string(&log).unwrap();
        text.push_str("2026/01/01 00:00:01 [notice] 1#1: signal process started\n");
        text.push_str("2026/01/01 00:00:01 [emerg] 1#1: bind() to 127.0.0.1:1 failed\n");
        fs::write(&log, text).unwrap();
        let lines = severe_since(&off);
        assert_eq!(lines.len(), 1, "{lines:?}");
        assert!(lines[0].contains("bind()"));
    }

    #[test]
    fn zombie_or_missing_is_not_alive() {
        assert!(alive(std::process::id() as i32));
        assert!(!alive(i32::MAX));
    }
}
