//! The doctor: facts in, ranked root causes out (`nginx-medic diagnose`).
//!
//! The `nginx-medic` crate gathers [`Facts`] (the effective config, what the logs say, what
//! the probes and supervisors saw, `nginx -t`); this module turns them into [`Finding`]s with
//! the rule catalog of `causes.md` §2 ([`crate::rules::cause`]). Nothing here does I/O.
//!
//! Every failure the error log records, grouped by class, upstream and [detail], is one
//! [`Group`]. The causes that explain a class are tried from the most specific to the class
//! itself; the first whose evidence holds names the group's root cause. Upstreams that fail
//! the probes now but have no log entry yet are groups too (count 0). Causes that are not about
//! error-log groups (a 5xx the backend returned, 499s, `nginx -t`) and the latent rules of §2b
//! add their own findings. Then [`rank`] orders them: error over warning over info, then by the
//! requests hurt, then by recency.
//!
//! [detail]: crate::logs::error_summary::detail

use std::net::IpAddr;

use medic_parse::error_log::FailureClass;
use medic_parse::time::LogTime;
use serde::{Deserialize, Serialize};

use crate::backend::{self, Backend};
use crate::config::{Model, Pass, Target};
use crate::facts::supervisor::SupervisorFacts;
use crate::facts::tls::TlsFacts;
use crate::facts::{Connect, Listener, Listeners, Skipped, SocketKind, TargetFacts};
use crate::rules::{self, Evidence, Finding, Severity};

/// Everything a diagnosis reads.
#[derive(Debug, Default)]
pub struct Facts {
    pub models: Vec<Model>,
    pub logs: LogFacts,
    /// `None`: `--no-probe` (post-mortem, files only).
    pub probes: Option<ProbeFacts>,
    /// `nginx -t` of each instance; empty when it was not run (see `skipped`).
    pub nginx_t: Vec<NginxTest>,
    /// The clock now, on nginx's local wall clock (for `backend-starting` and recency).
    pub now: Option<LogTime>,
    /// When the config files on disk last changed (the newest mtime, local wall clock).
    pub config_changed: Option<LogTime>,
}

/// One `nginx -t` run.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct NginxTest {
    /// The command as run (argv joined, for the evidence).
    pub command: String,
    pub ok: bool,
    /// nginx's stderr (its `[emerg]` lines).
    pub stderr: String,
}

/// What the probes saw, live.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct ProbeFacts {
    pub targets: Vec<ProbedTarget>,
    pub listeners: Listeners,
    pub supervisors: SupervisorFacts,
    /// SELinux mode (`enforcing`, `permissive`, `disabled`), when it could be read.
    pub selinux: Option<String>,
}

/// One probed target: the plain facts and, for `https://`, the TLS probe's.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ProbedTarget {
    #[serde(flatten)]
    pub facts: TargetFacts,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls: Option<TlsFacts>,
}

/// A log line as evidence: `FILE:LINE` and its text.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LogLine {
    pub source: String,
    pub text: String,
}

/// What the logs say.
#[derive(Clone, Debug, Default)]
pub struct LogFacts {
    /// The error log's failures, one group per (class, upstream, detail).
    pub groups: Vec<LogGroup>,
    /// 5xx per (upstream, status) that the access log records with their origin.
    pub access_5xx: Vec<Access5xx>,
    /// 499s per upstream.
    pub client_closed: Vec<ClientClosedGroup>,
    /// The error logs read (for the report).
    pub error_logs: Vec<String>,
    pub access_logs: Vec<String>,
}

/// Error-log entries of one class, upstream and detail.
#[derive(Clone, Debug)]
pub struct LogGroup {
    pub class: FailureClass,
    /// As nginx names the peer; `None` when the entries name none.
    pub upstream: Option<String>,
    pub detail: Option<String>,
    pub count: u64,
    pub first: LogTime,
    pub last: LogTime,
    pub first_line: LogLine,
    pub last_line: Option<LogLine>,
    /// (minute start, entries), in time order.
    pub minutes: Vec<(LogTime, u32)>,
    /// The clients with the most entries of the group's class (value, count).
    pub top_clients: Vec<(String, u64)>,
    /// What the clients of these failures got (the access lines joined to them); `None` when
    /// none could be joined (no access log, no `$upstream_addr`, another vhost's log).
    pub impact: Option<rules::Impact>,
}

