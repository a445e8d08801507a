//! `nginx-medic diagnose` on proxy (HTTP over TCP) failures staged for real: a real nginx on
//! loopback in its own prefix, upstream stubs (`medic_e2e::stubs`) or a separate application
//! process (`medic-upstream`, `src/bin/upstream.rs`) where the probes must find who listens.
//!
//! Each scenario
//! 1. starts the upstream side and nginx;
//! 2. sends real requests and checks nginx's own error-log / access-log lines (the staging is
//!    proven before the diagnosis is judged);
//! 3. runs `diagnose` live (probes on) while the broken state holds and checks the top finding;
//! 4. stops nginx, runs `diagnose --no-probe` (files only) and checks the top finding.
//!
//! Both diagnoses are always checked; a scenario fails at the end with every failed check.
//!
//! Build the binary first: `cargo build -p nginx-medic && cargo test -p medic-e2e --test
//! diagnose_proxy`.

use std::fs;
use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::panic::{catch_unwind, resume_unwind, AssertUnwindSafe};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use medic_e2e::diagnose::{diagnose, serial, Diagnosis, Mode};
use medic_e2e::stubs::{Behavior, TcpStub};
use medic_e2e::{free_port, http, nginx, wait_until, Nginx, Prefix};
use serde_json::Value;

const TIMEOUT: Duration = Duration::from_secs(10);
const ON_CONNECT: &str = "while connecting to upstream";
const ON_READ: &str = "while reading response header from upstream";
const REFUSED: &str = "connect() failed (111: Connection refused) while connecting to upstream";

// ---------------------------------------------------------------------------------------------
// Staging helpers
// ---------------------------------------------------------------------------------------------

/// One `server {}` on 127.0.0.1:`port` with `location / { LOCATION }`, plus `http_extra` before
/// it (upstream blocks, zones). Short timeouts: every failure answers within 1-2 s.
fn proxy_body(port: u16, http_extra: &str, location: &str) -> String {
    format!(
        "{http_extra}
    server {{
        listen 127.0.0.1:{port};
        server_name app.test;
        proxy_connect_timeout 1s;
        proxy_send_timeout 2s;
        proxy_read_timeout 2s;

        location / {{
            {location}
        }}
    }}"
    )
}

/// Writes the config, checks it with the real `nginx -t`, starts nginx.
fn start_nginx(prefix: &Prefix, port: u16, http_extra: &str, location: &str) -> Nginx {
    let conf = nginx::config(prefix, &proxy_body(port, http_extra, location));
    let t = nginx::test_config(prefix, &conf);
    assert!(t.ok, "nginx -t refuses the scenario config:\n{}", t.stderr);
    Nginx::start(prefix, &conf, port)
}

/// The error-log lines that contain every one of `needles`; at least `min` of them, or a panic
/// with the whole log.
fn logged(prefix: &Prefix, needles: &[&str], min: usize) -> Vec<String> {
    let (lines, text) = prefix.error_lines_with(needles);
    assert!(
        lines.len() >= min,
        "nginx's error.log has {} line(s) with {needles:?}, the staging expects at least {min}:\n{text}",
        lines.len()
    );
    eprintln!("nginx error.log: {}", lines[0]);
    lines
}

/// The access-log lines (`log_format medic`) that contain every one of `needles`.
fn accessed(prefix: &Prefix, needles: &[&str]) -> Vec<String> {
    fs::read_to_string(prefix.access_log())
        .unwrap_or_default()
        .lines()
        .filter(|l| needles.iter().all(|n| l.contains(n)))
        .map(str::to_string)
        .collect()
}

/// The error-log lines of level `[error]` or worse (none for a healthy or relaying nginx).
fn error_level_lines(prefix: &Prefix) -> Vec<String> {
    fs::read_to_string(prefix.error_log())
        .unwrap_or_default()
        .lines()
        .filter(|l| {
            ["[error]", "[crit]", "[alert]", "[emerg]"]
                .iter()
                .any(|lv| l.contains(lv))
        })
        .map(str::to_string)
        .collect()
}

/// Sends `GET /` and returns whatever bytes nginx answers until it closes (no HTTP parsing: an
/// HTTP/0.9 answer has no status line).
fn raw_get(port: u16) -> Vec<u8> {
    let mut s = TcpStream::connect(("127.0.0.1", port))
        .unwrap_or_else(|e| panic!("connect to nginx on 127.0.0.1:{port}: {e}"));
    s.set_read_timeout(Some(TIMEOUT)).expect("set_read_timeout");
    let req = format!(
        "GET / HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUser-Agent: {}\r\nConnection: close\r\n\r\n",
        http::USER_AGENT
    );
    s.write_all(req.as_bytes()).expect("send GET /");
    let mut resp = Vec::new();
    s.read_to_end(&mut resp).expect("read nginx's answer");
    resp
}

