//! A real host: Debian bookworm booted with systemd (`systemd-nspawn -b`) over a cached
//! debootstrap rootfs, with the packaged nginx and PHP-FPM under systemd, pm2, logrotate, and the
//! built `nginx-medic` bind-mounted at `/usr/local/bin/nginx-medic`.
//!
//! The rootfs is built once by `scripts/realhost-rootfs` (cached under
//! `${MEDIC_REALHOST_CACHE:-/var/cache/nginx-medic/realhost}`); every boot starts from it
//! pristine (`--volatile=overlay`: writes go to a tmpfs and vanish at poweroff), with its own
//! loopback only (`--private-network`), so boots can run side by side.
//!
//! How a boot is contained (see `/work/shared/real-host.md` for why):
//! - the launcher (`tests/e2e/realhost/launch`, constant text) runs under
//!   `unshare --mount --propagation private`, moves itself into two cgroup directories this
//!   harness created (`/sys/fs/cgroup/systemd/medic-rh-<id>`, `/sys/fs/cgroup/unified/medic-rh-<id>`),
//!   mounts a tmpfs on `/run/systemd/nspawn` in that private namespace and execs
//!   `systemd-nspawn` — the same PID, our direct child;
//! - `Drop` sends nspawn SIGTERM (nspawn halts the container cleanly), SIGKILLs it after 10 s,
//!   reaps it, kills whatever is still in *its own* cgroups, and removes them deepest first.
//!   Nothing else on the machine is touched.
//!
//! Commands inside run with `nsenter -t <container init> -a -- ARGV` (argv, never a shell string).
//! They stay in the test process's cgroups on the host; what they leave running (a pm2 daemon)
//! dies with the container's PID namespace at poweroff. Wrap a command in
//! `systemd-run --scope` when it should live in a unit of the container.
//!
//! ```no_run
//! use medic_e2e::realhost::RealHost;
//! let host = RealHost::boot();
//! host.exec_ok(&["systemctl", "is-active", "nginx"]);
//! assert_eq!(host.curl("http://127.0.0.1/"), 200);
//! ```

pub mod scenarios;

use std::collections::BTreeMap;
use std::fs;
use std::io::Write as _;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use crate::{is_root, medic_bin, wait_until, MedicRun};

/// How long one command inside may take before the test fails.
pub const EXEC_TIMEOUT: Duration = Duration::from_secs(60);
/// How long `systemctl is-system-running --wait` may take after the bus is up.
const BOOT_TIMEOUT: Duration = Duration::from_secs(60);
/// How long a clean poweroff may take before nspawn is killed.
const POWEROFF_TIMEOUT: Duration = Duration::from_secs(10);

const CG_V1: &str = "/sys/fs/cgroup/systemd";
const CG_V2: &str = "/sys/fs/cgroup/unified";
const CG_MEMORY: &str = "/sys/fs/cgroup/memory";

static SEQ: AtomicU32 = AtomicU32::new(0);

/// The cached rootfs path (`scripts/realhost-rootfs` is run once per test process).
pub fn rootfs() -> PathBuf {
    static ROOTFS: OnceLock<PathBuf> = OnceLock::new();
    ROOTFS
        .get_or_init(|| {
            let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../scripts/realhost-rootfs");
            let start = Instant::now();
            let out = Command::new(&script)
                .stdin(Stdio::null())
                .stderr(Stdio::inherit())
                .output()
                .unwrap_or_else(|e| panic!("run {}: {e}", script.display()));
            assert!(
                out.status.success(),
                "{} failed ({}): see its stderr above; it needs root, debootstrap, npm and the Debian mirror \
                 (apt-get install systemd-container debootstrap)",
                script.display(),
                out.status
            );
            let stdout = String::from_utf8_lossy(&out.stdout);
            let path = PathBuf::from(stdout.lines().last().unwrap_or("").trim());
            assert!(
                path.join("usr/lib/systemd/systemd").is_file(),
                "{} printed {path:?}, which is not a rootfs with systemd",
                script.display()
            );
            eprintln!("realhost: rootfs {} ready in {:.1?}", path.display(), start.elapsed());
            path
        })
        .clone()
}

