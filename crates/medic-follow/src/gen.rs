//! One open generation of a log file: an fd, how far we delivered, and the held tail.
//!
//! Reads go through `pread` at our own offset, so nothing depends on the fd's file position
//! and a file shrinking under us (copytruncate) cannot make us skip bytes silently.

use std::collections::VecDeque;
use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use crate::ident::{Identity, FP_MAX};
use crate::Event;

/// How long the write-rate history reaches back, for the copytruncate loss estimate.
const RATE_WINDOW: Duration = Duration::from_secs(5);
/// Rate samples closer than this are merged: a rate over a few microseconds is noise.
const RATE_SAMPLE: Duration = Duration::from_millis(100);

pub struct Gen {
    pub file: File,
    pub id: Identity,
    /// Where the bytes are now: the configured path, or the rotated name once renamed away.
    pub shown: PathBuf,
    /// End of the last delivered (or skipped) line.
    pub offset: u64,
    /// Lines before `offset`.
    pub line: u64,
    /// The unterminated tail, which starts at `offset`. Never delivered until its '\n' comes.
    partial: Vec<u8>,
    /// Bytes of an overlong line being skipped, which starts at `offset`.
    skipping: u64,
    /// When it was renamed away (or replaced): from then on it is drained, then closed.
    pub renamed_at: Option<Instant>,
    /// Last time a read found new bytes.
    pub last_growth: Instant,
    /// Last time a read reached the end of the file: everything written before was seen.
    pub caught_up_at: Instant,
    pub lines_after_rename: u64,
    /// Bytes read from this fd over its life, across truncations: the clock of the rate.
    consumed: u64,
    /// The largest size `fstat` showed since the last truncation.
    pub size_seen: u64,
    /// (when, consumed) samples, for the write rate.
    samples: VecDeque<(Instant, u64)>,
}

/// What one `read_new` did.
#[derive(Default, Debug, Clone, Copy)]
pub struct Read {
    pub lines: u64,
    pub bytes: u64,
    /// The read reached the end of the file (rather than the byte budget).
    pub eof: bool,
}

impl Gen {
    pub fn new(file: File, id: Identity, shown: PathBuf, offset: u64, line: u64) -> Gen {
        let now = Instant::now();
        Gen {
            file,
            id,
            shown,
            offset,
            line,
            partial: Vec::new(),
            skipping: 0,
            renamed_at: None,
            last_growth: now,
            caught_up_at: now,
            lines_after_rename: 0,
            consumed: 0,
            size_seen: 0,
            samples: VecDeque::new(),
        }
    }

    /// Where the next read starts.
    pub fn read_pos(&self) -> u64 {
        self.offset + self.partial.len() as u64 + self.skipping
    }

    /// Bytes read but not delivered: a held partial line or the start of a skipped one.
    pub fn held(&self) -> u64 {
        self.partial.len() as u64 + self.skipping
    }

    /// Forget what was read past `offset`, to read it again (from this file or another).
    pub fn drop_held(&mut self) {
        self.partial = Vec::new();
        self.skipping = 0;
    }

    /// Start over at byte 0, line 1: the file was truncated.
    pub fn restart(&mut self, id: Identity) {
        self.id = id;
        self.offset = 0;
        self.line = 0;
        self.drop_held();
        self.size_seen = 0;
    }

    /// The highest write rate (bytes/s) seen over the last few seconds, and the mean line
    /// length. Errs high on purpose: it feeds an upper estimate of lost lines.
    pub fn rate(&self) -> (f64, f64) {
        let mut best = 0.0f64;
        for w in self.samples.iter().zip(self.samples.iter().skip(1)) {
            let ((t0, p0), (t1, p1)) = w;
            let dt = t1.duration_since(*t0).as_secs_f64();
            if dt > 0.0 && p1 >= p0 {
                best = best.max((p1 - p0) as f64 / dt);
            }
        }
        // The newest sample to now counts too, or a burst right before a truncation is missed.
        if let Some((t, p)) = self.samples.back() {
            let dt = self.caught_up_at.duration_since(*t).as_secs_f64();
            let pos = self.consumed;
            if dt >= RATE_SAMPLE.as_secs_f64() && pos >= *p {
                best = best.max((pos - p) as f64 / dt);
            }
        }
        let mean = if self.line > 0 {
            self.offset as f64 / self.line as f64
        } else {
            100.0
        };
        (best, mean.max(1.0))
    }

