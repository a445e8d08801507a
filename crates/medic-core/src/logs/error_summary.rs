//! The error-log summary: failure class x upstream over time.

use foldhash::{HashMap, HashMapExt};
use medic_parse::error_log::{
    may_be_failure, parse_head, split_lean, starts_entry, FailureClass, HeadParser, Level,
    MAX_ENTRY,
};
use medic_parse::input::{ChunkSink, LineLoc};
use medic_parse::time::LogTime;
use medic_parse::upstream;

use super::entry_text::EntryText;
use super::join::{JoinIndex, JoinKey};
use super::message_classes::MessageClasses;
use super::{request_key, Samples, Window};
use crate::hashkey::{key, PreHashedMap};
use crate::topk::TopK;

const TOP_CAP: usize = 64;

/// Counts of one (class, upstream) pair.
#[derive(Clone, Debug)]
pub struct Cell {
    /// The upstream as nginx names it (`-` when the entry names none).
    pub upstream: Box<[u8]>,
    pub count: u64,
    pub first: LogTime,
    pub last: LogTime,
    /// The earliest entry of the pair in input order, with its text.
    pub example: (LineLoc, EntryText),
    /// A late entry: the first of the latest minute that had entries (when it is not the
    /// first entry of all).
    pub latest: Option<(LineLoc, EntryText)>,
    /// What tells entries of one class and upstream apart (see [`detail`]): the zone of a
    /// limit, the verify error, the name that did not resolve, `emerg` for a config refused at
    /// start.
    pub detail: Option<Box<[u8]>>,
    /// Entries per minute (minutes since the epoch, count) for the last [`CELL_MINUTES`]
    /// minutes that had entries, in time order once [`ErrorSummary::finish`] ran.
    pub minutes: Vec<(u32, u32)>,
    /// The minute being counted (minute, entries), kept inline so that counting an entry
    /// touches no other memory than the cell; moved to `minutes` when the minute changes.
    current: (u32, u32),
    /// The minute of `latest` (or of `example`, before there is one).
    latest_minute: u32,
}

impl Cell {
    /// Adds another reader's counts of the same cell; `details`: keep a later example (see
    /// [`ErrorSummary::without_cell_details`]).
    fn merge(&mut self, o: Cell, details: bool) {
        self.count += o.count;
        self.first = self.first.min(o.first);
        self.last = self.last.max(o.last);
        let mut ends = vec![o.example];
        ends.extend(o.latest);
        ends.extend(self.latest.take());
        for e in ends {
            if e.0 < self.example.0 {
                let old = std::mem::replace(&mut self.example, e);
                self.keep_latest(old);
            } else {
                self.keep_latest(e);
            }
        }
        if !details {
            // The other reader's first example would otherwise become the later one.
            self.latest = None;
        }
        self.minutes.extend(o.minutes);
        if o.current.1 > 0 {
            self.minutes.push(o.current);
        }
        self.normalize_minutes();
    }

    fn keep_latest(&mut self, e: (LineLoc, EntryText)) {
        if e.0 > self.example.0 && self.latest.as_ref().is_none_or(|l| e.0 > l.0) {
            self.latest = Some(e);
        }
    }

    fn normalize_minutes(&mut self) {
        if self.current.1 > 0 {
            self.minutes.push(std::mem::take(&mut self.current));
        }
        self.minutes.sort_unstable_by_key(|m| m.0);
        self.minutes.dedup_by(|b, a| {
            if a.0 == b.0 {
                a.1 += b.1;
                true
            } else {
                false
            }
        });
        let extra = self.minutes.len().saturating_sub(CELL_MINUTES);
        self.minutes.drain(..extra);
        // A merge appends another reader's ring: without this the merged cells kept room for
        // both (4.4 of the 1 GiB scan's 21 MB of heap at its peak, heaptrack).
        self.minutes.shrink_to_fit();
    }

    /// Counts an entry in its minute; true when it is the first of a new minute.
    #[inline]
    fn count_minute(&mut self, minute: u32) -> bool {
        if self.current.0 == minute && self.current.1 > 0 {
            self.current.1 += 1;
            return false;
        }
        if self.current.1 > 0 {
            // Keep the newest minutes only: memory stays a few KB per cell however long the
            // log (a day of minutes for every cell tripled the scan's RSS).
            if self.minutes.len() >= CELL_MINUTES + 16 {
                self.minutes.drain(..16);
            }
            if self.minutes.len() == self.minutes.capacity() {
                // Doubling would end at 128 slots for the 76 ever held.
                let slots = (self.minutes.capacity() * 2).clamp(4, CELL_MINUTES + 16);
                self.minutes.reserve_exact(slots - self.minutes.len());
            }
            self.minutes.push(self.current);
        }
        self.current = (minute, 1);
        true
    }
}

