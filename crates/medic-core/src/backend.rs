//! Who serves a target: the systemd unit, pm2 app, PHP-FPM pool or process behind an upstream,
//! dead or alive, how sure that match is, and what that backend's own records say at the time
//! of the failure (`causes.md` §3 `backend`).
//!
//! A live listener names its process and unit for certain (its cgroup). A dead backend has no
//! listener, so the match comes from what the supervisors recorded: a unit whose `ExecStart`,
//! `Environment`, `EnvironmentFile` or socket unit names the port or path, a unit whose journal
//! says it listened there, a pm2 app whose `PORT` is the port, a PHP-FPM pool whose `listen` is
//! the path. Last, and said to be a guess, a unit that failed shortly before the first failure.
//!
//! Pure: reads [`Facts`], does no I/O. The gatherer (`nginx-medic`'s supervisor probe) uses
//! [`names_target`] to decide which units' journals to read.

use medic_parse::time::LogTime;
use serde::{Deserialize, Serialize};

use crate::facts::supervisor::{FpmInstall, Mention, Pm2Process, SystemdUnit};
use crate::facts::Facts;
use crate::rules::Evidence;

/// The backend of a finding (`causes.md` §3 additions).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Backend {
    /// `systemd`, `pm2`, `php-fpm`, `docker` or `process`.
    pub supervisor: String,
    /// The unit (`my-backend.service`), pm2 app, pool (`www`) or program.
    pub name: String,
    /// In the supervisor's own words (`failed`, `activating (auto-restart)`, `errored`).
    pub state: Option<String>,
    pub restarts: Option<u64>,
    pub pid: Option<u32>,
    /// When it entered that state, local time.
    pub since: Option<String>,
    /// `certain` (it holds the socket now), `high` (its own configuration or journal names the
    /// target), `low` (a guess from timing alone).
    pub confidence: String,
    /// How the match was made.
    pub why: String,
    /// The unit that runs it (a PHP-FPM pool's `php8.2-fpm.service`), when it differs from
    /// `name` or `name` is not a unit.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub unit: Option<String>,
    /// The file that configures it (unit file, pool file:line, pm2 script).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub config: Option<String>,
    /// pm2: the daemon's home and user, which every `pm2` command for the app needs.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pm2_home: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
}

/// A target as the supervisors may name it: a TCP port (with the addresses nginx used) or a
/// unix socket path.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TargetKey {
    Tcp { port: u16 },
    Unix { path: String },
}

impl TargetKey {
    /// From an upstream as nginx names it (`127.0.0.1:8000`, `[::1]:80`, `localhost:3000`,
    /// `unix:/run/x.sock`). `None` for a group name.
    pub fn of(upstream: &str) -> Option<TargetKey> {
        if let Some(p) = upstream.strip_prefix("unix:") {
            return Some(TargetKey::Unix {
                path: p.to_string(),
            });
        }
        let (_, port) = upstream.rsplit_once(':')?;
        Some(TargetKey::Tcp {
            port: port.parse().ok()?,
        })
    }
}

/// Whether `text` names the target: a unix path as a whole path, or a port written as a port
/// (`:8000`, `PORT=8000`, `--port 8000`, `-p 8000`, `--bind 0.0.0.0:8000`, `listen 8000`), not
/// any number that happens to have the same digits (`--workers 8000`).
pub fn names_target(text: &str, key: &TargetKey) -> bool {
    match key {
        TargetKey::Unix { path } => text.match_indices(path.as_str()).any(|(i, _)| {
            let next = text[i + path.len()..].chars().next();
            !next.is_some_and(|c| c.is_alphanumeric() || matches!(c, '.' | '-' | '_' | '/'))
        }),
        TargetKey::Tcp { port } => names_port(text, *port),
    }
}

