//! nginx error-log entries: a zero-copy parser and the failure classifier.
//!
//! The grammar is nginx's own (`src/core/ngx_log.c` writes the head, the module's message and the
//! errno; `src/http/ngx_http_request.c:ngx_http_log_error_handler` appends the context):
//!
//! ```text
//! YYYY/MM/DD HH:MM:SS [level] PID#TID: *CID MESSAGE[ (ERRNO: STRERROR)][ while ACTION][, client: ADDR, server: NAME[, request: "LINE"][, subrequest: "URI"][, upstream: "URL"][, host: "HOST"][, referrer: "REF"]]
//! ```
//!
//! An *entry* is usually one line, but nginx writes FastCGI stderr and Lua tracebacks raw, so an
//! entry may carry embedded newlines; the context then follows the last of them. nginx cuts an
//! entry at `NGX_MAX_ERROR_STR` (2048 bytes with the newline), which may cut the context anywhere.
//!
//! ```
//! use medic_parse::error_log::{parse, classify, FailureClass};
//! let line = b"2026/11/20 14:32:10 [error] 8131#8131: *1 connect() failed (111: Connection refused) \
//!     while connecting to upstream, client: 127.0.0.1, server: , request: \"GET / HTTP/1.1\", \
//!     upstream: \"http://127.0.0.1:3000/\", host: \"example.com\"";
//! let e = parse(line).unwrap();
//! assert_eq!(e.errno.unwrap().code, 111);
//! assert_eq!(e.action, Some(&b"connecting to upstream"[..]));
//! assert_eq!(classify(&e), FailureClass::ConnectRefused);
//! ```

use std::sync::LazyLock;

use memchr::memmem::Finder;

use crate::time::{digits_u64, LogTime};

/// nginx's `NGX_MAX_ERROR_STR` minus the newline: an entry this long was probably cut.
pub const MAX_ENTRY: usize = 2047;

/// Severity, as in `ngx_log.c:err_levels`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Level {
    Emerg,
    Alert,
    Crit,
    Error,
    Warn,
    Notice,
    Info,
    Debug,
}

impl Level {
    pub const ALL: [Level; 8] = [
        Level::Emerg,
        Level::Alert,
        Level::Crit,
        Level::Error,
        Level::Warn,
        Level::Notice,
        Level::Info,
        Level::Debug,
    ];

    pub fn parse(b: &[u8]) -> Option<Level> {
        Some(match b {
            b"emerg" => Level::Emerg,
            b"alert" => Level::Alert,
            b"crit" => Level::Crit,
            b"error" => Level::Error,
            b"warn" => Level::Warn,
            b"notice" => Level::Notice,
            b"info" => Level::Info,
            b"debug" => Level::Debug,
            _ => return None,
        })
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Level::Emerg => "emerg",
            Level::Alert => "alert",
            Level::Crit => "crit",
            Level::Error => "error",
            Level::Warn => "warn",
            Level::Notice => "notice",
            Level::Info => "info",
            Level::Debug => "debug",
        }
    }
}

/// The fixed part before the message.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Head {
    pub time: LogTime,
    pub level: Level,
    pub pid: u32,
    pub tid: u64,
    /// `*CID`: only when the message concerns a connection.
    pub cid: Option<u64>,
    /// Offset of the message in the entry.
    pub message_start: usize,
}

/// `(ERRNO: STRERROR)` as `ngx_log_errno` writes it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Errno<'a> {
    pub code: u32,
    pub text: &'a [u8],
}

/// The `, key: value` tail that `ngx_http_log_error_handler` (and the stream and mail modules)
/// append. Values are raw bytes; quoted values are given without their quotes.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Context<'a> {
    pub client: Option<&'a [u8]>,
    pub server: Option<&'a [u8]>,
    pub request: Option<&'a [u8]>,
    pub subrequest: Option<&'a [u8]>,
    pub upstream: Option<&'a [u8]>,
    pub host: Option<&'a [u8]>,
    pub referrer: Option<&'a [u8]>,
}

/// One parsed entry. Every slice borrows from the input.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ErrorEntry<'a> {
    pub time: LogTime,
    pub level: Level,
    pub pid: u32,
    pub tid: u64,
    pub cid: Option<u64>,
    /// Everything between the head and the context: text, errno and action.
    pub message: &'a [u8],
    /// The message without the errno and the `while` action.
    pub text: &'a [u8],
    pub errno: Option<Errno<'a>>,
    /// What nginx was doing (`connecting to upstream`, `reading response header from upstream`).
    pub action: Option<&'a [u8]>,
    /// `, resolver: ADDR` that `ngx_resolver.c` appends to its own errors.
    pub resolver: Option<&'a [u8]>,
    pub context: Context<'a>,
    /// The entry reached nginx's 2048-byte cap or its context is cut short.
    pub truncated: bool,
}

// Searchers are built once: building one per entry cost more than the search.
static UPSTREAM: LazyLock<Finder<'static>> = LazyLock::new(|| Finder::new(b"upstream"));
static COULD_NOT_RESOLVE: LazyLock<Finder<'static>> =
    LazyLock::new(|| Finder::new(b" could not be resolved ("));

/// Parses the head (`time [level] pid#tid: *cid `). `None` when the entry is not nginx's.
#[inline]
pub fn parse_head(entry: &[u8]) -> Option<Head> {
    let time = LogTime::parse_error_log(entry)?;
    parse_head_after_time(entry, time)
}

#[inline]
fn parse_head_after_time(b: &[u8], time: LogTime) -> Option<Head> {
    if b.len() < 24 || b[19] != b' ' || b[20] != b'[' {
        return None;
    }
    let (level, close) = level_at(b)?;
    let mut i = close + 1;
    if b.get(i) != Some(&b' ') {
        return None;
    }
    i += 1;
    let (pid, n) = number(&b[i..])?;
    i += n;
    if b.get(i) != Some(&b'#') {
        return None;
    }
    i += 1;
    let (tid, n) = number(&b[i..])?;
    i += n;
    if b.get(i) != Some(&b':') {
        return None;
    }
    i += 1;
    // nginx always writes ": " here; an entry cut right after the colon has no message.
    if b.get(i) == Some(&b' ') {
        i += 1;
    }
    let mut cid = None;
    if b.get(i) == Some(&b'*') {
        if let Some((c, n)) = number(&b[i + 1..]) {
            if b.get(i + 1 + n) == Some(&b' ') {
                cid = Some(c);
                i += n + 2;
            }
        }
    }
    Some(Head {
        time,
        level,
        pid: u32::try_from(pid).ok()?,
        tid,
        cid,
        message_start: i,
    })
}