/// Where a 5xx came from, as the access log tells (`docs/logs-json.md`).
pub use medic_parse::access_log::Origin;

/// 5xx of one (upstream, status, origin) in the access log.
#[derive(Clone, Debug)]
pub struct Access5xx {
    pub upstream: Option<String>,
    pub status: u16,
    pub origin: Origin,
    pub count: u64,
    pub first: LogTime,
    pub last: LogTime,
    pub example: LogLine,
    pub minutes: Vec<(LogTime, u32)>,
}

/// 499s (the client closed the connection before nginx answered) towards one upstream.
#[derive(Clone, Debug)]
pub struct ClientClosedGroup {
    pub upstream: Option<String>,
    pub count: u64,
    pub first: Option<LogTime>,
    pub last: Option<LogTime>,
    /// Mean and maximum `$upstream_response_time` of those requests, when logged.
    pub mean_wait: Option<f64>,
    pub max_wait: Option<f64>,
    pub example: Option<LogLine>,
}

/// Failures of one class towards one upstream: what a cause explains.
pub struct Group<'f> {
    pub class: FailureClass,
    pub upstream: Option<String>,
    pub detail: Option<&'f str>,
    /// `None`: only the probes see this failure (no entry in the logs yet).
    pub log: Option<&'f LogGroup>,
    /// The probes' facts of this upstream (every server, for a group name).
    pub targets: Vec<&'f ProbedTarget>,
    /// The config's passes that send to it.
    pub passes: Vec<(&'f Model, &'f Pass)>,
    /// Who serves it, when the supervisors name it ([`crate::backend::find`]).
    pub backend: Option<Backend>,
    pub facts: &'f Facts,
}

impl<'f> Group<'f> {
    /// Whether probes ran (live diagnosis).
    pub fn live(&self) -> bool {
        self.facts.probes.is_some()
    }

    pub fn probes(&self) -> Option<&'f ProbeFacts> {
        self.facts.probes.as_ref()
    }

    /// The first probed target (the one the upstream names).
    pub fn target(&self) -> Option<&'f ProbedTarget> {
        self.targets.first().copied()
    }

    /// The unix socket path, for `unix:` upstreams.
    pub fn unix_path(&self) -> Option<&str> {
        self.upstream.as_deref()?.strip_prefix("unix:")
    }

    /// `(ip, port)` for an upstream written as an address (`127.0.0.1:80`, `[::1]:80`).
    pub fn ip_port(&self) -> Option<(IpAddr, u16)> {
        parse_ip_port(self.upstream.as_deref()?)
    }

    /// The failure window the backend is matched against.
    pub fn window(&self) -> backend::Window {
        backend::Window {
            first: self.log.map(|l| l.first),
            last: self.log.map(|l| l.last),
        }
    }

    /// Steps and commands that restart the backend and read why it stopped, in the words of
    /// the supervisor that runs it (`systemctl ... my-backend.service`, `pm2 restart NAME`).
    pub fn restart_advice(&self) -> (Vec<String>, Vec<String>) {
        backend::restart_advice(self.facts, self.backend.as_ref())
    }

    /// The number of requests hurt, as the log counted them.
    pub fn count(&self) -> u64 {
        self.log.map_or(0, |l| l.count)
    }

    /// A finding of `cause` for this group: severity `error`, the class's usual status, count,
    /// first/last seen and the per-minute counts, the first and last log lines, and the config
    /// line of each pass to the upstream. The rule adds its own evidence after these.
    pub fn finding(&self, cause: &dyn rules::RuleDoc, title: String, fix: rules::Fix) -> Finding {
        let mut evidence = Vec::new();
        if let Some(log) = self.log {
            evidence.push(Evidence::log(&log.first_line));
            if let Some(last) = &log.last_line {
                evidence.push(Evidence::log(last));
            }
        }
        for (_, pass) in self.passes.iter().take(3) {
            evidence.push(Evidence::config(&pass.src));
        }
        let mut f = Finding {
            id: cause.id(),
            class: Some(self.class.id()),
            severity: Severity::Error,
            status: self.class.usual_status(),
            upstream: self.upstream.clone(),
            title,
            evidence,
            fix,
            count: Some(self.count()),
            first_seen: self.log.map(|l| l.first.to_string()),
            last_seen: self.log.map(|l| l.last.to_string()),
            per_minute: self
                .log
                .map(|l| {
                    minutes_json(&l.minutes[l.minutes.len().saturating_sub(TIMELINE_MINUTES)..])
                })
                .unwrap_or_default(),
            backend: self.backend.clone(),
            impact: self.log.and_then(|l| l.impact.clone()),
            state: rules::State::Ongoing,
            resolved_at: None,
        };
        if let Some(i) = f.impact.as_ref().filter(|i| i.all_retried()) {
            // nginx retried the next peer and every client was served: a peer is down, the
            // clients pay a retry. Not an outage.
            f.severity = Severity::Warning;
            f.title = format!(
                "{}; 0 clients affected: nginx retried the next peer",
                f.title
            );
            f.evidence.push(Evidence::other(
                "access",
                "access log (joined)".to_string(),
                format!(
                    "0 clients affected: all {} requests were served by nginx's retry on the next peer ({})",
                    i.requests,
                    statuses_text(i)
                ),
            ));
        }
        if self.log.is_none() {
            f.evidence.push(Evidence::probe(
                "log",
                "no entry in the logs read yet: the probes see this failure now, so the next request will fail".to_string(),
            ));
        }
        f
    }

    /// The effective read timeout of the first pass, as nginx writes it (`60s`).
    pub fn read_timeout(&self) -> Option<(String, &'f Pass)> {
        let (_, p) = self.passes.first()?;
        Some((format!("{}s", p.read_timeout.value.as_secs_f64()), p))
    }
}

