//! The fault matrix of `fix --apply`'s engine ([`nginx_medic::fix::apply::apply`]) against a
//! real nginx: each test starts its own nginx with a server in an included file
//! (`include conf.d/*.conf;`), hands the engine a plan, breaks something on the way (the staged
//! test, the reload, the check, the master, the lock, the config directory, the backup disk) and
//! checks the end state: applied and verified, rolled back and verified, or not written; and in
//! every case `nginx -t` passes on the files on disk and nginx still answers.
//!
//! Needs root (mount namespaces, bind and tmpfs mounts) and the built binary for the staged
//! `nginx -t`: `cargo build -p nginx-medic && cargo test -p medic-e2e --test fix_apply`.

use std::fs;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::RwLock;
use std::time::{Duration, SystemTime};

use medic_e2e::nginx::{self, nginx_bin};
use medic_e2e::{free_port, is_root, medic_bin, wait_until, Nginx, Prefix};
use nginx_medic::fix::apply::{
    apply, ApplyOptions, Check, FileChange, NginxCtl, Outcome, Plan, PAUSE_BEFORE_RELOAD_ENV,
};
use nginx_medic::fix::journal::Journal;

/// The pause seam is an environment variable, seen by every thread of the test process: the
/// test that sets it holds this for writing, every other test for reading.
static ENV: RwLock<()> = RwLock::new(());

fn env_shared() -> std::sync::RwLockReadGuard<'static, ()> {
    ENV.read().unwrap_or_else(|p| p.into_inner())
}

/// The fix of the tests (a `header-too-big` one): larger buffers for the upstream's headers.
/// `proxy_buffers` grows too: nginx refuses a `proxy_buffer_size` whose default busy size
/// exceeds the default buffers ("proxy_busy_buffers_size must be less than ...").
const FIX: &str = "        proxy_buffer_size 16k;\n        proxy_buffers 8 16k;\n";

/// The server under repair, with `extra` directives in its location.
fn site_conf(port: u16, extra: &str) -> String {
    format!(
        "server {{\n    listen 127.0.0.1:{port};\n    location / {{\n{extra}        return 200 \"ok\\n\";\n    }}\n}}\n"
    )
}

/// A running nginx whose server lives in `conf/conf.d/site.conf`, and a work directory (outside
/// the prefix) for the backups and the lock.
struct Site {
    prefix: Prefix,
    nginx: Nginx,
    conf_text: String,
    port: u16,
    site: PathBuf,
    work: tempfile::TempDir,
}

impl Site {
    fn start() -> Site {
        assert!(
            is_root(),
            "the fix_apply tests need root (mounts, namespaces)"
        );
        let prefix = Prefix::new();
        fs::create_dir(prefix.join("conf/conf.d")).expect("create conf.d");
        let port = free_port();
        let site = prefix.join("conf/conf.d/site.conf");
        fs::write(&site, site_conf(port, "")).expect("write site.conf");
        let conf_text = nginx::config(
            &prefix,
            &format!("    include {}/conf/conf.d/*.conf;\n", prefix.display()),
        );
        let nginx = Nginx::start(&prefix, &conf_text, port);
        let work = tempfile::Builder::new()
            .prefix("nginx-medic-fix-")
            .tempdir()
            .expect("work dir");
        let s = Site {
            prefix,
            nginx,
            conf_text,
            port,
            site,
            work,
        };
        // The master listens before it forks its worker: a test that compares the workers
        // before and after must not take its "before" while there are none yet.
        assert!(
            wait_until(Duration::from_secs(10), || !s.workers().is_empty()),
            "nginx started no worker in 10 s"
        );
        s
    }

    fn ctl(&self) -> NginxCtl {
        NginxCtl {
            binary: nginx_bin(),
            prefix: Some(self.prefix.path().to_path_buf()),
            conf: self.prefix.conf(),
            startup_error_log: Some(self.prefix.error_log()),
            pid_file: self.prefix.pid_file(),
            error_logs: vec![self.prefix.error_log()],
            unit: None,
            include_patterns: vec![format!("{}/conf/conf.d/*.conf", self.prefix.display())],
        }
    }

