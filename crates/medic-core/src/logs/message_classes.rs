//! The class and detail of messages seen before, so that a scan takes most entries' class from
//! a table instead of taking their message apart again.
//!
//! A log repeats a few dozen messages (`connect() failed (111: Connection refused) while
//! connecting to upstream`, `upstream timed out (110: ...) while reading response header from
//! upstream`); only the context after them changes. An entry's class and detail depend on its
//! level, its message and whether its context names an upstream, nothing else ([`classify`],
//! [`detail`](super::error_summary::detail)), so an entry equal in those three has the class and
//! detail of the one before it. On the 1 GiB benchmark log, finding the errno, the action and the
//! class again for each entry was a fifth of the scan's instructions.

use medic_parse::error_log::{classify, parse_message, FailureClass, Head, Level, Split};

use super::error_summary::{detail_ref, DetailRef};

/// Table slots: a power of two. More than the messages a log repeats, so that they seldom
/// evict each other.
const SLOTS: usize = 512;
/// How many misses a slot's message outlasts at most.
const MAX_CREDIT: u8 = 4;
/// Longer messages (FastCGI stderr, Lua tracebacks) seldom repeat: not kept.
const MAX_MESSAGE: usize = 256;

/// A direct-mapped table: each message has one slot, and a different message there replaces it
/// once it has missed as often as the one there was found since: a message seen once (a limit's
/// excess, a path not found) no longer evicts one seen often (the 1 GiB benchmark log: 601,579
/// misses in 2.2 M lookups, 551,515 with this).
#[derive(Debug)]
pub(crate) struct MessageClasses {
    slots: Vec<Option<Slot>>,
}

#[derive(Debug)]
struct Slot {
    /// Hits, less the misses it outlasted since (at most [`MAX_CREDIT`]).
    credit: u8,
    level: Level,
    upstream: bool,
    message: Vec<u8>,
    class: FailureClass,
    detail: Kept,
}

/// A detail as kept: fixed, or where it is in the message.
#[derive(Clone, Copy, Debug)]
enum Kept {
    None,
    Fixed(&'static [u8]),
    At(usize, usize),
}

impl Default for MessageClasses {
    fn default() -> Self {
        MessageClasses {
            slots: (0..SLOTS).map(|_| None).collect(),
        }
    }
}

impl MessageClasses {
    /// The class and detail of an entry with this head and split: from the table, or worked
    /// out (and kept).
    #[inline]
    pub(crate) fn class<'a>(
        &mut self,
        head: &Head,
        split: Split<'a>,
    ) -> (FailureClass, Option<&'a [u8]>) {
        let message = split.message;
        let upstream = split.context.upstream.is_some();
        if message.len() > MAX_MESSAGE {
            return work_out(head, split);
        }
        let slot = &mut self.slots[index(head.level, upstream, message)];
        if let Some(s) = slot.as_mut() {
            if s.level == head.level && s.upstream == upstream && s.message == message {
                s.credit = s.credit.saturating_add(1).min(MAX_CREDIT);
                let detail = match s.detail {
                    Kept::None => None,
                    Kept::Fixed(f) => Some(f),
                    Kept::At(start, end) => Some(&message[start..end]),
                };
                return (s.class, detail);
            }
        }
        let (class, detail) = work_out_ref(head, split);
        let kept = match detail {
            None => Kept::None,
            Some(DetailRef::Fixed(f)) => Kept::Fixed(f),
            Some(DetailRef::Text(t)) => match place(message, t) {
                Some((start, end)) => Kept::At(start, end),
                // Not a part of the message: worked out again each time.
                None => return (class, Some(t)),
            },
        };
        match slot {
            Some(s) if s.credit > 0 => s.credit -= 1,
            Some(s) => {
                s.level = head.level;
                s.upstream = upstream;
                s.message.clear();
                s.message.extend_from_slice(message);
                s.class = class;
                s.detail = kept;
            }
            None => {
                *slot = Some(Slot {
                    credit: 0,
                    level: head.level,
                    upstream,
                    message: message.to_vec(),
                    class,
                    detail: kept,
                })
            }
        }
        (class, detail.map(DetailRef::bytes))
    }
}

fn work_out<'a>(head: &Head, split: Split<'a>) -> (FailureClass, Option<&'a [u8]>) {
    let (class, detail) = work_out_ref(head, split);
    (class, detail.map(DetailRef::bytes))
}

