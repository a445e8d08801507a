//! `nginx-medic diagnose` on four more failures staged for real against a real nginx on
//! loopback: a unix socket whose accept queue is full, too few `worker_connections`, an upstream
//! certificate that expires in a few days, and a backend that never reads the request body.
//!
//! Each scenario proves its staging with nginx's own error-log (and access-log) lines first,
//! then runs `diagnose` live (probes on, the broken state still in place) and post-mortem
//! (`--no-probe`, nginx stopped) and checks both; a scenario fails at the end with every failed
//! check, so a wrong live diagnosis does not hide the post-mortem one.
//!
//! Build the binary first: `cargo build -p nginx-medic && cargo test -p medic-e2e --test
//! diagnose_more`.

use std::fs;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::os::unix::fs::PermissionsExt;
use std::panic::{catch_unwind, resume_unwind, AssertUnwindSafe};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use medic_e2e::diagnose::{diagnose, serial, Diagnosis, Mode};
use medic_e2e::stubs::{Behavior, TcpStub};
use medic_e2e::tls::{TestCa, TlsServer};
use medic_e2e::{free_port, http, nginx, wait_until, Nginx, Prefix};
use serde_json::Value;

const T: Duration = Duration::from_secs(10);

// ---------------------------------------------------------------------------------------------
// Staging helpers
// ---------------------------------------------------------------------------------------------

/// `server { listen 127.0.0.1:PORT; location / { LINES } }`, after `http_extra`.
fn server_body(port: u16, http_extra: &str, lines: &[String]) -> String {
    let mut s = format!(
        "{http_extra}\n    server {{\n        listen 127.0.0.1:{port};\n        location / {{\n"
    );
    for l in lines {
        s.push_str("            ");
        s.push_str(l);
        s.push('\n');
    }
    s.push_str("        }\n    }\n");
    s
}

/// Writes `conf`, checks it with the real `nginx -t`, starts nginx on `port`.
fn start(prefix: &Prefix, conf: &str, port: u16) -> Nginx {
    let t = nginx::test_config(prefix, conf);
    assert!(t.ok, "nginx -t refuses the scenario config:\n{}", t.stderr);
    Nginx::start(prefix, conf, port)
}

/// The error-log lines that contain every one of `needles`: at least `min` of them, or a panic
/// with the whole log. Prints the first.
fn error_lines(prefix: &Prefix, needles: &[&str], min: usize) -> Vec<String> {
    let text = fs::read_to_string(prefix.error_log()).unwrap_or_default();
    let lines: Vec<String> = text
        .lines()
        .filter(|l| needles.iter().all(|n| l.contains(n)))
        .map(String::from)
        .collect();
    assert!(
        lines.len() >= min,
        "want at least {min} error-log lines containing {needles:?}, found {}:\n{text}",
        lines.len()
    );
    eprintln!("nginx error.log: {}", lines[0]);
    lines
}

/// The access log has at least `min` requests answered `status` (with `upstream` as
/// `$upstream_addr`, when given), within 5 s: nginx logs a request when it frees it, which after
/// a lingering close (a client that sent a body) comes after the client saw the answer.
fn access_lines(prefix: &Prefix, status: u16, upstream: Option<&str>, min: usize) {
    let count = |text: &str| {
        text.lines()
            .filter(|l| l.contains(&format!("\" {status} ")))
            .filter(|l| upstream.is_none_or(|u| l.contains(&format!(" {u} "))))
            .count()
    };
    let read = || fs::read_to_string(prefix.access_log()).unwrap_or_default();
    wait_until(Duration::from_secs(5), || count(&read()) >= min);
    let text = read();
    let n = count(&text);
    assert!(
        n >= min,
        "want at least {min} access-log lines with status {status} and upstream {upstream:?}, found {n}:\n{text}"
    );
}

/// `n` GETs through nginx, one after the other; each must be answered `status`.
fn requests(ngx: &Nginx, n: usize, status: u16) {
    for i in 0..n {
        let got = http::get(ngx.port(), &format!("/r{i}"), T);
        assert_eq!(got, status, "GET /r{i}:\n{}", ngx.diagnostics());
    }
}

