//! Access-log lines, parsed by a compiled `log_format`.
//!
//! nginx writes each variable's value between the format's literal text, escaping `"`, `\` and
//! bytes outside printable ASCII as `\xHH` (`escape=default`), as JSON (`escape=json`) or not at
//! all (`escape=none`); see `src/http/modules/ngx_http_log_module.c`. So a value ends where the
//! next literal begins, with three exceptions that this compiler knows about:
//! `$time_local` holds a space (`20/Nov/2026:14:32:10 +0100`), an unquoted `$request` holds two,
//! and the `$upstream_*` variables are lists (`10.0.0.1:80, 10.0.0.2:80 : unix:/x`) whose
//! separators hold spaces.
//!
//! A scan reads most lines only up to `$status` and the time, with [`PrefixWalk`], the same walk
//! compiled for the first segments and fused with the search for the end of the line.
//!
//! ```
//! use medic_parse::access_log::{LogFormat, Field};
//! let f = LogFormat::compile("$remote_addr [$time_local] \"$request\" $status $upstream_addr $upstream_status").unwrap();
//! let r = f.parse(b"10.0.0.1 [20/Nov/2026:14:32:10 +0100] \"GET / HTTP/1.1\" 502 10.0.0.2:80, 10.0.0.3:80 502, 502").unwrap();
//! assert_eq!(r.get(Field::Status), Some(&b"502"[..]));
//! assert_eq!(r.get(Field::UpstreamAddr), Some(&b"10.0.0.2:80, 10.0.0.3:80"[..]));
//! assert_eq!(r.get(Field::UpstreamStatus), Some(&b"502, 502"[..]));
//! ```

use memchr::memmem::Finder;
use thiserror::Error;

mod prefix_walk;
pub use prefix_walk::PrefixWalk;

/// nginx's predefined `combined` format.
pub const COMBINED: &str =
    "$remote_addr - $remote_user [$time_local] \"$request\" $status $body_bytes_sent \"$http_referer\" \"$http_user_agent\"";

/// The `main` format of nginx's sample `nginx.conf` (and of the official Docker image).
pub const MAIN: &str = "$remote_addr - $remote_user [$time_local] \"$request\" $status $body_bytes_sent \"$http_referer\" \"$http_user_agent\" \"$http_x_forwarded_for\"";

/// Formats tried, richest first, when the user names none and the config is not read: nginx's
/// own examples and the most common additions to `combined`.
pub const KNOWN: &[(&str, &str)] = &[
    (
        "combined+upstream",
        "$remote_addr - $remote_user [$time_local] \"$request\" $status $body_bytes_sent \"$http_referer\" \"$http_user_agent\" $upstream_addr $upstream_status $upstream_response_time $request_time",
    ),
    (
        "upstream_time",
        "$remote_addr - $remote_user [$time_local] \"$request\" $status $body_bytes_sent \"$http_referer\" \"$http_user_agent\" rt=$request_time uct=\"$upstream_connect_time\" uht=\"$upstream_header_time\" urt=\"$upstream_response_time\"",
    ),
    (
        "upstream_time (nginx docs, no space)",
        "$remote_addr - $remote_user [$time_local] \"$request\" $status $body_bytes_sent \"$http_referer\" \"$http_user_agent\"rt=$request_time uct=\"$upstream_connect_time\" uht=\"$upstream_header_time\" urt=\"$upstream_response_time\"",
    ),
    (
        "ingress-nginx upstreaminfo",
        "$remote_addr - $remote_user [$time_local] \"$request\" $status $body_bytes_sent \"$http_referer\" \"$http_user_agent\" $request_length $request_time [$proxy_upstream_name] [$proxy_alternative_upstream_name] $upstream_addr $upstream_response_length $upstream_response_time $upstream_status $req_id",
    ),
    ("main", MAIN),
    ("combined", COMBINED),
];

/// The variables the summaries read. Any other variable is parsed over and ignored.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum Field {
    RemoteAddr,
    RemoteUser,
    TimeLocal,
    TimeIso8601,
    Msec,
    Request,
    Status,
    BodyBytesSent,
    Referer,
    UserAgent,
    Host,
    HttpHost,
    ServerName,
    UpstreamAddr,
    UpstreamStatus,
    UpstreamResponseTime,
    UpstreamConnectTime,
    UpstreamHeaderTime,
    RequestTime,
}

