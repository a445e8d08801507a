//! The JSON `crossplane parse` 0.5.8 prints, byte for byte: its payload
//! (`{"status","errors","config":[{"file","status","errors","parsed"}]}`), its key order, and
//! Python's `json.dumps` escaping with `ensure_ascii=True` (every non-ASCII character and DEL as
//! `\uXXXX`, astral ones as surrogate pairs, lowercase hex).

use std::ops::Range;

use super::{Config, ConfigError, ConfigFile, Directive};

/// How to print.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct JsonStyle {
    /// The config was parsed with `--single-file`: `include` directives carry no `"includes"`.
    pub single_file: bool,
    /// `--indent N`; `None` is the compact default (`separators=(',', ':')`).
    pub indent: Option<usize>,
}

/// The whole payload, with crossplane's trailing newline.
pub fn to_json(config: &Config, style: JsonStyle) -> String {
    let mut payload = JsonPayload::new(style);
    for f in &config.files {
        payload.push(f);
    }
    let mut buf = Vec::new();
    // Writing to a Vec cannot fail.
    let _ = payload.write(&mut buf);
    String::from_utf8(buf).unwrap_or_default()
}

/// The payload, built one file at a time so that the caller can drop each file's tree once it
/// is printed ([`super::parse_each`]). Crossplane prints the `status` and `errors` of the whole
/// config before the first file, so the files' JSON is kept until [`JsonPayload::write`].
pub struct JsonPayload {
    style: JsonStyle,
    /// Every file's errors, in file order.
    errors: Vec<ConfigError>,
    files: Vec<FileJson>,
    /// The buffers of each parse thread that the files' pieces point into ([`JsonArena`]).
    arenas: Vec<Vec<String>>,
}

/// One file's object of the payload's `config` list, as JSON. Made on the thread that parsed
/// the file, while the other parses the next one.
pub struct FileJson {
    /// The buffers the writer filled, kept as they are: a file's JSON can be megabytes, which
    /// one growing buffer would copy over and over.
    pieces: Vec<Piece>,
    /// Text printed inside the pieces, at (piece, byte offset), in order: the ids of the files
    /// an `include` names, known only once the file is numbered ([`JsonBody`]), as ranges of
    /// `inserted`.
    inserts: Vec<(usize, usize, Range<usize>)>,
    inserted: String,
}

impl FileJson {
    pub fn new(f: &ConfigFile, style: JsonStyle) -> FileJson {
        let mut pieces = Vec::new();
        // The first buffer sized from the file's length: growing it by doubling copied as much
        // as was written. Compact JSON is about 1.6 times its config, indented about 4 times.
        let source = f.parsed.last().map_or(0, |d| d.span().end);
        let factor = if style.indent.is_some() { 4 } else { 2 };
        let first = String::with_capacity((source * factor).clamp(1024, Writer::CAPACITY));
        // Files are items of the `config` list: two levels down.
        let mut w = Writer::new(style.indent, 2, first, &mut pieces);
        w.newline();
        w.file_head(f);
        w.block(&f.parsed, style.single_file);
        w.close('}', false);
        w.finish();
        FileJson {
            pieces: pieces.into_iter().map(Piece::Own).collect(),
            inserts: Vec::new(),
            inserted: String::new(),
        }
    }

    /// A file's object around the `parsed` list its parse wrote ([`JsonBody`]), compact.
    pub(crate) fn from_body(f: &ConfigFile, body: WrittenBody) -> FileJson {
        let mut head = Vec::with_capacity(1);
        let mut w = Writer::new(None, 2, String::with_capacity(256), &mut head);
        w.file_head(f);
        w.out.push('[');
        w.finish();
        let mut pieces: Vec<Piece> = head.into_iter().map(Piece::Own).collect();
        let shift = pieces.len();
        pieces.extend(body.pieces.into_iter().map(|(chunk, range)| Piece::Arena {
            slot: body.slot,
            chunk,
            range,
        }));
        pieces.push(Piece::Own("]}".to_owned()));
        let inserts = body
            .holes
            .into_iter()
            .map(|h| (h.piece + shift, h.at, h.text))
            .collect();
        FileJson {
            pieces,
            inserts,
            inserted: body.ids,
        }
    }
}