/// Sends `GET /` and gives up after `patience` without reading an answer, as an impatient
/// client (or a load balancer with a short timeout) does: nginx logs 499.
fn impatient_get(port: u16, patience: Duration) {
    let mut s = TcpStream::connect(("127.0.0.1", port))
        .unwrap_or_else(|e| panic!("connect to nginx on 127.0.0.1:{port}: {e}"));
    s.set_read_timeout(Some(patience))
        .expect("set_read_timeout");
    let req = format!(
        "GET / HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUser-Agent: {}\r\nConnection: close\r\n\r\n",
        http::USER_AGENT
    );
    s.write_all(req.as_bytes()).expect("send GET /");
    let mut buf = [0u8; 512];
    match s.read(&mut buf) {
        Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
        other => panic!("the client should have waited in vain, but read returned {other:?}"),
    }
    // Dropping the socket closes it: nginx sees the client go away.
}

/// `medic-upstream`, the application server in its own process (built by cargo with this test).
fn upstream_bin() -> PathBuf {
    let p = PathBuf::from(env!("CARGO_BIN_EXE_medic-upstream"));
    assert!(
        p.is_file(),
        "{} not found: run `cargo build -p medic-e2e --bins` (cargo test builds it)",
        p.display()
    );
    p
}

/// A running `medic-upstream --listen ADDR... --status N`, our child, killed by PID on drop.
struct App {
    child: Option<Child>,
    listen: Vec<SocketAddr>,
}

impl App {
    fn start(listen: &[SocketAddr], status: u16) -> App {
        let bin = upstream_bin();
        let mut cmd = Command::new(&bin);
        for a in listen {
            cmd.arg("--listen").arg(a.to_string());
        }
        cmd.arg("--status").arg(status.to_string());
        let child = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("spawn {}: {e}", bin.display()));
        let mut app = App {
            child: Some(child),
            listen: listen.to_vec(),
        };
        let mut exited = None;
        let up = wait_until(Duration::from_secs(5), || {
            if let Some(st) = app.child.as_mut().and_then(|c| c.try_wait().ok().flatten()) {
                exited = Some(st);
                return true;
            }
            app.listen
                .iter()
                .all(|a| TcpStream::connect_timeout(a, Duration::from_millis(200)).is_ok())
        });
        if let Some(st) = exited {
            let mut err = String::new();
            if let Some(mut c) = app.child.take() {
                if let Some(mut e) = c.stderr.take() {
                    let _ = e.read_to_string(&mut err);
                }
            }
            panic!("medic-upstream {listen:?} exited at start ({st}): {err}");
        }
        assert!(up, "medic-upstream did not listen on {listen:?} within 5 s");
        app
    }

    fn pid(&self) -> u32 {
        self.child.as_ref().map(Child::id).expect("a running app")
    }

    /// SIGKILL to our child, by PID, and reap it: the backend crashes.
    fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

impl Drop for App {
    fn drop(&mut self) {
        self.kill();
    }
}

fn addr(s: &str) -> SocketAddr {
    s.parse()
        .unwrap_or_else(|e| panic!("socket address {s}: {e}"))
}

// ---------------------------------------------------------------------------------------------
// Checking the diagnosis
// ---------------------------------------------------------------------------------------------

/// One line about the top finding, for the test output (and the report).
fn summary(label: &str, d: &Diagnosis) {
    let top = d.findings().first();
    match top {
        Some(t) => eprintln!(
            "{label}: top id={} upstream={} evidence[0]={}",
            t["id"], t["upstream"], t["evidence"][0]["text"]
        ),
        None => eprintln!("{label}: no findings"),
    }
    let ids: Vec<String> = d
        .findings()
        .iter()
        .map(|f| format!("{}({})", f["id"].as_str().unwrap_or("?"), f["severity"]))
        .collect();
    eprintln!("{label}: all findings: {}", ids.join(", "));
}

/// Runs every check, remembers which failed, and fails the scenario at the end with all of
/// them: a wrong live diagnosis does not hide the post-mortem one.
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

/// Live diagnosis; checks the top finding.
fn live(checks: &mut Checks, prefix: &Prefix, id: &str, upstream: Option<&str>, ev: &[&str]) {
    let d = diagnose(prefix, Mode::Live, &[]);
    summary(&format!("{} live", checks.scenario), &d);
    checks.check("live", || {
        d.assert_top(id, upstream, ev);
    });
}

/// Post-mortem (`--no-probe`) diagnosis; checks the top finding.
fn no_probe(checks: &mut Checks, prefix: &Prefix, id: &str, upstream: Option<&str>, ev: &[&str]) {
    let d = diagnose(prefix, Mode::NoProbe, &[]);
    summary(&format!("{} no-probe", checks.scenario), &d);
    checks.check("no-probe", || {
        d.assert_top(id, upstream, ev);
    });
}

/// An evidence item of the finding with `kind`, whose text contains one of `needles` (any one
/// when `needles` is empty).
fn has_evidence(finding: &Value, kind: &str, needles: &[&str]) -> bool {
    finding["evidence"]
        .as_array()
        .map(|items| {
            items.iter().any(|e| {
                let text = e["text"].as_str().unwrap_or("");
                e["kind"] == kind
                    && (needles.is_empty() || needles.iter().any(|n| text.contains(n)))
            })
        })
        .unwrap_or(false)
}

// ---------------------------------------------------------------------------------------------
// Connect failures
// ---------------------------------------------------------------------------------------------

