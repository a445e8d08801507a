//! `nginx-medic diagnose` on real FastCGI failures: a real nginx in front of a real PHP-FPM 8.2
//! (or of a unix socket nothing serves), on loopback and unix sockets in the scenario's prefix.
//!
//! Each scenario stages the failure, asserts the line nginx itself wrote (so the staging is
//! proven), runs `diagnose` live while the broken state holds, then stops nginx and PHP-FPM and
//! runs it post-mortem (`--no-probe`: the config and the logs only).
//!
//! As root (CI), nginx workers run as `nobody` and the pool workers too; the sockets stay
//! root's, so every socket a scenario wants reachable is `listen.mode = 0666`.
//!
//! Build the binary first: `cargo build -p nginx-medic && cargo test -p medic-e2e --test
//! diagnose_fastcgi`.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use medic_e2e::diagnose::{diagnose, serial, Diagnosis, Mode};
use medic_e2e::php_fpm::{docroot, PhpFpm, Pm, Pool, PoolOptions};
use medic_e2e::{free_port, http, is_root, nginx, wait_until, Nginx, Prefix};

const HELLO: &str = "<?php echo \"hello from php-fpm\\n\";\n";

/// The `server {}` of every scenario: `.php` files under `root` passed to `pass` with the
/// FastCGI params written out (no `include fastcgi_params`: the prefix has no such file).
fn fastcgi_server(port: u16, pass: &str, root: &Path, script_filename: &str, read: &str) -> String {
    format!(
        "    server {{
        listen 127.0.0.1:{port};
        root {root};
        location ~ \\.php$ {{
            fastcgi_pass {pass};
            fastcgi_param SCRIPT_FILENAME {script_filename};
            fastcgi_param SCRIPT_NAME $fastcgi_script_name;
            fastcgi_param REQUEST_METHOD $request_method;
            fastcgi_param QUERY_STRING $query_string;
            fastcgi_param REQUEST_URI $request_uri;
            fastcgi_param DOCUMENT_ROOT $document_root;
            fastcgi_param SERVER_PROTOCOL $server_protocol;
            fastcgi_param REMOTE_ADDR $remote_addr;
            fastcgi_param SERVER_NAME $server_name;
            fastcgi_param SERVER_PORT $server_port;
            fastcgi_connect_timeout 1s;
            fastcgi_send_timeout 2s;
            fastcgi_read_timeout {read};
        }}
    }}",
        root = root.display(),
    )
}

/// The default `SCRIPT_FILENAME`: the requested script under `root`.
const SCRIPT: &str = "$document_root$fastcgi_script_name";

/// A unix-socket pool nginx workers (`nobody`) may connect to.
fn unix_pool(name: &str, path: &Path) -> Pool {
    Pool {
        name: name.into(),
        listen: path.display().to_string(),
        mode: Some("0666".into()),
    }
}

fn root_required(what: &str) {
    assert!(
        is_root(),
        "{what} needs root: nginx workers must run as `nobody` (a `user` other than the socket's \
         owner); run the e2e tests as root, as CI does (scripts/test)"
    );
}

/// The first line of nginx's error log that contains every needle, waiting up to 3 s for it.
fn error_line(prefix: &Prefix, needles: &[&str]) -> String {
    let find = || {
        fs::read_to_string(prefix.error_log())
            .unwrap_or_default()
            .lines()
            .find(|l| needles.iter().all(|n| l.contains(n)))
            .map(str::to_string)
    };
    wait_until(Duration::from_secs(3), || find().is_some());
    find().unwrap_or_else(|| {
        panic!(
            "nginx logged no line with {needles:?}:\n{}",
            fs::read_to_string(prefix.error_log()).unwrap_or_default()
        )
    })
}

/// Prints the top finding (for `--nocapture` reports), then returns the diagnosis.
fn run(scenario: &str, prefix: &Prefix, mode: Mode) -> Diagnosis {
    let d = diagnose(prefix, mode, &[]);
    match d.findings().first() {
        Some(top) => {
            eprintln!(
                "[{scenario}] {mode:?}: top {} upstream {} evidence[0] {}",
                top["id"], top["upstream"], top["evidence"][0]["text"]
            );
            for e in top["evidence"].as_array().into_iter().flatten().skip(1) {
                let text = e["text"].as_str().unwrap_or_default();
                let short: String = text.chars().take(200).collect();
                eprintln!("    {} {}: {short}", e["kind"], e["source"]);
            }
        }
        None => eprintln!("[{scenario}] {mode:?}: no findings"),
    }
    if mode == Mode::NoProbe {
        // Post-mortem reads files only: nothing may come from a probe or a supervisor.
        for f in d.findings() {
            for e in f["evidence"].as_array().into_iter().flatten() {
                assert!(
                    e["kind"] != "probe" && e["kind"] != "supervisor",
                    "--no-probe gave {} evidence in {}:\n{:#}",
                    e["kind"],
                    f["id"],
                    d.json
                );
            }
        }
    }
    d
}

