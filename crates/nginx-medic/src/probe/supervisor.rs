//! Supervisors and the kernel: what systemd, pm2 and PHP-FPM know about the backends, and the
//! OOM killer's record (`causes.md`: `backend-down`, `backend-starting`, `backend-crash`,
//! `pool-saturated`, `socket-permission`).
//!
//! Every program runs with argv and a timeout, never a shell ([`run`]). A check that cannot run
//! (no systemd because PID 1 is something else, pm2 absent, `dmesg` denied) is recorded in
//! [`SupervisorFacts::skipped`] with why and how to enable it, never silently dropped.

use std::collections::BTreeMap;
use std::io::{self, Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use medic_parse::fpm::{self, FpmEventKind};

/// How much the gatherers may read and wait.
#[derive(Clone, Debug)]
pub struct GatherOptions {
    /// Per program run.
    pub timeout: Duration,
    /// Journal lines per unit (`journalctl -n`).
    pub journal_lines: u32,
    /// How far back kernel OOM messages are read (`journalctl --since`, systemd time syntax).
    pub since: String,
    /// The tail of each FPM error log that is read.
    pub fpm_log_bytes: u64,
    /// Where `/proc` is (tests point it elsewhere).
    pub proc_root: PathBuf,
}

impl Default for GatherOptions {
    fn default() -> Self {
        GatherOptions {
            timeout: Duration::from_secs(5),
            journal_lines: 50,
            since: "-24h".to_string(),
            fpm_log_bytes: 4 << 20,
            proc_root: PathBuf::from("/proc"),
        }
    }
}

pub use medic_core::facts::supervisor::{
    FpmEvent, FpmMaster, FpmPool, KernelOom, Pm2Process, SupervisorFacts, SystemdUnit,
};
pub use medic_core::facts::Skipped;

/// Gathers what the supervisors of `pids` and of `units` know, the PHP-FPM masters running on
/// the host, and the kernel's OOM kills. The units of `pids` are found from their cgroup.
pub fn gather(pids: &[u32], units: &[String], opts: &GatherOptions) -> SupervisorFacts {
    let mut facts = SupervisorFacts::default();
    let mut all_units: Vec<String> = units.to_vec();
    for pid in pids {
        if let Ok(cg) = std::fs::read_to_string(opts.proc_root.join(format!("{pid}/cgroup"))) {
            if let Some(u) = unit_from_cgroup(&cg) {
                if !all_units.contains(&u) {
                    all_units.push(u);
                }
            }
        }
    }
    let systemd = systemd_status(&opts.proc_root);
    match &systemd {
        Ok(()) => {
            for u in &all_units {
                facts
                    .systemd
                    .push(systemd_unit(u, opts, &mut facts.skipped));
            }
        }
        Err(why) => facts.skipped.push(Skipped {
            check: "systemd".into(),
            why: why.clone(),
        }),
    }
    pm2(opts, &mut facts);
    facts.fpm = fpm_masters(opts, &mut facts.skipped);
    facts.oom = kernel_oom(systemd.is_ok(), opts, &mut facts.skipped);
    facts
}

/// `Ok` when systemd can be asked; otherwise why not.
fn systemd_status(proc_root: &Path) -> Result<(), String> {
    let comm = std::fs::read_to_string(proc_root.join("1/comm"))
        .map(|s| s.trim().to_string())
        .map_err(|e| format!("cannot read /proc/1/comm: {e}"))?;
    if comm != "systemd" {
        return Err(format!(
            "no systemd (PID 1 is {comm}): unit states and the journal are not available; \
             run nginx-medic on a host booted with systemd to check them"
        ));
    }
    if find_program("systemctl").is_none() {
        return Err("systemctl not found in PATH (install systemd's tools)".into());
    }
    Ok(())
}

/// The `.service` (or `.scope`) a process belongs to, from `/proc/PID/cgroup`.
pub fn unit_from_cgroup(cgroup: &str) -> Option<String> {
    cgroup.lines().find_map(|l| {
        let path = l.splitn(3, ':').nth(2)?;
        path.rsplit('/')
            .find(|c| c.ends_with(".service"))
            .map(str::to_string)
    })
}

const PROPERTIES: &str = "LoadState,ActiveState,SubState,Result,NRestarts,MainPID,ExecMainPID,\
ExecMainCode,ExecMainStatus,ExecMainStartTimestamp,ExecMainExitTimestamp,ActiveEnterTimestamp,\
InactiveEnterTimestamp,Restart,RestartUSec";

fn systemd_unit(unit: &str, opts: &GatherOptions, skipped: &mut Vec<Skipped>) -> SystemdUnit {
    let mut u = SystemdUnit {
        unit: unit.to_string(),
        properties: BTreeMap::new(),
        journal: Vec::new(),
    };
    let prop = format!("--property={PROPERTIES}");
    match run(
        &["systemctl", "show", unit, &prop, "--no-pager"],
        opts.timeout,
    ) {
        Ok(out) => {
            for l in out.lines() {
                if let Some((k, v)) = l.split_once('=') {
                    u.properties.insert(k.to_string(), v.to_string());
                }
            }
        }
        Err(e) => skipped.push(Skipped {
            check: format!("systemctl show {unit}"),
            why: e.to_string(),
        }),
    }
    let n = opts.journal_lines.to_string();
    match run(
        &[
            "journalctl",
            "-u",
            unit,
            "-n",
            &n,
            "--no-pager",
            "-o",
            "short-iso",
        ],
        opts.timeout,
    ) {
        Ok(out) => u.journal = out.lines().map(str::to_string).collect(),
        Err(e) => skipped.push(Skipped {
            check: format!("journalctl -u {unit}"),
            why: format!("{e} (the journal needs root or the systemd-journal/adm group)"),
        }),
    }
    u
}

fn pm2(opts: &GatherOptions, facts: &mut SupervisorFacts) {
    if find_program("pm2").is_none() {
        facts.skipped.push(Skipped {
            check: "pm2".into(),
            why: "pm2 not found in PATH (nothing to check unless the backends run under pm2)"
                .into(),
        });
        return;
    }
    match run(&["pm2", "jlist"], opts.timeout) {
        Ok(out) => match parse_pm2_jlist(&out) {
            Some(list) => facts.pm2 = Some(list),
            None => facts.skipped.push(Skipped {
                check: "pm2".into(),
                why: "`pm2 jlist` did not print a JSON list".into(),
            }),
        },
        Err(e) => facts.skipped.push(Skipped {
            check: "pm2".into(),
            why: e.to_string(),
        }),
    }
}

/// The processes of `pm2 jlist` output (pm2 may print banners before the JSON).
pub fn parse_pm2_jlist(out: &str) -> Option<Vec<Pm2Process>> {
    let start = out.find('[')?;
    let v: serde_json::Value = serde_json::from_str(out[start..].trim()).ok()?;
    let list = v.as_array()?;
    Some(
        list.iter()
            .map(|p| {
                let env = &p["pm2_env"];
                Pm2Process {
                    name: p["name"].as_str().unwrap_or("?").to_string(),
                    pid: p["pid"].as_u64(),
                    status: env["status"].as_str().map(str::to_string),
                    restarts: env["restart_time"].as_u64(),
                    unstable_restarts: env["unstable_restarts"].as_u64(),
                    uptime_since_ms: env["pm_uptime"].as_u64(),
                }
            })
            .collect(),
    )
}

/// The running PHP-FPM masters (`php-fpm: master process (CONF)` in `/proc/*/cmdline`).
fn fpm_masters(opts: &GatherOptions, skipped: &mut Vec<Skipped>) -> Vec<FpmMaster> {
    let mut out = Vec::new();
    let dir = match std::fs::read_dir(&opts.proc_root) {
        Ok(d) => d,
        Err(e) => {
            skipped.push(Skipped {
                check: "php-fpm".into(),
                why: format!("cannot list {}: {e}", opts.proc_root.display()),
            });
            return out;
        }
    };
    let mut pids: Vec<u32> = dir
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok())
        .collect();
    pids.sort_unstable();
    for pid in pids {
        let Ok(cmd) = std::fs::read(opts.proc_root.join(format!("{pid}/cmdline"))) else {
            continue;
        };
        let cmd = String::from_utf8_lossy(&cmd);
        let Some(config) = fpm_master_config(&cmd) else {
            continue;
        };
        out.push(fpm_master(pid, config, opts));
    }
    out
}

