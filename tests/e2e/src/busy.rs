//! A busy host: programs that have nothing to do with the scenario's nginx, running beside it.
//!
//! Real servers run other things. A diagnosis may blame only what the evidence ties to the
//! failing target; a listener, a PHP-FPM pool or an OOM kill that merely exists on the same host
//! is no such evidence. A [`BusyHost`] puts beside a scenario:
//! - [`PYTHON_SERVERS`] `python3 -m http.server PORT --bind 127.0.0.1` (real listeners of a
//!   common program, on free ports nginx never names);
//! - a second PHP-FPM master (`php-fpm8.2 -F -y CONF` in its own prefix, pid file and log, see
//!   [`crate::php_fpm`]) with one pool on a unix socket in that prefix, a path nginx never names;
//! - with [`shared`], one unrelated OOM kill ([`OomKill`]): a `python3` the kernel's OOM killer
//!   kills in a memory cgroup of its own, before the first scenario.
//!
//! [`shared`] is the busy host of a whole test binary: [`crate::diagnose::serial`] and every live
//! `diagnose*` helper start it once, so every live scenario runs beside it without saying so.
//! [`BusyHost::start`] is one for a single test, stopped on drop.
//!
//! Every process is our child, run through `setpriv --pdeathsig` (util-linux): a static is never
//! dropped, so the kernel, not a destructor, stops the shared one's processes when the test
//! binary exits (even by SIGKILL). They are also stopped by PID on drop.

use std::ffi::OsStr;
use std::fs;
use std::io::Write;
use std::net::TcpStream;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::ExitStatusExt;
use std::panic::{catch_unwind, resume_unwind, AssertUnwindSafe};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{mpsc, OnceLock};
use std::time::Duration;

use serde_json::Value;

use crate::php_fpm::{PhpFpm, Pool};
use crate::{free_port, is_root, require_program, wait_until};

/// How many unrelated `python3 -m http.server` listeners a [`BusyHost`] runs.
pub const PYTHON_SERVERS: usize = 3;

/// The system's Python (a packaged program, as on a real server), not a user's shim.
pub const PYTHON: &str = "/usr/bin/python3";

/// util-linux's `setpriv`: `--pdeathsig SIG` sets `PR_SET_PDEATHSIG` and execs the program (same
/// PID). The workspace forbids `unsafe`, so `pre_exec` + `prctl` is not an option.
pub const SETPRIV: &str = "/usr/bin/setpriv";

/// `memory.max` (v2) or `memory.limit_in_bytes` (v1) of the unrelated OOM kill's cgroup.
pub const OOM_LIMIT: u64 = 32 << 20;

/// What the unrelated `python3` runs: waits for one byte on stdin (by then it is in its memory
/// cgroup, so every page it touches is charged there), then writes 200 MiB of zeros.
pub const OOM_SCRIPT: &str = "import sys; sys.stdin.read(1); x = bytearray(200 << 20)";

/// The name of the shared busy host's directory: `medic-busy-shared-<pid of the test binary>-`.
const SHARED_DIR_PREFIX: &str = "medic-busy-shared-";

/// The name of the OOM kill's memory cgroup: `medic-busy-oom-<pid of the test binary>`.
const OOM_CGROUP_PREFIX: &str = "medic-busy-oom-";

/// Unrelated programs running beside the scenario, stopped on drop.
pub struct BusyHost {
    dir: tempfile::TempDir,
    http: Vec<(u16, Child)>,
    fpm: Option<PhpFpm>,
    oom: Option<OomKill>,
}

/// An unrelated process the kernel's OOM killer killed, and what the kernel logged.
#[derive(Clone, Debug)]
pub struct OomKill {
    /// The PID of the killed `python3` (gone now).
    pub pid: u32,
    /// The memory cgroup it was killed in (removed since).
    pub cgroup: PathBuf,
    /// The kernel's `Memory cgroup out of memory: Killed process PID (python3) ...` line, as
    /// `dmesg` shows it.
    pub kernel_line: String,
}

static SHARED: OnceLock<BusyHost> = OnceLock::new();

/// The test binary's busy host if [`shared`] started it (every live scenario does).
pub fn running() -> Option<&'static BusyHost> {
    SHARED.get()
}