impl Field {
    pub const COUNT: usize = 19;
    pub const ALL: [Field; Field::COUNT] = [
        Field::RemoteAddr,
        Field::RemoteUser,
        Field::TimeLocal,
        Field::TimeIso8601,
        Field::Msec,
        Field::Request,
        Field::Status,
        Field::BodyBytesSent,
        Field::Referer,
        Field::UserAgent,
        Field::Host,
        Field::HttpHost,
        Field::ServerName,
        Field::UpstreamAddr,
        Field::UpstreamStatus,
        Field::UpstreamResponseTime,
        Field::UpstreamConnectTime,
        Field::UpstreamHeaderTime,
        Field::RequestTime,
    ];

    fn of(var: &str) -> Option<Field> {
        Some(match var {
            "remote_addr" | "realip_remote_addr" => Field::RemoteAddr,
            "remote_user" => Field::RemoteUser,
            "time_local" => Field::TimeLocal,
            "time_iso8601" => Field::TimeIso8601,
            "msec" => Field::Msec,
            "request" => Field::Request,
            "status" => Field::Status,
            "body_bytes_sent" => Field::BodyBytesSent,
            "http_referer" => Field::Referer,
            "http_user_agent" => Field::UserAgent,
            "host" => Field::Host,
            "http_host" => Field::HttpHost,
            "server_name" => Field::ServerName,
            "upstream_addr" => Field::UpstreamAddr,
            "upstream_status" => Field::UpstreamStatus,
            "upstream_response_time" => Field::UpstreamResponseTime,
            "upstream_connect_time" => Field::UpstreamConnectTime,
            "upstream_header_time" => Field::UpstreamHeaderTime,
            "request_time" => Field::RequestTime,
            _ => return None,
        })
    }
}

/// How nginx escaped the values (`log_format NAME escape=...`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Escape {
    #[default]
    Default,
    Json,
    None,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Shape {
    /// Up to the next literal.
    Plain,
    /// `$time_local`: 26 bytes with a space inside.
    TimeLocal,
    /// An unquoted `$request`: three words.
    RequestWords,
    /// `$upstream_*`: items joined by `, ` and ` : `.
    List,
}

#[derive(Debug)]
enum Segment {
    Literal(Vec<u8>, Box<Finder<'static>>),
    Var {
        name: String,
        field: Option<Field>,
        shape: Shape,
    },
}

/// A compiled `log_format`.
#[derive(Debug)]
pub struct LogFormat {
    source: String,
    escape: Escape,
    segments: Vec<Segment>,
    /// For each field, the index of the segment after which it is known.
    field_segment: [Option<u16>; Field::COUNT],
    /// Variables that follow one another with no text between them; the first takes everything.
    pub warnings: Vec<String>,
}

#[derive(Debug, Error, PartialEq, Eq)]
pub enum FormatError {
    #[error("log_format is empty")]
    Empty,
    #[error("log_format: variable name expected after '$' at byte {0}")]
    BadVariable(usize),
    #[error("log_format: unclosed '${{' at byte {0}")]
    Unclosed(usize),
}

/// Why a line does not fit the format.
#[derive(Debug, Error, PartialEq, Eq, Clone)]
pub enum LineError {
    #[error("expected {expected:?} at byte {at}")]
    Literal { expected: String, at: usize },
    #[error("the line ends before ${var}")]
    Short { var: String },
}

/// The values of one line, by [`Field`]. Slices borrow from the line.
#[derive(Clone, Copy, Debug, Default)]
pub struct AccessRecord<'a> {
    values: [Option<&'a [u8]>; Field::COUNT],
}

impl<'a> AccessRecord<'a> {
    #[inline]
    pub fn get(&self, f: Field) -> Option<&'a [u8]> {
        self.values[f as usize]
    }

    /// `$status` as a number.
    #[inline]
    pub fn status(&self) -> Option<u16> {
        let s = self.get(Field::Status)?;
        if s.len() != 3 || !s.iter().all(u8::is_ascii_digit) {
            return None;
        }
        Some(u16::from(s[0] - b'0') * 100 + u16::from(s[1] - b'0') * 10 + u16::from(s[2] - b'0'))
    }

    /// The request time from whichever time variable the format has.
    pub fn time(&self) -> Option<crate::time::LogTime> {
        use crate::time::LogTime;
        if let Some(t) = self.get(Field::TimeLocal) {
            return LogTime::parse_time_local(t);
        }
        if let Some(t) = self.get(Field::TimeIso8601) {
            return LogTime::parse_iso(t);
        }
        self.get(Field::Msec).and_then(LogTime::parse_msec)
    }
}

