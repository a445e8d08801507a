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

use medic_parse::error_log::FailureClass;
use medic_parse::time::LogTime;

use crate::backend;
use crate::facts::{Connect, Facts, ProbedTarget, Skipped};
use crate::rules::group::Group;
use crate::rules::support::{passes_to, targets_of};
use crate::rules::{self, Evidence, Finding, Severity};

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
    rules::rank(&mut out);
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
        let (Some(up), Some(last)) = (f.upstream.as_deref(), f.last_seen) else {
            continue;
        };
        if f.state != rules::State::Ongoing || changed <= last || facts.models.is_empty() {
            continue;
        }
        let named = !passes_to(facts, up).is_empty()
            || !targets_of(facts, up).is_empty()
            || facts
                .models
                .iter()
                .any(|m| m.upstreams.iter().any(|u| u.name == up));
        if named {
            continue;
        }
        f.state = rules::State::Resolved;
        f.resolved_at = Some(changed);
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
        let (first, last) = (f.first_seen, f.last_seen);
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
            targets: up.map(|u| targets_of(facts, u)).unwrap_or_default(),
            passes: up.map(|u| passes_to(facts, u)).unwrap_or_default(),
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
            passes: passes_to(facts, &up),
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
