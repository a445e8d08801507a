//! Log summaries: what the error and access logs say, per failure class, upstream and minute.
//!
//! [`ErrorSummary`] and [`AccessSummary`] are [`ChunkSink`](medic_parse::input::ChunkSink)s: the
//! reader feeds them chunks of lines, one summary per thread, and they merge afterwards. Memory is
//! bounded by the number of distinct (class, upstream) pairs and minutes, never by the input.
//! [`report::LogReport`] is the serialisable result (`nginx-medic logs --format json`, documented
//! in `docs/logs-json.md`).

pub mod access_summary;
pub mod entry_text;
pub mod error_summary;
pub mod join;
mod message_classes;
pub mod report;

pub use access_summary::AccessSummary;
pub use error_summary::ErrorSummary;

use medic_parse::input::LineLoc;
use medic_parse::time::LogTime;

/// `--since` / `--until`, both inclusive, on nginx's wall clock.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Window {
    pub since: Option<LogTime>,
    pub until: Option<LogTime>,
}

impl Window {
    #[inline]
    pub fn contains(&self, t: LogTime) -> bool {
        self.since.is_none_or(|s| t >= s) && self.until.is_none_or(|u| t <= u)
    }

    pub fn is_set(&self) -> bool {
        self.since.is_some() || self.until.is_some()
    }
}

/// Lines that could not be read as log records: all counted, the first few kept as samples.
#[derive(Clone, Debug, Default)]
pub struct Samples {
    pub count: u64,
    /// (where, why, the start of the line)
    pub samples: Vec<(LineLoc, String, Box<[u8]>)>,
}

impl Samples {
    pub const KEEP: usize = 20;
    const TEXT: usize = 240;

    /// Counts a line and keeps it as a sample while there is room. `text` may be empty (an
    /// overlong line is reported without its bytes).
    pub fn add(&mut self, at: LineLoc, reason: impl Into<String>, text: &[u8]) {
        self.count += 1;
        if self.samples.len() < Self::KEEP {
            self.samples
                .push((at, reason.into(), text[..text.len().min(Self::TEXT)].into()));
        }
    }

    /// Keeps the earliest samples in input order.
    pub fn merge(&mut self, o: Samples) {
        self.count += o.count;
        self.samples.extend(o.samples);
        self.samples.sort_by_key(|s| s.0);
        self.samples.truncate(Self::KEEP);
    }
}

/// A request line reduced to what identifies the endpoint: `GET /api/x?id=1 HTTP/1.1` becomes
/// `GET /api/x` (query strings would make every request distinct).
pub fn request_key(request: &[u8]) -> &[u8] {
    let Some(sp) = memchr::memchr(b' ', request) else {
        return request;
    };
    let rest = &request[sp + 1..];
    let end = memchr::memchr2(b'?', b' ', rest).unwrap_or(rest.len());
    &request[..sp + 1 + end]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_keys() {
        assert_eq!(request_key(b"GET /a/b?x=1 HTTP/1.1"), b"GET /a/b");
        assert_eq!(request_key(b"POST /x HTTP/2.0"), b"POST /x");
        assert_eq!(request_key(b"\x16\x03\x01"), b"\x16\x03\x01");
        assert_eq!(request_key(b"GET /"), b"GET /");
    }
}
