//! What the backends' supervisors (systemd, pm2, PHP-FPM masters) and the kernel's OOM killer
//! say (filled by `nginx-medic`'s supervisor probe).

use std::collections::BTreeMap;
use std::path::PathBuf;

use medic_parse::fpm;
use serde::Serialize;

use super::Skipped;

/// Everything gathered.
#[derive(Clone, Debug, Default, Serialize)]
pub struct SupervisorFacts {
    pub systemd: Vec<SystemdUnit>,
    /// `None` when pm2 is absent (then a `skipped` entry says so).
    pub pm2: Option<Vec<Pm2Process>>,
    pub fpm: Vec<FpmMaster>,
    /// Kernel OOM-killer lines, when the kernel log could be read.
    pub oom: Option<KernelOom>,
    pub skipped: Vec<Skipped>,
}

#[derive(Clone, Debug, Serialize)]
pub struct SystemdUnit {
    pub unit: String,
    /// `ActiveState`, `SubState`, `NRestarts`, `ExecMainStatus`, ... as systemctl printed them.
    pub properties: BTreeMap<String, String>,
    /// `journalctl -u UNIT -n N -o short-iso` lines (empty if the journal could not be read).
    pub journal: Vec<String>,
}

impl SystemdUnit {
    pub fn active_state(&self) -> Option<&str> {
        self.properties.get("ActiveState").map(String::as_str)
    }
    pub fn n_restarts(&self) -> Option<u64> {
        self.properties.get("NRestarts")?.parse().ok()
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Pm2Process {
    pub name: String,
    pub pid: Option<u64>,
    /// `online`, `stopped`, `errored`, `launching`, ...
    pub status: Option<String>,
    pub restarts: Option<u64>,
    pub unstable_restarts: Option<u64>,
    /// Start of the current run, ms since the epoch.
    pub uptime_since_ms: Option<u64>,
}

/// A running PHP-FPM master, its configuration and its log.
#[derive(Clone, Debug, Serialize)]
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

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
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
}

/// One FPM error-log line that explains a 502/504.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct FpmEvent {
    /// `max-children`, `timed-out`, `signal`, `exit-code`.
    pub kind: &'static str,
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

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct KernelOom {
    /// `journalctl -k` or `dmesg`.
    pub source: &'static str,
    pub lines: Vec<String>,
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
        }
    }
}
