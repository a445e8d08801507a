//! Supervisors and the kernel: what systemd, pm2 and PHP-FPM know about the backends, dead or
//! alive, and the OOM killer's record (`causes.md`: `backend-down`, `backend-starting`,
//! `backend-crash`, `socket-path-mismatch`, `socket-permission`; §3 `backend`).
//!
//! A dead backend has no listener, so its unit cannot be found from a socket: the gatherer asks
//! systemd for every service and socket unit and keeps those whose `ExecStart`, `Environment`,
//! `EnvironmentFile`, `WorkingDirectory` or `Listen` names a target, and those whose journal
//! says they listened on one ([`medic_core::backend::names_target`]); pm2 daemons are found in
//! the process list and each is asked with its own `PM2_HOME`, as its own user (a bare `pm2
//! jlist` starts a new daemon); PHP-FPM configurations are read from disk, running or not.
//!
//! Everything goes through [`Host`], so a recorded run replays without root. Every program runs
//! with argv and a timeout, never a shell. A check that cannot run is recorded in
//! [`SupervisorFacts::skipped`] with why and how to enable it, never silently dropped.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use medic_core::backend::{names_target, TargetKey};
use medic_parse::config::fs;
use medic_parse::fpm::{self, FpmEventKind};

use crate::host::{find_program, Cmd, Host};

pub use crate::host::RunError;
pub use medic_core::facts::supervisor::{
    FpmEvent, FpmInstall, FpmMaster, FpmPool, GatheredFor, KernelOom, Mention, OomKill, Pm2Process,
    SupervisorFacts, SystemdUnit,
};
pub use medic_core::facts::Skipped;

/// How much the gatherers may read and wait.
#[derive(Clone, Debug)]
pub struct GatherOptions {
    /// Per program run.
    pub timeout: Duration,
    /// Journal lines per unit at most.
    pub journal_lines: u32,
    /// Where the journal and kernel log are read from: `journalctl --since` (local time,
    /// `2026-11-20 14:00:00`, or systemd's relative syntax `-24h`).
    pub since: String,
    /// The tail of each FPM error log and pm2 error log that is read.
    pub log_bytes: u64,
    /// All the supervisors' commands together end within this (a hanging `systemctl` is cut
    /// off, and what it did not answer is a `skipped` entry).
    pub budget: Duration,
    /// Set by [`gather`]: start + budget.
    pub deadline: Option<Instant>,
}

impl GatherOptions {
    /// How long the next command may take: its own timeout, within what is left of the budget.
    fn wait(&self) -> Duration {
        match self.deadline {
            Some(d) => self
                .timeout
                .min(d.saturating_duration_since(Instant::now())),
            None => self.timeout,
        }
    }
}

impl Default for GatherOptions {
    fn default() -> Self {
        GatherOptions {
            timeout: Duration::from_secs(5),
            journal_lines: 300,
            since: "-24h".to_string(),
            log_bytes: 4 << 20,
            budget: Duration::from_secs(8),
            deadline: None,
        }
    }
}

/// What to gather for: the processes that listen at the targets now, and the targets as nginx
/// names them (`127.0.0.1:8000`, `unix:/run/php/php8.2-fpm.sock`).
#[derive(Clone, Debug, Default)]
pub struct GatherInput {
    pub pids: Vec<u32>,
    pub targets: Vec<String>,
}

/// Gathers what the supervisors know about the targets' backends, the PHP-FPM installations,
/// nginx's own unit and the kernel's OOM kills. The supervisors are asked concurrently.
pub fn gather(host: &dyn Host, input: &GatherInput, opts: &GatherOptions) -> SupervisorFacts {
    let opts = &GatherOptions {
        deadline: Some(
            opts.deadline
                .unwrap_or_else(|| Instant::now() + opts.budget),
        ),
        ..opts.clone()
    };
    let keys: Vec<(String, TargetKey)> = input
        .targets
        .iter()
        .filter_map(|t| Some((t.clone(), TargetKey::of(t)?)))
        .collect();
    let systemd = systemd_status(host);
    let procs = processes(host);
    let (mut facts, pm2, fpm_running, oom) = std::thread::scope(|s| {
        let sd = s.spawn(|| {
            let mut f = SupervisorFacts::default();
            match &systemd {
                Ok(()) => systemd_units(host, input, &keys, opts, &mut f),
                Err(why) => f.skipped.push(Skipped::new("systemd", why.clone())),
            }
            f
        });
        let pm2 = s.spawn(|| pm2(host, &procs, &keys, opts));
        let fpm = s.spawn(|| fpm_masters(host, &procs, opts));
        let oom = s.spawn(|| kernel_oom(host, systemd.is_ok(), opts));
        (
            sd.join().unwrap_or_default(),
            pm2.join().unwrap_or_default(),
            fpm.join().unwrap_or_default(),
            oom.join().unwrap_or((None, Vec::new())),
        )
    });
    let (pm2, pm2_skipped, pm2_looked) = pm2;
    facts.pm2 = pm2;
    facts.skipped.extend(pm2_skipped);
    facts.looked_at.extend(pm2_looked);
    let (masters, fpm_skipped) = fpm_running;
    facts.skipped.extend(fpm_skipped);
    facts.fpm_installed = fpm_installed(host, &masters, &mut facts.skipped);
    facts.looked_at.push(format!(
        "{} PHP-FPM configuration(s) on disk",
        facts.fpm_installed.len()
    ));
    facts.fpm = masters;
    // The units of installed PHP-FPMs: a stopped one is the backend of its pools' sockets.
    if systemd.is_ok() {
        let fpm_units: Vec<String> = facts
            .fpm_installed
            .iter()
            .filter_map(|i| i.unit.clone())
            .filter(|u| !facts.systemd.iter().any(|s| &s.unit == u))
            .collect();
        for u in fpm_units {
            let unit = show_units(host, &[u], opts, &mut facts.skipped)
                .into_iter()
                .next();
            if let Some(mut unit) = unit.filter(loaded) {
                unit.journal = journal(host, &unit.unit, opts, &mut facts.skipped);
                facts.systemd.push(unit);
            }
        }
    }
    let (oom, oom_skipped) = oom;
    facts.oom = oom;
    facts.skipped.extend(oom_skipped);
    facts.gathered_for = Some(GatheredFor {
        pids: input.pids.clone(),
        targets: input.targets.clone(),
        since: opts.since.clone(),
    });
    facts
}