/// Asserts that some evidence item of `finding` contains one of `needles`.
fn evidence_has_any(finding: &serde_json::Value, needles: &[&str]) {
    let items = finding["evidence"].as_array().expect("evidence array");
    assert!(
        items.iter().any(|e| {
            let text = e["text"].as_str().unwrap_or("");
            let source = e["source"].as_str().unwrap_or("");
            needles
                .iter()
                .any(|n| text.contains(n) || source.contains(n))
        }),
        "no evidence contains any of {needles:?}:\n{finding:#}"
    );
}

#[test]
fn socket_missing() {
    let _serial = serial();
    let prefix = Prefix::new();
    let www = docroot(&prefix.join("www"), &[("hello.php", HELLO)]);
    let sock = prefix.join("php.sock");
    let port = free_port();
    let pass = format!("unix:{}", sock.display());
    let body = fastcgi_server(port, &pass, &www, SCRIPT, "2s");
    let mut nginx = Nginx::start(&prefix, &nginx::config(&prefix, &body), port);

    assert_eq!(http::get(port, "/hello.php", Duration::from_secs(5)), 502);
    let line = error_line(
        &prefix,
        &[
            "[crit]",
            &format!("connect() to {pass} failed (2: No such file or directory)"),
        ],
    );
    eprintln!("[socket_missing] nginx: {line}");

    let live = run("socket_missing", &prefix, Mode::Live);
    live.assert_top(
        "socket-missing",
        Some(&pass),
        &["No such file or directory"],
    );

    nginx.stop();
    let post = run("socket_missing", &prefix, Mode::NoProbe);
    post.assert_top(
        "socket-missing",
        Some(&pass),
        &["No such file or directory"],
    );
}

#[test]
fn socket_path_mismatch() {
    let _serial = serial();
    let prefix = Prefix::new();
    let www = docroot(&prefix.join("www"), &[("hello.php", HELLO)]);
    let fpm_sock = prefix.join("php-fpm.sock");
    let mut fpm = PhpFpm::start(prefix.path(), &[unix_pool("www", &fpm_sock)]);
    let sock = prefix.join("php.sock");
    let port = free_port();
    let pass = format!("unix:{}", sock.display());
    let body = fastcgi_server(port, &pass, &www, SCRIPT, "2s");
    let mut nginx = Nginx::start(&prefix, &nginx::config(&prefix, &body), port);

    assert_eq!(http::get(port, "/hello.php", Duration::from_secs(5)), 502);
    let line = error_line(
        &prefix,
        &[&format!(
            "connect() to {pass} failed (2: No such file or directory)"
        )],
    );
    eprintln!("[socket_path_mismatch] nginx: {line}");

    let live = run("socket_path_mismatch", &prefix, Mode::Live);
    let fpm_path = fpm_sock.display().to_string();
    live.assert_top("socket-path-mismatch", Some(&pass), &[&fpm_path]);

    nginx.stop();
    fpm.stop();
    let post = run("socket_path_mismatch", &prefix, Mode::NoProbe);
    post.assert_top(
        "socket-missing",
        Some(&pass),
        &["No such file or directory"],
    );
}

#[test]
fn socket_stale() {
    let _serial = serial();
    let prefix = Prefix::new();
    let www = docroot(&prefix.join("www"), &[("hello.php", HELLO)]);
    let sock = prefix.join("php.sock");
    {
        // A backend that bound its socket and died: the file stays, nothing listens.
        let l = std::os::unix::net::UnixListener::bind(&sock).expect("bind the unix socket");
        // Writable by the nginx workers (nobody), so connect() meets the missing listener
        // (ECONNREFUSED), not the mode (EACCES).
        fs::set_permissions(&sock, fs::Permissions::from_mode(0o666)).expect("chmod the socket");
        drop(l);
    }
    assert!(
        sock.exists(),
        "the socket file must stay after its listener is gone"
    );
    let port = free_port();
    let pass = format!("unix:{}", sock.display());
    let body = fastcgi_server(port, &pass, &www, SCRIPT, "2s");
    let mut nginx = Nginx::start(&prefix, &nginx::config(&prefix, &body), port);

    assert_eq!(http::get(port, "/hello.php", Duration::from_secs(5)), 502);
    let line = error_line(
        &prefix,
        &[&format!(
            "connect() to {pass} failed (111: Connection refused)"
        )],
    );
    eprintln!("[socket_stale] nginx: {line}");

    let live = run("socket_stale", &prefix, Mode::Live);
    live.assert_top("socket-stale", Some(&pass), &["Connection refused"]);

    nginx.stop();
    let post = run("socket_stale", &prefix, Mode::NoProbe);
    post.assert_top("socket-stale", Some(&pass), &["Connection refused"]);
}