/// Nothing listens on the target: refused; the probe finds no listener of that service at all.
#[test]
fn refused_nothing_listening() {
    let _serial = serial();
    let mut checks = Checks::new("refused_nothing_listening");
    let prefix = Prefix::new();
    let target = format!("127.0.0.1:{}", free_port());
    let port = free_port();
    let mut server = start_nginx(&prefix, port, "", &format!("proxy_pass http://{target};"));
    server.get_n("/", 3, 502);
    logged(
        &prefix,
        &[REFUSED, &format!("upstream: \"http://{target}/\"")],
        3,
    );

    live(
        &mut checks,
        &prefix,
        "backend-down",
        Some(&target),
        &["Connection refused"],
    );
    server.stop();
    no_probe(
        &mut checks,
        &prefix,
        "connect-refused",
        Some(&target),
        &["Connection refused"],
    );
    checks.finish();
}

/// nginx targets port A; the application (its own process) listens on B, the only candidate.
#[test]
fn wrong_port() {
    let _serial = serial();
    let mut checks = Checks::new("wrong_port");
    let prefix = Prefix::new();
    let a = format!("127.0.0.1:{}", free_port());
    let b = format!("127.0.0.1:{}", free_port());
    assert_ne!(a, b);
    let app = App::start(&[addr(&b)], 200);
    let port = free_port();
    let mut server = start_nginx(&prefix, port, "", &format!("proxy_pass http://{a};"));
    server.get_n("/", 3, 502);
    logged(
        &prefix,
        &[REFUSED, &format!("upstream: \"http://{a}/\"")],
        3,
    );

    // On a busy host (the suite's: unrelated python3 listeners) nothing ties the app on `b` to
    // the target: the cause stays `backend-down`, and the app is listed among the candidates.
    // A lone candidate makes `wrong-port` (crates/medic-core/src/rules/cause/tests_backend.rs).
    live(&mut checks, &prefix, "backend-down", Some(&a), &[&b]);
    server.stop();
    drop(app);
    no_probe(
        &mut checks,
        &prefix,
        "connect-refused",
        Some(&a),
        &["Connection refused"],
    );
    checks.finish();
}

/// The application listens on `bind_ip`:P only; nginx connects to 127.0.0.1:P.
fn bind_mismatch(scenario: &'static str, bind_ip: &str) {
    let _serial = serial();
    let mut checks = Checks::new(scenario);
    let prefix = Prefix::new();
    let p = free_port();
    let target = format!("127.0.0.1:{p}");
    let bound = format!("{bind_ip}:{p}");
    let app = App::start(&[addr(&bound)], 200);
    let port = free_port();
    let mut server = start_nginx(&prefix, port, "", &format!("proxy_pass http://{target};"));
    server.get_n("/", 3, 502);
    logged(
        &prefix,
        &[REFUSED, &format!("upstream: \"http://{target}/\"")],
        3,
    );

    live(
        &mut checks,
        &prefix,
        "bind-mismatch",
        Some(&target),
        &[&bound],
    );
    server.stop();
    drop(app);
    no_probe(
        &mut checks,
        &prefix,
        "connect-refused",
        Some(&target),
        &["Connection refused"],
    );
    checks.finish();
}

/// The application listens on [::1]:P only; nginx connects to 127.0.0.1:P.
#[test]
fn bind_mismatch_ipv6_only() {
    bind_mismatch("bind_mismatch_ipv6_only", "[::1]");
}

/// The application listens on 127.0.0.2:P; nginx connects to 127.0.0.1:P.
#[test]
fn bind_mismatch_other_loopback() {
    bind_mismatch("bind_mismatch_other_loopback", "127.0.0.2");
}

/// A listener whose accept queue is full and that never accepts.
///
/// Linux drops a SYN to a listener whose accept queue is full (`tcp_conn_request`:
/// `sk_acceptq_is_full` -> drop, counted as `ListenOverflows`; `tcp_abort_on_overflow` is 0 by
/// default, so no RST). With `listen(fd, 0)` the queue holds one connection: one completed
/// connection from the test fills it, and every later SYN (nginx's, the probe's) goes
/// unanswered, as behind a firewall that drops, all on loopback.
struct FullBacklog {
    listener: socket2::Socket,
    _fillers: Vec<socket2::Socket>,
}

impl FullBacklog {
    fn start() -> FullBacklog {
        use socket2::{Domain, Socket, Type};
        let listener = Socket::new(Domain::IPV4, Type::STREAM, None).expect("socket");
        listener
            .bind(&addr("127.0.0.1:0").into())
            .expect("bind 127.0.0.1:0");
        listener.listen(0).expect("listen(0)");
        let local = listener
            .local_addr()
            .expect("local_addr")
            .as_socket()
            .expect("an inet address");
        let mut fillers = Vec::new();
        for _ in 0..2 {
            let s = Socket::new(Domain::IPV4, Type::STREAM, None).expect("socket");
            s.set_nonblocking(true).expect("non-blocking");
            // EINPROGRESS is the expected answer of a non-blocking connect.
            let _ = s.connect(&local.into());
            fillers.push(s);
        }
        // The first filler completes the handshake and sits in the accept queue; prove that a
        // new SYN now goes unanswered.
        std::thread::sleep(Duration::from_millis(100));
        let t0 = Instant::now();
        let probe = TcpStream::connect_timeout(&local, Duration::from_millis(500));
        assert!(
            probe.is_err() && t0.elapsed() >= Duration::from_millis(450),
            "the kernel still completes connections to a full accept queue ({probe:?} after {:?}); \
             check /proc/sys/net/ipv4/tcp_abort_on_overflow (must be 0)",
            t0.elapsed()
        );
        FullBacklog {
            listener,
            _fillers: fillers,
        }
    }

