//! `nginx-medic diagnose` on real hosts: a booted systemd (systemd-nspawn over a cached
//! debootstrap rootfs) where each test stages one real backend failure (a crash loop, an OOM
//! kill, a stopped unit, pm2 giving up, a rotated log, ...) and then runs the binary inside as
//! root with no arguments beyond `--format json`.
//!
//! Run as root. The rootfs is built on first use by `scripts/realhost-rootfs` (about 4 minutes,
//! then cached; scripts/test builds it before `cargo test`). `MEDIC_REALHOST_OUT=DIR` writes
//! each diagnosis to `DIR/<scenario>.json`.

use std::path::{Path, PathBuf};
use std::time::Instant;

use medic_e2e::realhost::scenarios::{self, Staged};
use medic_e2e::realhost::RealHost;

/// Where the recorded runs are kept: the unit tests replay them without root
/// (`crates/nginx-medic/tests/replay.rs`).
fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../fixtures/realhost")
}

/// Inside the container: where `--record` writes the run.
const BUNDLE: &str = "/root/medic-bundle";

/// Runs `nginx-medic diagnose --format json --record DIR` inside as root, checks the contract
/// that holds for every scenario (exit 0 or 1, JSON with a `findings` array), then replays the
/// recorded run on this side (no host, no root) and checks it reaches the same diagnosis.
/// With `MEDIC_RECORD_FIXTURES=1` the recording becomes `tests/fixtures/realhost/<scenario>/`.
fn diagnose(host: &RealHost, staged: &Staged) -> serde_json::Value {
    let start = Instant::now();
    let run = host.medic(&["diagnose", "--format", "json", "--record", BUNDLE]);
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
        let dir = PathBuf::from(dir);
        std::fs::create_dir_all(&dir).expect("create MEDIC_REALHOST_OUT");
        std::fs::write(dir.join(format!("{}.json", staged.scenario)), pretty + "\n")
            .expect("write the diagnosis to MEDIC_REALHOST_OUT");
    }
    // Copy the recording out and replay it here.
    let out = tempfile::tempdir().expect("tempdir");
    let local = out.path().join(staged.scenario);
    copy_out(host, BUNDLE, &local);
    let replay = medic_e2e::medic(
        [
            "diagnose",
            "--format",
            "json",
            "--replay",
            &local.display().to_string(),
        ],
        Vec::<PathBuf>::new(),
    );
    assert!(matches!(replay.code(), Some(0 | 1)), "{replay}");
    let replayed = replay.json();
    let ids = |j: &serde_json::Value| -> Vec<(String, String)> {
        j["findings"]
            .as_array()
            .unwrap()
            .iter()
            .map(|f| (f["id"].to_string(), f["backend"]["name"].to_string()))
            .collect()
    };
    assert_eq!(
        ids(&json),
        ids(&replayed),
        "{}: the replay differs",
        staged.scenario
    );
    collect_and_diagnose_anywhere(host, staged, &local);
    if std::env::var_os("MEDIC_RECORD_FIXTURES").is_some() {
        let dest = fixtures().join(staged.scenario);
        let _ = std::fs::remove_dir_all(&dest);
        copy_out(host, BUNDLE, &dest);
    }
    json
}