/// The level in brackets at byte 20 and where its `]` is: told by its first letter, then
/// compared whole (a search for the `]` and a comparison with each name cost 40 instructions
/// an entry).
#[inline]
fn level_at(b: &[u8]) -> Option<(Level, usize)> {
    let (level, name): (Level, &[u8]) = match *b.get(21)? {
        b'e' if b.get(22) == Some(&b'r') => (Level::Error, b"error]"),
        b'e' => (Level::Emerg, b"emerg]"),
        b'w' => (Level::Warn, b"warn]"),
        b'c' => (Level::Crit, b"crit]"),
        b'n' => (Level::Notice, b"notice]"),
        b'i' => (Level::Info, b"info]"),
        b'a' => (Level::Alert, b"alert]"),
        b'd' => (Level::Debug, b"debug]"),
        _ => return None,
    };
    let end = 21 + name.len();
    (b.get(21..end)? == name).then_some((level, end - 1))
}

/// [`parse_head`] with a cache of the last timestamp: consecutive entries mostly share their
/// second, and the calendar arithmetic is the costliest part of the head.
#[derive(Debug, Default)]
pub struct HeadParser {
    last_stamp: [u8; 19],
    last_time: Option<LogTime>,
}

impl HeadParser {
    #[inline]
    pub fn parse(&mut self, entry: &[u8]) -> Option<Head> {
        if entry.len() >= 24 && entry[..19] == self.last_stamp {
            if let Some(t) = self.last_time {
                return parse_head_after_time(entry, t);
            }
        }
        let time = LogTime::parse_error_log(entry)?;
        self.last_stamp.copy_from_slice(&entry[..19]);
        self.last_time = Some(time);
        parse_head_after_time(entry, time)
    }
}

/// The decimal number `b` starts with (up to 19 digits) and its length. Pids, tids and
/// connection numbers are mostly under eight digits: those are read eight bytes at once (a
/// loop over the digits was a twentieth of the error-log scan).
#[inline]
fn number(b: &[u8]) -> Option<(u64, usize)> {
    if let Some(word) = b.first_chunk::<8>() {
        // Each byte less '0': a digit is 0..=9, anything else sets its byte's high bit here
        // or once 0x76 is added. A borrow or carry only moves upward, past the first
        // non-digit, so the digits before it read right.
        let y = u64::from_le_bytes(*word).wrapping_sub(0x3030_3030_3030_3030);
        let other = (y | y.wrapping_add(0x7676_7676_7676_7676)) & 0x8080_8080_8080_8080;
        let n = (other.trailing_zeros() / 8) as usize;
        if n == 0 {
            return None;
        }
        if n < 8 {
            // The digits moved to the top bytes, zeros (leading zeros) below, then combined
            // pairwise: tens, hundreds, then the two halves.
            let d = y << (8 * (8 - n));
            let d = d.wrapping_mul(10).wrapping_add(d >> 8);
            let lo = (d & 0x0000_00ff_0000_00ff).wrapping_mul(100 + (1_000_000 << 32));
            let hi = ((d >> 16) & 0x0000_00ff_0000_00ff).wrapping_mul(1 + (10_000 << 32));
            return Some((lo.wrapping_add(hi) >> 32, n));
        }
    }
    number_slow(b)
}

fn number_slow(b: &[u8]) -> Option<(u64, usize)> {
    let mut v = 0u64;
    let mut n = 0;
    for &c in b.iter().take(19) {
        let d = c.wrapping_sub(b'0');
        if d > 9 {
            break;
        }
        v = v * 10 + u64::from(d);
        n += 1;
    }
    (n > 0).then_some((v, n))
}

/// Parses a whole entry (one line, or several for FastCGI stderr and Lua tracebacks), without its
/// final newline. A trailing `\r` is ignored. `None` when the head is not nginx's.
pub fn parse(entry: &[u8]) -> Option<ErrorEntry<'_>> {
    let entry = entry.strip_suffix(b"\r").unwrap_or(entry);
    let head = parse_head(entry)?;
    Some(parse_rest(entry, &head))
}

/// The rest of [`parse`] once the head is known.
pub fn parse_rest<'a>(entry: &'a [u8], head: &Head) -> ErrorEntry<'a> {
    parse_rest_with(entry, head, false)
}

/// [`parse_rest`] that stops reading the context after `upstream` (`host` and `referrer`, which
/// come after it, stay `None`): what a summary of failures per upstream needs, for less work.
pub fn parse_rest_lean<'a>(entry: &'a [u8], head: &Head) -> ErrorEntry<'a> {
    parse_rest_with(entry, head, true)
}

#[inline]
fn parse_rest_with<'a>(entry: &'a [u8], head: &Head, lean: bool) -> ErrorEntry<'a> {
    parse_message(head, split_with(entry, head, lean))
}

/// An entry cut into its message and its context, the message not yet taken apart (see
/// [`split_lean`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Split<'a> {
    /// Everything between the head and the context: text, errno and action.
    pub message: &'a [u8],
    pub context: Context<'a>,
    /// The entry reached nginx's 2048-byte cap or its context is cut short.
    pub truncated: bool,
}

/// The first half of [`parse_rest_lean`]: the message found and the context read. A scan that
/// has seen the same message before (most entries repeat a few dozen messages) can take its
/// class from there and skip [`parse_message`].
#[inline]
pub fn split_lean<'a>(entry: &'a [u8], head: &Head) -> Split<'a> {
    split_with(entry, head, true)
}

#[inline]
fn split_with<'a>(entry: &'a [u8], head: &Head, lean: bool) -> Split<'a> {
    let entry = entry.strip_suffix(b"\r").unwrap_or(entry);
    let rest = &entry[head.message_start.min(entry.len())..];
    let mut truncated = entry.len() >= MAX_ENTRY;

    // Foreign text (PHP's stderr) may itself contain ", client: ": nginx closes it with
    // `" while `, so look for the context only after that.
    let search_from = if rest.starts_with(b"FastCGI sent in stderr: \"") {
        rfind_quote_while(rest).unwrap_or(0)
    } else {
        0
    };
    let (message, context) = match find_client(&rest[search_from..]) {
        Some(p) => {
            let at = search_from + p;
            let (ctx, cut) = parse_context(&rest[at + 2..], lean, entry.len() >= MAX_ENTRY);
            truncated |= cut;
            (&rest[..at], ctx)
        }
        None => (rest, Context::default()),
    };
    Split {
        message,
        context,
        truncated,
    }
}

