//! The apply engine of `fix --apply`: it changes config files and reloads nginx, or restarts a
//! backend, and leaves the host as it found it when the fix does not verify.
//!
//! The order is the safety argument, each step journaled ([`Journal`]):
//!
//! 1. **lock**: one fix at a time ([`ApplyOptions::lock_path`]);
//! 2. **precheck**, before touching anything: the files still hold what the plan was computed
//!    from, their directories are writable, the backup cannot be loaded by an `include`, the
//!    master runs, and the config on disk passes `nginx -t` (else we could not tell our breakage
//!    from the one already there);
//! 3. **backup** of every file, with `manifest.json` and `RESTORE.txt`;
//! 4. **stage-test**: `nginx -t` of the new tree, the new files bind-mounted over the old ones in
//!    a private mount namespace ([`stage`]): a fix nginx rejects is never written;
//! 5. the worker generation and the error logs' sizes are noted;
//! 6. **write**, each file atomically;
//! 7. **reload**;
//! 8. **verify**: a new worker generation, no `[emerg]`/`[alert]`/`[crit]` since the offsets, the
//!    caller's [`Check`]; then the restart actions and the check again;
//! 9. **rollback** when verification fails: restore, reload only if the new config was taken,
//!    verify again. If that fails, the backup and the commands to restore by hand are printed.

mod backup;
mod control;
mod fsio;
mod lock;
pub mod stage;

use std::fs;
use std::io::Write;
use std::path::{Component, Path, PathBuf};
use std::time::{Duration, Instant};

use control::Generation;

use super::journal::Journal;

/// Where `fix --apply` takes its lock unless told otherwise.
pub const DEFAULT_LOCK_PATH: &str = "/run/nginx-medic/fix.lock";

/// Test seam: milliseconds to sleep just before the master's liveness check that precedes the
/// reload, so a test can kill nginx at exactly that point. Not for production use.
pub const PAUSE_BEFORE_RELOAD_ENV: &str = "NGINX_MEDIC_FIX_PAUSE_BEFORE_RELOAD_MS";

/// How often the verification polls the workers, the logs and the [`Check`].
const POLL: Duration = Duration::from_millis(200);

/// How long a reload that logged an error may still be in progress: nginx retries a failed
/// `bind()` 5 times, 500 ms apart, before it gives the reload up (ngx_connection.c,
/// `ngx_open_listening_sockets`), and a retry that succeeds means the new config was taken.
const RELOAD_SETTLE: Duration = Duration::from_secs(3);

/// The backup directory for a fix started now: `/var/lib/nginx-medic/backups/<UTC time>/`.
pub fn default_backup_dir() -> PathBuf {
    PathBuf::from("/var/lib/nginx-medic/backups")
        .join(chrono::Utc::now().format("%Y%m%dT%H%M%S%.3fZ").to_string())
}

/// One file to rewrite: what the plan read, and what it should hold.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FileChange {
    /// Absolute.
    pub path: PathBuf,
    pub before: Vec<u8>,
    pub after: Vec<u8>,
}

/// A restart after the files (if any) are in place and nginx verified.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Action {
    /// `systemctl restart UNIT`.
    RestartUnit { unit: String },
    /// `pm2 restart APP`, as (uid, gid) when given (pm2's process list is per user).
    RestartPm2 {
        app: String,
        user: Option<(u32, u32)>,
        /// The daemon's `PM2_HOME`, when it is not the user's `~/.pm2`.
        home: Option<String>,
    },
}

/// What to do.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Plan {
    pub changes: Vec<FileChange>,
    /// Reload nginx once the files are written.
    pub reload: bool,
    pub actions: Vec<Action>,
}

/// How to control the running nginx.
#[derive(Clone, Debug)]
pub struct NginxCtl {
    pub binary: PathBuf,
    /// `-p`, when the running nginx was started with one.
    pub prefix: Option<PathBuf>,
    /// `-c`.
    pub conf: PathBuf,
    /// `-e`, when the running nginx was started with one: `nginx -t` then opens the same
    /// startup log instead of the compiled-in default.
    pub startup_error_log: Option<PathBuf>,
    pub pid_file: PathBuf,
    /// The error logs the config writes (where a failed reload says why).
    pub error_logs: Vec<PathBuf>,
    /// The systemd unit that runs it, when known: reload with `systemctl reload UNIT`, else
    /// `nginx -s reload -p P -c C`.
    pub unit: Option<String>,
    /// Absolute include patterns of the config (to keep backups out of them).
    pub include_patterns: Vec<String>,
}