/// `Ok` when systemd can be asked; otherwise why not.
fn systemd_status(host: &dyn Host) -> Result<(), String> {
    let comm = host
        .read("/proc/1/comm")
        .map(|s| String::from_utf8_lossy(&s).trim().to_string())
        .map_err(|e| format!("cannot read /proc/1/comm: {e}"))?;
    if comm != "systemd" {
        return Err(format!(
            "no systemd (PID 1 is {comm}): unit states and the journal are not available; \
             run nginx-medic on a host booted with systemd to check them"
        ));
    }
    if find_program(host, "systemctl").is_none() {
        return Err("systemctl not found in PATH (install systemd's tools)".into());
    }
    Ok(())
}

/// A process of the host: PID, command line (NULs as spaces), uid and gid.
#[derive(Clone, Debug)]
struct Proc {
    pid: u32,
    cmdline: String,
    uid: Option<u32>,
    gid: Option<u32>,
}

fn processes(host: &dyn Host) -> Vec<Proc> {
    let Ok(names) = host.list_dir("/proc") else {
        return Vec::new();
    };
    let mut pids: Vec<u32> = names.iter().filter_map(|n| n.parse().ok()).collect();
    pids.sort_unstable();
    pids.into_iter()
        .filter_map(|pid| {
            let cmd = host.read(&format!("/proc/{pid}/cmdline")).ok()?;
            let cmdline = String::from_utf8_lossy(&cmd)
                .trim_end_matches('\0')
                .replace('\0', " ");
            // Only the processes the gatherer cares about need their owner.
            let (uid, gid) = if cmdline.starts_with("PM2 v") {
                owner(host, pid)
            } else {
                (None, None)
            };
            Some(Proc {
                pid,
                cmdline,
                uid,
                gid,
            })
        })
        .collect()
}

/// The real uid and gid of a process (`/proc/PID/status`).
fn owner(host: &dyn Host, pid: u32) -> (Option<u32>, Option<u32>) {
    let Ok(s) = host.read(&format!("/proc/{pid}/status")) else {
        return (None, None);
    };
    let s = String::from_utf8_lossy(&s);
    let field = |name: &str| {
        s.lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.split_whitespace().next()?.parse().ok())
    };
    (field("Uid:"), field("Gid:"))
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

/// The properties read of each unit.
const PROPERTIES: &str = "Id,LoadState,ActiveState,SubState,Result,NRestarts,MainPID,ExecMainPID,\
ExecMainCode,ExecMainStatus,ExecMainStartTimestamp,ExecMainExitTimestamp,ActiveEnterTimestamp,\
InactiveEnterTimestamp,Restart,RestartUSec,FragmentPath,ExecStart,Environment,EnvironmentFiles,\
WorkingDirectory,Listen,Triggers,User";

/// Units are shown this many at a time (one `systemctl show` each batch).
const SHOW_BATCH: usize = 200;

