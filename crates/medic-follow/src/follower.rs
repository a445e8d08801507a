//! The follower: which files each log is made of right now, and in which order to read them.
//!
//! Each log is a live generation (the file at the configured path) plus the generations
//! renamed away and still being drained, oldest first. Every step checks the path with `stat`
//! and every open generation with `fstat` + a read of its first bytes, whatever inotify said:
//! events only decide when to look.

use std::fs::{self, File};
use std::io;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::gen::Gen;
use crate::ident::{Identity, FP_MAX};
use crate::siblings::{
    find_by_identity, find_by_inode, find_compressed, find_copy, rotation_number,
};
use crate::state::{SavedGen, SavedLog, State};
use crate::watch::{Watch, Woke};
use crate::{Event, FollowError, Options};

/// The read buffer, reused for every read: memory stays bounded whatever the file size.
const BUF: usize = 256 * 1024;
/// At most this much is read from one log per step, so a caller that saves after each step
/// makes progress on a huge backlog without a huge re-read after a crash.
const STEP_BUDGET: u64 = 16 * 1024 * 1024;
/// After an inotify wake-up, wait at least this long since the last scan: a busy access log
/// modifies its directory thousands of times a second, one scan per write would burn a core.
const COALESCE: Duration = Duration::from_millis(5);

struct Log {
    path: PathBuf,
    dir: PathBuf,
    live: Option<Gen>,
    /// Renamed-away generations being drained, oldest first.
    old: Vec<Gen>,
    missing_since: Option<Instant>,
    missing_reported: bool,
    /// A read or open error was reported; not again until it clears.
    failed_reported: bool,
}

struct Pending {
    log: usize,
    path: PathBuf,
    why: String,
}

/// Follows a set of log files. See the crate documentation.
pub struct Follower {
    logs: Vec<Log>,
    opts: Options,
    buf: Vec<u8>,
    watch: Watch,
    /// Problems found by `open`, reported by the first `step`.
    pending: Vec<Pending>,
    last_scan: Instant,
}

impl Follower {
    /// Opens the logs, resuming from `opts.state_file` if it describes them.
    pub fn open(paths: &[PathBuf], opts: Options) -> Result<Follower, FollowError> {
        Follower::open_with(paths, opts, true)
    }

    /// `open`, with inotify or polling only (the fallback, tested on its own).
    fn open_with(
        paths: &[PathBuf],
        opts: Options,
        use_inotify: bool,
    ) -> Result<Follower, FollowError> {
        if paths.is_empty() {
            return Err(FollowError::NoPaths);
        }
        let mut pending = Vec::new();
        let saved = match &opts.state_file {
            None => None,
            Some(p) => match State::load(p) {
                Ok(s) => s,
                Err(why) => {
                    pending.push(Pending {
                        log: 0,
                        path: p.clone(),
                        why,
                    });
                    None
                }
            },
        };
        let mut buf = vec![0u8; BUF];
        let mut logs = Vec::new();
        for (i, path) in paths.iter().enumerate() {
            let dir = match path.parent() {
                Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
                _ => PathBuf::from("."),
            };
            let mut log = Log {
                path: path.clone(),
                dir,
                live: None,
                old: Vec::new(),
                missing_since: None,
                missing_reported: false,
                failed_reported: false,
            };
            let saved_log = saved
                .as_ref()
                .and_then(|s| s.logs.iter().find(|l| &l.path == path));
            match saved_log {
                Some(s) => resume(i, &mut log, s, &opts, &mut pending),
                None => start(i, &mut log, opts.from_start, &mut buf, &mut pending),
            }
            logs.push(log);
        }
        let dirs: Vec<PathBuf> = logs.iter().map(|l| l.dir.clone()).collect();
        let watch = Watch::new(&dirs, use_inotify);
        if !watch.active() {
            pending.push(Pending {
                log: 0,
                path: dirs[0].clone(),
                why: format!(
                    "inotify unavailable; polling every {:?}",
                    opts.poll_interval
                ),
            });
        }
        Ok(Follower {
            logs,
            opts,
            buf,
            watch,
            pending,
            last_scan: Instant::now(),
        })
    }

