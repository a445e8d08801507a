//! `nginx-medic logs`: reads the inputs, error logs first (their failures index the join),
//! then access logs, and prints the summary.

use std::io::{self, IsTerminal, Read, Write};
use std::os::unix::fs::FileExt;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use medic_core::logs::report::{InputProblem, InputReport, LogReport};
use medic_core::logs::{AccessSummary, ErrorSummary, Window};
use medic_parse::access_log::{self, Escape, Field, LogFormat};
use medic_parse::input::{
    self, ChunkSink, InputError, LineLoc, LogKind, ReadOptions, ReadOutcome, Source,
};
use medic_parse::time::LogTime;

use crate::cli::{LogEscape, LogsArgs, LogsFormat};

pub enum LogsOutcome {
    Done,
    NothingRead,
}

/// Progress is shown for inputs at least this large, when stderr is a terminal.
const PROGRESS_MIN: u64 = 100 << 20;

/// One sink type for both kinds: the reader learns the kind only once it sniffed the file.
enum Sink<'j> {
    Error(ErrorSummary),
    Access(AccessSummary<'j>),
}

impl Sink<'_> {
    /// The earliest entry it counted in the window.
    fn first(&self) -> Option<LogTime> {
        match self {
            Sink::Error(s) => s.first,
            Sink::Access(s) => s.first,
        }
    }
}

impl ChunkSink for Sink<'_> {
    fn chunk(&mut self, chunk: &[u8], first: LineLoc, offset: Option<u64>) -> u64 {
        match self {
            Sink::Error(s) => s.chunk(chunk, first, offset),
            Sink::Access(s) => s.chunk(chunk, first, offset),
        }
    }
    fn overlong(&mut self, at: LineLoc, len: u64) {
        match self {
            Sink::Error(s) => s.overlong(at, len),
            Sink::Access(s) => s.overlong(at, len),
        }
    }
}

struct Planned {
    source: Source,
    kind: Option<LogKind>,
}

struct Done {
    path: String,
    kind: LogKind,
    bytes: u64,
    compressed: bool,
    segment_lines: Vec<u64>,
    error: Option<String>,
    /// Its earliest entry in the window.
    first: Option<LogTime>,
}

pub fn run_logs(args: &LogsArgs, color: bool) -> Result<LogsOutcome> {
    let window = Window {
        since: args
            .since
            .as_deref()
            .map(|s| parse_when(s, "--since"))
            .transpose()?,
        until: args
            .until
            .as_deref()
            .map(|s| parse_when(s, "--until"))
            .transpose()?,
    };
    let escape = match args.log_escape {
        LogEscape::Default => Escape::Default,
        LogEscape::Json => Escape::Json,
        LogEscape::None => Escape::None,
    };
    let given = match &args.log_format {
        Some(f) => {
            let format = LogFormat::compile_with(f, escape)
                .with_context(|| format!("--log-format {f:?}"))?;
            for w in &format.warnings {
                eprintln!("nginx-medic: warning: --log-format: {w}");
            }
            Some(format)
        }
        None => None,
    };
    if args.files.is_empty() && args.error_logs.is_empty() && args.access_logs.is_empty() {
        bail!("no log files given (nginx-medic logs FILE...; `-` reads stdin)");
    }
    let spec = ScanSpec {
        files: args.files.clone(),
        error_logs: args.error_logs.clone(),
        access_logs: args.access_logs.clone(),
        format: given.map(Arc::new),
        escape,
        window,
        threads: args.threads,
        progress: !args.no_progress,
        cell_details: false,
    };
    scan(&spec, |scanned| {
        let mut report = LogReport::new(
            env!("CARGO_PKG_VERSION"),
            &window,
            scanned.inputs.clone(),
            scanned.problems.clone(),
            scanned.error,
            scanned.access,
            scanned.source,
        );
        if let Some(a) = report.access_log.as_mut() {
            a.format_note = Some(scanned.format_note.clone());
        }
        let stdout = io::stdout();
        let mut out = io::BufWriter::new(stdout.lock());
        match args.format {
            LogsFormat::Json => {
                serde_json::to_writer_pretty(&mut out, &report)?;
                writeln!(out)?;
            }
            LogsFormat::Text => crate::report::text::logs(&mut out, &report, color)?,
            LogsFormat::Html => {
                let chart = crate::report::html::logs_timeline(
                    scanned.error,
                    scanned.access,
                    &scanned.rotations,
                );
                crate::report::html::logs(&mut out, &report, &chart)?
            }
        }
        out.flush()?;
        Ok(if scanned.read_any {
            LogsOutcome::Done
        } else {
            LogsOutcome::NothingRead
        })
    })
}

