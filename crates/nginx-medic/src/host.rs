//! The seam between gathering and the system (trippy's model): what the supervisor gatherer
//! does to the host — read a file, list a directory, run a program with argv, read the clock —
//! behind one small trait, with the real host ([`System`]) and a host that answers from a
//! recording ([`Replay`]). [`Recorder`] wraps a host and keeps every answer, so a run on a real
//! server can be replayed anywhere, without root, through the same gatherer.

use std::collections::BTreeMap;
use std::io;
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::Command;
use std::sync::Mutex;
use std::time::Duration;

use medic_parse::config::fs::{DiskFs, FileSystem};
use serde::{Deserialize, Serialize};

/// A program to run: argv (never a shell), its environment, the user to run it as.
#[derive(Clone, Debug, Default)]
pub struct Cmd {
    pub argv: Vec<String>,
    /// Start from an empty environment (pm2 copies its caller's whole environment into the
    /// app records it prints).
    pub clear_env: bool,
    pub env: Vec<(String, String)>,
    /// Run as this uid/gid (root only): a pm2 daemon is asked as its own user.
    pub user: Option<(u32, u32)>,
    pub timeout: Duration,
}

impl Cmd {
    pub fn new<S: AsRef<str>>(argv: &[S], timeout: Duration) -> Cmd {
        Cmd {
            argv: argv.iter().map(|a| a.as_ref().to_string()).collect(),
            timeout,
            ..Cmd::default()
        }
    }

    /// The key a recording files the answer under: argv, and the environment and user that
    /// change the answer.
    pub fn key(&self) -> String {
        let mut k = self.argv.join(" ");
        for (n, v) in &self.env {
            k.push_str(&format!(" [{n}={v}]"));
        }
        if let Some((u, g)) = self.user {
            k.push_str(&format!(" [as {u}:{g}]"));
        }
        k
    }
}

/// Why a program run failed.
#[derive(Clone, Debug, thiserror::Error, Serialize, Deserialize)]
pub enum RunError {
    #[error("{program} not found")]
    NotFound { program: String },
    #[error("{program} did not finish within {secs} s (killed)")]
    TimedOut { program: String, secs: f64 },
    #[error("{program} failed ({status}): {stderr}")]
    Failed {
        program: String,
        status: String,
        stdout: String,
        stderr: String,
    },
    #[error("run {program}: {error}")]
    Io { program: String, error: String },
    #[error("{program}: not in the recording")]
    NotRecorded { program: String },
}

/// What gathering needs from a host.
pub trait Host: FileSystem + Sync {
    /// Runs `cmd`; its stdout (lossy UTF-8) when it exits 0 in time.
    fn run(&self, cmd: &Cmd) -> Result<String, RunError>;
    /// Seconds since the epoch.
    fn now(&self) -> i64;
    /// Whether this process is root (and may ask a pm2 daemon as its own user).
    fn is_root(&self) -> bool;
    /// The name of a user (through NSS: LDAP and sssd users too).
    fn user_name(&self, uid: u32) -> Option<String>;
}

/// The machine this runs on.
#[derive(Debug, Default)]
pub struct System {
    fs: DiskFs,
}

impl FileSystem for System {
    fn read(&self, path: &str) -> io::Result<Vec<u8>> {
        self.fs.read(path)
    }
    fn exists(&self, path: &str) -> bool {
        self.fs.exists(path)
    }
    fn is_dir(&self, path: &str) -> bool {
        self.fs.is_dir(path)
    }
    fn list_dir(&self, path: &str) -> io::Result<Vec<String>> {
        self.fs.list_dir(path)
    }
}

impl Host for System {
    fn run(&self, cmd: &Cmd) -> Result<String, RunError> {
        let program = cmd.argv.first().cloned().unwrap_or_default();
        let mut c = Command::new(&program);
        c.args(cmd.argv.iter().skip(1));
        if cmd.clear_env {
            c.env_clear();
            c.env(
                "PATH",
                std::env::var_os("PATH").unwrap_or_else(|| "/usr/sbin:/usr/bin:/sbin:/bin".into()),
            );
        }
        c.env("LC_ALL", "C").env("SYSTEMD_PAGER", "");
        for (k, v) in &cmd.env {
            c.env(k, v);
        }
        if let Some((uid, gid)) = cmd.user {
            c.uid(uid).gid(gid);
        }
        let out = match crate::exec::run(&mut c, cmd.timeout) {
            Ok(o) => o,
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                return Err(RunError::NotFound { program })
            }
            Err(e) if e.kind() == io::ErrorKind::TimedOut => {
                return Err(RunError::TimedOut {
                    program,
                    secs: cmd.timeout.as_secs_f64(),
                })
            }
            Err(e) => {
                return Err(RunError::Io {
                    program,
                    error: e.to_string(),
                })
            }
        };
        let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
        if out.status.success() {
            Ok(stdout)
        } else {
            Err(RunError::Failed {
                program,
                status: out.status.to_string(),
                stdout,
                stderr: String::from_utf8_lossy(&out.stderr).trim().to_string(),
            })
        }
    }

    fn now(&self) -> i64 {
        chrono::Utc::now().timestamp()
    }

    fn is_root(&self) -> bool {
        nix::unistd::geteuid().is_root()
    }

    fn user_name(&self, uid: u32) -> Option<String> {
        nix::unistd::User::from_uid(uid.into())
            .ok()
            .flatten()
            .map(|u| u.name)
    }
}