fn systemd_units(
    host: &dyn Host,
    input: &GatherInput,
    keys: &[(String, TargetKey)],
    opts: &GatherOptions,
    f: &mut SupervisorFacts,
) {
    // The units of the processes listening at the targets now.
    let mut wanted: BTreeSet<String> = BTreeSet::new();
    for pid in &input.pids {
        if let Ok(cg) = host.read(&format!("/proc/{pid}/cgroup")) {
            if let Some(u) = unit_from_cgroup(&String::from_utf8_lossy(&cg)) {
                wanted.insert(u);
            }
        }
    }
    // Units that failed or are restarting (`list-units` knows the loaded ones; it is fast,
    // where `list-unit-files` and `show` of every unit take a second on a small host).
    match host.run(&Cmd::new(
        &[
            "systemctl",
            "list-units",
            "--all",
            "--type=service",
            "--plain",
            "--no-legend",
            "--no-pager",
        ],
        opts.wait(),
    )) {
        Ok(out) => {
            for l in out.lines() {
                let cols: Vec<&str> = l
                    .trim_start_matches(['●', '*', ' '])
                    .split_whitespace()
                    .collect();
                // UNIT LOAD ACTIVE SUB DESCRIPTION
                if let [unit, _, active, sub, ..] = cols[..] {
                    if active == "failed" || sub == "auto-restart" {
                        wanted.insert(unit.to_string());
                    }
                }
            }
        }
        Err(e) => f
            .skipped
            .push(Skipped::new("systemctl list-units", e.to_string())),
    }
    // What the unit files on disk name (a dead backend's unit is found here).
    let (files, mentions) = unit_file_mentions(host, keys, &mut f.skipped);
    f.looked_at.push(format!(
        "{files} systemd unit files (ExecStart, Environment, EnvironmentFile, WorkingDirectory, socket units' Listen) and the journal"
    ));
    let mut by_unit: BTreeMap<String, Vec<Mention>> = BTreeMap::new();
    for (unit, m) in mentions {
        by_unit.entry(unit).or_default().push(m);
    }
    // Units whose journal says they listened on a target (one search of the whole journal).
    for (unit, m) in journal_mentions(host, keys, opts, &mut f.skipped) {
        let v = by_unit.entry(unit).or_default();
        if !v.iter().any(|x| x.target == m.target) {
            v.push(m);
        }
    }
    wanted.extend(by_unit.keys().cloned());
    let mut names: Vec<String> = vec!["nginx.service".to_string()];
    names.extend(wanted.iter().filter(|u| *u != "nginx.service").cloned());
    for mut u in show_units(host, &names, opts, &mut f.skipped) {
        if !loaded(&u) {
            continue;
        }
        if u.unit == "nginx.service" && !wanted.contains("nginx.service") {
            // nginx's own unit: reload advice (`ExecStart`, `MainPID`).
            f.nginx_unit = Some(u);
            continue;
        }
        u.mentions = by_unit.remove(&u.unit).unwrap_or_default();
        // `Environment=` set by drop-ins or generators is only in systemd's view.
        for m in unit_mentions(host, &u, keys) {
            if !u.mentions.iter().any(|x| x.target == m.target) {
                u.mentions.push(m);
            }
        }
        u.journal = journal(host, &u.unit, opts, &mut f.skipped);
        f.systemd.push(u);
    }
}

/// Where systemd reads unit files, most specific first (`systemd.unit(5)`).
const UNIT_DIRS: &[&str] = &[
    "/etc/systemd/system",
    "/run/systemd/system",
    "/usr/local/lib/systemd/system",
    "/lib/systemd/system",
    "/usr/lib/systemd/system",
];

/// The keys of a unit file that may name the port or socket its service uses.
const NAMING_KEYS: &[&str] = &[
    "ExecStart",
    "ExecStartPre",
    "Environment",
    "EnvironmentFile",
    "WorkingDirectory",
    "ListenStream",
];

/// Reads the service and socket unit files (and their `.d/` drop-ins) and returns how many were
/// read and, per service, where they name a target: `ExecStart=... --port 8000` at
/// `FILE:LINE`, a line of an `EnvironmentFile`, a socket unit's `ListenStream` (credited to the
/// service it starts).
fn unit_file_mentions(
    host: &dyn Host,
    keys: &[(String, TargetKey)],
    skipped: &mut Vec<Skipped>,
) -> (usize, Vec<(String, Mention)>) {
    let mut seen: BTreeSet<String> = BTreeSet::new();
    let mut out = Vec::new();
    let mut count = 0;
    for dir in UNIT_DIRS {
        let Ok(names) = host.list_dir(dir) else {
            continue;
        };
        let mut names = names;
        names.sort();
        for name in names {
            let is_unit = name.ends_with(".service") || name.ends_with(".socket");
            let is_dropin = name.ends_with(".service.d") || name.ends_with(".socket.d");
            if !(is_unit || is_dropin) || name.contains("@.") {
                continue;
            }
            let unit = name.trim_end_matches(".d").to_string();
            let path = format!("{dir}/{name}");
            let files: Vec<String> = if is_dropin {
                host.list_dir(&path)
                    .unwrap_or_default()
                    .into_iter()
                    .filter(|f| f.ends_with(".conf"))
                    .map(|f| format!("{path}/{f}"))
                    .collect()
            } else {
                // The first unit file of a name wins; later directories' copies are shadowed.
                if !seen.insert(unit.clone()) {
                    continue;
                }
                vec![path]
            };
            for file in files {
                let text = match host.read(&file) {
                    Ok(t) => t,
                    Err(e) => {
                        skipped.push(Skipped::new(
                            format!("unit file {file}"),
                            format!("{e}: whether it names a target is unknown (run as root)"),
                        ));
                        continue;
                    }
                };
                count += usize::from(is_unit);
                let text = String::from_utf8_lossy(&text);
                // A socket unit's mentions belong to the service it starts (same name, or
                // `Service=`).
                let service = if unit.ends_with(".socket") {
                    text.lines()
                        .find_map(|l| l.trim().strip_prefix("Service="))
                        .map(|s| s.trim().to_string())
                        .unwrap_or_else(|| unit.replace(".socket", ".service"))
                } else {
                    unit.clone()
                };
                for (i, line) in text.lines().enumerate() {
                    let line = line.trim();
                    let Some((key, value)) = line.split_once('=') else {
                        continue;
                    };
                    let key = key.trim();
                    if !NAMING_KEYS.contains(&key) {
                        continue;
                    }
                    let at = format!("{file}:{}", i + 1);
                    if key == "EnvironmentFile" {
                        let env = value.trim().trim_start_matches('-');
                        if let Ok(t) = host.read(env) {
                            for (j, l) in String::from_utf8_lossy(&t).lines().enumerate() {
                                push_mentions(
                                    &mut out,
                                    &service,
                                    keys,
                                    &format!("EnvironmentFile {env}:{}", j + 1),
                                    l,
                                );
                            }
                        }
                        continue;
                    }
                    push_mentions(&mut out, &service, keys, &format!("{key} ({at})"), value);
                }
            }
        }
    }
    (count, out)
}

