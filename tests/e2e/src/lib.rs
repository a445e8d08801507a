//! End-to-end harness: a real nginx on loopback, real upstream-side processes that fail in the
//! ways of `causes.md` §1, and the built `nginx-medic` binary run on the logs nginx wrote.
//!
//! Nothing here is simulated: nginx writes its own error and access lines, so the tests check the
//! parser against the exact wording of the installed nginx (Debian's 1.22.1 in CI), not against
//! what we believe nginx says.
//!
//! Rules the harness keeps:
//! - every process it starts is a child it owns; it stops them by PID on `Drop`, never by name;
//! - every nginx gets its own prefix (a temporary directory), config, ports on 127.0.0.1, pid
//!   file, logs and temp paths; the system instance is never touched;
//! - programs are run with argv, never through a shell;
//! - a missing prerequisite (nginx, openssl, the binary) is a panic with the fix, never a skip.
//!
//! ```no_run
//! use medic_e2e::incident::MixedIncident;
//! let staged = MixedIncident::stage();
//! let run = medic_e2e::medic(
//!     ["logs", "--format", "json", "--log-format", medic_e2e::nginx::LOG_FORMAT],
//!     [staged.error_log(), staged.access_log()],
//! );
//! assert!(run.success(), "{run}");
//! ```

pub mod busy;
pub mod diagnose;
pub mod dns;
pub mod examples;
pub mod http;
pub mod incident;
pub mod nginx;
pub mod php_fpm;
pub mod realhost;
pub mod stubs;
pub mod tls;

use std::ffi::OsStr;
use std::fmt;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

pub use nginx::{Nginx, Prefix};

/// A port on 127.0.0.1 that nothing listened on a moment ago.
///
/// The kernel picks it (bind to port 0); the listener is dropped at once, so the port is free for
/// whoever binds it next. Another process could take it in between; on a test machine that race
/// is rare enough, and nginx then fails to start with a clear `bind()` error.
///
/// Never the same port twice in one test binary: a scenario's "nothing listens here" port would
/// otherwise come back for the next stub it starts (the kernel hands a free port out again).
pub fn free_port() -> u16 {
    static GIVEN: std::sync::Mutex<Vec<u16>> = std::sync::Mutex::new(Vec::new());
    let mut given = GIVEN.lock().unwrap_or_else(|p| p.into_inner());
    loop {
        let l = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0 for a free port");
        let port = l
            .local_addr()
            .expect("local_addr of a bound listener")
            .port();
        if !given.contains(&port) {
            given.push(port);
            return port;
        }
    }
}

/// Whether this process runs with effective UID 0.
///
/// Read from `/proc/self/status` (`Uid: real effective saved fs`) because the workspace forbids
/// `unsafe`, and `geteuid` would need it.
pub fn is_root() -> bool {
    let status = std::fs::read_to_string("/proc/self/status").expect("read /proc/self/status");
    let line = status
        .lines()
        .find(|l| l.starts_with("Uid:"))
        .expect("a Uid: line in /proc/self/status");
    line.split_whitespace().nth(2) == Some("0")
}

/// Polls `ready` every 20 ms until it holds or `timeout` passes.
pub fn wait_until(timeout: Duration, mut ready: impl FnMut() -> bool) -> bool {
    let end = Instant::now() + timeout;
    loop {
        if ready() {
            return true;
        }
        if Instant::now() >= end {
            return false;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The `nginx-medic` binary under test.
///
/// `NGINX_MEDIC_BIN` if set; otherwise the binary next to the test executable's profile
/// directory (`target/<profile>/deps/<test>` or `target/<profile>/<bin>` ->
/// `target/<profile>/nginx-medic`). Cargo does not build another package's binary for an
/// integration test, hence the explicit build step in the panic message.
pub fn medic_bin() -> PathBuf {
    if let Some(p) = std::env::var_os("NGINX_MEDIC_BIN") {
        let p = PathBuf::from(p);
        assert!(
            p.is_file(),
            "NGINX_MEDIC_BIN={} is not a file; unset it or run `cargo build -p nginx-medic` first",
            p.display()
        );
        return p;
    }
    let exe = std::env::current_exe().expect("current_exe");
    let mut dir = exe
        .parent()
        .expect("the test executable has a directory")
        .to_path_buf();
    if dir.file_name() == Some(OsStr::new("deps")) {
        dir.pop();
    }
    let bin = dir.join("nginx-medic");
    assert!(
        bin.is_file(),
        "{} not found: run `cargo build -p nginx-medic` first (or set NGINX_MEDIC_BIN)",
        bin.display()
    );
    bin
}

/// Path of a program the scenarios need, or a panic that says how to get it.
pub(crate) fn require_program(path: &str, hint: &str) -> PathBuf {
    let p = PathBuf::from(path);
    assert!(p.is_file(), "{path} not found: {hint}");
    p
}

/// One run of the binary: exit status and both streams.
pub struct MedicRun {
    pub argv: Vec<String>,
    pub status: ExitStatus,
    pub stdout: String,
    pub stderr: String,
}

impl MedicRun {
    pub fn success(&self) -> bool {
        self.status.success()
    }

    pub fn code(&self) -> Option<i32> {
        self.status.code()
    }

    /// stdout as JSON; panics with the whole run if it is not.
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.stdout)
            .unwrap_or_else(|e| panic!("stdout is not JSON ({e}):\n{self}"))
    }
}

impl fmt::Display for MedicRun {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "$ {}", self.argv.join(" "))?;
        writeln!(f, "exit: {}", self.status)?;
        writeln!(f, "--- stdout ---\n{}", self.stdout)?;
        write!(f, "--- stderr ---\n{}", self.stderr)
    }
}

/// Runs `nginx-medic ARGS... FILES...` and waits for it (60 s at most).
pub fn medic<A, F>(args: A, files: F) -> MedicRun
where
    A: IntoIterator,
    A::Item: AsRef<OsStr>,
    F: IntoIterator,
    F::Item: AsRef<Path>,
{
    medic_env(args, files, &[])
}

/// As [`medic`], with `env` added to the binary's environment (e.g. `TZ`).
pub fn medic_env<A, F>(args: A, files: F, env: &[(&str, &str)]) -> MedicRun
where
    A: IntoIterator,
    A::Item: AsRef<OsStr>,
    F: IntoIterator,
    F::Item: AsRef<Path>,
{
    let bin = medic_bin();
    let mut cmd = Command::new(&bin);
    cmd.envs(env.iter().copied());
    for a in args {
        cmd.arg(a.as_ref());
    }
    for f in files {
        cmd.arg(f.as_ref());
    }
    // The environment first, as a shell would show it: `TZ=UTC nginx-medic ...`.
    let argv = env
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .chain(
            std::iter::once(cmd.get_program())
                .chain(cmd.get_args())
                .map(|a| a.to_string_lossy().into_owned()),
        )
        .collect();
    let child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("spawn {}: {e}", bin.display()));
    let out = wait_output(child, Duration::from_secs(60));
    MedicRun {
        argv,
        status: out.status,
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// `wait_with_output` with a deadline: a hung binary fails the test instead of hanging CI.
fn wait_output(child: std::process::Child, timeout: Duration) -> std::process::Output {
    let pid = child.id();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(child.wait_with_output());
    });
    match rx.recv_timeout(timeout) {
        Ok(out) => out.expect("wait for nginx-medic"),
        Err(_) => {
            // Our own child, by PID.
            let _ = Command::new("kill")
                .args(["-KILL", &pid.to_string()])
                .status();
            panic!("nginx-medic (pid {pid}) did not finish within {timeout:?}");
        }
    }
}