// ---------------------------------------------------------------------------------------------
// Checking the diagnosis
// ---------------------------------------------------------------------------------------------

/// One line about the top finding and the list of all, for the test output (and the report).
fn show(label: &str, d: &Diagnosis) {
    let findings = d.json["findings"].as_array().cloned().unwrap_or_default();
    match findings.first() {
        Some(top) => eprintln!(
            "{label}: top finding {} upstream {} evidence[0] {}",
            top["id"], top["upstream"], top["evidence"][0]["text"]
        ),
        None => eprintln!("{label}: no findings\n{}", d.run),
    }
    let all: Vec<String> = findings
        .iter()
        .map(|f| {
            format!(
                "{}({}, {}, count {})",
                f["id"].as_str().unwrap_or("?"),
                f["severity"].as_str().unwrap_or("?"),
                f["upstream"],
                f["count"]
            )
        })
        .collect();
    eprintln!("{label}: all findings: {}", all.join(", "));
}

/// Runs every check, remembers which failed, and fails the scenario at the end with all of them.
struct Checks {
    scenario: &'static str,
    failed: Vec<(String, Box<dyn std::any::Any + Send>)>,
}

impl Checks {
    fn new(scenario: &'static str) -> Checks {
        Checks {
            scenario,
            failed: Vec::new(),
        }
    }

    fn check(&mut self, what: &str, f: impl FnOnce()) {
        if let Err(e) = catch_unwind(AssertUnwindSafe(f)) {
            eprintln!("{}: check {what:?} FAILED", self.scenario);
            self.failed.push((what.to_string(), e));
        } else {
            eprintln!("{}: check {what:?} passed", self.scenario);
        }
    }

    /// `diagnose` in `mode`, shown, then `f` on it as the check `what`.
    fn diagnosis(&mut self, prefix: &Prefix, mode: Mode, what: &str, f: impl FnOnce(&Diagnosis)) {
        let d = diagnose(prefix, mode, &[]);
        show(&format!("{} {what}", self.scenario), &d);
        self.check(what, || f(&d));
    }

