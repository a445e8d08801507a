//! Waking up when a log directory changes: inotify on the parent directories, or a plain
//! sleep when inotify is unavailable (exhausted `max_user_instances`, some container or
//! network filesystems). Events only wake the follower up; it then checks every file with an
//! `fstat`, so a lost or coalesced event costs latency, never a line.

use std::os::fd::AsFd;
use std::path::{Path, PathBuf};
use std::time::Duration;

use nix::errno::Errno;
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::sys::inotify::{AddWatchFlags, InitFlags, Inotify};

/// What a wait ended with.
#[derive(Debug, PartialEq, Eq)]
pub enum Woke {
    Changed,
    TimedOut,
    /// The kernel dropped events (IN_Q_OVERFLOW): everything must be rescanned.
    Overflow,
}

pub struct Watch {
    inotify: Option<Inotify>,
    /// Directories, and whether a watch is in place on each.
    dirs: Vec<(PathBuf, bool)>,
}

fn mask() -> AddWatchFlags {
    AddWatchFlags::IN_MODIFY
        | AddWatchFlags::IN_CREATE
        | AddWatchFlags::IN_MOVED_FROM
        | AddWatchFlags::IN_MOVED_TO
        | AddWatchFlags::IN_DELETE
        | AddWatchFlags::IN_ATTRIB
        | AddWatchFlags::IN_CLOSE_WRITE
        | AddWatchFlags::IN_DELETE_SELF
        | AddWatchFlags::IN_MOVE_SELF
}

impl Watch {
    /// Watches `dirs` with inotify if `use_inotify` and the kernel lets us, else polls.
    pub fn new(dirs: &[PathBuf], use_inotify: bool) -> Watch {
        let inotify = use_inotify
            .then(|| Inotify::init(InitFlags::IN_NONBLOCK | InitFlags::IN_CLOEXEC).ok())
            .flatten();
        let mut w = Watch {
            inotify,
            dirs: Vec::new(),
        };
        for d in dirs {
            if !w.dirs.iter().any(|(x, _)| x == d) {
                w.dirs.push((d.clone(), false));
            }
        }
        w.add_missing();
        w
    }

    /// Whether inotify is in use (false: polling only).
    pub fn active(&self) -> bool {
        self.inotify.is_some()
    }

    /// Puts watches on directories that did not exist (or were recreated) since last time.
    pub fn add_missing(&mut self) {
        let Some(ino) = &self.inotify else { return };
        for (dir, watched) in &mut self.dirs {
            if !*watched {
                *watched = ino.add_watch(dir.as_path(), mask()).is_ok();
            }
        }
    }

    /// Waits up to `timeout` for a change in one of the directories.
    pub fn wait(&mut self, timeout: Duration) -> Woke {
        let Some(ino) = &self.inotify else {
            std::thread::sleep(timeout);
            return Woke::TimedOut;
        };
        let ms = timeout.as_millis().min(u16::MAX as u128) as u16;
        let mut fds = [PollFd::new(ino.as_fd(), PollFlags::POLLIN)];
        match poll(&mut fds, PollTimeout::from(ms)) {
            Ok(0) => return Woke::TimedOut,
            Ok(_) => {}
            Err(Errno::EINTR) => return Woke::Changed,
            Err(_) => {
                std::thread::sleep(timeout);
                return Woke::TimedOut;
            }
        }
        let mut woke = Woke::Changed;
        let mut lost_dir = false;
        // Drain the queue: one wake-up covers every event read here.
        loop {
            match ino.read_events() {
                Ok(evs) if evs.is_empty() => break,
                Ok(evs) => {
                    for e in evs {
                        if e.mask.contains(AddWatchFlags::IN_Q_OVERFLOW) {
                            woke = Woke::Overflow;
                        }
                        if e.mask.contains(AddWatchFlags::IN_IGNORED) {
                            lost_dir = true;
                        }
                    }
                }
                Err(Errno::EINTR) => {}
                Err(_) => break,
            }
        }
        if lost_dir {
            // A watched directory was removed or moved: watch it again when it is back. The
            // kernel does not say which one without a wd map, so re-add them all (add_watch on
            // an already watched path only updates its mask).
            for (_, watched) in &mut self.dirs {
                *watched = false;
            }
            self.add_missing();
        }
        woke
    }

    pub fn dirs(&self) -> impl Iterator<Item = &Path> {
        self.dirs.iter().map(|(d, _)| d.as_path())
    }
}
