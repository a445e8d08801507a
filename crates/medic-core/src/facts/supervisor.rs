//! What the backends' supervisors (systemd, pm2, PHP-FPM masters) and the kernel's OOM killer
//! say (filled by `nginx-medic`'s supervisor probe).

use std::collections::BTreeMap;
use std::path::PathBuf;

use medic_parse::fpm;
use serde::{Deserialize, Serialize};

use super::Skipped;

/// Everything gathered.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct SupervisorFacts {
    pub systemd: Vec<SystemdUnit>,
    /// `None` when pm2 is absent (then a `skipped` entry says so).
    pub pm2: Option<Vec<Pm2Process>>,
    pub fpm: Vec<FpmMaster>,
    /// PHP-FPM installations on disk (`/etc/php/*/fpm/php-fpm.conf`), running or not: a
    /// stopped FPM still says which socket it would create.
    #[serde(default)]
    pub fpm_installed: Vec<FpmInstall>,
    /// Kernel OOM-killer lines, when the kernel log could be read.
    pub oom: Option<KernelOom>,
    /// nginx's own unit, when nginx runs under systemd (reload advice, discovery).
    #[serde(default)]
    pub nginx_unit: Option<SystemdUnit>,
    /// How many systemd units and pm2 daemons were looked at (the report says so when no
    /// backend could be named).
    #[serde(default)]
    pub looked_at: Vec<String>,
    pub skipped: Vec<Skipped>,
    /// What the gatherer was asked (a recorded run replays the same question).
    #[serde(default)]
    pub gathered_for: Option<GatheredFor>,
}

/// The question the supervisors were asked: the listeners' PIDs, the targets, the window.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct GatheredFor {
    pub pids: Vec<u32>,
    pub targets: Vec<String>,
    pub since: String,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct SystemdUnit {
    pub unit: String,
    /// `ActiveState`, `SubState`, `NRestarts`, `ExecMainStatus`, ... as systemctl printed them.
    pub properties: BTreeMap<String, String>,
    /// `journalctl -u UNIT -o short-iso` lines of the window (empty if the journal could not
    /// be read), oldest first.
    pub journal: Vec<String>,
    /// Why this unit was looked at: where its configuration or journal names a target.
    #[serde(default)]
    pub mentions: Vec<Mention>,
}

/// A place where a supervisor's record names a target: `ExecStart` with `--port 8000`,
/// `Environment=PORT=8000`, a line of an `EnvironmentFile`, a socket unit's `Listen`, a journal
/// line `Listening at: http://127.0.0.1:8000`, pm2's `PORT`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Mention {
    /// The target as nginx names it (`127.0.0.1:8000`, `unix:/run/app.sock`).
    pub target: String,
    /// `ExecStart`, `Environment`, `/etc/default/app:3`, `Listen`, `journal`, `PORT`.
    pub source: String,
    /// The text that names it.
    pub text: String,
}

