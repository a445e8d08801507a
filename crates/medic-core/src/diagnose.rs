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

use std::collections::HashMap;

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
    rules::rank(&mut out);
    // One story per target first: whether it is over is a question about the whole story.
    tell_stories(&mut out);
    resolve(facts, &mut out);
    // The stories' heads now hold their steps' requests, and some are resolved.
    rules::rank(&mut out);
    out
}

/// How far apart two failures of one target may be and still be one story.
const STORY_GAP_SECS: i64 = 120;

/// The classes of a backend's life: what it shows while it crashes, is down, or comes back.
const LIFECYCLE: &[FailureClass] = &[
    FailureClass::ConnectRefused,
    FailureClass::NoLiveUpstreams,
    FailureClass::SocketMissing,
    FailureClass::UpstreamReset,
    FailureClass::PrematureClose,
    FailureClass::ConnectTimeout,
];

/// One target's failures close in time are one story: a backend that resets, then refuses,
/// then is starting again is not three competing causes. Only the classes of a backend's life
/// ([`LIFECYCLE`]) join: a slow script, a missing script or a socket's permissions on the same
/// target are problems of their own. The finding that ranks first (the
/// most severe, ongoing, most clients hurt) tells it; the others become its [`Step`]s, and
/// their requests, impact and minutes add to it. Findings must be ranked.
///
/// [`Step`]: rules::Step
fn tell_stories(findings: &mut Vec<Finding>) {
    // (target, state, first, last) of each finding that can be part of a story. Computed once:
    // `watch` diagnoses windows of thousands of findings several times a second.
    let story_of = |f: &Finding| -> Option<(String, rules::State, LogTime, LogTime)> {
        // Only failures the logs show (a class and a window) of one target.
        let class = FailureClass::from_id(f.class?)?;
        if !LIFECYCLE.contains(&class) {
            return None;
        }
        Some((f.upstream.clone()?, f.state, f.first_seen?, f.last_seen?))
    };
    let near = |f: LogTime, l: LogTime, first: LogTime, last: LogTime| {
        f.0 <= last.0 + STORY_GAP_SECS && l.0 + STORY_GAP_SECS >= first.0
    };
    let keys: Vec<_> = findings.iter().map(story_of).collect();
    // The findings of each (target, state), in rank order.
    let mut by_target: HashMap<(&str, rules::State), Vec<usize>> = HashMap::new();
    for (i, k) in keys.iter().enumerate() {
        if let Some((up, state, ..)) = k {
            by_target.entry((up.as_str(), *state)).or_default().push(i);
        }
    }

    // A backend that crashed and then refused is told by the crash: `backend-down` says
    // nothing listens, the crash says why. Without this, whichever hurt one client more (the
    // refusals after a restart window, say) would lead, and the cause would be a step.
    let mut order: Vec<usize> = Vec::with_capacity(findings.len());
    let mut moved = vec![false; findings.len()];
    for i in 0..findings.len() {
        if moved[i] {
            continue;
        }
        if findings[i].id == "backend-down" {
            if let Some((up, state, f, l)) = &keys[i] {
                let crash = by_target[&(up.as_str(), *state)]
                    .iter()
                    .copied()
                    .find(|&j| {
                        j > i
                            && !moved[j]
                            && findings[j].id == "backend-crash"
                            && keys[j]
                                .as_ref()
                                .is_some_and(|(_, _, cf, cl)| near(*cf, *cl, *f, *l))
                    });
                if let Some(j) = crash {
                    moved[j] = true;
                    order.push(j);
                }
            }
        }
        order.push(i);
    }
    // Rank positions after the move, for the story loop below ("later" means ranked lower).
    let mut rank = vec![0usize; findings.len()];
    for (pos, &i) in order.iter().enumerate() {
        rank[i] = pos;
    }

    // Each finding, in rank order, takes the later findings of its target whose windows touch
    // its own (widened by each step it takes) as its steps.
    let mut step_of: Vec<Option<usize>> = vec![None; findings.len()];
    for &i in &order {
        if step_of[i].is_some() {
            continue;
        }
        let Some((up, state, mut first, mut last)) = keys[i].clone() else {
            continue;
        };
        let members = &by_target[&(up.as_str(), state)];
        loop {
            let mut widened = false;
            for &j in members {
                if rank[j] <= rank[i] || step_of[j].is_some() {
                    continue;
                }
                let Some((_, _, f, l)) = &keys[j] else {
                    continue;
                };
                if near(*f, *l, first, last) {
                    step_of[j] = Some(i);
                    first = first.min(*f);
                    last = last.max(*l);
                    widened = true;
                }
            }
            // A step that widened the window may bring another finding of it in reach.
            if !widened {
                break;
            }
        }
    }

    let mut slots: Vec<Option<Finding>> = std::mem::take(findings).into_iter().map(Some).collect();
    for &j in &order {
        if let Some(i) = step_of[j] {
            if let Some(step) = slots[j].take() {
                if let Some(head) = slots[i].as_mut() {
                    absorb(head, step);
                }
            }
        }
    }
    for &i in &order {
        if let Some(mut f) = slots[i].take() {
            f.timeline.sort_by_key(|s| s.first_seen);
            findings.push(f);
        }
    }
}

