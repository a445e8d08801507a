//! One read of the followed logs, summarised as `logs` summarises a file.
//!
//! The follower hands over whole lines, error logs first. Each read ([`Tick`]) feeds them to a
//! fresh [`ErrorSummary`] and, per chunk, to an [`AccessSummary`] that looks failures up in a
//! join index kept across reads ([`Reader`]): an access line is written when the request ends,
//! a moment after its error entry, possibly one read later. The summaries are the same code
//! `logs` runs, so the counters `watch` serves equal what `logs --format json` counts on the
//! same lines. A read ends as [`TickFacts`]: the diagnosis' [`LogFacts`] of those lines and the
//! counter increments; the summaries are dropped, so memory does not grow with time.

use std::sync::Arc;
use std::time::{Duration, Instant};

use medic_core::facts::{Impact, LogFacts};
use medic_core::logs::join::JoinIndex;
use medic_core::logs::{AccessSummary, ErrorSummary, Window};
use medic_parse::access_log::{Field, LogFormat, Origin};
use medic_parse::error_log::FailureClass;
use medic_parse::input::{ChunkSink, LineLoc};

use crate::diagnose::{access_groups, error_groups, text};

/// How long a generation of the join index lives: longer than the seconds between an error
/// entry and its access line (two generations are kept), short enough that a busy host's
/// failures do not fill it (each entry is 16 bytes; 50k failures/s).
const JOIN_GENERATION: Duration = Duration::from_secs(5);

/// What lasts from one read to the next.
pub struct Reader {
    format: Arc<LogFormat>,
    /// Index failures for the access log (there is one).
    join_keys: Option<bool>,
    join: JoinIndex,
    aged: Instant,
    /// `LineLoc::input` to the file's path (the live name, or the rotated one).
    paths: Vec<String>,
}

/// Which kind a followed log is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Error,
    Access,
}

impl Kind {
    pub fn label(self) -> &'static str {
        match self {
            Kind::Error => "error",
            Kind::Access => "access",
        }
    }
}

/// The lines of one read.
pub struct Tick {
    err: ErrorSummary,
    err_done: bool,
    acc: AccessSummary<'static>,
    any_access: bool,
}

/// Counter increments of one read, by label.
#[derive(Debug, Default)]
pub struct Counts {
    pub lines: [u64; 2],
    pub parse_errors: [u64; 2],
    /// (class, upstream, entries) of the failure classes, as `logs` reports
    /// `error_log.by_upstream`.
    pub failures: Vec<(&'static str, String, u64)>,
    /// (upstream, status, origin, responses), as `logs` reports `access_log.errors_5xx`.
    pub responses: Vec<(String, u16, Origin, u64)>,
}

/// What one read adds.
pub struct TickFacts {
    pub facts: LogFacts,
    /// What the clients got, per (class, failed peer), for access lines read now (their error
    /// entries may have come in an earlier read).
    pub impacts: Vec<(FailureClass, String, Impact)>,
    pub counts: Counts,
}

impl Reader {
    pub fn new(format: Arc<LogFormat>, has_access: bool) -> Reader {
        let join_keys = has_access.then(|| format.has(Field::UpstreamAddr));
        Reader {
            join: JoinIndex::new(join_keys == Some(true)),
            format,
            join_keys,
            aged: Instant::now(),
            paths: Vec::new(),
        }
    }

    pub fn tick(&self) -> Tick {
        Tick {
            err: ErrorSummary::new(Window::default(), self.join_keys),
            err_done: false,
            acc: AccessSummary::new(self.format.clone(), Window::default(), None),
            any_access: false,
        }
    }

    fn input(&mut self, path: &str) -> u32 {
        match self.paths.iter().position(|p| p == path) {
            Some(i) => i as u32,
            None => {
                self.paths.push(path.to_string());
                (self.paths.len() - 1) as u32
            }
        }
    }

