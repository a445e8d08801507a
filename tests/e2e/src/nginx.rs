//! A private nginx: its own prefix, config, ports, pid file, logs and temp paths.
//!
//! It runs as `nginx -p PREFIX/ -c PREFIX/conf/nginx.conf -e PREFIX/logs/error.log` with
//! `daemon off;`, so the master is our direct child: we know its PID without trusting a file, we
//! reap it, and a crashed test cannot leave a daemon behind that outlives the harness. The pid
//! file is still written (and checked against the child) because nginx needs one somewhere, and
//! the default (`/run/nginx.pid`) is the system instance's.

use std::fmt::Write as _;
use std::fs;
use std::net::TcpStream;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use crate::{is_root, require_program, wait_until};

/// The access-log format of the scenarios (`log_format medic`, written to `logs/access.log`):
/// `combined` plus the upstream fields the diagnosis reads. It deliberately lacks
/// `$upstream_header_time`, as many real configs do. Every request is also logged in `combined`
/// to `logs/access_combined.log`.
pub const LOG_FORMAT: &str = "$remote_addr - $remote_user [$time_local] \"$request\" $status $body_bytes_sent \"$http_referer\" \"$http_user_agent\" $upstream_addr $upstream_status $upstream_response_time $request_time";

/// Where nginx is. `NGINX_BIN` overrides the Debian path.
pub fn nginx_bin() -> PathBuf {
    match std::env::var_os("NGINX_BIN") {
        Some(p) => PathBuf::from(p),
        None => require_program("/usr/sbin/nginx", "install nginx (scripts/test does)"),
    }
}

/// `nginx -v`, e.g. `nginx/1.22.1`.
pub fn nginx_version() -> String {
    let out = Command::new(nginx_bin())
        .arg("-v")
        .output()
        .expect("run nginx -v");
    // nginx prints its version on stderr: "nginx version: nginx/1.22.1".
    let text = String::from_utf8_lossy(&out.stderr);
    text.trim()
        .strip_prefix("nginx version: ")
        .unwrap_or(text.trim())
        .to_string()
}

/// A temporary nginx prefix directory, removed on drop.
pub struct Prefix {
    dir: tempfile::TempDir,
}

impl Prefix {
    /// Creates `/tmp/nginx-medic-XXXXXX/` with `conf/`, `logs/` and `temp/`.
    ///
    /// The directory is made 0755: as root, nginx workers run as `nobody` and must traverse it to
    /// reach the unix sockets inside (a worker that cannot would log EACCES for every scenario,
    /// not only the permission one).
    pub fn new() -> Prefix {
        let dir = tempfile::Builder::new()
            .prefix("nginx-medic-")
            .tempdir()
            .expect("create a temporary nginx prefix");
        fs::set_permissions(dir.path(), fs::Permissions::from_mode(0o755))
            .expect("chmod 0755 the nginx prefix");
        // The path goes into nginx.conf unquoted; keep it to characters nginx reads literally.
        let s = dir.path().to_str().expect("UTF-8 temp path");
        assert!(
            s.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"/._-".contains(&b)),
            "temporary directory {s:?} has characters unsafe in nginx.conf; set TMPDIR"
        );
        for sub in ["conf", "logs", "temp", "html"] {
            fs::create_dir(dir.path().join(sub)).expect("create prefix subdirectory");
        }
        Prefix { dir }
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// The prefix as a string, for config text.
    pub fn display(&self) -> &str {
        self.dir.path().to_str().expect("UTF-8 temp path")
    }

    pub fn join(&self, rel: impl AsRef<Path>) -> PathBuf {
        self.dir.path().join(rel)
    }

    pub fn conf(&self) -> PathBuf {
        self.join("conf/nginx.conf")
    }

    pub fn error_log(&self) -> PathBuf {
        self.join("logs/error.log")
    }

    /// The error-log lines holding every one of `needles`, and the whole log (for a message).
    pub fn error_lines_with(&self, needles: &[&str]) -> (Vec<String>, String) {
        let text = fs::read_to_string(self.error_log()).unwrap_or_default();
        let lines = text
            .lines()
            .filter(|l| needles.iter().all(|n| l.contains(n)))
            .map(str::to_string)
            .collect();
        (lines, text)
    }

    pub fn access_log(&self) -> PathBuf {
        self.join("logs/access.log")
    }

    /// The same requests in nginx's predefined `combined` format (no upstream fields).
    pub fn access_combined_log(&self) -> PathBuf {
        self.join("logs/access_combined.log")
    }

    pub fn pid_file(&self) -> PathBuf {
        self.join("logs/nginx.pid")
    }

    /// nginx's own stdout and stderr (startup failures land here before the error log opens).
    pub fn console_log(&self) -> PathBuf {
        self.join("nginx.console")
    }
}

impl Default for Prefix {
    fn default() -> Self {
        Prefix::new()
    }
}