/// `nginx-medic collect` inside (live, as root), the bundle copied out, then `diagnose
/// --bundle` here: the same findings, backends and states as the live diagnosis the collector
/// ran (its `diagnosis.json`), the evidence citing the host's own paths.
fn collect_and_diagnose_anywhere(host: &RealHost, staged: &Staged, recorded: &Path) {
    const OUT: &str = "/root/incident.tar.gz";
    let start = Instant::now();
    let run = host.medic(&["collect", "-o", OUT]);
    assert_eq!(run.code(), Some(0), "{}: collect\n{run}", staged.scenario);
    let out = tempfile::tempdir().expect("tempdir");
    let local = out.path().join("incident.tar.gz");
    let bytes = host.read_file(OUT);
    eprintln!(
        "{}: collect took {:.2?}, bundle {} bytes",
        staged.scenario,
        start.elapsed(),
        bytes.len()
    );
    std::fs::write(&local, bytes).expect("copy the bundle out");
    let replay = medic_e2e::medic(
        [
            "diagnose",
            "--format",
            "json",
            "--bundle",
            &local.display().to_string(),
        ],
        Vec::<PathBuf>::new(),
    );
    assert!(matches!(replay.code(), Some(0 | 1)), "{replay}");
    let from_bundle = replay.json();
    let x = out.path().join("x");
    std::fs::create_dir_all(&x).unwrap();
    let tar = std::process::Command::new("tar")
        .arg("-xzf")
        .arg(&local)
        .arg("-C")
        .arg(&x)
        .status()
        .expect("tar");
    assert!(tar.success());
    let live: serde_json::Value = serde_json::from_slice(
        &std::fs::read(x.join("nginx-medic-bundle/diagnosis.json")).expect("diagnosis.json"),
    )
    .expect("the collector's diagnosis");
    let key = |j: &serde_json::Value| -> Vec<String> {
        j["findings"]
            .as_array()
            .unwrap()
            .iter()
            .map(|f| {
                format!(
                    "{} {} {} {} {}",
                    f["id"], f["upstream"], f["state"], f["backend"]["name"], f["count"]
                )
            })
            .collect()
    };
    assert!(
        staged.scenario == "healthy" || !key(&live).is_empty(),
        "{}: no findings",
        staged.scenario
    );
    assert_eq!(
        key(&live),
        key(&from_bundle),
        "{}: the bundle diagnoses differently from the live run that collected it",
        staged.scenario
    );
    // The backends' credentials reach the unredacted recording (unit files, `systemctl show`,
    // `pm2 jlist`), never the bundle.
    let secrets = [scenarios::UNIT_SECRET, scenarios::PM2_SECRET];
    let recorded_text = files_text(recorded);
    let seen: Vec<&&str> = secrets
        .iter()
        .filter(|s| recorded_text.contains(**s))
        .collect();
    // my-backend.service carries one in every scenario; the pm2 app only where it is started
    // from its ecosystem file.
    if staged.unit == Some("my-backend.service") || staged.scenario == "pm2_errored" {
        assert!(
            !seen.is_empty(),
            "{}: the recording holds no staged credential: the redaction check proves nothing",
            staged.scenario
        );
    }
    let bundle_text = files_text(&x);
    for s in secrets {
        assert!(
            !bundle_text.contains(s),
            "{}: {s} is in the bundle",
            staged.scenario
        );
    }
    let sources = |j: &serde_json::Value| -> Vec<String> {
        j["findings"]
            .as_array()
            .unwrap()
            .iter()
            .flat_map(|f| f["evidence"].as_array().unwrap().iter())
            .map(|e| e["source"].to_string())
            .collect()
    };
    assert_eq!(sources(&live), sources(&from_bundle), "{}", staged.scenario);
}

/// Every file under `dir`, gunzip'd when gzip'd, as one text.
fn files_text(dir: &Path) -> String {
    let mut out = String::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).expect("read_dir").flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
                continue;
            }
            let bytes = std::fs::read(&p).expect("read");
            let bytes = if bytes.starts_with(&[0x1f, 0x8b]) {
                let mut plain = Vec::new();
                std::io::Read::read_to_end(
                    &mut flate2::read::MultiGzDecoder::new(&bytes[..]),
                    &mut plain,
                )
                .expect("gunzip");
                plain
            } else {
                bytes
            };
            out.push_str(&String::from_utf8_lossy(&bytes));
        }
    }
    out
}

/// Copies a bundle directory (`bundle.json`, `nginx-T.txt`, `logs/*`) out of the container.
fn copy_out(host: &RealHost, dir: &str, to: &Path) {
    std::fs::create_dir_all(to.join("logs")).expect("create the bundle copy");
    let list = host.exec_ok(&["find", dir, "-type", "f", "-printf", "%P\\n"]);
    for rel in list.lines().filter(|l| !l.is_empty()) {
        let bytes = host.read_file(&format!("{dir}/{rel}"));
        std::fs::write(to.join(rel), bytes).expect("write the bundle copy");
    }
}