/// A cell's later example is its latest entry up to this many entries...
const LATEST_ALWAYS: u64 = 64;
/// ...then it is refreshed at most this often (minutes of log time).
const LATEST_EVERY: u32 = 15;

/// How many minutes of a cell's timeline are kept (the newest ones).
pub const CELL_MINUTES: usize = 60;
/// Reloads kept (the newest): a reload loop must not grow memory without bound.
pub const MAX_RELOADS: usize = 256;

fn keep_newest_reloads(r: &mut Vec<LogTime>) {
    r.sort_unstable();
    r.dedup();
    let extra = r.len().saturating_sub(MAX_RELOADS);
    r.drain(..extra);
}

/// Distinct (upstream, detail) cells kept per class. A log naming more upstreams than that (a
/// fleet behind one nginx, or hostile input) still counts every entry: the rest go to one cell
/// without an upstream, and [`ErrorSummary::overflow`] says how many. Memory and the diagnosis
/// stay bounded.
pub const MAX_CELLS_PER_CLASS: usize = 2048;

/// The [`detail`] of a failure nginx logged `while reading upstream` (or `while sending to
/// client`): the response header had gone out, so the client got the upstream's status and a
/// body cut short, not a 502/504.
pub const AFTER_HEADER: &str = "after the response header";

/// What sets entries of one class and upstream apart, for the classes whose root cause depends
/// on it: the zone of `limit_req`/`limit_conn`, the verify error or OpenSSL reason of a TLS
/// failure, `Primary script unknown`, the name that did not resolve; `emerg` for any entry at
/// `[emerg]` (nginx refusing its config at start or reload).
pub fn detail<'a>(
    class: FailureClass,
    level: Level,
    message: &'a [u8],
    action: Option<&[u8]>,
) -> Option<&'a [u8]> {
    detail_ref(class, level, message, action).map(DetailRef::bytes)
}

/// A [`detail`]: a fixed text, or a part of the message (which a [`MessageClasses`] keeps as
/// its place in the message).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum DetailRef<'a> {
    Fixed(&'static [u8]),
    Text(&'a [u8]),
}

impl<'a> DetailRef<'a> {
    pub(crate) fn bytes(self) -> &'a [u8] {
        match self {
            DetailRef::Fixed(f) => f,
            DetailRef::Text(t) => t,
        }
    }
}

pub(crate) fn detail_ref<'a>(
    class: FailureClass,
    level: Level,
    message: &'a [u8],
    action: Option<&[u8]>,
) -> Option<DetailRef<'a>> {
    use std::sync::LazyLock;
    use DetailRef::{Fixed, Text};

    use memchr::memmem::Finder;
    // Built once: constructing a substring searcher per entry cost the scan more than the
    // search itself.
    static ROUTINES: LazyLock<Finder<'static>> = LazyLock::new(|| Finder::new(b"routines::"));
    static ALERT: LazyLock<Finder<'static>> = LazyLock::new(|| Finder::new(b":SSL alert number"));
    static PEER_CLOSED: LazyLock<Finder<'static>> =
        LazyLock::new(|| Finder::new(b"peer closed connection"));
    static PRIMARY: LazyLock<Finder<'static>> =
        LazyLock::new(|| Finder::new(b"Primary script unknown"));

    if level == Level::Emerg {
        return Some(Fixed(b"emerg"));
    }
    // The text between `open` (the first byte after it) and the next `close` byte.
    let after = |from: usize, close: u8| -> Option<&'a [u8]> {
        let rest = message.get(from..)?;
        let n = memchr::memchr(close, rest)?;
        Some(&rest[..n])
    };
    match class {
        // `limiting requests, excess: 0.500 by zone "one"`: the last quoted string.
        FailureClass::RateLimited | FailureClass::ConnLimited => {
            let end = memchr::memrchr(b'"', message)?;
            let start = memchr::memrchr(b'"', &message[..end])? + 1;
            message[..start]
                .ends_with(b"by zone \"")
                .then(|| Text(&message[start..end]))
        }
        FailureClass::TlsVerify => {
            if message.starts_with(b"upstream SSL certificate does not match") {
                Some(Fixed(b"does not match"))
            } else {
                let open = memchr::memchr(b'(', message)? + 1;
                after(open, b')').map(Text)
            }
        }
        FailureClass::TlsHandshake => {
            if let Some(i) = ROUTINES.find(message) {
                let r = after(i + b"routines::".len(), b')')?;
                let end = ALERT.find(r).unwrap_or(r.len());
                Some(Text(&r[..end]))
            } else if PEER_CLOSED.find(message).is_some() {
                Some(Fixed(b"peer closed connection in SSL handshake"))
            } else {
                let open = memchr::memchr(b'(', message)?;
                let r = after(open + 1, b')')?;
                Some(Text(r.strip_prefix(b"SSL: ").unwrap_or(r)))
            }
        }
        // ngx_http_upstream_process_upstream: the body phase, after ngx_http_send_header.
        FailureClass::UpstreamReset
        | FailureClass::PrematureClose
        | FailureClass::ReadTimeout
        | FailureClass::InvalidResponse
        | FailureClass::TempFileError
            // The parser has split off the action: a comparison, not a search per entry.
            if matches!(action, Some(b"reading upstream" | b"sending to client")) =>
        {
            Some(Fixed(AFTER_HEADER.as_bytes()))
        }
        FailureClass::FastcgiStderr => PRIMARY
            .find(message)
            .map(|_| Fixed(b"Primary script unknown")),
        FailureClass::DnsFailure => {
            const NOT_FOUND: &[u8] = b"host not found in upstream \"";
            const NO_RESOLVER: &[u8] = b"no resolver defined to resolve ";
            if message.starts_with(NOT_FOUND) {
                after(NOT_FOUND.len(), b'"').map(Text)
            } else if let Some(r) = message.strip_prefix(NO_RESOLVER) {
                let end = memchr::memchr2(b' ', b',', r).unwrap_or(r.len());
                Some(Text(&r[..end]))
            } else {
                // `NAME could not be resolved (3: Host not found)`: the name comes first.
                let sp = memchr::memchr(b' ', message)?;
                message[sp..]
                    .starts_with(b" could not be resolved")
                    .then(|| Text(&message[..sp]))
            }
        }
        _ => None,
    }
}

