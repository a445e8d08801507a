//! Incidents: what `nginx-medic watch` makes of a diagnosis it runs again and again.
//!
//! `watch` diagnoses the last minutes of the logs after every read ([`crate::diagnose`] on a
//! sliding window of [`LogFacts`]). A finding the logs show failing (a count, `ongoing`) that no
//! open incident explains opens one; while it lasts, the lines read after it opened add to its
//! count and impact ([`Incidents::accumulate`]); it closes when the evidence says it stopped,
//! by the state rules of `causes.md` §3:
//!
//! - the diagnosis says `resolved` (the config no longer sends to the target after a reload, or
//!   the backend restarted after the last failure and answers the probes);
//! - no failure for [`Options::quiet_secs`], and a probe made after the last failure saw the
//!   target answer the way nginx talks to it;
//! - when the target cannot be probed (`--no-probe`, no config, a target no probe reaches): no
//!   failure for [`Options::close_after_secs`], and the close says it was not probed.
//!
//! A target that still fails its probes keeps its incident open, failures or not: a backend
//! that is down stays down when no client happens to ask. Nothing here does I/O: the caller
//! runs the probes the engine asks for and passes what they saw back through [`ProbeView`].

use std::collections::HashMap;

use medic_parse::error_log::FailureClass;
use medic_parse::time::LogTime;
use serde::Serialize;

use crate::backend::Backend;
use crate::facts::{Impact, LogFacts};
use crate::rules::{Evidence, Finding, Severity, State};

/// How long incidents wait and how often they speak.
#[derive(Clone, Copy, Debug)]
pub struct Options {
    /// No failure for this long, and a probe after the last failure saw the target answer:
    /// closed.
    pub quiet_secs: i64,
    /// No failure for this long and no way to probe the target: closed (saying so).
    pub close_after_secs: i64,
    /// An open incident is updated at most this often.
    pub update_every_secs: i64,
    /// A new incident waits at most this long (milliseconds) for the probe of its target, so it
    /// opens with the cause the probe tells, not the log's first guess.
    pub probe_grace_ms: u64,
    /// At most this many incidents are open at once (memory stays bounded when thousands of
    /// targets fail); the others are counted in [`Incidents::suppressed`].
    pub max_open: usize,
}

impl Default for Options {
    fn default() -> Options {
        Options {
            quiet_secs: 10,
            close_after_secs: 300,
            update_every_secs: 10,
            probe_grace_ms: 1500,
            max_open: 1000,
        }
    }
}

/// The clock an evaluation runs at: nginx's wall clock (log times) and a monotonic
/// millisecond count (waits shorter than a second).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Now {
    pub log: LogTime,
    pub ms: u64,
}

/// What the caller knows of its probes, per target.
pub trait ProbeView {
    /// Whether the target can be probed at all (a config names it and probes are on).
    fn can_probe(&self, upstream: &str) -> bool;
    /// The last completed probe of the target: when (nginx's clock), and whether it answered
    /// the way nginx talks to it.
    fn last(&self, upstream: &str) -> Option<(LogTime, bool)>;
}

/// No probes at all (`--no-probe`).
pub struct NoProbes;

impl ProbeView for NoProbes {
    fn can_probe(&self, _: &str) -> bool {
        false
    }
    fn last(&self, _: &str) -> Option<(LogTime, bool)> {
        None
    }
}

/// One incident: a cause at one target, from the first failure until the evidence says it
/// stopped.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Incident {
    /// Counts up from 1 in one `watch` run.
    pub incident: u64,
    pub cause: &'static str,
    /// The cause it was opened with, when the diagnosis named another since.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cause_was: Option<&'static str>,
    /// As nginx targets it; `-` when the failures name no upstream.
    pub upstream: String,
    pub severity: Severity,
    pub title: String,
    /// The failure classes it counts (its finding's and its story's steps').
    pub classes: Vec<&'static str>,
    pub opened_at: LogTime,
    pub first_seen: Option<LogTime>,
    pub last_seen: Option<LogTime>,
    /// Error-log entries so far.
    pub count: u64,
    /// What the clients got so far.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub impact: Option<Impact>,
    /// The latest evidence (log lines as `FILE:LINE`, probes, config lines), at most
    /// [`EVIDENCE`] items.
    pub evidence: Vec<Evidence>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub backend: Option<Backend>,
    pub fix: String,
    /// When its latest failure was read (`watch`'s clock): replayed or late logs carry old
    /// times, and a failure read just now is not quiet however old its time says it is.
    #[serde(skip)]
    last_read: LogTime,
    #[serde(skip)]
    last_update: LogTime,
    #[serde(skip)]
    changed: bool,
}