fn work_out_ref<'a>(head: &Head, split: Split<'a>) -> (FailureClass, Option<DetailRef<'a>>) {
    let entry = parse_message(head, split);
    let class = classify(&entry);
    (
        class,
        detail_ref(class, head.level, entry.message, entry.action),
    )
}

/// Where `part` is in `whole`, when it is a part of it.
fn place(whole: &[u8], part: &[u8]) -> Option<(usize, usize)> {
    let start = (part.as_ptr() as usize).checked_sub(whole.as_ptr() as usize)?;
    let end = start + part.len();
    (end <= whole.len()).then_some((start, end))
}

/// The slot of a message: from its length, its first and last eight bytes and the two flags,
/// which tell the messages of a log apart about as well as hashing all of it, for less.
#[inline]
fn index(level: Level, upstream: bool, message: &[u8]) -> usize {
    let word = |b: &[u8]| {
        let mut w = [0u8; 8];
        w[..b.len()].copy_from_slice(b);
        u64::from_le_bytes(w)
    };
    let n = message.len();
    let first = word(&message[..n.min(8)]);
    let last = word(&message[n.saturating_sub(8)..]);
    let h = (first ^ last.rotate_left(29) ^ (n as u64) << 40 ^ (level as u64) << 8)
        .wrapping_add(u64::from(upstream))
        .wrapping_mul(0x9e37_79b9_7f4a_7c15);
    (h >> (64 - SLOTS.trailing_zeros())) as usize
}

#[cfg(test)]
mod tests {
    use super::*;
    use medic_parse::error_log::{parse_head, parse_rest_lean, split_lean};

    /// Each line's class and detail through the table, the second time from it, against the
    /// same worked out afresh.
    #[test]
    fn the_table_answers_as_working_out_would() {
        let lines: Vec<String> = [
            "connect() failed (111: Connection refused) while connecting to upstream, client: 10.0.0.1, server: a, request: \"GET / HTTP/1.1\", upstream: \"http://10.0.0.2:80/\"",
            "connect() failed (111: Connection refused) while connecting to upstream, client: 10.0.0.9, server: b, request: \"GET /x HTTP/1.1\", upstream: \"http://10.0.0.3:80/x\"",
            // The same message without an upstream, and at another level.
            "connect() failed (111: Connection refused) while connecting to upstream, client: 10.0.0.1, server: a",
            "upstream timed out (110: Connection timed out) while reading upstream, client: 1.2.3.4, server: a, request: \"GET / HTTP/1.1\", upstream: \"http://u/\"",
            "limiting requests, excess: 0.500 by zone \"one\", client: 1.2.3.4, server: a, request: \"GET / HTTP/1.1\"",
            "limiting requests, excess: 0.500 by zone \"two\", client: 1.2.3.4, server: a, request: \"GET / HTTP/1.1\"",
            "SSL_do_handshake() failed (SSL: error:0A000086:SSL routines::certificate verify failed) while SSL handshaking to upstream, client: 1.2.3.4, server: a, request: \"GET / HTTP/1.1\", upstream: \"https://10.0.0.2:443/\"",
            "FastCGI sent in stderr: \"Primary script unknown\" while reading response header from upstream, client: 1.2.3.4, server: a, request: \"GET / HTTP/1.1\", upstream: \"fastcgi://unix:/run/php.sock:\"",
            "upstream SSL certificate does not match \"x\" while SSL handshaking to upstream, client: 1.2.3.4, server: a, request: \"GET / HTTP/1.1\", upstream: \"https://10.0.0.2:443/\"",
            "backend.internal could not be resolved (3: Host not found), client: 1.2.3.4, server: a, request: \"GET / HTTP/1.1\"",
            "no live upstreams while connecting to upstream, client: 1.2.3.4, server: a, request: \"GET / HTTP/1.1\", upstream: \"http://pool/\"",
            "a",
            "",
        ]
        .iter()
        .flat_map(|m| {
            ["error", "warn", "emerg"]
                .map(|l| format!("2026/11/20 14:32:10 [{l}] 1#1: *1 {m}"))
        })
        .collect();
        let mut table = MessageClasses::default();
        for pass in 0..2 {
            for line in &lines {
                let e = line.as_bytes();
                let head = parse_head(e).unwrap();
                let whole = parse_rest_lean(e, &head);
                let class = classify(&whole);
                let want = (
                    class,
                    super::super::error_summary::detail(
                        class,
                        head.level,
                        whole.message,
                        whole.action,
                    ),
                );
                assert_eq!(
                    table.class(&head, split_lean(e, &head)),
                    want,
                    "pass {pass}: {line}"
                );
            }
        }
    }
}