    fn opts(&self, verify: Duration) -> ApplyOptions {
        ApplyOptions {
            backup_dir: self.work.path().join("backups/20261205T000000Z"),
            verify,
            lock_path: self.work.path().join("run/fix.lock"),
            stage_exe: Some(medic_bin()),
        }
    }

    /// A plan that adds `extra` to the location, and reloads.
    fn plan(&self, extra: &str) -> Plan {
        Plan {
            changes: vec![FileChange {
                path: self.site.clone(),
                before: fs::read(&self.site).expect("read site.conf"),
                after: site_conf(self.port, extra).into_bytes(),
            }],
            reload: true,
            actions: Vec::new(),
        }
    }

    fn master(&self) -> u32 {
        self.nginx.pid().expect("our nginx runs")
    }

    /// The master's children now.
    fn workers(&self) -> Vec<u32> {
        let m = self.master();
        let mut v: Vec<u32> = fs::read_to_string(format!("/proc/{m}/task/{m}/children"))
            .unwrap_or_default()
            .split_whitespace()
            .filter_map(|s| s.parse().ok())
            .collect();
        v.sort_unstable();
        v
    }

    fn site_bytes(&self) -> Vec<u8> {
        fs::read(&self.site).expect("read site.conf")
    }

    /// `nginx -t` passes on the files on disk, and nginx answers.
    fn assert_healthy(&self, journal: &Journal) {
        assert_nginx_t(&self.prefix);
        let got = medic_e2e::http::get(self.port, "/", Duration::from_secs(5));
        assert_eq!(got, 200, "nginx answers\n{}", dump(journal));
    }
}

