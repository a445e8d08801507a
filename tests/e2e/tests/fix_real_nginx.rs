//! `nginx-medic fix` on real failures: a real nginx in its own prefix, the server in an included
//! file (`conf/conf.d/app.conf`), the failure made for real (502s in the logs), then
//! 1. `fix` without `--apply`: the plan names the fix and its diff, and no byte or mtime of the
//!    config tree changes;
//! 2. `fix --apply --yes`: exit 0, the failing request answered 200, the file's diff limited to
//!    the intended lines, the backup outside every include glob and holding the old bytes, and
//!    `nginx -t` passing on disk.
//!
//! Build the binary first: `cargo build -p nginx-medic && cargo test -p medic-e2e --test
//! fix_real_nginx`.

use std::collections::BTreeMap;
use std::fs;
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, SystemTime};

use medic_e2e::diagnose::serial;
use medic_e2e::stubs::{Behavior, TcpStub};
use medic_e2e::tls::TlsServer;
use medic_e2e::{free_port, medic, nginx, wait_until, MedicRun, Nginx, Prefix};
use serde_json::Value;

/// `conf/nginx.conf` includes `conf.d/*.conf`; the scenario's server goes in `conf.d/app.conf`.
fn app_conf(prefix: &Prefix) -> PathBuf {
    prefix.join("conf/conf.d/app.conf")
}

/// Writes the included server file and the main config, checks them with `nginx -t`, starts.
fn start(prefix: &Prefix, port: u16, location: &str) -> Nginx {
    fs::create_dir_all(prefix.join("conf/conf.d")).expect("mkdir conf.d");
    let server = format!(
        "# The application, proxied.\nserver {{\n    listen 127.0.0.1:{port};\n    server_name app.test;\n    proxy_connect_timeout 1s;\n    proxy_read_timeout 2s;\n\n    location / {{\n{location}\n    }}\n}}\n"
    );
    fs::write(app_conf(prefix), server).expect("write app.conf");
    let conf = nginx::config(prefix, "    include conf.d/*.conf;");
    let t = nginx::test_config(prefix, &conf);
    assert!(t.ok, "nginx -t refuses the scenario config:\n{}", t.stderr);
    Nginx::start(prefix, &conf, port)
}

/// Every file under `dir`: bytes and mtime.
fn tree(dir: &Path) -> BTreeMap<PathBuf, (Vec<u8>, SystemTime)> {
    let mut out = BTreeMap::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in fs::read_dir(&d).expect("read_dir").flatten() {
            let p = e.path();
            let m = fs::symlink_metadata(&p).expect("stat");
            if m.is_dir() {
                stack.push(p);
            } else {
                out.insert(
                    p.clone(),
                    (
                        fs::read(&p).unwrap_or_default(),
                        m.modified().expect("mtime"),
                    ),
                );
            }
        }
    }
    out
}

/// `nginx-medic fix --config ... --prefix ... --format json` with the test's own backup dir
/// and lock, plus `extra`.
fn fix(prefix: &Prefix, extra: &[&str]) -> MedicRun {
    let mut args: Vec<String> = vec![
        "fix".into(),
        "--config".into(),
        prefix.conf().display().to_string(),
        "--prefix".into(),
        format!("{}/", prefix.display()),
        "--format".into(),
        "json".into(),
        "--since".into(),
        "30d".into(),
        "--backup-dir".into(),
        prefix.join("backups").display().to_string(),
        "--lock-file".into(),
        prefix.join("fix.lock").display().to_string(),
    ];
    args.extend(extra.iter().map(|s| s.to_string()));
    medic(args, Vec::<&Path>::new())
}

/// The lines only in `before` and the lines only in `after` (a line diff, as sets).
fn changed_lines(before: &str, after: &str) -> (Vec<String>, Vec<String>) {
    let b: Vec<&str> = before.lines().collect();
    let a: Vec<&str> = after.lines().collect();
    let removed = b
        .iter()
        .filter(|l| !a.contains(l))
        .map(|l| l.to_string())
        .collect();
    let added = a
        .iter()
        .filter(|l| !b.contains(l))
        .map(|l| l.to_string())
        .collect();
    (removed, added)
}