/// A piece of a file's JSON: a buffer of its own, or bytes of a parse thread's [`JsonArena`].
#[derive(Debug)]
enum Piece {
    Own(String),
    Arena {
        slot: usize,
        chunk: usize,
        range: Range<usize>,
    },
}

/// The buffers one parse thread writes the JSON of its files into, one file after the other.
/// Every file's JSON in a buffer of its own, sized from the file, left the 9 MB of a
/// 5,000-server config's JSON in buffers of a hundred sizes, which mimalloc keeps in pages of
/// their own, half used, each faulted in as a huge page: the kernel zeroing them was 35% of
/// `config parse`'s CPU samples on our VM, 11% with this arena. Here they are a few buffers of
/// one size, full but for the last.
#[derive(Debug, Default)]
pub(crate) struct JsonArena {
    /// Which thread's: how [`Piece::Arena`] names it.
    pub(crate) slot: usize,
    pub(crate) chunks: Vec<String>,
}

impl JsonArena {
    /// A buffer is closed once it holds this much, at the end of an item...
    pub(crate) const CHUNK: usize = 1 << 20;
    /// ...so it is given room for one item more, mostly.
    const CAPACITY: usize = Self::CHUNK + 16 * 1024;

    pub(crate) fn new(slot: usize) -> JsonArena {
        JsonArena {
            slot,
            chunks: Vec::new(),
        }
    }
}

/// The compact JSON of one file's `parsed` list (its items, without the brackets), written by
/// the parser as it reads the directives, with no tree in between (`config parse`), into the
/// parse thread's [`JsonArena`] after the files it wrote before. The ids of the files each
/// `include` names are holes, filled by [`WrittenBody::number`] once the file is numbered.
#[derive(Debug)]
pub(crate) struct JsonBody {
    /// The arena's buffers but the last, which is `out`, being written.
    arena: JsonArena,
    out: String,
    /// Where the file's JSON starts: the buffer, and the byte in it.
    start: (usize, usize),
    /// At (buffer of the arena, byte in it).
    holes: Vec<Hole>,
    /// The local indices of every hole, one after the other (one list per file: a list per
    /// include was 12,000 small allocations on the 5,000-server config).
    locals: Vec<usize>,
    /// No item written yet in the list being written.
    first: bool,
    single_file: bool,
}

#[derive(Debug)]
struct Hole {
    piece: usize,
    at: usize,
    /// The hole's local indices in `locals`, then its text in `ids`.
    local: Range<usize>,
    text: Range<usize>,
}

/// A [`JsonBody`] written: where its JSON is in its thread's arena, and its holes.
#[derive(Debug, Default)]
pub(crate) struct WrittenBody {
    slot: usize,
    /// Buffer of the arena, bytes in it.
    pieces: Vec<(usize, Range<usize>)>,
    /// At (one of `pieces`, byte from its start).
    holes: Vec<Hole>,
    locals: Vec<usize>,
    /// Once numbered, the holes' ids as text.
    ids: String,
}

impl JsonBody {
    pub(crate) fn new(mut arena: JsonArena, single_file: bool) -> JsonBody {
        let out = arena
            .chunks
            .pop()
            .unwrap_or_else(|| String::with_capacity(JsonArena::CAPACITY));
        let start = (arena.chunks.len(), out.len());
        JsonBody {
            arena,
            out,
            start,
            holes: Vec::new(),
            locals: Vec::new(),
            first: true,
            single_file,
        }
    }

    fn item(&mut self) {
        if !self.first {
            self.out.push(',');
        }
        self.first = false;
    }