/// The configuration path in an FPM master's title, if `cmdline` is one.
pub fn fpm_master_config(cmdline: &str) -> Option<Option<PathBuf>> {
    let rest = cmdline
        .trim_end_matches('\0')
        .strip_prefix("php-fpm")?
        .split_once(": master process")?
        .1
        .trim();
    let conf = rest
        .strip_prefix('(')
        .and_then(|r| r.split_once(')'))
        .map(|(c, _)| PathBuf::from(c));
    Some(conf)
}

fn fpm_master(pid: u32, config: Option<PathBuf>, opts: &GatherOptions) -> FpmMaster {
    let mut m = FpmMaster {
        pid,
        config: config.clone(),
        pools: Vec::new(),
        error_log: None,
        events: Vec::new(),
        problems: Vec::new(),
    };
    let Some(path) = config else {
        m.problems
            .push("the master's title names no configuration file".into());
        return m;
    };
    let cfg = match fpm::load(&path) {
        Ok(c) => c,
        Err(e) => {
            m.problems.push(e.to_string());
            return m;
        }
    };
    m.problems
        .extend(cfg.problems.iter().map(|(p, why)| format!("{p}: {why}")));
    m.pools = cfg.pools.iter().map(FpmPool::from).collect();
    match cfg.error_log() {
        Some(l) if l == "syslog" || l.starts_with("syslog:") => m
            .problems
            .push("error_log goes to syslog: read it with journalctl or the syslog file".into()),
        Some(l) => {
            let p = Path::new(l);
            let p = if p.is_absolute() {
                p.to_path_buf()
            } else {
                Path::new("/var").join(p)
            };
            match fpm_events(&p, opts.fpm_log_bytes) {
                Ok(ev) => m.events = ev,
                Err(e) => m.problems.push(e),
            }
            m.error_log = Some(p);
        }
        None => m.problems.push(
            "no error_log in [global]: FPM writes to its compiled-in default (log/php-fpm.log)"
                .into(),
        ),
    }
    m
}