fn names_port(text: &str, port: u16) -> bool {
    let p = port.to_string();
    let b = text.as_bytes();
    for (i, _) in text.match_indices(&p) {
        let end = i + p.len();
        if b.get(end).is_some_and(u8::is_ascii_digit) {
            continue;
        }
        if i == 0 {
            continue;
        }
        let before = b[i - 1];
        if before.is_ascii_digit() {
            continue;
        }
        if before == b':' {
            return true;
        }
        // `KEY=8000`, `--port 8000`, `-p 8000`, `listen "8000"`: the word before names a port.
        let mut j = i;
        while j > 0 && matches!(b[j - 1], b'=' | b' ' | b'"' | b'\'' | b'\t') {
            j -= 1;
        }
        if j == i {
            continue;
        }
        // A port given as a bare argument (`python3 -m http.server 8000`): a whole token,
        // unless the option before it counts something else.
        let whole = b
            .get(end)
            .is_none_or(|c| c.is_ascii_whitespace() || *c == b'"' || *c == b'\'');
        let bare = b[i - 1] == b' ' && whole && port >= 1024;
        let mut k = j;
        while k > 0 && (b[k - 1].is_ascii_alphanumeric() || matches!(b[k - 1], b'-' | b'_')) {
            k -= 1;
        }
        let word = text[k..j].to_ascii_lowercase();
        let counts = [
            "worker", "thread", "timeout", "max", "limit", "size", "conn", "backlog",
        ]
        .iter()
        .any(|w| word.contains(w));
        if bare && !counts {
            return true;
        }
        if word.contains("port")
            || word.contains("bind")
            || word.contains("listen")
            || word == "-p"
            || word == "-b"
        {
            return true;
        }
    }
    false
}

/// A journal line (`journalctl -o short-iso`): `2026-11-20T14:32:10+0000 host ident[pid]: msg`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct JournalLine<'a> {
    pub time: Option<LogTime>,
    pub ident: &'a str,
    pub pid: Option<u32>,
    pub message: &'a str,
    pub line: &'a str,
}

impl<'a> JournalLine<'a> {
    pub fn parse(line: &'a str) -> JournalLine<'a> {
        let time = line
            .get(..19)
            .and_then(|t| LogTime::parse_iso(t.as_bytes()));
        let mut rest = line;
        if time.is_some() {
            // Skip the time and the host.
            rest = line.splitn(3, ' ').nth(2).unwrap_or("");
        }
        let (head, message) = rest.split_once(": ").unwrap_or(("", rest));
        let (ident, pid) = match head.split_once('[') {
            Some((i, p)) => (i, p.trim_end_matches(']').parse().ok()),
            None => (head, None),
        };
        JournalLine {
            time,
            ident,
            pid,
            message,
            line,
        }
    }

    /// A line systemd (PID 1) wrote about the unit, not the application's own output.
    pub fn is_systemd(&self) -> bool {
        self.ident == "systemd" || self.ident == "init"
    }
}

/// systemd's timestamps (`Fri 2026-11-20 14:32:10 UTC`) as local ISO time; `None` for `n/a` or
/// an empty value.
pub fn systemd_time(v: &str) -> Option<String> {
    let mut parts = v.split_whitespace();
    let first = parts.next()?;
    let (date, time) = if first.len() == 10 && first.as_bytes()[4] == b'-' {
        (first, parts.next()?)
    } else {
        (parts.next()?, parts.next()?)
    };
    let t = LogTime::parse_iso(format!("{date}T{time}").as_bytes())?;
    Some(t.to_string())
}

/// How sure a match is, best first.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Sure {
    Certain,
    High,
    Low,
}

impl Sure {
    fn as_str(self) -> &'static str {
        match self {
            Sure::Certain => "certain",
            Sure::High => "high",
            Sure::Low => "low",
        }
    }
}

/// The failure window a backend is matched against (error-log first and last entry).
#[derive(Clone, Copy, Debug, Default)]
pub struct Window {
    pub first: Option<LogTime>,
    pub last: Option<LogTime>,
}

/// How far before the first failure a unit's failure still counts as its cause when nothing
/// else ties it to the target.
const GUESS_BEFORE_SECS: i64 = 600;