/// Panics with the fix unless the machine can boot a real host.
fn require_prerequisites() {
    assert!(
        is_root(),
        "the real-host tests boot a container (systemd-nspawn, cgroups, mount namespaces): run them as root, as CI does"
    );
    for (p, pkg) in [
        ("/usr/bin/systemd-nspawn", "systemd-container"),
        ("/usr/sbin/debootstrap", "debootstrap"),
        ("/usr/bin/unshare", "util-linux"),
        ("/usr/bin/nsenter", "util-linux"),
    ] {
        assert!(
            Path::new(p).is_file(),
            "{p} not found: apt-get install {pkg} (scripts/test does)"
        );
    }
    for d in [CG_V1, CG_V2] {
        assert!(
            Path::new(d).join("cgroup.procs").is_file(),
            "{d} is not a mounted cgroup hierarchy: the real-host harness needs the hybrid layout \
             (v1 name=systemd at {CG_V1}, cgroup2 at {CG_V2})"
        );
    }
}

/// A booted container. Powered off and cleaned up on drop.
pub struct RealHost {
    name: String,
    id: String,
    nspawn: Child,
    init_pid: u32,
    cgroups: Vec<PathBuf>,
    memory_cgroups: Vec<PathBuf>,
    workdir: tempfile::TempDir,
    boot_time: Duration,
}

impl RealHost {
    /// Builds or reuses the rootfs, boots it, and waits for systemd to be `running` (or
    /// `degraded`; the failed units are printed).
    pub fn boot() -> RealHost {
        require_prerequisites();
        let rootfs = rootfs();
        let medic = medic_bin();
        let start = Instant::now();
        let seq = SEQ.fetch_add(1, Ordering::SeqCst);
        let id = format!("{}-{seq}", std::process::id());
        let name = format!("medic-rh-{id}");
        let workdir = tempfile::Builder::new()
            .prefix("medic-realhost-")
            .tempdir()
            .expect("create a temporary directory for the console log");
        let mut cgroups = Vec::new();
        for root in [CG_V1, CG_V2] {
            let dir = Path::new(root).join(&name);
            fs::create_dir(&dir).unwrap_or_else(|e| panic!("create cgroup {}: {e}", dir.display()));
            cgroups.push(dir);
        }
        let launch = Path::new(env!("CARGO_MANIFEST_DIR")).join("realhost/launch");
        let console = workdir.path().join("console.log");
        let console_file = fs::File::create(&console).expect("create console log");
        let mut bind = std::ffi::OsString::from("--bind-ro=");
        bind.push(medic.as_os_str());
        bind.push(":/usr/local/bin/nginx-medic");
        let mut directory = std::ffi::OsString::from("--directory=");
        directory.push(rootfs.as_os_str());
        let spawned = Command::new("/usr/bin/unshare")
            .args(["--mount", "--propagation", "private", "--", "/bin/bash"])
            .arg(&launch)
            .arg(&cgroups[0])
            .arg(&cgroups[1])
            .args(["--", "/usr/bin/systemd-nspawn", "--boot"])
            .arg(&directory)
            .args([
                "--volatile=overlay",
                "--private-network",
                "--register=no",
                "--keep-unit",
                "--capability=CAP_SYSLOG",
            ])
            .arg(&bind)
            .arg(format!("--machine={name}"))
            .stdin(Stdio::null())
            .stdout(console_file.try_clone().expect("dup console log"))
            .stderr(console_file)
            .spawn();
        let nspawn = match spawned {
            Ok(c) => c,
            Err(e) => {
                for d in cgroups.iter().rev() {
                    let _ = fs::remove_dir(d);
                }
                panic!("spawn systemd-nspawn via unshare: {e}");
            }
        };
        let mut host = RealHost {
            name,
            id,
            nspawn,
            init_pid: 0,
            cgroups,
            memory_cgroups: Vec::new(),
            workdir,
            boot_time: Duration::ZERO,
        };
        host.init_pid = host.wait_for_init();
        let private = host.root_path("/run/systemd/private");
        if !wait_until(BOOT_TIMEOUT, || private.exists() || host.exited()) || host.exited() {
            panic!(
                "systemd in {} did not open /run/systemd/private within {BOOT_TIMEOUT:?}\n{}",
                host.name,
                host.console()
            );
        }
        let out = host.exec_timeout(&["systemctl", "is-system-running", "--wait"], BOOT_TIMEOUT);
        let state = String::from_utf8_lossy(&out.stdout).trim().to_string();
        match state.as_str() {
            "running" => {}
            "degraded" => {
                let failed = host.exec(&["systemctl", "--failed", "--no-legend", "--plain"]);
                eprintln!(
                    "realhost {}: degraded; failed units:\n{}",
                    host.name,
                    String::from_utf8_lossy(&failed.stdout)
                );
            }
            _ => panic!(
                "systemd in {} is {state:?} after boot\n{}\n{}",
                host.name,
                String::from_utf8_lossy(&out.stderr),
                host.console()
            ),
        }
        host.boot_time = start.elapsed();
        eprintln!("realhost {}: booted in {:.2?}", host.name, host.boot_time);
        host
    }