    fn addr(&self) -> String {
        self.listener
            .local_addr()
            .expect("local_addr")
            .as_socket()
            .expect("an inet address")
            .to_string()
    }
}

/// SYNs go unanswered (full accept queue): nginx gives up after `proxy_connect_timeout 1s`.
#[test]
fn connect_timeout() {
    let _serial = serial();
    let mut checks = Checks::new("connect_timeout");
    let prefix = Prefix::new();
    let backlog = FullBacklog::start();
    let target = backlog.addr();
    let port = free_port();
    let mut server = start_nginx(&prefix, port, "", &format!("proxy_pass http://{target};"));
    server.get_n("/", 2, 504);
    logged(
        &prefix,
        &[
            &format!("upstream timed out (110: Connection timed out) {ON_CONNECT}"),
            &format!("upstream: \"http://{target}/\""),
        ],
        2,
    );

    live(
        &mut checks,
        &prefix,
        "connect-timeout",
        Some(&target),
        &["timed out"],
    );
    server.stop();
    drop(backlog);
    no_probe(
        &mut checks,
        &prefix,
        "connect-timeout",
        Some(&target),
        &["timed out"],
    );
    checks.finish();
}

// ---------------------------------------------------------------------------------------------
// The upstream answers badly
// ---------------------------------------------------------------------------------------------

/// A stub scenario: `behavior` behind `location`, `n` requests answered `status`, nginx's line
/// contains `says`; then live and post-mortem tops.
struct StubCase {
    scenario: &'static str,
    behavior: Behavior,
    /// Extra directives in `location /` (after `proxy_pass`).
    location_extra: &'static str,
    requests: usize,
    status: u16,
    says: String,
    live: &'static str,
    no_probe: &'static str,
}

fn stub_scenario(c: &StubCase) -> (Prefix, TcpStub, Checks, Option<Value>) {
    let mut checks = Checks::new(c.scenario);
    let prefix = Prefix::new();
    let stub = TcpStub::start(c.behavior);
    let target = stub.addr();
    let port = free_port();
    let mut server = start_nginx(
        &prefix,
        port,
        "",
        &format!(
            "proxy_pass http://{target};\n            {}",
            c.location_extra
        ),
    );
    server.get_n("/", c.requests, c.status);
    logged(
        &prefix,
        &[&c.says, &format!("upstream: \"http://{target}/\"")],
        c.requests,
    );

    let d = diagnose(&prefix, Mode::Live, &[]);
    summary(&format!("{} live", c.scenario), &d);
    let mut live_top = None;
    checks.check("live", || {
        live_top = Some(d.assert_top(c.live, Some(&target), &[]).clone());
    });
    server.stop();
    no_probe(&mut checks, &prefix, c.no_probe, Some(&target), &[]);
    (prefix, stub, checks, live_top)
}

/// The upstream reads the request and resets the connection (RST).
#[test]
fn reset() {
    let _serial = serial();
    let (_p, _s, checks, _) = stub_scenario(&StubCase {
        scenario: "reset",
        behavior: Behavior::Reset,
        location_extra: "",
        requests: 3,
        status: 502,
        says: format!("recv() failed (104: Connection reset by peer) {ON_READ}"),
        live: "upstream-reset",
        no_probe: "upstream-reset",
    });
    checks.finish();
}

/// The upstream reads the request and closes (FIN) without a byte.
#[test]
fn premature_close() {
    let _serial = serial();
    let (_p, _s, checks, _) = stub_scenario(&StubCase {
        scenario: "premature_close",
        behavior: Behavior::Close,
        location_extra: "",
        requests: 3,
        status: 502,
        says: format!("upstream prematurely closed connection {ON_READ}"),
        live: "premature-close",
        no_probe: "premature-close",
    });
    checks.finish();
}

/// An 8000-byte header line against `proxy_buffer_size 4k`; the probe measures the header.
#[test]
fn too_big_header() {
    let _serial = serial();
    let (_p, _s, mut checks, live_top) = stub_scenario(&StubCase {
        scenario: "too_big_header",
        behavior: Behavior::BigHeader(8000),
        location_extra: "proxy_buffer_size 4k;",
        requests: 3,
        status: 502,
        says: format!("upstream sent too big header {ON_READ}"),
        live: "header-too-big",
        no_probe: "header-too-big",
    });
    if let Some(top) = live_top {
        checks.check("live probe evidence", || {
            assert!(
                has_evidence(&top, "probe", &[]),
                "header-too-big live has no evidence of kind \"probe\" (the measured header size):\n{top:#}"
            );
        });
    }
    checks.finish();
}