/// The top finding, checked: its id and upstream, the backend it names, an evidence line that
/// says why the backend died, and a fix command in the supervisor's own words.
fn top<'j>(
    json: &'j serde_json::Value,
    id: &str,
    upstream: &str,
    backend: (&str, &str),
    evidence: &str,
    command: &str,
) -> &'j serde_json::Value {
    let f = &json["findings"][0];
    let show = || serde_json::to_string_pretty(f).unwrap();
    assert_eq!(f["id"], id, "{}", show());
    assert_eq!(f["severity"], "error", "{}", show());
    assert_eq!(f["upstream"], upstream, "{}", show());
    assert_eq!(f["backend"]["supervisor"], backend.0, "{}", show());
    assert_eq!(f["backend"]["name"], backend.1, "{}", show());
    assert!(
        f["evidence"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["text"].as_str().unwrap_or("").contains(evidence)),
        "no evidence with {evidence:?}: {}",
        show()
    );
    assert!(
        f["fix"]["commands"]
            .as_array()
            .unwrap()
            .iter()
            .any(|c| c.as_str().unwrap_or("") == command),
        "no command {command:?}: {}",
        show()
    );
    assert!(
        !f["fix"]["commands"].to_string().contains("APP"),
        "{}",
        show()
    );
    f
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
    let (s, j) = run("crash_loop", |h| scenarios::crash_loop(h));
    assert_eq!(s.status, 502);
    assert_eq!(s.facts["ActiveState"], "failed");
    assert_eq!(s.facts["Result"], "exit-code");
    assert_eq!(s.upstream, "127.0.0.1:8000");
    let f = top(
        &j,
        "backend-down",
        "127.0.0.1:8000",
        ("systemd", "my-backend.service"),
        "fatal: config broken, exiting",
        "systemctl reset-failed my-backend.service",
    );
    assert_eq!(f["backend"]["state"], "failed");
    // The app names its port only in its code and never listened: matched by timing, said so.
    assert_eq!(f["backend"]["confidence"], "low");
    assert!(f["evidence"]
        .to_string()
        .contains("Start request repeated too quickly"));
}

#[test]
fn crash_restarted() {
    let (s, j) = run("crash_restarted", |h| scenarios::crash_restarted(h));
    assert_eq!(s.status, 502);
    let f = top(
        &j,
        "backend-starting",
        "127.0.0.1:8000",
        ("systemd", "my-backend.service"),
        "Main process exited, code=exited, status=1/FAILURE",
        "journalctl -u my-backend.service -n 50 --no-pager",
    );
    assert_eq!(f["backend"]["restarts"], 1);
    // A Python service: no PHP-FPM advice.
    assert!(!f["fix"].to_string().contains("max_children"));
    assert_eq!(s.facts["gap.SubState"], "auto-restart");
    assert_eq!(s.facts["NRestarts"], "1");
    assert_eq!(s.facts["ActiveState"], "active");
}

#[test]
fn stopped_by_hand() {
    let (s, j) = run("stopped_by_hand", |h| scenarios::stopped_by_hand(h));
    assert_eq!(s.status, 502);
    assert_eq!(s.facts["ActiveState"], "inactive");
    let f = top(
        &j,
        "backend-down",
        "127.0.0.1:8000",
        ("systemd", "my-backend.service"),
        "Stopped my-backend.service",
        "systemctl restart my-backend.service",
    );
    assert_eq!(f["backend"]["state"], "inactive");
    assert_eq!(f["backend"]["confidence"], "high");
}

#[test]
fn oom_killed() {
    let (s, j) = run("oom_killed", scenarios::oom_killed);
    assert_eq!(s.status, 502);
    assert_eq!(s.facts["Result"], "signal");
    assert_eq!(s.facts["ExecMainStatus"], "9");
    assert!(s.facts["dmesg"].contains("Killed process"), "{:?}", s.facts);
    let f = top(
        &j,
        "backend-crash",
        "127.0.0.1:8000",
        ("systemd", "my-backend.service"),
        "status=9/KILL",
        "systemctl status my-backend.service",
    );
    // One evidence item per kill, and only this backend's.
    let kernel: Vec<&serde_json::Value> = f["evidence"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["kind"] == "kernel")
        .collect();
    assert_eq!(kernel.len(), 1, "{kernel:?}");
    assert!(kernel[0]["text"]
        .as_str()
        .unwrap()
        .contains("Killed process"));
}

#[test]
fn slow_unit() {
    let (s, j) = run("slow_unit", |h| scenarios::slow_unit(h));
    assert_eq!(s.status, 504);
    let f = &j["findings"][0];
    assert_eq!(f["id"], "slow-backend", "{f}");
    assert_eq!(f["backend"]["name"], "my-backend.service", "{f}");
    assert_eq!(f["backend"]["confidence"], "certain", "{f}");
}

#[test]
fn fpm_old_socket() {
    let (s, j) = run("fpm_old_socket", |h| scenarios::fpm_old_socket(h));
    assert_eq!(s.status, 502);
    assert_eq!(s.upstream, "unix:/run/php/php8.1-fpm.sock");
    assert_eq!(s.facts["ActiveState"], "inactive");
    let f = top(
        &j,
        "socket-path-mismatch",
        "unix:/run/php/php8.1-fpm.sock",
        ("php-fpm", "www"),
        "/run/php/php8.2-fpm.sock",
        "systemctl enable --now php8.2-fpm",
    );
    // The pool file:line and the fastcgi_pass line that disagree.
    let ev = f["evidence"].to_string();
    assert!(ev.contains("/etc/php/8.2/fpm/pool.d/www.conf:"), "{ev}");
    assert!(
        ev.contains("fastcgi_pass unix:/run/php/php8.1-fpm.sock"),
        "{ev}"
    );
}