/// Per-class request and client counts.
#[derive(Clone, Debug)]
pub struct ClassTops {
    pub requests: TopK,
    pub clients: TopK,
}

/// Aggregates error-log entries. One per reader thread; [`ErrorSummary::merge`] joins them.
#[derive(Debug)]
pub struct ErrorSummary {
    pub window: Window,
    pub lines: u64,
    pub entries: u64,
    pub outside_window: u64,
    pub levels: [u64; 8],
    pub first: Option<LogTime>,
    pub last: Option<LogTime>,
    /// Entries counted without their upstream: their class already had
    /// [`MAX_CELLS_PER_CLASS`] cells.
    pub overflow: u64,
    /// The last time nginx's master logged `reconfiguring` (a reload: SIGHUP, `nginx -s
    /// reload`, `systemctl reload`): the running config changed then.
    pub last_reload: Option<LogTime>,
    /// Every reload in the window, in time order once [`ErrorSummary::finish`] ran: the newest
    /// [`MAX_RELOADS`] (the HTML report's timeline marks them).
    pub reloads: Vec<LogTime>,
    /// `cells[class]`: key(upstream name) to its counts.
    pub cells: Vec<PreHashedMap<Cell>>,
    pub tops: Vec<Option<ClassTops>>,
    /// Minute start to counts per class.
    pub minutes: HashMap<i64, [u32; FailureClass::COUNT]>,
    cur_minute: i64,
    cur_counts: [u32; FailureClass::COUNT],
    pub unparsed: Samples,
    /// Failure entries by (second, client, request), for the join with the access log.
    pub join: Option<JoinIndex>,
    heads: HeadParser,
    classes: MessageClasses,
    /// `other` entries outside any upstream context, kept apart from `cells` (the common case
    /// needs no hashing); folded in by [`ErrorSummary::finish`].
    other: Option<Cell>,
    /// Whether cells keep a later example ([`Cell::latest`]) and a timeline
    /// ([`Cell::minutes`]); see [`ErrorSummary::without_cell_details`].
    cell_details: bool,
}

impl ErrorSummary {
    /// `join`: index failures for the access log; `Some(true)` when its format has
    /// `$upstream_addr` (keys then carry the upstream).
    pub fn new(window: Window, join: Option<bool>) -> ErrorSummary {
        ErrorSummary {
            window,
            lines: 0,
            entries: 0,
            outside_window: 0,
            levels: [0; 8],
            first: None,
            last: None,
            last_reload: None,
            reloads: Vec::new(),
            overflow: 0,
            cells: (0..FailureClass::COUNT)
                .map(|_| PreHashedMap::default())
                .collect(),
            tops: vec![None; FailureClass::COUNT],
            minutes: HashMap::new(),
            cur_minute: i64::MIN,
            cur_counts: [0; FailureClass::COUNT],
            unparsed: Samples::default(),
            join: join.map(JoinIndex::new),
            heads: HeadParser::default(),
            classes: MessageClasses::default(),
            other: None,
            cell_details: true,
        }
    }

    /// Cells keep their counts, times and first example only: no later example and no
    /// timeline, which `diagnose` cites and `logs` does not report. On the 1 GiB benchmark log
    /// (7,400 cells, two readers) that is 9 MB of minute rings and 7,400 texts less, and no
    /// per-entry write to the cell's minute.
    pub fn without_cell_details(mut self) -> ErrorSummary {
        self.cell_details = false;
        self
    }