/// Where and how long.
#[derive(Clone, Debug)]
pub struct ApplyOptions {
    /// Must not exist yet; the caller picks it ([`default_backup_dir`]).
    pub backup_dir: PathBuf,
    /// How long a reload or restart has to show it worked.
    pub verify: Duration,
    /// [`DEFAULT_LOCK_PATH`] unless told otherwise.
    pub lock_path: PathBuf,
    /// The nginx-medic binary that runs the staged test (`stage-test`); `None`: this process's
    /// own executable. A library caller that is not nginx-medic (a test) names the binary.
    pub stage_exe: Option<PathBuf>,
}

/// The caller's health check of the fixed targets (probes; new failure lines of the fixed class
/// since the offsets). Called repeatedly (every ~200 ms) after the reload / restart until Ok or
/// the verify deadline. `Ok` holds what it saw (for the journal), `Err` why it is not healthy.
pub trait Check {
    fn check(&mut self, since: &[(PathBuf, u64)]) -> Result<Vec<String>, String>;
}

/// How a run ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Written, reloaded / restarted, verified.
    Applied,
    /// The plan changes nothing.
    NothingToDo,
    /// Written, did not verify, restored and verified as before.
    RolledBack,
    /// nginx rejected the staged config: nothing was written.
    NotWritten,
    /// Refused before touching anything (or the backup could not be taken).
    CouldNotRun(String),
    /// A restart failed or did not cure; restarts cannot be rolled back (the config changes
    /// stay, verified).
    ActionFailed,
    /// The rollback itself failed: the backup and the commands were printed.
    RollbackFailed,
}

impl Outcome {
    pub fn exit_code(&self) -> u8 {
        match self {
            Outcome::Applied | Outcome::NothingToDo => 0,
            Outcome::RolledBack | Outcome::NotWritten | Outcome::ActionFailed => 1,
            Outcome::CouldNotRun(_) => 2,
            Outcome::RollbackFailed => 4,
        }
    }
}