/// The backend of `upstream`, when the facts name one.
pub fn find(facts: &Facts, upstream: &str, window: Window) -> Option<Backend> {
    let probes = facts.probes.as_ref()?;
    let sup = &probes.supervisors;
    let key = TargetKey::of(upstream);
    let mut found: Vec<(Sure, Backend)> = Vec::new();

    // 1. The process that listens on it now (its cgroup names its unit).
    for t in crate::rules::support::targets_of(facts, upstream) {
        let Some(l) = &t.facts.listener else { continue };
        let Some(p) = l.processes.iter().min_by_key(|p| p.pid) else {
            continue;
        };
        let why = format!("{} (pid {}) listens on {}", p.program, p.pid, l.display());
        if let Some(app) = sup
            .pm2
            .iter()
            .flatten()
            .find(|a| a.pid == Some(u64::from(p.pid)))
        {
            found.push((Sure::Certain, pm2_backend(app, why)));
        } else if let Some(u) = p
            .unit
            .as_deref()
            .and_then(|u| sup.systemd.iter().find(|s| s.unit == u))
        {
            found.push((Sure::Certain, unit_backend(u, why)));
        } else {
            found.push((
                Sure::Certain,
                Backend {
                    supervisor: if p.container.is_some() {
                        "docker".into()
                    } else {
                        "process".into()
                    },
                    name: p.unit.clone().unwrap_or_else(|| p.program.clone()),
                    state: Some("running".into()),
                    restarts: None,
                    pid: Some(p.pid),
                    since: p.start_time.clone(),
                    confidence: String::new(),
                    why,
                    unit: p.unit.clone(),
                    config: None,
                    pm2_home: None,
                    user: None,
                },
            ));
        }
    }

    if let Some(key) = &key {
        // 2. Their own records name the target.
        for u in &sup.systemd {
            if let Some(m) = u.mentions.iter().find(|m| m.target == upstream) {
                found.push((Sure::High, unit_backend(u, mention_why(m))));
            }
        }
        for app in sup.pm2.iter().flatten() {
            if let Some(m) = app.mentions.iter().find(|m| m.target == upstream) {
                found.push((Sure::High, pm2_backend(app, mention_why(m))));
            }
        }
        if let TargetKey::Unix { path } = key {
            for inst in &sup.fpm_installed {
                for pool in &inst.pools {
                    if pool.listen.as_deref() == Some(path.as_str()) {
                        found.push((Sure::High, fpm_backend(facts, inst, pool, None)));
                    }
                }
            }
        }
    }

    // 3. A unit that failed or restarted shortly before the first failure: a guess.
    if found.is_empty() {
        if let Some(first) = window.first {
            let guesses: Vec<&SystemdUnit> = sup
                .systemd
                .iter()
                .filter(|u| u.mentions.is_empty() && failed_near(u, first, window.last))
                .collect();
            if guesses.len() == 1 {
                let u = guesses[0];
                found.push((
                    Sure::Low,
                    unit_backend(
                        u,
                        format!(
                            "a guess from timing alone: {} is the only unit that stopped or failed within {} min before the first failure; nothing in its configuration names {upstream}",
                            u.unit,
                            GUESS_BEFORE_SECS / 60
                        ),
                    ),
                ));
            }
        }
    }

    found.sort_by_key(|(s, _)| *s);
    let (sure, mut b) = found.first().cloned()?;
    let others: Vec<&str> = found
        .iter()
        .filter(|(s, o)| *s == sure && o.name != b.name)
        .map(|(_, o)| o.name.as_str())
        .collect();
    b.confidence = sure.as_str().to_string();
    if !others.is_empty() && sure != Sure::Certain {
        b.confidence = Sure::Low.as_str().to_string();
        b.why = format!(
            "{}; but so do {}: check which one serves it",
            b.why,
            others.join(", ")
        );
    }
    Some(b)
}

fn mention_why(m: &Mention) -> String {
    match m.source.as_str() {
        "journal" => format!("its journal says it listened there: {}", m.text),
        s => format!("its {s} names {}: {}", m.target, m.text),
    }
}