/// The second half of [`parse_rest_lean`]: the message taken apart into its text, errno,
/// action and resolver.
pub fn parse_message<'a>(head: &Head, split: Split<'a>) -> ErrorEntry<'a> {
    let Split {
        message,
        context,
        truncated,
    } = split;
    // `ngx_resolver_log_error` appends `, resolver: ADDR` last; most messages hold no comma.
    let (body, resolver) = match memchr::memrchr(b',', message) {
        Some(p) if message[p..].starts_with(b", resolver: ") => {
            (&message[..p], Some(&message[p + 12..]))
        }
        _ => (message, None),
    };
    // nginx appends ` while ACTION` last; SSL error strings ("unexpected eof while reading") and
    // FastCGI stderr may hold another before it: take the last one.
    let action_at = rfind_while(body);
    let (before_action, action) = match action_at {
        Some(p) => (&body[..p], Some(&body[p + 7..])),
        None => (body, None),
    };
    let (text, errno) = split_errno(before_action);
    ErrorEntry {
        time: head.time,
        level: head.level,
        pid: head.pid,
        tid: head.tid,
        cid: head.cid,
        message,
        text,
        errno,
        action,
        resolver,
        context,
        truncated,
    }
}

/// The first `, client: ` in `s`. Messages hold few commas, so stepping from comma to comma
/// beats a substring searcher on these short strings (callgrind: its set-up was a tenth of the
/// error-log scan).
#[inline]
fn find_client(s: &[u8]) -> Option<usize> {
    let mut from = 0;
    while let Some(p) = memchr::memchr(b',', &s[from..]) {
        let at = from + p;
        if s[at..].starts_with(b", client: ") {
            return Some(at);
        }
        from = at + 1;
    }
    None
}

/// The last ` while ` in `s`, found from the end by its `w`.
#[inline]
fn rfind_while(s: &[u8]) -> Option<usize> {
    let mut end = s.len();
    while let Some(w) = memchr::memrchr(b'w', &s[..end]) {
        if w > 0 && s[w - 1] == b' ' && s[w..].starts_with(b"while ") {
            return Some(w - 1);
        }
        end = w;
    }
    None
}

/// The last `" while ` in `s`, found from the end by its quote: the context after it holds a
/// few quotes, so this steps less than a reverse substring search compares.
#[inline]
fn rfind_quote_while(s: &[u8]) -> Option<usize> {
    let mut end = s.len();
    while let Some(q) = memchr::memrchr(b'"', &s[..end]) {
        if s[q..].starts_with(b"\" while ") {
            return Some(q);
        }
        end = q;
    }
    None
}

/// Splits `TEXT (N: STRERROR)` at the last well-formed errno group.
fn split_errno(s: &[u8]) -> (&[u8], Option<Errno<'_>>) {
    if s.last() != Some(&b')') {
        return (s, None);
    }
    let mut end = s.len();
    while let Some(open) = memchr::memrchr(b'(', &s[..end]) {
        let inner = &s[open + 1..s.len() - 1];
        let n = inner
            .iter()
            .take(6)
            .take_while(|c| c.is_ascii_digit())
            .count();
        if n > 0 && inner.get(n) == Some(&b':') {
            if let Some(code) = digits_u64(&inner[..n]) {
                let text_start = if inner.get(n + 1) == Some(&b' ') {
                    n + 2
                } else {
                    n + 1
                };
                let before = if open > 0 && s[open - 1] == b' ' {
                    open - 1
                } else {
                    open
                };
                return (
                    &s[..before],
                    Some(Errno {
                        code: code as u32,
                        text: &inner[text_start..],
                    }),
                );
            }
        }
        if open == 0 {
            break;
        }
        end = open;
    }
    (s, None)
}

/// The keys `ngx_http_log_error_handler` writes, in its order, each with its `: `.
const KEYS: [&[u8]; 7] = [
    b"client: ",
    b"server: ",
    b"request: ",
    b"subrequest: ",
    b"upstream: ",
    b"host: ",
    b"referrer: ",
];

/// The index in [`KEYS`] of the key `s` starts with, and the key's length with its `: `: a
/// cheaper way to the usual keys than finding the colon, which finds the same key.
#[inline]
fn known_key(s: &[u8]) -> Option<(usize, usize)> {
    // Compared as 64-bit words: `starts_with` called `memcmp` for every key tried, and a
    // `match` on byte arrays compared byte by byte (60 instructions a key, callgrind).
    const fn word(k: &[u8; 8]) -> u64 {
        u64::from_le_bytes(*k)
    }
    const CLIENT: u64 = word(b"client: ");
    const SERVER: u64 = word(b"server: ");
    const REQUEST: u64 = word(b"request:");
    const SUBREQUE: u64 = word(b"subreque");
    const UPSTREAM: u64 = word(b"upstream");
    const HOST: u64 = word(b"host: \0\0");
    const REFERRER: u64 = word(b"referrer");
    let w = u64::from_le_bytes(*s.first_chunk::<8>()?);
    let then = |tail: &[u8]| s.get(8..8 + tail.len()) == Some(tail);
    if w == CLIENT {
        Some((0, 8))
    } else if w == SERVER {
        Some((1, 8))
    } else if w == REQUEST && s.get(8) == Some(&b' ') {
        Some((2, 9))
    } else if w == UPSTREAM && then(b": ") {
        Some((4, 10))
    } else if w & 0xffff_ffff_ffff == HOST {
        Some((5, 6))
    } else if w == REFERRER && then(b": ") {
        Some((6, 10))
    } else if w == SUBREQUE && then(b"st: ") {
        Some((3, 12))
    } else {
        None
    }
}