    /// `{"directive":...,"line":...,"args":[...]` and the includes: an item's head.
    fn head(&mut self, name: &str, line: u32, args: &[&str], includes: Option<Vec<usize>>) {
        self.item();
        let out = &mut self.out;
        out.push_str("{\"directive\":");
        escape_into(out, name);
        out.push_str(",\"line\":");
        out.push_str(itoa::Buffer::new().format(line));
        out.push_str(",\"args\":[");
        for (i, a) in args.iter().enumerate() {
            if i > 0 {
                out.push(',');
            }
            escape_into(out, a);
        }
        out.push(']');
        if !self.single_file && name == "include" {
            self.out.push_str(",\"includes\":[");
            let local = includes.unwrap_or_default();
            if !local.is_empty() {
                let start = self.locals.len();
                self.locals.extend_from_slice(&local);
                self.holes.push(Hole {
                    piece: self.arena.chunks.len(),
                    at: self.out.len(),
                    local: start..self.locals.len(),
                    text: 0..0,
                });
            }
            self.out.push(']');
        }
    }

    /// A directive; with `block`, its block's items follow, then [`JsonBody::close`].
    pub(crate) fn directive(
        &mut self,
        name: &str,
        line: u32,
        args: &[&str],
        includes: Option<Vec<usize>>,
        block: bool,
    ) {
        self.head(name, line, args, includes);
        if block {
            self.out.push_str(",\"block\":[");
            self.first = true;
        } else {
            self.out.push('}');
            self.done();
        }
    }

    pub(crate) fn close(&mut self) {
        self.out.push_str("]}");
        self.first = false;
        self.done();
    }

    /// A comment kept as a directive named `#`.
    pub(crate) fn comment(&mut self, text: &str, line: u32) {
        self.item();
        self.out.push_str("{\"directive\":\"#\",\"line\":");
        self.out.push_str(itoa::Buffer::new().format(line));
        self.out.push_str(",\"args\":[],\"comment\":");
        escape_into(&mut self.out, text);
        self.out.push('}');
        self.done();
    }

    /// After an item: a full buffer is kept and another started (only between items, so that
    /// a hole is always in the buffer being written).
    fn done(&mut self) {
        if self.out.len() >= JsonArena::CHUNK {
            let full = std::mem::replace(&mut self.out, String::with_capacity(JsonArena::CAPACITY));
            self.arena.chunks.push(full);
        }
    }

    /// Ends the writing: the arena, to write the next file into, and where this one is.
    pub(crate) fn finish(self) -> (JsonArena, WrittenBody) {
        let JsonBody {
            mut arena,
            out,
            start,
            holes,
            locals,
            ..
        } = self;
        arena.chunks.push(out);
        let (first, from) = start;
        let pieces: Vec<(usize, Range<usize>)> = (first..arena.chunks.len())
            .map(|c| {
                let begin = if c == first { from } else { 0 };
                (c, begin..arena.chunks[c].len())
            })
            .filter(|(_, r)| !r.is_empty())
            .collect();
        // Holes at (buffer, byte) to (piece, byte from the piece's start). A hole is never at
        // the start of an empty piece: it follows `"includes":[`.
        let holes = holes
            .into_iter()
            .map(|h| {
                let k = pieces.partition_point(|(c, _)| *c < h.piece);
                Hole {
                    piece: k,
                    at: h.at - pieces[k].1.start,
                    ..h
                }
            })
            .collect();
        let written = WrittenBody {
            slot: arena.slot,
            pieces,
            holes,
            locals,
            ids: String::new(),
        };
        (arena, written)
    }
}

impl WrittenBody {
    /// Writes the ids of the files the includes name: `ids[i]` for local index `i`.
    pub(crate) fn number(&mut self, ids: &[usize]) {
        let mut buf = itoa::Buffer::new();
        for h in &mut self.holes {
            let start = self.ids.len();
            for (k, &i) in self.locals[h.local.clone()].iter().enumerate() {
                if k > 0 {
                    self.ids.push(',');
                }
                self.ids.push_str(buf.format(ids[i]));
            }
            h.text = start..self.ids.len();
        }
    }
}

impl JsonPayload {
    pub fn new(style: JsonStyle) -> JsonPayload {
        JsonPayload {
            style,
            errors: Vec::new(),
            files: Vec::new(),
            arenas: Vec::new(),
        }
    }

    /// The arenas the files' JSON points into, by slot.
    pub(crate) fn set_arenas(&mut self, arenas: Vec<Vec<String>>) {
        self.arenas = arenas;
    }