/// The busy host of this test binary: started on the first call (and the unrelated OOM kill
/// staged), then shared by every scenario until the binary exits.
///
/// `PR_SET_PDEATHSIG` fires when the *thread* that spawned a process ends, and libtest runs each
/// test on a thread of its own; so the processes are spawned by a thread that never ends, and
/// die with the binary.
pub fn shared() -> &'static BusyHost {
    SHARED.get_or_init(|| {
        let (tx, rx) = mpsc::channel();
        std::thread::Builder::new()
            .name("medic-busy-host".into())
            .spawn(move || {
                let started = catch_unwind(AssertUnwindSafe(|| {
                    sweep_leftovers();
                    let dir = tempfile::Builder::new()
                        .prefix(&format!("{SHARED_DIR_PREFIX}{}-", std::process::id()))
                        .tempdir()
                        .expect("create the shared busy host's directory");
                    let mut host = BusyHost::start_in(dir);
                    host.oom = Some(stage_oom_kill());
                    host
                }));
                let _ = tx.send(started);
                // The parent of every process above, for the `--pdeathsig` of each: never ends.
                loop {
                    std::thread::park();
                }
            })
            .expect("spawn the busy host's thread");
        match rx.recv().expect("the busy host's thread answers") {
            Ok(host) => host,
            Err(panic) => resume_unwind(panic),
        }
    })
}

/// `setpriv --pdeathsig SIG -- PROGRAM`: PROGRAM gets `sig` when the spawning thread ends.
fn orphan_proof(sig: &str, program: &Path) -> Command {
    let setpriv = require_program(SETPRIV, "apt-get install util-linux");
    let mut cmd = Command::new(setpriv);
    cmd.args(["--pdeathsig", sig, "--"]).arg(program);
    cmd
}

impl BusyHost {
    /// Starts the unrelated listeners and waits until each accepts (or its socket exists).
    /// No OOM kill: that is staged once per test binary, by [`shared`].
    pub fn start() -> BusyHost {
        let dir = tempfile::Builder::new()
            .prefix("medic-busy-")
            .tempdir()
            .expect("create the busy host's directory");
        BusyHost::start_in(dir)
    }

    fn start_in(dir: tempfile::TempDir) -> BusyHost {
        let python = require_program(PYTHON, "apt-get install python3");
        // PHP-FPM workers run as `nobody` when we are root: they must traverse the directory.
        fs::set_permissions(dir.path(), fs::Permissions::from_mode(0o755))
            .expect("chmod 0755 the busy host's directory");
        let www = dir.path().join("www");
        fs::create_dir(&www).expect("create the http.server directory");
        fs::write(www.join("index.html"), "an unrelated site\n").expect("write index.html");

        let mut host = BusyHost {
            dir,
            http: Vec::new(),
            fpm: None,
            oom: None,
        };
        for _ in 0..PYTHON_SERVERS {
            let port = free_port();
            let child = orphan_proof("KILL", &python)
                .args([
                    "-m",
                    "http.server",
                    &port.to_string(),
                    "--bind",
                    "127.0.0.1",
                ])
                .current_dir(&www)
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .unwrap_or_else(|e| panic!("spawn {PYTHON} -m http.server {port}: {e}"));
            host.http.push((port, child));
        }
        for (port, child) in &mut host.http {
            let mut exited = None;
            let up = wait_until(Duration::from_secs(10), || {
                if let Ok(Some(st)) = child.try_wait() {
                    exited = Some(st);
                    return true;
                }
                TcpStream::connect(("127.0.0.1", *port)).is_ok()
            });
            assert!(
                up && exited.is_none(),
                "python3 -m http.server {port} did not listen within 10 s (exit: {exited:?})"
            );
        }

        let fpm_prefix = host.dir.path().join("fpm");
        fs::create_dir(&fpm_prefix).expect("create the PHP-FPM prefix");
        fs::set_permissions(&fpm_prefix, fs::Permissions::from_mode(0o755))
            .expect("chmod 0755 the PHP-FPM prefix");
        let sock = fpm_prefix.join("unrelated.sock");
        // SIGTERM is PHP-FPM's fast shutdown: the master stops its workers before it exits.
        let setpriv = require_program(SETPRIV, "apt-get install util-linux");
        host.fpm = Some(PhpFpm::start_wrapped(
            &fpm_prefix,
            &[Pool {
                name: "unrelated".into(),
                listen: sock.display().to_string(),
                mode: Some("0666".into()),
            }],
            &[
                setpriv.as_os_str(),
                OsStr::new("--pdeathsig"),
                OsStr::new("TERM"),
                OsStr::new("--"),
            ],
        ));
        eprintln!(
            "busy host: python3 http.server on {:?} (pids {:?}), php-fpm master {:?} on {}",
            host.http_ports(),
            host.http.iter().map(|(_, c)| c.id()).collect::<Vec<_>>(),
            host.fpm.as_ref().and_then(PhpFpm::pid),
            sock.display()
        );
        host
    }