/// What to read and how.
pub struct ScanSpec {
    /// Logs of either kind, told apart by their content.
    pub files: Vec<String>,
    pub error_logs: Vec<String>,
    pub access_logs: Vec<String>,
    /// The access log's format; `None`: recognised from its first lines.
    pub format: Option<Arc<LogFormat>>,
    pub escape: Escape,
    pub window: Window,
    pub threads: Option<usize>,
    /// A progress bar for large inputs, when stderr is a terminal.
    pub progress: bool,
    /// Whether error-log cells keep a later example and a timeline (`diagnose` cites them;
    /// `logs` reports neither).
    pub cell_details: bool,
}

/// What [`scan`] read: the summaries (the access summary borrows the error summary's join
/// index, hence the callback) and where each line came from.
pub struct Scanned<'a> {
    pub inputs: Vec<InputReport>,
    pub problems: Vec<InputProblem>,
    pub error: Option<&'a ErrorSummary>,
    pub access: Option<&'a AccessSummary<'a>>,
    pub format_note: String,
    /// Whether any input could be read.
    pub read_any: bool,
    /// `FILE:LINE` of a line.
    pub source: &'a dyn Fn(LineLoc) -> String,
    /// Where each newer file of a rotated series begins (its first entry in the window), and
    /// its path.
    pub rotations: Vec<(LogTime, String)>,
}