/// Evidence items an incident carries.
pub const EVIDENCE: usize = 8;

/// Why an incident closed.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Closed {
    pub at: LogTime,
    /// `resolved` (the diagnosis' state rules), `answers` (probed healthy after the last
    /// failure), `quiet` (no failure for a while, not probed).
    pub how: &'static str,
    pub why: String,
}

/// What changed in one evaluation.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Change {
    Open(Incident),
    Update(Incident),
    Close(Incident, Closed),
}

/// A finding that no open incident explains yet, waiting for its target's probe.
struct Candidate {
    since_ms: u64,
}

/// The open incidents, and what the engine is waiting for.
pub struct Incidents {
    opts: Options,
    open: Vec<Incident>,
    next: u64,
    candidates: HashMap<(&'static str, String), Candidate>,
    /// (cause, upstream) to the last failure of its last closed incident: older failures still
    /// in the window do not open it again.
    closed_last: HashMap<(&'static str, String), LogTime>,
    /// Targets whose probe the engine waits for (read with [`Incidents::wanted_probes`]).
    wanted: Vec<String>,
    /// Incidents not opened because [`Options::max_open`] were open.
    pub suppressed: u64,
}

impl Incidents {
    pub fn new(opts: Options) -> Incidents {
        Incidents {
            opts,
            open: Vec::new(),
            next: 1,
            candidates: HashMap::new(),
            closed_last: HashMap::new(),
            wanted: Vec::new(),
            suppressed: 0,
        }
    }

    pub fn open(&self) -> &[Incident] {
        &self.open
    }

    /// Targets the last evaluation wants probed: new incidents' and quiet ones'. The caller
    /// limits how often one target is probed.
    pub fn wanted_probes(&self) -> &[String] {
        &self.wanted
    }

    /// Adds the failures of one read (`tick`, and the access lines' impacts `impacts`, keyed by
    /// class and upstream) to the open incidents that count them.
    pub fn accumulate(
        &mut self,
        tick: &LogFacts,
        impacts: &[(FailureClass, String, Impact)],
        now: LogTime,
    ) {
        for inc in &mut self.open {
            for g in &tick.groups {
                if upstream_key(g.upstream.as_deref()) != inc.upstream
                    || !inc.classes.contains(&g.class.id())
                {
                    continue;
                }
                inc.count += g.count;
                inc.changed = true;
                inc.last_read = now;
                inc.first_seen = Some(inc.first_seen.map_or(g.first, |f| f.min(g.first)));
                if inc.last_seen.is_none_or(|l| g.last >= l) {
                    inc.last_seen = Some(g.last);
                    let line = g.last_line.as_ref().unwrap_or(&g.first_line);
                    let ev = Evidence::log(line);
                    // The newest line leads; the rest is what the finding cited.
                    inc.evidence
                        .retain(|e| e.kind != "log" || e.source != ev.source);
                    inc.evidence.insert(0, ev);
                    inc.evidence.truncate(EVIDENCE);
                }
            }
            for (class, up, impact) in impacts {
                if *up == inc.upstream && inc.classes.contains(&class.id()) {
                    inc.impact.get_or_insert_with(Impact::default).add(impact);
                    inc.changed = true;
                }
            }
        }
    }

    /// Compares the diagnosis of the window with the open incidents: opens, updates and
    /// closes them.
    pub fn evaluate(
        &mut self,
        findings: &[Finding],
        now: Now,
        probes: &dyn ProbeView,
    ) -> Vec<Change> {
        let mut changes = Vec::new();
        self.wanted.clear();
        let mut matched = vec![false; findings.len()];
        let mut still_open = Vec::with_capacity(self.open.len());
        for mut inc in std::mem::take(&mut self.open) {
            let found = findings
                .iter()
                .enumerate()
                .find(|(_, f)| explains(f, &inc) && f.state != State::Latent);
            if let Some((i, f)) = found {
                matched[i] = true;
                if f.state == State::Resolved {
                    // The close carries the resolution's evidence; the cause stays the one the
                    // incident was about (with the backend back, the logs' failures alone no
                    // longer say `backend-down`).
                    refresh(&mut inc, f, false);
                    let why = f
                        .evidence
                        .iter()
                        .rev()
                        .find(|e| e.text.starts_with("resolved:"))
                        .map_or_else(|| "the diagnosis says resolved".into(), |e| e.text.clone());
                    let at = f.resolved_at.unwrap_or(now.log);
                    self.close(inc, at, "resolved", why, &mut changes);
                    continue;
                }
                refresh(&mut inc, f, true);
            }
            let last = inc.last_seen.unwrap_or(inc.opened_at);
            let quiet_for = now.log.0 - last.0.max(inc.last_read.0);
            if quiet_for >= self.opts.quiet_secs {
                if probes.can_probe(&inc.upstream) {
                    match probes.last(&inc.upstream) {
                        Some((at, true)) if at > last => {
                            let why = format!(
                                "{} answers the probes at {at}; no failure logged since {last}",
                                inc.upstream
                            );
                            self.close(inc, at, "answers", why, &mut changes);
                            continue;
                        }
                        _ => self.wanted.push(inc.upstream.clone()),
                    }
                } else if quiet_for >= self.opts.close_after_secs {
                    let why = format!(
                        "no failure logged for {quiet_for} s since {last} (the target was not probed: no way to check that it answers)"
                    );
                    self.close(inc, now.log, "quiet", why, &mut changes);
                    continue;
                }
            }
            if inc.changed && now.log.0 - inc.last_update.0 >= self.opts.update_every_secs {
                inc.changed = false;
                inc.last_update = now.log;
                changes.push(Change::Update(inc.clone()));
            }
            still_open.push(inc);
        }
        self.open = still_open;

        let mut seen_candidates = Vec::new();
        for (i, f) in findings.iter().enumerate() {
            if matched[i] || !opens_incident(f) {
                continue;
            }
            let up = upstream_key(f.upstream.as_deref()).to_string();
            let key = (f.id, up.clone());
            let last = f.last_seen.unwrap_or(now.log);
            if self.closed_last.get(&key).is_some_and(|l| last <= *l) {
                continue;
            }
            // Another finding of this evaluation already opened an incident for it.
            if self.open.iter().any(|inc| explains(f, inc)) {
                continue;
            }
            seen_candidates.push(key.clone());
            let cand = self
                .candidates
                .entry(key.clone())
                .or_insert(Candidate { since_ms: now.ms });
            if probes.can_probe(&up) {
                let probed = probes
                    .last(&up)
                    .is_some_and(|(at, _)| f.first_seen.is_none_or(|first| at >= first));
                if !probed && now.ms.saturating_sub(cand.since_ms) < self.opts.probe_grace_ms {
                    self.wanted.push(up);
                    continue;
                }
            }
            self.candidates.remove(&key);
            if self.open.len() >= self.opts.max_open {
                // Beyond this many causes at once, one more tells nothing new: counted, and
                // the metrics and the logs still have every failure.
                self.suppressed += 1;
                continue;
            }
            let inc = self.incident_of(f, now);
            changes.push(Change::Open(inc.clone()));
            self.open.push(inc);
        }
        self.candidates.retain(|k, _| seen_candidates.contains(k));
        self.wanted.sort();
        self.wanted.dedup();
        changes
    }

    fn incident_of(&mut self, f: &Finding, now: Now) -> Incident {
        let n = self.next;
        self.next += 1;
        let mut inc = Incident {
            incident: n,
            cause: f.id,
            cause_was: None,
            upstream: upstream_key(f.upstream.as_deref()).to_string(),
            severity: f.severity,
            title: f.title.clone(),
            classes: Vec::new(),
            opened_at: now.log,
            first_seen: f.first_seen,
            last_seen: f.last_seen,
            count: f.count.unwrap_or(0),
            impact: f.impact.clone(),
            evidence: Vec::new(),
            backend: None,
            fix: String::new(),
            last_read: now.log,
            last_update: now.log,
            changed: false,
        };
        refresh(&mut inc, f, true);
        inc
    }

    fn close(
        &mut self,
        inc: Incident,
        at: LogTime,
        how: &'static str,
        why: String,
        changes: &mut Vec<Change>,
    ) {
        self.closed_last.insert(
            (inc.cause, inc.upstream.clone()),
            inc.last_seen.unwrap_or(at),
        );
        if let Some(was) = inc.cause_was {
            self.closed_last
                .insert((was, inc.upstream.clone()), inc.last_seen.unwrap_or(at));
        }
        changes.push(Change::Close(inc, Closed { at, how, why }));
    }
}

/// The label of a finding's target: as nginx names it, `-` for none.
pub fn upstream_key(up: Option<&str>) -> &str {
    up.unwrap_or("-")
}

/// A finding the logs show failing: it opens an incident.
fn opens_incident(f: &Finding) -> bool {
    f.state == State::Ongoing && f.count.unwrap_or(0) > 0 && f.severity >= Severity::Warning
}

/// Whether `f` tells the incident's story: the same target, and its cause, one of its steps,
/// or one of its failure classes is the incident's.
fn explains(f: &Finding, inc: &Incident) -> bool {
    if upstream_key(f.upstream.as_deref()) != inc.upstream || f.count.unwrap_or(0) == 0 {
        return false;
    }
    f.id == inc.cause
        || inc.cause_was == Some(f.id)
        || f.timeline.iter().any(|s| s.id == inc.cause)
        || classes_of(f).iter().any(|c| inc.classes.contains(c))
}

fn classes_of(f: &Finding) -> Vec<&'static str> {
    let mut c: Vec<&'static str> = f
        .class
        .into_iter()
        .chain(f.timeline.iter().filter_map(|s| s.class))
        .collect();
    c.sort_unstable();
    c.dedup();
    c
}

/// Takes what the diagnosis says now: the cause (it may name another as the probes answer;
/// only when `rename`), title, severity, evidence, backend, fix. Counts and impact are the
/// incident's own.
fn refresh(inc: &mut Incident, f: &Finding, rename: bool) {
    if !rename {
        let mut ev = f.evidence.clone();
        ev.retain(|e| !inc.evidence.contains(e));
        // The resolution's evidence first, then what the incident cited.
        ev.extend(inc.evidence.iter().cloned());
        ev.truncate(EVIDENCE);
        inc.evidence = ev;
        return;
    }
    // A root cause the probes named is not traded for the class's generic name: once the
    // backend is back, the same refusals no longer prove `backend-down`, but it was.
    let generic = |id: &str| FailureClass::from_id(id).is_some();
    if f.id != inc.cause && (!generic(f.id) || generic(inc.cause)) {
        inc.cause_was.get_or_insert(inc.cause);
        inc.cause = f.id;
        inc.changed = true;
    }
    for c in classes_of(f) {
        if !inc.classes.contains(&c) {
            inc.classes.push(c);
        }
    }
    if inc.severity != f.severity || inc.title != f.title {
        inc.changed = true;
    }
    inc.severity = f.severity;
    inc.title = f.title.clone();
    if f.backend.as_deref() != inc.backend.as_ref() {
        inc.backend = f.backend.as_deref().cloned();
        inc.changed = true;
    }
    inc.fix = f.fix.summary.clone();
    // The incident's newest log line first, then what the finding cites.
    let newest: Vec<Evidence> = inc
        .evidence
        .iter()
        .take_while(|e| e.kind == "log")
        .take(1)
        .cloned()
        .collect();
    let mut ev = newest;
    for e in &f.evidence {
        if !ev.iter().any(|x| x.source == e.source && x.text == e.text) {
            ev.push(e.clone());
        }
    }
    ev.truncate(EVIDENCE);
    inc.evidence = ev;
}

#[cfg(test)]
mod tests;