/// Every answer a host gave, as data: what a recorded run replays.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct Recording {
    pub now: i64,
    pub root: bool,
    /// `Cmd::key` -> the answer.
    pub runs: BTreeMap<String, Result<String, RunError>>,
    /// Path -> contents (lossy UTF-8), or the error.
    pub files: BTreeMap<String, Result<String, String>>,
    /// Directory -> names, or the error.
    pub dirs: BTreeMap<String, Result<Vec<String>, String>>,
    /// uid -> user name.
    #[serde(default)]
    pub users: BTreeMap<u32, Option<String>>,
    /// Path -> whether anything is there, and whether it is a directory (globs ask both).
    #[serde(default)]
    pub exists: BTreeMap<String, bool>,
    #[serde(default)]
    pub is_dir: BTreeMap<String, bool>,
}

/// A host that answers from a [`Recording`]: anything not recorded does not exist.
#[derive(Debug)]
pub struct Replay(pub Recording);

impl FileSystem for Replay {
    fn read(&self, path: &str) -> io::Result<Vec<u8>> {
        match self.0.files.get(path) {
            Some(Ok(s)) => Ok(s.clone().into_bytes()),
            Some(Err(e)) => Err(io::Error::other(e.clone())),
            None => Err(io::Error::new(
                io::ErrorKind::NotFound,
                format!("{path}: not in the recording"),
            )),
        }
    }
    fn exists(&self, path: &str) -> bool {
        self.0.exists.get(path).copied().unwrap_or_else(|| {
            matches!(self.0.files.get(path), Some(Ok(_))) || self.0.dirs.contains_key(path)
        })
    }
    fn is_dir(&self, path: &str) -> bool {
        self.0
            .is_dir
            .get(path)
            .copied()
            .unwrap_or_else(|| matches!(self.0.dirs.get(path), Some(Ok(_))))
    }
    fn list_dir(&self, path: &str) -> io::Result<Vec<String>> {
        match self.0.dirs.get(path) {
            Some(Ok(v)) => Ok(v.clone()),
            Some(Err(e)) => Err(io::Error::other(e.clone())),
            None => Err(io::Error::new(
                io::ErrorKind::NotFound,
                format!("{path}: not in the recording"),
            )),
        }
    }
}

impl Host for Replay {
    fn run(&self, cmd: &Cmd) -> Result<String, RunError> {
        self.0
            .runs
            .get(&cmd.key())
            .cloned()
            .unwrap_or_else(|| Err(RunError::NotRecorded { program: cmd.key() }))
    }
    fn now(&self) -> i64 {
        self.0.now
    }
    fn is_root(&self) -> bool {
        self.0.root
    }
    fn user_name(&self, uid: u32) -> Option<String> {
        self.0.users.get(&uid).cloned().flatten()
    }
}

/// Wraps a host and records every answer it gives.
pub struct Recorder<'h> {
    inner: &'h dyn Host,
    rec: Mutex<Recording>,
}

impl<'h> Recorder<'h> {
    pub fn new(inner: &'h dyn Host) -> Recorder<'h> {
        Recorder {
            inner,
            rec: Mutex::new(Recording {
                now: inner.now(),
                root: inner.is_root(),
                ..Recording::default()
            }),
        }
    }

    pub fn into_recording(self) -> Recording {
        self.rec.into_inner().unwrap_or_else(|e| e.into_inner())
    }

    fn with(&self, f: impl FnOnce(&mut Recording)) {
        let mut r = self.rec.lock().unwrap_or_else(|e| e.into_inner());
        f(&mut r);
    }
}

impl FileSystem for Recorder<'_> {
    fn read(&self, path: &str) -> io::Result<Vec<u8>> {
        let r = self.inner.read(path);
        let v = match &r {
            Ok(b) => Ok(String::from_utf8_lossy(b).into_owned()),
            Err(e) => Err(e.to_string()),
        };
        self.with(|rec| {
            rec.files.insert(path.to_string(), v);
        });
        r
    }
    fn exists(&self, path: &str) -> bool {
        let e = self.inner.exists(path);
        self.with(|rec| {
            rec.exists.insert(path.to_string(), e);
        });
        e
    }
    fn is_dir(&self, path: &str) -> bool {
        let d = self.inner.is_dir(path);
        self.with(|rec| {
            rec.is_dir.insert(path.to_string(), d);
        });
        d
    }
    fn list_dir(&self, path: &str) -> io::Result<Vec<String>> {
        let r = self.inner.list_dir(path);
        let v = match &r {
            Ok(names) => Ok(names.clone()),
            Err(e) => Err(e.to_string()),
        };
        self.with(|rec| {
            rec.dirs.insert(path.to_string(), v);
        });
        r
    }
}

impl Host for Recorder<'_> {
    fn run(&self, cmd: &Cmd) -> Result<String, RunError> {
        let r = self.inner.run(cmd);
        self.with(|rec| {
            rec.runs.insert(cmd.key(), r.clone());
        });
        r
    }
    fn now(&self) -> i64 {
        self.inner.now()
    }
    fn is_root(&self) -> bool {
        self.inner.is_root()
    }
    fn user_name(&self, uid: u32) -> Option<String> {
        let n = self.inner.user_name(uid);
        self.with(|rec| {
            rec.users.insert(uid, n.clone());
        });
        n
    }
}

/// `name` in `PATH` (or the usual system directories when `PATH` is unset), on `host`.
pub fn find_program(host: &dyn Host, name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")
        .unwrap_or_else(|| "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin".into());
    std::env::split_paths(&path)
        .map(|d| d.join(name))
        .find(|p| host.exists(&p.to_string_lossy()))
}
