//! `nginx-medic diagnose` on real hosts: a booted systemd (systemd-nspawn over a cached
//! debootstrap rootfs) where each test stages one real backend failure (a crash loop, an OOM
//! kill, a stopped unit, pm2 giving up, a rotated log, ...) and then runs the binary inside as
//! root with no arguments beyond `--format json`.
//!
//! Run as root. The rootfs is built on first use by `scripts/realhost-rootfs` (about 4 minutes,
//! then cached; scripts/test builds it before `cargo test`). `MEDIC_REALHOST_OUT=DIR` writes
//! each diagnosis to `DIR/<scenario>.json`.

use std::time::Instant;

use medic_e2e::realhost::scenarios::{self, Staged};
use medic_e2e::realhost::RealHost;

/// Runs `nginx-medic diagnose --format json` inside, checks the contract that holds for every
/// scenario (exit 0 or 1, JSON with a `findings` array), prints and optionally saves the JSON.
fn diagnose(host: &RealHost, staged: &Staged) -> serde_json::Value {
    let start = Instant::now();
    let run = host.medic(&["diagnose", "--format", "json"]);
    eprintln!("{}: diagnose took {:.2?}", staged.scenario, start.elapsed());
    assert!(
        matches!(run.code(), Some(0 | 1)),
        "{}: diagnose must exit 0 or 1\n{run}",
        staged.scenario
    );
    let json = run.json();
    assert!(
        json["findings"].is_array(),
        "{}: no findings array\n{run}",
        staged.scenario
    );
    let pretty = serde_json::to_string_pretty(&json).expect("serialize JSON");
    eprintln!(
        "{}: staged {staged:#?}\n{}: diagnosis\n{pretty}",
        staged.scenario, staged.scenario
    );
    if let Some(dir) = std::env::var_os("MEDIC_REALHOST_OUT") {
        let dir = std::path::PathBuf::from(dir);
        std::fs::create_dir_all(&dir).expect("create MEDIC_REALHOST_OUT");
        std::fs::write(dir.join(format!("{}.json", staged.scenario)), pretty + "\n")
            .expect("write the diagnosis to MEDIC_REALHOST_OUT");
    }
    json
}

/// Boots a host, stages with `stage`, checks the staging facts common to all, diagnoses.
fn run(name: &str, stage: impl FnOnce(&mut RealHost) -> Staged) -> (Staged, serde_json::Value) {
    let start = Instant::now();
    let mut host = RealHost::boot();
    let t = Instant::now();
    let staged = stage(&mut host);
    eprintln!("{name}: staged in {:.2?}", t.elapsed());
    assert_eq!(staged.scenario, name);
    let json = diagnose(&host, &staged);
    drop(host);
    eprintln!("{name}: whole test {:.2?}", start.elapsed());
    (staged, json)
}

#[test]
fn crash_loop() {
    let (s, _) = run("crash_loop", |h| scenarios::crash_loop(h));
    assert_eq!(s.status, 502);
    assert_eq!(s.facts["ActiveState"], "failed");
    assert_eq!(s.facts["Result"], "exit-code");
    assert_eq!(s.upstream, "127.0.0.1:8000");
}

#[test]
fn crash_restarted() {
    let (s, _) = run("crash_restarted", |h| scenarios::crash_restarted(h));
    assert_eq!(s.status, 502);
    assert_eq!(s.facts["gap.SubState"], "auto-restart");
    assert_eq!(s.facts["NRestarts"], "1");
    assert_eq!(s.facts["ActiveState"], "active");
}

#[test]
fn stopped_by_hand() {
    let (s, _) = run("stopped_by_hand", |h| scenarios::stopped_by_hand(h));
    assert_eq!(s.status, 502);
    assert_eq!(s.facts["ActiveState"], "inactive");
}