fn failed_near(u: &SystemdUnit, first: LogTime, last: Option<LogTime>) -> bool {
    let state = u.active_state().unwrap_or("");
    let sub = u.properties.get("SubState").map_or("", String::as_str);
    if !(state == "failed" || sub == "auto-restart" || u.n_restarts().unwrap_or(0) > 0) {
        return false;
    }
    let end = last.unwrap_or(first).0 + 60;
    ["ExecMainExitTimestamp", "InactiveEnterTimestamp"]
        .iter()
        .filter_map(|p| u.properties.get(*p).and_then(|v| systemd_time(v)))
        .filter_map(|t| LogTime::parse_iso(t.as_bytes()))
        .any(|t| t.0 >= first.0 - GUESS_BEFORE_SECS && t.0 <= end)
}

fn unit_backend(u: &SystemdUnit, why: String) -> Backend {
    let state = u.active_state().map(|s| {
        let sub = u.properties.get("SubState").map_or("", String::as_str);
        if sub == "auto-restart" {
            format!("{s} (auto-restart)")
        } else {
            s.to_string()
        }
    });
    let since_prop = match u.active_state() {
        Some("active") => "ActiveEnterTimestamp",
        _ => "InactiveEnterTimestamp",
    };
    let pid = u
        .properties
        .get("MainPID")
        .and_then(|p| p.parse().ok())
        .filter(|p| *p != 0);
    Backend {
        supervisor: "systemd".into(),
        name: u.unit.clone(),
        state,
        restarts: u.n_restarts(),
        pid,
        since: u.properties.get(since_prop).and_then(|v| systemd_time(v)),
        confidence: String::new(),
        why,
        unit: None,
        config: u
            .properties
            .get("FragmentPath")
            .filter(|p| !p.is_empty())
            .cloned(),
        pm2_home: None,
        user: None,
    }
}

fn pm2_backend(app: &Pm2Process, why: String) -> Backend {
    Backend {
        supervisor: "pm2".into(),
        name: app.name.clone(),
        state: app.status.clone(),
        restarts: app.restarts,
        pid: app
            .pid
            .and_then(|p| u32::try_from(p).ok())
            .filter(|p| *p != 0),
        since: app.started.clone(),
        confidence: String::new(),
        why,
        unit: None,
        config: app.script.clone(),
        pm2_home: app.home.clone(),
        user: app.user.clone(),
    }
}

pub(crate) fn fpm_backend(
    facts: &Facts,
    inst: &FpmInstall,
    pool: &crate::facts::supervisor::FpmPool,
    why: Option<String>,
) -> Backend {
    let unit = inst.unit.as_deref().and_then(|u| {
        facts
            .probes
            .as_ref()?
            .supervisors
            .systemd
            .iter()
            .find(|s| s.unit == u)
    });
    let state = match unit.and_then(|u| u.active_state()) {
        Some(s) => Some(s.to_string()),
        None if inst.running => Some("running".into()),
        None => Some("not running".into()),
    };
    Backend {
        supervisor: "php-fpm".into(),
        name: pool.name.clone(),
        state,
        restarts: unit.and_then(SystemdUnit::n_restarts),
        pid: None,
        since: unit.and_then(|u| {
            u.properties
                .get("InactiveEnterTimestamp")
                .and_then(|v| systemd_time(v))
        }),
        confidence: String::new(),
        why: why.unwrap_or_else(|| {
            format!(
                "the pool [{}] of {} listens on it ({})",
                pool.name,
                inst.config.display(),
                pool.listen_at.as_deref().unwrap_or("listen")
            )
        }),
        unit: inst.unit.clone(),
        config: pool.listen_at.clone(),
        pm2_home: None,
        user: None,
    }
}