/// The whole nginx.conf around an `http {}` body given by the scenario.
///
/// Every path nginx would otherwise take from its compiled-in defaults (`/var/log/nginx`,
/// `/var/lib/nginx/*`, `/run/nginx.pid`) is set to one inside the prefix.
pub fn config(prefix: &Prefix, http_body: &str) -> String {
    let p = prefix.display();
    let mut c = String::new();
    c.push_str("# Generated by medic-e2e (tests/e2e/src/nginx.rs) for one test run.\n");
    if is_root() {
        // Workers drop privileges, as with a packaged nginx, so permission checks are real.
        c.push_str("user nobody nogroup;\n");
    }
    let _ = write!(
        c,
        "daemon off;
master_process on;
worker_processes 1;
pid {p}/logs/nginx.pid;
error_log {p}/logs/error.log notice;

events {{
    worker_connections 256;
}}

http {{
    client_body_temp_path {p}/temp/client_body;
    proxy_temp_path {p}/temp/proxy;
    fastcgi_temp_path {p}/temp/fastcgi;
    uwsgi_temp_path {p}/temp/uwsgi;
    scgi_temp_path {p}/temp/scgi;

    default_type text/plain;
    log_format medic '{LOG_FORMAT}';
    access_log {p}/logs/access.log medic;
    access_log {p}/logs/access_combined.log combined;

{http_body}
}}
"
    );
    c
}

/// A running nginx master (and its workers), stopped on drop.
pub struct Nginx {
    child: Option<Child>,
    port: u16,
    pid_file: PathBuf,
    error_log: PathBuf,
    console_log: PathBuf,
}

impl Nginx {
    /// `n` GETs of `path`, one after the other, each answered with `want` (else a panic with
    /// nginx's diagnostics).
    pub fn get_n(&self, path: &str, n: usize, want: u16) {
        for i in 0..n {
            let got = crate::http::get(self.port(), path, Duration::from_secs(10));
            assert_eq!(
                got,
                want,
                "request {i} for {path}: nginx answered {got}, the staging expects {want}\n{}",
                self.diagnostics()
            );
        }
    }

    /// Writes `conf_text` to the prefix's `conf/nginx.conf`, starts nginx and waits until it
    /// accepts on 127.0.0.1:`port` (the config must listen there).
    pub fn start(prefix: &Prefix, conf_text: &str, port: u16) -> Nginx {
        Nginx::start_wrapped(prefix, conf_text, port, &[])
    }

    /// As [`Nginx::start`], with nginx run by `wrapper` (e.g. `medic-isolate ... --`), which
    /// must exec it (same PID).
    pub fn start_wrapped(
        prefix: &Prefix,
        conf_text: &str,
        port: u16,
        wrapper: &[&std::ffi::OsStr],
    ) -> Nginx {
        Nginx::spawn(prefix, conf_text, port, wrapper, &[])
    }

    /// As [`Nginx::start`], with `env` added to nginx's environment (e.g. `TZ`: nginx writes
    /// its error log and `$time_local` in the local time of its own process).
    pub fn start_env(prefix: &Prefix, conf_text: &str, port: u16, env: &[(&str, &str)]) -> Nginx {
        Nginx::spawn(prefix, conf_text, port, &[], env)
    }