fn push_mentions(
    out: &mut Vec<(String, Mention)>,
    unit: &str,
    keys: &[(String, TargetKey)],
    source: &str,
    text: &str,
) {
    for (target, key) in keys {
        let known = out.iter().any(|(u, m)| u == unit && &m.target == target);
        if !known && names_target(text, key) {
            out.push((
                unit.to_string(),
                Mention {
                    target: target.clone(),
                    source: source.to_string(),
                    text: text.trim().to_string(),
                },
            ));
        }
    }
}

fn loaded(u: &SystemdUnit) -> bool {
    u.properties.get("LoadState").map(String::as_str) == Some("loaded")
}

/// `systemctl show -p PROPERTIES UNIT...`, in batches; one [`SystemdUnit`] per block.
fn show_units(
    host: &dyn Host,
    names: &[String],
    opts: &GatherOptions,
    skipped: &mut Vec<Skipped>,
) -> Vec<SystemdUnit> {
    let mut out = Vec::new();
    let prop = format!("--property={PROPERTIES}");
    for chunk in names.chunks(SHOW_BATCH) {
        let mut argv = vec!["systemctl".to_string(), "show".into(), prop.clone()];
        argv.push("--no-pager".into());
        argv.extend(chunk.iter().cloned());
        match host.run(&Cmd::new(&argv, opts.wait())) {
            Ok(text) => out.extend(parse_show(&text)),
            Err(e) => skipped.push(Skipped::new(
                format!("systemctl show ({} units)", chunk.len()),
                e.to_string(),
            )),
        }
    }
    out
}

/// `systemctl show` output: `Key=Value` lines, units separated by blank lines.
pub fn parse_show(text: &str) -> Vec<SystemdUnit> {
    let mut out = Vec::new();
    for block in text.split("\n\n") {
        let mut props = BTreeMap::new();
        for l in block.lines() {
            if let Some((k, v)) = l.split_once('=') {
                props.insert(k.to_string(), v.to_string());
            }
        }
        let Some(id) = props.get("Id").cloned() else {
            continue;
        };
        out.push(SystemdUnit {
            unit: id,
            properties: props,
            journal: Vec::new(),
            mentions: Vec::new(),
        });
    }
    out
}

/// Where a unit's own configuration names a target.
fn unit_mentions(host: &dyn Host, u: &SystemdUnit, keys: &[(String, TargetKey)]) -> Vec<Mention> {
    let mut out = Vec::new();
    let mut check = |source: &str, text: &str| {
        for (target, key) in keys {
            if names_target(text, key) && !out.iter().any(|m: &Mention| &m.target == target) {
                out.push(Mention {
                    target: target.clone(),
                    source: source.to_string(),
                    text: text.trim().to_string(),
                });
            }
        }
    };
    for p in ["ExecStart", "Environment", "WorkingDirectory", "Listen"] {
        if let Some(v) = u.properties.get(p) {
            // `ExecStart={ path=... ; argv[]=/usr/bin/app --port 8000 ; ... }`: the argv part.
            let v = v
                .split(" ; ")
                .find_map(|part| part.strip_prefix("argv[]="))
                .unwrap_or(v);
            check(p, v);
        }
    }
    // `EnvironmentFiles=/etc/default/app (ignore_errors=no)`: only the lines that name a
    // target are kept (the rest may hold secrets).
    if let Some(files) = u.properties.get("EnvironmentFiles") {
        for part in files.split(')') {
            let Some(path) = part.split_whitespace().next() else {
                continue;
            };
            let path = path.trim_start_matches('-');
            let Ok(text) = host.read(path) else { continue };
            for (i, line) in String::from_utf8_lossy(&text).lines().enumerate() {
                check(&format!("EnvironmentFile {path}:{}", i + 1), line);
            }
        }
    }
    out
}