/// The installed PHP-FPM pools, with their installation, whose `listen` is another unix path
/// than `path` (nginx points at a socket no pool creates: an old PHP version's, a typo).
pub fn other_fpm_sockets<'f>(
    facts: &'f Facts,
    path: &str,
) -> Vec<(&'f FpmInstall, &'f crate::facts::supervisor::FpmPool)> {
    let Some(p) = &facts.probes else {
        return Vec::new();
    };
    p.supervisors
        .fpm_installed
        .iter()
        .flat_map(|i| i.pools.iter().map(move |pool| (i, pool)))
        .filter(|(_, pool)| {
            pool.listen
                .as_deref()
                .is_some_and(|l| l.starts_with('/') && l != path)
        })
        .collect()
}

/// What the backend's own records say at the failure: its state, the journal lines nearest the
/// first and last failure (the application's own output first, then systemd's), pm2's error
/// log, and the OOM kills that match it. One evidence item per fact.
pub fn evidence(facts: &Facts, b: &Backend, window: Window) -> Vec<Evidence> {
    let Some(p) = &facts.probes else {
        return Vec::new();
    };
    let sup = &p.supervisors;
    let mut out = Vec::new();
    let unit_name = match b.supervisor.as_str() {
        "systemd" => Some(b.name.as_str()),
        _ => b.unit.as_deref(),
    };
    let unit = unit_name.and_then(|n| sup.systemd.iter().find(|u| u.unit == n));
    if let Some(u) = unit {
        let prop = |k: &str| u.properties.get(k).map_or("?", String::as_str).to_string();
        out.push(Evidence::other(
            "supervisor",
            format!("systemctl show {}", u.unit),
            format!(
                "ActiveState={} SubState={} Result={} NRestarts={} ExecMainStatus={}",
                prop("ActiveState"),
                prop("SubState"),
                prop("Result"),
                prop("NRestarts"),
                prop("ExecMainStatus")
            ),
        ));
        out.extend(journal_evidence(u, window));
    }
    if b.supervisor == "pm2" {
        if let Some(app) = sup
            .pm2
            .iter()
            .flatten()
            .find(|a| a.name == b.name && a.home == b.pm2_home)
        {
            out.push(Evidence::other(
                "supervisor",
                format!("pm2 jlist ({})", app.home.as_deref().unwrap_or("?")),
                format!(
                    "{}: status {}, {} restarts, {} unstable restarts",
                    app.name,
                    app.status.as_deref().unwrap_or("?"),
                    app.restarts.unwrap_or(0),
                    app.unstable_restarts.unwrap_or(0)
                ),
            ));
            // The application's last words: the last error headline of its error log (a stack
            // trace ends in frames, not in the message), then the last distinct lines.
            let mut seen = std::collections::HashSet::new();
            let headline = app.error_tail.iter().rev().find(|(_, t)| {
                let t = t.trim_start();
                t.starts_with("Error") || t.contains("Error:") || t.contains("Exception")
            });
            let mut tail: Vec<&(String, String)> = headline.into_iter().collect();
            seen.extend(tail.iter().map(|(_, t)| t.trim()));
            let mut rest: Vec<&(String, String)> = app
                .error_tail
                .iter()
                .rev()
                .filter(|(_, t)| !t.trim().is_empty() && seen.insert(t.trim()))
                .take(2)
                .collect();
            rest.reverse();
            tail.extend(rest);
            for (src, text) in tail {
                out.push(Evidence::other("log", src.clone(), text.clone()));
            }
        }
    }
    out.extend(oom_evidence(facts, b, unit, window));
    out
}

/// How many of the application's own journal lines, and of systemd's, are shown.
const APP_LINES: usize = 3;
const SYSTEMD_LINES: usize = 3;