    fn bytes<'a>(&'a self, piece: &'a Piece) -> &'a [u8] {
        match piece {
            Piece::Own(s) => s.as_bytes(),
            Piece::Arena { slot, chunk, range } => self
                .arenas
                .get(*slot)
                .and_then(|a| a.get(*chunk))
                .and_then(|c| c.as_bytes().get(range.clone()))
                .unwrap_or_default(),
        }
    }

    /// Adds the next file of the config (files come in [`Config::files`] order).
    pub fn push(&mut self, f: &ConfigFile) {
        let json = FileJson::new(f, self.style);
        self.push_json(f, json);
    }

    /// Adds the next file, its JSON made already ([`FileJson::new`] with this payload's style).
    pub fn push_json(&mut self, f: &ConfigFile, json: FileJson) {
        self.errors.extend(f.errors.iter().cloned());
        self.files.push(json);
    }

    /// Prints the payload to `sink`: the files' JSON as it was made, in as few writes as the
    /// sink takes (`writev`).
    pub fn write(self, sink: &mut dyn std::io::Write) -> std::io::Result<()> {
        let mut head = Vec::new();
        let mut w = Writer::new(self.style.indent, 0, String::new(), &mut head);
        w.open('{');
        w.key("status", true);
        w.str(if self.errors.is_empty() {
            "ok"
        } else {
            "failed"
        });
        w.key("errors", false);
        w.list(self.errors.iter(), |w, e| w.error(e, true));
        w.key("config", false);
        w.open('[');
        let level = w.level;
        w.finish();
        let mut tail = Vec::new();
        let mut w = Writer::new(self.style.indent, level, String::new(), &mut tail);
        w.close(']', self.files.is_empty());
        w.close('}', false);
        w.out.push('\n');
        w.finish();

        let mut parts: Vec<&[u8]> = head.iter().map(|p| p.as_bytes()).collect();
        for (i, file) in self.files.iter().enumerate() {
            if i > 0 {
                parts.push(b",");
            }
            let mut inserts = file.inserts.iter().peekable();
            for (k, piece) in file.pieces.iter().enumerate() {
                let piece = self.bytes(piece);
                let mut from = 0;
                while let Some((_, at, text)) = inserts.next_if(|(p, _, _)| *p == k) {
                    parts.push(&piece[from..*at]);
                    parts.push(&file.inserted.as_bytes()[text.clone()]);
                    from = *at;
                }
                parts.push(&piece[from..]);
            }
        }
        parts.extend(tail.iter().map(|p| p.as_bytes()));
        write_all_parts(sink, &parts)
    }
}

/// Writes `parts` in order, as many at a time as the sink takes (`writev`: a config's
/// files are hundreds of small pieces).
fn write_all_parts(sink: &mut dyn std::io::Write, mut parts: &[&[u8]]) -> std::io::Result<()> {
    use std::io::{ErrorKind, IoSlice};
    // Bytes of `parts[0]` already written.
    let mut done = 0;
    while let Some(first) = parts.first() {
        let slices: Vec<IoSlice<'_>> = std::iter::once(&first[done..])
            .chain(parts[1..].iter().copied())
            // IOV_MAX on Linux.
            .take(1024)
            .map(IoSlice::new)
            .collect();
        let mut n = match sink.write_vectored(&slices) {
            Ok(0) => return Err(ErrorKind::WriteZero.into()),
            Ok(n) => n,
            Err(e) if e.kind() == ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        while let Some(first) = parts.first() {
            let left = first.len() - done;
            if n < left {
                done += n;
                break;
            }
            n -= left;
            parts = &parts[1..];
            done = 0;
        }
    }
    Ok(())
}

/// Writes JSON into buffers of about [`Writer::CHUNK`] bytes, keeping each full one as it is.
struct Writer<'a> {
    out: String,
    indent: Option<usize>,
    level: usize,
    pieces: &'a mut Vec<String>,
}

impl<'a> Writer<'a> {
    const CHUNK: usize = 64 * 1024;
    /// A buffer fills to [`Writer::CHUNK`] plus one directive's worth, mostly.
    const CAPACITY: usize = Self::CHUNK + 4096;