/// Reads the inputs, error logs first (their failures index the join), then access logs, and
/// hands the result to `emit`.
pub fn scan<R>(spec: &ScanSpec, emit: impl FnOnce(&Scanned<'_>) -> Result<R>) -> Result<R> {
    let window = spec.window;
    let escape = spec.escape;
    let given = spec.format.clone();
    let mut problems: Vec<InputProblem> = Vec::new();
    let mut note = |e: InputError| {
        let p = problem(&e);
        eprintln!("nginx-medic: {e}");
        problems.push(p);
    };
    let mut planned = Vec::new();
    for (list, forced) in [
        (&spec.files, None),
        (&spec.error_logs, Some(LogKind::Error)),
        (&spec.access_logs, Some(LogKind::Access)),
    ] {
        let (sources, errors) = input::expand(list);
        errors.into_iter().for_each(&mut note);
        for source in sources {
            let kind = match (&source, forced) {
                (_, Some(k)) => Some(k),
                (Source::Stdin, None) => None,
                (Source::File(p), None) => match input::sniff_file(p) {
                    Ok(k) => Some(k),
                    Err(e) => {
                        note(e);
                        continue;
                    }
                },
            };
            planned.push(Planned { source, kind });
        }
    }
    // Standard input, kind unknown: peek at it now so it lands in the right phase.
    let mut stdin_reader: Option<Box<dyn Read>> = None;
    for p in planned.iter_mut().filter(|p| p.source == Source::Stdin) {
        let (kind, reader) = input::peek_stdin().context("reading standard input")?;
        p.kind.get_or_insert(kind);
        stdin_reader = Some(Box::new(reader));
    }

    let total: u64 = planned
        .iter()
        .filter_map(|p| match &p.source {
            Source::File(f) => std::fs::metadata(f).ok().map(|m| m.len()),
            Source::Stdin => None,
        })
        .sum();
    let progress = Progress::start(
        total,
        spec.progress && total >= PROGRESS_MIN && io::stderr().is_terminal(),
    );
    let threads = spec
        .threads
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()))
        .max(1);
    let counter = progress.bytes.clone();
    let opts = ReadOptions {
        threads,
        kind: None,
        progress: Some(&*counter),
    };

    let has_access = planned.iter().any(|p| p.kind == Some(LogKind::Access));
    let (format, format_note) = match given {
        Some(f) => (f, "given with --log-format".to_string()),
        None => detect_format(&planned, escape),
    };
    let mut done: Vec<Done> = Vec::new();
    let mut err_summary: Option<ErrorSummary> = None;
    let mut acc_summary: Option<AccessSummary<'_>> = None;

    // Phase 1: error logs, so that their failures are indexed before the access log is read.
    for p in planned.iter().filter(|p| p.kind == Some(LogKind::Error)) {
        let index = done.len() as u32;
        let join = has_access.then(|| format.has(Field::UpstreamAddr));
        let make = |_k: LogKind| {
            let s = ErrorSummary::new(window, join);
            Sink::Error(if spec.cell_details {
                s
            } else {
                s.without_cell_details()
            })
        };
        if let Some(out) = read_one(p, index, make, &opts, &mut stdin_reader, &mut done) {
            for s in out.sinks {
                if let Sink::Error(s) = s {
                    match err_summary.as_mut() {
                        Some(m) => m.merge(s),
                        None => err_summary = Some(s),
                    }
                }
            }
            // The examples that survived the merge, read back from the file still open.
            if let (Some(e), Some(file)) = (err_summary.as_mut(), out.file) {
                let lost = e.read_back_examples(index, |at, buf| file.read_exact_at(buf, at));
                if lost > 0 {
                    note_lost(&mut problems, &p.source.display(), lost);
                }
            }
        }
    }
    if let Some(e) = err_summary.as_mut() {
        e.finish();
    }
    let join = err_summary.as_ref().and_then(|e| e.join.as_ref());
    for p in planned.iter().filter(|p| p.kind == Some(LogKind::Access)) {
        let index = done.len() as u32;
        let make = |_k: LogKind| Sink::Access(AccessSummary::new(format.clone(), window, join));
        if let Some(out) = read_one(p, index, make, &opts, &mut stdin_reader, &mut done) {
            for s in out.sinks {
                if let Sink::Access(s) = s {
                    match acc_summary.as_mut() {
                        Some(m) => m.merge(s),
                        None => acc_summary = Some(s),
                    }
                }
            }
        }
    }
    progress.finish();

    let read_any = done.iter().any(|d| d.bytes > 0 || d.error.is_none());
    let inputs: Vec<InputReport> = done
        .iter()
        .map(|d| InputReport {
            path: d.path.clone(),
            kind: match d.kind {
                LogKind::Error => "error",
                LogKind::Access => "access",
            },
            bytes: d.bytes,
            compressed: d.compressed,
            lines: d.segment_lines.iter().sum(),
            error: d.error.clone(),
        })
        .collect();
    for d in done.iter().filter(|d| d.bytes == 0 && d.error.is_some()) {
        problems.push(InputProblem {
            path: d.path.clone(),
            error: d.error.clone().unwrap_or_default(),
        });
    }
    let source = |loc: LineLoc| -> String {
        match done.get(loc.input as usize) {
            Some(d) => {
                let before: u64 = d.segment_lines.iter().take(loc.segment as usize).sum();
                format!("{}:{}", d.path, before + loc.line)
            }
            None => format!("?:{}", loc.line),
        }
    };
    let rotations = done
        .windows(2)
        .filter(|w| {
            w[0].kind == w[1].kind
                && input::rotation_base(Path::new(&w[0].path))
                    == input::rotation_base(Path::new(&w[1].path))
        })
        .filter_map(|w| Some((w[1].first?, w[1].path.clone())))
        .collect();
    let scanned = Scanned {
        inputs,
        problems,
        error: err_summary.as_ref(),
        access: acc_summary.as_ref(),
        format_note,
        read_any,
        source: &source,
        rotations,
    };
    emit(&scanned)
}

