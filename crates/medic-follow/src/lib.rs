//! Follows log files (nginx error and access logs) through logrotate without losing a line.
//!
//! `tail -F` loses lines at every rotation: nginx keeps writing to the renamed file until it
//! gets `USR1` (logrotate's `postrotate`), and with `copytruncate` whatever is written between
//! the copy and the truncation is gone. A follower that diagnoses 502s from those lines must
//! either see them or say how many it could not see. This crate:
//!
//! - identifies a file by device + inode + a checksum of its first bytes ([`ident`]), so a
//!   reused inode or an in-place truncation is not mistaken for the file we were reading;
//! - after a rename, keeps draining the old inode until it has been quiet for
//!   [`Options::rotate_quiet`] and the new file exists, and delivers its lines before the new
//!   file's (several old generations may be open at once);
//! - after a truncation, reads the rest from the copy (`access.log.1`) and reports the lines
//!   that may have been written between the copy and the truncation ([`Event::Truncated`]);
//! - never delivers a partial line; never reads a compressed rotation (`.gz`, ...);
//! - saves offsets atomically ([`Follower::save`]) so a restart, even after `kill -9`,
//!   delivers every line at least once, including lines written to files rotated meanwhile.
//!
//! ## How it is tested
//!
//! Besides unit tests, three load tests run a writer that behaves like nginx (one `write` per
//! line, O_APPEND, reopening its path only when "signalled") at 50,000 lines/s:
//! `tests/rename.rs` (100 rename rotations, `USR1` 0-2 s late: no line lost or duplicated,
//! every old fd closed), `tests/copytruncate.rs` (lines missing <= lines counted as suspected
//! lost) and `tests/resume.rs` (`kill -9` of the `follow-lines` helper at random points: no
//! line lost). Each prints its seed (`MEDIC_FOLLOW_SEED` replays a run) and its figures; the
//! `#[ignore]`d variants are the benchmarks:
//! `cargo test -p medic-follow --release -- --ignored --nocapture`.
//!
//! ```no_run
//! use std::time::Duration;
//! use medic_follow::{Event, Follower, Options};
//!
//! let paths = ["/var/log/nginx/error.log".into(), "/var/log/nginx/access.log".into()];
//! let mut f = Follower::open(&paths, Options::default())?;
//! loop {
//!     f.step(Duration::from_secs(1), &mut |ev| match ev {
//!         Event::Lines { log, bytes, .. } => { let _ = (log, bytes); /* parse */ }
//!         Event::Problem { path, why, .. } => eprintln!("{}: {why}", path.display()),
//!         _ => {}
//!     })?;
//!     f.save()?;
//! }
//! # Ok::<(), medic_follow::FollowError>(())
//! ```

mod follower;
mod gen;
pub mod ident;
mod siblings;
mod state;
mod watch;

use std::path::{Path, PathBuf};
use std::time::Duration;

pub use follower::Follower;

/// How to follow.
#[derive(Debug, Clone)]
pub struct Options {
    /// false: like `tail -f`, start at the current end (unless a saved state says otherwise).
    pub from_start: bool,
    /// Where offsets are saved; `None`: no persistence.
    pub state_file: Option<PathBuf>,
    /// Fallback polling period, and how often files are checked even without an event.
    pub poll_interval: Duration,
    /// A renamed-away file is drained until it has been quiet this long and the new file
    /// exists: nginx writes to the old inode until it gets `USR1`.
    pub rotate_quiet: Duration,
    /// Longer lines are skipped and reported ([`Event::Overlong`]).
    pub max_line: usize,
}

impl Default for Options {
    fn default() -> Options {
        Options {
            from_start: false,
            state_file: None,
            poll_interval: Duration::from_millis(250),
            rotate_quiet: Duration::from_secs(2),
            max_line: 1 << 20,
        }
    }
}

/// What a step found.
#[derive(Debug)]
pub enum Event<'a> {
    /// Whole lines, each ending in '\n', in file order, from one file. `log` indexes the paths
    /// given to [`Follower::open`]. `path` is where these bytes are now (the rotated name when
    /// drained after a rename, if known; the copy when recovered after a truncation).
    /// `first_line` is the 1-based line number in that file of the first line.
    Lines {
        log: usize,
        path: &'a Path,
        first_line: u64,
        bytes: &'a [u8],
    },
    /// A line longer than [`Options::max_line`] was skipped (`len` without its '\n').
    Overlong {
        log: usize,
        path: &'a Path,
        line: u64,
        len: u64,
    },
    /// A renamed-away generation was drained and closed. `from` is its name when closed (the
    /// configured path if it could not be found: deleted, or moved to another directory).
    Rotated {
        log: usize,
        from: PathBuf,
        lines_drained_after_rename: u64,
    },
    /// The file was truncated in place (copytruncate). What we had not read was recovered
    /// from `recovered_from` (`recovered_lines`, delivered as `Lines` just before this event);
    /// lines written after the copy and before the truncation are in neither file: the
    /// `suspected_lost_*` figures are an estimate that errs on the high side, never zero when
    /// a loss cannot be ruled out. The file is then read again from its start.
    Truncated {
        log: usize,
        path: &'a Path,
        recovered_from: Option<PathBuf>,
        recovered_lines: u64,
        suspected_lost_lines: u64,
        suspected_lost_bytes: u64,
    },
    /// Something could not be read or checked: a missing file (still waited for), an
    /// unreadable one, a partial line abandoned at the end of a rotated file, an unusable
    /// state file (`path` = the state file, `log` = 0), an inotify overflow (rescanned) ...
    Problem {
        log: usize,
        path: &'a Path,
        why: String,
    },
}

/// What stops the follower. Problems with one log are [`Event::Problem`]s, not errors.
#[derive(Debug, thiserror::Error)]
pub enum FollowError {
    #[error("no log file to follow")]
    NoPaths,
    #[error("{op} {}: {source}", path.display())]
    Io {
        op: &'static str,
        path: PathBuf,
        source: std::io::Error,
    },
}
