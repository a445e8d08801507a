//! Reading log inputs: files, globs, rotated series, gzip, stdin; in parallel where it pays.
//!
//! A reader hands a [`ChunkSink`] chunks of whole lines. A chunk never starts in the middle of a
//! record: for error logs a record is an entry that may span lines (FastCGI stderr), so chunks
//! start only at a line that opens an entry. Memory stays flat: one buffer per thread, whatever
//! the size of the input. Lines longer than [`MAX_LINE`] are skipped and reported, not buffered.
//!
//! Large plain files are split into segments that worker threads read with positioned reads
//! (`pread`), each with its own sink; line numbers within a segment are fixed up afterwards from
//! the per-segment line counts (see [`LineLoc`]).

use std::fs::File;
use std::io::{self, Read};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use thiserror::Error;

use crate::error_log::starts_entry;

/// Longest line kept; longer ones are skipped with a report. nginx's error lines are at most
/// 2048 bytes and access lines rarely pass a few KiB.
pub const MAX_LINE: usize = 1 << 20;
const BUF: usize = 2 * MAX_LINE;
/// Plain files at least this large are read by several threads.
const PARALLEL_MIN: u64 = 32 << 20;
const SEGMENT: u64 = 16 << 20;
/// One positioned read of the parallel reader. Reads of the whole 2 MiB buffer touched all of
/// it in every reader: 256 KiB reads keep 4 MiB less resident on a 1 GiB error log (62 -> 57
/// MiB), at the same speed (hyperfine, 2026-12-05). Longer lines still fill the buffer.
const READ_PIECE: usize = 256 << 10;

/// Which log a file holds; decides where records begin.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum LogKind {
    Error,
    Access,
}

impl LogKind {
    /// Guesses from the first lines: an error log's entries open with `YYYY/MM/DD HH:MM:SS [`.
    /// A few of them among the first 50 lines are enough (a log may begin with continuation
    /// lines or a stray line); an access log has none.
    pub fn sniff(head: &[u8]) -> LogKind {
        let mut lines = 0;
        let mut entries = 0;
        for l in head
            .split(|&c| c == b'\n')
            .filter(|l| !l.iter().all(u8::is_ascii_whitespace))
            .take(50)
        {
            lines += 1;
            if starts_entry(l) {
                entries += 1;
            }
        }
        if entries > 0 && entries * 4 >= lines {
            LogKind::Error
        } else {
            LogKind::Access
        }
    }

    #[inline]
    fn can_start_chunk(self, line: &[u8]) -> bool {
        match self {
            LogKind::Error => starts_entry(line),
            LogKind::Access => true,
        }
    }
}

/// Where a line is: the input, the segment of the input, and the 1-based line in that segment.
/// [`Resolved::line`] turns it into the line of the file.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct LineLoc {
    pub input: u32,
    pub segment: u32,
    pub line: u64,
}

/// Receives chunks of whole lines.
pub trait ChunkSink {
    /// `chunk` holds whole lines (at the end of the input the last one may lack its newline) and
    /// begins at a record boundary; `first` is where its first line is. `offset` is where the
    /// chunk starts in the file when the file is a regular one that can be read there again
    /// ([`ReadOutcome::file`]); a sink may then keep offsets instead of copies of the text.
    /// Returns how many lines it held, so the next chunk's `first` can be computed.
    fn chunk(&mut self, chunk: &[u8], first: LineLoc, offset: Option<u64>) -> u64;
    /// A line longer than [`MAX_LINE`] was skipped.
    fn overlong(&mut self, at: LineLoc, len: u64);
}

#[derive(Debug, Error)]
pub enum InputError {
    #[error("{path}: {source}")]
    Io {
        path: String,
        #[source]
        source: io::Error,
    },
    #[error("{path}: is a directory, not a log file")]
    Directory { path: String },
    #[error("{path}: {what}-compressed; only gzip is read (decompress it first)")]
    Compression { path: String, what: &'static str },
    #[error("{path}: gzip data is damaged or cut short after {read} decompressed bytes ({source}); the lines before that were read")]
    Gzip {
        path: String,
        read: u64,
        #[source]
        source: io::Error,
    },
    #[error("{path}: the file shrank while it was read, from {was} to {now} bytes (rotated with `copytruncate`?): {read} bytes were read, the lines after them were not")]
    Shrank {
        path: String,
        was: u64,
        now: u64,
        read: u64,
    },
    #[error("{path}: the file was emptied and written again while it was read (rotated with `copytruncate`?): its first bytes changed, so the {read} bytes read (of {was} when it was opened) mix the old file and the new one")]
    Rewritten { path: String, was: u64, read: u64 },
    #[error("{path}: is a pipe, socket or device, not a file (the official Docker image links its logs to /dev/stdout and /dev/stderr), so it cannot be read back: pass its lines on standard input as `-`, e.g. `docker logs NAME 2>&1 | nginx-medic logs -`")]
    NotAFile { path: String },
    #[error("{pattern}: no file matches")]
    NoMatch { pattern: String },
    #[error("{pattern}: bad glob pattern: {msg}")]
    Pattern { pattern: String, msg: String },
}

/// One input: a path or standard input.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Source {
    Stdin,
    File(PathBuf),
}

impl Source {
    pub fn display(&self) -> String {
        match self {
            Source::Stdin => "<stdin>".to_string(),
            Source::File(p) => p.display().to_string(),
        }
    }
}