/// Adds `step`'s requests, impact and minutes to `head`, and `step` to its timeline.
fn absorb(head: &mut Finding, step: Finding) {
    head.count = Some(head.count.unwrap_or(0) + step.count.unwrap_or(0));
    head.first_seen = head.first_seen.min(step.first_seen).or(step.first_seen);
    head.last_seen = head.last_seen.max(step.last_seen);
    match (&mut head.impact, &step.impact) {
        (Some(h), Some(s)) => h.add(s),
        (None, Some(s)) => head.impact = Some(s.clone()),
        _ => {}
    }
    let mut minutes = std::collections::BTreeMap::new();
    for (t, n) in head.per_minute.iter().chain(step.per_minute.iter()) {
        *minutes.entry(*t).or_insert(0) += n;
    }
    head.per_minute = minutes.into_iter().collect();
    if head.per_minute.len() > crate::rules::group::TIMELINE_MINUTES {
        let cut = head.per_minute.len() - crate::rules::group::TIMELINE_MINUTES;
        head.per_minute.drain(..cut);
    }
    let (Some(first_seen), Some(last_seen)) = (step.first_seen, step.last_seen) else {
        return;
    };
    head.timeline.push(rules::Step {
        id: step.id,
        class: step.class,
        count: step.count.unwrap_or(0),
        first_seen,
        last_seen,
        title: step.title,
        evidence: step.evidence.into_iter().find(|e| e.kind == "log"),
    });
    head.timeline.extend(step.timeline);
}

/// Marks resolved what the evidence shows has stopped, and says why:
/// - the running config no longer sends to the target: nginx reloaded (its master logged
///   `reconfiguring`) or the config files changed after the last failure, and the config on
///   disk names the target nowhere;
/// - live only: the backend (re)started after the second of the last failure, and the target
///   answers now the way nginx talks to it (the probes see no failure).
///
/// The finding keeps its severity. Post-mortem, only what the files prove counts.
fn resolve(facts: &Facts, findings: &mut [Finding]) {
    for f in findings.iter_mut() {
        let (Some(up), Some(last)) = (f.upstream.clone(), f.last_seen) else {
            continue;
        };
        if f.state != rules::State::Ongoing {
            continue;
        }
        if let Some((at, why)) = removed_from_config(facts, &up, last)
            .or_else(|| restarted_and_answers(facts, f, &up, last))
        {
            f.state = rules::State::Resolved;
            f.resolved_at = Some(at);
            f.evidence.push(Evidence::other(why.0, why.1, why.2));
        }
    }
}

