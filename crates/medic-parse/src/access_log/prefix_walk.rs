//! The access-log scan's fast path: the first fields of a line, read before its end is known.
//!
//! A scan needs `$status` and the time of every line, and the rest only of the few lines that
//! matter (5xx, 499). The full parse finds the newline first (one pass over the whole line),
//! then walks the format's segments one by one. [`PrefixWalk`] is the same walk compiled for the
//! segments up to the last field wanted: one step per variable, each ended by the literal after
//! it, searched together with `\n` so that the walk stops at the end of the line. The scan then
//! looks for the newline only from where the walk stopped.
//!
//! It agrees with [`LogFormat::parse_prefix_into`] by construction: each step finds the first
//! occurrence of the same literal, as `find_literal` does, within the line (a literal holds no
//! `\n` or `\r`, so an occurrence before the first `\n` lies in the line the full parse sees, the
//! trailing `\r` cut off). Whatever it cannot do as the full parse does (list and unquoted
//! `$request` shapes, two variables with no text between them, a variable that runs to the end
//! of the line) makes [`LogFormat::prefix_walk`] return `None`; a line the walk does not get to
//! the end of (a short or foreign line) makes [`PrefixWalk::walk`] return `None`. Either way the
//! caller falls back to the full parse, which also says why a line does not fit.

use super::{escaped, has_prefix, AccessRecord, Escape, Field, LogFormat, Segment, Shape};

/// `$time_local` is always this long (`20/Nov/2026:14:32:10 +0100`).
const TIME_LOCAL_LEN: usize = 26;

/// One variable of the prefix and the literal that ends it.
#[derive(Debug)]
struct Step {
    field: Option<Field>,
    /// `$time_local`: the fixed width is tried before the search, as `value_end` does.
    time_local: bool,
    /// The literal after the variable.
    end: Literal,
    /// Whether that literal is part of the prefix (it is consumed), or only ends the last value.
    consume_end: bool,
}

/// A literal of the format: never empty, no `\n` or `\r`. Its first 8 bytes are kept as a word,
/// so that checking a candidate is one load and compare, not a loop over a length known only at
/// run time (the common literals, ` - `, ` [`, `] "`, `" `, are 1 to 3 bytes).
#[derive(Debug)]
struct Literal {
    bytes: Vec<u8>,
    head: u64,
    head_mask: u64,
}

impl Literal {
    fn new(bytes: &[u8]) -> Option<Literal> {
        if bytes.is_empty() || bytes.contains(&b'\n') || bytes.contains(&b'\r') {
            return None;
        }
        let n = bytes.len().min(8);
        let mut head = [0u8; 8];
        head[..n].copy_from_slice(&bytes[..n]);
        Some(Literal {
            bytes: bytes.to_vec(),
            head: u64::from_le_bytes(head),
            head_mask: u64::MAX >> (8 * (8 - n)),
        })
    }

    #[inline(always)]
    fn first(&self) -> u8 {
        self.bytes[0]
    }

    /// Whether `text[at..]` starts with the literal.
    #[inline(always)]
    fn is_at(&self, text: &[u8], at: usize) -> bool {
        match word(text, at) {
            Some(w) => {
                w & self.head_mask == self.head
                    && (self.bytes.len() <= 8 || has_prefix(&text[at + 8..], &self.bytes[8..]))
            }
            None => has_prefix(&text[at..], &self.bytes),
        }
    }
}

/// The 8 bytes at `at`, when there are 8.
#[inline(always)]
fn word(text: &[u8], at: usize) -> Option<u64> {
    let bytes: [u8; 8] = text.get(at..at + 8)?.try_into().ok()?;
    Some(u64::from_le_bytes(bytes))
}

const ONES: u64 = 0x0101_0101_0101_0101;

/// The high bit of each byte of `w` that equals `b` (exact for the lowest one, which is all
/// [`find_byte_or_newline`] reads: a borrow can only mark bytes above a match).
#[inline(always)]
fn bytes_equal(w: u64, b: u8) -> u64 {
    let x = w ^ (u64::from(b) * ONES);
    x.wrapping_sub(ONES) & !x & (ONES << 7)
}

/// The first `b` or `\n` from `from`. Most values before `$status` are a few bytes long (an
/// address, `-`, three digits), where memchr's setup and its mispredicted exit cost more than the
/// search: the first 16 bytes are tested at once, a word at a time, and memchr takes the rest.
#[inline(always)]
fn find_byte_or_newline(text: &[u8], from: usize, b: u8) -> Option<usize> {
    if let (Some(w0), Some(w1)) = (word(text, from), word(text, from + 8)) {
        let m0 = bytes_equal(w0, b) | bytes_equal(w0, b'\n');
        let m1 = bytes_equal(w1, b) | bytes_equal(w1, b'\n');
        let m = u128::from(m0) | (u128::from(m1) << 64);
        if m != 0 {
            return Some(from + (m.trailing_zeros() / 8) as usize);
        }
        return memchr::memchr2(b, b'\n', &text[from + 16..]).map(|i| from + 16 + i);
    }
    memchr::memchr2(b, b'\n', &text[from..]).map(|i| from + i)
}

/// The first segments of a [`LogFormat`], compiled by [`LogFormat::prefix_walk`].
#[derive(Debug)]
pub struct PrefixWalk {
    /// The literal the format begins with, if any.
    lead: Option<Literal>,
    steps: Vec<Step>,
    /// `escape=json`: a `"` may be escaped inside a value.
    json: bool,
}