/// The upstream answers `HELLO\r\n`, not HTTP. nginx 1.22 logs `upstream sent no valid HTTP/1.0
/// header` and then (no cache) relays the bytes as an HTTP/0.9 answer: the client gets no
/// status line, the access log says `009` with `$upstream_status` 200.
#[test]
fn invalid_response() {
    let _serial = serial();
    let mut checks = Checks::new("invalid_response");
    let prefix = Prefix::new();
    let stub = TcpStub::start(Behavior::Garbage);
    let target = stub.addr();
    let port = free_port();
    let mut server = start_nginx(&prefix, port, "", &format!("proxy_pass http://{target};"));
    for i in 0..3 {
        let resp = raw_get(port);
        if i == 0 {
            eprintln!("client got: {:?}", String::from_utf8_lossy(&resp));
        }
        assert!(
            !resp.starts_with(b"HTTP/1.1 200"),
            "nginx relayed garbage as a normal 200: {:?}\n{}",
            String::from_utf8_lossy(&resp),
            server.diagnostics()
        );
    }
    logged(
        &prefix,
        &[
            &format!("upstream sent no valid HTTP/1.0 header {ON_READ}"),
            &format!("upstream: \"http://{target}/\""),
        ],
        3,
    );
    if let Some(l) = accessed(&prefix, &[http::USER_AGENT]).first() {
        eprintln!("nginx access.log: {l}");
    }

    live(
        &mut checks,
        &prefix,
        "invalid-response",
        Some(&target),
        &["no valid HTTP/1.0 header"],
    );
    server.stop();
    no_probe(
        &mut checks,
        &prefix,
        "invalid-response",
        Some(&target),
        &["no valid HTTP/1.0 header"],
    );
    drop(stub);
    checks.finish();
}

/// `max_fails=1`: after the first refusals nginx stops trying the group for `fail_timeout`.
///
/// The group has two servers, both refused: nginx 1.22's round robin never marks the peer of a
/// one-server group as failed (`ngx_http_upstream_get_round_robin_peer`, `peers->single`), so
/// `upstream backend { server A max_fails=1; }` alone never says `no live upstreams` (checked:
/// it logs `connect() failed (111...)` for every request).
#[test]
fn no_live_upstreams() {
    let _serial = serial();
    let mut checks = Checks::new("no_live_upstreams");
    let prefix = Prefix::new();
    let a = format!("127.0.0.1:{}", free_port());
    let b = format!("127.0.0.1:{}", free_port());
    assert_ne!(a, b);
    let port = free_port();
    let upstream = format!(
        "    upstream backend {{
        server {a} max_fails=1 fail_timeout=30s;
        server {b} max_fails=1 fail_timeout=30s;
    }}
"
    );
    let mut server = start_nginx(&prefix, port, &upstream, "proxy_pass http://backend;");
    // One request: nginx tries both servers, both refuse, both are marked failed.
    server.get_n("/", 1, 502);
    logged(
        &prefix,
        &[REFUSED, &format!("upstream: \"http://{a}/\"")],
        1,
    );
    logged(
        &prefix,
        &[REFUSED, &format!("upstream: \"http://{b}/\"")],
        1,
    );
    server.get_n("/", 3, 502);
    logged(
        &prefix,
        &[
            &format!("no live upstreams {ON_CONNECT}"),
            "upstream: \"http://backend/\"",
        ],
        3,
    );

    live(&mut checks, &prefix, "backend-down", Some("backend"), &[]);
    server.stop();
    no_probe(
        &mut checks,
        &prefix,
        "no-live-upstreams",
        Some("backend"),
        &["no live upstreams"],
    );
    checks.finish();
}

/// A 5xx that is the backend's own (its `$upstream_status` is that 5xx, with a header time):
/// nginx relays it and logs nothing in error.log. The finding is `backend-5xx`, with the
/// clients' impact, and says that nginx only passed it on.
fn backend_returns(status: u16) {
    let _serial = serial();
    let mut checks = Checks::new("backend_returns_5xx");
    let prefix = Prefix::new();
    let stub = TcpStub::start(Behavior::Status(status));
    let target = stub.addr();
    let port = free_port();
    let mut server = start_nginx(&prefix, port, "", &format!("proxy_pass http://{target};"));
    server.get_n("/", 3, status);
    let errors = error_level_lines(&prefix);
    assert!(
        errors.is_empty(),
        "nginx logged errors for a relayed {status}: {errors:#?}"
    );
    let lines = accessed(
        &prefix,
        &[
            &format!(" {status} "),
            &format!("\"{}\" {target} {status} ", http::USER_AGENT),
        ],
    );
    assert_eq!(
        lines.len(),
        3,
        "access.log should have 3 lines with status {status} and $upstream_status {status}:\n{}",
        fs::read_to_string(prefix.access_log()).unwrap_or_default()
    );
    eprintln!("nginx access.log: {}", lines[0]);

    let code = status.to_string();
    let check = |d: &Diagnosis| {
        let top = d.assert_top("backend-5xx", Some(&target), &[&code]);
        assert_eq!(top["impact"]["client_errors"], 3, "{top:#}");
        assert_eq!(top["impact"]["statuses"][&code], 3, "{top:#}");
        let summary = top["fix"]["summary"].as_str().unwrap_or_default();
        assert!(summary.contains("nginx only relays it"), "{summary}");
    };
    let d = diagnose(&prefix, Mode::Live, &[]);
    checks.check("live", || check(&d));
    server.stop();
    let d = diagnose(&prefix, Mode::NoProbe, &[]);
    checks.check("no-probe", || check(&d));
    drop(stub);
    checks.finish();
}

