//! `nginx-medic watch`: the on-call engineer's `tail -f error.log`, turned into causes as they
//! happen.
//!
//! The logs are followed through logrotate ([`medic_follow`]: renames drained until nginx
//! reopens, truncations detected and their losses counted, offsets saved with `--state-dir`).
//! Every read is summarised by the same code as `logs` ([`read`]), counted into the metrics
//! ([`metrics`]), added to the open incidents and to a sliding window of the last minutes.
//! The window is diagnosed by the same engine as `diagnose`, with the answers of the probes
//! the incident engine asked for ([`probes`]); [`medic_core::incidents`] turns the findings
//! into incidents that open, update and close, written as events ([`events`]) and shown
//! live on a terminal ([`tty`]).

pub mod events;
pub mod metrics;
pub mod probes;
pub mod read;
mod tty;

use std::collections::VecDeque;
use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use medic_core::config::{build, BuildOptions, Model};
use medic_core::diagnose::diagnose;
use medic_core::facts::{Facts, LogFacts, Merged, Skipped};
use medic_core::incidents::{Change, Incidents, Now, Options as IncidentOptions};
use medic_parse::access_log::Escape;
use medic_parse::time::LogTime;

use crate::cli::{InputArgs, WatchArgs};
use crate::diagnose::{log_inputs, NginxClock};
use events::Events;
use read::{Kind, Reader};

/// The terminal view's sparklines count failures per this many seconds.
const SPARK_SECS: i64 = 10;
/// The diagnosis runs at least this often (incidents close on time, too), and at most this
/// often when failures keep coming.
const EVALUATE_EVERY: Duration = Duration::from_secs(1);
const EVALUATE_AT_MOST: Duration = Duration::from_millis(500);
/// Offsets are saved at most this often (each save is an fsync).
const SAVE_EVERY: Duration = Duration::from_secs(1);

/// The last minutes of the logs, kept up to date read by read: one [`Merged`] whose entries
/// (failure groups, 5xx and 499 cells) leave when nothing was added to them for the window's
/// length (a cause still failing stays, with its counts since it began).
struct Recent {
    merged: Merged,
    secs: i64,
    /// When entries were last forgotten.
    forgot_at: Option<i64>,
    /// Failures per [`SPARK_SECS`] and (upstream, class), for the terminal view (kept only
    /// when there is one).
    spark: VecDeque<tty::Slice>,
    sparklines: bool,
    /// Something was added or left since the last diagnosis.
    changed: bool,
    /// Failure groups left out of the diagnosis for [`MAX_GROUPS`].
    capped: u64,
}

/// The diagnosis follows at most this many failure groups (class, upstream, detail) at once,
/// those with the most failures: thousands of failing targets would cost a diagnosis of tens of
/// MiB several times a second, and the incidents are capped anyway. The metrics count all.
const MAX_GROUPS: usize = 1000;

impl Recent {
    fn new(secs: i64, sparklines: bool) -> Recent {
        Recent {
            merged: Merged::default(),
            secs,
            sparklines,
            forgot_at: None,
            spark: VecDeque::new(),
            changed: false,
            capped: 0,
        }
    }

    fn add(&mut self, now: LogTime, tick: &LogFacts) {
        let over_cap = self.merged.facts.groups.len() > MAX_GROUPS + MAX_GROUPS / 2;
        let due = self
            .forgot_at
            .is_none_or(|t| now.0.saturating_sub(t) >= SPARK_SECS);
        if over_cap || due {
            self.forgot_at = Some(now.0);
            if let Some(capped) = self.merged.forget_before(now.0 - self.secs, MAX_GROUPS) {
                self.changed = true;
                self.capped += capped as u64;
            }
            let oldest = (now.0 - self.secs).div_euclid(SPARK_SECS);
            while self.spark.front().is_some_and(|(s, _)| *s < oldest) {
                self.spark.pop_front();
            }
        }
        let nothing = tick.groups.is_empty()
            && tick.access_5xx.is_empty()
            && tick.client_closed.is_empty()
            && tick.reloads.is_empty();
        if nothing {
            return;
        }
        self.changed = true;
        self.merged.absorb(tick, now.0);
        if !self.sparklines {
            return;
        }
        let spark = now.0.div_euclid(SPARK_SECS);
        if self.spark.back().is_none_or(|(s, _)| *s != spark) {
            self.spark.push_back((spark, Default::default()));
        }
        if let Some((_, cells)) = self.spark.back_mut() {
            for g in &tick.groups {
                let up = g.upstream.as_deref().unwrap_or("-");
                *cells.entry((up.to_string(), g.class.id())).or_default() += g.count;
            }
        }
    }