/// Units whose journal names a target, found with one `journalctl --grep` over the window.
fn journal_mentions(
    host: &dyn Host,
    keys: &[(String, TargetKey)],
    opts: &GatherOptions,
    skipped: &mut Vec<Skipped>,
) -> Vec<(String, Mention)> {
    if keys.is_empty() {
        return Vec::new();
    }
    let mut alts: Vec<String> = keys
        .iter()
        .map(|(_, k)| match k {
            TargetKey::Tcp { port } => format!("[:= ]{port}([^0-9]|$)"),
            TargetKey::Unix { path } => regex_escape(path),
        })
        .collect();
    alts.sort();
    alts.dedup();
    let pattern = alts.join("|");
    let since = format!("--since={}", opts.since);
    let argv = [
        "journalctl",
        "--no-pager",
        &since,
        "--grep",
        &pattern,
        "--output=json",
        "--output-fields=_SYSTEMD_UNIT,MESSAGE",
        "-n",
        "500",
    ];
    let out = match host.run(&Cmd::new(&argv, opts.wait())) {
        Ok(o) => o,
        // journalctl exits 1 when nothing matched.
        Err(RunError::Failed { stdout, .. }) if stdout.trim().is_empty() => return Vec::new(),
        Err(e) => {
            skipped.push(Skipped::new(
                "journal search for the targets",
                e.to_string(),
            ));
            return Vec::new();
        }
    };
    let mut found = Vec::new();
    for line in out.lines() {
        let Ok(v) = serde_json::from_str::<serde_json::Value>(line) else {
            continue;
        };
        let (Some(unit), Some(msg)) = (v["_SYSTEMD_UNIT"].as_str(), v["MESSAGE"].as_str()) else {
            continue;
        };
        let lower = msg.to_ascii_lowercase();
        if !(lower.contains("listen") || lower.contains("serving") || lower.contains("bound")) {
            continue;
        }
        for (target, key) in keys {
            if names_target(msg, key) {
                found.push((
                    unit.to_string(),
                    Mention {
                        target: target.clone(),
                        source: "journal".into(),
                        text: msg.to_string(),
                    },
                ));
            }
        }
    }
    found
}

fn regex_escape(s: &str) -> String {
    let mut o = String::new();
    for c in s.chars() {
        if "\\.+*?()|[]{}^$".contains(c) {
            o.push('\\');
        }
        o.push(c);
    }
    o
}

/// The unit's journal over the window, oldest first (`journalctl -u UNIT -o short-iso`).
fn journal(
    host: &dyn Host,
    unit: &str,
    opts: &GatherOptions,
    skipped: &mut Vec<Skipped>,
) -> Vec<String> {
    let n = opts.journal_lines.to_string();
    let since = format!("--since={}", opts.since);
    match host.run(&Cmd::new(
        &[
            "journalctl",
            "-u",
            unit,
            &since,
            "-n",
            &n,
            "--no-pager",
            "-o",
            "short-iso",
        ],
        opts.wait(),
    )) {
        Ok(out) => out
            .lines()
            .filter(|l| !l.starts_with("-- "))
            .map(str::to_string)
            .collect(),
        Err(e) => {
            skipped.push(Skipped::new(
                format!("journalctl -u {unit}"),
                format!("{e} (the journal needs root or the systemd-journal/adm group)"),
            ));
            Vec::new()
        }
    }
}

/// pm2: every running daemon (`PM2 v5.3.0: God Daemon (/home/deploy/.pm2)` in the process
/// list), asked with its own `PM2_HOME` and as its own user. A daemon is never started: `pm2`
/// is only run for a daemon that runs and whose RPC socket exists.
#[allow(clippy::type_complexity)]
fn pm2(
    host: &dyn Host,
    procs: &[Proc],
    keys: &[(String, TargetKey)],
    opts: &GatherOptions,
) -> (Option<Vec<Pm2Process>>, Vec<Skipped>, Vec<String>) {
    let mut skipped = Vec::new();
    let daemons: Vec<(&Proc, String)> = procs
        .iter()
        .filter_map(|p| Some((p, pm2_daemon_home(&p.cmdline)?)))
        .collect();
    let looked = vec![format!("{} pm2 daemon(s)", daemons.len())];
    if daemons.is_empty() {
        let why = if find_program(host, "pm2").is_some() {
            "no pm2 daemon runs (none was started: `pm2` itself would start one)"
        } else {
            "pm2 not installed and no pm2 daemon runs"
        };
        skipped.push(Skipped::new("pm2", why));
        return (None, skipped, looked);
    }
    let Some(pm2_bin) = find_program(host, "pm2") else {
        skipped.push(Skipped::new(
            "pm2",
            format!(
                "{} pm2 daemon(s) run, but the `pm2` command is not in PATH: add it to PATH to read their apps",
                daemons.len()
            ),
        ));
        return (None, skipped, looked);
    };
    let mut apps = Vec::new();
    for (p, home) in daemons {
        let sock = format!("{home}/rpc.sock");
        if !host.exists(&sock) {
            skipped.push(Skipped::new(
                format!("pm2 daemon {home}"),
                format!("{sock} is missing: not asked (pm2 would start a new daemon)"),
            ));
            continue;
        }
        let user = match (p.uid, p.gid) {
            (Some(uid), Some(gid)) => Some((uid, gid)),
            _ => None,
        };
        let mut cmd = Cmd::new(&[pm2_bin.to_string_lossy().as_ref(), "jlist"], opts.wait());
        cmd.clear_env = true;
        cmd.env.push(("PM2_HOME".into(), home.clone()));
        cmd.env.push((
            "HOME".into(),
            Path::new(&home)
                .parent()
                .map_or("/".into(), |h| h.display().to_string()),
        ));
        let me_root = host.is_root();
        match user {
            Some((0, _)) | None => {}
            Some(u) if me_root => cmd.user = Some(u),
            Some((uid, _)) => {
                skipped.push(Skipped::new(
                    format!("pm2 daemon {home}"),
                    format!("runs as uid {uid}: run nginx-medic as root (or as that user) to read its apps"),
                ));
                continue;
            }
        }
        match host.run(&cmd) {
            Ok(out) => match parse_pm2_jlist(&out) {
                Some(list) => {
                    let user_name = user.and_then(|(uid, _)| host.user_name(uid));
                    for mut a in list {
                        a.home = Some(home.clone());
                        a.user = user_name.clone();
                        a.mentions = pm2_mentions(&a, keys);
                        if let Some(log) = a.error_log.clone() {
                            a.error_tail = tail_lines(host, &log, opts.log_bytes, 20);
                        }
                        apps.push(a);
                    }
                }
                None => skipped.push(Skipped::new(
                    format!("pm2 daemon {home}"),
                    "`pm2 jlist` did not print a JSON list",
                )),
            },
            Err(e) => skipped.push(Skipped::new(format!("pm2 daemon {home}"), e.to_string())),
        }
    }
    (Some(apps), skipped, looked)
}