#[test]
fn backend_returns_503() {
    backend_returns(503);
}

/// The messenger case of the issue: a 502 no nginx failure explains.
#[test]
fn backend_returns_502() {
    backend_returns(502);
}

// ---------------------------------------------------------------------------------------------
// nginx's own limits
// ---------------------------------------------------------------------------------------------

/// `limit_req` at 1 request per minute, no burst: the first request passes, the next four get 503.
#[test]
fn limit_req_503() {
    let _serial = serial();
    let mut checks = Checks::new("limit_req_503");
    let prefix = Prefix::new();
    let (stub, mut server) = limit_req_proxy(&prefix, "");
    server.get_n("/", 1, 200);
    server.get_n("/", 4, 503);
    logged(
        &prefix,
        &["limiting requests, excess: ", "by zone \"perip\""],
        4,
    );

    live(&mut checks, &prefix, "rate-limited", None, &["perip"]);
    server.stop();
    no_probe(&mut checks, &prefix, "rate-limited", None, &["perip"]);
    drop(stub);
    checks.finish();
}

/// `limit_conn addr 1`: one request hangs on the upstream; three more at the same time get 503.
#[test]
fn limit_conn_503() {
    let _serial = serial();
    let mut checks = Checks::new("limit_conn_503");
    let prefix = Prefix::new();
    let stub = TcpStub::start(Behavior::Hang);
    let port = free_port();
    let mut server = start_nginx(
        &prefix,
        port,
        "    limit_conn_zone $binary_remote_addr zone=addr:1m;\n",
        &format!(
            "limit_conn addr 1;\n            proxy_read_timeout 2s;\n            proxy_pass http://{};",
            stub.addr()
        ),
    );
    // The hanging request holds the zone's one connection until proxy_read_timeout (504).
    let hanging = std::thread::spawn(move || http::get(port, "/", TIMEOUT));
    std::thread::sleep(Duration::from_millis(300));
    let limited: Vec<_> = (0..3)
        .map(|_| std::thread::spawn(move || http::get(port, "/", TIMEOUT)))
        .collect();
    for t in limited {
        let got = t.join().expect("a limited request");
        assert_eq!(
            got,
            503,
            "limit_conn should answer 503\n{}",
            server.diagnostics()
        );
    }
    let got = hanging.join().expect("the hanging request");
    assert_eq!(got, 504, "the hanging request\n{}", server.diagnostics());
    logged(&prefix, &["limiting connections by zone \"addr\""], 3);

    live(&mut checks, &prefix, "conn-limited", None, &["addr"]);
    server.stop();
    no_probe(&mut checks, &prefix, "conn-limited", None, &["addr"]);
    drop(stub);
    checks.finish();
}

// ---------------------------------------------------------------------------------------------
// Time
// ---------------------------------------------------------------------------------------------

/// The upstream never answers; `proxy_read_timeout 1s`. Live, the probe measures the wait.
#[test]
fn read_timeout_proxy() {
    let _serial = serial();
    let mut checks = Checks::new("read_timeout_proxy");
    let prefix = Prefix::new();
    let stub = TcpStub::start(Behavior::Hang);
    let target = stub.addr();
    let port = free_port();
    let mut server = start_nginx(
        &prefix,
        port,
        "",
        &format!("proxy_read_timeout 1s;\n            proxy_pass http://{target};"),
    );
    server.get_n("/", 3, 504);
    logged(
        &prefix,
        &[
            &format!("upstream timed out (110: Connection timed out) {ON_READ}"),
            &format!("upstream: \"http://{target}/\""),
        ],
        3,
    );

    live(
        &mut checks,
        &prefix,
        "slow-backend",
        Some(&target),
        &["timed out"],
    );
    server.stop();
    no_probe(
        &mut checks,
        &prefix,
        "read-timeout",
        Some(&target),
        &["timed out"],
    );
    drop(stub);
    checks.finish();
}