impl LogFormat {
    /// Compiles a format string, or a predefined name (`combined`, `main`).
    pub fn compile(format: &str) -> Result<LogFormat, FormatError> {
        Self::compile_with(format, Escape::Default)
    }

    pub fn compile_with(format: &str, escape: Escape) -> Result<LogFormat, FormatError> {
        let source = match format.trim() {
            "combined" => COMBINED,
            "main" => MAIN,
            _ => format,
        };
        if source.is_empty() {
            return Err(FormatError::Empty);
        }
        let b = source.as_bytes();
        let mut raw: Vec<(bool, Vec<u8>)> = Vec::new();
        let mut lit = Vec::new();
        let mut i = 0;
        while i < b.len() {
            if b[i] != b'$' {
                lit.push(b[i]);
                i += 1;
                continue;
            }
            let (name, next) = if b.get(i + 1) == Some(&b'{') {
                let close = b[i + 2..]
                    .iter()
                    .position(|&c| c == b'}')
                    .ok_or(FormatError::Unclosed(i))?;
                (&b[i + 2..i + 2 + close], i + 3 + close)
            } else {
                let n = b[i + 1..]
                    .iter()
                    .take_while(|c| c.is_ascii_alphanumeric() || **c == b'_')
                    .count();
                (&b[i + 1..i + 1 + n], i + 1 + n)
            };
            if name.is_empty() {
                return Err(FormatError::BadVariable(i));
            }
            if !lit.is_empty() {
                raw.push((false, std::mem::take(&mut lit)));
            }
            raw.push((true, name.to_vec()));
            i = next;
        }
        if !lit.is_empty() {
            raw.push((false, lit));
        }

        let mut segments = Vec::with_capacity(raw.len());
        let mut warnings = Vec::new();
        for (k, (is_var, bytes)) in raw.iter().enumerate() {
            if !is_var {
                let finder = Box::new(Finder::new(bytes).into_owned());
                segments.push(Segment::Literal(bytes.clone(), finder));
                continue;
            }
            let name = String::from_utf8_lossy(bytes).into_owned();
            let prev_quote = k > 0 && !raw[k - 1].0 && raw[k - 1].1.ends_with(b"\"");
            let next = raw.get(k + 1);
            let next_space = next.is_some_and(|(v, l)| !v && l.first() == Some(&b' '));
            if next.is_some_and(|(v, _)| *v) {
                warnings.push(format!(
                    "${name} is followed directly by another variable: it takes the text of both"
                ));
            }
            let shape = match name.as_str() {
                "time_local" => Shape::TimeLocal,
                "request" if !prev_quote && next_space => Shape::RequestWords,
                n if n.starts_with("upstream_") && !prev_quote && next_space => Shape::List,
                _ => Shape::Plain,
            };
            segments.push(Segment::Var {
                field: Field::of(&name),
                name,
                shape,
            });
        }
        let mut field_segment = [None; Field::COUNT];
        for (idx, s) in segments.iter().enumerate() {
            if let Segment::Var { field: Some(f), .. } = s {
                field_segment[*f as usize].get_or_insert(idx as u16);
            }
        }
        Ok(LogFormat {
            source: source.to_string(),
            escape,
            segments,
            field_segment,
            warnings,
        })
    }

    pub fn source(&self) -> &str {
        &self.source
    }

    /// Whether the format has this variable.
    pub fn has(&self, f: Field) -> bool {
        self.field_segment[f as usize].is_some()
    }