/// The home of a pm2 daemon, from its process title.
pub fn pm2_daemon_home(cmdline: &str) -> Option<String> {
    let rest = cmdline.strip_prefix("PM2 v")?;
    let (_, home) = rest.split_once("God Daemon (")?;
    Some(home.split(')').next()?.to_string())
}

fn pm2_mentions(a: &Pm2Process, keys: &[(String, TargetKey)]) -> Vec<Mention> {
    let mut out = Vec::new();
    for (target, key) in keys {
        let by_port = match (key, a.port.as_deref()) {
            (TargetKey::Tcp { port }, Some(p)) => p.trim() == port.to_string(),
            _ => false,
        };
        if by_port {
            out.push(Mention {
                target: target.clone(),
                source: "PORT".into(),
                text: format!("PORT={}", a.port.as_deref().unwrap_or_default()),
            });
            continue;
        }
        let args = a.args.join(" ");
        if names_target(&args, key) {
            out.push(Mention {
                target: target.clone(),
                source: "arguments".into(),
                text: args,
            });
        }
    }
    out
}

/// The processes of `pm2 jlist` output (pm2 may print banners before the JSON).
pub fn parse_pm2_jlist(out: &str) -> Option<Vec<Pm2Process>> {
    let start = out.find('[')?;
    let v: serde_json::Value = serde_json::from_str(out[start..].trim()).ok()?;
    let list = v.as_array()?;
    let s = |v: &serde_json::Value| v.as_str().map(str::to_string);
    Some(
        list.iter()
            .map(|p| {
                let env = &p["pm2_env"];
                let port = [&env["env"]["PORT"], &env["PORT"]]
                    .into_iter()
                    .find_map(|v| match v {
                        serde_json::Value::String(s) => Some(s.clone()),
                        serde_json::Value::Number(n) => Some(n.to_string()),
                        _ => None,
                    });
                let args = match &env["args"] {
                    serde_json::Value::Array(a) => a
                        .iter()
                        .filter_map(|x| x.as_str().map(str::to_string))
                        .collect(),
                    serde_json::Value::String(a) => vec![a.clone()],
                    _ => Vec::new(),
                };
                let uptime = env["pm_uptime"].as_u64();
                Pm2Process {
                    name: p["name"].as_str().unwrap_or("?").to_string(),
                    pid: p["pid"].as_u64(),
                    status: s(&env["status"]),
                    restarts: env["restart_time"].as_u64(),
                    unstable_restarts: env["unstable_restarts"].as_u64(),
                    uptime_since_ms: uptime,
                    started: uptime.and_then(local_iso_ms),
                    home: None,
                    user: None,
                    port,
                    script: s(&env["pm_exec_path"]),
                    args,
                    mentions: Vec::new(),
                    error_log: s(&env["pm_err_log_path"]),
                    error_tail: Vec::new(),
                }
            })
            .collect(),
    )
}

fn local_iso_ms(ms: u64) -> Option<String> {
    let t = chrono::DateTime::from_timestamp_millis(i64::try_from(ms).ok()?)?;
    Some(
        t.with_timezone(&chrono::Local)
            .naive_local()
            .format("%Y-%m-%dT%H:%M:%S")
            .to_string(),
    )
}

/// The last `n` lines of a log, each with `FILE:LINE` (lines are counted over the whole file
/// when it is at most `max_bytes`; otherwise the source says it is the tail).
fn tail_lines(host: &dyn Host, path: &str, max_bytes: u64, n: usize) -> Vec<(String, String)> {
    let Ok(bytes) = host.read(path) else {
        return Vec::new();
    };
    let whole = bytes.len() as u64 <= max_bytes;
    let start = if whole {
        0
    } else {
        bytes.len() - max_bytes as usize
    };
    let text = String::from_utf8_lossy(&bytes[start..]);
    let lines: Vec<&str> = text.lines().collect();
    let first = lines.len().saturating_sub(n);
    lines[first..]
        .iter()
        .enumerate()
        .map(|(i, l)| {
            let src = if whole {
                format!("{path}:{}", first + i + 1)
            } else {
                format!("{path} (tail)")
            };
            (src, l.to_string())
        })
        .collect()
}