/// Parses `client: A, server: B, request: "C", ...` (the leading `, ` already skipped).
/// Returns whether the tail looked cut short.
fn parse_context(s: &[u8], stop_after_upstream: bool, at_cap: bool) -> (Context<'_>, bool) {
    let mut ctx = Context::default();
    let mut i = 0;
    let mut cut = false;
    while i < s.len() {
        // The field's index in KEYS (None: a key nginx's http module does not write) and where
        // its value starts.
        let (field, mut v) = match known_key(&s[i..]) {
            Some((k, len)) => (Some(k), i + len),
            None => {
                let Some(colon) = memchr::memchr(b':', &s[i..s.len().min(i + 48)]) else {
                    cut = true;
                    break;
                };
                let key = &s[i..i + colon];
                if key.iter().any(|&c| c == b'"' || c == b',') {
                    cut = true;
                    break;
                }
                let field = match key {
                    b"referer" => Some(6),
                    _ => KEYS.iter().position(|k| &k[..k.len() - 2] == key),
                };
                let mut v = i + colon + 1;
                if s.get(v) == Some(&b' ') {
                    v += 1;
                }
                (field, v)
            }
        };
        let (value, next, closed) = if s.get(v) == Some(&b'"') {
            v += 1;
            quoted_value(s, v)
        } else {
            match comma_space(&s[v..]) {
                Some(p) => (&s[v..v + p], v + p + 2, true),
                // The last value is whole unless the entry reached nginx's cap.
                None => (&s[v..], s.len(), !at_cap),
            }
        };
        if !closed {
            // nginx's 2048-byte cap cut this value: a partial name would invent an upstream.
            cut = true;
            break;
        }
        i = next;
        let slot = match field {
            Some(0) => &mut ctx.client,
            Some(1) => &mut ctx.server,
            Some(2) => &mut ctx.request,
            Some(3) => &mut ctx.subrequest,
            Some(4) => &mut ctx.upstream,
            Some(5) => &mut ctx.host,
            Some(6) => &mut ctx.referrer,
            _ => continue,
        };
        if slot.is_none() {
            *slot = Some(value);
        }
        if stop_after_upstream && field == Some(4) {
            break;
        }
    }
    (ctx, cut)
}

#[inline]
fn comma_space(s: &[u8]) -> Option<usize> {
    let mut from = 0;
    while let Some(p) = memchr::memchr(b',', &s[from..]) {
        let at = from + p;
        if s.get(at + 1) == Some(&b' ') {
            return Some(at);
        }
        from = at + 1;
    }
    None
}

/// A quoted value ends at a `"` followed by `, key:` or by the end of the entry; nginx does not
/// escape quotes inside it, so a lone `"` in a URI does not end it.
fn quoted_value(s: &[u8], start: usize) -> (&[u8], usize, bool) {
    let mut p = start;
    while let Some(q) = memchr::memchr(b'"', &s[p..]) {
        let q = p + q;
        let after = &s[q + 1..];
        if after.is_empty() {
            return (&s[start..q], s.len(), true);
        }
        // Also `", ho` at the end: the cap cut the next key, this value is whole.
        if after.starts_with(b", ")
            && (known_key(&after[2..]).is_some()
                || looks_like_key(&after[2..])
                || is_cut_key(&after[2..]))
        {
            return (&s[start..q], q + 3, true);
        }
        p = q + 1;
    }
    (&s[start..], s.len(), false)
}

fn is_cut_key(s: &[u8]) -> bool {
    s.len() < 12 && s.iter().all(|c| c.is_ascii_lowercase() || *c == b' ')
}

fn looks_like_key(s: &[u8]) -> bool {
    let n = s
        .iter()
        .take(32)
        .take_while(|c| c.is_ascii_lowercase() || **c == b' ' || **c == b'/' || **c == b'_')
        .count();
    n > 0 && s.get(n) == Some(&b':')
}

/// A failure class of the catalog (`causes.md` §1): what one error-log entry says went wrong.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[repr(u8)]
pub enum FailureClass {
    ConnectRefused,
    SocketMissing,
    ConnectPermission,
    SocketBacklog,
    ConnectTimeout,
    SendTimeout,
    ReadTimeout,
    UpstreamReset,
    PrematureClose,
    HeaderTooBig,
    InvalidResponse,
    NoLiveUpstreams,
    TlsHandshake,
    TlsVerify,
    DnsFailure,
    RateLimited,
    ConnLimited,
    FastcgiStderr,
    WorkerLimits,
    ConnectUnreachable,
    PortsExhausted,
    ConnectFailed,
    TempFileError,
    Other,
}

impl FailureClass {
    pub const COUNT: usize = 24;
    pub const ALL: [FailureClass; Self::COUNT] = [
        FailureClass::ConnectRefused,
        FailureClass::SocketMissing,
        FailureClass::ConnectPermission,
        FailureClass::SocketBacklog,
        FailureClass::ConnectTimeout,
        FailureClass::SendTimeout,
        FailureClass::ReadTimeout,
        FailureClass::UpstreamReset,
        FailureClass::PrematureClose,
        FailureClass::HeaderTooBig,
        FailureClass::InvalidResponse,
        FailureClass::NoLiveUpstreams,
        FailureClass::TlsHandshake,
        FailureClass::TlsVerify,
        FailureClass::DnsFailure,
        FailureClass::RateLimited,
        FailureClass::ConnLimited,
        FailureClass::FastcgiStderr,
        FailureClass::WorkerLimits,
        FailureClass::ConnectUnreachable,
        FailureClass::PortsExhausted,
        FailureClass::ConnectFailed,
        FailureClass::TempFileError,
        FailureClass::Other,
    ];

    /// The stable ID of the catalog.
    pub fn id(self) -> &'static str {
        match self {
            FailureClass::ConnectRefused => "connect-refused",
            FailureClass::SocketMissing => "socket-missing",
            FailureClass::ConnectPermission => "connect-permission",
            FailureClass::SocketBacklog => "socket-backlog",
            FailureClass::ConnectTimeout => "connect-timeout",
            FailureClass::SendTimeout => "send-timeout",
            FailureClass::ReadTimeout => "read-timeout",
            FailureClass::UpstreamReset => "upstream-reset",
            FailureClass::PrematureClose => "premature-close",
            FailureClass::HeaderTooBig => "header-too-big",
            FailureClass::InvalidResponse => "invalid-response",
            FailureClass::NoLiveUpstreams => "no-live-upstreams",
            FailureClass::TlsHandshake => "tls-handshake",
            FailureClass::TlsVerify => "tls-verify",
            FailureClass::DnsFailure => "dns-failure",
            FailureClass::RateLimited => "rate-limited",
            FailureClass::ConnLimited => "conn-limited",
            FailureClass::FastcgiStderr => "fastcgi-stderr",
            FailureClass::WorkerLimits => "worker-limits",
            FailureClass::ConnectUnreachable => "connect-unreachable",
            FailureClass::PortsExhausted => "ports-exhausted",
            FailureClass::ConnectFailed => "connect-failed",
            FailureClass::TempFileError => "temp-file-error",
            FailureClass::Other => "other",
        }
    }

    pub fn from_id(id: &str) -> Option<FailureClass> {
        FailureClass::ALL.into_iter().find(|c| c.id() == id)
    }

    /// The status the client usually gets (`causes.md` §1); `None` when it varies.
    pub fn usual_status(self) -> Option<u16> {
        use FailureClass::*;
        match self {
            ConnectTimeout | SendTimeout | ReadTimeout => Some(504),
            RateLimited | ConnLimited => Some(503),
            // A temp file that cannot be written fails a request body (500) or cuts a response
            // whose header already went out (the client got the upstream's status).
            FastcgiStderr | WorkerLimits | TempFileError | Other => None,
            _ => Some(502),
        }
    }

    /// Whether an entry of this class means a request failed (or was refused) on the way to or
    /// from an upstream; `fastcgi-stderr` is the application talking, `other` is not a failure.
    pub fn is_failure(self) -> bool {
        !matches!(self, FailureClass::Other | FailureClass::FastcgiStderr)
    }
}

