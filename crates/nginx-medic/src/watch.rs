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

/// The window is kept in slices of this many seconds: a slice leaves the window whole.
const SLICE_SECS: i64 = 60;
/// The terminal view's sparklines count failures per this many seconds.
const SPARK_SECS: i64 = 10;
/// The diagnosis runs at least this often (incidents close on time, too), and at most this
/// often when failures keep coming.
const EVALUATE_EVERY: Duration = Duration::from_secs(1);
const EVALUATE_AT_MOST: Duration = Duration::from_millis(500);
/// Offsets are saved at most this often (each save is an fsync).
const SAVE_EVERY: Duration = Duration::from_secs(1);

/// The last minutes of the logs: slices, and their sum kept up to date read by read (the
/// diagnosis reads the sum; it is rebuilt from the slices only when one leaves the window).
struct Recent {
    slices: VecDeque<(i64, Merged)>,
    total: Merged,
    secs: i64,
    /// Failures per [`SPARK_SECS`] and (upstream, class), for the terminal view.
    spark: VecDeque<tty::Slice>,
    /// Something was added or left since the last diagnosis.
    changed: bool,
}

impl Recent {
    fn new(secs: i64) -> Recent {
        Recent {
            slices: VecDeque::new(),
            total: Merged::default(),
            secs,
            spark: VecDeque::new(),
            changed: false,
        }
    }

    fn add(&mut self, now: LogTime, tick: &LogFacts) {
        let oldest = (now.0 - self.secs).div_euclid(SLICE_SECS);
        let mut left = false;
        while self.slices.front().is_some_and(|(s, _)| *s < oldest) {
            self.slices.pop_front();
            left = true;
        }
        if left {
            self.total = Merged::default();
            for (_, m) in &self.slices {
                self.total.absorb(&m.facts);
            }
            self.changed = true;
        }
        let oldest_spark = (now.0 - self.secs).div_euclid(SPARK_SECS);
        while self.spark.front().is_some_and(|(s, _)| *s < oldest_spark) {
            self.spark.pop_front();
        }
        let nothing = tick.groups.is_empty()
            && tick.access_5xx.is_empty()
            && tick.client_closed.is_empty()
            && tick.reloads.is_empty();
        if nothing {
            return;
        }
        self.changed = true;
        let slice = now.0.div_euclid(SLICE_SECS);
        match self.slices.back_mut() {
            Some((s, m)) if *s == slice => m.absorb(tick),
            _ => self.slices.push_back((slice, Merged::from(tick.clone()))),
        }
        self.total.absorb(tick);
        let spark = now.0.div_euclid(SPARK_SECS);
        if self.spark.back().is_none_or(|(s, _)| *s != spark) {
            self.spark.push_back((spark, Vec::new()));
        }
        if let Some((_, cells)) = self.spark.back_mut() {
            for g in &tick.groups {
                let up = g.upstream.as_deref().unwrap_or("-");
                match cells
                    .iter_mut()
                    .find(|(u, c, _)| u == up && *c == g.class.id())
                {
                    Some(cell) => cell.2 += g.count,
                    None => cells.push((up.to_string(), g.class.id(), g.count)),
                }
            }
        }
    }

    fn is_empty(&self) -> bool {
        self.slices.is_empty()
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
    let mut recent = Recent::new(args.window);
    let mut findings: Option<Vec<medic_core::rules::Finding>> = None;
    // A probe round came back since the last diagnosis.
    let mut probes_new = false;
    // While failures pour in, the diagnosis takes at most a tenth of the time.
    let mut diagnosis_took = Duration::ZERO;
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
        engine.accumulate(&out.facts, &out.impacts);
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
                std::mem::swap(&mut facts.logs, &mut recent.total.facts);
                let started = Instant::now();
                findings = Some(diagnose(&facts));
                diagnosis_took = started.elapsed();
                std::mem::swap(&mut facts.logs, &mut recent.total.facts);
            }
            let findings = findings.as_deref().unwrap_or_default();
            let answers = probes::Answers {
                enabled: probing,
                facts: &facts,
                prober: prober.as_ref(),
            };
            let now_ms = started.elapsed().as_millis() as u64;
            let changes = engine.evaluate(
                &findings,
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