/// The 502/504-relevant events in the last `max_bytes` of an FPM error log.
pub fn fpm_events(path: &Path, max_bytes: u64) -> Result<Vec<FpmEvent>, String> {
    let mut f = std::fs::File::open(path).map_err(|e| format!("open {}: {e}", path.display()))?;
    let len = f
        .metadata()
        .map_err(|e| format!("stat {}: {e}", path.display()))?
        .len();
    let start = len.saturating_sub(max_bytes);
    f.seek(SeekFrom::Start(start))
        .map_err(|e| format!("seek {}: {e}", path.display()))?;
    let mut buf = Vec::new();
    f.read_to_end(&mut buf)
        .map_err(|e| format!("read {}: {e}", path.display()))?;
    let text = String::from_utf8_lossy(&buf);
    let mut lines = text.lines();
    if start > 0 {
        lines.next(); // a partial line
    }
    Ok(lines.filter_map(event).collect())
}

fn event(line: &str) -> Option<FpmEvent> {
    let e = fpm::parse_log_line(line)?;
    let (kind, child, value, detail) = match e.kind {
        FpmEventKind::MaxChildren { limit } => {
            ("max-children", None, limit.map(|l| l as i64), None)
        }
        FpmEventKind::TimedOut { child, script, .. } => ("timed-out", child, None, script),
        FpmEventKind::Signal {
            child,
            signal,
            name,
        } => ("signal", child, signal.map(i64::from), name),
        FpmEventKind::ExitCode { child, code } => ("exit-code", child, code.map(i64::from), None),
    };
    Some(FpmEvent {
        kind,
        time: fpm::iso_time(e.time),
        level: e.level.to_string(),
        pool: e.pool.map(str::to_string),
        child,
        value,
        detail,
        line: line.to_string(),
    })
}

fn is_oom_line(l: &str) -> bool {
    l.contains("Out of memory") || l.contains("Killed process") || l.contains("oom-kill")
}