fn read_one<'j, F>(
    p: &Planned,
    index: u32,
    make: F,
    opts: &ReadOptions<'_>,
    stdin: &mut Option<Box<dyn Read>>,
    done: &mut Vec<Done>,
) -> Option<ReadOutcome<Sink<'j>>>
where
    F: Fn(LogKind) -> Sink<'j> + Sync,
{
    let opts = ReadOptions {
        threads: opts.threads,
        kind: p.kind,
        progress: opts.progress,
    };
    let r = match &p.source {
        Source::Stdin => input::read_reader(stdin.take()?, "<stdin>", index, &opts, make),
        src => input::read(src, index, &opts, make),
    };
    match r {
        Ok(out) => {
            if let Some(e) = &out.error {
                eprintln!("nginx-medic: {e}");
            }
            done.push(Done {
                path: p.source.display(),
                kind: out.kind,
                bytes: out.bytes,
                compressed: out.compressed,
                segment_lines: out.segment_lines.clone(),
                error: out.error.as_ref().map(|e| e.to_string()),
                first: out.sinks.iter().filter_map(Sink::first).min(),
            });
            Some(out)
        }
        Err(e) => {
            eprintln!("nginx-medic: {e}");
            done.push(Done {
                path: p.source.display(),
                kind: p.kind.unwrap_or(LogKind::Error),
                bytes: 0,
                compressed: false,
                segment_lines: vec![],
                error: Some(e.to_string()),
                first: None,
            });
            None
        }
    }
}

/// Recognises the access log's format from the first lines of the first access log.
fn detect_format(planned: &[Planned], escape: Escape) -> (Arc<LogFormat>, String) {
    let path = planned.iter().find_map(|p| match (&p.source, p.kind) {
        (Source::File(f), Some(LogKind::Access)) => Some(f.as_path()),
        _ => None,
    });
    format_of(path, escape)
}

/// Recognises the access log's format from the first lines of `path` (`combined` without one).
pub(crate) fn format_of(path: Option<&Path>, escape: Escape) -> (Arc<LogFormat>, String) {
    let combined =
        || Arc::new(LogFormat::compile_with("combined", escape).expect("combined compiles"));
    let Some(path) = path else {
        return (
            combined(),
            "combined (nginx's default; no file to recognise another from)".into(),
        );
    };
    let Ok(head) = input::read_head(path) else {
        return (combined(), "combined (nginx's default)".into());
    };
    let candidates: Vec<LogFormat> = access_log::KNOWN
        .iter()
        .filter_map(|(_, f)| LogFormat::compile_with(f, escape).ok())
        .collect();
    match LogFormat::detect(&head, &candidates) {
        Some((f, n, of)) if n > 0 => {
            let name = access_log::KNOWN
                .iter()
                .find(|(_, s)| *s == f.source())
                .map_or("?", |(n, _)| n);
            let note = format!("recognised as {name} ({n} of {of} sample lines of {}); give --log-format if that is wrong", path.display());
            (
                Arc::new(LogFormat::compile_with(f.source(), escape).expect("compiled before")),
                note,
            )
        }
        _ => (
            combined(),
            format!(
                "combined (nginx's default): no common format reads {} whole; give --log-format",
                path.display()
            ),
        ),
    }
}