/// Expands globs (for patterns the shell did not expand), keeps `-` as stdin, and orders each
/// rotated series oldest first (see [`rotation_order`]). Problems are returned beside the inputs.
pub fn expand(args: &[String]) -> (Vec<Source>, Vec<InputError>) {
    let mut paths = Vec::new();
    let mut errors = Vec::new();
    let mut stdin = false;
    for a in args {
        if a == "-" {
            stdin = true;
            continue;
        }
        let is_glob = a.contains(['*', '?', '[']) && !Path::new(a).exists();
        if !is_glob {
            paths.push(PathBuf::from(a));
            continue;
        }
        match glob::glob(a) {
            Err(e) => errors.push(InputError::Pattern {
                pattern: a.clone(),
                msg: e.msg.to_string(),
            }),
            Ok(it) => {
                let before = paths.len();
                for p in it {
                    match p {
                        Ok(p) => paths.push(p),
                        Err(e) => errors.push(InputError::Io {
                            path: e.path().display().to_string(),
                            source: io::Error::new(e.error().kind(), e.error().to_string()),
                        }),
                    }
                }
                if paths.len() == before {
                    errors.push(InputError::NoMatch { pattern: a.clone() });
                }
            }
        }
    }
    let mut out: Vec<Source> = rotation_order(paths)
        .into_iter()
        .map(Source::File)
        .collect();
    if stdin {
        out.push(Source::Stdin);
    }
    (out, errors)
}

/// How old a file of a rotated series is: numbered rotations oldest at the highest number,
/// dated ones by date, the live file last.
#[derive(PartialEq, Eq, PartialOrd, Ord)]
enum Age {
    Numbered(std::cmp::Reverse<u64>),
    Dated(String),
    Live,
}

/// A file's series (the live file's path) and its age in it.
fn split(p: &Path) -> (PathBuf, Age) {
    let name = p
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let mut stem = name.as_str();
    for ext in [".gz", ".bz2", ".xz", ".zst"] {
        if let Some(s) = stem.strip_suffix(ext) {
            stem = s;
            break;
        }
    }
    let base = |s: &str| p.with_file_name(s);
    if let Some((b, n)) = stem.rsplit_once('.') {
        if !n.is_empty() && n.len() <= 6 && n.bytes().all(|c| c.is_ascii_digit()) {
            return (
                base(b),
                Age::Numbered(std::cmp::Reverse(n.parse().unwrap_or(0))),
            );
        }
    }
    if let Some((b, d)) = stem.rsplit_once('-') {
        if d.len() >= 8 && d.bytes().all(|c| c.is_ascii_digit()) {
            return (base(b), Age::Dated(d.to_string()));
        }
    }
    (base(stem), Age::Live)
}

/// The live file of the rotated series `p` belongs to (`error.log` for `error.log.2.gz` and
/// `error.log-20261120`).
pub fn rotation_base(p: &Path) -> PathBuf {
    split(p).0
}

/// Orders rotated series oldest first: `error.log.3.gz error.log.2.gz error.log.1 error.log`,
/// and dated ones (`error.log-20261120.gz`) by date before the live file. Series keep the order
/// in which they were first named; duplicates are dropped.
pub fn rotation_order(paths: Vec<PathBuf>) -> Vec<PathBuf> {
    let mut series: Vec<(PathBuf, Vec<(Age, PathBuf)>)> = Vec::new();
    for p in paths {
        let (base, age) = split(&p);
        match series.iter_mut().find(|(b, _)| *b == base) {
            Some((_, v)) => {
                if !v.iter().any(|(_, q)| *q == p) {
                    v.push((age, p));
                }
            }
            None => series.push((base, vec![(age, p)])),
        }
    }
    series
        .into_iter()
        .flat_map(|(_, mut v)| {
            v.sort_by(|a, b| a.0.cmp(&b.0));
            v.into_iter().map(|(_, p)| p)
        })
        .collect()
}

/// What reading one input gave.
pub struct ReadOutcome<S> {
    /// The sinks that saw the input, with the segments each one read.
    pub sinks: Vec<S>,
    /// Lines per segment, in segment order: the line offset of segment k is the sum before it.
    pub segment_lines: Vec<u64>,
    pub kind: LogKind,
    pub bytes: u64,
    pub compressed: bool,
    /// An error that stopped reading part-way; what came before it was read.
    pub error: Option<InputError>,
    /// The file the sinks were given offsets into, still open: reading back through it is
    /// immune to a rotation that renamed the path meanwhile.
    pub file: Option<File>,
}

impl<S> ReadOutcome<S> {
    /// Maps a [`LineLoc`] of this input to its line in the whole input.
    pub fn resolve(&self, loc: LineLoc) -> u64 {
        let before: u64 = self.segment_lines.iter().take(loc.segment as usize).sum();
        before + loc.line
    }
}

/// Options of [`read`].
pub struct ReadOptions<'a> {
    pub threads: usize,
    /// Forces the kind instead of sniffing it.
    pub kind: Option<LogKind>,
    /// Bytes read so far (of the file as stored), for a progress bar.
    pub progress: Option<&'a AtomicU64>,
}