fn kernel_oom(
    systemd: bool,
    opts: &GatherOptions,
    skipped: &mut Vec<Skipped>,
) -> Option<KernelOom> {
    if systemd && find_program("journalctl").is_some() {
        let since = format!("--since={}", opts.since);
        match run(
            &["journalctl", "-k", &since, "--no-pager", "-o", "short-iso"],
            opts.timeout,
        ) {
            Ok(out) => {
                return Some(KernelOom {
                    source: "journalctl -k",
                    lines: out
                        .lines()
                        .filter(|l| is_oom_line(l))
                        .map(str::to_string)
                        .collect(),
                })
            }
            Err(e) => skipped.push(Skipped {
                check: "journalctl -k".into(),
                why: format!("{e}; trying dmesg"),
            }),
        }
    }
    if find_program("dmesg").is_none() {
        skipped.push(Skipped {
            check: "kernel OOM kills".into(),
            why: "neither journalctl (with systemd) nor dmesg is available".into(),
        });
        return None;
    }
    match run(&["dmesg"], opts.timeout) {
        Ok(out) => Some(KernelOom {
            source: "dmesg",
            lines: out
                .lines()
                .filter(|l| is_oom_line(l))
                .map(str::to_string)
                .collect(),
        }),
        Err(e) => {
            skipped.push(Skipped {
                check: "kernel OOM kills (dmesg)".into(),
                why: format!(
                    "{e}: the kernel log is restricted; run as root or set \
                     `sysctl kernel.dmesg_restrict=0`"
                ),
            });
            None
        }
    }
}

/// Why a program run failed.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error("{program} not found")]
    NotFound { program: String },
    #[error("{program} did not finish within {timeout:?} (killed)")]
    TimedOut { program: String, timeout: Duration },
    #[error("{program} failed ({status}): {stderr}")]
    Failed {
        program: String,
        status: std::process::ExitStatus,
        stderr: String,
    },
    #[error("run {program}: {source}")]
    Io {
        program: String,
        #[source]
        source: io::Error,
    },
}

/// Runs `argv` (no shell) with stdin closed; returns stdout (lossy UTF-8) when it exits 0
/// within `timeout`. On timeout the child is killed by its PID and reaped.
pub fn run(argv: &[&str], timeout: Duration) -> Result<String, RunError> {
    let program = argv.first().copied().unwrap_or_default().to_string();
    let mut cmd = Command::new(&program);
    cmd.args(argv.get(1..).unwrap_or_default())
        .env("LC_ALL", "C")
        .env("SYSTEMD_PAGER", "");
    let out = match crate::exec::run(&mut cmd, timeout) {
        Ok(o) => o,
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            return Err(RunError::NotFound { program })
        }
        Err(e) if e.kind() == io::ErrorKind::TimedOut => {
            return Err(RunError::TimedOut { program, timeout })
        }
        Err(source) => return Err(RunError::Io { program, source }),
    };
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    } else {
        Err(RunError::Failed {
            program,
            status: out.status,
            stderr: String::from_utf8_lossy(&out.stderr).trim().to_string(),
        })
    }
}

/// `name` in `PATH` (or the usual system directories when `PATH` is unset).
pub fn find_program(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")
        .unwrap_or_else(|| "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin".into());
    std::env::split_paths(&path)
        .map(|d| d.join(name))
        .find(|p| p.is_file())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cgroup_units() {
        assert_eq!(
            unit_from_cgroup("0::/system.slice/php8.2-fpm.service\n").as_deref(),
            Some("php8.2-fpm.service")
        );
        assert_eq!(
            unit_from_cgroup("12:pids:/system.slice/nginx.service/x\n").as_deref(),
            Some("nginx.service")
        );
        assert_eq!(unit_from_cgroup("0::/\n"), None);
    }

    #[test]
    fn master_titles() {
        assert_eq!(
            fpm_master_config("php-fpm: master process (/etc/php/8.2/fpm/php-fpm.conf)\0"),
            Some(Some(PathBuf::from("/etc/php/8.2/fpm/php-fpm.conf")))
        );
        assert_eq!(
            fpm_master_config("php-fpm8.2: master process (/x.conf)"),
            Some(Some(PathBuf::from("/x.conf")))
        );
        assert_eq!(fpm_master_config("php-fpm: pool www"), None);
        assert_eq!(fpm_master_config("nginx: master process"), None);
    }

    #[test]
    fn pm2_list() {
        let out = "banner\n[{\"name\":\"api\",\"pid\":42,\"pm2_env\":{\"status\":\"errored\",\"restart_time\":15,\"unstable_restarts\":3,\"pm_uptime\":1700000000000}}]";
        let l = parse_pm2_jlist(out).unwrap();
        assert_eq!(l[0].name, "api");
        assert_eq!(l[0].status.as_deref(), Some("errored"));
        assert_eq!(l[0].restarts, Some(15));
    }
}