/// A cheap test on the first bytes of a message: can an entry starting like this be anything but
/// [`FailureClass::Other`]? Lets a scan skip the context of the common noise (keepalive closes,
/// buffering warnings, process notices) without parsing it. [`classify`] holds to it: what this
/// rules out, it calls `Other`.
#[inline]
pub fn may_be_failure(level: Level, message: &[u8]) -> bool {
    let Some(&first) = message.first() else {
        return false;
    };
    // At [error] and above the first bytes say little: a resolver error starts with the name
    // (`ngx_http_upstream.c:ngx_http_upstream_resolve_handler`, "%V could not be resolved"), which
    // may well start with "c", "u" or "l", and "(24: Too many open files)" follows any syscall.
    if level <= Level::Error {
        return true;
    }
    // Below [error], only the messages whose level is configurable (`limit_req_log_level`) or
    // that nginx writes at [info] towards a peer can still be failures.
    match first {
        b'c' => message.starts_with(b"connect() "),
        b'u' => message.starts_with(b"upstream "),
        b'r' | b's' | b'w' => {
            message.starts_with(b"recv() ")
                || message.starts_with(b"readv() ")
                || message.starts_with(b"send() ")
                || message.starts_with(b"sendfile() ")
                || message.starts_with(b"sendmsg() ")
                || message.starts_with(b"writev() ")
                || message.starts_with(b"socket() ")
                || message.starts_with(b"setsockopt(")
                || message.starts_with(b"worker_connections")
        }
        b'n' => message.starts_with(b"no "),
        b'S' => message.starts_with(b"SSL_"),
        b'p' => message.starts_with(b"peer closed connection in SSL handshake"),
        b'l' => message.starts_with(b"limiting "),
        b'F' => message.starts_with(b"FastCGI sent in stderr"),
        b'h' => message.starts_with(b"host not found in upstream"),
        _ => false,
    }
}