/// The plan, then the apply, then every check of the module doc. `removed`/`added`: the exact
/// lines the fix must take out of and put into app.conf.
fn plan_apply_verify(
    prefix: &Prefix,
    ngx: &Nginx,
    id: &str,
    removed: &[&str],
    added: &[&str],
) -> Value {
    // 1. The plan alone changes nothing.
    let before_tree = tree(prefix.path());
    let before = fs::read_to_string(app_conf(prefix)).expect("read app.conf");
    let planned = fix(prefix, &[]);
    assert_eq!(
        planned.code(),
        Some(0),
        "fix (plan only) must exit 0\n{planned}"
    );
    let plan = planned.json();
    let item = plan["plan"]["items"]
        .as_array()
        .and_then(|items| items.iter().find(|i| i["id"] == id))
        .unwrap_or_else(|| panic!("no {id} in the plan:\n{planned}"));
    assert_eq!(item["apply"], true, "{id} is not to be applied:\n{planned}");
    let diff = plan["plan"]["files"][0]["diff"]
        .as_str()
        .unwrap_or_default();
    for l in added {
        assert!(
            diff.contains(&format!("+{l}")),
            "the diff lacks +{l}:\n{diff}"
        );
    }
    assert_eq!(
        plan["outcome"], "planned",
        "without --apply the outcome is `planned`:\n{planned}"
    );
    let after_plan = tree(prefix.path());
    let conf_dir = prefix.join("conf");
    for (p, v) in &before_tree {
        if p.starts_with(&conf_dir) {
            assert_eq!(
                after_plan.get(p),
                Some(v),
                "fix without --apply changed {} (bytes or mtime)",
                p.display()
            );
        }
    }
    assert!(
        !prefix.join("backups").exists(),
        "fix without --apply made a backup"
    );

    // 2. Apply.
    let run = fix(prefix, &["--apply", "--yes"]);
    assert_eq!(run.code(), Some(0), "fix --apply must exit 0\n{run}");
    let json = run.json();
    assert_eq!(json["outcome"], "applied", "{run}");
    ngx.get_n("/", 2, 200);
    let after = fs::read_to_string(app_conf(prefix)).expect("read app.conf");
    let (r, a) = changed_lines(&before, &after);
    assert_eq!(
        (r.as_slice(), a.as_slice()),
        (
            &removed.iter().map(|s| s.to_string()).collect::<Vec<_>>()[..],
            &added.iter().map(|s| s.to_string()).collect::<Vec<_>>()[..]
        ),
        "app.conf changed more than the fix:\n--- before\n{before}\n--- after\n{after}"
    );
    // The backup: outside conf/ (every include glob is under it), with the old bytes.
    let backup_dir = PathBuf::from(json["backup_dir"].as_str().expect("backup_dir"));
    assert!(
        !backup_dir.starts_with(&conf_dir),
        "backup inside the config directory: {}",
        backup_dir.display()
    );
    let kept = backup_dir.join(app_conf(prefix).strip_prefix("/").expect("absolute"));
    assert_eq!(
        fs::read_to_string(&kept).unwrap_or_else(|e| panic!("{}: {e}", kept.display())),
        before,
        "the backup does not hold the old app.conf"
    );
    let conf = fs::read_to_string(prefix.conf()).expect("read nginx.conf");
    let t = nginx::test_config(prefix, &conf);
    assert!(t.ok, "nginx -t fails on disk after the fix:\n{}", t.stderr);
    let steps: Vec<&str> = json["journal"]
        .as_array()
        .expect("journal")
        .iter()
        .filter_map(|s| s["step"].as_str())
        .collect();
    for s in ["lock", "backup", "stage-test", "write", "reload", "verify"] {
        assert!(
            steps.contains(&s),
            "the journal has no {s} step: {steps:?}\n{run}"
        );
    }
    eprintln!("{id}: applied\n{diff}");
    json
}