/// The journal lines nearest the failure: the latest ones at or before the last failure (plus a
/// few seconds, as log times have whole seconds), so an older crash loop earlier in the window
/// is not what the reader sees. Repeated messages (a crash loop says the same each time) are
/// shown once, the latest.
fn journal_evidence(u: &SystemdUnit, window: Window) -> Vec<Evidence> {
    let lines: Vec<JournalLine<'_>> = u.journal.iter().map(|l| JournalLine::parse(l)).collect();
    let limit = window.last.map(|t| t.0 + 5);
    let floor = window.first.map(|t| t.0 - GUESS_BEFORE_SECS);
    let before = |l: &&JournalLine<'_>| match (limit, l.time) {
        (Some(lim), Some(t)) => t.0 <= lim,
        _ => true,
    };
    let near = |l: &&JournalLine<'_>| match (floor, l.time) {
        (Some(f), Some(t)) => t.0 >= f,
        _ => true,
    };
    // The latest `n` distinct messages of a kind at or before `until`; those near the failure
    // when there are any, else the latest before it (a unit stopped long ago).
    let pick = |kind: &dyn Fn(&JournalLine<'_>) -> bool, until: Option<i64>, n: usize| {
        let upto = |l: &&JournalLine<'_>| match (until, l.time) {
            (Some(u), Some(t)) => t.0 <= u,
            _ => before(l),
        };
        let any_near = lines
            .iter()
            .filter(upto)
            .filter(|l| kind(l))
            .any(|l| near(&l));
        let mut seen = std::collections::HashSet::new();
        let mut v: Vec<&JournalLine<'_>> = lines
            .iter()
            .rev()
            .filter(upto)
            .filter(|l| kind(l))
            .filter(|l| !any_near || near(l))
            .filter(|l| seen.insert(l.message))
            .take(n)
            .collect();
        v.reverse();
        v
    };
    // systemd's record of the death first (how it ended), then its other lifecycle lines.
    let deaths = pick(
        &|l| l.is_systemd() && is_death(l.message),
        None,
        SYSTEMD_LINES,
    );
    let others = pick(
        &|l| l.is_systemd() && is_lifecycle(l.message) && !is_death(l.message),
        None,
        2,
    );
    // The application's last words: what it wrote up to its death (not the requests it served
    // after a restart).
    let died = deaths.last().and_then(|l| l.time).map(|t| t.0);
    let app = pick(&|l| !l.is_systemd(), died.or(limit), APP_LINES);
    let mut sys: Vec<&JournalLine<'_>> = deaths.into_iter().chain(others).collect();
    sys.sort_by_key(|l| {
        lines
            .iter()
            .position(|x| std::ptr::eq(x.line, l.line))
            .unwrap_or(0)
    });
    let source = format!("journalctl -u {}", u.unit);
    app.into_iter()
        .chain(sys)
        .map(|l| Evidence::other("journal", source.clone(), l.line.to_string()))
        .collect()
}

/// systemd's lines that say how the unit's process ended.
fn is_death(msg: &str) -> bool {
    [
        "Main process exited",
        "Failed with result",
        "Start request repeated",
        "Failed to start",
        "Killing process",
        "killed by the OOM killer",
    ]
    .iter()
    .any(|w| msg.contains(w))
}

fn is_lifecycle(msg: &str) -> bool {
    [
        "Main process exited",
        "Failed with result",
        "Start request repeated",
        "Failed to start",
        "Scheduled restart",
        "Stopped",
        "Stopping",
        "Killing process",
        "A process of this unit has been killed by the OOM killer",
        "Started",
    ]
    .iter()
    .any(|w| msg.contains(w))
}

/// How close the kernel's kill and systemd's `status=9/KILL` of the unit must be: they are
/// the same event, seen twice within a second; another kill of a same-named task (another
/// container's `python3`, an earlier run) a minute away is not it.
const SIGKILL_SECS: i64 = 3;