/// Classifies a parsed entry into one failure class (`causes.md` §1).
pub fn classify(e: &ErrorEntry<'_>) -> FailureClass {
    use FailureClass::*;
    // The scan skips what `may_be_failure` rules out, so the two must agree. Only entries nginx
    // writes at [error] or above are affected ("(24: ...)", "could not be resolved", "while
    // resolving" at [warn] and below): there they are `Other` whichever way the log is read.
    if !may_be_failure(e.level, e.message) {
        return Other;
    }
    let text = e.text;
    let code = e.errno.map(|x| x.code);
    let action = e.action.unwrap_or(b"");
    // "reading response header from upstream", "SSL handshaking to upstream",
    // "connecting to upstream(proxy_connect)".
    let towards_upstream = || {
        action.ends_with(b"upstream")
            || UPSTREAM.find(action).is_some()
            || (e.context.upstream.is_some() && action.is_empty())
    };

    // ngx_event.c writes "%ui worker_connections are not enough".
    let unnumbered = &text[text.iter().take_while(|c| c.is_ascii_digit()).count()..];
    if code == Some(24)
        || unnumbered.starts_with(b" worker_connections are not enough")
        || text.starts_with(b"worker_connections are not enough")
    {
        return WorkerLimits;
    }
    if text.starts_with(b"connect() ") {
        let unix = text.starts_with(b"connect() to unix:");
        return match code {
            Some(111) => ConnectRefused,
            Some(2) if unix => SocketMissing,
            Some(13) => ConnectPermission,
            Some(11) if unix => SocketBacklog,
            Some(110) => ConnectTimeout,
            Some(113 | 101 | 112 | 100) => ConnectUnreachable,
            Some(99) => PortsExhausted,
            Some(104) => UpstreamReset,
            // Every connect() failure fails the request with 502, whatever the errno
            // (`(22: Invalid argument)` at [crit] from a bad local address, ...).
            _ if towards_upstream() || e.context.upstream.is_some() => ConnectFailed,
            _ => Other,
        };
    }
    if text.starts_with(b"upstream timed out") {
        // nginx always names the phase; an entry cut before its first word is whole (a partial
        // last line, a copy that stopped short) cannot say which timeout it was.
        let cut = e.action.is_none()
            || [&b"connecting"[..], b"SSL handshaking", b"sending"]
                .iter()
                .any(|w| w.len() > action.len() && w.starts_with(action));
        return if action.starts_with(b"connecting") || action.starts_with(b"SSL handshaking") {
            ConnectTimeout
        } else if action.starts_with(b"sending") {
            SendTimeout
        } else if cut {
            Other
        } else {
            ReadTimeout
        };
    }
    if text.starts_with(b"upstream prematurely closed") {
        return PrematureClose;
    }
    // ngx_http_grpc_module.c: the upstream answered the stream with RST_STREAM.
    if text.starts_with(b"upstream rejected request with error") {
        return InvalidResponse;
    }
    // ngx_http_memcached_module.c: "memcached sent invalid key/flags/length/response ...".
    if text.starts_with(b"memcached sent invalid") && e.level <= Level::Error {
        return InvalidResponse;
    }
    // A temp file nginx buffers a body in (`proxy_temp_path`, `client_body_temp_path`, ...):
    // `open() "/var/lib/nginx/proxy/3/00/0000000003" failed (13: Permission denied) while
    // reading upstream`, after nginx's `user` changed and the directories still belong to the
    // old one; or ENOSPC. A static file's `open()` failing is a 403/404, not this.
    if (text.starts_with(b"open() \"")
        || text.starts_with(b"mkdir() \"")
        || text.starts_with(b"write() \"")
        || text.starts_with(b"pwrite() \""))
        && code.is_some()
        // The action must say so (a static file's `open()` may carry an `upstream:` field).
        && (UPSTREAM.find(action).is_some() || is_temp_path(text))
    {
        return TempFileError;
    }
    if text.starts_with(b"upstream sent too big header") {
        return HeaderTooBig;
    }
    if text.starts_with(b"upstream sent ") && b"upstream sent too big header".starts_with(text) {
        // Cut short inside "too big header": not evidence of an invalid response.
        return Other;
    }
    if text.starts_with(b"upstream sent ") || text.starts_with(b"upstream prematurely sent") {
        // "upstream sent more data than specified" is a [warn]: nginx still answers.
        if e.level <= Level::Error {
            return InvalidResponse;
        }
        return Other;
    }
    if text.starts_with(b"no live upstreams") {
        return NoLiveUpstreams;
    }
    if text.starts_with(b"upstream SSL certificate") {
        return TlsVerify;
    }
    if (text.starts_with(b"SSL_do_handshake() failed")
        || text.starts_with(b"peer closed connection in SSL handshake"))
        && action.starts_with(b"SSL handshaking to upstream")
    {
        // nginx checks the certificate after the handshake ("upstream SSL certificate verify
        // error"); a failed handshake is a protocol matter whatever OpenSSL's text says.
        return TlsHandshake;
    }
    if text.starts_with(b"SSL_read() failed") || text.starts_with(b"SSL_write() failed") {
        return if towards_upstream() {
            UpstreamReset
        } else {
            Other
        };
    }
    if matches!(code, Some(104 | 32))
        && towards_upstream()
        && (text.starts_with(b"recv() ")
            || text.starts_with(b"readv() ")
            || text.starts_with(b"send() ")
            || text.starts_with(b"writev() ")
            || text.starts_with(b"sendfile() ")
            || text.starts_with(b"sendmsg() "))
    {
        return UpstreamReset;
    }
    // `limit_req_dry_run on` / `limit_conn_dry_run on`: nginx logs what it would have limited
    // ("limiting requests%s", ", dry run", in ngx_http_limit_req_module.c; the same in
    // ngx_http_limit_conn_module.c) and lets the request through: no 503.
    if text.starts_with(b"limiting requests, dry run")
        || text.starts_with(b"limiting connections, dry run")
    {
        return Other;
    }
    if text.starts_with(b"limiting requests") {
        return RateLimited;
    }
    if text.starts_with(b"limiting connections") {
        return ConnLimited;
    }
    if text.starts_with(b"FastCGI sent in stderr") {
        return FastcgiStderr;
    }
    // The mail and stream modules resolve the *client's* name too; no upstream is involved.
    if action.starts_with(b"in resolving client address") {
        return Other;
    }
    // Below [error], "X could not be resolved" is no failure (see `may_be_failure`), even when
    // the name X starts like a message checked there ("no ...").
    let error_or_above = e.level <= Level::Error;
    if text.starts_with(b"no resolver defined to resolve")
        || text.starts_with(b"host not found in upstream")
        || (error_or_above && COULD_NOT_RESOLVE.find(e.message).is_some())
        || (e.resolver.is_some() && error_or_above)
        || action.starts_with(b"resolving")
    {
        return DnsFailure;
    }
    Other
}

/// Whether the quoted path of `open() "PATH" failed` is one of nginx's temp directories
/// (`*_temp`, Debian's `/var/lib/nginx/{body,proxy,fastcgi,uwsgi,scgi}`).
fn is_temp_path(text: &[u8]) -> bool {
    let Some(start) = memchr::memchr(b'"', text) else {
        return false;
    };
    let rest = &text[start + 1..];
    let path = &rest[..memchr::memchr(b'"', rest).unwrap_or(rest.len())];
    let debian = path.starts_with(b"/var/");
    // Each directory of the path looked at once, from its slash: a substring search per
    // name cost 1,300 instructions a call, and every 404 of a static file comes here.
    // Paths are short: a byte loop beats setting up a search per slash.
    (0..path.len()).filter(|&i| path[i] == b'/').any(|slash| {
        let after = &path[slash..];
        path[..slash].ends_with(b"_temp")
            || (debian
                && [
                    &b"/body/"[..],
                    b"/proxy/",
                    b"/fastcgi/",
                    b"/uwsgi/",
                    b"/scgi/",
                ]
                .iter()
                .any(|d| after.starts_with(d)))
    })
}

/// Whether a line starts a new entry (an nginx timestamp and level), as opposed to continuing a
/// multi-line one.
#[inline]
pub fn starts_entry(line: &[u8]) -> bool {
    line.len() >= 21
        && line[0].is_ascii_digit()
        && line[4] == b'/'
        && line[7] == b'/'
        && line[10] == b' '
        && line[13] == b':'
        && line[19] == b' '
        && line[20] == b'['
}

#[cfg(test)]
mod tests {
    use super::*;

    fn class(line: &str) -> FailureClass {
        classify(&parse(line.as_bytes()).unwrap_or_else(|| panic!("not parsed: {line}")))
    }