    fn is_empty(&self) -> bool {
        let f = &self.merged.facts;
        f.groups.is_empty() && f.access_5xx.is_empty() && f.client_closed.is_empty()
    }
}

/// What the follower reported besides lines, kept until the read is over.
enum Side {
    Rotated {
        log: usize,
        from: String,
        drained: u64,
    },
    Truncated {
        log: usize,
        path: String,
        recovered_from: Option<String>,
        recovered: u64,
        lost_lines: u64,
        lost_bytes: u64,
    },
    Problem {
        log: usize,
        path: String,
        why: String,
    },
}

pub fn run(args: &WatchArgs, _color: bool) -> Result<u8> {
    let mut skipped: Vec<Skipped> = Vec::new();
    let logs_given = !args.error_logs.is_empty() || !args.access_logs.is_empty();
    let mut models: Vec<Model> = Vec::new();
    if args.config.is_some() || !logs_given {
        let Some(loaded) = crate::load::load_with(
            args.config.as_deref(),
            args.prefix.as_deref(),
            !args.no_probe,
            &mut skipped,
        )?
        else {
            return Ok(2);
        };
        for l in loaded {
            models.push(build(
                &l.cfg,
                &BuildOptions {
                    prefix: l.prefix.clone(),
                },
            ));
        }
    }
    let input = InputArgs {
        config: args.config.clone(),
        prefix: args.prefix.clone(),
        error_logs: args.error_logs.clone(),
        access_logs: args.access_logs.clone(),
        log_format: args.log_format.clone(),
        ..InputArgs::default()
    };
    let (error_logs, access_logs, format) = log_inputs(&input, &models, false, &mut skipped);
    if error_logs.is_empty() && access_logs.is_empty() {
        bail!("no log to follow: the config names no log file; pass --error-log FILE and/or --access-log FILE");
    }
    for s in &skipped {
        eprintln!("nginx-medic: not checked: {}: {}", s.check, s.why);
    }
    let format = match format {
        Some(f) => f,
        None => {
            let (f, note) =
                crate::logs::format_of(access_logs.first().map(Path::new), Escape::Default);
            if !access_logs.is_empty() {
                eprintln!("nginx-medic: access log format: {note}");
            }
            f
        }
    };
    let clock = NginxClock::of(&access_logs);
    let kinds: Vec<Kind> = error_logs
        .iter()
        .map(|_| Kind::Error)
        .chain(access_logs.iter().map(|_| Kind::Access))
        .collect();
    let paths: Vec<PathBuf> = error_logs
        .iter()
        .chain(&access_logs)
        .map(PathBuf::from)
        .collect();

    let state_file = match &args.state_dir {
        Some(d) => {
            std::fs::create_dir_all(d).with_context(|| format!("--state-dir {d}"))?;
            Some(Path::new(d).join("follow.json"))
        }
        None => None,
    };
    let mut follower = medic_follow::Follower::open(
        &paths,
        medic_follow::Options {
            from_start: args.from_start,
            state_file,
            ..medic_follow::Options::default()
        },
    )
    .context("following the logs")?;

    let mut metrics = metrics::Metrics::new(&models, args.max_series);
    metrics.declare();
    if let Some(listen) = &args.metrics_listen {
        let addr = metrics::serve(listen, metrics.registry())?;
        eprintln!("nginx-medic: metrics at http://{addr}/metrics");
    }
    let mut events = Events::open(args.events.as_deref())?;
    let mut view = (std::io::stdout().is_terminal() && !Events::to_stdout(args.events.as_deref()))
        .then(tty::View::new);

    let probing = !args.no_probe && !models.is_empty();
    let models = Arc::new(models);
    let mut prober = probing.then(|| {
        probes::Prober::start(
            models.clone(),
            crate::probe::Wait {
                margin: Duration::from_millis(500),
                cap: Some(Duration::from_millis(args.probe_wait_ms)),
            },
            move || clock.now(),
            Duration::from_secs(args.probe_interval),
        )
    });
    if !probing {
        let why = if args.no_probe {
            "--no-probe"
        } else {
            "no config: the targets cannot be probed"
        };
        eprintln!(
            "nginx-medic: not probing ({why}): incidents close after {} s without a failure",
            args.close_after
        );
    }

    let stop = Arc::new(AtomicBool::new(false));
    for sig in [signal_hook::consts::SIGTERM, signal_hook::consts::SIGINT] {
        signal_hook::flag::register(sig, stop.clone()).context("installing a signal handler")?;
    }
    eprintln!(
        "nginx-medic: watching {} ({})",
        paths
            .iter()
            .map(|p| p.display().to_string())
            .collect::<Vec<_>>()
            .join(", "),
        if args.from_start {
            "from their first line"
        } else {
            "from where they end, or where the saved state says"
        }
    );

    let mut facts = Facts {
        models: models.as_ref().clone(),
        ..Facts::default()
    };
    let mut engine = Incidents::new(IncidentOptions {
        quiet_secs: args.quiet,
        close_after_secs: args.close_after,
        update_every_secs: args.update_every,
        ..IncidentOptions::default()
    });
    let mut reader = Reader::new(format, !access_logs.is_empty());
    let mut recent = Recent::new(args.window, view.is_some());
    let mut findings: Option<Vec<medic_core::rules::Finding>> = None;
    // A probe round came back since the last diagnosis.
    let mut probes_new = false;
    // While failures pour in, the diagnosis takes at most a tenth of the time.
    let mut diagnosis_took = Duration::ZERO;
    let mut told_capped = false;
    let started = Instant::now();
    let mut last_eval = Instant::now() - EVALUATE_EVERY;
    let mut last_save = Instant::now();
    let mut unsaved = false;
    let exit_after = (args.exit_after > 0).then(|| Duration::from_secs(args.exit_after));

    while !stop.load(Ordering::Relaxed) && exit_after.is_none_or(|d| started.elapsed() < d) {
        let mut tick = reader.tick();
        let mut side: Vec<Side> = Vec::new();
        let delivered = follower
            .step(Duration::from_millis(250), &mut |ev| match ev {
                medic_follow::Event::Lines {
                    log,
                    path,
                    first_line,
                    bytes,
                } => reader.lines(
                    &mut tick,
                    kinds[log],
                    &path.display().to_string(),
                    first_line,
                    bytes,
                ),
                medic_follow::Event::Overlong {
                    log,
                    path,
                    line,
                    len,
                } => reader.overlong(
                    &mut tick,
                    kinds[log],
                    &path.display().to_string(),
                    line,
                    len,
                ),
                medic_follow::Event::Rotated {
                    log,
                    from,
                    lines_drained_after_rename,
                } => side.push(Side::Rotated {
                    log,
                    from: from.display().to_string(),
                    drained: lines_drained_after_rename,
                }),
                medic_follow::Event::Truncated {
                    log,
                    path,
                    recovered_from,
                    recovered_lines,
                    suspected_lost_lines,
                    suspected_lost_bytes,
                } => side.push(Side::Truncated {
                    log,
                    path: path.display().to_string(),
                    recovered_from: recovered_from.map(|p| p.display().to_string()),
                    recovered: recovered_lines,
                    lost_lines: suspected_lost_lines,
                    lost_bytes: suspected_lost_bytes,
                }),
                medic_follow::Event::Problem { log, path, why } => side.push(Side::Problem {
                    log,
                    path: path.display().to_string(),
                    why,
                }),
            })
            .context("following the logs")?;
        unsaved |= delivered > 0 || !side.is_empty();
        let now = clock.now();
        let out = reader.finish(tick);
        metrics.add(&out.counts);
        for s in side {
            match s {
                Side::Rotated { log, from, drained } => {
                    let kind = kinds[log].label();
                    metrics.rotation(kind);
                    events.rotation(now, kind, &paths[log].display().to_string(), &from, drained);
                }
                Side::Truncated {
                    log,
                    path,
                    recovered_from,
                    recovered,
                    lost_lines,
                    lost_bytes,
                } => {
                    let kind = kinds[log].label();
                    metrics.rotation(kind);
                    metrics.truncation(kind, lost_lines);
                    events.truncation(
                        now,
                        kind,
                        &path,
                        recovered_from.as_deref(),
                        recovered,
                        lost_lines,
                        lost_bytes,
                    );
                }
                Side::Problem { log, path, why } => {
                    eprintln!("nginx-medic: {path}: {why}");
                    events.problem(now, kinds[log].label(), &path, &why);
                }
            }
        }
        let failed = !out.counts.failures.is_empty() || !out.counts.responses.is_empty();
        engine.accumulate(&out.facts, &out.impacts, now);
        recent.add(now, &out.facts);

        let mut probed = false;
        if let Some(p) = prober.as_mut() {
            while let Some(round) = p.poll() {
                probed = true;
                let seen = Facts {
                    probes: Some(round.facts.clone()),
                    ..Facts::default()
                };
                for t in &round.facts.targets {
                    let up = &t.facts.upstream;
                    let answers = medic_core::diagnose::answers_now(&seen, up);
                    metrics.probed(answers == Some(true));
                    let what = probe_summary(t);
                    events.probe(round.at, up, answers, &what, round.took.as_millis());
                }
            }
        }
        probes_new |= probed;
        let due = last_eval.elapsed() >= EVALUATE_EVERY
            // A probe round is rare (one per target per interval) and an incident may wait
            // for it: right away.
            || probed
            || (failed && last_eval.elapsed() >= EVALUATE_AT_MOST.max(diagnosis_took * 10));
        // Idle (nothing in the window, nothing open): nothing to diagnose.
        let idle = recent.is_empty() && engine.open().is_empty();
        if due && !idle {
            last_eval = Instant::now();
            // The same window and the same probe answers make the same findings: the engine
            // still runs (incidents close on time), the diagnosis does not.
            if recent.changed || probes_new || findings.is_none() {
                recent.changed = false;
                probes_new = false;
                facts.probes = prober.as_ref().and_then(probes::Prober::facts);
                facts.now = Some(now);
                // The window's sum is lent to the diagnosis, not copied.
                std::mem::swap(&mut facts.logs, &mut recent.merged.facts);
                let started = Instant::now();
                // The old findings go first: with thousands of failing targets each set is
                // tens of MiB.
                drop(findings.take());
                let mut found = diagnose(&facts);
                // Kept until the window changes: only what the incidents read.
                for f in &mut found {
                    f.evidence.truncate(medic_core::incidents::EVIDENCE);
                    f.per_minute = Vec::new();
                    f.fix.steps = Vec::new();
                    f.fix.commands = Vec::new();
                }
                found.shrink_to_fit();
                findings = Some(found);
                diagnosis_took = started.elapsed();
                std::mem::swap(&mut facts.logs, &mut recent.merged.facts);
            }
            let findings = findings.as_deref().unwrap_or_default();
            let answers = probes::Answers {
                enabled: probing,
                facts: &facts,
                prober: prober.as_ref(),
            };
            let now_ms = started.elapsed().as_millis() as u64;
            let changes = engine.evaluate(
                findings,
                Now {
                    log: now,
                    ms: now_ms,
                },
                &answers,
            );
            for c in &changes {
                match c {
                    Change::Open(i) => {
                        metrics.incident_opened(i.cause);
                        events.incident("incident-open", now, i, None);
                    }
                    Change::Update(i) => events.incident("incident-update", now, i, None),
                    Change::Close(i, closed) => {
                        events.incident("incident-close", now, i, Some(closed));
                    }
                }
            }
            metrics.set_open(engine.open());
            if !told_capped && (recent.capped > 0 || engine.suppressed > 0) {
                // Said once: what the diagnosis leaves out when thousands of targets fail.
                told_capped = true;
                let why = format!(
                    "more than {MAX_GROUPS} failure groups or {} incidents at once: the diagnosis follows the groups with the most failures and opens no more incidents; the metrics count every failure",
                    IncidentOptions::default().max_open
                );
                eprintln!("nginx-medic: {why}");
                events.problem(now, "error", &paths[0].display().to_string(), &why);
            }
            if let Some(p) = prober.as_mut() {
                p.want(engine.wanted_probes());
            }
            if let Some(v) = view.as_mut() {
                v.draw(
                    now,
                    engine.open(),
                    recent.spark.make_contiguous(),
                    (SPARK_SECS, args.window),
                    &paths,
                    events.written,
                );
            }
        }
        if unsaved && last_save.elapsed() >= SAVE_EVERY {
            follower.save().context("saving the read offsets")?;
            last_save = Instant::now();
            unsaved = false;
        }
    }
    follower.save().context("saving the read offsets")?;
    if let Some(v) = view.as_mut() {
        v.leave();
    }
    Ok(0)
}

/// A probe's answer in a few words: how it connected and what the protocol probes saw.
fn probe_summary(t: &medic_core::facts::ProbedTarget) -> String {
    let f = &t.facts;
    let mut parts: Vec<String> = Vec::new();
    if let Some(u) = &f.unix {
        parts.push(format!("unix connect: {}", u.connect.label()));
    }
    for c in &f.tcp {
        parts.push(format!("{}: {}", c.address, c.connect.label()));
    }
    if parts.is_empty() {
        parts.push("no address to connect to".into());
    }
    parts.join("; ")
}