    /// Waits up to `timeout` for something to change (inotify on the directories, polling as
    /// a fallback), then reads everything new in every file, in the order of the paths given
    /// to `open`, and reports it through `on`. Returns the number of lines delivered.
    pub fn step(
        &mut self,
        timeout: Duration,
        on: &mut dyn FnMut(Event<'_>),
    ) -> Result<u64, FollowError> {
        let events = std::cell::Cell::new(0u64);
        let mut count = |e: Event<'_>| {
            events.set(events.get() + 1);
            on(e)
        };
        for p in std::mem::take(&mut self.pending) {
            count(Event::Problem {
                log: p.log,
                path: &p.path,
                why: p.why,
            });
        }
        let deadline = Instant::now() + timeout;
        loop {
            let lines = self.scan(&mut count);
            if lines > 0 || events.get() > 0 {
                return Ok(lines);
            }
            let now = Instant::now();
            if now >= deadline {
                return Ok(0);
            }
            self.watch.add_missing();
            let woke = self
                .watch
                .wait((deadline - now).min(self.opts.poll_interval));
            if woke == Woke::Overflow {
                let dir = self
                    .watch
                    .dirs()
                    .next()
                    .unwrap_or(Path::new("."))
                    .to_path_buf();
                count(Event::Problem {
                    log: 0,
                    path: &dir,
                    why: "inotify queue overflowed; rescanned every file".into(),
                });
            }
            if woke != Woke::TimedOut {
                let since = self.last_scan.elapsed();
                if since < COALESCE {
                    std::thread::sleep(COALESCE - since);
                }
            }
        }
    }

    /// Saves offsets, line numbers and identities atomically (temp file, fsync, rename, fsync
    /// of the directory). Call it after the events of a step were processed: a restart, even
    /// after `kill -9`, re-reads at most what was not saved, never loses a line.
    pub fn save(&mut self) -> Result<(), FollowError> {
        let Some(path) = &self.opts.state_file else {
            return Ok(());
        };
        let saved = |g: &Gen| SavedGen {
            id: g.id,
            name: g.shown.clone(),
            offset: g.offset,
            line: g.line,
            held: g.held(),
        };
        let logs = self
            .logs
            .iter()
            .map(|l| SavedLog {
                path: l.path.clone(),
                live: l.live.as_ref().map(saved),
                old: l.old.iter().map(saved).collect(),
            })
            .collect();
        State::new(logs).save(path)
    }

    /// File descriptors held for the logs (live and draining generations).
    pub fn open_files(&self) -> usize {
        self.logs
            .iter()
            .map(|l| l.old.len() + usize::from(l.live.is_some()))
            .sum()
    }

    fn scan(&mut self, on: &mut dyn FnMut(Event<'_>)) -> u64 {
        self.last_scan = Instant::now();
        let mut lines = 0;
        for (i, log) in self.logs.iter_mut().enumerate() {
            lines += scan_log(i, log, &self.opts, &mut self.buf, on);
        }
        lines
    }
}

/// Opens a followed log, refusing a pipe, socket or device before opening it: opening a named
/// pipe waits for a writer, maybe forever, and the follower must keep watching the others.
fn open_log(path: &Path) -> io::Result<File> {
    use std::os::unix::fs::FileTypeExt;
    let t = fs::metadata(path)?.file_type();
    if t.is_fifo() || t.is_socket() || t.is_char_device() {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "a pipe, socket or device, not a file",
        ));
    }
    File::open(path)
}

/// No saved state for this log: start at its end (or its start), counting lines on the way.
fn start(i: usize, log: &mut Log, from_start: bool, buf: &mut [u8], pending: &mut Vec<Pending>) {
    let file = match open_log(&log.path) {
        Ok(f) => f,
        Err(e) => {
            let why = if e.kind() == io::ErrorKind::NotFound {
                log.missing_reported = true;
                log.missing_since = Some(Instant::now());
                "missing; waiting for it to appear".to_string()
            } else {
                log.failed_reported = true;
                format!("cannot open: {e}")
            };
            pending.push(Pending {
                log: i,
                path: log.path.clone(),
                why,
            });
            return;
        }
    };
    let id = match Identity::of(&file) {
        Ok(id) => id,
        Err(e) => {
            log.failed_reported = true;
            pending.push(Pending {
                log: i,
                path: log.path.clone(),
                why: format!("cannot read: {e}"),
            });
            return;
        }
    };
    let (offset, line) = if from_start {
        (0, 0)
    } else {
        match count_lines(&file, buf) {
            Ok(x) => x,
            Err(e) => {
                pending.push(Pending {
                    log: i,
                    path: log.path.clone(),
                    why: format!("cannot count its lines ({e}); line numbers start at 1 here"),
                });
                (file.metadata().map(|m| m.len()).unwrap_or(0), 0)
            }
        }
    };
    log.live = Some(Gen::new(file, id, log.path.clone(), offset, line));
}