    /// Lines nginx 1.22.1 wrote (the grpc and memcached texts from their modules' sources).
    #[test]
    fn every_connect_failure_and_temp_file_has_a_class() {
        let h = "2026/11/21 20:40:10";
        let tail = "client: 127.0.0.1, server: x, request: \"GET /big HTTP/1.1\", upstream: \"http://127.0.0.1:8080/big\", host: \"x\"";
        for (line, want) in [
            (format!("{h} [crit] 7#7: *3 connect() to 127.0.0.1:8080 failed (22: Invalid argument) while connecting to upstream, {tail}"), FailureClass::ConnectFailed),
            (format!("{h} [error] 7#7: *3 upstream rejected request with error 2 while reading response header from upstream, {tail}"), FailureClass::InvalidResponse),
            (format!("{h} [error] 7#7: *3 memcached sent invalid response: \"GARBAGE\" while reading upstream, {tail}"), FailureClass::InvalidResponse),
            (format!("{h} [crit] 7#7: *3 open() \"/var/lib/nginx/proxy/3/00/0000000003\" failed (13: Permission denied) while reading upstream, {tail}"), FailureClass::TempFileError),
            (format!("{h} [crit] 7#7: *3 open() \"/usr/share/nginx/client_body_temp/0000000001\" failed (28: No space left on device), client: 127.0.0.1, server: x, request: \"POST /up HTTP/1.1\", host: \"x\""), FailureClass::TempFileError),
            // A static file nginx may not read is a 403, not a temp file.
            (format!("{h} [error] 7#7: *3 open() \"/var/www/html/secret.html\" failed (13: Permission denied), client: 127.0.0.1, server: x, request: \"GET /secret.html HTTP/1.1\", host: \"x\""), FailureClass::Other),
        ] {
            assert_eq!(class(&line), want, "{line}");
        }
        // Which paths are temp paths: a directory ending in `_temp` anywhere (also first), and
        // Debian's directories only under /var/.
        for (path, temp) in [
            ("/var/lib/nginx/body/1", true),
            ("/var/cache/nginx/scgi/2", true),
            ("/srv/lib/nginx/proxy/3", false),
            ("_temp/4", true),
            ("/x/uwsgi_temp", false),
            ("/x/uwsgi_temp/5", true),
            ("/var/www/proxy.html", false),
        ] {
            let text = format!("open() \"{path}\" failed");
            assert_eq!(is_temp_path(text.as_bytes()), temp, "{path}");
        }
    }

    /// The eight-byte reading of a number agrees with reading it digit by digit.
    #[test]
    fn numbers_read_by_the_word_as_by_the_digit() {
        let mut cases: Vec<Vec<u8>> = Vec::new();
        for digits in [
            "",
            "0",
            "7",
            "42",
            "1079",
            "9825",
            "0012",
            "1234567",
            "9999999",
            "12345678",
            "123456789012",
            "99999999999999999999999",
        ] {
            for tail in ["", "#", ": ", " x", "/", ":", "\u{ff}", "9", "a1234567"] {
                cases.push(format!("{digits}{tail}").into_bytes());
            }
        }
        for b in 0..=255u8 {
            cases.push(vec![b'1', b'2', b, b'3', b'4', b'5', b'6', b'7', b'8']);
            cases.push(vec![b, b'1', b'2', b'3', b'4', b'5', b'6', b'7']);
        }
        for c in &cases {
            assert_eq!(number(c), number_slow(c), "{}", String::from_utf8_lossy(c));
        }
    }

    #[test]
    fn dry_run_limits_let_requests_through() {
        for line in [
            "2026/11/21 20:40:10 [error] 22566#22566: *18 limiting requests, dry run, excess: 0.999 by zone \"one\", client: 127.0.0.1, server: x, request: \"GET / HTTP/1.1\", host: \"x\"",
            "2026/11/21 20:40:10 [error] 22566#22566: *18 limiting connections, dry run, by zone \"addr\", client: 127.0.0.1, server: x, request: \"GET / HTTP/1.1\", host: \"x\"",
        ] {
            assert_eq!(class(line), FailureClass::Other, "{line}");
        }
        assert_eq!(
            class("2026/11/21 20:40:10 [error] 1#1: *18 limiting requests, excess: 0.999 by zone \"one\", client: 127.0.0.1, server: x, request: \"GET / HTTP/1.1\", host: \"x\""),
            FailureClass::RateLimited
        );
    }

    #[test]
    fn every_field_of_the_grammar() {
        let line = b"2026/11/20 14:32:10 [error] 8131#8132: *42 upstream timed out (110: Connection timed out) while reading response header from upstream, client: 10.0.0.9, server: api.example.com, request: \"POST /v1/x?a=\"b HTTP/1.1\", subrequest: \"/auth\", upstream: \"http://127.0.0.1:3000/v1/x\", host: \"api.example.com\", referrer: \"https://example.com/, client: x\"";
        let e = parse(line).unwrap();
        assert_eq!(e.time.to_string(), "2026-11-20T14:32:10");
        assert_eq!(e.level, Level::Error);
        assert_eq!((e.pid, e.tid, e.cid), (8131, 8132, Some(42)));
        assert_eq!(e.text, b"upstream timed out");
        assert_eq!(
            e.errno,
            Some(Errno {
                code: 110,
                text: b"Connection timed out"
            })
        );
        assert_eq!(
            e.action,
            Some(&b"reading response header from upstream"[..])
        );
        let c = e.context;
        assert_eq!(c.client, Some(&b"10.0.0.9"[..]));
        assert_eq!(c.server, Some(&b"api.example.com"[..]));
        assert_eq!(c.request, Some(&b"POST /v1/x?a=\"b HTTP/1.1"[..]));
        assert_eq!(c.subrequest, Some(&b"/auth"[..]));
        assert_eq!(c.upstream, Some(&b"http://127.0.0.1:3000/v1/x"[..]));
        assert_eq!(c.host, Some(&b"api.example.com"[..]));
        assert_eq!(c.referrer, Some(&b"https://example.com/, client: x"[..]));
        assert!(!e.truncated);
        assert_eq!(classify(&e), FailureClass::ReadTimeout);
    }

    #[test]
    fn empty_server_and_no_cid() {
        let e =
            parse(b"2026/11/21 20:26:52 [notice] 8130#8130: start worker process 8131").unwrap();
        assert_eq!(e.cid, None);
        assert_eq!(e.message, b"start worker process 8131");
        assert_eq!(classify(&e), FailureClass::Other);
        let e = parse(b"2026/11/21 20:26:52 [error] 8131#8131: *16 limiting requests, excess: 1.000 by zone \"one\", client: 127.0.0.1, server: , request: \"GET /lim HTTP/1.1\", host: \"127.0.0.1:38080\"").unwrap();
        assert_eq!(e.context.server, Some(&b""[..]));
        assert_eq!(e.context.request, Some(&b"GET /lim HTTP/1.1"[..]));
        assert_eq!(classify(&e), FailureClass::RateLimited);
    }

    #[test]
    fn resolver_tail() {
        let e = parse(b"2026/11/21 20:26:52 [error] 10#10: send() failed (111: Connection refused) while resolving, resolver: 127.0.0.1:53").unwrap();
        assert_eq!(e.resolver, Some(&b"127.0.0.1:53"[..]));
        assert_eq!(e.action, Some(&b"resolving"[..]));
        assert_eq!(classify(&e), FailureClass::DnsFailure);
        assert_eq!(
            class("2026/11/21 20:26:52 [error] 10#10: *3 backend.internal could not be resolved (3: Host not found), client: 1.2.3.4, server: x, request: \"GET / HTTP/1.1\", host: \"x\""),
            FailureClass::DnsFailure
        );
    }