#[test]
fn oom_killed() {
    let (s, _) = run("oom_killed", scenarios::oom_killed);
    assert_eq!(s.status, 502);
    assert_eq!(s.facts["Result"], "signal");
    assert_eq!(s.facts["ExecMainStatus"], "9");
    assert!(s.facts["dmesg"].contains("Killed process"), "{:?}", s.facts);
}

#[test]
fn slow_unit() {
    let (s, _) = run("slow_unit", |h| scenarios::slow_unit(h));
    assert_eq!(s.status, 504);
}

#[test]
fn fpm_old_socket() {
    let (s, _) = run("fpm_old_socket", |h| scenarios::fpm_old_socket(h));
    assert_eq!(s.status, 502);
    assert_eq!(s.upstream, "unix:/run/php/php8.1-fpm.sock");
    assert_eq!(s.facts["ActiveState"], "inactive");
}

#[test]
fn fpm_socket_wrong_owner() {
    let (s, _) = run("fpm_socket_wrong_owner", |h| {
        scenarios::fpm_socket_wrong_owner(h)
    });
    assert_eq!(s.status, 502);
    assert_eq!(s.upstream, "unix:/run/php/php8.2-fpm.sock");
    assert_eq!(s.facts["ActiveState"], "active");
}

#[test]
fn pm2_errored() {
    let (s, _) = run("pm2_errored", |h| scenarios::pm2_errored(h));
    assert_eq!(s.status, 502);
    assert_eq!(s.facts["status"], "errored");
    assert_eq!(s.upstream, "127.0.0.1:3000");
}

#[test]
fn pm2_stopped() {
    let (s, _) = run("pm2_stopped", |h| scenarios::pm2_stopped(h));
    assert_eq!(s.status, 502);
    assert_eq!(s.facts["status"], "stopped");
}

#[test]
fn rotated_gz() {
    let (s, _) = run("rotated_gz", |h| scenarios::rotated_gz(h));
    assert_eq!(s.status, 502);
    assert!(s.facts["ls"].contains("error.log.2.gz"), "{:?}", s.facts);
}

#[test]
fn healthy() {
    let (s, _) = run("healthy", |h| scenarios::healthy(h));
    assert_eq!(s.status, 200);
}

/// The harness itself: a boot answers commands and files both ways, and poweroff leaves no
/// process, cgroup or mount of its own behind.
#[test]
fn boot_and_poweroff_leave_nothing_behind() {
    let mut host = RealHost::boot();
    assert_eq!(
        host.exec_ok(&["systemctl", "is-active", "nginx", "php8.2-fpm"]),
        "active\nactive\n"
    );
    host.write_file("/tmp/medic-probe", b"hello\n", 0o600);
    assert_eq!(host.exec_ok(&["cat", "/tmp/medic-probe"]), "hello\n");
    assert_eq!(host.read_text("/etc/hostname").trim(), "medic-realhost");
    assert_eq!(host.host_pid_of(1), host.init_pid());
    assert_eq!(
        host.exec_ok(&["pm2", "--version"]).lines().last(),
        Some("5.4.3")
    );
    let out = host.exec(&["false"]);
    assert_eq!(out.status.code(), Some(1));
    host.exec_ok(&["systemctl", "start", "nginx"]);
    // A memory cgroup for nginx's master, to check it is removed too.
    host.limit_memory_of_unit("nginx.service", 256 * 1024 * 1024);
    let (nspawn, init, dirs) = (host.nspawn_pid(), host.init_pid(), host.cgroup_dirs());
    assert_eq!(dirs.len(), 3, "{dirs:?}");
    assert!(dirs.iter().all(|d| d.is_dir()), "{dirs:?}");
    drop(host);
    for d in &dirs {
        assert!(!d.exists(), "{} left behind", d.display());
    }
    for pid in [nspawn, init] {
        let comm = std::fs::read_to_string(format!("/proc/{pid}/comm")).unwrap_or_default();
        assert!(
            !matches!(comm.trim(), "systemd-nspawn" | "systemd"),
            "pid {pid} ({}) still runs",
            comm.trim()
        );
    }
}