    /// One entry; `offset` is where it is in the file, when it can be read there again.
    #[inline]
    fn entry(&mut self, e: &[u8], loc: LineLoc, offset: Option<u64>) {
        let e = e.strip_suffix(b"\r").unwrap_or(e);
        let Some(head) = self.heads.parse(e) else {
            self.unparsed.add(loc, "not an nginx error-log entry", e);
            return;
        };
        self.entries += 1;
        self.levels[head.level as usize] += 1;
        if !self.window.contains(head.time) {
            self.outside_window += 1;
            return;
        }
        self.first = Some(self.first.map_or(head.time, |f| f.min(head.time)));
        self.last = Some(self.last.map_or(head.time, |l| l.max(head.time)));

        let minute = head.time.0.div_euclid(60);
        if minute != self.cur_minute {
            self.flush_minute();
            self.cur_minute = minute;
        }

        let msg = &e[head.message_start..];
        // ngx_process_cycle.c: the master logs "reconfiguring" at [notice] on SIGHUP.
        if head.level == Level::Notice && msg.starts_with(b"reconfiguring") {
            self.last_reload = max_opt(self.last_reload, Some(head.time));
            if self.reloads.len() >= 2 * MAX_RELOADS {
                keep_newest_reloads(&mut self.reloads);
            }
            self.reloads.push(head.time);
        }
        if !may_be_failure(head.level, msg) {
            self.cur_counts[FailureClass::Other as usize] += 1;
            match self.other.as_mut() {
                Some(c) => {
                    c.count += 1;
                    c.first = c.first.min(head.time);
                    c.last = c.last.max(head.time);
                }
                None => {
                    self.other = Some(Cell {
                        upstream: b"-"[..].into(),
                        count: 1,
                        first: head.time,
                        last: head.time,
                        example: (loc, EntryText::new(&e[..e.len().min(MAX_ENTRY)], offset)),
                        latest: None,
                        detail: None,
                        minutes: Vec::new(),
                        current: (0, 0),
                        latest_minute: 0,
                    })
                }
            }
            return;
        }
        let split = split_lean(e, &head);
        let (class, detail) = self.classes.class(&head, split);
        let context = split.context;
        self.cur_counts[class as usize] += 1;
        let target = context.upstream.map_or(&b"-"[..], upstream::target);
        self.count_cell(class, target, detail, head.time, (loc, offset), e);
        if class == FailureClass::Other {
            return;
        }
        let tops = self.tops[class as usize].get_or_insert_with(|| ClassTops {
            requests: TopK::new(TOP_CAP),
            clients: TopK::new(TOP_CAP),
        });
        if let Some(r) = context.request {
            tops.requests.add(request_key(r));
        }
        if let Some(c) = context.client {
            tops.clients.add(c);
        }
        if let (Some(join), Some(client), Some(request)) =
            (self.join.as_mut(), context.client, context.request)
        {
            if class.is_failure() {
                let up = join.with_upstream.then_some(target);
                join.insert(JoinKey::new(head.time, client, request, up), class);
                if detail == Some(AFTER_HEADER.as_bytes()) {
                    join.note_after_header(head.time);
                }
            }
        }
    }

    #[inline]
    fn count_cell(
        &mut self,
        class: FailureClass,
        target: &[u8],
        detail: Option<&[u8]>,
        t: LogTime,
        (loc, offset): (LineLoc, Option<u64>),
        e: &[u8],
    ) {
        let map = &mut self.cells[class as usize];
        let mut k = match detail {
            None => key(target),
            Some(d) => key(target) ^ key(d).rotate_left(17),
        };
        let (target, detail) = if map.len() >= MAX_CELLS_PER_CLASS && !map.contains_key(&k) {
            self.overflow += 1;
            k = key(b"-");
            (&b"-"[..], None)
        } else {
            (target, detail)
        };
        let minute = t.0.div_euclid(60).clamp(0, u32::MAX as i64) as u32;
        if let Some(c) = map.get_mut(&k) {
            c.count += 1;
            if t < c.first {
                c.first = t;
            }
            if t > c.last {
                c.last = t;
            }
            if !self.cell_details {
                return;
            }
            // The latest entry while the cell is small, then a later example at most once per
            // LATEST_EVERY minutes: copying the text of every entry (or of every new minute, on
            // a sparse cell) cost the 1 GiB scan about a tenth of its CPU time.
            let new_minute = c.count_minute(minute);
            if c.count <= LATEST_ALWAYS
                || (new_minute && minute >= c.latest_minute.saturating_add(LATEST_EVERY))
            {
                c.latest_minute = minute;
                let text = &e[..e.len().min(MAX_ENTRY)];
                match c.latest.as_mut() {
                    Some((l, t)) => {
                        *l = loc;
                        t.set(text, offset);
                    }
                    None => c.latest = Some((loc, EntryText::new(text, offset))),
                }
            }
            return;
        }
        map.insert(
            k,
            Cell {
                upstream: target.into(),
                count: 1,
                first: t,
                last: t,
                example: (loc, EntryText::new(&e[..e.len().min(MAX_ENTRY)], offset)),
                latest: None,
                detail: detail.map(Into::into),
                minutes: Vec::new(),
                current: if self.cell_details {
                    (minute, 1)
                } else {
                    (0, 0)
                },
                latest_minute: minute,
            },
        );
    }