#[test]
fn fpm_socket_wrong_owner() {
    let (s, j) = run("fpm_socket_wrong_owner", |h| {
        scenarios::fpm_socket_wrong_owner(h)
    });
    assert_eq!(s.status, 502);
    assert_eq!(s.upstream, "unix:/run/php/php8.2-fpm.sock");
    assert_eq!(s.facts["ActiveState"], "active");
    let f = top(
        &j,
        "socket-permission",
        "unix:/run/php/php8.2-fpm.sock",
        ("systemd", "php8.2-fpm.service"),
        "listen.owner = root",
        "systemctl restart php8.2-fpm",
    );
    assert_eq!(f["backend"]["confidence"], "certain");
}

#[test]
fn pm2_errored() {
    let (s, j) = run("pm2_errored", |h| scenarios::pm2_errored(h));
    assert_eq!(s.status, 502);
    assert_eq!(s.facts["status"], "errored");
    assert_eq!(s.upstream, "127.0.0.1:3000");
    let f = top(
        &j,
        "backend-down",
        "127.0.0.1:3000",
        ("pm2", "orders-api"),
        "Cannot find module './config/database.json'",
        "sudo -u deploy PM2_HOME=/home/deploy/.pm2 pm2 restart orders-api",
    );
    assert_eq!(f["backend"]["state"], "errored");
    assert!(!f["fix"].to_string().contains("systemctl restart"));
}

#[test]
fn pm2_stopped() {
    let (s, j) = run("pm2_stopped", |h| scenarios::pm2_stopped(h));
    assert_eq!(s.status, 502);
    assert_eq!(s.facts["status"], "stopped");
    let f = top(
        &j,
        "backend-down",
        "127.0.0.1:3000",
        ("pm2", "orders-api"),
        "status stopped",
        "sudo -u deploy PM2_HOME=/home/deploy/.pm2 pm2 restart orders-api",
    );
    assert_eq!(f["backend"]["state"], "stopped");
}

#[test]
fn rotated_gz() {
    let (s, j) = run("rotated_gz", |h| scenarios::rotated_gz(h));
    assert_eq!(s.status, 502);
    assert!(s.facts["ls"].contains("error.log.2.gz"), "{:?}", s.facts);
    let f = top(
        &j,
        "backend-down",
        "127.0.0.1:8000",
        ("systemd", "my-backend.service"),
        "Stopped my-backend.service",
        "systemctl restart my-backend.service",
    );
    // The incident's lines are only in the second, compressed rotation.
    assert!(f["evidence"][0]["source"]
        .as_str()
        .unwrap()
        .starts_with("/var/log/nginx/error.log.2.gz:"));
    assert!(f["count"].as_u64().unwrap() >= 1, "{f}");
}

#[test]
fn healthy() {
    let host = RealHost::boot();
    let s = scenarios::healthy(&host);
    assert_eq!(s.status, 200);
    let j = diagnose(&host, &s);
    let errors: Vec<&serde_json::Value> = j["findings"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["severity"] == "error")
        .collect();
    assert!(errors.is_empty(), "{errors:#?}");
    // pm2 is installed but no daemon runs: it is not asked (that would start one), and the
    // report says so.
    let pm2 = j["skipped"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["check"] == "pm2")
        .unwrap_or_else(|| panic!("{}", j["skipped"]));
    assert!(
        pm2["why"].as_str().unwrap().contains("no pm2 daemon runs"),
        "{pm2}"
    );
    assert!(
        !host.exec(&["test", "-e", "/root/.pm2"]).status.success(),
        "a read-only run started a pm2 daemon as root"
    );
    // nginx itself down: found through its unit, and the advice is its unit's.
    host.exec_ok(&["systemctl", "stop", "nginx"]);
    let run = host.medic(&["diagnose", "--format", "json"]);
    assert!(matches!(run.code(), Some(0 | 1)), "{run}");
    let j = run.json();
    assert_eq!(j["instances"][0]["unit"], "nginx.service", "{run}");
    assert_eq!(
        j["instances"][0]["config"], "/etc/nginx/nginx.conf",
        "{run}"
    );
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