    /// The machine name (`medic-rh-<pid>-<n>`), unique per boot.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The host PID of the container's init (systemd).
    pub fn init_pid(&self) -> u32 {
        self.init_pid
    }

    /// The host PID of `systemd-nspawn` (our direct child).
    pub fn nspawn_pid(&self) -> u32 {
        self.nspawn.id()
    }

    /// The cgroup directories this boot created (v1 `name=systemd`, cgroup2, and any memory
    /// cgroups of [`RealHost::limit_memory_of_unit`]); all removed on drop.
    pub fn cgroup_dirs(&self) -> Vec<PathBuf> {
        self.cgroups
            .iter()
            .chain(&self.memory_cgroups)
            .cloned()
            .collect()
    }

    /// From spawning nspawn to `systemctl is-system-running` answering.
    pub fn boot_time(&self) -> Duration {
        self.boot_time
    }

    /// What nspawn and the container's console printed so far.
    pub fn console(&self) -> String {
        let text = fs::read_to_string(self.workdir.path().join("console.log")).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        let tail = &lines[lines.len().saturating_sub(60)..];
        format!(
            "--- console of {} (last {} lines) ---\n{}",
            self.name,
            tail.len(),
            tail.join("\n")
        )
    }

    fn exited(&self) -> bool {
        // /proc/PID of our own child exists until we reap it; a zombie has state Z.
        let stat =
            fs::read_to_string(format!("/proc/{}/stat", self.nspawn.id())).unwrap_or_default();
        stat.rsplit(')')
            .next()
            .map(|r| r.trim_start().starts_with('Z'))
            .unwrap_or(true)
    }

    /// nspawn's child whose PID in its own namespace is 1: the container's systemd.
    fn wait_for_init(&self) -> u32 {
        let nspawn = self.nspawn.id();
        let mut found = 0;
        let ok = wait_until(Duration::from_secs(30), || {
            if self.exited() {
                return true;
            }
            let children = fs::read_to_string(format!("/proc/{nspawn}/task/{nspawn}/children"))
                .unwrap_or_default();
            for c in children.split_whitespace() {
                let Ok(pid) = c.parse::<u32>() else { continue };
                if ns_pids(pid).last() == Some(&1) {
                    found = pid;
                    return true;
                }
            }
            false
        });
        if !ok || found == 0 {
            panic!(
                "systemd-nspawn for {} started no container init\n{}",
                self.name,
                self.console()
            );
        }
        found
    }

    /// `path` inside the container, seen from the host through `/proc/<init>/root`.
    pub fn root_path(&self, path: &str) -> PathBuf {
        let rel = path
            .strip_prefix('/')
            .unwrap_or_else(|| panic!("{path:?} is not absolute"));
        PathBuf::from(format!("/proc/{}/root", self.init_pid)).join(rel)
    }

    /// Runs ARGV inside (all namespaces of the container's init), at most [`EXEC_TIMEOUT`].
    pub fn exec(&self, argv: &[&str]) -> Output {
        self.exec_timeout(argv, EXEC_TIMEOUT)
    }