#[test]
fn socket_permission() {
    root_required("socket_permission");
    let _serial = serial();
    let prefix = Prefix::new();
    let www = docroot(&prefix.join("www"), &[("hello.php", HELLO)]);
    let sock = prefix.join("php.sock");
    let mut fpm = PhpFpm::start(
        prefix.path(),
        &[Pool {
            name: "www".into(),
            listen: sock.display().to_string(),
            mode: Some("0600".into()),
        }],
    );
    let port = free_port();
    let pass = format!("unix:{}", sock.display());
    let body = fastcgi_server(port, &pass, &www, SCRIPT, "2s");
    let mut nginx = Nginx::start(&prefix, &nginx::config(&prefix, &body), port);

    assert_eq!(http::get(port, "/hello.php", Duration::from_secs(5)), 502);
    let line = error_line(
        &prefix,
        &[
            "[crit]",
            &format!("connect() to {pass} failed (13: Permission denied)"),
        ],
    );
    eprintln!("[socket_permission] nginx: {line}");

    let live = run("socket_permission", &prefix, Mode::Live);
    let top = live.assert_top("socket-permission", Some(&pass), &[]);
    evidence_has_any(top, &["srw-------", "nobody"]);

    nginx.stop();
    fpm.stop();
    let post = run("socket_permission", &prefix, Mode::NoProbe);
    post.assert_top("socket-permission", Some(&pass), &["Permission denied"]);
}

#[test]
fn fastcgi_read_timeout() {
    let _serial = serial();
    let prefix = Prefix::new();
    let www = docroot(
        &prefix.join("www"),
        &[
            ("hello.php", HELLO),
            ("slow.php", "<?php sleep(3); echo \"late\\n\";\n"),
        ],
    );
    // A TCP pool with room to spare: three children, one request.
    let fpm_port = free_port();
    let mut fpm = PhpFpm::start_with(
        prefix.path(),
        &[(
            Pool {
                name: "www".into(),
                listen: format!("127.0.0.1:{fpm_port}"),
                mode: None,
            },
            PoolOptions {
                pm: Pm::Static,
                max_children: 3,
                extra: Vec::new(),
            },
        )],
    );
    let port = free_port();
    let pass = format!("127.0.0.1:{fpm_port}");
    let body = fastcgi_server(port, &pass, &www, SCRIPT, "1s");
    let mut nginx = Nginx::start(&prefix, &nginx::config(&prefix, &body), port);

    assert_eq!(http::get(port, "/slow.php", Duration::from_secs(5)), 504);
    let line = error_line(
        &prefix,
        &[
            "upstream timed out (110: Connection timed out) while reading response header from upstream",
            &format!("upstream: \"fastcgi://{pass}\""),
        ],
    );
    eprintln!("[fastcgi_read_timeout] nginx: {line}");

    let live = run("fastcgi_read_timeout", &prefix, Mode::Live);
    live.assert_top("slow-backend", Some(&pass), &[]);

    nginx.stop();
    fpm.stop_fast();
    let post = run("fastcgi_read_timeout", &prefix, Mode::NoProbe);
    post.assert_top("read-timeout", Some(&pass), &["upstream timed out"]);
}