    fn flush_minute(&mut self) {
        if self.cur_minute != i64::MIN && self.cur_counts.iter().any(|&c| c > 0) {
            let slot = self
                .minutes
                .entry(self.cur_minute)
                .or_insert([0; FailureClass::COUNT]);
            for (s, c) in slot.iter_mut().zip(self.cur_counts) {
                *s += c;
            }
        }
        self.cur_counts = [0; FailureClass::COUNT];
    }

    /// Ends a run: call before reading the fields.
    pub fn finish(&mut self) {
        self.flush_minute();
        keep_newest_reloads(&mut self.reloads);
        self.cur_minute = i64::MIN;
        for c in self.cells.iter_mut().flat_map(|m| m.values_mut()) {
            c.normalize_minutes();
        }
        if let Some(c) = self.other.take() {
            let map = &mut self.cells[FailureClass::Other as usize];
            match map.get_mut(&key(b"-")) {
                Some(m) => m.merge(c, self.cell_details),
                None => {
                    map.insert(key(b"-"), c);
                }
            }
        }
    }

    /// Reads back the example texts of input `input` that were kept as offsets, with
    /// `read_exact_at` on that input's file; returns how many could not be (the file changed
    /// after it was read: they say so in place of their text).
    pub fn read_back_examples(
        &mut self,
        input: u32,
        mut read_exact_at: impl FnMut(u64, &mut [u8]) -> std::io::Result<()>,
    ) -> usize {
        let mut lost = 0;
        let cells = self.cells.iter_mut().flat_map(|m| m.values_mut());
        for c in cells.chain(self.other.as_mut()) {
            for (loc, text) in std::iter::once(&mut c.example).chain(c.latest.as_mut()) {
                if loc.input == input && !text.read_back(&mut read_exact_at) {
                    lost += 1;
                }
            }
        }
        lost
    }

    /// Entries of every failure class together per minute (minute start, entries), in time
    /// order, for the whole window (after [`ErrorSummary::finish`]).
    pub fn failures_per_minute(&self) -> Vec<(LogTime, u64)> {
        let mut v: Vec<(LogTime, u64)> = self
            .minutes
            .iter()
            .map(|(m, counts)| {
                let n = FailureClass::ALL
                    .into_iter()
                    .filter(|c| c.is_failure())
                    .map(|c| u64::from(counts[c as usize]))
                    .sum();
                (LogTime(m * 60), n)
            })
            .filter(|(_, n)| *n > 0)
            .collect();
        v.sort_unstable();
        v
    }

    pub fn merge(&mut self, mut o: ErrorSummary) {
        self.finish();
        o.finish();
        self.lines += o.lines;
        self.entries += o.entries;
        self.outside_window += o.outside_window;
        for (a, b) in self.levels.iter_mut().zip(o.levels) {
            *a += b;
        }
        self.first = min_opt(self.first, o.first);
        self.last = max_opt(self.last, o.last);
        self.last_reload = max_opt(self.last_reload, o.last_reload);
        self.reloads.extend(o.reloads);
        keep_newest_reloads(&mut self.reloads);
        self.overflow += o.overflow;
        for (mine, theirs) in self.cells.iter_mut().zip(o.cells) {
            for (mut k, mut c) in theirs {
                if mine.len() >= MAX_CELLS_PER_CLASS && !mine.contains_key(&k) {
                    // As in `count_cell`: past the cap, counted without the upstream.
                    self.overflow += c.count;
                    k = key(b"-");
                    c.upstream = b"-"[..].into();
                    c.detail = None;
                }
                match mine.get_mut(&k) {
                    Some(m) => m.merge(c, self.cell_details),
                    None => {
                        mine.insert(k, c);
                    }
                }
            }
        }
        for (mine, theirs) in self.tops.iter_mut().zip(o.tops) {
            match (mine.as_mut(), theirs) {
                (Some(m), Some(t)) => {
                    m.requests.merge(t.requests);
                    m.clients.merge(t.clients);
                }
                (None, Some(t)) => *mine = Some(t),
                _ => {}
            }
        }
        for (m, counts) in o.minutes {
            let slot = self.minutes.entry(m).or_insert([0; FailureClass::COUNT]);
            for (s, c) in slot.iter_mut().zip(counts) {
                *s += c;
            }
        }
        self.unparsed.merge(o.unparsed);
        match (self.join.as_mut(), o.join) {
            (Some(j), Some(oj)) => j.merge(oj),
            (None, Some(oj)) => self.join = Some(oj),
            _ => {}
        }
    }