/// Example entries whose text could not be read back: the file was truncated or rewritten
/// (logrotate's `copytruncate`) after it was read. Their counts stand; their text says so.
fn note_lost(problems: &mut Vec<InputProblem>, path: &str, lost: usize) {
    let error = format!(
        "changed while it was read: the text of {lost} example entries could not be read back"
    );
    eprintln!("nginx-medic: {path}: {error}");
    problems.push(InputProblem {
        path: path.to_string(),
        error,
    });
}

fn problem(e: &InputError) -> InputProblem {
    let path = match e {
        InputError::Io { path, .. }
        | InputError::Directory { path }
        | InputError::Compression { path, .. }
        | InputError::Gzip { path, .. }
        | InputError::Shrank { path, .. }
        | InputError::Rewritten { path, .. }
        | InputError::NotAFile { path } => path.clone(),
        InputError::NoMatch { pattern } | InputError::Pattern { pattern, .. } => pattern.clone(),
    };
    InputProblem {
        path,
        error: e.to_string(),
    }
}

/// `--since`/`--until`: an absolute time (`2026-11-20 14:00[:00]`, `2026-11-20T14:00:00`, or
/// the error log's `2026/11/20 14:00:00`) or a duration back from now (`90s`, `15m`, `2h`, `1d`).
pub fn parse_when(s: &str, flag: &str) -> Result<LogTime> {
    // nginx logs local wall-clock time; compare in the same terms.
    let now = LogTime(chrono::Local::now().naive_local().and_utc().timestamp());
    parse_when_at(s, flag, now)
}

/// [`parse_when`] with durations counted back from `now` (nginx's wall clock).
pub fn parse_when_at(s: &str, flag: &str, now: LogTime) -> Result<LogTime> {
    let s = s.trim();
    if let Some(t) =
        LogTime::parse_iso(s.as_bytes()).or_else(|| LogTime::parse_error_log(s.as_bytes()))
    {
        return Ok(t);
    }
    if s.len() == 10 {
        if let Some(t) = LogTime::parse_iso(format!("{s} 00:00").as_bytes()) {
            return Ok(t);
        }
    }
    let (num, unit) = s.split_at(s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len()));
    let n: i64 = num.parse().with_context(|| {
        format!("{flag} {s:?}: expected a time (2026-11-20 14:00) or a duration (90m, 2h, 1d)")
    })?;
    let secs = match unit {
        "s" | "" => n,
        "m" | "min" => n * 60,
        "h" => n * 3600,
        "d" => n * 86_400,
        _ => bail!("{flag} {s:?}: unknown unit {unit:?} (use s, m, h or d)"),
    };
    Ok(LogTime(now.0 - secs))
}

/// An indicatif bar fed by the readers' byte counter from a ticker thread.
struct Progress {
    bytes: Arc<AtomicU64>,
    stop: Arc<AtomicBool>,
    bar: Option<indicatif::ProgressBar>,
    ticker: Option<std::thread::JoinHandle<()>>,
}

impl Progress {
    fn start(total: u64, show: bool) -> Progress {
        let bytes = Arc::new(AtomicU64::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let bar = show.then(|| {
            let b = indicatif::ProgressBar::with_draw_target(
                Some(total),
                indicatif::ProgressDrawTarget::stderr(),
            );
            if let Ok(style) = indicatif::ProgressStyle::with_template(
                "reading logs {bar:40} {bytes}/{total_bytes} {bytes_per_sec} eta {eta}",
            ) {
                b.set_style(style);
            }
            b
        });
        let ticker = bar.clone().map(|b| {
            let (bytes, stop) = (bytes.clone(), stop.clone());
            std::thread::spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    b.set_position(bytes.load(Ordering::Relaxed));
                    std::thread::sleep(Duration::from_millis(100));
                }
            })
        });
        Progress {
            bytes,
            stop,
            bar,
            ticker,
        }
    }

    fn finish(self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.ticker {
            let _ = t.join();
        }
        if let Some(b) = &self.bar {
            b.finish_and_clear();
        }
    }
}