/// Counts the lines of a file to its end: the offset after the last '\n', and how many.
/// One pass with memchr, so `first_line` is true even when we start at the end.
fn count_lines(file: &File, buf: &mut [u8]) -> io::Result<(u64, u64)> {
    let mut pos = 0u64;
    let mut lines = 0u64;
    let mut after_last = 0u64;
    loop {
        let n = match file.read_at(buf, pos) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        let chunk = &buf[..n];
        lines += memchr::memchr_iter(b'\n', chunk).count() as u64;
        if let Some(last) = memchr::memrchr(b'\n', chunk) {
            after_last = pos + last as u64 + 1;
        }
        pos += n as u64;
    }
    Ok((after_last, lines))
}

/// Resumes one log from its saved state, finding files rotated while we were stopped.
fn resume(i: usize, log: &mut Log, s: &SavedLog, opts: &Options, pending: &mut Vec<Pending>) {
    let now = Instant::now();
    let mut problem = |why: String, path: &Path| {
        pending.push(Pending {
            log: i,
            path: path.to_path_buf(),
            why,
        })
    };
    // Generations that were being drained when we stopped: older than anything else.
    for og in &s.old {
        match find_by_identity(&log.dir, &og.id) {
            Some((name, file)) => {
                let mut g = Gen::new(file, og.id, name, og.offset, og.line);
                g.renamed_at = Some(now);
                log.old.push(g);
            }
            None => {
                let why = match find_compressed(&log.dir, &og.id) {
                    Some((gz, size)) => unread_in_compressed(&gz, size, og),
                    None => format!(
                        "a rotated file we were draining was deleted since we stopped; lines written to it after its line {}, if any, were not read",
                        og.line
                    ),
                };
                problem(why, &og.name)
            }
        }
    }
    let Some(sl) = &s.live else {
        // It was missing when we saved: whatever is there now is new.
        if let Ok(f) = open_log(&log.path) {
            if let Ok(id) = Identity::of(&f) {
                set_new_live(log, f, id);
            }
        }
        // Rotations while we were stopped may have left generations we never saw.
        discover_newer(log, now);
        return;
    };
    let current = open_log(&log.path).ok().and_then(|f| {
        let id = Identity::of(&f).ok()?;
        let len = f.metadata().ok()?.len();
        Some((f, id, len))
    });
    if let Some((f, id, len)) = current {
        let same_inode = id.dev == sl.id.dev && id.ino == sl.id.ino;
        if same_inode && sl.id.prefix_matches(&f).unwrap_or(false) && len >= sl.offset {
            let mut id = id;
            id.fp_len = id.fp_len.max(sl.id.fp_len);
            // The saved offset is authoritative for this inode: an old entry matched to it by
            // an empty fingerprint (a reused inode) must not read it a second time.
            log.old
                .retain(|g| !(g.id.dev == id.dev && g.id.ino == id.ino));
            log.live = Some(Gen::new(f, id, log.path.clone(), sl.offset, sl.line));
            return;
        }
        if same_inode {
            // Truncated in place while we were stopped (copytruncate), or the inode was reused.
            let copy = find_copy(&log.dir, &sl.id, &id);
            match copy {
                Some((name, cf)) => {
                    let cid = Identity::of(&cf).unwrap_or(sl.id);
                    problem(
                        format!(
                            "truncated while we were stopped; reading the rest from {} (from its line {}); lines written between the copy and the truncation cannot be counted",
                            name.display(),
                            sl.line + 1
                        ),
                        &log.path,
                    );
                    let mut g = Gen::new(cf, cid, name, sl.offset, sl.line);
                    // A copy is complete when the truncation happens: no need to wait for it.
                    g.renamed_at = now.checked_sub(opts.rotate_quiet);
                    log.old.push(g);
                }
                None => {
                    // Or a reused inode: the file we were reading was rotated away, perhaps
                    // compressed, and a new one got its inode number.
                    let why = match find_compressed(&log.dir, &sl.id) {
                        Some((gz, size)) => unread_in_compressed(&gz, size, sl),
                        None => format!(
                            "truncated or replaced while we were stopped and no copy found; lines after line {} may be lost",
                            sl.line
                        ),
                    };
                    problem(why, &log.path)
                }
            }
            set_new_live(log, f, id);
            return;
        }
        set_new_live(log, f, id);
    }
    // Rotated while we were stopped: drain the old inode from where we were.
    match find_by_identity(&log.dir, &sl.id) {
        Some((name, file)) => {
            let mut g = Gen::new(file, sl.id, name, sl.offset, sl.line);
            g.renamed_at = Some(now);
            retire(log, g, now);
        }
        None => {
            let why = match find_compressed(&log.dir, &sl.id) {
                Some((gz, size)) => unread_in_compressed(&gz, size, sl),
                None => format!(
                    "rotated while we were stopped and the old file is gone; lines written to it after its line {} (byte {}) were not read, how many is unknown",
                    sl.line, sl.offset
                ),
            };
            problem(why, &log.path)
        }
    }
}

