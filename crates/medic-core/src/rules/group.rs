//! A [`Group`]: failures of one class towards one upstream, with everything a cause needs to
//! explain them, and the finding builder every cause starts from.

use std::net::IpAddr;

use medic_parse::error_log::FailureClass;

use crate::backend::{self, Backend};
use crate::config::{Model, Pass};
use crate::facts::{Facts, Impact, LogGroup, ProbeFacts, ProbedTarget};
use crate::logs::error_summary::AFTER_HEADER;
use crate::rules::{self, Evidence, Finding, Severity};

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
            first_seen: self.log.map(|l| l.first),
            last_seen: self.log.map(|l| l.last),
            per_minute: self
                .log
                .map(|l| l.minutes[l.minutes.len().saturating_sub(TIMELINE_MINUTES)..].to_vec())
                .unwrap_or_default(),
            backend: self.backend.clone().map(Box::new),
            impact: self.log.and_then(|l| l.impact.clone()),
            state: rules::State::Ongoing,
            resolved_at: None,
            timeline: Vec::new(),
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
        if self.detail == Some(AFTER_HEADER) {
            // The failure came in the body: nginx had sent the upstream's status line already.
            let usual = f
                .status
                .take()
                .map_or(String::new(), |s| format!(", not a {s}"));
            if let Some(i) = f.impact.as_mut() {
                i.cut_off = i.requests.saturating_sub(i.client_errors + i.retried_ok);
            }
            let got = f
                .impact
                .as_ref()
                .filter(|i| i.requests > 0)
                .map_or("the upstream's status (usually 200)".to_string(), |i| {
                    statuses_text(i)
                });
            f.title = format!(
                "{} (after the response header: clients got a cut-off response{usual})",
                f.title
            );
            f.evidence.push(Evidence::other(
                "log",
                "error log".to_string(),
                format!("nginx logged it `while reading upstream`: the response header had gone out, so the clients got {got} and a body cut short"),
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
        Some((
            format!("{}s", p.settings.read_timeout.value.as_secs_f64()),
            p,
        ))
    }
}

/// `200: 3, 502: 1`.
pub fn statuses_text(i: &Impact) -> String {
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