    /// Parses a whole line (without its newline; a trailing `\r` is ignored).
    pub fn parse<'a>(&self, line: &'a [u8]) -> Result<AccessRecord<'a>, LineError> {
        let mut rec = AccessRecord::default();
        self.parse_segments(line, self.segments.len(), &mut rec)?;
        Ok(rec)
    }

    /// Like [`LogFormat::parse`], but the whole line must be used: for telling formats apart.
    pub fn parse_exact<'a>(&self, line: &'a [u8]) -> Result<AccessRecord<'a>, LineError> {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        let mut rec = AccessRecord::default();
        let end = self.parse_segments(line, self.segments.len(), &mut rec)?;
        if end != line.len() {
            return Err(LineError::Literal {
                expected: "end of line".into(),
                at: end,
            });
        }
        Ok(rec)
    }

    /// Picks the format that reads the most of `sample`'s lines whole, among `candidates`;
    /// ties go to the earlier (richer) candidate. Returns it with the number of lines it read.
    pub fn detect<'f>(
        sample: &[u8],
        candidates: &'f [LogFormat],
    ) -> Option<(&'f LogFormat, usize, usize)> {
        let lines: Vec<&[u8]> = sample
            .split(|&c| c == b'\n')
            .filter(|l| !l.is_empty())
            .take(200)
            .collect();
        // The last line of a sample may be cut.
        let lines = if lines.len() > 1 {
            &lines[..lines.len() - 1]
        } else {
            &lines[..]
        };
        candidates
            .iter()
            .map(|f| (f, lines.iter().filter(|l| f.parse_exact(l).is_ok()).count()))
            .enumerate()
            .max_by(|(i, (_, a)), (j, (_, b))| a.cmp(b).then(j.cmp(i)))
            .map(|(_, (f, n))| (f, n, lines.len()))
    }

    /// Parses only as far as needed to know `fields`: a summary that only wants `$status` for
    /// most lines stops there.
    pub fn parse_upto<'a>(
        &self,
        line: &'a [u8],
        fields: &[Field],
    ) -> Result<AccessRecord<'a>, LineError> {
        let mut rec = AccessRecord::default();
        self.parse_prefix_into(line, self.prefix_for(fields), &mut rec)?;
        Ok(rec)
    }

    /// How many segments [`LogFormat::parse_prefix_into`] must read to know `fields`.
    pub fn prefix_for(&self, fields: &[Field]) -> usize {
        fields
            .iter()
            .filter_map(|f| self.field_segment[*f as usize])
            .max()
            .map_or(0, |s| s as usize + 1)
    }

    /// [`LogFormat::parse_upto`] into a record the caller reuses (the hot path of a scan).
    #[inline]
    pub fn parse_prefix_into<'a>(
        &self,
        line: &'a [u8],
        segments: usize,
        rec: &mut AccessRecord<'a>,
    ) -> Result<(), LineError> {
        *rec = AccessRecord::default();
        self.parse_segments(line, segments.min(self.segments.len()), rec)
            .map(|_| ())
    }

    fn parse_segments<'a>(
        &self,
        line: &'a [u8],
        upto: usize,
        rec: &mut AccessRecord<'a>,
    ) -> Result<usize, LineError> {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        let mut pos = 0usize;
        let mut k = 0usize;
        while k < upto {
            match &self.segments[k] {
                Segment::Literal(lit, _) => {
                    if !has_prefix(&line[pos..], lit) {
                        return Err(LineError::Literal {
                            expected: String::from_utf8_lossy(lit).into_owned(),
                            at: pos,
                        });
                    }
                    pos += lit.len();
                    k += 1;
                }
                Segment::Var { field, shape, name } => {
                    let end = match self.segments.get(k + 1) {
                        None => line.len(),
                        Some(Segment::Var { .. }) => line.len(),
                        Some(Segment::Literal(lit, finder)) => self
                            .value_end(line, pos, *shape, lit, finder)
                            .ok_or_else(|| LineError::Short { var: name.clone() })?,
                    };
                    if let Some(f) = field {
                        // A variable named twice (or `$remote_addr` and `$realip_remote_addr`):
                        // the first counts, as in `field_segment`, so `parse_upto` agrees.
                        rec.values[*f as usize].get_or_insert(&line[pos..end]);
                    }
                    pos = end;
                    k += 1;
                }
            }
        }
        Ok(pos)
    }

    #[inline]
    fn value_end(
        &self,
        line: &[u8],
        pos: usize,
        shape: Shape,
        lit: &[u8],
        finder: &Finder<'_>,
    ) -> Option<usize> {
        match shape {
            Shape::TimeLocal => {
                if line.len() >= pos + 26 && has_prefix(&line[pos + 26..], lit) {
                    return Some(pos + 26);
                }
                self.find_literal(line, pos, lit, finder)
            }
            Shape::RequestWords => {
                // METHOD URI PROTOCOL: the value ends at the literal after the second space.
                // A bare `GET /` or an empty request has fewer words: fall back to the next literal.
                let three_words = memchr::memchr(b' ', &line[pos..])
                    .map(|p| pos + p + 1)
                    .and_then(|s1| memchr::memchr(b' ', &line[s1..]).map(|p| s1 + p + 1))
                    .and_then(|s2| self.find_literal(line, s2, lit, finder));
                let two_words = || {
                    memchr::memchr(b' ', &line[pos..])
                        .map(|p| pos + p + 1)
                        .and_then(|s1| self.find_literal(line, s1, lit, finder))
                };
                three_words
                    .or_else(two_words)
                    .or_else(|| self.find_literal(line, pos, lit, finder))
            }
            Shape::List => {
                let mut p = pos;
                loop {
                    let e = self.find_literal(line, p, lit, finder)?;
                    if e > pos && line[e - 1] == b',' {
                        p = e + 1;
                    } else if line[e..].starts_with(b" : ") {
                        p = e + 3;
                    } else if e >= pos + 2 && &line[e - 2..e] == b" :" {
                        // The literal begins with the second space of ` : `: `502 : - - x`
                        // against ` - `.
                        p = e + 1;
                    } else {
                        return Some(e);
                    }
                }
            }
            Shape::Plain => self.find_literal(line, pos, lit, finder),
        }
    }

    #[inline]
    fn find_literal(
        &self,
        line: &[u8],
        from: usize,
        lit: &[u8],
        finder: &Finder<'_>,
    ) -> Option<usize> {
        let mut p = from;
        loop {
            // Values are short: the first byte and a check beat a substring searcher there.
            let found = if lit.len() <= 4 {
                let mut q = p;
                loop {
                    let at = memchr::memchr(lit[0], &line[q..])? + q;
                    if has_prefix(&line[at..], lit) {
                        break at;
                    }
                    q = at + 1;
                }
            } else {
                finder.find(&line[p..])? + p
            };
            // With escape=json a value may hold `\"`; with the default escaping it never holds `"`.
            if self.escape == Escape::Json && lit[0] == b'"' && escaped(line, from, found) {
                p = found + 1;
                continue;
            }
            return Some(found);
        }
    }
}