impl LogFormat {
    /// Compiles the walk over the first `segments` segments (see [`LogFormat::prefix_for`]), or
    /// `None` when some of them need the full parse.
    pub fn prefix_walk(&self, segments: usize) -> Option<PrefixWalk> {
        let segments = segments.min(self.segments.len());
        let mut walk = PrefixWalk {
            lead: None,
            steps: Vec::new(),
            json: self.escape == Escape::Json,
        };
        for k in 0..segments {
            match &self.segments[k] {
                Segment::Literal(lit, _) if k == 0 => walk.lead = Some(Literal::new(lit)?),
                // The literal after a variable: found (and consumed) by that variable's step.
                Segment::Literal(..) => {}
                Segment::Var { field, shape, .. } => {
                    let time_local = match shape {
                        Shape::Plain => false,
                        Shape::TimeLocal => true,
                        Shape::RequestWords | Shape::List => return None,
                    };
                    let Some(Segment::Literal(end, _)) = self.segments.get(k + 1) else {
                        return None;
                    };
                    walk.steps.push(Step {
                        field: *field,
                        time_local,
                        end: Literal::new(end)?,
                        consume_end: k + 1 < segments,
                    });
                }
            }
        }
        Some(walk)
    }
}

impl PrefixWalk {
    /// Reads the prefix of the line that `text` begins with (`text` may hold the lines after it)
    /// into `rec`, and returns where the walk stopped: the newline is after that. `None`: the
    /// line ends before the prefix does, or does not fit it; the full parse decides.
    #[inline]
    pub fn walk<'a>(&self, text: &'a [u8], rec: &mut AccessRecord<'a>) -> Option<usize> {
        *rec = AccessRecord::default();
        let mut pos = 0;
        if let Some(lead) = &self.lead {
            if !lead.is_at(text, 0) {
                return None;
            }
            pos = lead.bytes.len();
        }
        for step in &self.steps {
            let end = if step.time_local && fixed_time_fits(text, pos, &step.end) {
                pos + TIME_LOCAL_LEN
            } else {
                self.find_in_line(text, pos, &step.end)?
            };
            if let Some(f) = step.field {
                // The first of a variable named twice counts, as in the full parse.
                rec.values[f as usize].get_or_insert(&text[pos..end]);
            }
            pos = if step.consume_end {
                end + step.end.bytes.len()
            } else {
                end
            };
        }
        Some(pos)
    }

    /// `find_literal`, stopping at the end of the line.
    #[inline(always)]
    fn find_in_line(&self, text: &[u8], from: usize, lit: &Literal) -> Option<usize> {
        let mut p = from;
        loop {
            let at = find_byte_or_newline(text, p, lit.first())?;
            if text[at] == b'\n' {
                return None;
            }
            let skip = self.json && lit.first() == b'"' && escaped(text, from, at);
            if !skip && lit.is_at(text, at) {
                return Some(at);
            }
            p = at + 1;
        }
    }
}

/// `value_end`'s first try for `$time_local`: 26 bytes, then the literal, all in the line.
#[inline(always)]
fn fixed_time_fits(text: &[u8], pos: usize, lit: &Literal) -> bool {
    let Some(time) = text.get(pos..pos + TIME_LOCAL_LEN) else {
        return false;
    };
    // Four overlapping words cover the 26 bytes: one test for a newline instead of 26.
    let newline = [0, 8, 16, TIME_LOCAL_LEN - 8]
        .iter()
        .filter_map(|&i| word(time, i))
        .fold(0, |m, w| m | bytes_equal(w, b'\n'));
    newline == 0 && lit.is_at(text, pos + TIME_LOCAL_LEN)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The walk and the full parse of the same prefix agree on `line` followed by more text.
    fn agree(f: &LogFormat, fields: &[Field], line: &[u8]) -> bool {
        let segments = f.prefix_for(fields);
        let walk = f.prefix_walk(segments).expect("a walkable format");
        let mut text = line.to_vec();
        text.extend_from_slice(b"\nnext line 200 [x] \"y\" - -");
        let mut fast = AccessRecord::default();
        let Some(stop) = walk.walk(&text, &mut fast) else {
            return false;
        };
        let mut full = AccessRecord::default();
        f.parse_prefix_into(line, segments, &mut full).unwrap();
        assert!(stop <= line.len());
        for field in Field::ALL {
            assert_eq!(fast.get(field), full.get(field), "{field:?} of {line:?}");
        }
        true
    }

    #[test]
    fn walks_the_common_formats() {
        let f = LogFormat::compile(super::super::COMBINED).unwrap();
        let line =
            b"1.2.3.4 - - [26/Oct/2023:00:00:01 +0000] \"GET /a HTTP/1.1\" 502 5 \"-\" \"curl\"";
        assert!(agree(&f, &[Field::Status, Field::TimeLocal], line));
        // A line that stops before `$status` ends is left to the full parse.
        let mut rec = AccessRecord::default();
        let walk = f.prefix_walk(f.prefix_for(&[Field::Status])).unwrap();
        assert_eq!(walk.walk(b"1.2.3.4 - - [x] \"GET\" 502\n", &mut rec), None);
        assert_eq!(walk.walk(b"1.2.3.4 - - [x]\n\"GET\" 502 1", &mut rec), None);
    }

    #[test]
    fn unusual_shapes_are_left_to_the_full_parse() {
        for format in [
            "$remote_addr $request $status",
            "$upstream_addr $status",
            "$remote_addr$status x",
            "$remote_addr $status",
        ] {
            let f = LogFormat::compile(format).unwrap();
            assert!(
                f.prefix_walk(f.prefix_for(&[Field::Status])).is_none(),
                "{format}"
            );
        }
    }
}