/// Reads one input into sinks made by `make_sink`. Fails only when nothing could be read; a
/// failure part-way is in [`ReadOutcome::error`].
pub fn read<S, F>(
    source: &Source,
    index: u32,
    opts: &ReadOptions<'_>,
    make_sink: F,
) -> Result<ReadOutcome<S>, InputError>
where
    S: ChunkSink + Send,
    F: Fn(LogKind) -> S + Sync,
{
    let path_s = source.display();
    let io_err = |e: io::Error| InputError::Io {
        path: path_s.clone(),
        source: e,
    };
    let file = match source {
        Source::Stdin => {
            let stdin = io::stdin().lock();
            return read_stream(stdin, &path_s, index, opts, &make_sink, false, None);
        }
        Source::File(p) => {
            let meta = std::fs::metadata(p).map_err(io_err)?;
            if meta.is_dir() {
                return Err(InputError::Directory { path: path_s });
            }
            if read_only_once(&meta) {
                return Err(InputError::NotAFile { path: path_s });
            }
            File::open(p).map_err(io_err)?
        }
    };
    // The first bytes tell the compression, and, for a plain file, whether it was rewritten
    // while it was read (`changed_while_read`).
    let mut first = [0u8; FIRST_BYTES];
    let first_len = file.read_at(&mut first, 0).map_err(io_err)?;
    let first = &first[..first_len];
    let magic = &first[..first_len.min(6)];
    let compression = if magic.starts_with(&[0x1f, 0x8b]) {
        Some("gzip")
    } else if magic.starts_with(b"BZh") {
        Some("bzip2")
    } else if magic.starts_with(&[0xfd, b'7', b'z', b'X', b'Z', 0]) {
        Some("xz")
    } else if magic.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) {
        Some("zstd")
    } else {
        None
    };
    match compression {
        Some("gzip") => {
            let dec = flate2::read::MultiGzDecoder::new(io::BufReader::with_capacity(
                1 << 16,
                CountingFile::new(file, opts.progress),
            ));
            if opts.threads < 2 {
                return read_stream(dec, &path_s, index, opts, &make_sink, true, None);
            }
            // Inflating is slower than parsing: inflate on a second thread, parse on this one.
            let (tx, rx) = std::sync::mpsc::sync_channel::<io::Result<Vec<u8>>>(4);
            // Buffers come back to be refilled: a fresh 1 MiB per piece cost 0.9 s of system
            // time on a 185 MB gzip once freed memory goes back to the OS at once (src/alloc.rs
            // of the binary).
            let (back_tx, back_rx) = std::sync::mpsc::channel::<Vec<u8>>();
            std::thread::scope(|scope| {
                scope.spawn(move || {
                    let mut dec = dec;
                    loop {
                        let mut buf = back_rx.try_recv().unwrap_or_default();
                        buf.resize(1 << 20, 0);
                        let (n, err) = read_full(&mut dec, &mut buf);
                        buf.truncate(n);
                        let last = n == 0 || err.is_some();
                        if n > 0 && tx.send(Ok(buf)).is_err() {
                            return;
                        }
                        if let Some(e) = err {
                            let _ = tx.send(Err(e));
                        }
                        if last {
                            return;
                        }
                    }
                });
                let ahead = ReadAhead {
                    rx,
                    back: back_tx,
                    cur: Vec::new(),
                    pos: 0,
                };
                read_stream(ahead, &path_s, index, opts, &make_sink, true, None)
            })
        }
        Some(what) => Err(InputError::Compression { path: path_s, what }),
        None => {
            let len = file.metadata().map_err(io_err)?.len();
            if len >= PARALLEL_MIN && opts.threads > 1 && file_is_regular(&file) {
                let mut out = read_parallel(&file, len, &path_s, index, opts, &make_sink)?;
                if out.error.is_none() {
                    out.error = changed_while_read(&file, &path_s, len, out.bytes, first);
                }
                out.file = Some(file);
                Ok(out)
            } else {
                // A second handle to the same open file, for reading back at offsets.
                let again = file_is_regular(&file)
                    .then(|| file.try_clone().ok())
                    .flatten();
                let mut out = read_stream(
                    CountingFile::new(file, opts.progress),
                    &path_s,
                    index,
                    opts,
                    &make_sink,
                    false,
                    again,
                )?;
                if let (None, Some(f)) = (&out.error, &out.file) {
                    out.error = changed_while_read(f, &path_s, len, out.bytes, first);
                }
                Ok(out)
            }
        }
    }
}

/// How many of a file's first bytes are compared before and after it is read.
const FIRST_BYTES: usize = 4096;

/// Whether a regular file changed under its reader. A log is only appended to, so a file
/// smaller than when it was opened, or one whose first bytes changed, was truncated while it was
/// read (logrotate's `copytruncate`): the counts then stand for part of the file (`Shrank`), or
/// for parts of two files (`Rewritten`), and the report must say so. `first`: its first bytes
/// as read when it was opened; `read`: the bytes read of it.
fn changed_while_read(
    file: &File,
    path: &str,
    len_at_open: u64,
    read: u64,
    first: &[u8],
) -> Option<InputError> {
    let now = file.metadata().ok()?.len();
    if now >= first.len() as u64 {
        // Written again: some readers may also have found it short for a while.
        let mut again = [0u8; FIRST_BYTES];
        let n = file.read_at(&mut again[..first.len()], 0).ok()?;
        if again[..n] != *first {
            return Some(InputError::Rewritten {
                path: path.to_string(),
                was: len_at_open,
                read,
            });
        }
    }
    (now < len_at_open || read < len_at_open).then(|| InputError::Shrank {
        path: path.to_string(),
        was: len_at_open,
        now,
        read,
    })
}

/// Opens a log file to read it, refusing a pipe, socket or device before opening it: opening a
/// named pipe waits for a writer, maybe forever (see [`InputError::NotAFile`]).
pub fn open_regular(path: &Path) -> io::Result<File> {
    if read_only_once(&std::fs::metadata(path)?) {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "a pipe, socket or device, not a file",
        ));
    }
    File::open(path)
}

/// A pipe, socket or character device (`<(zcat ...)`, `/dev/stdin`): its kind is told from
/// its first bytes before it is read, and those can be read only once. Told before opening it:
/// opening a pipe waits until something opens it to write, which may be never.
fn read_only_once(meta: &std::fs::Metadata) -> bool {
    use std::os::unix::fs::FileTypeExt;
    let t = meta.file_type();
    t.is_fifo() || t.is_socket() || t.is_char_device()
}

fn file_is_regular(f: &File) -> bool {
    f.metadata()
        .map(|m| m.file_type().is_file())
        .unwrap_or(false)
}

/// The reading end of a decoder running on another thread.
struct ReadAhead {
    rx: std::sync::mpsc::Receiver<io::Result<Vec<u8>>>,
    /// Where read buffers go back to the decoder.
    back: std::sync::mpsc::Sender<Vec<u8>>,
    cur: Vec<u8>,
    pos: usize,
}

impl Read for ReadAhead {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.pos == self.cur.len() {
            match self.rx.recv() {
                Ok(Ok(v)) => {
                    let done = std::mem::replace(&mut self.cur, v);
                    // The decoder may have finished: then the buffer is just dropped.
                    let _ = self.back.send(done);
                    self.pos = 0;
                }
                Ok(Err(e)) => return Err(e),
                Err(_) => return Ok(0),
            }
        }
        let n = buf.len().min(self.cur.len() - self.pos);
        buf[..n].copy_from_slice(&self.cur[self.pos..self.pos + n]);
        self.pos += n;
        Ok(n)
    }
}

struct CountingFile<'a> {
    file: File,
    progress: Option<&'a AtomicU64>,
}

