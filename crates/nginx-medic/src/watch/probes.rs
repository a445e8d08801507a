//! Probes for `watch`, on a thread of their own so reading never waits for them.
//!
//! The incident engine asks for targets (a new incident's, a quiet one's); [`Prober`] sends
//! at most one round at a time, probes one target at most once per `--probe-interval` (never a
//! probe storm, however many lines fail), and keeps the newest answer of each target with the
//! time it was seen. [`Answers`] lets the engine read them.

use std::collections::HashMap;
use std::sync::mpsc::{channel, Receiver, Sender, TryRecvError};
use std::sync::Arc;
use std::time::{Duration, Instant};

use medic_core::config::Model;
use medic_core::diagnose::answers_now;
use medic_core::facts::{Facts, ProbeFacts, ProbedTarget, Skipped};
use medic_core::incidents::ProbeView;
use medic_core::rules::support::{passes_to, targets_of};
use medic_parse::time::LogTime;

use crate::probe::supervisor::GatherOptions;
use crate::probe::Wait;

/// One finished round.
pub struct Round {
    pub asked: Vec<String>,
    pub at: LogTime,
    pub facts: ProbeFacts,
    pub skipped: Vec<Skipped>,
    pub took: Duration,
}

pub struct Prober {
    ask: Sender<Vec<String>>,
    answers: Receiver<Round>,
    busy: bool,
    last_asked: HashMap<String, Instant>,
    interval: Duration,
    /// The newest answer per target (as the probe names it), and when.
    targets: HashMap<String, (ProbedTarget, LogTime)>,
    latest: Option<ProbeFacts>,
}

impl Prober {
    /// Starts the probe thread. `clock` gives nginx's wall clock now.
    pub fn start(
        models: Arc<Vec<Model>>,
        wait: Wait,
        clock: impl Fn() -> LogTime + Send + 'static,
        interval: Duration,
    ) -> Prober {
        let (ask, asked) = channel::<Vec<String>>();
        let (tell, answers) = channel::<Round>();
        std::thread::Builder::new()
            .name("probes".into())
            .spawn(move || {
                let host = crate::host::System::default();
                for targets in asked {
                    let started = Instant::now();
                    let mut skipped = Vec::new();
                    let gather = GatherOptions {
                        // The journal of the last minutes: a unit's last words before the failure.
                        since: "-15min".to_string(),
                        budget: Duration::from_secs(4),
                        timeout: Duration::from_secs(3),
                        ..GatherOptions::default()
                    };
                    let probed = crate::probe::probe_targets_on(
                        &host,
                        &models,
                        Some(&targets),
                        wait,
                        64,
                        Some(&gather),
                        &mut skipped,
                    );
                    let round = Round {
                        asked: targets,
                        at: clock(),
                        facts: ProbeFacts {
                            targets: probed.targets,
                            listeners: probed.listeners,
                            supervisors: probed.supervisors,
                            selinux: None,
                        },
                        skipped,
                        took: started.elapsed(),
                    };
                    if tell.send(round).is_err() {
                        break;
                    }
                }
            })
            .expect("spawning the probe thread");
        Prober {
            ask,
            answers,
            busy: false,
            last_asked: HashMap::new(),
            interval,
            targets: HashMap::new(),
            latest: None,
        }
    }

    /// Sends the targets not probed within the interval, unless a round is under way.
    pub fn want(&mut self, targets: &[String]) {
        if self.busy || targets.is_empty() {
            return;
        }
        let due: Vec<String> = targets
            .iter()
            .filter(|t| {
                self.last_asked
                    .get(*t)
                    .is_none_or(|at| at.elapsed() >= self.interval)
            })
            .cloned()
            .collect();
        if due.is_empty() {
            return;
        }
        for t in &due {
            self.last_asked.insert(t.clone(), Instant::now());
        }
        if self.ask.send(due).is_ok() {
            self.busy = true;
        }
    }

    /// A finished round, if one came back.
    pub fn poll(&mut self) -> Option<Round> {
        match self.answers.try_recv() {
            Ok(r) => {
                self.busy = false;
                for t in &r.facts.targets {
                    self.targets
                        .insert(t.facts.upstream.clone(), (t.clone(), r.at));
                }
                self.latest = Some(r.facts.clone());
                Some(r)
            }
            Err(TryRecvError::Empty | TryRecvError::Disconnected) => None,
        }
    }

    /// What the probes saw, newest per target, for the diagnosis; `None` before any round.
    pub fn facts(&self) -> Option<ProbeFacts> {
        let latest = self.latest.as_ref()?;
        let mut targets: Vec<ProbedTarget> =
            self.targets.values().map(|(t, _)| t.clone()).collect();
        targets.sort_by(|a, b| a.facts.upstream.cmp(&b.facts.upstream));
        Some(ProbeFacts {
            targets,
            listeners: latest.listeners.clone(),
            supervisors: latest.supervisors.clone(),
            selinux: latest.selinux.clone(),
        })
    }

    fn probed_at(&self, facts: &Facts, up: &str) -> Option<LogTime> {
        targets_of(facts, up)
            .iter()
            .filter_map(|t| self.targets.get(&t.facts.upstream).map(|(_, at)| *at))
            .min()
    }
}

/// The engine's view of the probes: the diagnosis' facts (with the probes' answers) and when
/// each target was probed.
pub struct Answers<'a> {
    pub enabled: bool,
    pub facts: &'a Facts,
    pub prober: Option<&'a Prober>,
}

impl ProbeView for Answers<'_> {
    fn can_probe(&self, upstream: &str) -> bool {
        self.enabled
            && (!passes_to(self.facts, upstream).is_empty()
                || self
                    .facts
                    .models
                    .iter()
                    .any(|m| m.upstreams.iter().any(|u| u.name == upstream)))
    }

    fn last(&self, upstream: &str) -> Option<(LogTime, bool)> {
        let at = self.prober?.probed_at(self.facts, upstream)?;
        Some((at, answers_now(self.facts, upstream)?))
    }
}