    /// A writer at depth `level` that fills `out`, then new buffers, into `pieces`.
    fn new(indent: Option<usize>, level: usize, out: String, pieces: &'a mut Vec<String>) -> Self {
        Writer {
            out,
            indent,
            level,
            pieces,
        }
    }

    /// Keeps the full buffer and starts another.
    fn flush(&mut self) {
        let full = std::mem::replace(&mut self.out, String::with_capacity(Self::CAPACITY));
        self.pieces.push(full);
    }

    /// Keeps what is left.
    fn finish(self) {
        if !self.out.is_empty() {
            self.pieces.push(self.out);
        }
    }

    fn int(&mut self, n: u64) {
        self.out.push_str(itoa::Buffer::new().format(n));
    }

    fn newline(&mut self) {
        if let Some(n) = self.indent {
            self.out.push('\n');
            for _ in 0..n * self.level {
                self.out.push(' ');
            }
        }
    }

    fn open(&mut self, c: char) {
        self.out.push(c);
        self.level += 1;
    }

    fn close(&mut self, c: char, empty: bool) {
        self.level -= 1;
        if !empty {
            self.newline();
        }
        self.out.push(c);
    }

    fn key(&mut self, k: &str, first: bool) {
        if !first {
            self.out.push(',');
        }
        self.newline();
        self.str(k);
        self.out
            .push_str(if self.indent.is_some() { ": " } else { ":" });
    }

    fn list<I, T>(&mut self, items: I, mut f: impl FnMut(&mut Self, T))
    where
        I: Iterator<Item = T>,
    {
        self.open('[');
        let mut empty = true;
        for item in items {
            if !empty {
                self.out.push(',');
            }
            empty = false;
            self.newline();
            f(self, item);
        }
        self.close(']', empty);
    }

    fn error(&mut self, e: &ConfigError, with_file: bool) {
        self.open('{');
        if with_file {
            self.key("file", true);
            self.str(&e.file.to_string_lossy());
        }
        self.key("error", !with_file);
        let msg = if e.crossplane_tail() {
            match e.line {
                Some(l) => format!("{} in {}:{}", e.message, e.file.display(), l),
                None => format!("{} in {}", e.message, e.file.display()),
            }
        } else {
            e.message.clone()
        };
        self.str(&msg);
        self.key("line", false);
        match e.line {
            Some(l) => self.int(u64::from(l)),
            None => self.out.push_str("null"),
        }
        self.close('}', false);
    }

    /// A file's object up to its `parsed` list: `{"file":...,"status":...,"errors":[...],"parsed":`.
    fn file_head(&mut self, f: &ConfigFile) {
        self.open('{');
        self.key("file", true);
        self.str(&f.path.to_string_lossy());
        self.key("status", false);
        self.str(if f.errors.is_empty() { "ok" } else { "failed" });
        self.key("errors", false);
        self.list(f.errors.iter(), |w, e| w.error(e, false));
        self.key("parsed", false);
    }

    fn block(&mut self, ds: &[Directive], single: bool) {
        self.list(ds.iter(), |w, d| w.directive(d, single));
    }

    fn directive(&mut self, d: &Directive, single: bool) {
        if self.indent.is_none() && d.comment().is_none() {
            return self.directive_compact(d, single);
        }
        self.open('{');
        self.key("directive", true);
        self.str(&d.name);
        self.key("line", false);
        self.int(u64::from(d.line));
        self.key("args", false);
        self.list(d.args.iter(), |w, a| w.str(a));
        if let Some(c) = d.comment() {
            self.key("comment", false);
            self.str(c);
        } else {
            if !single && d.name == "include" {
                self.key("includes", false);
                self.list(d.includes().iter(), |w, &i| w.int(i as u64));
            }
            if let Some(b) = &d.block {
                self.key("block", false);
                self.block(b, single);
            }
        }
        self.close('}', false);
        if self.out.len() >= Self::CHUNK {
            self.flush();
        }
    }