/// The running PHP-FPM masters (`php-fpm: master process (CONF)` in the process list).
fn fpm_masters(
    host: &dyn Host,
    procs: &[Proc],
    opts: &GatherOptions,
) -> (Vec<FpmMaster>, Vec<Skipped>) {
    let mut out = Vec::new();
    let skipped = Vec::new();
    for p in procs {
        let Some(config) = fpm_master_config(&p.cmdline) else {
            continue;
        };
        out.push(fpm_master(host, p.pid, config, opts));
    }
    (out, skipped)
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

fn fpm_master(
    host: &dyn Host,
    pid: u32,
    config: Option<PathBuf>,
    opts: &GatherOptions,
) -> FpmMaster {
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
    let cfg = match fpm::load_with(host, &path) {
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
            match host.read(&p.to_string_lossy()) {
                Ok(bytes) => {
                    let start = bytes.len().saturating_sub(opts.log_bytes as usize);
                    let text = String::from_utf8_lossy(&bytes[start..]);
                    let mut lines = text.lines();
                    if start > 0 {
                        lines.next(); // a partial line
                    }
                    m.events = lines.filter_map(event).collect();
                }
                Err(e) => m.problems.push(format!("read {}: {e}", p.display())),
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

/// Where distributions put PHP-FPM's main configuration.
const FPM_CONFIGS: &[&str] = &[
    "/etc/php/*/fpm/php-fpm.conf",
    "/etc/php-fpm.conf",
    "/etc/php*/php-fpm.conf",
    "/usr/local/etc/php-fpm.conf",
];

/// Every PHP-FPM configuration on disk, with its pools, whether a master runs it, and (Debian's
/// layout) its unit.
fn fpm_installed(
    host: &dyn Host,
    masters: &[FpmMaster],
    skipped: &mut Vec<Skipped>,
) -> Vec<FpmInstall> {
    let mut paths: Vec<String> = FPM_CONFIGS.iter().flat_map(|p| fs::glob(host, p)).collect();
    paths.sort();
    paths.dedup();
    let mut out = Vec::new();
    for p in paths {
        let path = PathBuf::from(&p);
        let version = p
            .strip_prefix("/etc/php/")
            .and_then(|r| r.split('/').next())
            .map(str::to_string);
        let unit = version.as_ref().map(|v| format!("php{v}-fpm.service"));
        let running = masters.iter().any(|m| m.config.as_deref() == Some(&path));
        match fpm::load_with(host, &path) {
            Ok(cfg) => {
                for (at, why) in &cfg.problems {
                    skipped.push(Skipped::new(format!("php-fpm config {at}"), why.clone()));
                }
                out.push(FpmInstall {
                    config: path,
                    version,
                    unit,
                    running,
                    pools: cfg.pools.iter().map(FpmPool::from).collect(),
                    problems: cfg
                        .problems
                        .iter()
                        .map(|(p, why)| format!("{p}: {why}"))
                        .collect(),
                });
            }
            Err(e) => skipped.push(Skipped::new(format!("php-fpm config {p}"), e.to_string())),
        }
    }
    out
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
        kind: kind.into(),
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
    l.contains("Out of memory")
        || l.contains("Killed process")
        || l.contains("oom-kill")
        || l.contains("invoked oom-killer")
}

/// The kernel's OOM kills: `journalctl -k` on a systemd host, else (or when the journal holds
/// no kernel lines, as in a container) `dmesg --time-format iso`, which gives wall-clock times.
fn kernel_oom(
    host: &dyn Host,
    systemd: bool,
    opts: &GatherOptions,
) -> (Option<KernelOom>, Vec<Skipped>) {
    let mut skipped = Vec::new();
    if systemd && find_program(host, "journalctl").is_some() {
        let since = format!("--since={}", opts.since);
        match host.run(&Cmd::new(
            &["journalctl", "-k", &since, "--no-pager", "-o", "short-iso"],
            opts.wait(),
        )) {
            Ok(out) if out.lines().any(|l| !l.starts_with("-- ")) => {
                return (Some(oom_from("journalctl -k", &out)), skipped)
            }
            Ok(_) => {}
            Err(e) => skipped.push(Skipped::new("journalctl -k", format!("{e}; trying dmesg"))),
        }
    }
    if find_program(host, "dmesg").is_none() {
        skipped.push(Skipped::new(
            "kernel OOM kills",
            "neither journalctl (with systemd) nor dmesg is available",
        ));
        return (None, skipped);
    }
    match host.run(&Cmd::new(&["dmesg", "--time-format", "iso"], opts.wait())) {
        Ok(out) => (Some(oom_from("dmesg --time-format iso", &out)), skipped),
        Err(e) => {
            skipped.push(Skipped::new(
                "kernel OOM kills (dmesg)",
                format!(
                    "{e}: the kernel log is restricted; run as root or set \
                     `sysctl kernel.dmesg_restrict=0`"
                ),
            ));
            (None, skipped)
        }
    }
}

fn oom_from(source: &str, out: &str) -> KernelOom {
    let lines: Vec<String> = out
        .lines()
        .filter(|l| is_oom_line(l))
        .map(str::to_string)
        .collect();
    KernelOom {
        source: source.to_string(),
        kills: oom_kills(&lines),
        lines,
    }
}

/// A kernel line without its time and, from the journal, `HOST kernel: `.
fn kernel_text(l: &str, timed: bool) -> &str {
    let body = if timed {
        l.split_once(' ').map_or(l, |(_, b)| b)
    } else {
        l
    };
    match body.split_once(" kernel: ") {
        Some((host, rest)) if !host.contains(' ') => rest,
        _ => body,
    }
}

/// One kill per killed PID, from the kernel's lines (`oom-kill:...,task_memcg=/x,task=NAME,
/// pid=PID,uid=0` and `Killed process PID (NAME) total-vm:...`).
pub fn oom_kills(lines: &[String]) -> Vec<OomKill> {
    let mut kills: Vec<OomKill> = Vec::new();
    for l in lines {
        let time = l
            .get(..19)
            .and_then(|t| medic_parse::time::LogTime::parse_iso(t.as_bytes()))
            .map(|t| t.to_string());
        if let Some(i) = l.find("oom-kill:") {
            let fields = &l[i + "oom-kill:".len()..];
            let get = |k: &str| {
                fields
                    .split(',')
                    .find_map(|f| f.strip_prefix(k))
                    .map(str::to_string)
            };
            let pid = get("pid=").and_then(|p| p.parse().ok());
            let k = upsert(&mut kills, pid);
            k.memcg = get("task_memcg=");
            k.task = k.task.take().or_else(|| get("task="));
            k.time = k.time.take().or(time);
            if k.line.is_empty() {
                k.line = l[i..].to_string();
            }
        } else if let Some(i) = l.find("Killed process ") {
            let rest = &l[i + "Killed process ".len()..];
            let pid = rest.split_whitespace().next().and_then(|p| p.parse().ok());
            let task = rest
                .split_once('(')
                .and_then(|(_, r)| r.split_once(')'))
                .map(|(t, _)| t.to_string());
            let timed = time.is_some();
            let k = upsert(&mut kills, pid);
            k.task = k.task.take().or(task);
            k.time = k.time.take().or(time);
            // The `Killed process` line says what was killed and how big it was.
            k.line = kernel_text(l, timed).to_string();
        }
    }
    kills.retain(|k| k.pid.is_some());
    kills
}

fn upsert(kills: &mut Vec<OomKill>, pid: Option<u32>) -> &mut OomKill {
    let idx = match kills.iter().position(|k| k.pid == pid && pid.is_some()) {
        Some(i) => i,
        None => {
            kills.push(OomKill {
                time: None,
                pid,
                task: None,
                memcg: None,
                line: String::new(),
            });
            kills.len() - 1
        }
    };
    &mut kills[idx]
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
        assert_eq!(
            pm2_daemon_home("PM2 v5.4.3: God Daemon (/home/deploy/.pm2)").as_deref(),
            Some("/home/deploy/.pm2")
        );
        assert_eq!(pm2_daemon_home("node /usr/bin/pm2 jlist"), None);
    }

    #[test]
    fn pm2_list() {
        let out = "banner\n[{\"name\":\"api\",\"pid\":42,\"pm2_env\":{\"status\":\"errored\",\"restart_time\":15,\"unstable_restarts\":3,\"pm_uptime\":1700000000000,\"env\":{\"PORT\":\"3000\"},\"pm_err_log_path\":\"/home/d/.pm2/logs/api-error.log\"}}]";
        let l = parse_pm2_jlist(out).unwrap();
        assert_eq!(l[0].name, "api");
        assert_eq!(l[0].status.as_deref(), Some("errored"));
        assert_eq!(l[0].restarts, Some(15));
        assert_eq!(l[0].port.as_deref(), Some("3000"));
        let keys = vec![(
            "127.0.0.1:3000".to_string(),
            TargetKey::of("127.0.0.1:3000").unwrap(),
        )];
        assert_eq!(pm2_mentions(&l[0], &keys)[0].source, "PORT");
    }

    #[test]
    fn show_blocks_and_oom_kills() {
        let units = parse_show("Id=a.service\nActiveState=failed\nNRestarts=4\n\nId=b.socket\nListen=127.0.0.1:8000 (Stream)\n");
        assert_eq!(units.len(), 2);
        assert_eq!(units[0].n_restarts(), Some(4));
        let lines: Vec<String> = [
            "2026-12-04T21:40:01,123+00:00 python3 invoked oom-killer: gfp_mask=0xcc0(GFP_KERNEL), order=0, oom_score_adj=0",
            "2026-12-04T21:40:01,124+00:00 oom-kill:constraint=CONSTRAINT_MEMCG,nodemask=(null),cpuset=/,mems_allowed=0,oom_memcg=/medic,task_memcg=/system.slice/my-app.service,task=python3,pid=4242,uid=0",
            "2026-12-04T21:40:01,125+00:00 Memory cgroup out of memory: Killed process 4242 (python3) total-vm:220000kB, anon-rss:51000kB",
        ]
        .map(String::from)
        .to_vec();
        let k = oom_kills(&lines);
        assert_eq!(k.len(), 1, "{k:?}");
        assert_eq!(k[0].pid, Some(4242));
        assert_eq!(k[0].task.as_deref(), Some("python3"));
        assert_eq!(k[0].unit(), Some("my-app.service"));
        assert_eq!(k[0].time.as_deref(), Some("2026-12-04T21:40:01"));
        assert!(k[0]
            .line
            .starts_with("Memory cgroup out of memory: Killed process 4242"));
    }
}