    /// Entries per level, in nginx's order.
    pub fn level_counts(&self) -> impl Iterator<Item = (Level, u64)> + '_ {
        Level::ALL.into_iter().map(|l| (l, self.levels[l as usize]))
    }
}

pub(crate) fn min_opt(a: Option<LogTime>, b: Option<LogTime>) -> Option<LogTime> {
    match (a, b) {
        (Some(x), Some(y)) => Some(x.min(y)),
        (x, None) => x,
        (None, y) => y,
    }
}

pub(crate) fn max_opt(a: Option<LogTime>, b: Option<LogTime>) -> Option<LogTime> {
    match (a, b) {
        (Some(x), Some(y)) => Some(x.max(y)),
        (x, None) => x,
        (None, y) => y,
    }
}

/// Whether a multi-line entry still waits for its context: nginx ends an entry that has a
/// connection (`*CID`) with `, client: ...`; until that comes, lines that do not start an entry
/// belong to it (FastCGI stderr and Lua tracebacks carry raw newlines).
#[derive(Clone, Copy, PartialEq, Eq)]
enum Open {
    Unknown,
    No,
    /// Open; FastCGI stderr closes with `" while ` (its own text may hold `, client: `).
    Yes {
        fastcgi: bool,
    },
}

fn open_state(entry: &[u8]) -> Open {
    let Some(head) = parse_head(entry) else {
        return Open::No;
    };
    if head.cid.is_none() || entry.len() >= MAX_ENTRY {
        return Open::No;
    }
    let msg = &entry[head.message_start..];
    let fastcgi = msg.starts_with(b"FastCGI sent in stderr: \"");
    if closes(msg, fastcgi) {
        Open::No
    } else {
        Open::Yes { fastcgi }
    }
}

fn closes(text: &[u8], fastcgi: bool) -> bool {
    // Step from the rare first byte rather than build a substring searcher for every
    // continuation line (callgrind: 470 instructions a call).
    let (first, needle): (u8, &[u8]) = if fastcgi {
        (b'"', b"\" while ")
    } else {
        (b',', b", client: ")
    };
    let mut from = 0;
    while let Some(p) = memchr::memchr(first, &text[from..]) {
        if text[from + p..].starts_with(needle) {
            return true;
        }
        from += p + 1;
    }
    false
}

impl ChunkSink for ErrorSummary {
    fn chunk(&mut self, chunk: &[u8], first: LineLoc, offset: Option<u64>) -> u64 {
        let at = |start: usize| offset.map(|o| o + start as u64);
        let mut line_no = first.line;
        // (start, end, line number) of the entry being assembled.
        let mut pending: Option<(usize, usize, u64)> = None;
        let mut open = Open::Unknown;
        let mut pos = 0;
        while pos < chunk.len() {
            let end = memchr::memchr(b'\n', &chunk[pos..]).map_or(chunk.len(), |p| pos + p);
            let line = &chunk[pos..end];
            if starts_entry(line) {
                if let Some((s, e, n)) = pending.take() {
                    self.entry(&chunk[s..e], LineLoc { line: n, ..first }, at(s));
                }
                pending = Some((pos, end, line_no));
                open = Open::Unknown;
            } else {
                let joined = match pending.as_mut() {
                    Some((s, e, _)) if end - *s <= MAX_ENTRY + 2 => {
                        if open == Open::Unknown {
                            open = open_state(&chunk[*s..*e]);
                        }
                        match open {
                            Open::Yes { fastcgi } => {
                                *e = end;
                                if closes(line, fastcgi) {
                                    open = Open::No;
                                }
                                true
                            }
                            _ => false,
                        }
                    }
                    _ => false,
                };
                if !joined {
                    let reason = if line.is_empty() || line == b"\r" {
                        "empty line"
                    } else {
                        "not an nginx error-log entry"
                    };
                    self.unparsed.add(
                        LineLoc {
                            line: line_no,
                            ..first
                        },
                        reason,
                        line,
                    );
                }
            }
            line_no += 1;
            pos = end + 1;
        }
        if let Some((s, e, n)) = pending {
            self.entry(&chunk[s..e], LineLoc { line: n, ..first }, at(s));
        }
        let lines = line_no - first.line;
        self.lines += lines;
        lines
    }