    /// Whole lines of one log, `first_line` being the file's line number of the first.
    pub fn lines(&mut self, t: &mut Tick, kind: Kind, path: &str, first_line: u64, bytes: &[u8]) {
        let at = LineLoc {
            input: self.input(path),
            segment: 0,
            line: first_line,
        };
        match kind {
            Kind::Error => {
                // No offsets: a followed file rotates under the summary, so examples are kept.
                t.err.chunk(bytes, at, None);
            }
            Kind::Access => {
                self.error_lines_done(t);
                t.any_access = true;
                let mut s =
                    AccessSummary::new(self.format.clone(), Window::default(), Some(&self.join));
                s.chunk(bytes, at, None);
                t.acc.merge(s);
            }
        }
    }

    /// A line longer than the follower reads, skipped: counted as `logs` counts it.
    pub fn overlong(&mut self, t: &mut Tick, kind: Kind, path: &str, line: u64, len: u64) {
        let at = LineLoc {
            input: self.input(path),
            segment: 0,
            line,
        };
        match kind {
            Kind::Error => t.err.overlong(at, len),
            Kind::Access => t.acc.overlong(at, len),
        }
    }

    /// The error lines of this read are all in: their failures join the index the access lines
    /// look up.
    fn error_lines_done(&mut self, t: &mut Tick) {
        if t.err_done {
            return;
        }
        t.err_done = true;
        t.err.finish();
        if let Some(j) = t.err.join.take() {
            self.join.merge(j);
        }
    }

    /// The read is over: its facts and counter increments.
    pub fn finish(&mut self, mut t: Tick) -> TickFacts {
        self.error_lines_done(&mut t);
        if self.aged.elapsed() >= JOIN_GENERATION {
            self.join.age();
            self.aged = Instant::now();
        }
        let paths = &self.paths;
        let source = |loc: LineLoc| -> String {
            match paths.get(loc.input as usize) {
                Some(p) => format!("{p}:{}", loc.line),
                None => format!("?:{}", loc.line),
            }
        };
        let mut facts = LogFacts::default();
        error_groups(&t.err, &source, None, &mut facts.groups);
        // The window keeps a group's first and latest lines for as long as it fails: their
        // start is the evidence, `FILE:LINE` the reference (nginx's lines run to 2 KiB).
        for g in &mut facts.groups {
            clip(&mut g.first_line.text);
            if let Some(l) = g.last_line.as_mut() {
                clip(&mut l.text);
            }
        }
        facts.last_reload = t.err.last_reload;
        facts.reloads = t.err.reloads.clone();
        facts.failures_per_minute = t.err.failures_per_minute();
        let mut counts = Counts {
            lines: [t.err.lines, t.acc.lines],
            parse_errors: [t.err.unparsed.count, t.acc.unparsed.count],
            ..Counts::default()
        };
        // Failures only: `other` entries (notices, app stderr) are lines, not failures.
        for class in FailureClass::ALL.into_iter().filter(|c| c.is_failure()) {
            for cell in t.err.cells[class as usize].values() {
                counts
                    .failures
                    .push((class.id(), text(&cell.upstream), cell.count));
            }
        }
        let mut impacts = Vec::new();
        if t.any_access {
            access_groups(&t.acc, &source, &mut facts);
            for ((up, status, origin), c) in &t.acc.by_upstream {
                counts.responses.push((text(up), *status, *origin, c.count));
            }
            for ((class, up), i) in &t.acc.impact {
                impacts.push((*class, text(up), i.clone()));
            }
        }
        TickFacts {
            facts,
            impacts,
            counts,
        }
    }
}

/// Evidence text a window keeps per line.
const EVIDENCE_TEXT: usize = 400;

/// Cuts `s` to [`EVIDENCE_TEXT`] bytes (at a character boundary), marked with `…`.
fn clip(s: &mut String) {
    if s.len() > EVIDENCE_TEXT {
        let mut at = EVIDENCE_TEXT;
        while !s.is_char_boundary(at) {
            at -= 1;
        }
        s.truncate(at);
        s.push('…');
    }
}