/// Applies `plan` (see the module doc for the steps).
pub fn apply(
    plan: &Plan,
    ctl: &NginxCtl,
    opts: &ApplyOptions,
    check: &mut dyn Check,
    journal: &mut Journal,
) -> Outcome {
    let changes: Vec<FileChange> = plan
        .changes
        .iter()
        .filter(|c| c.before != c.after)
        .cloned()
        .collect();
    if changes.is_empty() && !plan.reload && plan.actions.is_empty() {
        journal.record("plan", true, "nothing to change");
        return Outcome::NothingToDo;
    }
    let _lock = match lock::take(&opts.lock_path) {
        Ok(f) => {
            journal.record("lock", true, opts.lock_path.display().to_string());
            f
        }
        Err(e) => {
            journal.record("lock", false, &e);
            return Outcome::CouldNotRun(e);
        }
    };
    let master = match precheck(&changes, plan.reload, ctl, opts) {
        Ok((master, summary)) => {
            journal.record("precheck", true, summary);
            master
        }
        Err(e) => {
            journal.record("precheck", false, &e);
            return Outcome::CouldNotRun(e);
        }
    };
    let reload_line: Vec<String> = control::reload_argv(ctl)
        .iter()
        .map(|a| a.to_string_lossy().into_owned())
        .collect();
    let entries = if changes.is_empty() {
        Vec::new()
    } else {
        match backup::make(&opts.backup_dir, &changes, &reload_line) {
            Ok(e) => {
                journal.record(
                    "backup",
                    true,
                    format!("{} file(s) in {}", e.len(), opts.backup_dir.display()),
                );
                e
            }
            Err(e) => {
                journal.record("backup", false, &e);
                return Outcome::CouldNotRun(format!("backup: {e}"));
            }
        }
    };
    if !changes.is_empty() {
        if let Some(outcome) = staged_test(&changes, ctl, opts, journal) {
            return outcome;
        }
    }
    let mut rb = Rollback {
        ctl,
        opts,
        changes: &changes,
        entries: &entries,
        reload_sent: None,
    };
    let watch = match master.map(Generation::of).transpose() {
        Ok(gen) => (gen, control::offsets(&ctl.error_logs)),
        Err(e) => {
            journal.record("generation", false, &e);
            return discard(opts, journal, Outcome::CouldNotRun(e));
        }
    };
    for (c, e) in changes.iter().zip(&entries) {
        if let Err(err) = fsio::replace(&c.path, &c.after, &e.attrs, None) {
            journal.record("write", false, format!("{}: {err}", c.path.display()));
            return rb.run(journal, "a file could not be written");
        }
        journal.record("write", true, c.path.display().to_string());
    }
    if let (Some(master), (Some(gen0), offsets0)) = (master, watch) {
        pause_for_tests();
        if !control::alive(master) {
            journal.record(
                "reload",
                false,
                format!("the nginx master (PID {master}) is gone: not reloading"),
            );
            return rb.run(journal, "the nginx master exited before the reload");
        }
        rb.reload_sent = Some((master, gen0.clone()));
        match control::reload(ctl) {
            Ok(d) => journal.record("reload", true, d),
            Err(e) => {
                journal.record("reload", false, &e);
                return rb.run(journal, "the reload failed");
            }
        }
        let deadline = Instant::now() + opts.verify;
        match verify_reload(master, &gen0, &offsets0, deadline, Some(&mut *check)) {
            Ok(d) => journal.record("verify", true, d),
            Err(e) => {
                journal.record("verify", false, &e);
                return rb.run(journal, "the reload did not verify");
            }
        }
    } else if !changes.is_empty() && plan.actions.is_empty() {
        // Files nginx does not read (or no reload asked): the check alone tells.
        let offsets = control::offsets(&ctl.error_logs);
        match check_until(check, &offsets, Instant::now() + opts.verify) {
            Ok(d) => journal.record("verify", true, d),
            Err(e) => {
                journal.record("verify", false, &e);
                return rb.run(journal, "the check failed");
            }
        }
    }
    if !plan.actions.is_empty() {
        let offsets = control::offsets(&ctl.error_logs);
        for a in &plan.actions {
            match control::restart(a) {
                Ok(d) => journal.record("restart", true, format!("{}: {d}", describe(a))),
                Err(e) => {
                    journal.record("restart", false, format!("{e}; {}", state_of(a)));
                    return Outcome::ActionFailed;
                }
            }
        }
        match check_until(check, &offsets, Instant::now() + opts.verify) {
            Ok(d) => journal.record("verify", true, d),
            Err(e) => {
                let states: Vec<String> = plan.actions.iter().map(state_of).collect();
                journal.record(
                    "verify",
                    false,
                    format!(
                        "{e}; {} (a restart cannot be rolled back)",
                        states.join("; ")
                    ),
                );
                return Outcome::ActionFailed;
            }
        }
    }
    Outcome::Applied
}

fn describe(a: &Action) -> String {
    match a {
        Action::RestartUnit { unit } => format!("systemctl restart {unit}"),
        Action::RestartPm2 { app, .. } => format!("pm2 restart {app}"),
    }
}

fn state_of(a: &Action) -> String {
    match a {
        Action::RestartUnit { unit } => format!("{unit}: {}", control::unit_state(unit)),
        Action::RestartPm2 { app, .. } => format!("pm2 app {app}"),
    }
}

fn pause_for_tests() {
    if let Some(ms) = std::env::var(PAUSE_BEFORE_RELOAD_ENV)
        .ok()
        .and_then(|v| v.parse::<u64>().ok())
    {
        std::thread::sleep(Duration::from_millis(ms));
    }
}