/// The OOM kills of this backend: by the unit its memory cgroup names, by a PID it had, or by
/// its task name together with a kill-by-signal-9 of the unit within seconds. Never by time
/// alone: the ring buffer holds every process's kills.
fn oom_evidence(
    facts: &Facts,
    b: &Backend,
    unit: Option<&SystemdUnit>,
    window: Window,
) -> Vec<Evidence> {
    let Some(oom) = facts
        .probes
        .as_ref()
        .and_then(|p| p.supervisors.oom.as_ref())
    else {
        return Vec::new();
    };
    let journal: Vec<JournalLine<'_>> = unit
        .map(|u| u.journal.iter().map(|l| JournalLine::parse(l)).collect())
        .unwrap_or_default();
    let mut pids: Vec<u32> = journal
        .iter()
        .filter_map(|l| l.pid)
        .filter(|p| *p != 1)
        .collect();
    pids.extend(b.pid);
    let comms: Vec<&str> = journal
        .iter()
        .filter(|l| !l.is_systemd())
        .map(|l| l.ident)
        .collect();
    let sigkills: Vec<LogTime> = journal
        .iter()
        .filter(|l| {
            l.is_systemd()
                && (l.message.contains("status=9/KILL") || l.message.contains("oom-kill"))
        })
        .filter_map(|l| l.time)
        .collect();
    let unit_name = unit.map(|u| u.unit.as_str());
    let mut out = Vec::new();
    for k in &oom.kills {
        let t = k
            .time
            .as_deref()
            .and_then(|t| LogTime::parse_iso(t.as_bytes()));
        let why = if unit_name.is_some() && k.unit() == unit_name {
            Some(format!(
                "its memory cgroup is {}",
                k.memcg.as_deref().unwrap_or("?")
            ))
        } else if k.pid.is_some_and(|p| pids.contains(&p)) && unit_name.is_none() {
            Some("the PID is the backend's".to_string())
        } else if let (Some(task), Some(t)) = (k.task.as_deref(), t) {
            (comms.contains(&task) && sigkills.iter().any(|s| (s.0 - t.0).abs() <= SIGKILL_SECS)).then(
                || {
                    format!(
                        "task {task} is the unit's program, and systemd saw it die by SIGKILL within {SIGKILL_SECS} s"
                    )
                },
            )
        } else {
            None
        };
        let Some(why) = why else { continue };
        if let (Some(t), Some(last)) = (t, window.last) {
            if t.0 > last.0 + 60 {
                continue;
            }
        }
        out.push(Evidence::other(
            "kernel",
            oom.source.clone(),
            format!(
                "{}{} (matched: {why})",
                k.time
                    .as_deref()
                    .map(|t| format!("{t} "))
                    .unwrap_or_default(),
                k.line
            ),
        ));
    }
    out
}

/// Steps and commands to restart the backend and read why it died, in the host's own words.
/// With no backend found, the `APP` placeholders and what was looked at.
pub fn restart_advice(facts: &Facts, b: Option<&Backend>) -> (Vec<String>, Vec<String>) {
    match b.map(|b| (b.supervisor.as_str(), b)) {
        Some(("systemd", b)) => {
            let u = &b.name;
            let mut steps = vec![
                format!("see its state and last words: `systemctl status {u}` and `journalctl -u {u} -n 50 --no-pager`"),
            ];
            let mut commands = vec![
                format!("systemctl status {u}"),
                format!("journalctl -u {u} -n 50 --no-pager"),
            ];
            if b.state.as_deref() == Some("failed") {
                steps.push(format!(
                    "fix what its log says, then clear the start limit and start it: `systemctl reset-failed {u} && systemctl restart {u}`"
                ));
                commands.push(format!("systemctl reset-failed {u}"));
            } else {
                steps.push(format!(
                    "fix what its log says, then restart it: `systemctl restart {u}`"
                ));
            }
            commands.push(format!("systemctl restart {u}"));
            (steps, commands)
        }
        Some(("pm2", b)) => {
            let prefix = pm2_prefix(b);
            let n = &b.name;
            (
                vec![
                    format!("read its last words: `{prefix}pm2 logs {n} --lines 50 --nostream`"),
                    format!("fix what the log says, then restart it: `{prefix}pm2 restart {n}`"),
                ],
                vec![
                    format!("{prefix}pm2 logs {n} --lines 50 --nostream"),
                    format!("{prefix}pm2 restart {n}"),
                ],
            )
        }
        Some(("php-fpm", b)) => {
            let u = b
                .unit
                .as_deref()
                .map_or("php-fpm", |u| u.trim_end_matches(".service"));
            (
                vec![
                    format!("read why it is not running: `journalctl -u {u} -n 50 --no-pager`"),
                    format!("start it: `systemctl restart {u}`"),
                ],
                vec![
                    format!("journalctl -u {u} -n 50 --no-pager"),
                    format!("systemctl restart {u}"),
                ],
            )
        }
        Some((_, b)) => (
            vec![format!(
                "{} (pid {}) serves it: restart it however it is run, and read its own log",
                b.name,
                b.pid.map_or("?".to_string(), |p| p.to_string())
            )],
            Vec::new(),
        ),
        None => {
            let looked = facts
                .probes
                .as_ref()
                .map(|p| p.supervisors.looked_at.join("; "))
                .filter(|s| !s.is_empty())
                .unwrap_or_else(|| {
                    "no supervisor could be asked (post-mortem or no probes)".to_string()
                });
            (
                vec![
                    "start it: `systemctl restart APP` (or however it is run: pm2, docker, a shell)".to_string(),
                    "read why it stopped: `journalctl -u APP -n 100`; an OOM kill shows in `journalctl -k | grep -i oom`".to_string(),
                    format!("no supervisor names this backend (looked at: {looked}); APP stands for it"),
                ],
                vec![
                    "systemctl restart APP".to_string(),
                    "journalctl -u APP -n 100 --no-pager".to_string(),
                ],
            )
        }
    }
}