/// (when, (evidence kind, source, text)) of a resolution.
type Resolution = (LogTime, (&'static str, String, String));

/// The config changed after the last failure and no longer names the target.
fn removed_from_config(facts: &Facts, up: &str, last: LogTime) -> Option<Resolution> {
    if facts.models.is_empty() {
        return None;
    }
    let named = !passes_to(facts, up).is_empty()
        || !targets_of(facts, up).is_empty()
        || facts
            .models
            .iter()
            .any(|m| m.upstreams.iter().any(|u| u.name == up));
    if named {
        return None;
    }
    // A logged reload is the running config changing; an mtime only says the files did.
    if let Some(reload) = facts.logs.last_reload.filter(|r| *r >= last) {
        return Some((
            reload,
            (
                "log",
                "error log".to_string(),
                format!("resolved: nginx reloaded at {reload} (`reconfiguring`), after the last failure at {last}, and its config no longer sends to {up}"),
            ),
        ));
    }
    let changed = facts.config_changed.filter(|c| *c > last)?;
    Some((
        changed,
        (
            "config",
            "config files (mtime)".to_string(),
            format!("resolved: the config changed at {changed}, after the last failure at {last}, and no longer sends to {up}"),
        ),
    ))
}

/// Live: the backend that serves the target (re)started after the last failure's second, and
/// every probe of the target passes now.
fn restarted_and_answers(
    facts: &Facts,
    f: &Finding,
    up: &str,
    last: LogTime,
) -> Option<Resolution> {
    facts.probes.as_ref()?;
    let since = f.backend.as_ref()?.since.as_deref()?;
    let since = LogTime::parse_iso(since.as_bytes())?;
    // Log times have one-second resolution: a start in the same second as the last failure
    // may as well have come before it (the backend that was there all along).
    if since <= last {
        return None;
    }
    if answers_now(facts, up) != Some(true) {
        return None;
    }
    Some((
        since,
        (
            "probe",
            "connect".to_string(),
            format!("resolved: the backend started again at {since}, after the last failure at {last}, and {up} answers the probes now"),
        ),
    ))
}

/// Whether the target answers the probes the way nginx talks to it: every probed address of
/// it connects, and the TLS, HTTP and FastCGI probes show no failure either (a TLS upstream
/// with an expired certificate connects fine). `None`: no probe of it.
pub fn answers_now(facts: &Facts, up: &str) -> Option<bool> {
    let targets = targets_of(facts, up);
    if targets.is_empty() {
        return None;
    }
    Some(targets.iter().all(|t| {
        let f = &t.facts;
        let connects = f.tcp.iter().any(|c| c.connect.is_ok())
            || f.unix.as_ref().is_some_and(|u| u.connect.is_ok());
        connects && probe_class(t).is_none()
    }))
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

#[cfg(test)]
mod tests {
    use medic_parse::error_log::FailureClass;
    use medic_parse::time::LogTime;

    use super::diagnose;
    use crate::rules::cause::tests::{log_group, post_mortem};

    fn at(class: FailureClass, up: &str, from: i64, to: i64, n: u64) -> crate::facts::LogGroup {
        let mut g = log_group(class, Some(up), None, n);
        let base = g.first.0;
        g.first = LogTime(base + from);
        g.last = LogTime(base + to);
        g
    }

    /// A backend that resets, then refuses: one finding that tells both, in time order.
    #[test]
    fn one_target_one_story() {
        let up = "127.0.0.1:3000";
        let f = diagnose(&post_mortem(vec![
            at(FailureClass::UpstreamReset, up, 0, 0, 2),
            at(FailureClass::ConnectRefused, up, 1, 30, 20),
            // Another target at the same time is its own finding.
            at(FailureClass::ConnectRefused, "127.0.0.1:4000", 0, 30, 5),
            // The same target an hour later is another story.
            at(FailureClass::PrematureClose, up, 3600, 3600, 1),
            // A slow script on the same target is a problem of its own.
            at(FailureClass::ReadTimeout, up, 10, 10, 1),
        ]));
        let ids: Vec<(&str, Option<&str>)> =
            f.iter().map(|f| (f.id, f.upstream.as_deref())).collect();
        assert_eq!(ids.len(), 4, "{ids:?}");
        let head = &f[0];
        assert_eq!((head.id, head.count), ("connect-refused", Some(22)));
        assert_eq!(head.timeline.len(), 1);
        assert_eq!(head.timeline[0].id, "upstream-reset");
        assert_eq!(
            head.first_seen.map(|t| t.0),
            Some(f[0].timeline[0].first_seen.0)
        );
        assert!(f[1..].iter().all(|x| x.timeline.is_empty()));
    }
}