#[test]
fn pool_saturated() {
    let _serial = serial();
    let prefix = Prefix::new();
    let www = docroot(
        &prefix.join("www"),
        &[("slow.php", "<?php sleep(4); echo \"late\\n\";\n")],
    );
    let sock = prefix.join("php-fpm.sock");
    // `dynamic`: its once-a-second maintenance wants a spare child, may not fork one, and logs
    // `server reached pm.max_children setting (1)` (`static` never logs it).
    let mut fpm = PhpFpm::start_with(
        prefix.path(),
        &[(
            unix_pool("www", &sock),
            PoolOptions {
                pm: Pm::Dynamic {
                    start: 1,
                    min_spare: 1,
                    max_spare: 1,
                },
                max_children: 1,
                extra: Vec::new(),
            },
        )],
    );
    let port = free_port();
    let pass = format!("unix:{}", sock.display());
    let body = fastcgi_server(port, &pass, &www, SCRIPT, "2s");
    let mut nginx = Nginx::start(&prefix, &nginx::config(&prefix, &body), port);

    let started = Instant::now();
    let hits: Vec<_> = (0..3)
        .map(|_| std::thread::spawn(move || http::get(port, "/slow.php", Duration::from_secs(8))))
        .collect();
    let statuses: Vec<u16> = hits
        .into_iter()
        .map(|h| h.join().expect("request thread"))
        .collect();
    assert_eq!(statuses, [504, 504, 504], "three requests, one child");
    let line = error_line(
        &prefix,
        &[
            "upstream timed out (110: Connection timed out) while reading response header from upstream",
            &format!("upstream: \"fastcgi://{pass}"),
        ],
    );
    eprintln!("[pool_saturated] nginx: {line}");
    assert!(
        fpm.wait_log(
            "server reached pm.max_children setting (1)",
            Duration::from_secs(3)
        ),
        "FPM did not log max_children:\n{}",
        fpm.log()
    );
    let fpm_line = fpm
        .log()
        .lines()
        .find(|l| l.contains("max_children"))
        .unwrap_or_default()
        .to_string();
    eprintln!("[pool_saturated] php-fpm: {fpm_line}");

    // The child works through the queued requests (4 s each) for ~12 s: still saturated now.
    assert!(
        started.elapsed() < Duration::from_secs(6),
        "too slow to diagnose while the pool is still busy"
    );
    let live = run("pool_saturated", &prefix, Mode::Live);
    live.assert_top("pool-saturated", Some(&pass), &["max_children"]);

    nginx.stop();
    fpm.stop_fast();
    let post = run("pool_saturated", &prefix, Mode::NoProbe);
    post.assert_top("read-timeout", Some(&pass), &["upstream timed out"]);
}

#[test]
fn script_not_found() {
    let _serial = serial();
    let prefix = Prefix::new();
    let www = docroot(&prefix.join("www"), &[("hello.php", HELLO)]);
    let sock = prefix.join("php-fpm.sock");
    let mut fpm = PhpFpm::start(prefix.path(), &[unix_pool("www", &sock)]);
    let port = free_port();
    let pass = format!("unix:{}", sock.display());
    // SCRIPT_FILENAME points into a directory that has no scripts (a wrong root).
    let wrong = format!("{}/wrong-root$fastcgi_script_name", prefix.display());
    let body = fastcgi_server(port, &pass, &www, &wrong, "2s");
    let mut nginx = Nginx::start(&prefix, &nginx::config(&prefix, &body), port);

    assert_eq!(http::get(port, "/hello.php", Duration::from_secs(5)), 404);
    let line = error_line(
        &prefix,
        &["FastCGI sent in stderr: \"Primary script unknown\""],
    );
    eprintln!("[script_not_found] nginx: {line}");

    let live = run("script_not_found", &prefix, Mode::Live);
    live.assert_top("script-not-found", Some(&pass), &["Primary script unknown"]);

    nginx.stop();
    fpm.stop();
    let post = run("script_not_found", &prefix, Mode::NoProbe);
    post.assert_top("script-not-found", Some(&pass), &["Primary script unknown"]);
}

#[test]
fn php_fatal_error() {
    let _serial = serial();
    let prefix = Prefix::new();
    let www = docroot(
        &prefix.join("www"),
        // Nothing echoed before the error: the headers are not sent yet, so PHP answers 500.
        &[("fatal.php", "<?php\nmedic_undefined_function();\n")],
    );
    let fpm_port = free_port();
    // PHP runs with -n (no php.ini): errors go to the FastCGI stderr stream only when logged
    // and not displayed.
    let mut fpm = PhpFpm::start_with(
        prefix.path(),
        &[(
            Pool {
                name: "www".into(),
                listen: format!("127.0.0.1:{fpm_port}"),
                mode: None,
            },
            PoolOptions {
                extra: vec![
                    "php_admin_flag[log_errors] = on".into(),
                    "php_admin_flag[display_errors] = off".into(),
                ],
                ..PoolOptions::default()
            },
        )],
    );
    let port = free_port();
    let pass = format!("127.0.0.1:{fpm_port}");
    let body = fastcgi_server(port, &pass, &www, SCRIPT, "2s");
    let mut nginx = Nginx::start(&prefix, &nginx::config(&prefix, &body), port);

    assert_eq!(http::get(port, "/fatal.php", Duration::from_secs(5)), 500);
    let line = error_line(
        &prefix,
        &[
            "FastCGI sent in stderr: \"PHP message: PHP Fatal error:",
            "medic_undefined_function",
        ],
    );
    eprintln!("[php_fatal_error] nginx: {line}");

    let live = run("php_fatal_error", &prefix, Mode::Live);
    live.assert_top("app-error", Some(&pass), &["PHP Fatal error"]);

    nginx.stop();
    fpm.stop();
    let post = run("php_fatal_error", &prefix, Mode::NoProbe);
    post.assert_top("app-error", Some(&pass), &["PHP Fatal error"]);
}