/// `starts_with` for the few bytes of a format literal: a call to libc's memcmp per literal was a
/// tenth of the access-log scan.
#[inline(always)]
fn has_prefix(hay: &[u8], lit: &[u8]) -> bool {
    hay.len() >= lit.len() && hay.iter().zip(lit).all(|(a, b)| a == b)
}

fn escaped(line: &[u8], from: usize, at: usize) -> bool {
    let n = line[from..at]
        .iter()
        .rev()
        .take_while(|&&c| c == b'\\')
        .count();
    n % 2 == 1
}

/// Whether a 5xx was made by nginx itself or passed on from the upstream.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Origin {
    /// nginx answered without an upstream answer: none was asked (`$upstream_status` `-`:
    /// limit_req, no upstream), or the last attempt failed before any header came back
    /// (`$upstream_header_time` `-`).
    Nginx,
    /// The upstream sent this status itself (a header arrived, or a status nginx never makes up).
    Upstream,
    /// 502/504 in `$upstream_status` without `$upstream_header_time` in the format: nginx writes
    /// 502/504 there both when it failed to talk to the peer and when the peer answered so.
    Unknown,
}

impl Origin {
    pub fn as_str(self) -> &'static str {
        match self {
            Origin::Nginx => "nginx",
            Origin::Upstream => "upstream",
            Origin::Unknown => "unknown",
        }
    }
}