    /// The ports of the `python3 -m http.server` listeners (all on 127.0.0.1).
    pub fn http_ports(&self) -> Vec<u16> {
        self.http.iter().map(|(p, _)| *p).collect()
    }

    /// The PIDs of every process the busy host runs: the python servers, the PHP-FPM master and
    /// its workers.
    pub fn pids(&self) -> Vec<u32> {
        let mut pids: Vec<u32> = self.http.iter().map(|(_, c)| c.id()).collect();
        if let Some(fpm) = &self.fpm {
            pids.extend(fpm.pid());
            pids.extend(fpm.children());
        }
        pids
    }

    /// The unix socket the unrelated PHP-FPM pool listens on.
    pub fn fpm_socket(&self) -> PathBuf {
        self.fpm_prefix().join("unrelated.sock")
    }

    /// The unrelated PHP-FPM master's prefix (its config, pid file and log).
    pub fn fpm_prefix(&self) -> PathBuf {
        self.dir.path().join("fpm")
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// The unrelated OOM kill staged before the scenarios ([`shared`] only).
    pub fn oom_kill(&self) -> Option<&OomKill> {
        self.oom.as_ref()
    }

    /// Asserts that the finding `f` neither names one of our programs as the backend nor tells
    /// the reader to act on one of them (its fix names none of our ports or our socket), and that
    /// its evidence does not cite our OOM kill. A hint in the evidence ("other listeners: ...
    /// python3 pid N") is allowed: it blames nothing.
    pub fn assert_not_blamed(&self, f: &Value) {
        if let Some(oom) = &self.oom {
            // `Killed process PID (python3)` and `oom-kill:...,task=python3,pid=PID,uid=0`.
            let cites = [
                format!("Killed process {} (", oom.pid),
                format!(",pid={},", oom.pid),
            ];
            for e in f["evidence"].as_array().into_iter().flatten() {
                let text = e["text"].as_str().unwrap_or("");
                assert!(
                    !cites.iter().any(|c| text.contains(c.as_str())),
                    "the evidence cites the busy host's unrelated OOM kill of python3 {}:\n{f:#}",
                    oom.pid
                );
            }
        }
        if let Some(pid) = f["backend"]["pid"].as_u64() {
            assert!(
                !self.pids().contains(&(pid as u32)),
                "the backend named is an unrelated process of the busy host (pid {pid}):\n{f:#}"
            );
        }
        let text = advice(f);
        for port in self.http_ports() {
            let named = text
                .match_indices(&format!(":{port}"))
                .any(|(i, m)| !text[i + m.len()..].starts_with(|c: char| c.is_ascii_digit()));
            assert!(
                !named,
                "the fix points at the busy host's unrelated python3 http.server on port {port}:\n{f:#}"
            );
        }
        let sock = self.fpm_socket();
        let sock = sock.to_str().expect("UTF-8 socket path");
        assert!(
            !text.contains(sock),
            "the fix points at the busy host's unrelated PHP-FPM pool's socket {sock}:\n{f:#}"
        );
    }
}

/// What a reader acts on in a finding: title, fix summary, steps and commands.
fn advice(f: &Value) -> String {
    let mut s = f["title"].as_str().unwrap_or("").to_string();
    s.push('\n');
    s.push_str(f["fix"]["summary"].as_str().unwrap_or(""));
    for key in ["steps", "commands"] {
        for line in f["fix"][key].as_array().into_iter().flatten() {
            s.push('\n');
            s.push_str(line.as_str().unwrap_or(""));
        }
    }
    s
}

/// Kills an unrelated `python3` with the kernel's OOM killer: a memory cgroup of our own
/// (`memory.max`, or v1's `memory.limit_in_bytes`, = [`OOM_LIMIT`]; no swap), the process moved
/// in before it allocates 200 MiB ([`OOM_SCRIPT`]). The kernel kills it within the cgroup
/// (`CONSTRAINT_MEMCG`): the rest of the host feels no pressure. Checks the kill in `dmesg`,
/// then removes the cgroup.
pub fn stage_oom_kill() -> OomKill {
    assert!(
        is_root(),
        "the busy host's unrelated OOM kill needs root (a memory cgroup, dmesg): run the e2e \
         tests as root, as CI does (scripts/test)"
    );
    let python = require_program(PYTHON, "apt-get install python3");
    let cgroup = OomCgroup::create();
    let child = orphan_proof("KILL", &python)
        .args(["-c", OOM_SCRIPT])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap_or_else(|e| panic!("spawn {PYTHON} -c {OOM_SCRIPT:?}: {e}"));
    let mut stage = OomStage { child, cgroup };
    let pid = stage.child.id();
    let procs = stage.cgroup.dir.join("cgroup.procs");
    fs::write(&procs, pid.to_string())
        .unwrap_or_else(|e| panic!("move python3 {pid} into {}: {e}", procs.display()));
    let mut stdin = stage.child.stdin.take().expect("python3's stdin");
    // Gone already if it was killed before it read the byte: then the wait below says so.
    let _ = stdin.write_all(b"x");
    drop(stdin);

    let mut status = None;
    wait_until(Duration::from_secs(20), || {
        status = stage.child.try_wait().ok().flatten();
        status.is_some()
    });
    let status = status.unwrap_or_else(|| {
        panic!(
            "python3 {pid} in {} did not end within 20 s",
            stage.cgroup.dir.display()
        )
    });
    assert_eq!(
        status.signal(),
        Some(9),
        "python3 {pid} in {} (limit {OOM_LIMIT} bytes) allocating 200 MiB was not SIGKILLed: \
         {status}",
        stage.cgroup.dir.display()
    );
    let needle = format!("Killed process {pid} (python3)");
    let mut kernel_line = None;
    let mut dmesg = String::new();
    wait_until(Duration::from_secs(5), || {
        dmesg = kernel_log();
        kernel_line = dmesg
            .lines()
            .find(|l| l.contains(&needle))
            .map(str::to_string);
        kernel_line.is_some()
    });
    let kernel_line = kernel_line.unwrap_or_else(|| {
        let tail: Vec<&str> = dmesg.lines().rev().take(20).collect();
        panic!(
            "python3 {pid} was SIGKILLed, but dmesg has no {needle:?}; its last lines:\n{tail:#?}"
        )
    });
    let cgroup = stage.cgroup.dir.clone();
    drop(stage);
    eprintln!(
        "busy host: unrelated OOM kill of python3 {pid} in {}: {kernel_line}",
        cgroup.display()
    );
    OomKill {
        pid,
        cgroup,
        kernel_line,
    }
}

/// `dmesg` (root: `kernel.dmesg_restrict` may be 1), or a panic with what it said.
fn kernel_log() -> String {
    let out = Command::new("dmesg")
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("run dmesg: {e}"));
    assert!(
        out.status.success(),
        "dmesg failed ({}): {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// A memory cgroup this test binary created for the OOM kill; removed on drop.
struct OomCgroup {
    dir: PathBuf,
}

impl OomCgroup {
    /// `/sys/fs/cgroup/medic-busy-oom-<pid>` on a cgroup2 host with the memory controller,
    /// else `/sys/fs/cgroup/memory/medic-busy-oom-<pid>` (the v1 memory hierarchy of a hybrid
    /// host, as on CI).
    fn create() -> OomCgroup {
        let name = format!("{OOM_CGROUP_PREFIX}{}", std::process::id());
        let v2 = fs::read_to_string("/sys/fs/cgroup/cgroup.controllers")
            .is_ok_and(|c| c.split_whitespace().any(|c| c == "memory"));
        let (root, limits): (&str, &[&str]) = if v2 {
            ("/sys/fs/cgroup", &["memory.max"])
        } else {
            // memsw (memory + swap) after memory: it may never be below it.
            (
                "/sys/fs/cgroup/memory",
                &["memory.limit_in_bytes", "memory.memsw.limit_in_bytes"],
            )
        };
        assert!(
            Path::new(root).join("cgroup.procs").is_file(),
            "neither a cgroup2 memory controller at /sys/fs/cgroup nor a v1 memory hierarchy at \
             /sys/fs/cgroup/memory: the busy host's unrelated OOM kill needs one"
        );
        let cg = OomCgroup {
            dir: Path::new(root).join(name),
        };
        fs::create_dir(&cg.dir).unwrap_or_else(|e| panic!("create {}: {e}", cg.dir.display()));
        for (i, file) in limits.iter().enumerate() {
            let path = cg.dir.join(file);
            // memsw exists only with swap accounting; memory.max is the one that must be there.
            if i > 0 && !path.exists() {
                continue;
            }
            fs::write(&path, OOM_LIMIT.to_string())
                .unwrap_or_else(|e| panic!("write {OOM_LIMIT} to {}: {e}", path.display()));
        }
        let swap = cg.dir.join("memory.swap.max");
        if v2 && swap.exists() {
            fs::write(&swap, "0").unwrap_or_else(|e| panic!("write 0 to {}: {e}", swap.display()));
        }
        cg
    }
}

impl Drop for OomCgroup {
    fn drop(&mut self) {
        // Empty once its one process is reaped ([`OomStage`] drops the child first).
        let gone = wait_until(Duration::from_secs(5), || {
            fs::remove_dir(&self.dir).is_ok() || !self.dir.exists()
        });
        if !gone {
            eprintln!("busy host: could not remove cgroup {}", self.dir.display());
        }
    }
}

/// The OOM kill in progress: on drop (a panic included) our python3 is killed by PID and
/// reaped, then its cgroup removed.
struct OomStage {
    child: Child,
    cgroup: OomCgroup,
}

impl Drop for OomStage {
    fn drop(&mut self) {
        // A no-op for a child already reaped: no signal to a PID that may be someone's now.
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// What a test binary killed before it could clean up leaves behind, by name: the shared busy
/// host's directory and the OOM cgroup of a binary whose PID runs no more. Its processes died
/// with it (`--pdeathsig`).
fn sweep_leftovers() {
    let dead = |pid: &str| {
        pid.parse::<u32>()
            .is_ok_and(|pid| !Path::new(&format!("/proc/{pid}")).exists())
    };
    if let Ok(dir) = fs::read_dir(std::env::temp_dir()) {
        for e in dir.flatten() {
            let name = e.file_name();
            let Some(rest) = name
                .to_str()
                .and_then(|n| n.strip_prefix(SHARED_DIR_PREFIX))
            else {
                continue;
            };
            if rest.split('-').next().is_some_and(dead) {
                let _ = fs::remove_dir_all(e.path());
            }
        }
    }
    for root in ["/sys/fs/cgroup", "/sys/fs/cgroup/memory"] {
        let Ok(dir) = fs::read_dir(root) else {
            continue;
        };
        for e in dir.flatten() {
            let name = e.file_name();
            if name
                .to_str()
                .and_then(|n| n.strip_prefix(OOM_CGROUP_PREFIX))
                .is_some_and(dead)
            {
                // rmdir: fails, and leaves it, if anything still runs in it.
                let _ = fs::remove_dir(e.path());
            }
        }
    }
}

impl Drop for BusyHost {
    fn drop(&mut self) {
        // Our own children, by PID (Child::kill is SIGKILL to that PID), then reaped.
        for (_, child) in &mut self.http {
            let _ = child.kill();
            let _ = child.wait();
        }
        // PhpFpm stops its master (and, if it lingers, the master's children) by PID.
        self.fpm.take();
    }
}