/// Step 2. Returns the master's PID (when reloading) and what was checked.
fn precheck(
    changes: &[FileChange],
    reload: bool,
    ctl: &NginxCtl,
    opts: &ApplyOptions,
) -> Result<(Option<i32>, String), String> {
    let mut dirs: Vec<&Path> = Vec::new();
    for c in changes {
        if !c.path.is_absolute() {
            return Err(format!("{} is not an absolute path", c.path.display()));
        }
        let now = fs::read(&c.path).map_err(|e| format!("read {}: {e}", c.path.display()))?;
        if now != c.before {
            return Err(format!(
                "{} changed since the plan was made (sha256 {} now, {} planned): plan again",
                c.path.display(),
                backup::sha256_hex(&now),
                backup::sha256_hex(&c.before)
            ));
        }
        let dir = c.path.parent().unwrap_or(Path::new("/"));
        if !dirs.contains(&dir) {
            dirs.push(dir);
        }
    }
    for dir in &dirs {
        fsio::probe_writable(dir).map_err(|e| format!("cannot write in {}: {e}", dir.display()))?;
    }
    if let Some(p) = backup_loaded_by(&opts.backup_dir, &ctl.include_patterns) {
        return Err(format!(
            "the backup directory {} is inside the directory of `include {p}`: nginx could load \
             the backups; choose another one",
            opts.backup_dir.display()
        ));
    }
    let master = if reload {
        let pid = control::master_pid(&ctl.pid_file)?;
        if !control::alive(pid) {
            return Err(format!(
                "the nginx master {pid} named by {} is not running",
                ctl.pid_file.display()
            ));
        }
        Some(pid)
    } else {
        None
    };
    control::test_on_disk(ctl).map_err(|e| {
        format!(
            "the configuration on disk already fails nginx -t, so a failure after the fix could \
             not be told from it; fix that first: {e}"
        )
    })?;
    let mut summary = format!(
        "{} file(s) as planned, writable; backup outside the includes; nginx -t passes",
        changes.len()
    );
    if let Some(pid) = master {
        summary.push_str(&format!("; master {pid} runs"));
    }
    Ok((master, summary))
}

/// The include pattern whose directory holds `backup_dir`, if any. nginx-doctor's mistake was a
/// backup in `sites-enabled/`, loaded by `include sites-enabled/*` on the next reload. We refuse
/// the whole directory a glob reads from (not only what the glob would match today: a later
/// `include sites-enabled/*` would).
fn backup_loaded_by(backup_dir: &Path, patterns: &[String]) -> Option<String> {
    let backup = resolve(backup_dir);
    patterns.iter().find_map(|p| {
        let pattern = Path::new(p);
        let mut base = PathBuf::new();
        let mut glob = false;
        for c in pattern.components() {
            if let Component::Normal(s) = c {
                if s.to_string_lossy().contains(['*', '?', '[']) {
                    glob = true;
                    break;
                }
            }
            base.push(c);
        }
        let base = resolve(&base);
        let hit = if glob {
            backup.starts_with(&base)
        } else {
            // A literal include loads one file: only a backup directory holding it matters.
            base.starts_with(&backup)
        };
        hit.then(|| p.clone())
    })
}

/// `path` made absolute with symlinks resolved as far as it exists (the backup directory does
/// not exist yet; `/etc/nginx` may be a link).
fn resolve(path: &Path) -> PathBuf {
    let abs = if path.is_absolute() {
        path.to_path_buf()
    } else {
        std::env::current_dir().unwrap_or_default().join(path)
    };
    let mut existing = abs.as_path();
    let mut rest = Vec::new();
    loop {
        if let Ok(c) = existing.canonicalize() {
            let mut out = c;
            out.extend(rest.iter().rev());
            return out;
        }
        match (existing.parent(), existing.file_name()) {
            (Some(parent), Some(name)) => {
                rest.push(name.to_os_string());
                existing = parent;
            }
            _ => return abs,
        }
    }
}

/// Step 4: `None` when the staged tree passed, else the outcome (nothing written).
fn staged_test(
    changes: &[FileChange],
    ctl: &NginxCtl,
    opts: &ApplyOptions,
    journal: &mut Journal,
) -> Option<Outcome> {
    let exe = match &opts.stage_exe {
        Some(p) => p.clone(),
        None => match std::env::current_exe() {
            Ok(p) => p,
            Err(e) => {
                let e = format!("find our own executable for the staged test: {e}");
                journal.record("stage-test", false, &e);
                return Some(discard(opts, journal, Outcome::CouldNotRun(e)));
            }
        },
    };
    match stage::test(ctl, changes, &exe) {
        Ok(out) => {
            journal.record("stage-test", true, out);
            None
        }
        Err(e) => {
            journal.record("stage-test", false, e);
            let untouched: Vec<String> = changes
                .iter()
                .filter(|c| fs::read(&c.path).ok().as_deref() != Some(&c.before[..]))
                .map(|c| c.path.display().to_string())
                .collect();
            if untouched.is_empty() {
                journal.record("not-written", true, "the files on disk are unchanged");
            } else {
                journal.record(
                    "not-written",
                    false,
                    format!(
                        "changed meanwhile by someone else: {}",
                        untouched.join(", ")
                    ),
                );
            }
            Some(discard(opts, journal, Outcome::NotWritten))
        }
    }
}