    /// The compact form of the common case, written straight out (the hot loop of a big
    /// config's JSON).
    fn directive_compact(&mut self, d: &Directive, single: bool) {
        self.out.push_str("{\"directive\":");
        escape_into(&mut self.out, &d.name);
        self.out.push_str(",\"line\":");
        self.int(u64::from(d.line));
        self.out.push_str(",\"args\":[");
        for (i, a) in d.args.iter().enumerate() {
            if i > 0 {
                self.out.push(',');
            }
            escape_into(&mut self.out, a);
        }
        self.out.push(']');
        if !single && d.name == "include" {
            self.out.push_str(",\"includes\":[");
            for (i, &f) in d.includes().iter().enumerate() {
                if i > 0 {
                    self.out.push(',');
                }
                self.int(f as u64);
            }
            self.out.push(']');
        }
        if let Some(b) = &d.block {
            self.out.push_str(",\"block\":[");
            for (i, c) in b.iter().enumerate() {
                if i > 0 {
                    self.out.push(',');
                }
                self.directive(c, single);
            }
            self.out.push(']');
        }
        self.out.push('}');
        if self.out.len() >= Self::CHUNK {
            self.flush();
        }
    }

    fn str(&mut self, s: &str) {
        escape_into(&mut self.out, s);
    }
}

/// The bytes `json.dumps` copies as they are: printable ASCII but `"` and `\\`.
const PLAIN: [bool; 256] = {
    let mut t = [false; 256];
    let mut b = b' ';
    while b <= b'~' {
        t[b as usize] = b != b'"' && b != b'\\';
        b += 1;
    }
    t
};

/// How many of the first bytes of `b` `json.dumps` copies as they are ([`PLAIN`]).
#[inline]
fn plain_prefix(b: &[u8]) -> usize {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGH: u64 = 0x8080_8080_8080_8080;
    // The high bit of each byte of the result is set where `x`'s byte is zero; bytes above
    // the first such one may be set wrongly, which is why only "any" is asked of it.
    let zero = |x: u64| x.wrapping_sub(ONES) & !x & HIGH;
    let mut i = 0;
    while let Some(word) = b.get(i..i + 8) {
        let x = u64::from_le_bytes(word.try_into().unwrap_or_default());
        // Below 0x20, above 0x7e (DEL and non-ASCII), a quote or a backslash.
        let control = x.wrapping_sub(0x20 * ONES) & !x & HIGH;
        let high = (x | x.wrapping_add(ONES)) & HIGH;
        let quote = zero(x ^ (u64::from(b'"') * ONES));
        let backslash = zero(x ^ (u64::from(b'\\') * ONES));
        if control | high | quote | backslash != 0 {
            break;
        }
        i += 8;
    }
    i + b[i..]
        .iter()
        .position(|&c| !PLAIN[usize::from(c)])
        .unwrap_or(b.len() - i)
}