impl<'a> CountingFile<'a> {
    fn new(file: File, progress: Option<&'a AtomicU64>) -> Self {
        CountingFile { file, progress }
    }
}

impl Read for CountingFile<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.file.read(buf)?;
        if let Some(p) = self.progress {
            p.fetch_add(n as u64, Ordering::Relaxed);
        }
        Ok(n)
    }
}

/// The reusable part of a streaming read: a buffer, the carry-over, line-number bookkeeping and
/// the skipping of overlong lines.
struct Streamer {
    buf: Vec<u8>,
    len: usize,
    /// Where `buf[0]` is in the file, when the file can be read there again.
    base: Option<u64>,
    kind: LogKind,
    loc: LineLoc,
    /// Skipping the rest of an overlong line: how long it is so far.
    skipping: Option<u64>,
}

impl Streamer {
    fn new(kind: LogKind, input: u32, segment: u32) -> Self {
        Streamer {
            buf: vec![0; BUF],
            len: 0,
            base: None,
            kind,
            loc: LineLoc {
                input,
                segment,
                line: 1,
            },
            skipping: None,
        }
    }

    /// Feeds what is buffered to the sink, keeping back an incomplete tail. At `eof` everything
    /// goes. `stop` (an offset in the buffer) ends the stream there.
    fn drain<S: ChunkSink>(&mut self, sink: &mut S, eof: bool) {
        let data = &self.buf[..self.len];
        let mut start = 0;
        if let Some(so_far) = self.skipping {
            match memchr::memchr(b'\n', data) {
                Some(nl) => {
                    sink.overlong(self.loc, so_far + nl as u64);
                    self.loc.line += 1;
                    self.skipping = None;
                    start = nl + 1;
                }
                None => {
                    self.skipping = Some(so_far + data.len() as u64);
                    self.consume(self.len);
                    return;
                }
            }
        }
        let data = &self.buf[start..self.len];
        let cut = if eof {
            data.len()
        } else {
            last_boundary(data, self.kind)
        };
        if cut > 0 {
            let lines = sink.chunk(&data[..cut], self.loc, self.offset(start));
            self.loc.line += lines;
        }
        let rest = start + cut;
        let remaining = self.len - rest;
        if !eof && cut == 0 && remaining >= MAX_LINE {
            // No boundary in a full buffer: either one overlong line, or a multi-line record
            // longer than any nginx writes. Hand over whole lines; skip a line with no end.
            match memchr::memrchr(b'\n', &self.buf[rest..self.len]) {
                Some(nl) => {
                    let at = self.offset(rest);
                    let lines = sink.chunk(&self.buf[rest..rest + nl + 1], self.loc, at);
                    self.loc.line += lines;
                    self.consume(rest + nl + 1);
                }
                None => {
                    self.skipping = Some(remaining as u64);
                    self.consume(self.len);
                }
            }
            return;
        }
        self.consume(rest);
    }

    /// Where `buf[i]` is in the file.
    fn offset(&self, i: usize) -> Option<u64> {
        self.base.map(|b| b + i as u64)
    }

    /// Drops the first `n` buffered bytes.
    fn consume(&mut self, n: usize) {
        self.buf.copy_within(n..self.len, 0);
        self.len -= n;
        self.base = self.base.map(|b| b + n as u64);
    }
}

/// The offset of the last line start in `data` before which a chunk may end, or 0. For error
/// logs that is the last complete line that opens an entry, so a multi-line entry stays whole.
#[inline]
fn last_boundary(data: &[u8], kind: LogKind) -> usize {
    let Some(last_nl) = memchr::memrchr(b'\n', data) else {
        return 0;
    };
    if kind == LogKind::Access {
        return last_nl + 1;
    }
    let mut end = last_nl;
    while let Some(nl) = memchr::memrchr(b'\n', &data[..end]) {
        if kind.can_start_chunk(&data[nl + 1..]) {
            return nl + 1;
        }
        if last_nl - nl > 64 * 1024 {
            // No entry starts near the end (not nginx's text): cut at whole lines.
            return last_nl + 1;
        }
        end = nl;
    }
    0
}

/// Reads standard input's first 64 KiB to tell its kind, and gives back a reader that starts
/// from the beginning again.
pub fn peek_stdin() -> io::Result<(LogKind, impl Read)> {
    let mut stdin = io::stdin().lock();
    let mut head = vec![0u8; 64 * 1024];
    let (got, err) = read_full(&mut stdin, &mut head);
    if let Some(e) = err {
        return Err(e);
    }
    head.truncate(got);
    let kind = LogKind::sniff(&head);
    Ok((kind, io::Cursor::new(head).chain(stdin)))
}

/// Reads an already opened stream (such as [`peek_stdin`]'s) like [`read`] reads a file.
pub fn read_reader<R, S, F>(
    r: R,
    name: &str,
    index: u32,
    opts: &ReadOptions<'_>,
    make_sink: F,
) -> Result<ReadOutcome<S>, InputError>
where
    R: Read,
    S: ChunkSink,
    F: Fn(LogKind) -> S,
{
    read_stream(r, name, index, opts, &make_sink, false, None)
}

/// Tells a file's kind from its first 64 KiB (decompressed if gzip), without reading the rest.
pub fn sniff_file(path: &Path) -> Result<LogKind, InputError> {
    Ok(LogKind::sniff(&read_head(path)?))
}

/// The first 64 KiB of a file, decompressed if gzip.
pub fn read_head(path: &Path) -> Result<Vec<u8>, InputError> {
    let p = path.display().to_string();
    let io_err = |e: io::Error| InputError::Io {
        path: p.clone(),
        source: e,
    };
    let meta = std::fs::metadata(path).map_err(io_err)?;
    if meta.is_dir() {
        return Err(InputError::Directory { path: p });
    }
    if read_only_once(&meta) {
        return Err(InputError::NotAFile { path: p });
    }
    let mut f = File::open(path).map_err(io_err)?;
    let mut magic = [0u8; 2];
    let n = f.read_at(&mut magic, 0).map_err(io_err)?;
    let mut head = vec![0u8; 64 * 1024];
    let (got, _) = if n == 2 && magic == [0x1f, 0x8b] {
        read_full(&mut flate2::read::MultiGzDecoder::new(f), &mut head)
    } else {
        read_full(&mut f, &mut head)
    };
    head.truncate(got);
    Ok(head)
}