    fn finish(mut self) {
        match self.failed.len() {
            0 => {}
            1 => {
                let (_, e) = self.failed.remove(0);
                resume_unwind(e);
            }
            _ => {
                let names: Vec<&str> = self.failed.iter().map(|(w, _)| w.as_str()).collect();
                panic!(
                    "{}: these checks failed (messages above): {names:?}",
                    self.scenario
                );
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// 1. socket-backlog: a unix socket whose accept queue is full
// ---------------------------------------------------------------------------------------------

/// A unix stream socket that listens with a backlog of 0 and never accepts, its queue filled by
/// connections of the test. Linux refuses a non-blocking `connect(2)` to a unix socket whose
/// queue is longer than the backlog with EAGAIN (`unix_recvq_full`), which nginx logs as
/// `connect() to unix:PATH failed (11: Resource temporarily unavailable)`.
struct FullUnixSocket {
    path: PathBuf,
    _listener: socket2::Socket,
    _fillers: Vec<socket2::Socket>,
}

impl FullUnixSocket {
    fn start(path: &Path) -> FullUnixSocket {
        use socket2::{Domain, SockAddr, Socket, Type};
        let addr = SockAddr::unix(path).expect("a unix socket address");
        let listener = Socket::new(Domain::UNIX, Type::STREAM, None).expect("unix socket");
        listener
            .bind(&addr)
            .unwrap_or_else(|e| panic!("bind {}: {e}", path.display()));
        listener.listen(0).expect("listen(0)");
        // The workers run as `nobody`: connect(2) needs write permission on the socket file.
        fs::set_permissions(path, fs::Permissions::from_mode(0o777))
            .unwrap_or_else(|e| panic!("chmod 0777 {}: {e}", path.display()));
        let mut fillers = Vec::new();
        for _ in 0..3 {
            let s = Socket::new(Domain::UNIX, Type::STREAM, None).expect("unix socket");
            s.set_nonblocking(true).expect("non-blocking");
            // The first ones fill the queue; the later ones get EAGAIN, which is fine.
            let _ = s.connect(&addr);
            fillers.push(s);
        }
        // Prove the queue is full: a new non-blocking connect gets EAGAIN.
        let probe = Socket::new(Domain::UNIX, Type::STREAM, None).expect("unix socket");
        probe.set_nonblocking(true).expect("non-blocking");
        let err = probe
            .connect(&addr)
            .expect_err("a connect to the full unix socket succeeded: the queue is not full");
        assert_eq!(
            err.raw_os_error(),
            Some(11),
            "a connect to the full unix socket should fail with EAGAIN, got {err}"
        );
        FullUnixSocket {
            path: path.to_path_buf(),
            _listener: listener,
            _fillers: fillers,
        }
    }

    /// `unix:/path`, as nginx names the peer.
    fn addr(&self) -> String {
        format!("unix:{}", self.path.display())
    }
}

impl Drop for FullUnixSocket {
    fn drop(&mut self) {
        let _ = fs::remove_file(&self.path);
    }
}

/// `proxy_pass http://unix:PATH:;` to a socket whose listen queue is full: every connect fails
/// at once with EAGAIN, a 502.
#[test]
fn socket_backlog() {
    let _serial = serial();
    let mut checks = Checks::new("socket_backlog");
    let prefix = Prefix::new();
    let sock = FullUnixSocket::start(&prefix.join("app.sock"));
    let upstream = sock.addr();
    let port = free_port();
    let lines = [
        format!("proxy_pass http://{upstream}:;"),
        "proxy_connect_timeout 1s;".into(),
        "proxy_read_timeout 2s;".into(),
    ];
    let conf = nginx::config(&prefix, &server_body(port, "", &lines));
    let mut ngx = start(&prefix, &conf, port);
    requests(&ngx, 3, 502);
    error_lines(
        &prefix,
        &[
            "[error]",
            &format!("connect() to {upstream} failed (11: Resource temporarily unavailable) while connecting to upstream"),
        ],
        3,
    );
    access_lines(&prefix, 502, Some(&upstream), 3);

    checks.diagnosis(&prefix, Mode::Live, "live", |d| {
        d.assert_top(
            "socket-backlog",
            Some(&upstream),
            &["Resource temporarily unavailable"],
        );
    });
    ngx.stop();
    checks.diagnosis(&prefix, Mode::NoProbe, "no-probe", |d| {
        d.assert_top(
            "socket-backlog",
            Some(&upstream),
            &["Resource temporarily unavailable"],
        );
    });
    drop(sock);
    checks.finish();
}

// ---------------------------------------------------------------------------------------------
// 2. worker-limits: worker_connections are not enough
// ---------------------------------------------------------------------------------------------

/// `worker_connections 5;`: the listening socket and the master's channel take one slot each,
/// a request that hangs on the upstream takes two more (client and upstream), and the next
/// client takes the last one, so nginx has no connection left to reach the upstream with:
/// `5 worker_connections are not enough` (alert), a 500 for that request.
///
/// The hanging request ends after `proxy_read_timeout 5s` with one read-timeout entry; the
/// worker_connections alerts outnumber it. (The live HTTP probe of the hanging stub waits the
/// effective `proxy_read_timeout` plus a margin, so a longer one makes the live diagnosis that
/// much slower: with 60 s it exceeds the harness's 60 s limit.)
#[test]
fn worker_connections_not_enough() {
    let _serial = serial();
    let mut checks = Checks::new("worker_connections_not_enough");
    let prefix = Prefix::new();
    let stub = TcpStub::start(Behavior::Hang);
    let upstream = stub.addr();
    let port = free_port();
    let lines = [
        format!("proxy_pass http://{upstream};"),
        "proxy_connect_timeout 1s;".into(),
        // Long next to the rest of the scenario: the hanging request holds its two connections
        // while the other requests are made and during most of the live diagnosis.
        "proxy_read_timeout 5s;".into(),
    ];
    let conf = nginx::config(&prefix, &server_body(port, "", &lines));
    let default_events = "worker_connections 256;";
    assert!(
        conf.contains(default_events),
        "medic_e2e::nginx::config no longer sets `{default_events}`: update this scenario"
    );
    let conf = conf.replace(default_events, "worker_connections 5;");
    let mut ngx = start(&prefix, &conf, port);

    // The request that hangs: client + upstream connection, held for `proxy_read_timeout`.
    let mut hanging = TcpStream::connect(("127.0.0.1", port)).expect("connect to nginx");
    let req = format!(
        "GET /hang HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUser-Agent: {}\r\nConnection: close\r\n\r\n",
        http::USER_AGENT
    );
    hanging.write_all(req.as_bytes()).expect("send GET /hang");
    // Wait until nginx holds the upstream connection (the stub has the request head): the
    // stub's peer count is not visible, so poll the upstream port's established connections.
    let held = wait_until(Duration::from_secs(5), || established_to(stub.port()) >= 1);
    assert!(
        held,
        "nginx did not connect to the hanging upstream:\n{}",
        ngx.diagnostics()
    );

    // Every further request: accepted into the last slot, no slot left for the upstream.
    const N: usize = 5;
    requests(&ngx, N, 500);
    let alerts = error_lines(
        &prefix,
        &["[alert]", "5 worker_connections are not enough"],
        N,
    );
    assert!(
        alerts
            .iter()
            .any(|l| l.contains(&format!("upstream: \"http://{upstream}/"))),
        "no worker_connections alert names the upstream:\n{alerts:#?}"
    );
    access_lines(&prefix, 500, None, N);

    checks.diagnosis(&prefix, Mode::Live, "live", |d| {
        d.assert_top(
            "worker-limits",
            None,
            &["worker_connections are not enough"],
        );
    });
    ngx.stop();
    drop(hanging);
    checks.diagnosis(&prefix, Mode::NoProbe, "no-probe", |d| {
        d.assert_top(
            "worker-limits",
            None,
            &["worker_connections are not enough"],
        );
    });
    drop(stub);
    checks.finish();
}

/// Established TCP connections whose remote port is `port`, from `/proc/net/tcp` (state 01).
fn established_to(port: u16) -> usize {
    let text = fs::read_to_string("/proc/net/tcp").expect("read /proc/net/tcp");
    let want = format!(":{port:04X}");
    text.lines()
        .skip(1)
        .filter(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            f.len() > 3 && f[2].ends_with(&want) && f[3] == "01"
        })
        .count()
}

// ---------------------------------------------------------------------------------------------
// 3. cert-expires-soon: a healthy TLS upstream whose certificate expires in 5 days
// ---------------------------------------------------------------------------------------------

/// `(year, month, day)` of the day `days` after 1970-01-01 (proleptic Gregorian; H. Hinnant's
/// `civil_from_days`).
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

/// `YYYYMMDDHHMMSSZ` (UTC) of `secs` after the epoch, as `openssl ca -startdate/-enddate` takes.
fn asn1_time(secs: i64) -> String {
    let (y, m, d) = civil_from_days(secs.div_euclid(86_400));
    let s = secs.rem_euclid(86_400);
    format!(
        "{y:04}{m:02}{d:02}{:02}{:02}{:02}Z",
        s / 3600,
        s % 3600 / 60,
        s % 60
    )
}

#[test]
fn asn1_time_is_utc_civil_time() {
    assert_eq!(asn1_time(0), "19700101000000Z");
    assert_eq!(asn1_time(951_782_400), "20000229000000Z");
    assert_eq!(asn1_time(1_735_689_599), "20241231235959Z");
    assert_eq!(asn1_time(1_709_210_096), "20240229123456Z");
}

/// A CA-signed certificate for `upstream.test`, verified with name and SNI: every request is a
/// 200, but the certificate expires in 5 days. Live: the probe sees it (`cert-expires-soon`,
/// a warning); the files alone do not hold it, and nothing is an error either way.
#[test]
fn cert_expires_soon() {
    let _serial = serial();
    let mut checks = Checks::new("cert_expires_soon");
    let prefix = Prefix::new();
    let dir = prefix.join("tls");
    fs::create_dir_all(&dir).expect("create the tls directory");
    let ca = TestCa::create(&dir);
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("the clock is after 1970")
        .as_secs() as i64;
    let (start_at, end_at) = (asn1_time(now - 86_400), asn1_time(now + 5 * 86_400));
    let leaf = ca.sign("upstream", "upstream.test", &start_at, &end_at);
    let srv = TlsServer::start(&leaf, &prefix.join("s_server.log"));
    let upstream = srv.addr();
    let port = free_port();
    let lines = [
        format!("proxy_pass https://{upstream};"),
        "proxy_connect_timeout 2s;".into(),
        "proxy_read_timeout 2s;".into(),
        "proxy_ssl_verify on;".into(),
        format!("proxy_ssl_trusted_certificate {};", ca.cert.display()),
        "proxy_ssl_name upstream.test;".into(),
        "proxy_ssl_server_name on;".into(),
    ];
    let conf = nginx::config(&prefix, &server_body(port, "", &lines));
    let mut ngx = start(&prefix, &conf, port);
    requests(&ngx, 3, 200);
    access_lines(&prefix, 200, Some(&upstream), 3);
    let errlog = fs::read_to_string(prefix.error_log()).unwrap_or_default();
    assert!(
        !errlog.contains("[error]") && !errlog.contains("[crit]"),
        "a healthy TLS upstream made nginx log errors:\n{errlog}"
    );
    eprintln!("certificate valid {start_at} .. {end_at}");

    checks.diagnosis(&prefix, Mode::Live, "live", |d| {
        d.assert_no_errors();
        let soon: Vec<&Value> = d
            .findings()
            .iter()
            .filter(|f| f["id"] == "cert-expires-soon")
            .collect();
        assert!(
            soon.iter()
                .any(|f| f["severity"] == "warning" && f["upstream"] == upstream.as_str()),
            "no cert-expires-soon warning for {upstream}:\n{:#}",
            d.json
        );
    });
    ngx.stop();
    checks.diagnosis(&prefix, Mode::NoProbe, "no-probe", |d| {
        d.assert_no_errors();
    });
    drop(srv);
    checks.finish();
}

// ---------------------------------------------------------------------------------------------
// 4. send-timeout: the backend never reads the request body
// ---------------------------------------------------------------------------------------------

/// Body size of the POST: more than the loopback socket buffers of both ends can hold, so
/// nginx's send stalls.
const BODY: usize = 32 * 1024 * 1024;

/// POSTs `BODY` zero bytes to `path` and returns the response status.
fn post(port: u16, path: &str) -> u16 {
    let mut s = TcpStream::connect(("127.0.0.1", port))
        .unwrap_or_else(|e| panic!("connect to nginx on 127.0.0.1:{port}: {e}"));
    s.set_read_timeout(Some(T)).expect("set_read_timeout");
    s.set_write_timeout(Some(T)).expect("set_write_timeout");
    let head = format!(
        "POST {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUser-Agent: {}\r\nContent-Type: application/octet-stream\r\nContent-Length: {BODY}\r\nConnection: close\r\n\r\n",
        http::USER_AGENT
    );
    s.write_all(head.as_bytes()).expect("send the POST head");
    let chunk = vec![0u8; 1024 * 1024];
    for _ in 0..BODY / chunk.len() {
        s.write_all(&chunk).expect("send the POST body");
    }
    let mut resp = Vec::new();
    s.read_to_end(&mut resp)
        .unwrap_or_else(|e| panic!("read the answer to POST {path}: {e}"));
    let text = String::from_utf8_lossy(&resp[..resp.len().min(64)]).into_owned();
    text.split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or_else(|| panic!("POST {path}: not an HTTP response: {text:?}"))
}

/// The backend reads the request head and then nothing: nginx (request buffering on, the
/// default) has the whole body, sends it, the socket buffers fill, and `proxy_send_timeout 1s`
/// expires: a 504.
#[test]
fn send_timeout() {
    let _serial = serial();
    let mut checks = Checks::new("send_timeout");
    let prefix = Prefix::new();
    // `Hang` reads the request head only and keeps the connection open, unread.
    let stub = TcpStub::start(Behavior::Hang);
    let upstream = stub.addr();
    let port = free_port();
    let lines = [
        format!("proxy_pass http://{upstream};"),
        "proxy_request_buffering on;".into(),
        "client_max_body_size 64m;".into(),
        "proxy_connect_timeout 1s;".into(),
        "proxy_send_timeout 1s;".into(),
        "proxy_read_timeout 2s;".into(),
    ];
    let conf = nginx::config(&prefix, &server_body(port, "", &lines));
    let mut ngx = start(&prefix, &conf, port);
    for i in 0..2 {
        let got = post(port, &format!("/upload{i}"));
        assert_eq!(got, 504, "POST /upload{i}:\n{}", ngx.diagnostics());
    }
    error_lines(
        &prefix,
        &[
            "[error]",
            "upstream timed out (110: Connection timed out) while sending request to upstream",
            &format!("upstream: \"http://{upstream}/upload"),
        ],
        2,
    );
    access_lines(&prefix, 504, Some(&upstream), 2);

    // Live, the probe finds that the backend accepts connections but neither reads nor
    // answers within `proxy_read_timeout`: `slow-backend` (the class is `send-timeout`).
    checks.diagnosis(&prefix, Mode::Live, "live", |d| {
        d.assert_top(
            "slow-backend",
            Some(&upstream),
            &["while sending request to upstream"],
        );
    });
    ngx.stop();
    checks.diagnosis(&prefix, Mode::NoProbe, "no-probe", |d| {
        d.assert_top(
            "send-timeout",
            Some(&upstream),
            &["while sending request to upstream"],
        );
    });
    drop(stub);
    checks.finish();
}

/// A GET that gives up after `patience` (the client closes: nginx logs 499).
fn impatient_get(port: u16, path: &str, patience: Duration) {
    let mut s = TcpStream::connect(("127.0.0.1", port)).expect("connect to nginx");
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: app.test\r\nConnection: close\r\n\r\n"
    )
    .expect("send the request");
    s.set_read_timeout(Some(patience))
        .expect("set_read_timeout");
    let mut buf = [0u8; 64];
    let got = s.read(&mut buf);
    assert!(
        got.is_err(),
        "nginx answered a request to a hung backend within {patience:?}: {got:?}"
    );
}

/// A backend that hangs, behind nginx's default `proxy_read_timeout` (60 s): clients give up
/// first (499s, no error-log line yet). Live, the probe stops waiting after `--probe-wait-ms`
/// (the default is 10 s; 1.5 s here) instead of sitting out the minute, and reports the silence:
/// `slow-backend` with no log entry, then the `client-closed` 499s. Post-mortem, only the 499s.
#[test]
fn hung_backend_behind_the_default_timeout() {
    let _serial = serial();
    let mut checks = Checks::new("hung_backend_behind_the_default_timeout");
    let prefix = Prefix::new();
    let stub = TcpStub::start(Behavior::Hang);
    let upstream = stub.addr();
    let port = free_port();
    let conf = nginx::config(
        &prefix,
        &server_body(port, "", &[format!("proxy_pass http://{upstream};")]),
    );
    let mut ngx = start(&prefix, &conf, port);
    for i in 0..3 {
        impatient_get(port, &format!("/r{i}"), Duration::from_millis(500));
    }
    access_lines(&prefix, 499, Some(&upstream), 3);

    let d = medic_e2e::diagnose::diagnose(&prefix, Mode::Live, &["--probe-wait-ms", "1500"]);
    show("hung_backend live", &d);
    checks.check("live", || {
        let top = d.assert_top("slow-backend", Some(&upstream), &["stopped waiting"]);
        assert_eq!(
            top["count"], 0,
            "no read timeout is in the log yet: {top:#}"
        );
        assert!(
            d.findings().iter().any(|f| f["id"] == "client-closed"),
            "the 499s are a finding too:\n{:#}",
            d.json
        );
    });
    ngx.stop();
    checks.diagnosis(&prefix, Mode::NoProbe, "no-probe", |d| {
        d.assert_top("client-closed", Some(&upstream), &["499"]);
    });
    drop(stub);
    checks.finish();
}