#[test]
fn backend_crash_fpm_child_killed() {
    let _serial = serial();
    let prefix = Prefix::new();
    // The busy child says who it is: the script writes its PID where the test can read it.
    let run_dir = prefix.join("run");
    fs::create_dir(&run_dir).expect("create run/");
    fs::set_permissions(&run_dir, fs::Permissions::from_mode(0o777)).expect("chmod run/");
    let pid_file = run_dir.join("busy.pid");
    let script = format!(
        "<?php\nfile_put_contents('{}', (string) getmypid());\nsleep(5);\necho \"late\\n\";\n",
        pid_file.display()
    );
    let www = docroot(&prefix.join("www"), &[("slow.php", &script)]);
    let sock = prefix.join("php-fpm.sock");
    let mut fpm = PhpFpm::start_with(
        prefix.path(),
        &[(
            unix_pool("www", &sock),
            PoolOptions {
                pm: Pm::Static,
                max_children: 2,
                extra: Vec::new(),
            },
        )],
    );
    let master = fpm.pid().expect("our FPM master");
    let port = free_port();
    let pass = format!("unix:{}", sock.display());
    let body = fastcgi_server(port, &pass, &www, SCRIPT, "8s");
    let mut nginx = Nginx::start(&prefix, &nginx::config(&prefix, &body), port);

    let hit = std::thread::spawn(move || http::get(port, "/slow.php", Duration::from_secs(10)));
    assert!(
        wait_until(Duration::from_secs(5), || fs::read_to_string(&pid_file)
            .is_ok_and(|t| !t.trim().is_empty())),
        "the script did not start:\n{}",
        fpm.log()
    );
    let busy: u32 = fs::read_to_string(&pid_file)
        .unwrap()
        .trim()
        .parse()
        .expect("a PID in busy.pid");
    let children = fpm.children();
    assert!(
        children.contains(&busy),
        "PID {busy} is not a child of our FPM master {master} ({children:?})"
    );
    // Our own master's child, by PID.
    let killed = Command::new("kill")
        .args(["-KILL", &busy.to_string()])
        .status()
        .expect("run kill");
    assert!(killed.success(), "kill -KILL {busy} failed");
    assert_eq!(hit.join().expect("request thread"), 502);

    // A reset, not a clean EOF: PHP reads the FastCGI params of a GET but never its empty
    // FCGI_STDIN record, so the child dies with unread bytes and the kernel resets the
    // connection (a clean close would be `upstream prematurely closed FastCGI stdout`,
    // class `premature-close`).
    let errlog = fs::read_to_string(prefix.error_log()).unwrap_or_default();
    assert!(
        !errlog.contains("upstream prematurely closed FastCGI stdout"),
        "nginx saw a clean close, not a reset:\n{errlog}"
    );
    let (class, needle) = (
        "upstream-reset",
        "recv() failed (104: Connection reset by peer)",
    );
    let line = error_line(
        &prefix,
        &[
            &format!("{needle} while reading response header from upstream"),
            &format!("fastcgi://{pass}"),
        ],
    );
    eprintln!("[backend_crash_fpm_child_killed] nginx ({class}): {line}");
    let signal = format!("child {busy} exited on signal 9 (SIGKILL)");
    assert!(
        fpm.wait_log(&signal, Duration::from_secs(3)),
        "FPM did not log {signal:?}:\n{}",
        fpm.log()
    );
    eprintln!(
        "[backend_crash_fpm_child_killed] php-fpm: {}",
        fpm.log()
            .lines()
            .find(|l| l.contains(&signal))
            .unwrap_or_default()
    );

    let live = run("backend_crash_fpm_child_killed", &prefix, Mode::Live);
    let top = live.assert_top("backend-crash", Some(&pass), &[]);
    evidence_has_any(top, &["signal 9", "SIGKILL"]);

    nginx.stop();
    fpm.stop();
    let post = run("backend_crash_fpm_child_killed", &prefix, Mode::NoProbe);
    post.assert_top(class, Some(&pass), &[needle]);
}