/// An 8000-byte response header against `proxy_buffer_size 4k`.
#[test]
fn header_too_big() {
    let _serial = serial();
    let prefix = Prefix::new();
    let stub = TcpStub::start(Behavior::BigHeader(8000));
    let port = free_port();
    let ngx = start(
        &prefix,
        port,
        &format!(
            "        proxy_pass http://{};\n        proxy_buffer_size 4k;",
            stub.addr()
        ),
    );
    ngx.get_n("/", 3, 502);
    plan_apply_verify(
        &prefix,
        &ngx,
        "header-too-big",
        &["        proxy_buffer_size 4k;"],
        &[
            "        proxy_buffers 8 16k;",
            "        proxy_buffer_size 16k;",
        ],
    );
}

/// An upstream that serves its certificate only to clients that send SNI; nginx has
/// `proxy_ssl_server_name off`.
#[test]
fn tls_sni_required() {
    let _serial = serial();
    let prefix = Prefix::new();
    let dir = prefix.join("tls");
    fs::create_dir_all(&dir).expect("mkdir tls");
    let (srv, up) = TlsServer::sni_only(&dir, &prefix.join("s_server.log"));
    let port = free_port();
    let ngx = start(
        &prefix,
        port,
        &format!(
            "        proxy_pass https://{};\n        proxy_ssl_verify on;\n        proxy_ssl_trusted_certificate {};\n        proxy_ssl_name upstream.test;\n        proxy_ssl_server_name off;",
            srv.addr(),
            up.cert.display()
        ),
    );
    ngx.get_n("/", 3, 502);
    plan_apply_verify(
        &prefix,
        &ngx,
        "tls-sni-required",
        &["        proxy_ssl_server_name off;"],
        &["        proxy_ssl_server_name on;"],
    );
}

/// `medic-upstream` (its own process, answering 200) on `listen`; killed by PID on drop.
struct App(Child);

impl App {
    fn start(listen: &str) -> App {
        App::start_slow(listen, 0)
    }

    /// An app that answers `delay_ms` after each request.
    fn start_slow(listen: &str, delay_ms: u64) -> App {
        let bin = PathBuf::from(env!("CARGO_BIN_EXE_medic-upstream"));
        let child = Command::new(&bin)
            .args(["--listen", listen, "--status", "200"])
            .args(["--delay-ms", &delay_ms.to_string()])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("spawn {}: {e}", bin.display()));
        let addr: SocketAddr = listen.parse().expect("socket address");
        assert!(
            wait_until(Duration::from_secs(5), || TcpStream::connect_timeout(
                &addr,
                Duration::from_millis(200)
            )
            .is_ok()),
            "medic-upstream did not listen on {listen}"
        );
        App(child)
    }
}