/// The application crashes (SIGKILL), nginx gets refusals, the application is started again and
/// listens: the refusals were the gap of a restart.
#[test]
fn backend_crashed_and_restarted() {
    let _serial = serial();
    let mut checks = Checks::new("backend_crashed_and_restarted");
    let prefix = Prefix::new();
    let target = format!("127.0.0.1:{}", free_port());
    let mut app = App::start(&[addr(&target)], 200);
    let port = free_port();
    let mut server = start_nginx(&prefix, port, "", &format!("proxy_pass http://{target};"));
    server.get_n("/", 1, 200);
    app.kill();
    server.get_n("/", 3, 502);
    logged(
        &prefix,
        &[REFUSED, &format!("upstream: \"http://{target}/\"")],
        3,
    );
    std::thread::sleep(Duration::from_millis(1200));
    let app = App::start(&[addr(&target)], 200);
    let pid = app.pid().to_string();

    let d = diagnose(&prefix, Mode::Live, &[]);
    summary("backend_crashed_and_restarted live", &d);
    checks.check("live", || {
        let top = d.assert_top("backend-starting", Some(&target), &[]);
        assert!(
            has_evidence(top, "probe", &["medic-upstream", &pid]),
            "backend-starting has no probe evidence naming the restarted process (medic-upstream, pid {pid}):\n{top:#}"
        );
    });
    server.stop();
    no_probe(
        &mut checks,
        &prefix,
        "connect-refused",
        Some(&target),
        &["Connection refused"],
    );
    drop(app);
    checks.finish();
}

/// Clients give up after 1 s while the upstream hangs: 499.
///
/// `proxy_read_timeout 4s` (rather than 10 s): long enough that nginx is still waiting when the
/// clients leave, short enough for the live probe, which waits up to the read timeout for the
/// hanging upstream's first byte, to keep the scenario under ~10 s.
#[test]
fn client_closed_499() {
    let _serial = serial();
    let mut checks = Checks::new("client_closed_499");
    let prefix = Prefix::new();
    let stub = TcpStub::start(Behavior::Hang);
    let target = stub.addr();
    let port = free_port();
    let mut server = start_nginx(
        &prefix,
        port,
        "",
        &format!("proxy_read_timeout 4s;\n            proxy_pass http://{target};"),
    );
    let clients: Vec<_> = (0..3)
        .map(|_| std::thread::spawn(move || impatient_get(port, Duration::from_secs(1))))
        .collect();
    for c in clients {
        c.join().expect("an impatient client");
    }
    let needle = "\" 499 ";
    let ok = wait_until(Duration::from_secs(5), || {
        accessed(&prefix, &[needle]).len() >= 3
    });
    assert!(
        ok,
        "access.log should have 3 lines with status 499:\n{}\n{}",
        fs::read_to_string(prefix.access_log()).unwrap_or_default(),
        server.diagnostics()
    );
    eprintln!("nginx access.log: {}", accessed(&prefix, &[needle])[0]);

    let d = diagnose(&prefix, Mode::Live, &[]);
    summary("client_closed_499 live", &d);
    checks.check("live", || {
        let f = d
            .findings()
            .iter()
            .find(|f| f["id"] == "client-closed")
            .unwrap_or_else(|| panic!("no client-closed finding live:\n{:#}", d.json));
        assert!(
            f["evidence"].as_array().is_some_and(|e| !e.is_empty()),
            "client-closed has no evidence:\n{f:#}"
        );
    });
    server.stop();
    no_probe(&mut checks, &prefix, "client-closed", None, &[]);
    drop(stub);
    checks.finish();
}

// ---------------------------------------------------------------------------------------------
// Control
// ---------------------------------------------------------------------------------------------

/// A healthy upstream: a few 200s, no error finding live or post-mortem.
#[test]
fn healthy_proxy_control() {
    let _serial = serial();
    let mut checks = Checks::new("healthy_proxy_control");
    let prefix = Prefix::new();
    let stub = TcpStub::start(Behavior::Ok);
    let port = free_port();
    let mut server = start_nginx(
        &prefix,
        port,
        "",
        &format!("proxy_pass http://{};", stub.addr()),
    );
    server.get_n("/", 4, 200);
    let errors = error_level_lines(&prefix);
    assert!(
        errors.is_empty(),
        "a healthy nginx logged errors: {errors:#?}"
    );

    let d = diagnose(&prefix, Mode::Live, &[]);
    summary("healthy_proxy_control live", &d);
    checks.check("live", || d.assert_no_errors());
    server.stop();
    let d = diagnose(&prefix, Mode::NoProbe, &[]);
    summary("healthy_proxy_control no-probe", &d);
    checks.check("no-probe", || d.assert_no_errors());
    drop(stub);
    checks.finish();
}

/// One of two servers of a group is down: nginx is refused by it, retries the other, and every
/// client gets 200. The failure is real (the error log says so), but no client was hurt: a
/// warning with `impact.retried_ok`, never an error, live and post-mortem.
#[test]
fn retried_failure_is_a_warning() {
    let _serial = serial();
    let mut checks = Checks::new("retried_failure_is_a_warning");
    let prefix = Prefix::new();
    let down = format!("127.0.0.1:{}", free_port());
    let up = TcpStub::start(Behavior::Ok);
    let port = free_port();
    let upstream = format!(
        "    upstream backend {{
        server {down};
        server {};
    }}