    /// Runs ARGV inside with a deadline; a command that overruns fails the test.
    pub fn exec_timeout(&self, argv: &[&str], timeout: Duration) -> Output {
        assert!(!argv.is_empty(), "exec needs a program");
        let child = Command::new("/usr/bin/nsenter")
            .arg("-t")
            .arg(self.init_pid.to_string())
            .args(["-a", "--"])
            .args(argv)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("spawn nsenter for {argv:?}: {e}"));
        let pid = child.id();
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let _ = tx.send(child.wait_with_output());
        });
        match rx.recv_timeout(timeout) {
            Ok(out) => out.unwrap_or_else(|e| panic!("wait for {argv:?}: {e}")),
            Err(_) => {
                // Our own child (nsenter), by PID; what it started inside dies at poweroff.
                let _ = Command::new("kill")
                    .args(["-KILL", &pid.to_string()])
                    .status();
                panic!(
                    "{argv:?} in {} did not finish within {timeout:?}",
                    self.name
                );
            }
        }
    }

    /// Runs ARGV inside; panics with both streams unless it exits 0. Returns stdout.
    pub fn exec_ok(&self, argv: &[&str]) -> String {
        let out = self.exec(argv);
        assert!(
            out.status.success(),
            "{argv:?} in {} failed: {}\n--- stdout ---\n{}\n--- stderr ---\n{}",
            self.name,
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Writes a file inside (parents created), owned by root, with `mode`.
    pub fn write_file(&self, path: &str, bytes: impl AsRef<[u8]>, mode: u32) {
        let p = self.root_path(path);
        if let Some(parent) = p.parent() {
            fs::create_dir_all(parent)
                .unwrap_or_else(|e| panic!("mkdir -p {}: {e}", parent.display()));
        }
        // A symlink (e.g. sites-enabled/default) is replaced, not written through.
        if p.symlink_metadata()
            .map(|m| m.file_type().is_symlink())
            .unwrap_or(false)
        {
            fs::remove_file(&p).unwrap_or_else(|e| panic!("remove symlink {}: {e}", p.display()));
        }
        let mut f =
            fs::File::create(&p).unwrap_or_else(|e| panic!("create {path} in {}: {e}", self.name));
        f.write_all(bytes.as_ref())
            .unwrap_or_else(|e| panic!("write {path}: {e}"));
        fs::set_permissions(&p, fs::Permissions::from_mode(mode))
            .unwrap_or_else(|e| panic!("chmod {mode:o} {path}: {e}"));
    }

    /// Reads a file inside.
    pub fn read_file(&self, path: &str) -> Vec<u8> {
        fs::read(self.root_path(path))
            .unwrap_or_else(|e| panic!("read {path} in {}: {e}", self.name))
    }

    /// Reads a file inside as text (lossy).
    pub fn read_text(&self, path: &str) -> String {
        String::from_utf8_lossy(&self.read_file(path)).into_owned()
    }

    /// The host PID of the process that is `container_pid` inside (`NSpid` in `/proc/*/status`).
    pub fn host_pid_of(&self, container_pid: u32) -> u32 {
        let init_ns = fs::read_link(format!("/proc/{}/ns/pid", self.init_pid))
            .unwrap_or_else(|e| panic!("read the pid namespace of {}: {e}", self.init_pid));
        for entry in fs::read_dir("/proc").expect("read /proc").flatten() {
            let Some(pid) = entry
                .file_name()
                .to_str()
                .and_then(|s| s.parse::<u32>().ok())
            else {
                continue;
            };
            let ns = ns_pids(pid);
            if ns.len() >= 2
                && ns.last() == Some(&container_pid)
                && fs::read_link(format!("/proc/{pid}/ns/pid")).ok().as_ref() == Some(&init_ns)
            {
                return pid;
            }
        }
        panic!("no process is PID {container_pid} in {}", self.name)
    }

    /// `systemctl show -p P1,P2 UNIT` as a map.
    pub fn unit_show(&self, unit: &str, props: &[&str]) -> BTreeMap<String, String> {
        let p = props.join(",");
        let text = self.exec_ok(&["systemctl", "show", "-p", &p, unit]);
        text.lines()
            .filter_map(|l| l.split_once('='))
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    /// One property of a unit (`systemctl show -p P --value`).
    pub fn unit_prop(&self, unit: &str, prop: &str) -> String {
        self.exec_ok(&["systemctl", "show", "-p", prop, "--value", unit])
            .trim()
            .to_string()
    }

    /// `journalctl -u UNIT` (whole, no pager).
    pub fn journal(&self, unit: &str) -> String {
        self.exec_ok(&["journalctl", "--no-pager", "-q", "-u", unit])
    }

    /// The HTTP status curl inside gets for URL (0 when curl fails to get one).
    pub fn curl(&self, url: &str) -> u16 {
        let out = self.exec(&[
            "curl",
            "-s",
            "-o",
            "/dev/null",
            "-m",
            "20",
            "-w",
            "%{http_code}",
            url,
        ]);
        String::from_utf8_lossy(&out.stdout)
            .trim()
            .parse()
            .unwrap_or(0)
    }

    /// Runs the bind-mounted `nginx-medic ARGS...` inside as root.
    pub fn medic(&self, args: &[&str]) -> MedicRun {
        let mut argv = vec!["/usr/local/bin/nginx-medic"];
        argv.extend_from_slice(args);
        let out = self.exec(&argv);
        MedicRun {
            argv: argv.iter().map(|s| s.to_string()).collect(),
            status: out.status,
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }

    /// Puts the main process of UNIT under a host v1 memory cgroup this host creates
    /// (`/sys/fs/cgroup/memory/medic-rh-oom-<id>-<n>`, `memory.limit_in_bytes` = `limit`;
    /// removed on drop). The v1 memory controller is read-only inside the container, so
    /// `MemoryMax=` cannot do this. Returns (container PID, host PID) of the main process.
    pub fn limit_memory_of_unit(&mut self, unit: &str, limit: u64) -> (u32, u32) {
        assert!(
            Path::new(CG_MEMORY).join("cgroup.procs").is_file(),
            "{CG_MEMORY} is not a mounted v1 memory hierarchy: the OOM scenario needs it"
        );
        let main: u32 = self
            .unit_prop(unit, "MainPID")
            .parse()
            .unwrap_or_else(|e| panic!("MainPID of {unit}: {e}"));
        assert!(main != 0, "{unit} has no main process");
        let host_pid = self.host_pid_of(main);
        let dir = Path::new(CG_MEMORY).join(format!(
            "medic-rh-oom-{}-{}",
            self.id,
            self.memory_cgroups.len()
        ));
        fs::create_dir(&dir).unwrap_or_else(|e| panic!("create {}: {e}", dir.display()));
        self.memory_cgroups.push(dir.clone());
        fs::write(dir.join("memory.limit_in_bytes"), limit.to_string())
            .unwrap_or_else(|e| panic!("set {}/memory.limit_in_bytes: {e}", dir.display()));
        fs::write(dir.join("cgroup.procs"), host_pid.to_string())
            .unwrap_or_else(|e| panic!("move {host_pid} into {}: {e}", dir.display()));
        (main, host_pid)
    }

    /// Poweroff, reap, kill leftovers in our own cgroups, remove them. Idempotent.
    fn shutdown(&mut self) {
        let pid = self.nspawn.id();
        if self.nspawn.try_wait().ok().flatten().is_none() {
            // nspawn turns SIGTERM into a clean halt of the container.
            let _ = Command::new("kill")
                .args(["-TERM", &pid.to_string()])
                .status();
            let end = Instant::now() + POWEROFF_TIMEOUT;
            while Instant::now() < end && self.nspawn.try_wait().ok().flatten().is_none() {
                std::thread::sleep(Duration::from_millis(20));
            }
            if self.nspawn.try_wait().ok().flatten().is_none() {
                eprintln!(
                    "realhost {}: no clean poweroff in {POWEROFF_TIMEOUT:?}; SIGKILL nspawn {pid}",
                    self.name
                );
                let _ = self.nspawn.kill();
            }
            let _ = self.nspawn.wait();
        }
        let mut dirs: Vec<PathBuf> = self.memory_cgroups.drain(..).collect();
        for root in self.cgroups.drain(..) {
            let mut tree = Vec::new();
            collect_dirs(&root, &mut tree);
            // Deepest first.
            tree.sort_by_key(|d| std::cmp::Reverse(d.components().count()));
            dirs.extend(tree);
        }
        for d in &dirs {
            let procs = cgroup_procs(d);
            if !procs.is_empty() {
                eprintln!(
                    "realhost {}: {} still has {procs:?}; SIGKILL",
                    self.name,
                    d.display()
                );
                for p in &procs {
                    let _ = Command::new("kill")
                        .args(["-KILL", &p.to_string()])
                        .status();
                }
                wait_until(Duration::from_secs(5), || cgroup_procs(d).is_empty());
            }
        }
        for d in &dirs {
            let ok = wait_until(Duration::from_secs(5), || {
                fs::remove_dir(d).is_ok() || !d.exists()
            });
            if !ok {
                eprintln!(
                    "realhost {}: could not remove cgroup {}",
                    self.name,
                    d.display()
                );
            }
        }
    }
}

impl Drop for RealHost {
    fn drop(&mut self) {
        let start = Instant::now();
        self.shutdown();
        eprintln!(
            "realhost {}: powered off and cleaned up in {:.2?}",
            self.name,
            start.elapsed()
        );
    }
}

/// `NSpid` of /proc/PID/status: the PID in each nested namespace, outermost first.
fn ns_pids(pid: u32) -> Vec<u32> {
    fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("NSpid:"))
        .map(|r| {
            r.split_whitespace()
                .filter_map(|s| s.parse().ok())
                .collect()
        })
        .unwrap_or_default()
}

fn cgroup_procs(dir: &Path) -> Vec<u32> {
    fs::read_to_string(dir.join("cgroup.procs"))
        .unwrap_or_default()
        .split_whitespace()
        .filter_map(|s| s.parse().ok())
        .collect()
}

fn collect_dirs(dir: &Path, out: &mut Vec<PathBuf>) {
    if !dir.is_dir() {
        return;
    }
    if let Ok(rd) = fs::read_dir(dir) {
        for e in rd.flatten() {
            if e.file_type().map(|t| t.is_dir()).unwrap_or(false) {
                collect_dirs(&e.path(), out);
            }
        }
    }
    out.push(dir.to_path_buf());
}