/// `sudo -u deploy PM2_HOME=/home/deploy/.pm2 ` when the app's daemon is another user's or has
/// a home other than the default: pm2 run without it starts a new, empty daemon.
fn pm2_prefix(b: &Backend) -> String {
    let mut s = String::new();
    if let Some(u) = b.user.as_deref().filter(|u| *u != "root") {
        s.push_str(&format!("sudo -u {u} "));
    }
    if let Some(h) = &b.pm2_home {
        if s.is_empty() {
            s.push_str("env ");
        }
        s.push_str(&format!("PM2_HOME={h} "));
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ports_are_named_as_ports() {
        let k = TargetKey::of("127.0.0.1:8000").unwrap();
        for yes in [
            "/usr/bin/python3 -m http.server --bind 127.0.0.1 8000",
            "PORT=8000",
            "gunicorn -b 127.0.0.1:8000 app:app",
            "node server.js --port=8000",
            "listen 8000",
            "uvicorn --port 8000",
        ] {
            assert!(names_target(yes, &k), "{yes}");
        }
        for no in [
            "--workers 8000",
            "PORT=18000",
            "PORT=80001",
            "timeout=8000ms",
            "8000",
        ] {
            assert!(!names_target(no, &k), "{no}");
        }
        let u = TargetKey::of("unix:/run/php/php8.2-fpm.sock").unwrap();
        assert!(names_target("listen = /run/php/php8.2-fpm.sock", &u));
        assert!(!names_target("/run/php/php8.2-fpm.sock.old", &u));
    }

    #[test]
    fn journal_lines() {
        let l = JournalLine::parse(
            "2026-12-04T21:40:01+0000 host python3[45]: fatal: config broken, exiting",
        );
        assert_eq!(l.ident, "python3");
        assert_eq!(l.pid, Some(45));
        assert_eq!(l.message, "fatal: config broken, exiting");
        assert_eq!(l.time.unwrap().to_string(), "2026-12-04T21:40:01");
        let s = JournalLine::parse("2026-12-04T21:40:02+0000 host systemd[1]: my-backend.service: Start request repeated too quickly.");
        assert!(s.is_systemd());
        assert_eq!(
            systemd_time("Fri 2026-12-04 21:40:01 UTC").as_deref(),
            Some("2026-12-04T21:40:01")
        );
        assert_eq!(systemd_time("n/a"), None);
        assert_eq!(systemd_time(""), None);
    }
}
