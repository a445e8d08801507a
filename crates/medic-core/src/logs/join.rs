//! Joining error-log failures with the access-log lines of the same requests.
//!
//! nginx writes the error entry when the attempt fails and the access line when the request
//! ends, from the same worker, in local time: the same client and request line, the access line
//! at the same second or a little later (a timeout, a retry to the next peer). The index keeps a
//! 64-bit hash of (second, client, request) per failure; it is capped so memory stays flat, and
//! the report says when the cap was reached.

use foldhash::{HashMap, HashMapExt, HashSet};
use medic_parse::error_log::FailureClass;
use medic_parse::time::LogTime;
use std::hash::{BuildHasher, Hasher};

/// Failures indexed at most; about 16 MiB.
pub const CAPACITY: usize = 1 << 20;
/// How many seconds before the access line the failure may have been logged.
pub const LOOKBACK_SECS: i64 = 2;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct JoinKey(u64);

impl JoinKey {
    /// `upstream` is the peer as [`medic_parse::upstream::target`] names it (`-` for none), when
    /// the access log records `$upstream_addr`: it tells apart the same request from the same
    /// client in the same second going to different peers (retries, `limit_req` rejections).
    pub fn new(t: LogTime, client: &[u8], request: &[u8], upstream: Option<&[u8]>) -> JoinKey {
        // Fixed seed: keys made by different threads must agree.
        let mut h = foldhash::fast::FixedState::with_seed(0x6e67_696e_785f_6d65).build_hasher();
        h.write_i64(t.0);
        h.write(client);
        h.write_u8(0xff);
        h.write(request);
        if let Some(u) = upstream {
            h.write_u8(0xfe);
            h.write(u);
        }
        JoinKey(h.finish())
    }
}

#[derive(Debug, Default)]
pub struct JoinIndex {
    map: HashMap<JoinKey, FailureClass>,
    /// Keys carry the upstream (the access log has `$upstream_addr`).
    pub with_upstream: bool,
    /// Failures not indexed because the index was full.
    pub dropped: u64,
    /// The seconds of failures logged after the response header (`while reading upstream`):
    /// their clients got a 2xx/3xx, which the access scan otherwise skips unparsed.
    after_header: HashSet<i64>,
    /// The generation before the last [`JoinIndex::age`] (`watch` keeps two): a failure is
    /// still found a moment after its generation aged.
    prev: HashMap<JoinKey, FailureClass>,
    prev_after_header: HashSet<i64>,
}

impl JoinIndex {
    pub fn new(with_upstream: bool) -> JoinIndex {
        JoinIndex {
            with_upstream,
            ..JoinIndex::default()
        }
    }

    pub fn insert(&mut self, key: JoinKey, class: FailureClass) {
        if self.map.len() >= CAPACITY && !self.map.contains_key(&key) {
            self.dropped += 1;
            return;
        }
        // A later failure of the same request (the next peer) is the one that decided the answer.
        self.map.insert(key, class);
    }

    /// Notes a failure after the response header at `t` (see [`JoinIndex::after_header_near`]).
    pub fn note_after_header(&mut self, t: LogTime) {
        if self.after_header.len() < CAPACITY {
            self.after_header.insert(t.0);
        }
    }

    /// Whether a failure after the response header was logged shortly before `t`: an access line
    /// with a good status then may be its cut-off response.
    pub fn after_header_near(&self, t: LogTime) -> bool {
        let near = |set: &HashSet<i64>| {
            !set.is_empty() && (0..=LOOKBACK_SECS).any(|back| set.contains(&(t.0 - back)))
        };
        near(&self.after_header) || near(&self.prev_after_header)
    }

    /// Starts a new generation and forgets the one before: `watch` ages its index every
    /// little while, so memory stays flat however long it runs, while an access line still
    /// finds a failure logged up to one generation earlier.
    pub fn age(&mut self) {
        self.prev = std::mem::take(&mut self.map);
        self.prev_after_header = std::mem::take(&mut self.after_header);
        self.dropped = 0;
    }

    /// The failure behind an access line ending at `t`, if one was logged shortly before.
    pub fn lookup(
        &self,
        t: LogTime,
        client: &[u8],
        request: &[u8],
        upstream: Option<&[u8]>,
    ) -> Option<FailureClass> {
        (0..=LOOKBACK_SECS).find_map(|back| {
            let key = JoinKey::new(LogTime(t.0 - back), client, request, upstream);
            self.map.get(&key).or_else(|| self.prev.get(&key)).copied()
        })
    }

    pub fn merge(&mut self, o: JoinIndex) {
        self.dropped += o.dropped;
        self.with_upstream = o.with_upstream;
        if self.map.capacity() == 0 {
            self.map = HashMap::with_capacity(o.map.len());
        }
        for (k, c) in o.map {
            self.insert(k, c);
        }
        for t in o.after_header {
            self.note_after_header(LogTime(t));
        }
    }

    pub fn len(&self) -> usize {
        self.map.len()
    }

    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }
}