fn read_full<R: Read>(r: &mut R, buf: &mut [u8]) -> (usize, Option<io::Error>) {
    let mut got = 0;
    while got < buf.len() {
        match r.read(&mut buf[got..]) {
            Ok(0) => break,
            Ok(n) => got += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return (got, Some(e)),
        }
    }
    (got, None)
}

fn read_stream<R, S, F>(
    mut r: R,
    path: &str,
    index: u32,
    opts: &ReadOptions<'_>,
    make_sink: &F,
    compressed: bool,
    again: Option<File>,
) -> Result<ReadOutcome<S>, InputError>
where
    R: Read,
    S: ChunkSink,
    F: Fn(LogKind) -> S,
{
    // The first 64 KiB tell the kind before anything is handed on.
    let mut head = vec![0u8; 64 * 1024];
    let (got, mut error) = read_full(&mut r, &mut head);
    let kind = opts.kind.unwrap_or_else(|| LogKind::sniff(&head[..got]));
    let mut st = Streamer::new(kind, index, 0);
    st.base = again.is_some().then_some(0);
    st.buf[..got].copy_from_slice(&head[..got]);
    st.len = got;
    let mut bytes = got as u64;
    let mut sink = make_sink(kind);
    if error.is_none() && got == head.len() {
        loop {
            if st.skipping.is_some() || st.len > BUF - MAX_LINE / 4 {
                st.drain(&mut sink, false);
            }
            match r.read(&mut st.buf[st.len..]) {
                Ok(0) => break,
                Ok(n) => {
                    bytes += n as u64;
                    st.len += n;
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => {
                    error = Some(e);
                    break;
                }
            }
        }
    }
    st.drain(&mut sink, true);
    if let Some(so_far) = st.skipping.take() {
        sink.overlong(st.loc, so_far);
        st.loc.line += 1;
    }
    let lines = st.loc.line - 1;
    let error = error.map(|e| {
        if compressed {
            InputError::Gzip {
                path: path.to_string(),
                read: bytes,
                source: e,
            }
        } else {
            InputError::Io {
                path: path.to_string(),
                source: e,
            }
        }
    });
    if bytes == 0 {
        if let Some(e) = error {
            return Err(e);
        }
    }
    Ok(ReadOutcome {
        sinks: vec![sink],
        segment_lines: vec![lines],
        kind,
        bytes,
        compressed,
        error,
        file: again,
    })
}

/// Where the record boundary at or after `pos` is: the start of the first line beginning at or
/// after `pos` that may start a chunk. Every thread computes the same answer for the same `pos`.
fn align(file: &File, pos: u64, len: u64, kind: LogKind) -> io::Result<u64> {
    if pos == 0 {
        return Ok(0);
    }
    // Small: called serially for every segment before the threads start; it reads further when
    // a window holds no boundary.
    let mut buf = vec![0u8; 16 * 1024];
    // A line starts at `p` when the byte at `p - 1` is a newline.
    let mut at = pos - 1;
    loop {
        if at >= len {
            return Ok(len);
        }
        let (n, err) = read_full(&mut FileAt { file, pos: at }, &mut buf);
        if let Some(e) = err {
            return Err(e);
        }
        let data = &buf[..n];
        let eof = n < buf.len();
        let mut i = 0;
        let mut next = at + n as u64;
        while let Some(nl) = memchr::memchr(b'\n', &data[i..]) {
            let ls = i + nl + 1;
            if ls == n && eof {
                return Ok(len);
            }
            if n - ls < 32 && !eof {
                // Too little of the line is here to judge it: read again from its newline.
                next = at + (ls - 1) as u64;
                break;
            }
            if kind.can_start_chunk(&data[ls..]) {
                return Ok(at + ls as u64);
            }
            i = ls;
        }
        if eof && next == at + n as u64 {
            return Ok(len);
        }
        at = next.max(at + 1);
    }
}

struct FileAt<'a> {
    file: &'a File,
    pos: u64,
}

impl Read for FileAt<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.file.read_at(buf, self.pos)?;
        self.pos += n as u64;
        Ok(n)
    }
}