impl SystemdUnit {
    pub fn active_state(&self) -> Option<&str> {
        self.properties.get("ActiveState").map(String::as_str)
    }
    pub fn n_restarts(&self) -> Option<u64> {
        self.properties.get("NRestarts")?.parse().ok()
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Pm2Process {
    pub name: String,
    pub pid: Option<u64>,
    /// `online`, `stopped`, `errored`, `launching`, ...
    pub status: Option<String>,
    pub restarts: Option<u64>,
    pub unstable_restarts: Option<u64>,
    /// Start of the current run, ms since the epoch.
    pub uptime_since_ms: Option<u64>,
    /// The same, on the local wall clock (`2026-11-20T14:32:10`).
    #[serde(default)]
    pub started: Option<String>,
    /// The daemon's home (`PM2_HOME`) and the user it runs as: `pm2` commands for this app
    /// need both.
    #[serde(default)]
    pub home: Option<String>,
    #[serde(default)]
    pub user: Option<String>,
    /// `PORT` of the app's environment, when set.
    #[serde(default)]
    pub port: Option<String>,
    /// The script and its arguments.
    #[serde(default)]
    pub script: Option<String>,
    #[serde(default)]
    pub args: Vec<String>,
    /// Where the app names a target (its `PORT`, its arguments).
    #[serde(default)]
    pub mentions: Vec<Mention>,
    /// The app's error log and its last lines (`FILE:LINE`, text).
    #[serde(default)]
    pub error_log: Option<String>,
    #[serde(default)]
    pub error_tail: Vec<(String, String)>,
}

/// A PHP-FPM installation on disk: its configuration, whether a master runs it, its unit.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct FpmInstall {
    /// `/etc/php/8.2/fpm/php-fpm.conf`.
    pub config: PathBuf,
    /// `8.2`, from the path.
    pub version: Option<String>,
    /// Debian's unit for it (`php8.2-fpm.service`).
    pub unit: Option<String>,
    /// Whether a running master reads this configuration.
    pub running: bool,
    pub pools: Vec<FpmPool>,
    /// Include and read problems (a pool file that does not parse).
    pub problems: Vec<String>,
}

/// A running PHP-FPM master, its configuration and its log.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct FpmMaster {
    pub pid: u32,
    /// From the master's title: `php-fpm: master process (/etc/php/8.2/fpm/php-fpm.conf)`.
    pub config: Option<PathBuf>,
    pub pools: Vec<FpmPool>,
    /// The `error_log` read (absolute; a relative one is resolved against `/var`, FPM's
    /// Debian `localstatedir`).
    pub error_log: Option<PathBuf>,
    pub events: Vec<FpmEvent>,
    /// Include and read problems of the configuration.
    pub problems: Vec<String>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FpmPool {
    pub name: String,
    pub file: Option<PathBuf>,
    pub listen: Option<String>,
    pub listen_owner: Option<String>,
    pub listen_group: Option<String>,
    pub listen_mode: Option<String>,
    pub listen_acl_users: Option<String>,
    pub listen_acl_groups: Option<String>,
    pub listen_backlog: Option<i64>,
    pub user: Option<String>,
    pub group: Option<String>,
    pub pm: Option<String>,
    pub max_children: Option<u64>,
    pub status_path: Option<String>,
    pub ping_path: Option<String>,
    pub request_terminate_timeout: Option<String>,
    pub slowlog: Option<String>,
    /// `FILE:LINE` of the `listen` directive.
    #[serde(default)]
    pub listen_at: Option<String>,
    /// `listen.allowed_clients` (TCP pools).
    #[serde(default)]
    pub listen_allowed_clients: Option<String>,
}

/// One FPM error-log line that explains a 502/504.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FpmEvent {
    /// `max-children`, `timed-out`, `signal`, `exit-code`.
    pub kind: String,
    /// Local time, ISO 8601 (`None` if FPM's time could not be read).
    pub time: Option<String>,
    pub level: String,
    pub pool: Option<String>,
    pub child: Option<u32>,
    /// `pm.max_children` value, signal number, or exit code.
    pub value: Option<i64>,
    /// Script (timed-out) or signal name.
    pub detail: Option<String>,
    /// The line as written.
    pub line: String,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct KernelOom {
    /// `journalctl -k` or `dmesg --time-format iso`.
    pub source: String,
    pub lines: Vec<String>,
    /// The kills those lines record, one per killed process.
    #[serde(default)]
    pub kills: Vec<OomKill>,
}

/// One kill by the OOM killer (the kernel writes three lines or more per kill).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct OomKill {
    /// Wall clock, local time (`2026-11-20T14:32:10`), when the source gives it.
    pub time: Option<String>,
    /// The host's PID of the killed process.
    pub pid: Option<u32>,
    /// The kernel's task name (`comm`, 15 bytes at most).
    pub task: Option<String>,
    /// `task_memcg=`: the memory cgroup (`/system.slice/my-app.service`).
    pub memcg: Option<String>,
    /// The `Killed process ...` line (or the `oom-kill:` one).
    pub line: String,
}

impl OomKill {
    /// The systemd unit the memory cgroup names.
    pub fn unit(&self) -> Option<&str> {
        self.memcg
            .as_deref()?
            .rsplit('/')
            .find(|c| c.ends_with(".service") || c.ends_with(".scope"))
    }
}

impl From<&fpm::Pool> for FpmPool {
    fn from(p: &fpm::Pool) -> FpmPool {
        FpmPool {
            name: p.name.clone(),
            file: p.file.clone(),
            listen: p.listen(),
            listen_owner: p.listen_owner(),
            listen_group: p.listen_group(),
            listen_mode: p.listen_mode(),
            listen_acl_users: p.listen_acl_users(),
            listen_acl_groups: p.listen_acl_groups(),
            listen_backlog: p.listen_backlog(),
            user: p.user(),
            group: p.group(),
            pm: p.pm(),
            max_children: p.max_children(),
            status_path: p.status_path(),
            ping_path: p.ping_path(),
            request_terminate_timeout: p.request_terminate_timeout(),
            slowlog: p.slowlog(),
            listen_allowed_clients: p.get("listen.allowed_clients"),
            listen_at: p
                .entries
                .iter()
                .rev()
                .find(|e| e.key == "listen")
                .map(|e| match &p.file {
                    Some(f) => format!("{}:{}", f.display(), e.line),
                    None => format!("line {}", e.line),
                }),
        }
    }
}