#[test]
fn healthy_fastcgi_control() {
    let _serial = serial();
    let prefix = Prefix::new();
    let www = docroot(&prefix.join("www"), &[("hello.php", HELLO)]);
    let sock = prefix.join("php-fpm.sock");
    let mut fpm = PhpFpm::start_with(
        prefix.path(),
        &[(
            unix_pool("www", &sock),
            PoolOptions {
                pm: Pm::Static,
                max_children: 2,
                extra: Vec::new(),
            },
        )],
    );
    let port = free_port();
    let pass = format!("unix:{}", sock.display());
    let body = fastcgi_server(port, &pass, &www, SCRIPT, "2s");
    let mut nginx = Nginx::start(&prefix, &nginx::config(&prefix, &body), port);

    for _ in 0..3 {
        assert_eq!(http::get(port, "/hello.php", Duration::from_secs(5)), 200);
    }
    let access = fs::read_to_string(prefix.access_log()).unwrap_or_default();
    let line = access
        .lines()
        .find(|l| l.contains("/hello.php") && l.contains(" 200 "))
        .unwrap_or_else(|| panic!("no 200 for /hello.php in the access log:\n{access}"))
        .to_string();
    eprintln!("[healthy_fastcgi_control] nginx access: {line}");
    let errors = fs::read_to_string(prefix.error_log()).unwrap_or_default();
    assert!(
        !errors.contains("[error]") && !errors.contains("[crit]"),
        "a healthy setup logged errors:\n{errors}"
    );

    let live = run("healthy_fastcgi_control", &prefix, Mode::Live);
    live.assert_no_errors();

    nginx.stop();
    fpm.stop();
    let post = run("healthy_fastcgi_control", &prefix, Mode::NoProbe);
    post.assert_no_errors();
}

/// `fpm-client-disallowed`: a TCP pool whose `listen.allowed_clients` does not hold nginx's
/// address. FPM accepts and resets the connection (nginx: `recv() failed (104: Connection reset
/// by peer) while reading response header`); nginx answers 502.
#[test]
fn fpm_client_disallowed() {
    let _serial = serial();
    let prefix = Prefix::new();
    let www = docroot(&prefix.join("www"), &[("hello.php", HELLO)]);
    let fpm_port = free_port();
    let listen = format!("127.0.0.1:{fpm_port}");
    let mut fpm = PhpFpm::start_with(
        prefix.path(),
        &[(
            Pool {
                name: "www".into(),
                listen: listen.clone(),
                mode: None,
            },
            PoolOptions {
                extra: vec!["listen.allowed_clients = 127.0.0.2".into()],
                ..PoolOptions::default()
            },
        )],
    );
    let port = free_port();
    let body = fastcgi_server(port, &listen, &www, SCRIPT, "2s");
    let mut nginx = Nginx::start(&prefix, &nginx::config(&prefix, &body), port);
    let status = http::get(port, "/hello.php", Duration::from_secs(5));
    assert_eq!(status, 502);
    let line = error_line(&prefix, &[&format!("upstream: \"fastcgi://{listen}")]);
    eprintln!("[fpm_client_disallowed] nginx: {line}");
    // FPM 8.2 writes `Connection disallowed: ...` from the child (fastcgi.c `fcgi_log`), which
    // its master log does not show with the default `catch_workers_output = no`: measured, the
    // master log holds only its start lines. The pool file is the evidence.
    assert!(
        !fpm.log().contains("Connection disallowed"),
        "{}",
        fpm.log()
    );

    let live = run("fpm_client_disallowed", &prefix, Mode::Live);
    live.assert_top(
        "fpm-client-disallowed",
        Some(&listen),
        &["listen.allowed_clients = 127.0.0.2"],
    );

    nginx.stop();
    fpm.stop_fast();
    // Post-mortem the log alone cannot tell FPM's drop from any other early close.
    let post = run("fpm_client_disallowed", &prefix, Mode::NoProbe);
    let top = post.top();
    assert!(
        matches!(
            top["id"].as_str(),
            Some("premature-close" | "upstream-reset")
        ),
        "{top:#}"
    );
}