fn read_parallel<S, F>(
    file: &File,
    len: u64,
    path: &str,
    index: u32,
    opts: &ReadOptions<'_>,
    make_sink: &F,
) -> Result<ReadOutcome<S>, InputError>
where
    S: ChunkSink + Send,
    F: Fn(LogKind) -> S + Sync,
{
    let io_err = |e: io::Error| InputError::Io {
        path: path.to_string(),
        source: e,
    };
    let mut head = vec![0u8; 64 * 1024];
    let n = file.read_at(&mut head, 0).map_err(io_err)?;
    let kind = opts.kind.unwrap_or_else(|| LogKind::sniff(&head[..n]));
    let nseg = len.div_ceil(SEGMENT) as usize;
    let mut bounds = Vec::with_capacity(nseg + 1);
    for k in 0..nseg {
        bounds.push(align(file, k as u64 * SEGMENT, len, kind).map_err(io_err)?);
    }
    bounds.push(len);
    let seg_lines: Vec<AtomicU64> = (0..nseg).map(|_| AtomicU64::new(0)).collect();
    let threads = opts.threads.min(nseg).max(1);
    let (bounds_of, lines_of) = (&bounds, &seg_lines);
    // One reader's share: every `threads`-th segment, not the next free one: the bounded
    // top-k sketches depend on which entries each reader saw, and a fixed share makes the
    // same input give the same report (it varied from run to run).
    let read_share = |thread: usize| -> Result<(S, u64), io::Error> {
        let mut sink = make_sink(kind);
        // Less than the segments hold when the file shrank while it was read.
        let mut read = 0u64;
        let mut st = Streamer::new(kind, index, 0);
        for k in (thread..nseg).step_by(threads) {
            let (start, end) = (bounds_of[k], bounds_of[k + 1]);
            st.loc = LineLoc {
                input: index,
                segment: k as u32,
                line: 1,
            };
            st.len = 0;
            st.base = Some(start);
            st.skipping = None;
            let mut off = start;
            while off < end {
                let want = ((end - off) as usize).min(BUF - st.len).min(READ_PIECE);
                let got = file.read_at(&mut st.buf[st.len..st.len + want], off)?;
                if got == 0 {
                    break;
                }
                off += got as u64;
                read += got as u64;
                st.len += got;
                if let Some(p) = opts.progress {
                    p.fetch_add(got as u64, Ordering::Relaxed);
                }
                if off < end {
                    st.drain(&mut sink, false);
                }
            }
            st.drain(&mut sink, true);
            if let Some(so_far) = st.skipping.take() {
                sink.overlong(st.loc, so_far);
                st.loc.line += 1;
            }
            lines_of[k].store(st.loc.line - 1, Ordering::Relaxed);
        }
        Ok((sink, read))
    };
    let read_share = &read_share;
    let results: Vec<Result<(S, u64), io::Error>> = std::thread::scope(|scope| {
        // This thread reads the first share on its CPU while the others start elsewhere
        // (`medic_thread`); a share whose thread could not be started is read here after.
        let others: Vec<_> = (1..threads)
            .map(|thread| {
                let reader = medic_thread::spawn_scoped(scope, "read", move || read_share(thread));
                (thread, reader)
            })
            .collect();
        let mut results = vec![read_share(0)];
        for (thread, reader) in others {
            results.push(match reader {
                Ok(h) => medic_thread::join(h)
                    .unwrap_or_else(|_| Err(io::Error::other("a reader thread panicked"))),
                Err(_) => read_share(thread),
            });
        }
        results
    });
    let mut sinks = Vec::with_capacity(results.len());
    let mut error = None;
    let mut bytes = 0;
    for r in results {
        match r {
            Ok((s, read)) => {
                sinks.push(s);
                bytes += read;
            }
            Err(e) => error = Some(io_err(e)),
        }
    }
    if sinks.is_empty() {
        return Err(error.unwrap_or_else(|| io_err(io::Error::other("no reader finished"))));
    }
    Ok(ReadOutcome {
        sinks,
        segment_lines: seg_lines.into_iter().map(AtomicU64::into_inner).collect(),
        kind,
        bytes,
        compressed: false,
        error,
        file: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    type Collected = (Vec<(u64, Vec<u8>)>, Vec<(u64, u64)>, ReadOutcome<Collect>);

    #[derive(Default)]
    struct Collect {
        lines: Vec<(LineLoc, Vec<u8>)>,
        /// Each line's offset, as the reader gave it.
        offsets: Vec<Option<u64>>,
        overlong: Vec<(LineLoc, u64)>,
    }

    impl ChunkSink for Collect {
        fn chunk(&mut self, chunk: &[u8], first: LineLoc, offset: Option<u64>) -> u64 {
            let mut n = 0;
            let mut at = offset;
            for l in chunk.split_inclusive(|&c| c == b'\n') {
                let mut loc = first;
                loc.line += n;
                self.lines
                    .push((loc, l.strip_suffix(b"\n").unwrap_or(l).to_vec()));
                self.offsets.push(at);
                at = at.map(|a| a + l.len() as u64);
                n += 1;
            }
            n
        }
        fn overlong(&mut self, at: LineLoc, len: u64) {
            self.overlong.push((at, len));
        }
    }

    fn collect(src: &Source, threads: usize) -> Collected {
        let opts = ReadOptions {
            threads,
            kind: None,
            progress: None,
        };
        let out = read(src, 0, &opts, |_| Collect::default()).unwrap();
        let mut lines = Vec::new();
        let mut over = Vec::new();
        for s in &out.sinks {
            for (loc, l) in &s.lines {
                lines.push((out.resolve(*loc), l.clone()));
            }
            for (loc, n) in &s.overlong {
                over.push((out.resolve(*loc), *n));
            }
        }
        lines.sort();
        (lines, over, out)
    }

    /// `data` as the file `name` in a directory removed when the guard is dropped (also when a
    /// test fails).
    fn temp_file(name: &str, data: &[u8]) -> (tempfile::TempDir, PathBuf) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(name);
        std::fs::write(&path, data).unwrap();
        (dir, path)
    }

    #[test]
    fn sniffing_looks_past_the_first_line() {
        let e = "2026/11/20 14:32:10 [error] 1#1: *1 x, client: 1.2.3.4, server: s\n";
        assert_eq!(
            LogKind::sniff(format!("#0 {{main}}\" while x\n{e}{e}").as_bytes()),
            LogKind::Error
        );
        assert_eq!(
            LogKind::sniff(
                b"1.2.3.4 - - [20/Nov/2026:14:32:10 +0000] \"GET / HTTP/1.1\" 200 1 \"-\" \"-\"\n"
            ),
            LogKind::Access
        );
        assert_eq!(LogKind::sniff(b""), LogKind::Access);
    }

    #[test]
    fn rotation() {
        let v = rotation_order(
            [
                "a/error.log",
                "a/error.log.1",
                "a/error.log.10.gz",
                "a/error.log.2.gz",
                "access.log-20261120.gz",
                "access.log",
                "access.log-20261119",
            ]
            .iter()
            .map(PathBuf::from)
            .collect(),
        );
        let v: Vec<_> = v.iter().map(|p| p.to_string_lossy().into_owned()).collect();
        assert_eq!(
            v,
            [
                "a/error.log.10.gz",
                "a/error.log.2.gz",
                "a/error.log.1",
                "a/error.log",
                "access.log-20261119",
                "access.log-20261120.gz",
                "access.log"
            ]
        );
        for p in ["a/error.log.10.gz", "a/error.log.1", "a/error.log"] {
            assert_eq!(rotation_base(Path::new(p)), Path::new("a/error.log"));
        }
        assert_eq!(
            rotation_base(Path::new("access.log-20261120.gz")),
            Path::new("access.log")
        );
    }

    #[test]
    fn parallel_read_sees_every_line_once_with_its_number() {
        let mut data = Vec::new();
        let mut i = 0u64;
        while data.len() < (PARALLEL_MIN as usize) * 3 + 12345 {
            i += 1;
            data.extend_from_slice(
                format!("line {i} {}\n", "x".repeat((i % 97) as usize)).as_bytes(),
            );
        }
        let (_dir, p) = temp_file("access.log", &data);
        let (lines, _, out) = collect(&Source::File(p), 2);
        assert!(out.sinks.len() == 2);
        assert_eq!(lines.len() as u64, i);
        for (k, (n, l)) in lines.iter().enumerate() {
            assert_eq!(*n, k as u64 + 1);
            assert!(l.starts_with(format!("line {} ", k + 1).as_bytes()));
        }
        assert_eq!(out.bytes, data.len() as u64);
        assert!(out.error.is_none(), "{:?}", out.error);
        // Each reader gets a fixed share (every other segment), whatever the timing: the same
        // input gives the same per-thread sketches, so the same report.
        for (t, sink) in out.sinks.iter().enumerate() {
            let mut segments: Vec<u32> = sink.lines.iter().map(|(loc, _)| loc.segment).collect();
            segments.dedup();
            let expected: Vec<u32> = (t as u32..out.segment_lines.len() as u32)
                .step_by(2)
                .collect();
            assert_eq!(segments, expected, "reader {t}");
        }
    }

    /// A sink that, at the first chunk any reader hands over, does to the file what
    /// logrotate's `copytruncate` does: empties it, then (with `rewrite`) the server writes
    /// new lines into it.
    struct Truncating<'a> {
        path: &'a Path,
        done: &'a std::sync::atomic::AtomicBool,
        rewrite: Option<usize>,
        lines: u64,
    }

    impl ChunkSink for Truncating<'_> {
        fn chunk(&mut self, chunk: &[u8], _first: LineLoc, _offset: Option<u64>) -> u64 {
            if !self.done.swap(true, Ordering::SeqCst) {
                let f = std::fs::OpenOptions::new()
                    .write(true)
                    .open(self.path)
                    .unwrap();
                f.set_len(0).unwrap();
                if let Some(len) = self.rewrite {
                    let mut new = Vec::new();
                    while new.len() < len {
                        new.extend_from_slice(b"2026/12/06 19:00:00 [notice] 1#1: new file\n");
                    }
                    std::fs::write(self.path, new).unwrap();
                }
            }
            let n = memchr::memchr_iter(b'\n', chunk).count() as u64;
            self.lines += n;
            n
        }
        fn overlong(&mut self, _at: LineLoc, _len: u64) {}
    }

    fn read_truncating(
        data: &[u8],
        threads: usize,
        rewrite: Option<usize>,
    ) -> (ReadOutcome<u64>, u64) {
        let (_dir, path) = temp_file("error.log", data);
        let done = std::sync::atomic::AtomicBool::new(false);
        let opts = ReadOptions {
            threads,
            kind: Some(LogKind::Error),
            progress: None,
        };
        let out = read(&Source::File(path.clone()), 0, &opts, |_| Truncating {
            path: &path,
            done: &done,
            rewrite,
            lines: 0,
        })
        .unwrap();
        let lines = out.sinks.iter().map(|s| s.lines).sum();
        let out = ReadOutcome {
            sinks: out.sinks.iter().map(|s| s.lines).collect(),
            segment_lines: out.segment_lines,
            kind: out.kind,
            bytes: out.bytes,
            compressed: out.compressed,
            error: out.error,
            file: None,
        };
        (out, lines)
    }

    fn log_of(len: usize) -> Vec<u8> {
        let mut data = Vec::new();
        let mut i = 0;
        while data.len() < len {
            i += 1;
            data.extend_from_slice(
                format!("2026/12/06 18:00:00 [error] 1#1: *{i} connect() failed (111: Connection refused) while connecting to upstream\n").as_bytes(),
            );
        }
        data
    }

    /// A file emptied while its readers are in it (`copytruncate`): what they read is kept,
    /// and the outcome says how much that was, instead of counting the file as read whole.
    #[test]
    fn a_file_that_shrinks_while_read_is_reported_with_what_was_read() {
        for (threads, len) in [(2, PARALLEL_MIN as usize * 2), (1, 3 << 20)] {
            let data = log_of(len);
            let (out, lines) = read_truncating(&data, threads, None);
            match out.error {
                Some(InputError::Shrank { was, now, read, .. }) => {
                    assert_eq!((was, now), (data.len() as u64, 0), "{threads} threads");
                    assert_eq!(read, out.bytes);
                    assert!(read > 0 && read < was, "{threads} threads: {read} of {was}");
                }
                ref e => panic!("{threads} threads: {e:?}"),
            }
            assert!(lines > 0 && lines < memchr::memchr_iter(b'\n', &data).count() as u64);
            let shown = out.error.unwrap().to_string();
            assert!(shown.contains("shrank while it was read"), "{shown}");
        }
    }

    /// Emptied and written again past the reader (`copytruncate`, then a busy server): every
    /// byte could be read, but not of one file; the first bytes tell.
    #[test]
    fn a_file_rewritten_while_read_is_reported() {
        for (threads, len) in [(2, PARALLEL_MIN as usize * 2), (1, 3 << 20)] {
            let data = log_of(len);
            let (out, _) = read_truncating(&data, threads, Some(data.len() + 4096));
            assert!(
                matches!(out.error, Some(InputError::Rewritten { .. })),
                "{threads} threads: {:?}",
                out.error
            );
        }
    }

    /// A pipe nobody writes to (a log linked to `/dev/stdout` in a container, `<(...)`) or a
    /// device: named at once, before it is opened (opening a pipe would wait for a writer).
    #[test]
    fn pipes_and_devices_are_refused_without_waiting() {
        let dir = tempfile::tempdir().unwrap();
        let fifo = dir.path().join("access.log");
        let made = std::process::Command::new("mkfifo")
            .arg(&fifo)
            .status()
            .expect("mkfifo");
        assert!(made.success());
        // On another thread, so that a reader that waits on the pipe fails the test instead of
        // hanging it.
        let (done, got) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let opts = ReadOptions {
                threads: 2,
                kind: None,
                progress: None,
            };
            for path in [fifo.as_path(), Path::new("/dev/null")] {
                let source = Source::File(path.to_path_buf());
                let read_err = read(&source, 0, &opts, |_| Collect::default()).err();
                let head_err = read_head(path).err();
                let _ = done.send((read_err, head_err));
            }
        });
        for _ in 0..2 {
            let (read_err, head_err) = got
                .recv_timeout(std::time::Duration::from_secs(20))
                .expect("the reader waited on the pipe");
            let read_err = read_err.expect("refused");
            assert!(
                matches!(read_err, InputError::NotAFile { .. }),
                "{read_err:?}"
            );
            assert!(
                read_err.to_string().contains("standard input"),
                "{read_err}"
            );
            assert!(
                matches!(head_err, Some(InputError::NotAFile { .. })),
                "{head_err:?}"
            );
        }
    }

    #[test]
    fn parallel_read_reports_an_overlong_line_as_one_read() {
        // The parallel reader fills its buffer a piece at a time: a line longer than
        // MAX_LINE spans many reads and must still come out as one skipped line.
        let mut data = Vec::new();
        let mut n = 0u64;
        while data.len() < PARALLEL_MIN as usize {
            n += 1;
            data.extend_from_slice(format!("line {n}\n").as_bytes());
        }
        data.extend(std::iter::repeat_n(b'a', 10 << 20));
        data.extend_from_slice(b"\n\xff\xfe not utf-8\nlast\n");
        let (_dir, p) = temp_file("access.log", &data);
        let (lines, over, out) = collect(&Source::File(p), 2);
        assert_eq!(out.sinks.len(), 2, "read in parallel");
        assert_eq!(over, vec![(n + 1, 10 << 20)]);
        assert_eq!(lines.len() as u64, n + 2);
        assert_eq!(
            lines[lines.len() - 2],
            (n + 2, b"\xff\xfe not utf-8".to_vec())
        );
        assert_eq!(lines[lines.len() - 1], (n + 3, b"last".to_vec()));
    }

    /// The offsets handed to sinks point at each line in the file, whichever reader read it
    /// and across a skipped overlong line; a compressed input gives none.
    #[test]
    fn offsets_point_at_each_line_in_the_file() {
        let mut data = Vec::new();
        let mut n = 0u64;
        while data.len() < PARALLEL_MIN as usize + 12345 {
            n += 1;
            data.extend_from_slice(
                format!("line {n} {}\n", "y".repeat((n % 13) as usize)).as_bytes(),
            );
            if n == 1000 {
                data.extend(std::iter::repeat_n(b'a', 3 << 20));
                data.push(b'\n');
            }
        }
        let (_dir, p) = temp_file("access.log", &data);
        for threads in [1, 2] {
            let opts = ReadOptions {
                threads,
                kind: None,
                progress: None,
            };
            let out = read(&Source::File(p.clone()), 0, &opts, |_| Collect::default()).unwrap();
            assert!(out.file.is_some(), "the file stays open for reading back");
            let mut seen = 0;
            for s in &out.sinks {
                for ((_, line), at) in s.lines.iter().zip(&s.offsets) {
                    let at = at.expect("a plain file gives offsets") as usize;
                    assert_eq!(&data[at..at + line.len()], &line[..], "{threads} threads");
                    seen += 1;
                }
            }
            assert_eq!(seen, n);
        }

        use std::io::Write;
        let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        enc.write_all(&data[..100_000]).unwrap();
        let (_gz_dir, gz) = temp_file("access.log.1.gz", &enc.finish().unwrap());
        let (lines, _, out) = collect(&Source::File(gz), 2);
        assert!(!lines.is_empty() && out.file.is_none());
        assert!(out.sinks[0].offsets.iter().all(Option::is_none));
    }

    #[test]
    fn overlong_lines_are_reported_not_kept() {
        let mut data = b"first\n".to_vec();
        data.extend(std::iter::repeat_n(b'a', 10 << 20));
        data.extend_from_slice(b"\nlast\n");
        let (_dir, p) = temp_file("x.log", &data);
        let (lines, over, _) = collect(&Source::File(p), 1);
        assert_eq!(lines, vec![(1, b"first".to_vec()), (3, b"last".to_vec())]);
        assert_eq!(over, vec![(2, 10 << 20)]);
    }

    #[test]
    fn directory_and_missing_file() {
        let opts = ReadOptions {
            threads: 1,
            kind: None,
            progress: None,
        };
        let e = read(&Source::File("/".into()), 0, &opts, |_| Collect::default())
            .err()
            .unwrap();
        assert!(e.to_string().contains("is a directory"), "{e}");
        let e = read(&Source::File("/nonexistent/x.log".into()), 0, &opts, |_| {
            Collect::default()
        })
        .err()
        .unwrap();
        assert!(e.to_string().starts_with("/nonexistent/x.log: "), "{e}");
    }

    #[test]
    fn truncated_gzip_keeps_what_came_before() {
        use std::io::Write;
        let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        for i in 0..20000 {
            writeln!(enc, "2026/11/20 14:32:10 [error] 1#1: *{i} line").unwrap();
        }
        let gz = enc.finish().unwrap();
        let (_dir, p) = temp_file("error.log.1.gz", &gz[..gz.len() / 2]);
        let opts = ReadOptions {
            threads: 1,
            kind: None,
            progress: None,
        };
        let out = read(&Source::File(p), 0, &opts, |_| Collect::default()).unwrap();
        assert_eq!(out.kind, LogKind::Error);
        let e = out.error.as_ref().expect("truncation reported");
        assert!(
            e.to_string()
                .contains("error.log.1.gz: gzip data is damaged"),
            "{e}"
        );
        assert!(out.sinks[0].lines.len() > 1000);
    }
}