/// Removes the backup of a fix that was never written: it would only mislead.
fn discard(opts: &ApplyOptions, journal: &mut Journal, outcome: Outcome) -> Outcome {
    if !opts.backup_dir.exists() {
        return outcome;
    }
    match fs::remove_dir_all(&opts.backup_dir) {
        Ok(()) => journal.record(
            "backup",
            true,
            format!(
                "removed {} (nothing was written)",
                opts.backup_dir.display()
            ),
        ),
        Err(e) => journal.record(
            "backup",
            false,
            format!("remove {}: {e}", opts.backup_dir.display()),
        ),
    }
    outcome
}

/// Step 8 for a reload: waits for a new worker generation, watching the logs for
/// `[emerg]`/`[alert]`/`[crit]` and the master's death, then for `check` (if any) to pass.
fn verify_reload(
    master: i32,
    gen0: &Generation,
    offsets: &[(PathBuf, u64)],
    deadline: Instant,
    mut check: Option<&mut dyn Check>,
) -> Result<String, String> {
    let started = Instant::now();
    let mut waiting = String::from("no new worker generation");
    loop {
        let severe = control::severe_since(offsets);
        if !severe.is_empty() {
            return Err(format!("nginx logged: {}", severe.join(" | ")));
        }
        if !control::alive(master) {
            return Err(format!("the nginx master {master} exited"));
        }
        let now = Generation::of(master)?;
        if gen0.renewed_in(&now) {
            let gen = format!("new worker generation {} (was {})", now.pids(), gen0.pids());
            match check.as_mut() {
                None => return Ok(gen),
                Some(c) => match c.check(offsets) {
                    Ok(seen) => return Ok(format!("{gen}; check passed: {}", seen.join("; "))),
                    Err(e) => waiting = format!("{gen}, but the check fails: {e}"),
                },
            }
        }
        if Instant::now() >= deadline {
            return Err(format!(
                "{waiting} after {:.1} s",
                started.elapsed().as_secs_f64()
            ));
        }
        std::thread::sleep(POLL);
    }
}

/// The check alone, until it passes or the deadline.
fn check_until(
    check: &mut dyn Check,
    offsets: &[(PathBuf, u64)],
    deadline: Instant,
) -> Result<String, String> {
    let started = Instant::now();
    loop {
        match check.check(offsets) {
            Ok(seen) => return Ok(format!("check passed: {}", seen.join("; "))),
            Err(e) if Instant::now() >= deadline => {
                return Err(format!(
                    "the check still fails after {:.1} s: {e}",
                    started.elapsed().as_secs_f64()
                ))
            }
            Err(_) => std::thread::sleep(POLL),
        }
    }
}

/// Step 9: what is needed to undo a written fix.
struct Rollback<'a> {
    ctl: &'a NginxCtl,
    opts: &'a ApplyOptions,
    changes: &'a [FileChange],
    entries: &'a [backup::Entry],
    /// Set once a reload was attempted: the master and its generation before it.
    reload_sent: Option<(i32, Generation)>,
}