    #[test]
    fn multiline_fastcgi_entry_keeps_its_context() {
        let entry = b"2023/10/26 00:01:12 [error] 14#14: *5 FastCGI sent in stderr: \"PHP message: x, client: evil\nStack trace:\n#0 {main}\" while reading response header from upstream, client: 1.2.3.4, server: s, request: \"GET / HTTP/1.1\", upstream: \"fastcgi://unix:/run/php/php8.2-fpm.sock:\", host: \"h\"";
        let e = parse(entry).unwrap();
        assert_eq!(e.context.client, Some(&b"1.2.3.4"[..]));
        assert_eq!(
            e.context.upstream,
            Some(&b"fastcgi://unix:/run/php/php8.2-fpm.sock:"[..])
        );
        assert_eq!(classify(&e), FailureClass::FastcgiStderr);
    }

    #[test]
    fn truncated_context() {
        let mut line = b"2026/11/21 20:26:52 [error] 1#1: *1 upstream prematurely closed connection while reading response header from upstream, client: 1.2.3.4, server: s, request: \"GET /".to_vec();
        line.extend(std::iter::repeat_n(b'a', MAX_ENTRY - line.len()));
        let e = parse(&line).unwrap();
        assert!(e.truncated);
        assert_eq!(e.context.upstream, None);
        assert_eq!(classify(&e), FailureClass::PrematureClose);
    }

    #[test]
    fn crlf_and_garbage() {
        let e = parse(b"2026/11/21 20:26:52 [warn] 1#0: *1 upstream server temporarily disabled while connecting to upstream, client: 1.2.3.4, server: s\r").unwrap();
        assert_eq!(e.context.server, Some(&b"s"[..]));
        assert_eq!(e.tid, 0);
        assert!(parse(b"nginx: [emerg] unknown directive").is_none());
        assert!(parse(b"2026/11/21 20:2").is_none());
        assert!(parse(b"\xff\xfe\x00garbage").is_none());
        assert!(parse(b"2026/11/21 20:26:52 [bogus] 1#1: x").is_none());
    }

    #[test]
    fn classes_of_the_catalog() {
        let p = "2026/11/21 20:26:52 [error] 1#1: *1 ";
        let t = ", client: 1.2.3.4, server: s, request: \"GET / HTTP/1.1\", upstream: \"http://127.0.0.1:1/\", host: \"h\"";
        let cases = [
            ("connect() failed (111: Connection refused) while connecting to upstream", FailureClass::ConnectRefused),
            ("connect() to unix:/run/a.sock failed (111: Connection refused) while connecting to upstream", FailureClass::ConnectRefused),
            ("connect() to unix:/run/a.sock failed (2: No such file or directory) while connecting to upstream", FailureClass::SocketMissing),
            ("connect() to unix:/run/a.sock failed (13: Permission denied) while connecting to upstream", FailureClass::ConnectPermission),
            ("connect() failed (13: Permission denied) while connecting to upstream", FailureClass::ConnectPermission),
            ("connect() to unix:/run/a.sock failed (11: Resource temporarily unavailable) while connecting to upstream", FailureClass::SocketBacklog),
            ("upstream timed out (110: Connection timed out) while connecting to upstream", FailureClass::ConnectTimeout),
            ("upstream timed out (110: Operation timed out) while sending request to upstream", FailureClass::SendTimeout),
            ("upstream timed out (110: Connection timed out) while reading upstream", FailureClass::ReadTimeout),
            ("recv() failed (104: Connection reset by peer) while reading response header from upstream", FailureClass::UpstreamReset),
            ("writev() failed (32: Broken pipe) while sending request to upstream", FailureClass::UpstreamReset),
            ("upstream prematurely closed FastCGI stdout while reading response header from upstream", FailureClass::PrematureClose),
            ("upstream sent too big header while reading response header from upstream", FailureClass::HeaderTooBig),
            ("upstream sent no valid HTTP/1.0 header while reading response header from upstream", FailureClass::InvalidResponse),
            ("upstream sent invalid chunked response while reading upstream", FailureClass::InvalidResponse),
            ("no live upstreams while connecting to upstream", FailureClass::NoLiveUpstreams),
            ("SSL_do_handshake() failed (SSL: error:0A00010B:SSL routines::wrong version number) while SSL handshaking to upstream", FailureClass::TlsHandshake),
            ("peer closed connection in SSL handshake (104: Connection reset by peer) while SSL handshaking to upstream", FailureClass::TlsHandshake),
            ("upstream SSL certificate verify error: (10:certificate has expired) while SSL handshaking to upstream", FailureClass::TlsVerify),
            ("upstream SSL certificate does not match \"a.example\" while SSL handshaking to upstream", FailureClass::TlsVerify),
            ("no resolver defined to resolve backend", FailureClass::DnsFailure),
            ("limiting connections by zone \"addr\"", FailureClass::ConnLimited),
            ("FastCGI sent in stderr: \"Primary script unknown\" while reading response header from upstream", FailureClass::FastcgiStderr),
            ("socket() failed (24: Too many open files) while connecting to upstream", FailureClass::WorkerLimits),
            ("connect() failed (113: No route to host) while connecting to upstream", FailureClass::ConnectUnreachable),
            ("connect() failed (99: Cannot assign requested address) while connecting to upstream", FailureClass::PortsExhausted),
            ("recv() failed (104: Connection reset by peer) while reading client request line", FailureClass::Other),
            ("client prematurely closed connection while reading client request body", FailureClass::Other),
            ("upstream server temporarily disabled while connecting to upstream", FailureClass::Other),
        ];
        for (msg, want) in cases {
            let line = format!("{p}{msg}{t}");
            assert_eq!(class(&line), want, "{msg}");
            let head = parse_head(line.as_bytes()).unwrap();
            if want != FailureClass::Other {
                assert!(
                    may_be_failure(head.level, &line.as_bytes()[head.message_start..]),
                    "{msg}"
                );
            }
        }
    }

    #[test]
    fn class_ids_roundtrip() {
        for c in FailureClass::ALL {
            assert_eq!(FailureClass::from_id(c.id()), Some(c));
        }
    }
}