    fn spawn(
        prefix: &Prefix,
        conf_text: &str,
        port: u16,
        wrapper: &[&std::ffi::OsStr],
        env: &[(&str, &str)],
    ) -> Nginx {
        let bin = nginx_bin();
        fs::write(prefix.conf(), conf_text).expect("write nginx.conf");
        let console = fs::File::create(prefix.console_log()).expect("create nginx.console");
        let mut cmd = match wrapper.split_first() {
            Some((program, args)) => {
                let mut c = Command::new(program);
                c.args(args).arg(&bin);
                c
            }
            None => Command::new(&bin),
        };
        let child = cmd
            .arg("-p")
            .arg(format!("{}/", prefix.display()))
            .arg("-c")
            .arg(prefix.conf())
            .arg("-e")
            .arg(prefix.error_log())
            .envs(env.iter().copied())
            .stdin(Stdio::null())
            .stdout(console.try_clone().expect("dup console file"))
            .stderr(console)
            .spawn()
            .unwrap_or_else(|e| panic!("spawn {}: {e}", bin.display()));
        let mut n = Nginx {
            child: Some(child),
            port,
            pid_file: prefix.pid_file(),
            error_log: prefix.error_log(),
            console_log: prefix.console_log(),
        };
        let mut exited = None;
        let up = wait_until(Duration::from_secs(10), || {
            if let Some(st) = n.child.as_mut().and_then(|c| c.try_wait().ok().flatten()) {
                exited = Some(st);
                return true;
            }
            TcpStream::connect(("127.0.0.1", port)).is_ok() && n.pid_file.is_file()
        });
        if let Some(st) = exited {
            n.child = None;
            panic!("nginx exited at startup ({st}):\n{}", n.diagnostics());
        }
        if !up {
            let d = n.diagnostics();
            n.stop();
            panic!("nginx did not accept on 127.0.0.1:{port} within 10 s:\n{d}");
        }
        n
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// Writes `conf_text` and reloads (SIGHUP to our master, by PID), then waits until the
    /// workers of the old config are gone (their PIDs were the master's children before).
    pub fn reload(&self, prefix: &Prefix, conf_text: &str) {
        let pid = self.pid().expect("a running nginx to reload");
        let children = |p: u32| {
            fs::read_to_string(format!("/proc/{p}/task/{p}/children"))
                .unwrap_or_default()
                .split_whitespace()
                .filter_map(|s| s.parse::<u32>().ok())
                .collect::<Vec<u32>>()
        };
        let old = children(pid);
        fs::write(prefix.conf(), conf_text).expect("write nginx.conf");
        let st = Command::new("kill")
            .args(["-HUP", &pid.to_string()])
            .status()
            .expect("run kill -HUP");
        assert!(st.success(), "kill -HUP {pid}: {st}");
        let done = wait_until(Duration::from_secs(10), || {
            let now = children(pid);
            !now.is_empty() && now.iter().all(|c| !old.contains(c))
        });
        assert!(done, "nginx did not reload:\n{}", self.diagnostics());
    }

    /// The master's PID.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// What nginx said on its console and in its error log, for panic messages.
    pub fn diagnostics(&self) -> String {
        let console = fs::read_to_string(&self.console_log).unwrap_or_default();
        let errlog = fs::read_to_string(&self.error_log).unwrap_or_default();
        format!("--- nginx console ---\n{console}--- error.log ---\n{errlog}")
    }

    /// Fast shutdown (SIGTERM to the master, which stops its workers), then reap it.
    ///
    /// After this the logs are complete: nginx writes log lines with `write(2)` as they happen
    /// (no `buffer=` here), and the master's exit means every worker has exited.
    pub fn stop(&mut self) {
        let Some(mut child) = self.child.take() else {
            return;
        };
        let pid = child.id();
        // The pid file must name our child; if it does not, signal only the child we know.
        if let Ok(text) = fs::read_to_string(&self.pid_file) {
            let from_file: Option<u32> = text.trim().parse().ok();
            assert!(
                from_file.is_none() || from_file == Some(pid),
                "pid file {} says {text:?}, but our nginx master is {pid}",
                self.pid_file.display()
            );
        }
        let _ = Command::new("kill")
            .args(["-TERM", &pid.to_string()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
        let gone = wait_until(Duration::from_secs(10), || {
            matches!(child.try_wait(), Ok(Some(_)))
        });
        if !gone {
            // Workers do not exit when their master dies, so kill them first, by the PIDs whose
            // parent is our master; then the master, which is our own child.
            for worker in children_of(pid) {
                let _ = Command::new("kill")
                    .args(["-KILL", &worker.to_string()])
                    .status();
            }
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// PIDs whose parent is `parent`, from `/proc/*/stat` (field 4, after the `(comm)` field, which
/// may itself hold spaces and parentheses).
fn children_of(parent: u32) -> Vec<u32> {
    let Ok(dir) = fs::read_dir("/proc") else {
        return Vec::new();
    };
    dir.filter_map(|e| {
        let e = e.ok()?;
        let pid: u32 = e.file_name().to_str()?.parse().ok()?;
        let stat = fs::read_to_string(e.path().join("stat")).ok()?;
        let after_comm = &stat[stat.rfind(')')? + 1..];
        let ppid: u32 = after_comm.split_whitespace().nth(1)?.parse().ok()?;
        (ppid == parent).then_some(pid)
    })
    .collect()
}

impl Drop for Nginx {
    fn drop(&mut self) {
        self.stop();
    }
}

/// What `nginx -t` said about a config: whether it passed, and its stderr.
pub struct ConfigTest {
    pub ok: bool,
    pub stderr: String,
}

/// Writes `conf_text` to the prefix's `conf/nginx.conf` and runs the real
/// `nginx -t -p PREFIX/ -c PREFIX/conf/nginx.conf -e PREFIX/logs/error.log` on it, so a scenario
/// knows its config is one nginx accepts (or rejects, with nginx's own words).
pub fn test_config(prefix: &Prefix, conf_text: &str) -> ConfigTest {
    fs::write(prefix.conf(), conf_text).expect("write nginx.conf");
    let out = Command::new(nginx_bin())
        .arg("-t")
        .arg("-p")
        .arg(format!("{}/", prefix.display()))
        .arg("-c")
        .arg(prefix.conf())
        .arg("-e")
        .arg(prefix.error_log())
        .stdin(Stdio::null())
        .output()
        .expect("run nginx -t");
    ConfigTest {
        ok: out.status.success(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// The 1-based number of the first line of `text` that contains `needle`.
pub fn line_of(text: &str, needle: &str) -> u32 {
    text.lines()
        .position(|l| l.contains(needle))
        .map(|i| i as u32 + 1)
        .unwrap_or_else(|| panic!("no line with {needle:?} in:\n{text}"))
}