    fn overlong(&mut self, at: LineLoc, len: u64) {
        self.lines += 1;
        self.unparsed.add(
            at,
            format!("line of {len} bytes is longer than nginx writes: skipped"),
            b"",
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(text: &str) -> ErrorSummary {
        let mut s = ErrorSummary::new(Window::default(), Some(true));
        s.chunk(
            text.as_bytes(),
            LineLoc {
                input: 0,
                segment: 0,
                line: 1,
            },
            None,
        );
        s.finish();
        s
    }

    /// 10k distinct upstreams: every entry counted, the cells (and so memory and the findings)
    /// bounded, and the overflow said.
    #[test]
    fn distinct_upstreams_are_bounded() {
        let n = MAX_CELLS_PER_CLASS + 10;
        let text: String = (0..n)
            .map(|i| format!("2026/11/20 14:32:10 [error] 7#7: *{i} connect() failed (111: Connection refused) while connecting to upstream, client: 192.0.2.1, server: a, request: \"GET / HTTP/1.1\", upstream: \"http://10.{}.{}.1:80/\", host: \"a\"\n", i / 250, i % 250))
            .collect();
        let s = run(&text);
        let cells = &s.cells[FailureClass::ConnectRefused as usize];
        assert_eq!(cells.len(), MAX_CELLS_PER_CLASS + 1);
        assert_eq!(s.overflow, 10);
        assert_eq!(cells.values().map(|c| c.count).sum::<u64>(), n as u64);
    }

    #[test]
    fn multiline_entry_is_one_record() {
        let s = run("2023/10/26 00:01:12 [error] 14#14: *5 FastCGI sent in stderr: \"PHP message: boom\nStack trace:\n#0 {main}\" while reading response header from upstream, client: 1.2.3.4, server: s, request: \"GET / HTTP/1.1\", upstream: \"fastcgi://unix:/run/php/php8.2-fpm.sock:\", host: \"h\"\n\
            garbage after a closed entry\n\
            2023/10/26 00:01:13 [error] 14#14: *6 connect() failed (111: Connection refused) while connecting to upstream, client: 1.2.3.4, server: s, request: \"GET /x?a=1 HTTP/1.1\", upstream: \"http://127.0.0.1:3000/x\", host: \"h\"\n");
        assert_eq!(s.lines, 5);
        assert_eq!(s.entries, 2);
        assert_eq!(s.unparsed.count, 1);
        assert_eq!(s.unparsed.samples[0].0.line, 4);
        let c = &s.cells[FailureClass::FastcgiStderr as usize];
        assert_eq!(c[&key(b"unix:/run/php/php8.2-fpm.sock")].count, 1);
        let c = &s.cells[FailureClass::ConnectRefused as usize][&key(b"127.0.0.1:3000")];
        assert_eq!((c.count, c.example.0.line), (1, 5));
        let tops = s.tops[FailureClass::ConnectRefused as usize]
            .as_ref()
            .unwrap();
        assert_eq!(tops.requests.top(1), vec![(&b"GET /x"[..], 1)]);
        assert_eq!(s.join.as_ref().unwrap().len(), 1);
    }

    /// Every reload is kept for the timeline (the newest MAX_RELOADS), across merged readers.
    #[test]
    fn reloads_are_kept_in_order() {
        let reload = |t: &str| {
            format!("{t} [notice] 1#1: signal 1 (SIGHUP) received from 9, reconfiguring\n{t} [notice] 1#1: reconfiguring\n")
        };
        let mut a = run(&reload("2026/11/20 14:40:00"));
        let b = run(&(reload("2026/11/20 14:30:00") + &reload("2026/11/20 14:35:00")));
        a.merge(b);
        let at = |t: &[u8]| LogTime::parse_iso(t).unwrap();
        assert_eq!(
            a.reloads,
            [
                at(b"2026-11-20T14:30:00"),
                at(b"2026-11-20T14:35:00"),
                at(b"2026-11-20T14:40:00")
            ]
        );
        assert_eq!(a.last_reload, Some(at(b"2026-11-20T14:40:00")));
        let many: String = (0..MAX_RELOADS + 5)
            .map(|i| reload(&format!("2026/11/20 {:02}:{:02}:00", i / 60 % 24, i % 60)))
            .collect();
        assert_eq!(run(&many).reloads.len(), MAX_RELOADS);
    }

    /// With offsets, examples are read back from the file at the end; a file rewritten in
    /// between loses the text, and the example says so instead of showing another entry.
    #[test]
    fn examples_kept_as_offsets_are_read_back() {
        let refused = |t: &str, up: &str| {
            format!("2026/11/20 14:{t} [error] 7#7: *1 connect() failed (111: Connection refused) while connecting to upstream, client: 192.0.2.1, server: a, request: \"GET / HTTP/1.1\", upstream: \"http://{up}/\", host: \"a\"\n")
        };
        let file = format!(
            "2026/11/20 14:32:09 [notice] 1#1: start worker processes\n{}{}{}",
            refused("32:10", "10.0.0.1:80"),
            refused("33:10", "10.0.0.1:80"),
            refused("33:11", "10.0.0.2:80"),
        );
        let scan = || {
            let mut s = ErrorSummary::new(Window::default(), None);
            // The reader's offset of the chunk: here it starts at byte 0 of the file.
            s.chunk(file.as_bytes(), LineLoc::default(), Some(0));
            s.finish();
            s
        };
        let read_from = |data: Vec<u8>| {
            move |at: u64, buf: &mut [u8]| -> std::io::Result<()> {
                let at = at as usize;
                buf.copy_from_slice(
                    data.get(at..at + buf.len())
                        .ok_or_else(|| std::io::Error::from(std::io::ErrorKind::UnexpectedEof))?,
                );
                Ok(())
            }
        };
        let mut s = scan();
        assert_eq!(
            s.read_back_examples(0, read_from(file.clone().into_bytes())),
            0
        );
        let cells = &s.cells[FailureClass::ConnectRefused as usize];
        let one = &cells[&key(b"10.0.0.1:80")];
        assert_eq!(
            one.example.1.bytes(),
            refused("32:10", "10.0.0.1:80").trim_end().as_bytes()
        );
        let latest = one.latest.as_ref().unwrap();
        assert_eq!(
            latest.1.bytes(),
            refused("33:10", "10.0.0.1:80").trim_end().as_bytes()
        );
        let other = &s.cells[FailureClass::Other as usize][&key(b"-")];
        assert!(other.example.1.bytes().ends_with(b"start worker processes"));

        // copytruncate: the file now holds other entries at the same offsets.
        let mut s = scan();
        let rewritten = file.replace("10.0.0.2", "10.0.0.9");
        assert_eq!(
            s.read_back_examples(0, read_from(rewritten.into_bytes())),
            1
        );
        let two = &s.cells[FailureClass::ConnectRefused as usize][&key(b"10.0.0.2:80")];
        assert_eq!(two.example.1, EntryText::Lost);
        assert_eq!(
            two.example.1.bytes(),
            super::super::entry_text::LOST.as_bytes()
        );
        // Another input's examples are left for that input's read-back.
        let mut s = scan();
        assert_eq!(s.read_back_examples(1, |_, _| panic!("not this input")), 0);
    }

    #[test]
    fn cell_details_are_kept_only_when_wanted() {
        let text = "2026/11/20 14:32:10 [error] 7#7: *1 no live upstreams while connecting to upstream, client: 1.2.3.4, server: s, upstream: \"http://grp/\"\n\
            2026/11/20 14:33:10 [error] 7#7: *2 no live upstreams while connecting to upstream, client: 1.2.3.4, server: s, upstream: \"http://grp/\"\n";
        for details in [true, false] {
            // `text` read as segment `segment` by a reader of its own.
            let read = |text: &str, segment: u32| {
                let mut s = ErrorSummary::new(Window::default(), None);
                if !details {
                    s = s.without_cell_details();
                }
                let at = LineLoc {
                    segment,
                    line: 1,
                    ..LineLoc::default()
                };
                s.chunk(text.as_bytes(), at, None);
                s.finish();
                s
            };
            // One reader, and two readers of a segment each, merged.
            let one = read(text, 0);
            let (first, second) = text.split_at(text.find('\n').unwrap() + 1);
            let mut two = read(first, 0);
            two.merge(read(second, 1));
            for s in [one, two] {
                let c = &s.cells[FailureClass::NoLiveUpstreams as usize][&key(b"grp")];
                assert_eq!(c.count, 2);
                assert_eq!(c.latest.is_some(), details);
                assert_eq!(c.minutes.len(), if details { 2 } else { 0 });
            }
        }
    }

    #[test]
    fn window_filters_entries() {
        let mut s = ErrorSummary::new(
            Window {
                since: LogTime::parse_iso(b"2023-10-26 00:01:13"),
                until: None,
            },
            None,
        );
        s.chunk(
            b"2023/10/26 00:01:12 [error] 1#1: *1 no live upstreams while connecting to upstream, client: 1.2.3.4, server: s, upstream: \"http://grp/\"\n2023/10/26 00:01:13 [error] 1#1: *1 no live upstreams while connecting to upstream, client: 1.2.3.4, server: s, upstream: \"http://grp/\"",
            LineLoc::default(),
            None,
        );
        s.finish();
        assert_eq!((s.entries, s.outside_window), (2, 1));
        assert_eq!(
            s.cells[FailureClass::NoLiveUpstreams as usize][&key(b"grp")].count,
            1
        );
    }
}