    fn sample(&mut self, now: Instant) {
        let pos = self.consumed;
        match self.samples.back() {
            Some((t, _)) if now.duration_since(*t) < RATE_SAMPLE => {}
            _ => self.samples.push_back((now, pos)),
        }
        while let Some((t, _)) = self.samples.front() {
            if now.duration_since(*t) > RATE_WINDOW && self.samples.len() > 2 {
                self.samples.pop_front();
            } else {
                break;
            }
        }
    }

    /// Reads what is new (up to about `budget` bytes) and reports whole lines through `on`.
    pub fn read_new(
        &mut self,
        log: usize,
        buf: &mut [u8],
        max_line: usize,
        budget: u64,
        on: &mut dyn FnMut(Event<'_>),
    ) -> io::Result<Read> {
        let mut out = Read::default();
        loop {
            if out.bytes >= budget {
                break;
            }
            let n = match self.file.read_at(buf, self.read_pos()) {
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            };
            if n == 0 {
                out.eof = true;
                break;
            }
            out.bytes += n as u64;
            self.consumed += n as u64;
            out.lines += self.split(log, &buf[..n], max_line, on);
        }
        let now = Instant::now();
        if out.bytes > 0 {
            self.last_growth = now;
            self.grow_fingerprint();
        }
        if out.eof {
            self.caught_up_at = now;
        }
        self.sample(now);
        Ok(out)
    }

    /// A file fingerprinted while short (often empty: logrotate creates it, nginx writes to it
    /// later) gets a longer fingerprint as it grows. Without it, a saved empty fingerprint
    /// would match any file that reuses the inode, and we would resume it at our offset.
    fn grow_fingerprint(&mut self) {
        if self.id.fp_len as usize >= FP_MAX {
            return;
        }
        if let (Ok(true), Ok(id)) = (self.id.prefix_matches(&self.file), Identity::of(&self.file)) {
            self.id = id;
        }
    }

    /// Splits one chunk into whole lines, overlong lines and a held tail.
    fn split(
        &mut self,
        log: usize,
        data: &[u8],
        max_line: usize,
        on: &mut dyn FnMut(Event<'_>),
    ) -> u64 {
        let mut delivered = 0;
        let mut pos = 0;
        // First finish the line left over from the previous chunk, if any.
        if self.skipping > 0 || !self.partial.is_empty() {
            let Some(nl) = memchr::memchr(b'\n', data) else {
                let len = self.held() as usize + data.len();
                if self.skipping > 0 {
                    self.skipping += data.len() as u64;
                } else if len > max_line {
                    self.skipping = len as u64;
                    self.partial = Vec::new();
                } else {
                    self.partial.extend_from_slice(data);
                }
                return 0;
            };
            let len = self.held() + nl as u64; // without the '\n'
            self.line += 1;
            if self.skipping > 0 || len > max_line as u64 {
                on(Event::Overlong {
                    log,
                    path: &self.shown,
                    line: self.line,
                    len,
                });
            } else {
                self.partial.extend_from_slice(&data[..=nl]);
                on(Event::Lines {
                    log,
                    path: &self.shown,
                    first_line: self.line,
                    bytes: &self.partial,
                });
                delivered += 1;
            }
            self.offset += len + 1;
            self.drop_held();
            pos = nl + 1;
        }
        // Then the whole lines of this chunk, in runs between overlong ones.
        let mut run_start = pos;
        let mut run_lines = 0u64;
        let mut line_start = pos;
        for nl in memchr::memchr_iter(b'\n', &data[pos..]) {
            let end = pos + nl + 1;
            let len = (end - line_start - 1) as u64;
            if len > max_line as u64 {
                delivered += self.flush(log, &data[run_start..line_start], run_lines, on);
                self.line += 1;
                on(Event::Overlong {
                    log,
                    path: &self.shown,
                    line: self.line,
                    len,
                });
                self.offset += len + 1;
                run_start = end;
                run_lines = 0;
            } else {
                run_lines += 1;
            }
            line_start = end;
        }
        delivered += self.flush(log, &data[run_start..line_start], run_lines, on);
        // Hold the unterminated tail.
        let tail = &data[line_start..];
        if tail.len() > max_line {
            self.skipping = tail.len() as u64;
        } else {
            self.partial.extend_from_slice(tail);
        }
        delivered
    }

    fn flush(&mut self, log: usize, run: &[u8], lines: u64, on: &mut dyn FnMut(Event<'_>)) -> u64 {
        if lines == 0 {
            return 0;
        }
        on(Event::Lines {
            log,
            path: &self.shown,
            first_line: self.line + 1,
            bytes: run,
        });
        self.line += lines;
        self.offset += run.len() as u64;
        lines
    }
}