",
        up.addr()
    );
    let mut server = start_nginx(&prefix, port, &upstream, "proxy_pass http://backend;");
    server.get_n("/", 4, 200);
    logged(
        &prefix,
        &[REFUSED, &format!("upstream: \"http://{down}/")],
        1,
    );
    let retried = accessed(&prefix, &[&format!("{down}, {}", up.addr())]);
    assert!(!retried.is_empty(), "no retried request in the access log");

    let check = |d: &Diagnosis| {
        d.assert_no_errors();
        let f = d
            .findings()
            .iter()
            .find(|f| f["upstream"] == down.as_str())
            .unwrap_or_else(|| panic!("no finding for {down}:\n{:#}", d.json));
        assert_eq!(f["severity"], "warning", "{f:#}");
        assert_eq!(f["impact"]["client_errors"], 0, "{f:#}");
        assert!(
            f["impact"]["retried_ok"].as_u64().unwrap_or(0) >= 1,
            "{f:#}"
        );
        assert_eq!(f["impact"]["retried_ok"], f["impact"]["requests"], "{f:#}");
    };
    let d = diagnose(&prefix, Mode::Live, &[]);
    summary("retried_failure_is_a_warning live", &d);
    checks.check("live", || check(&d));
    server.stop();
    let d = diagnose(&prefix, Mode::NoProbe, &[]);
    summary("retried_failure_is_a_warning no-probe", &d);
    checks.check("no-probe", || check(&d));
    checks.finish();
}

/// Refusals from 127.0.0.1:A, then the config is changed to 127.0.0.1:B and nginx reloaded:
/// the failures of A are history. The finding says `resolved` (the config changed after the
/// last failure and no longer names A), keeps its evidence, and no ongoing error remains.
#[test]
fn removed_upstream_is_resolved() {
    let _serial = serial();
    let mut checks = Checks::new("removed_upstream_is_resolved");
    let prefix = Prefix::new();
    let old = format!("127.0.0.1:{}", free_port());
    let new = TcpStub::start(Behavior::Ok);
    let port = free_port();
    let server = start_nginx(&prefix, port, "", &format!("proxy_pass http://{old};"));
    server.get_n("/", 3, 502);
    logged(
        &prefix,
        &[REFUSED, &format!("upstream: \"http://{old}/")],
        3,
    );
    // A later second than the last failure: file times are compared at whole seconds.
    std::thread::sleep(Duration::from_millis(1100));
    server.reload(
        &prefix,
        &nginx::config(
            &prefix,
            &proxy_body(port, "", &format!("proxy_pass http://{};", new.addr())),
        ),
    );
    server.get_n("/", 3, 200);

    let check = |d: &Diagnosis| {
        let f = d
            .findings()
            .iter()
            .find(|f| f["upstream"] == old.as_str())
            .unwrap_or_else(|| panic!("no finding for {old}:\n{:#}", d.json));
        assert_eq!(f["state"], "resolved", "{f:#}");
        assert!(f["resolved_at"].is_string(), "{f:#}");
        assert!(
            !d.findings()
                .iter()
                .any(|f| f["severity"] == "error" && f["state"] == "ongoing"),
            "{:#}",
            d.json
        );
    };
    let d = diagnose(&prefix, Mode::Live, &[]);
    summary("removed_upstream_is_resolved live", &d);
    checks.check("live", || check(&d));
    let d = diagnose(&prefix, Mode::NoProbe, &[]);
    summary("removed_upstream_is_resolved no-probe", &d);
    checks.check("no-probe", || check(&d));
    drop(server);
    checks.finish();
}

/// nginx with `limit_req zone=perip` (1 request a minute, no burst) in front of a 200 stub,
/// plus `extra` in the location.
fn limit_req_proxy(prefix: &Prefix, extra: &str) -> (TcpStub, Nginx) {
    let stub = TcpStub::start(Behavior::Ok);
    let server = start_nginx(
        prefix,
        free_port(),
        "    limit_req_zone $binary_remote_addr zone=perip:1m rate=1r/m;\n",
        &format!(
            "limit_req zone=perip;\n            {extra}\n            proxy_pass http://{};",
            stub.addr()
        ),
    );
    (stub, server)
}

/// `limit_req_dry_run on`: nginx logs `limiting requests, dry run, ...` for what it would have
/// rejected, and lets every request through (200). No client got a 503: no error finding.
#[test]
fn limit_req_dry_run_is_no_rejection() {
    let _serial = serial();
    let mut checks = Checks::new("limit_req_dry_run_is_no_rejection");
    let prefix = Prefix::new();
    let (stub, mut server) = limit_req_proxy(&prefix, "limit_req_dry_run on;");
    server.get_n("/", 5, 200);
    logged(&prefix, &["limiting requests, dry run, excess: "], 4);
    let check = |d: &Diagnosis| {
        d.assert_no_errors();
        assert!(
            !d.findings().iter().any(|f| f["id"] == "rate-limited"),
            "{:#}",
            d.json
        );
    };
    let d = diagnose(&prefix, Mode::Live, &[]);
    summary("limit_req_dry_run live", &d);
    checks.check("live", || check(&d));
    server.stop();
    let d = diagnose(&prefix, Mode::NoProbe, &[]);
    summary("limit_req_dry_run no-probe", &d);
    checks.check("no-probe", || check(&d));
    drop(stub);
    checks.finish();
}