/// What we did not read of a generation compressed while we were stopped: its size is in the
/// gzip trailer, the line count is estimated from the mean line length of what we read.
fn unread_in_compressed(gz: &Path, size: u64, g: &SavedGen) -> String {
    let bytes = size.saturating_sub(g.offset);
    let mean = if g.line > 0 {
        g.offset as f64 / g.line as f64
    } else {
        100.0
    };
    format!(
        "compressed to {} while we were stopped (compressed files are never re-read): {} bytes after its line {}, about {} lines, were not read",
        gz.display(),
        bytes,
        g.line,
        (bytes as f64 / mean).ceil() as u64
    )
}

/// A generation left the configured path: drain it until quiet, and look for newer ones we
/// never saw.
fn retire(log: &mut Log, mut g: Gen, now: Instant) {
    if g.renamed_at.is_none() {
        g.renamed_at = Some(now);
    }
    if let Some(name) = find_by_inode(&log.dir, g.id.dev, g.id.ino) {
        g.shown = name;
    }
    log.old.push(g);
    discover_newer(log, now);
}

/// If the newest generation we drain is already at `name.N` with N > 1, the generations at
/// `name.N-1` .. `name.1` were created and rotated away while we were not looking (stopped,
/// or slower than the rotations): read them whole, oldest first.
fn discover_newer(log: &mut Log, now: Instant) {
    let base = log.path.file_name().unwrap_or_default().to_os_string();
    let Some(n) = log
        .old
        .last()
        .and_then(|g| g.shown.file_name())
        .and_then(|f| rotation_number(&base, f))
    else {
        return;
    };
    for k in (1..n).rev() {
        let mut name = base.clone();
        name.push(format!(".{k}"));
        let p = log.dir.join(name);
        let Ok(f) = open_log(&p) else { continue };
        let Ok(m) = f.metadata() else { continue };
        let tracked = log
            .old
            .iter()
            .chain(log.live.iter())
            .any(|x| x.id.same_inode(&m));
        if tracked {
            continue;
        }
        let Ok(id) = Identity::of(&f) else { continue };
        let mut mg = Gen::new(f, id, p, 0, 0);
        mg.renamed_at = Some(now);
        log.old.push(mg);
    }
}

/// A file that appeared at the path: read from its start. If a racing directory search
/// already took it for a missed rotated generation, it is the live one: move it back, with
/// whatever was read of it.
fn set_new_live(log: &mut Log, file: File, id: Identity) {
    let len = file.metadata().map(|m| m.len()).unwrap_or(0);
    let same = |g: &Gen| g.id.dev == id.dev && g.id.ino == id.ino;
    let mut taken = None;
    while let Some(k) = log.old.iter().position(same) {
        let g = log.old.remove(k);
        // An entry read further than the file is long was matched to a reused inode: it is
        // not this file, drop it.
        if taken.is_none() && g.read_pos() <= len {
            taken = Some(g);
        }
    }
    log.live = Some(match taken {
        Some(mut g) => {
            g.renamed_at = None;
            g.shown = log.path.clone();
            g
        }
        None => Gen::new(file, id, log.path.clone(), 0, 0),
    });
}