impl Drop for App {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The app (its own process) listens on `app`; nginx passes to `target` and gets 502s; `fix`
/// points the `proxy_pass` at `fixed`.
fn retargeted(id: &str, app: &str, target: &str, fixed: &str) {
    let prefix = Prefix::new();
    let _app = App::start(app);
    let port = free_port();
    let ngx = start(
        &prefix,
        port,
        &format!("        proxy_pass http://{target};"),
    );
    ngx.get_n("/", 3, 502);
    plan_apply_verify(
        &prefix,
        &ngx,
        id,
        &[&format!("        proxy_pass http://{target};")],
        &[&format!("        proxy_pass http://{fixed};")],
    );
}

/// The app listens on [::1]:P only; nginx connects to 127.0.0.1:P.
#[test]
fn bind_mismatch() {
    let _serial = serial();
    let p = free_port();
    retargeted(
        "bind-mismatch",
        &format!("[::1]:{p}"),
        &format!("127.0.0.1:{p}"),
        &format!("[::1]:{p}"),
    );
}

/// nginx targets port A; the application listens on B, the only application listener: in a
/// network namespace of this test's own (the suite's other listeners would make the candidate
/// uncertain, and an uncertain candidate is never applied).
#[test]
fn wrong_port() {
    let _serial = serial();
    // This thread (and every process it starts) moves to a new network namespace with only
    // its loopback up: nginx, the app and nginx-medic see the same, quiet, host.
    nix::sched::unshare(nix::sched::CloneFlags::CLONE_NEWNET).expect("unshare(CLONE_NEWNET)");
    let up = Command::new("ip")
        .args(["link", "set", "lo", "up"])
        .status()
        .expect("run ip");
    assert!(up.success(), "ip link set lo up");
    let a = free_port();
    let mut b = free_port();
    while b == a {
        b = free_port();
    }
    retargeted(
        "wrong-port",
        &format!("127.0.0.1:{b}"),
        &format!("127.0.0.1:{a}"),
        &format!("127.0.0.1:{b}"),
    );
}

/// A riskier fix (a longer read timeout: slow-backend is medium risk) is advice at the default
/// `--risk low`, and `--apply` then has nothing to do: exit 0, nothing written.
#[test]
fn medium_risk_is_advice_by_default() {
    let _serial = serial();
    let prefix = Prefix::new();
    let stub = TcpStub::start(Behavior::Hang);
    let port = free_port();
    let ngx = start(
        &prefix,
        port,
        &format!("        proxy_pass http://{};", stub.addr()),
    );
    ngx.get_n("/", 2, 504);
    let before = tree(&prefix.join("conf"));
    let run = fix(&prefix, &["--apply", "--yes"]);
    let json = run.json();
    let items = json["plan"]["items"].as_array().expect("items");
    assert!(
        items.iter().all(|i| i["apply"] == false),
        "nothing is applied at --risk low:\n{run}"
    );
    assert_eq!(run.code(), Some(0), "{run}");
    assert_eq!(json["outcome"], "nothing-to-do", "{run}");
    assert_eq!(tree(&prefix.join("conf")), before, "a file changed");
    drop(ngx);
}

/// A fix that does not cure: the upstream's header doubles with every answer (cookies piling
/// up), so the buffer the planner sizes from one measure is outgrown by the time the verifier
/// measures again. `fix --apply` must roll back: the original bytes on disk, reloaded and
/// verified, the backup kept, exit 1.
#[test]
fn fix_that_does_not_cure_rolls_back() {
    let _serial = serial();
    let prefix = Prefix::new();
    // Answers 0, 1, 2 (through nginx): 3000, 6000, 12000 bytes; answer 3 (nginx-medic's probe):
    // 24000, so the planner wants 32k (24066 * 1.25, a power of two in k); answers 4 and on
    // (the verifier's probes): 48000, then 60 KB, above 32k.
    let stub = TcpStub::start(Behavior::GrowingHeader(3000));
    let port = free_port();
    let ngx = start(
        &prefix,
        port,
        &format!(
            "        proxy_pass http://{};\n        proxy_buffer_size 4k;",
            stub.addr()
        ),
    );
    let got: Vec<u16> = (0..3)
        .map(|_| medic_e2e::http::get(port, "/", Duration::from_secs(10)))
        .collect();
    assert_eq!(
        got,
        [200, 502, 502],
        "the first header fits 4k, the next two do not\n{}",
        ngx.diagnostics()
    );
    let upstream = stub.addr();
    let too_big = ["upstream sent too big header", upstream.as_str()];
    let (lines, log) = prefix.error_lines_with(&too_big);
    assert_eq!(lines.len(), 2, "two `too big header` errors:\n{log}");

    let conf_dir = prefix.join("conf");
    let bytes = |t: BTreeMap<PathBuf, (Vec<u8>, SystemTime)>| -> BTreeMap<PathBuf, Vec<u8>> {
        t.into_iter().map(|(p, (b, _))| (p, b)).collect()
    };
    let before_conf = bytes(tree(&conf_dir));
    let before = fs::read(app_conf(&prefix)).expect("read app.conf");
    let run = fix(&prefix, &["--apply", "--yes"]);
    assert_eq!(run.code(), Some(1), "a fix rolled back exits 1\n{run}");
    let json = run.json();
    assert_eq!(json["outcome"], "rolled-back", "{run}");
    let diff = json["plan"]["files"][0]["diff"]
        .as_str()
        .unwrap_or_default();
    assert!(
        diff.contains("+        proxy_buffer_size 32k;"),
        "the plan sizes the buffer from the 24000-byte header it measured:\n{run}"
    );

    // The journal: the verifier measured a header above the new buffer, then the rollback
    // restored the file, reloaded and verified the new generation, `nginx -t` on disk.
    let journal = json["journal"].as_array().expect("journal");
    let steps: Vec<(&str, bool, &str)> = journal
        .iter()
        .map(|s| {
            (
                s["step"].as_str().unwrap_or_default(),
                s["ok"] == true,
                s["detail"].as_str().unwrap_or_default(),
            )
        })
        .collect();
    let failed = steps
        .iter()
        .position(|(step, ok, _)| *step == "verify" && !ok)
        .unwrap_or_else(|| panic!("no failed verify step:\n{run}"));
    let detail = steps[failed].2;
    assert!(
        detail.contains("header-too-big")
            && detail.contains("still sends a header larger than the buffer")
            && detail.contains("> 32768"),
        "the failed verify does not name the header against the new buffer: {detail}"
    );
    let written = steps[..failed]
        .iter()
        .filter(|(step, ok, _)| *ok && matches!(*step, "write" | "reload"))
        .count();
    assert_eq!(written, 2, "written and reloaded before the verify:\n{run}");
    let after: Vec<(&str, bool)> = steps[failed + 1..]
        .iter()
        .map(|(step, ok, _)| (*step, *ok))
        .collect();
    assert_eq!(
        after,
        [
            ("rollback", true),
            ("restore", true),
            ("reload", true),
            ("verify", true),
            ("rollback-test", true),
            ("rollback", true),
        ],
        "the rollback: restore, a second reload, verified\n{run}"
    );

    // On disk: the original bytes, nothing added or left behind under conf/, `nginx -t` passes.
    assert_eq!(
        fs::read(app_conf(&prefix)).expect("read app.conf"),
        before,
        "app.conf does not hold its original bytes"
    );
    assert_eq!(
        bytes(tree(&conf_dir)),
        before_conf,
        "the config tree differs"
    );
    let conf = fs::read_to_string(prefix.conf()).expect("read nginx.conf");
    let t = nginx::test_config(&prefix, &conf);
    assert!(
        t.ok,
        "nginx -t fails on disk after the rollback:\n{}",
        t.stderr
    );

    // nginx runs the original config again: 4k against a 60 KB header is a 502, logged as before.
    assert_eq!(
        medic_e2e::http::get(port, "/", Duration::from_secs(10)),
        502,
        "nginx after the rollback\n{}",
        ngx.diagnostics()
    );
    let (lines, log) = prefix.error_lines_with(&too_big);
    assert_eq!(
        lines.len(),
        3,
        "the request after the rollback: one more `too big header`:\n{log}"
    );

    // The backup stays, with the original bytes.
    let backup_dir = PathBuf::from(json["backup_dir"].as_str().expect("backup_dir"));
    assert!(backup_dir.is_dir(), "{} is gone", backup_dir.display());
    let kept = backup_dir.join(app_conf(&prefix).strip_prefix("/").expect("absolute"));
    assert_eq!(
        fs::read(&kept).unwrap_or_else(|e| panic!("{}: {e}", kept.display())),
        before,
        "the backup does not hold the original app.conf"
    );
}

/// nginx passes to `unix:PREFIX/php.sock`; the PHP-FPM pool listens on
/// `unix:PREFIX/php-fpm.sock` (same directory): the `fastcgi_pass` path is rewritten to the
/// pool's, and the script answers.
#[test]
fn socket_path_mismatch() {
    use medic_e2e::php_fpm::{docroot, PhpFpm, Pool};
    let _serial = serial();
    let prefix = Prefix::new();
    let www = docroot(
        &prefix.join("www"),
        &[("hello.php", "<?php echo \"hello from php-fpm\\n\";\n")],
    );
    let fpm_sock = prefix.join("php-fpm.sock");
    let _fpm = PhpFpm::start(
        prefix.path(),
        &[Pool {
            name: "www".into(),
            listen: fpm_sock.display().to_string(),
            mode: Some("0666".into()),
        }],
    );
    let wrong = prefix.join("php.sock");
    let port = free_port();
    fs::create_dir_all(prefix.join("conf/conf.d")).expect("mkdir conf.d");
    let server = format!(
        "server {{\n    listen 127.0.0.1:{port};\n    root {root};\n    location ~ \\.php$ {{\n        fastcgi_pass unix:{wrong};\n        fastcgi_param SCRIPT_FILENAME $document_root$fastcgi_script_name;\n        fastcgi_param REQUEST_METHOD $request_method;\n        fastcgi_connect_timeout 1s;\n    }}\n}}\n",
        root = www.display(),
        wrong = wrong.display()
    );
    fs::write(app_conf(&prefix), server).expect("write app.conf");
    let conf = nginx::config(&prefix, "    include conf.d/*.conf;");
    let t = nginx::test_config(&prefix, &conf);
    assert!(t.ok, "nginx -t refuses the scenario config:\n{}", t.stderr);
    let ngx = Nginx::start(&prefix, &conf, port);
    ngx.get_n("/hello.php", 3, 502);
    let before = fs::read_to_string(app_conf(&prefix)).expect("read app.conf");
    let run = fix(&prefix, &["--apply", "--yes"]);
    assert_eq!(run.code(), Some(0), "fix --apply must exit 0\n{run}");
    assert_eq!(run.json()["outcome"], "applied", "{run}");
    ngx.get_n("/hello.php", 2, 200);
    let after = fs::read_to_string(app_conf(&prefix)).expect("read app.conf");
    let (removed, added) = changed_lines(&before, &after);
    assert_eq!(
        (removed, added),
        (
            vec![format!("        fastcgi_pass unix:{};", wrong.display())],
            vec![format!("        fastcgi_pass unix:{};", fpm_sock.display())]
        ),
        "app.conf changed more than the fix:\n{after}"
    );
}

/// An app that answers after 3 s behind `proxy_read_timeout 2s` (504s): `slow-backend`, a
/// medium-risk fix, applied with `--risk medium`: the location gets a longer read timeout (the
/// server's 2 s line stays), and the request is answered 200.
#[test]
fn slow_backend_with_risk_medium() {
    let _serial = serial();
    let prefix = Prefix::new();
    let p = free_port();
    let _app = App::start_slow(&format!("127.0.0.1:{p}"), 3000);
    let port = free_port();
    let ngx = start(
        &prefix,
        port,
        &format!("        proxy_pass http://127.0.0.1:{p};"),
    );
    ngx.get_n("/", 2, 504);
    let before = fs::read_to_string(app_conf(&prefix)).expect("read app.conf");
    let run = fix(&prefix, &["--apply", "--yes", "--risk", "medium"]);
    assert_eq!(
        run.code(),
        Some(0),
        "fix --apply --risk medium must exit 0\n{run}"
    );
    assert_eq!(run.json()["outcome"], "applied", "{run}");
    ngx.get_n("/", 1, 200);
    let after = fs::read_to_string(app_conf(&prefix)).expect("read app.conf");
    let (removed, added) = changed_lines(&before, &after);
    assert!(
        removed.is_empty(),
        "a line was changed, not added: {removed:?}\n{after}"
    );
    assert_eq!(
        added,
        vec!["        proxy_read_timeout 4s;".to_string()],
        "{after}"
    );
}