impl Rollback<'_> {
    fn run(&self, journal: &mut Journal, why: &str) -> Outcome {
        journal.record("rollback", true, format!("starting: {why}"));
        let mut failed: Vec<String> = Vec::new();
        for (c, e) in self.changes.iter().zip(self.entries) {
            match backup::restore(e, &c.before) {
                Ok(()) => journal.record("restore", true, c.path.display().to_string()),
                Err(err) => {
                    journal.record("restore", false, &err);
                    failed.push(err);
                }
            }
        }
        if let Some((master, gen0)) = &self.reload_sent {
            if let Err(e) = self.undo_reload(*master, gen0, journal) {
                failed.push(e);
            }
        }
        for c in self.changes {
            if fs::read(&c.path).ok().as_deref() != Some(&c.before[..]) {
                failed.push(format!(
                    "{} does not hold its original bytes",
                    c.path.display()
                ));
            }
        }
        match control::test_on_disk(self.ctl) {
            Ok(_) => journal.record("rollback-test", true, "nginx -t passes on disk"),
            Err(e) => {
                journal.record("rollback-test", false, &e);
                failed.push(e);
            }
        }
        if failed.is_empty() {
            journal.record("rollback", true, "the original files are back and verified");
            Outcome::RolledBack
        } else {
            journal.record("rollback", false, failed.join("; "));
            self.shout(&failed);
            Outcome::RollbackFailed
        }
    }

    /// Reloads the restored files when nginx took the new config; otherwise nginx still runs
    /// the old config and a reload is not needed (and could fail for a reason not ours, as a
    /// port taken since nginx started).
    fn undo_reload(
        &self,
        master: i32,
        gen0: &Generation,
        journal: &mut Journal,
    ) -> Result<(), String> {
        if !control::alive(master) {
            let e = format!("the nginx master {master} exited after the reload: start nginx");
            journal.record("reload", false, &e);
            return Err(e);
        }
        let settle = Instant::now() + RELOAD_SETTLE;
        let taken = loop {
            let now = Generation::of(master)?;
            if gen0.renewed_in(&now) {
                break Some(now);
            }
            if Instant::now() >= settle {
                break None;
            }
            std::thread::sleep(POLL);
        };
        let Some(gen1) = taken else {
            journal.record(
                "reload",
                true,
                format!(
                    "not needed: no new worker generation started (workers {}), nginx still \
                     runs the original configuration",
                    gen0.pids()
                ),
            );
            return Ok(());
        };
        let offsets = control::offsets(&self.ctl.error_logs);
        match control::reload(self.ctl) {
            Ok(d) => journal.record("reload", true, d),
            Err(e) => {
                journal.record("reload", false, &e);
                return Err(e);
            }
        }
        let deadline = Instant::now() + self.opts.verify.max(Duration::from_secs(5));
        match verify_reload(master, &gen1, &offsets, deadline, None) {
            Ok(d) => {
                journal.record("verify", true, d);
                Ok(())
            }
            Err(e) => {
                journal.record("verify", false, &e);
                Err(e)
            }
        }
    }

    /// The rollback failed: a person must act now. Printed whatever the journal's settings.
    fn shout(&self, failed: &[String]) {
        let reload: Vec<String> = control::reload_argv(self.ctl)
            .iter()
            .map(|a| a.to_string_lossy().into_owned())
            .collect();
        let mut msg = String::from(
            "\n!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!\n\
             !!! nginx-medic: THE ROLLBACK FAILED. nginx may run a broken or half-restored\n\
             !!! configuration. Restore by hand NOW.\n",
        );
        for f in failed {
            msg.push_str(&format!("!!! failed: {f}\n"));
        }
        msg.push_str(&format!(
            "!!! The original files are in {}\n!!! Run:\n",
            self.opts.backup_dir.display()
        ));
        for cmd in backup::restore_commands(self.entries, &reload) {
            msg.push_str(&format!("    {cmd}\n"));
        }
        msg.push_str("!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!\n");
        let _ = std::io::stderr().write_all(msg.as_bytes());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backups_inside_an_include_directory_are_refused() {
        let pats = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        let p = pats(&["/etc/nginx/sites-enabled/*", "/etc/nginx/conf.d/*.conf"]);
        assert_eq!(
            backup_loaded_by(Path::new("/etc/nginx/sites-enabled/bak-1"), &p).as_deref(),
            Some("/etc/nginx/sites-enabled/*")
        );
        assert!(backup_loaded_by(Path::new("/etc/nginx/conf.d/x/y"), &p).is_some());
        assert!(backup_loaded_by(Path::new("/var/lib/nginx-medic/backups/t"), &p).is_none());
        assert!(backup_loaded_by(Path::new("/etc/nginx/medic-backups/t"), &p).is_none());
        // A glob over directories reads from its parent: anything below is refused.
        let p = pats(&["/etc/nginx/*/*.conf"]);
        assert!(backup_loaded_by(Path::new("/etc/nginx/medic-backups/t"), &p).is_some());
        // A literal include matters only when the backup directory would hold it.
        let p = pats(&["/srv/bak/etc/app.conf"]);
        assert!(backup_loaded_by(Path::new("/srv/bak"), &p).is_some());
        assert!(backup_loaded_by(Path::new("/srv/other"), &p).is_none());
    }

    #[test]
    fn exit_codes() {
        assert_eq!(Outcome::Applied.exit_code(), 0);
        assert_eq!(Outcome::NothingToDo.exit_code(), 0);
        assert_eq!(Outcome::RolledBack.exit_code(), 1);
        assert_eq!(Outcome::NotWritten.exit_code(), 1);
        assert_eq!(Outcome::ActionFailed.exit_code(), 1);
        assert_eq!(Outcome::CouldNotRun(String::new()).exit_code(), 2);
        assert_eq!(Outcome::RollbackFailed.exit_code(), 4);
    }
}