fn scan_log(
    i: usize,
    log: &mut Log,
    opts: &Options,
    buf: &mut [u8],
    on: &mut dyn FnMut(Event<'_>),
) -> u64 {
    let now = Instant::now();
    // 1. What is at the path now?
    match fs::metadata(&log.path) {
        Ok(meta) => {
            log.missing_since = None;
            log.missing_reported = false;
            let replaced = log.live.as_ref().is_none_or(|g| !g.id.same_inode(&meta));
            if replaced {
                if let Some(g) = log.live.take() {
                    retire(log, g, now);
                }
                match open_log(&log.path).and_then(|f| Identity::of(&f).map(|id| (f, id))) {
                    Ok((f, id)) => {
                        // New since we last looked (or missing until now): all of it is new.
                        set_new_live(log, f, id);
                        log.failed_reported = false;
                    }
                    Err(e) => {
                        if !log.failed_reported {
                            log.failed_reported = true;
                            on(Event::Problem {
                                log: i,
                                path: &log.path,
                                why: format!("cannot open: {e}"),
                            });
                        }
                    }
                }
            }
        }
        Err(e) => {
            if let Some(g) = log.live.take() {
                retire(log, g, now);
            }
            if e.kind() == io::ErrorKind::NotFound {
                let since = *log.missing_since.get_or_insert(now);
                // A rename rotation leaves the path empty for a moment: only a gap longer
                // than rotate_quiet is worth a report.
                if !log.missing_reported && now.duration_since(since) >= opts.rotate_quiet {
                    log.missing_reported = true;
                    on(Event::Problem {
                        log: i,
                        path: &log.path,
                        why: "missing; waiting for it to appear".into(),
                    });
                }
            } else if !log.failed_reported {
                log.failed_reported = true;
                on(Event::Problem {
                    log: i,
                    path: &log.path,
                    why: format!("cannot stat: {e}"),
                });
            }
        }
    }

    // 2. The old generations, oldest first: their lines come before the new file's.
    let mut delivered = 0;
    let mut budget = STEP_BUDGET;
    let mut k = 0;
    while k < log.old.len() {
        let g = &mut log.old[k];
        // logrotate shifts names (.1 -> .2) at every rotation: say where the bytes are now.
        if fs::metadata(&g.shown).map_or(true, |m| !g.id.same_inode(&m)) {
            if let Some(p) = find_by_inode(&log.dir, g.id.dev, g.id.ino) {
                g.shown = p;
            }
        }
        let r = match g.read_new(i, buf, opts.max_line, budget, on) {
            Ok(r) => r,
            Err(e) => {
                let g = log.old.remove(k);
                on(Event::Problem {
                    log: i,
                    path: &g.shown,
                    why: format!(
                        "read failed ({e}); closed it; lines after its line {} may be lost",
                        g.line
                    ),
                });
                continue;
            }
        };
        g.lines_after_rename += r.lines;
        delivered += r.lines;
        budget = budget.saturating_sub(r.bytes);
        if !r.eof {
            // Out of budget: the rest of this log waits, to keep its order.
            return delivered;
        }
        let quiet_since = g.last_growth.max(g.renamed_at.unwrap_or(now));
        if log.live.is_some() && Instant::now().duration_since(quiet_since) >= opts.rotate_quiet {
            let g = log.old.remove(k);
            if g.held() > 0 {
                on(Event::Problem {
                    log: i,
                    path: &g.shown,
                    why: format!(
                        "ends in a partial line of {} bytes (line {}), abandoned when the file was closed",
                        g.held(),
                        g.line + 1
                    ),
                });
            }
            on(Event::Rotated {
                log: i,
                from: g.shown.clone(),
                lines_drained_after_rename: g.lines_after_rename,
            });
        } else {
            k += 1;
        }
    }

    // 3. The live file: truncated? then read.
    let Some(g) = log.live.as_mut() else {
        return delivered;
    };
    let checked = g.file.metadata().and_then(|m| {
        let shrunk = m.len() < g.read_pos();
        let replaced = !shrunk && !g.id.prefix_matches(&g.file)?;
        Ok((m.len(), shrunk || replaced))
    });
    match checked {
        Ok((_, true)) => {
            delivered += truncated(i, log, buf, opts, on);
        }
        Ok((len, false)) => {
            g.size_seen = g.size_seen.max(len);
            if (g.id.fp_len as usize) < FP_MAX && len > g.id.fp_len as u64 {
                if let Ok(id) = Identity::of(&g.file) {
                    g.id = id;
                }
            }
        }
        Err(_) => {}
    }
    let Some(g) = log.live.as_mut() else {
        return delivered;
    };
    match g.read_new(i, buf, opts.max_line, budget, on) {
        Ok(r) => {
            delivered += r.lines;
            log.failed_reported = false;
        }
        Err(e) => {
            if !log.failed_reported {
                log.failed_reported = true;
                on(Event::Problem {
                    log: i,
                    path: &log.path,
                    why: format!("read failed: {e}"),
                });
            }
        }
    }
    delivered
}

/// The live file was truncated in place (copytruncate) or rewritten: recover what we had not
/// read from the copy, estimate what is in neither file, and start over at its byte 0.
fn truncated(
    i: usize,
    log: &mut Log,
    buf: &mut [u8],
    opts: &Options,
    on: &mut dyn FnMut(Event<'_>),
) -> u64 {
    let Some(g) = log.live.as_mut() else { return 0 };
    let now = Instant::now();
    let (rate, mean_line) = g.rate();
    let dt = now.duration_since(g.caught_up_at).as_secs_f64();
    let read_pos = g.read_pos();
    let size_seen = g.size_seen.max(read_pos);
    let old_id = g.id;
    let new_id = Identity::of(&g.file).unwrap_or(old_id);
    let new_size = g.file.metadata().map(|m| m.len()).unwrap_or(0);

    let mut recovered_lines = 0;
    let mut copy_end = g.offset;
    let mut recovered_from = None;
    if let Some((name, f)) = find_copy(&log.dir, &old_id, &new_id) {
        let cid = Identity::of(&f).unwrap_or(old_id);
        let mut c = Gen::new(f, cid, name, g.offset, g.line);
        // A copy is complete once the truncation happened: read it to its end now.
        match c.read_new(i, buf, opts.max_line, u64::MAX, on) {
            Ok(r) => recovered_lines = r.lines,
            Err(e) => on(Event::Problem {
                log: i,
                path: &c.shown,
                why: format!("reading the copy failed: {e}"),
            }),
        }
        if c.held() > 0 {
            on(Event::Problem {
                log: i,
                path: &c.shown,
                why: format!(
                    "the copy ends in a partial line of {} bytes, abandoned",
                    c.held()
                ),
            });
        }
        copy_end = c.read_pos();
        recovered_from = Some(c.shown);
    }
    // Copied and compressed before we noticed (copytruncate without delaycompress): what it
    // holds past our offset is not read (compressed files never are), and its size is known.
    let mut in_compressed = 0;
    if recovered_from.is_none() {
        if let Some((gz, size)) = find_compressed(&log.dir, &old_id) {
            in_compressed = size.saturating_sub(read_pos);
            on(Event::Problem {
                log: i,
                path: &gz,
                why: format!(
                    "the copy was compressed before we read it: {in_compressed} bytes after line {} are only in it (counted as lost)",
                    g.line
                ),
            });
        }
    }

    // Bytes written since we were last caught up, from the recent write rate (the highest
    // over the last seconds, plus half again, plus a line: an estimate that errs high).
    // Of those, some are in the copy past what we had read, some are in the new file.
    let written = if rate > 0.0 {
        rate * dt * 1.5 + mean_line
    } else {
        0.0
    };
    let accounted = copy_end.saturating_sub(read_pos) as f64 + new_size as f64;
    // What fstat showed us before and neither we nor the copy have: lost for sure.
    let known = size_seen
        .saturating_sub(copy_end.max(read_pos))
        .max(in_compressed) as f64;
    let mut lost_bytes = (written - accounted).max(known).max(0.0);
    let ruled_out =
        rate == 0.0 && new_size == 0 && recovered_from.is_some() && copy_end >= size_seen;
    if lost_bytes < 1.0 && !ruled_out {
        lost_bytes = mean_line;
    }
    let lost_lines = if lost_bytes > 0.0 {
        (lost_bytes / mean_line).ceil().max(1.0) as u64
    } else {
        0
    };

    let Some(g) = log.live.as_mut() else {
        return recovered_lines;
    };
    g.restart(new_id);
    on(Event::Truncated {
        log: i,
        path: &g.shown,
        recovered_from,
        recovered_lines,
        suspected_lost_lines: lost_lines,
        suspected_lost_bytes: lost_bytes.ceil() as u64,
    });
    recovered_lines
}

#[cfg(test)]
mod tests;