/// Decides [`Origin`] from `$upstream_status` and `$upstream_header_time` (both optional).
pub fn origin(upstream_status: Option<&[u8]>, upstream_header_time: Option<&[u8]>) -> Origin {
    use crate::upstream::{is_none, last};
    let Some(us) = upstream_status else {
        return Origin::Unknown;
    };
    let us = last(us);
    if is_none(us) {
        return Origin::Nginx;
    }
    if let Some(ht) = upstream_header_time {
        return if is_none(last(ht)) {
            Origin::Nginx
        } else {
            Origin::Upstream
        };
    }
    // nginx itself only ever records 502 and 504 for a failed attempt
    // (ngx_http_upstream_next: NGX_HTTP_BAD_GATEWAY / NGX_HTTP_GATEWAY_TIME_OUT).
    match us {
        b"502" | b"504" => Origin::Unknown,
        _ => Origin::Upstream,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const BENCH: &str = "$remote_addr - $remote_user [$time_local] \"$request\" $status $body_bytes_sent \"$http_referer\" \"$http_user_agent\" $upstream_addr $upstream_status $upstream_response_time $request_time";

    #[test]
    fn combined() {
        let f = LogFormat::compile("combined").unwrap();
        let r = f.parse(b"67.43.156.13 - - [25/Oct/2016:14:49:34 +0200] \"GET /favicon.ico HTTP/1.1\" 404 571 \"http://localhost:8080/\" \"Mozilla/5.0 (Macintosh)\"").unwrap();
        assert_eq!(r.get(Field::RemoteAddr), Some(&b"67.43.156.13"[..]));
        assert_eq!(
            r.get(Field::TimeLocal),
            Some(&b"25/Oct/2016:14:49:34 +0200"[..])
        );
        assert_eq!(r.status(), Some(404));
        assert_eq!(
            r.get(Field::UserAgent),
            Some(&b"Mozilla/5.0 (Macintosh)"[..])
        );
        assert_eq!(r.time().unwrap().to_string(), "2016-10-25T14:49:34");
    }

    #[test]
    fn multi_value_upstream_fields() {
        let f = LogFormat::compile(BENCH).unwrap();
        let line = b"1.2.3.4 - - [26/Oct/2023:00:00:01 +0000] \"GET /a HTTP/1.1\" 200 5 \"-\" \"curl\" 10.0.0.1:80, 10.0.0.2:80 : unix:/x 502, 502 : 200 0.001, 0.002 : 0.004 0.010";
        let r = f.parse(line).unwrap();
        assert_eq!(
            r.get(Field::UpstreamAddr),
            Some(&b"10.0.0.1:80, 10.0.0.2:80 : unix:/x"[..])
        );
        assert_eq!(r.get(Field::UpstreamStatus), Some(&b"502, 502 : 200"[..]));
        assert_eq!(
            r.get(Field::UpstreamResponseTime),
            Some(&b"0.001, 0.002 : 0.004"[..])
        );
        assert_eq!(r.get(Field::RequestTime), Some(&b"0.010"[..]));
    }

    #[test]
    fn partial_parse_stops_early() {
        let f = LogFormat::compile(BENCH).unwrap();
        let r = f
            .parse_upto(
                b"1.2.3.4 - - [26/Oct/2023:00:00:01 +0000] \"GET /a HTTP/1.1\" 200 garbage",
                &[Field::Status],
            )
            .unwrap();
        assert_eq!(r.status(), Some(200));
        assert!(f
            .parse(b"1.2.3.4 - - [26/Oct/2023:00:00:01 +0000] \"GET /a HTTP/1.1\" 200 garbage")
            .is_err());
    }

    #[test]
    fn unquoted_request_and_json_escape() {
        let f = LogFormat::compile("$remote_addr $request $status").unwrap();
        let r = f.parse(b"::1 GET /x HTTP/1.1 503").unwrap();
        assert_eq!(r.get(Field::Request), Some(&b"GET /x HTTP/1.1"[..]));
        let r = f.parse(b"::1 GET / 400").unwrap();
        assert_eq!(
            (r.get(Field::Request), r.status()),
            (Some(&b"GET /"[..]), Some(400))
        );
        let f = LogFormat::compile_with("{\"r\":\"$request\",\"s\":\"$status\"}", Escape::Json)
            .unwrap();
        let r = f
            .parse(br#"{"r":"GET /\"q\" HTTP/1.1","s":"502"}"#)
            .unwrap();
        assert_eq!(r.status(), Some(502));
    }

    #[test]
    fn errors() {
        assert_eq!(LogFormat::compile("").unwrap_err(), FormatError::Empty);
        assert!(LogFormat::compile("$ x").is_err());
        assert!(LogFormat::compile("${x").is_err());
        let f = LogFormat::compile("combined").unwrap();
        assert!(f.parse(b"").is_err());
        assert!(f.parse(b"\x16\x03\x01garbage").is_err());
        let f = LogFormat::compile("${host}$request_uri").unwrap();
        assert_eq!(f.warnings.len(), 1);
    }

    #[test]
    fn origins() {
        assert_eq!(origin(Some(b"-"), None), Origin::Nginx);
        assert_eq!(origin(Some(b"502"), Some(b"-")), Origin::Nginx);
        assert_eq!(origin(Some(b"502, 502"), Some(b"-, -")), Origin::Nginx);
        assert_eq!(origin(Some(b"502"), Some(b"0.001")), Origin::Upstream);
        assert_eq!(origin(Some(b"503"), None), Origin::Upstream);
        assert_eq!(origin(Some(b"502"), None), Origin::Unknown);
        assert_eq!(origin(None, None), Origin::Unknown);
    }
}