/// `200: 3, 502: 1`.
pub fn statuses_text(i: &rules::Impact) -> String {
    i.statuses
        .iter()
        .map(|(s, n)| format!("{s}: {n}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// The minutes of a finding's timeline: the last hour that had entries (what the summary keeps
/// per cell; a day of minutes for thousands of findings made the JSON tens of megabytes).
pub const TIMELINE_MINUTES: usize = crate::logs::error_summary::CELL_MINUTES;

/// `127.0.0.1:80` / `[::1]:80` to its parts.
pub fn parse_ip_port(s: &str) -> Option<(IpAddr, u16)> {
    let addr: std::net::SocketAddr = s.parse().ok()?;
    Some((addr.ip(), addr.port()))
}

fn minutes_json(m: &[(LogTime, u32)]) -> Vec<(String, u32)> {
    m.iter().map(|(t, n)| (t.to_string(), *n)).collect()
}

impl Facts {
    /// The probed targets an upstream name stands for: the target itself (by name or by any
    /// address it resolved to), or every server of a group of that name.
    pub fn targets_of(&self, upstream: &str) -> Vec<&ProbedTarget> {
        let Some(p) = &self.probes else {
            return Vec::new();
        };
        let exact: Vec<&ProbedTarget> = p
            .targets
            .iter()
            .filter(|t| {
                t.facts.upstream == upstream || t.facts.addresses.iter().any(|a| a == upstream)
            })
            .collect();
        if !exact.is_empty() {
            return exact;
        }
        p.targets
            .iter()
            .filter(|t| t.facts.group.as_deref() == Some(upstream))
            .collect()
    }

    /// The passes that send to an upstream (by target, group, or a group holding the server).
    pub fn passes_to(&self, upstream: &str) -> Vec<(&Model, &Pass)> {
        let mut out = Vec::new();
        for m in &self.models {
            for p in &m.passes {
                let hit = match &p.target {
                    Target::Group { name, index } => {
                        name == upstream
                            || m.upstreams[*index]
                                .servers
                                .iter()
                                .any(|s| same_peer(&s.address, upstream))
                    }
                    t => same_peer(&t.display(), upstream),
                };
                if hit {
                    out.push((m, p));
                }
            }
        }
        out
    }

    /// Every listener of the host, when the probes ran.
    pub fn listeners(&self) -> &[Listener] {
        self.probes
            .as_ref()
            .map_or(&[][..], |p| p.listeners.sockets.as_slice())
    }
}

/// Whether two peer names are the same peer. `localhost:80` and `127.0.0.1:80` are not: the
/// log names the address nginx connected to, the config the name; [`Facts::targets_of`] joins
/// those through the addresses the probe resolved.
fn same_peer(a: &str, b: &str) -> bool {
    a == b
}

/// What a diagnosis found.
#[derive(Debug, Default)]
pub struct Diagnosis {
    pub findings: Vec<Finding>,
    pub skipped: Vec<Skipped>,
}

/// Runs the catalog on the facts and ranks the findings.
pub fn diagnose(facts: &Facts) -> Vec<Finding> {
    let mut out = Vec::new();
    for group in groups(facts) {
        if let Some(f) = rules::cause::explain(&group) {
            out.push(f);
        }
    }
    for c in rules::cause::registry() {
        c.check(facts, &mut out);
    }
    for m in &facts.models {
        for r in rules::registry() {
            let mut latent = Vec::new();
            r.check(m, &mut latent);
            for mut f in latent {
                f.count = Some(0);
                f.state = rules::State::Latent;
                out.push(f);
            }
        }
    }
    dedup(&mut out);
    for f in &mut out {
        // Rules compose their commands from helpers; say each once.
        let mut seen = std::collections::HashSet::new();
        f.fix.commands.retain(|c| seen.insert(c.clone()));
    }
    correlate(facts, &mut out);
    resolve(facts, &mut out);
    rank(&mut out);
    out
}

/// Marks resolved what the evidence shows has stopped: failures towards a target the config no
/// longer names, when the config changed after the last failure (a reload takes a changed
/// config: the target was removed or replaced). The finding keeps its severity and says why.
fn resolve(facts: &Facts, findings: &mut [Finding]) {
    let Some(changed) = facts.config_changed else {
        return;
    };
    for f in findings.iter_mut() {
        let (Some(up), Some(last)) = (
            f.upstream.as_deref(),
            f.last_seen
                .as_deref()
                .and_then(|t| LogTime::parse_iso(t.as_bytes())),
        ) else {
            continue;
        };
        if f.state != rules::State::Ongoing || changed <= last || facts.models.is_empty() {
            continue;
        }
        let named = !facts.passes_to(up).is_empty()
            || !facts.targets_of(up).is_empty()
            || facts
                .models
                .iter()
                .any(|m| m.upstreams.iter().any(|u| u.name == up));
        if named {
            continue;
        }
        f.state = rules::State::Resolved;
        f.resolved_at = Some(changed.to_string());
        f.evidence.push(Evidence::other(
            "config",
            "config files (mtime)".to_string(),
            format!(
                "resolved: the config changed at {changed}, after the last failure at {last}, and no longer sends to {up}"
            ),
        ));
    }
}

/// How far around a finding's first and last entry a supervisor or kernel event counts as part
/// of its timeline.
const CORRELATE_SECS: i64 = 120;

/// Adds to each error finding what happened to its backend: PHP-FPM's `max_children` and child
/// deaths within the finding's log window, and what the backend's supervisor and the kernel
/// recorded at the failure ([`backend::evidence`]: unit state, journal, pm2 log, OOM kills).
fn correlate(facts: &Facts, findings: &mut [Finding]) {
    let Some(p) = &facts.probes else { return };
    for f in findings.iter_mut() {
        if f.severity != Severity::Error {
            continue;
        }
        let parse =
            |t: &Option<String>| t.as_deref().and_then(|t| LogTime::parse_iso(t.as_bytes()));
        let (first, last) = (parse(&f.first_seen), parse(&f.last_seen));
        let within = |t: LogTime| match (first, last) {
            (Some(first), Some(last)) => {
                t.0 >= first.0 - CORRELATE_SECS && t.0 <= last.0 + CORRELATE_SECS
            }
            _ => false,
        };
        let mut add: Vec<Evidence> = Vec::new();
        // The pools that serve this upstream (or every pool, when it names none we know).
        let path = f
            .upstream
            .as_deref()
            .map(|u| u.strip_prefix("unix:").unwrap_or(u));
        for m in &p.supervisors.fpm {
            let serves = m.pools.iter().any(|pool| {
                pool.listen.as_deref().is_some_and(|l| {
                    Some(l) == path || path.is_some_and(|p| p.ends_with(&format!(":{l}")))
                })
            });
            if !serves {
                continue;
            }
            let source = m
                .error_log
                .as_ref()
                .map_or("php-fpm log".to_string(), |l| l.display().to_string());
            for e in &m.events {
                let Some(t) = e
                    .time
                    .as_deref()
                    .and_then(|t| LogTime::parse_iso(t.as_bytes()))
                else {
                    continue;
                };
                if within(t) {
                    add.push(Evidence::other(
                        "supervisor",
                        source.clone(),
                        e.line.clone(),
                    ));
                }
            }
        }
        // What the backend's own supervisor and the kernel recorded about it at the failure.
        if let Some(b) = &f.backend {
            add.extend(backend::evidence(facts, b, backend::Window { first, last }));
        }
        for e in add.into_iter().take(16) {
            if !f.evidence.iter().any(|x| x.text == e.text) {
                f.evidence.push(e);
            }
        }
    }
}

/// The same latent finding found through two instances of one config is one finding.
fn dedup(out: &mut Vec<Finding>) {
    let mut seen = std::collections::HashSet::new();
    out.retain(|f| {
        seen.insert((
            f.id,
            f.upstream.clone(),
            f.evidence.first().map(|e| e.source.clone()),
        ))
    });
}

/// The clients a finding hurt: the 5xx its joined access lines got, else the error-log count.
fn hurt(f: &Finding) -> u64 {
    f.impact
        .as_ref()
        .map_or(f.count.unwrap_or(0), |i| i.client_errors)
}

/// Most likely root cause first: severity, then clients hurt, then the latest seen, then ID.
pub fn rank(findings: &mut [Finding]) {
    findings.sort_by(|a, b| {
        b.severity
            .cmp(&a.severity)
            .then_with(|| a.state.cmp(&b.state))
            .then_with(|| hurt(b).cmp(&hurt(a)))
            .then_with(|| b.last_seen.cmp(&a.last_seen))
            .then_with(|| a.id.cmp(b.id))
            .then_with(|| a.upstream.cmp(&b.upstream))
    });
}

/// The groups to explain: every error-log group of a failure class (and `fastcgi-stderr`),
/// then every probed target that fails now without a log group of its own.
pub fn groups(facts: &Facts) -> Vec<Group<'_>> {
    let mut out = Vec::new();
    for g in &facts.logs.groups {
        if g.class == FailureClass::Other {
            continue;
        }
        let up = g.upstream.as_deref();
        let window = backend::Window {
            first: Some(g.first),
            last: Some(g.last),
        };
        out.push(Group {
            class: g.class,
            upstream: g.upstream.clone(),
            detail: g.detail.as_deref(),
            log: Some(g),
            targets: up.map(|u| facts.targets_of(u)).unwrap_or_default(),
            passes: up.map(|u| facts.passes_to(u)).unwrap_or_default(),
            backend: up.and_then(|u| backend::find(facts, u, window)),
            facts,
        });
    }
    let Some(p) = &facts.probes else {
        return out;
    };
    for t in &p.targets {
        let Some(class) = probe_class(t) else {
            continue;
        };
        let seen = out.iter().any(|g| {
            g.log.is_some() && g.targets.iter().any(|x| std::ptr::eq(*x, t)) && g.class.is_failure()
        });
        if seen {
            continue;
        }
        let up = t.facts.upstream.clone();
        out.push(Group {
            class,
            upstream: Some(up.clone()),
            detail: None,
            log: None,
            targets: vec![t],
            passes: facts.passes_to(&up),
            backend: backend::find(facts, &up, backend::Window::default()),
            facts,
        });
    }
    out
}

/// The failure class a probed target shows now, if it fails the way nginx would.
fn probe_class(t: &ProbedTarget) -> Option<FailureClass> {
    let f = &t.facts;
    if let Some(u) = &f.unix {
        return match &u.connect {
            Connect::Missing => Some(FailureClass::SocketMissing),
            Connect::Refused => Some(FailureClass::ConnectRefused),
            Connect::BacklogFull => Some(FailureClass::SocketBacklog),
            _ if u.worker.allowed == Some(false) => Some(FailureClass::ConnectPermission),
            Connect::Denied { .. } => Some(FailureClass::ConnectPermission),
            _ => None,
        };
    }
    if f.resolve.as_ref().is_some_and(|r| r.error.is_some()) {
        return Some(FailureClass::DnsFailure);
    }
    if !f.tcp.is_empty() {
        // nginx tries each address in turn: it fails only when every one fails.
        if f.tcp.iter().any(|c| c.connect.is_ok()) {
            // fall through to the protocol probes
        } else if f.tcp.iter().all(|c| c.connect == Connect::Refused) {
            return Some(FailureClass::ConnectRefused);
        } else if f
            .tcp
            .iter()
            .any(|c| matches!(c.connect, Connect::TimedOut { .. }))
        {
            return Some(FailureClass::ConnectTimeout);
        } else {
            return Some(FailureClass::ConnectRefused);
        }
    }
    if let Some(tls) = &t.tls {
        if let Some(v) = tls.as_nginx() {
            if !v.outcome.is_ok() {
                return Some(FailureClass::TlsHandshake);
            }
            if tls.verify && v.verify.as_ref().is_some_and(|v| v.code != 0) {
                return Some(FailureClass::TlsVerify);
            }
        }
        if tls.scheme_mismatch.is_some() {
            return Some(FailureClass::TlsHandshake);
        }
    }
    if let Some(h) = &f.http {
        if h.scheme_mismatch {
            return Some(if h.tls_expected {
                FailureClass::TlsHandshake
            } else {
                FailureClass::InvalidResponse
            });
        }
        if h.header_exceeds_buffer {
            return Some(FailureClass::HeaderTooBig);
        }
        if h.hangs() {
            return Some(FailureClass::ReadTimeout);
        }
    }
    if let Some(fc) = &f.fastcgi {
        if fc.hangs() {
            return Some(FailureClass::ReadTimeout);
        }
    }
    None
}

/// The listeners a refused TCP target could have meant: not nginx, reachable from nginx (a
/// loopback or wildcard address), held by a process that could be inspected, not PID 1 or a
/// well-known system daemon, and not a target of another pass of the config.
pub fn candidate_listeners(facts: &Facts, exclude_port: u16) -> Vec<&Listener> {
    const SYSTEM: &[&str] = &[
        "nginx",
        "sshd",
        "systemd",
        "systemd-resolve",
        "chronyd",
        "dnsmasq",
        "cupsd",
        "containerd",
        "dockerd",
        "rpcbind",
        "exim4",
        "master",
        "avahi-daemon",
        "named",
        "unbound",
        "ntpd",
        "snmpd",
        // Datastores and mail: never what a `*_pass` means to reach.
        "postgres",
        "mysqld",
        "mariadbd",
        "redis-server",
        "memcached",
        "mongod",
        "epmd",
        "beam.smp",
        "slapd",
        "dovecot",
        "smtpd",
        "sendmail",
    ];
    // The ports the config sends to: its passes and every server of its upstream groups (the
    // other server of a group is where nginx retries, not a backend on the wrong port).
    let mut targeted: Vec<u16> = facts
        .models
        .iter()
        .flat_map(|m| m.passes.iter())
        .filter_map(|p| match &p.target {
            Target::Host { port, .. } => *port,
            _ => None,
        })
        .collect();
    targeted.extend(
        facts
            .models
            .iter()
            .flat_map(|m| m.upstreams.iter())
            .flat_map(|u| u.servers.iter())
            .filter_map(|s| s.address.rsplit_once(':')?.1.parse::<u16>().ok()),
    );
    facts
        .listeners()
        .iter()
        .filter(|l| matches!(l.kind, SocketKind::Tcp | SocketKind::Tcp6))
        .filter(|l| {
            l.port
                .is_some_and(|p| p != exclude_port && !targeted.contains(&p))
        })
        .filter(|l| {
            l.ip.is_some_and(|ip| ip.is_loopback() || ip.is_unspecified())
        })
        // PID 1 is the init or the container's own agent: its sockets are not an app's (with
        // systemd socket activation the app behind them would not refuse connections).
        .filter(|l| {
            // A socket whose holder could not be inspected (another user's, without root; a
            // sandbox's init) cannot be shown to be the backend's program.
            !l.processes.is_empty()
                && !l
                    .processes
                    .iter()
                    .any(|p| p.pid == 1 || SYSTEM.contains(&p.program.as_str()))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ip_ports() {
        assert_eq!(
            parse_ip_port("[::1]:80"),
            Some(("::1".parse().unwrap(), 80))
        );
        assert_eq!(parse_ip_port("unix:/x"), None);
        assert!(same_peer("unix:/a", "unix:/a"));
        assert!(!same_peer("127.0.0.1:80", "localhost:80"));
    }
}