/// Python's `json.dumps(s)` (ensure_ascii).
pub fn escape_into(out: &mut String, s: &str) {
    out.push('"');
    // Most strings are plain printable ASCII: copy those runs whole. Eight bytes at a time,
    // then a table, since this loop runs over every byte of a config's names and arguments.
    let n = plain_prefix(s.as_bytes());
    out.push_str(&s[..n]);
    for c in s[n..].chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            ' '..='~' => out.push(c),
            c => {
                let mut buf = [0u16; 2];
                for u in c.encode_utf16(&mut buf) {
                    let _ = std::fmt::Write::write_fmt(out, format_args!("\\u{:04x}", u));
                }
            }
        }
    }
    out.push('"');
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{parse_bytes, Options};

    /// The word-at-a-time scan stops where the table does: every byte value, at every place
    /// of a 19-byte string of plain bytes (which spans two words and a tail).
    #[test]
    fn plain_prefix_agrees_with_the_table() {
        for b in 0..=255u8 {
            for at in 0..19 {
                let mut s = b"abcdefghijklmnopqrs".to_vec();
                s[at] = b;
                let want = s
                    .iter()
                    .position(|&c| !PLAIN[usize::from(c)])
                    .unwrap_or(s.len());
                assert_eq!(plain_prefix(&s), want, "byte {b:#x} at {at}");
            }
        }
    }

    #[test]
    fn python_escaping() {
        let mut s = String::new();
        escape_into(&mut s, "a\"\\\n\t\u{7f}\u{1}é😀/");
        assert_eq!(s, r#""a\"\\\n\t\u007f\u0001\u00e9\ud83d\ude00/""#);
    }

    #[test]
    fn compact_payload() {
        let c = parse_bytes(
            "n.conf",
            b"events {}\n# c\ninclude x;\n",
            &Options {
                comments: true,
                ..Options::default()
            },
        );
        let j = to_json(&c, JsonStyle::default());
        assert_eq!(
            j,
            "{\"status\":\"failed\",\"errors\":[{\"file\":\"n.conf\",\"error\":\"[Errno 2] No such file or directory: 'x'\",\"line\":3}],\
             \"config\":[{\"file\":\"n.conf\",\"status\":\"failed\",\"errors\":[{\"error\":\"[Errno 2] No such file or directory: 'x'\",\"line\":3}],\
             \"parsed\":[{\"directive\":\"events\",\"line\":1,\"args\":[],\"block\":[]},{\"directive\":\"#\",\"line\":2,\"args\":[],\"comment\":\" c\"},\
             {\"directive\":\"include\",\"line\":3,\"args\":[\"x\"],\"includes\":[]}]}]}\n"
        );
    }

    /// A payload of many buffers (one file alone fills several) holds every file and every
    /// directive once, in order: read back with serde_json and compared with the tree.
    #[test]
    fn payload_across_many_buffers_keeps_every_directive_in_order() {
        use crate::config::{parse_with, MemFs};
        fn same(json: &serde_json::Value, tree: &[Directive]) {
            let list = json.as_array().expect("a list of directives");
            assert_eq!(list.len(), tree.len());
            for (j, d) in list.iter().zip(tree) {
                assert_eq!(j["directive"], d.name.as_str());
                assert_eq!(j["line"], d.line);
                let args: Vec<&str> = d.args.iter().map(|a| a.as_str()).collect();
                assert_eq!(j["args"], serde_json::json!(args));
                if let Some(block) = &d.block {
                    same(&j["block"], block);
                }
            }
        }
        let mut fs = MemFs::default();
        let mut main = String::from("events {}\nhttp {\n");
        for i in 0..20 {
            main.push_str(&format!("    include s{i}.conf;\n"));
            let mut file = String::new();
            // File 7 alone is several buffers of JSON; the others are small.
            let servers = if i == 7 { 2_000 } else { 3 };
            for k in 0..servers {
                file.push_str(&format!(
                    "server {{ listen {k}; location /{i}/{k} {{ proxy_pass http://u{k}; }} }}\n"
                ));
            }
            fs.insert(format!("s{i}.conf"), file);
        }
        main.push_str("}\n");
        fs.insert("nginx.conf", main);
        let cfg = parse_with(&fs, "nginx.conf", &Options::default());
        for indent in [None, Some(2)] {
            let text = to_json(
                &cfg,
                JsonStyle {
                    indent,
                    single_file: false,
                },
            );
            assert!(text.len() > 4 * Writer::CHUNK, "{} bytes", text.len());
            let json: serde_json::Value = serde_json::from_str(&text).expect("valid JSON");
            let files = json["config"].as_array().expect("config");
            assert_eq!(files.len(), cfg.files.len());
            for (j, f) in files.iter().zip(&cfg.files) {
                assert_eq!(j["file"], f.path.to_string_lossy().as_ref());
                same(&j["parsed"], &f.parsed);
            }
        }
    }

    #[test]
    fn indented_payload() {
        let c = parse_bytes("n.conf", b"user x;\n", &Options::default());
        let j = to_json(
            &c,
            JsonStyle {
                indent: Some(4),
                ..JsonStyle::default()
            },
        );
        assert!(
            j.starts_with(
                "{\n    \"status\": \"ok\",\n    \"errors\": [],\n    \"config\": [\n        {\n"
            ),
            "{j}"
        );
        assert!(
            j.contains("\"args\": [\n                        \"x\"\n                    ]"),
            "{j}"
        );
    }
}