fn assert_nginx_t(prefix: &Prefix) {
    let out = Command::new(nginx_bin())
        .arg("-t")
        .arg("-p")
        .arg(format!("{}/", prefix.display()))
        .arg("-c")
        .arg(prefix.conf())
        .arg("-e")
        .arg(prefix.error_log())
        .output()
        .expect("run nginx -t");
    assert!(
        out.status.success(),
        "nginx -t on disk: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn dump(j: &Journal) -> String {
    serde_json::to_string_pretty(j).expect("journal JSON")
}

/// The caller's check: `GET /` answers 200.
struct Answers {
    port: u16,
}

impl Check for Answers {
    fn check(&mut self, _since: &[(PathBuf, u64)]) -> Result<Vec<String>, String> {
        match medic_e2e::http::get(self.port, "/", Duration::from_secs(5)) {
            200 => Ok(vec!["GET / 200".into()]),
            s => Err(format!("GET / {s}")),
        }
    }
}

/// A fix that does not cure: the failures go on whatever the config says.
struct NeverCured;

impl Check for NeverCured {
    fn check(&mut self, _since: &[(PathBuf, u64)]) -> Result<Vec<String>, String> {
        Err("upstream still answers 502 (test)".into())
    }
}

/// A mount made by a test, unmounted (by path) when the test ends, even by a panic.
struct Mounted(PathBuf);

impl Mounted {
    fn run(args: &[&std::ffi::OsStr]) {
        let out = Command::new("mount")
            .args(args)
            .output()
            .expect("run mount (util-linux)");
        assert!(
            out.status.success(),
            "mount {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

impl Drop for Mounted {
    fn drop(&mut self) {
        let st = Command::new("umount").arg(&self.0).status();
        if !matches!(st, Ok(s) if s.success()) && !std::thread::panicking() {
            panic!("umount {}: {st:?}", self.0.display());
        }
    }
}

fn mtime(p: &Path) -> SystemTime {
    fs::metadata(p).and_then(|m| m.modified()).expect("mtime")
}

/// Matrix 1: The fix applies: written, reloaded, a new worker generation, the check passes; the
/// backup (outside every include glob) holds the old bytes, with manifest and RESTORE.txt.
#[test]
fn happy_path_applies_and_verifies() {
    let _env = env_shared();
    let s = Site::start();
    let old_workers = s.workers();
    let plan = s.plan(FIX);
    let opts = s.opts(Duration::from_secs(10));
    let mut j = Journal::quiet();
    let out = apply(
        &plan,
        &s.ctl(),
        &opts,
        &mut Answers { port: s.port },
        &mut j,
    );
    assert_eq!(out, Outcome::Applied, "{}", dump(&j));
    assert_eq!(out.exit_code(), 0);
    assert_eq!(s.site_bytes(), plan.changes[0].after);
    assert!(
        s.workers().iter().any(|w| !old_workers.contains(w)),
        "a new worker generation: {:?} -> {:?}",
        old_workers,
        s.workers()
    );
    let verify = j.find("verify").next().expect("a verify step");
    assert!(
        verify.ok && verify.detail.contains("new worker generation"),
        "{}",
        dump(&j)
    );

    let conf_dir = s.prefix.join("conf");
    assert!(!opts.backup_dir.starts_with(&conf_dir));
    let kept = opts
        .backup_dir
        .join(s.site.strip_prefix("/").expect("absolute"));
    assert_eq!(fs::read(&kept).expect("the backup"), plan.changes[0].before);
    let manifest: serde_json::Value = serde_json::from_slice(
        &fs::read(opts.backup_dir.join("manifest.json")).expect("manifest.json"),
    )
    .expect("manifest is JSON");
    assert_eq!(manifest["files"][0]["path"], s.site.display().to_string());
    assert_eq!(
        manifest["files"][0]["sha256_before"].as_str().map(str::len),
        Some(64)
    );
    let restore = fs::read_to_string(opts.backup_dir.join("RESTORE.txt")).expect("RESTORE.txt");
    assert!(
        restore.contains(&format!(
            "cp --preserve=all '{}' '{}'",
            kept.display(),
            s.site.display()
        )) && restore.contains("-s' 'reload'"),
        "{restore}"
    );
    s.assert_healthy(&j);
}

/// Matrix 2: nginx rejects the staged tree: nothing is written (bytes and mtime), no reload.
#[test]
fn staged_test_failure_writes_nothing() {
    let _env = env_shared();
    let s = Site::start();
    let (before, before_mtime, workers) = (s.site_bytes(), mtime(&s.site), s.workers());
    let plan = s.plan("        proxy_buffer_sizzle 16k;\n");
    let opts = s.opts(Duration::from_secs(5));
    let mut j = Journal::quiet();
    let out = apply(
        &plan,
        &s.ctl(),
        &opts,
        &mut Answers { port: s.port },
        &mut j,
    );
    assert_eq!(out, Outcome::NotWritten, "{}", dump(&j));
    assert_eq!(out.exit_code(), 1);
    let stage = j.find("stage-test").next().expect("a stage-test step");
    assert!(
        !stage.ok
            && stage
                .detail
                .contains("unknown directive \"proxy_buffer_sizzle\""),
        "{}",
        dump(&j)
    );
    assert_eq!(s.site_bytes(), before);
    assert_eq!(mtime(&s.site), before_mtime);
    assert_eq!(s.workers(), workers, "no reload");
    assert_eq!(j.find("write").count(), 0);
    assert!(!opts.backup_dir.exists(), "the unused backup is removed");
    s.assert_healthy(&j);
}

/// Matrix 3: `nginx -t` passes but the reload cannot bind: another included file (not ours) listens on
/// a port this test holds. nginx 1.22 logs `[emerg] bind() ... (98: Address already in use)`,
/// retries, and keeps its old workers: our file is restored, no second reload is sent (it would
/// fail the same way), nginx still serves the old config.
#[test]
fn reload_that_cannot_bind_rolls_back() {
    let _env = env_shared();
    let s = Site::start();
    let held = TcpListener::bind("127.0.0.1:0").expect("hold a port");
    let held_port = held.local_addr().expect("addr").port();
    let other = s.prefix.join("conf/conf.d/other.conf");
    fs::write(
        &other,
        format!("server {{ listen 127.0.0.1:{held_port}; }}\n"),
    )
    .expect("other");
    let (before, workers) = (s.site_bytes(), s.workers());
    let plan = s.plan(FIX);
    let mut j = Journal::quiet();
    let out = apply(
        &plan,
        &s.ctl(),
        &s.opts(Duration::from_secs(5)),
        &mut Answers { port: s.port },
        &mut j,
    );
    assert_eq!(out, Outcome::RolledBack, "{}", dump(&j));
    assert_eq!(out.exit_code(), 1);
    let verify = j.find("verify").next().expect("a verify step");
    assert!(
        !verify.ok && verify.detail.contains("Address already in use"),
        "{}",
        dump(&j)
    );
    let reloads: Vec<_> = j.find("reload").collect();
    assert_eq!(reloads.len(), 2, "{}", dump(&j));
    assert!(
        reloads[1].ok && reloads[1].detail.contains("not needed"),
        "{}",
        dump(&j)
    );
    assert_eq!(s.site_bytes(), before);
    assert_eq!(s.workers(), workers, "nginx kept its old workers");
    s.assert_healthy(&j);
    drop(held);
    fs::remove_file(&other).expect("remove other.conf");
}

/// Matrix 4: The fix reloads fine but does not cure: rolled back, reloaded again, the generation of
/// the restored config verified.
#[test]
fn fix_that_does_not_cure_is_rolled_back_and_reloaded() {
    let _env = env_shared();
    let s = Site::start();
    let (before, workers) = (s.site_bytes(), s.workers());
    let plan = s.plan(FIX);
    let mut j = Journal::quiet();
    let out = apply(
        &plan,
        &s.ctl(),
        &s.opts(Duration::from_millis(1500)),
        &mut NeverCured,
        &mut j,
    );
    assert_eq!(out, Outcome::RolledBack, "{}", dump(&j));
    assert_eq!(out.exit_code(), 1);
    let reloads: Vec<_> = j.find("reload").collect();
    assert_eq!(reloads.len(), 2, "{}", dump(&j));
    assert!(reloads.iter().all(|r| r.ok), "{}", dump(&j));
    let verifies: Vec<_> = j.find("verify").collect();
    assert_eq!(verifies.len(), 2, "{}", dump(&j));
    assert!(!verifies[0].ok && verifies[0].detail.contains("still answers 502"));
    assert!(verifies[1].ok && verifies[1].detail.contains("new worker generation"));
    assert_eq!(s.site_bytes(), before);
    assert!(s.workers().iter().all(|w| !workers.contains(w)));
    s.assert_healthy(&j);
}

/// Matrix 5: The master dies while the engine pauses before the reload (the test seam): the file is
/// restored without a reload; a new nginx starts on the restored config and answers.
#[test]
fn master_gone_before_reload_restores() {
    let _env = ENV.write().unwrap_or_else(|p| p.into_inner());
    let mut s = Site::start();
    let before = s.site_bytes();
    let plan = s.plan(FIX);
    let (ctl, opts, port) = (s.ctl(), s.opts(Duration::from_secs(5)), s.port);
    std::env::set_var(PAUSE_BEFORE_RELOAD_ENV, "1500");
    let engine = {
        let plan = plan.clone();
        std::thread::spawn(move || {
            let mut j = Journal::quiet();
            let out = apply(&plan, &ctl, &opts, &mut Answers { port }, &mut j);
            (out, j)
        })
    };
    let written = wait_until(Duration::from_secs(10), || {
        s.site_bytes() == plan.changes[0].after
    });
    let master = s.master();
    // Our own nginx, by PID: it stops its workers and exits (a zombie until we reap it).
    let st = Command::new("kill")
        .args(["-TERM", &master.to_string()])
        .status()
        .expect("kill");
    let (out, j) = engine.join().expect("the engine thread");
    std::env::remove_var(PAUSE_BEFORE_RELOAD_ENV);
    assert!(
        written,
        "the engine wrote the file before its pause\n{}",
        dump(&j)
    );
    assert!(st.success());
    assert_eq!(out, Outcome::RolledBack, "{}", dump(&j));
    assert_eq!(out.exit_code(), 1);
    let reload = j.find("reload").next().expect("a reload step");
    assert!(
        !reload.ok && reload.detail.contains("is gone"),
        "{}",
        dump(&j)
    );
    assert_eq!(s.site_bytes(), before);
    s.nginx.stop();
    s.nginx = Nginx::start(&s.prefix, &s.conf_text, s.port);
    s.assert_healthy(&j);
}

/// Matrix 6: Another fix holds the lock: refused (exit 2), nothing touched.
/// Runs the fix with `opts` and checks it was refused before anything was touched: exit 2
/// with a reason that contains every one of `why`, no backup, the site's bytes and workers as
/// before, no write step. Returns the journal.
fn assert_refused(s: &Site, opts: &ApplyOptions, why: &[&str]) -> Journal {
    let (before, workers) = (s.site_bytes(), s.workers());
    let mut j = Journal::quiet();
    let out = apply(
        &s.plan(FIX),
        &s.ctl(),
        opts,
        &mut Answers { port: s.port },
        &mut j,
    );
    assert!(
        matches!(&out, Outcome::CouldNotRun(m) if why.iter().all(|w| m.contains(w))),
        "{out:?}\n{}",
        dump(&j)
    );
    assert_eq!(out.exit_code(), 2);
    assert!(
        !opts.backup_dir.exists(),
        "a backup (or a partial one) is left"
    );
    assert_eq!(s.site_bytes(), before);
    assert_eq!(s.workers(), workers);
    assert_eq!(j.find("write").count(), 0);
    j
}

#[test]
fn second_fix_at_once_is_refused() {
    let _env = env_shared();
    let s = Site::start();
    let opts = s.opts(Duration::from_secs(5));
    fs::create_dir_all(opts.lock_path.parent().expect("lock dir")).expect("lock dir");
    let other = fs::File::create(&opts.lock_path).expect("lock file");
    other.lock().expect("the other fix's lock");
    let j = assert_refused(&s, &opts, &["another nginx-medic fix is running"]);
    s.assert_healthy(&j);
}

/// Matrix 7: The config directory is on a read-only mount (root ignores file modes, so a chmod would
/// not do): refused before the backup, naming the directory and the errno.
#[test]
fn read_only_config_directory_is_refused() {
    let _env = env_shared();
    let s = Site::start();
    let dir = s.prefix.join("conf/conf.d");
    Mounted::run(&["--bind".as_ref(), dir.as_os_str(), dir.as_os_str()]);
    let ro = Mounted(dir.clone());
    Mounted::run(&["-o".as_ref(), "remount,bind,ro".as_ref(), dir.as_os_str()]);
    let opts = s.opts(Duration::from_secs(5));
    let j = assert_refused(&s, &opts, &[&dir.display().to_string(), "os error 30"]);
    s.assert_healthy(&j);
    drop(ro);
    s.assert_healthy(&j);
}

/// Matrix 8: The backup disk is full (a 64 KiB tmpfs, filled): refused, no partial backup left,
/// nothing else touched.
#[test]
fn full_backup_disk_is_refused_without_leftovers() {
    let _env = env_shared();
    let s = Site::start();
    let disk = s.work.path().join("disk");
    fs::create_dir(&disk).expect("mount point");
    Mounted::run(&[
        "-t".as_ref(),
        "tmpfs".as_ref(),
        "-o".as_ref(),
        "size=64k".as_ref(),
        "tmpfs".as_ref(),
        disk.as_os_str(),
    ]);
    let full = Mounted(disk.clone());
    {
        use std::io::Write;
        let mut f = fs::File::create(disk.join("filler")).expect("filler");
        let chunk = [0u8; 4096];
        let err = loop {
            if let Err(e) = f.write_all(&chunk).and_then(|()| f.sync_all()) {
                break e;
            }
        };
        assert_eq!(err.raw_os_error(), Some(28), "filled up: {err}");
    }
    let mut opts = s.opts(Duration::from_secs(5));
    opts.backup_dir = disk.join("backups/20261205T000000Z");
    let j = assert_refused(&s, &opts, &["os error 28"]);
    drop(full);
    s.assert_healthy(&j);
}

/// Beyond the matrix, nginx-doctor's mistake: a backup directory inside an included directory
/// (`conf.d/`) would be loaded by the next reload. Refused, nothing created there.
#[test]
fn backup_inside_an_include_directory_is_refused() {
    let _env = env_shared();
    let s = Site::start();
    let mut opts = s.opts(Duration::from_secs(5));
    opts.backup_dir = s.prefix.join("conf/conf.d/medic-backup");
    let j = assert_refused(&s, &opts, &["conf.d/*.conf"]);
    s.assert_healthy(&j);
}
