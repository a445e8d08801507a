//! `nginx-medic diagnose` on TLS, DNS and `nginx -t` failures staged against a real nginx:
//! upstreams are real `openssl s_server` processes (certificates made by the openssl binary), a
//! real nginx speaking plain HTTP, a stub name server on loopback, and nginx refusing to start.
//!
//! Each scenario proves its staging with nginx's own error-log line first, then runs `diagnose`
//! live (probes on, the broken state still in place) and post-mortem (`--no-probe`, nginx
//! stopped) and checks the top finding of each.
//!
//! Build the binary first: `cargo build -p nginx-medic && cargo test -p medic-e2e --test
//! diagnose_tls_dns`.

use std::ffi::OsStr;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use medic_e2e::diagnose::{diagnose, diagnose_wrapped, serial, Diagnosis, Mode};
use medic_e2e::dns::StubDns;
use medic_e2e::stubs::{Behavior, TcpStub};
use medic_e2e::tls::{SelfSigned, TestCa, TlsServer};
use medic_e2e::{free_port, http, is_root, nginx, wait_until, Nginx, Prefix};

const T: Duration = Duration::from_secs(10);
/// Failing requests per scenario.
const REQUESTS: usize = 3;
/// Valid from before the tests were written until long after.
const VALID: (&str, &str) = ("20240101000000Z", "20991231000000Z");
/// A leaf that expired long ago.
const EXPIRED: (&str, &str) = ("20200101000000Z", "20200201000000Z");

/// `server { listen 127.0.0.1:PORT; location / { short timeouts; LINES } }`.
fn proxy_server(port: u16, lines: &[String]) -> String {
    let mut s = format!(
        "    server {{\n        listen 127.0.0.1:{port};\n        location / {{\n            \
         proxy_connect_timeout 2s;\n            proxy_send_timeout 2s;\n            \
         proxy_read_timeout 2s;\n"
    );
    for l in lines {
        s.push_str("            ");
        s.push_str(l);
        s.push('\n');
    }
    s.push_str("        }\n    }\n");
    s
}

/// The `proxy_ssl_*` lines of a verifying proxy: `proxy_ssl_verify on`, the trust anchor, the
/// name, and SNI on or off.
fn tls_verify(trusted: &Path, sni: bool) -> Vec<String> {
    vec![
        "proxy_ssl_verify on;".into(),
        format!("proxy_ssl_trusted_certificate {};", trusted.display()),
        "proxy_ssl_name upstream.test;".into(),
        format!("proxy_ssl_server_name {};", if sni { "on" } else { "off" }),
    ]
}

/// Starts the scenario's nginx with one proxying server; returns it.
fn start_proxy(prefix: &Prefix, lines: &[String]) -> Nginx {
    start_proxy_with(prefix, "", lines)
}

/// As [`start_proxy`], with `http`-level lines before the server.
fn start_proxy_with(prefix: &Prefix, http_lines: &str, lines: &[String]) -> Nginx {
    let port = free_port();
    let body = format!("{http_lines}{}", proxy_server(port, lines));
    let conf = nginx::config(prefix, &body);
    Nginx::start(prefix, &conf, port)
}

/// A directory for certificates and keys inside the prefix.
fn tls_dir(prefix: &Prefix) -> PathBuf {
    let d = prefix.join("tls");
    fs::create_dir_all(&d).expect("create the tls directory");
    d
}

/// Sends `n` requests through nginx; each must be answered with `status`.
fn requests(ngx: &Nginx, n: usize, status: u16) {
    for i in 0..n {
        let got = http::get(ngx.port(), &format!("/r{i}"), T);
        assert_eq!(got, status, "GET /r{i}:\n{}", ngx.diagnostics());
    }
}

/// The error-log lines that contain every one of `needles`: at least `min` of them.
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

/// The access log has at least `min` requests with `status` (and `upstream` as
/// `$upstream_addr`, when given).
fn access_lines(prefix: &Prefix, status: u16, upstream: Option<&str>, min: usize) {
    let text = fs::read_to_string(prefix.access_log()).unwrap_or_default();
    let n = text
        .lines()
        .filter(|l| l.contains(&format!("\" {status} ")))
        .filter(|l| upstream.is_none_or(|u| l.contains(&format!(" {u} "))))
        .count();
    assert!(
        n >= min,
        "want at least {min} access-log lines with status {status} and upstream {upstream:?}, found {n}:\n{text}"
    );
}

/// Prints what a run's top finding was, for the test output.
fn show(label: &str, d: &Diagnosis) {
    match d.json["findings"].as_array().and_then(|f| f.first()) {
        Some(top) => eprintln!(
            "{label}: top finding {} upstream {} evidence[0] {}",
            top["id"], top["upstream"], top["evidence"][0]["text"]
        ),
        None => eprintln!("{label}: no findings\n{}", d.run),
    }
}

/// Runs `diagnose` live (now), then stops `ngx` and runs it post-mortem; returns both.
fn live_then_post_mortem(prefix: &Prefix, ngx: &mut Nginx, label: &str) -> (Diagnosis, Diagnosis) {
    let live = diagnose(prefix, Mode::Live, &[]);
    show(&format!("{label} live"), &live);
    ngx.stop();
    let post = diagnose(prefix, Mode::NoProbe, &[]);
    show(&format!("{label} no-probe"), &post);
    (live, post)
}

/// nginx trusts a different self-signed certificate than the one the upstream shows.
#[test]
fn tls_untrusted() {
    let _serial = serial();
    let prefix = Prefix::new();
    let dir = tls_dir(&prefix);
    let up = SelfSigned::create(&dir, "upstream", "upstream.test");
    let other = SelfSigned::create(&dir, "other", "other.test");
    let srv = TlsServer::start(&up, &prefix.join("s_server.log"));
    let mut pass = vec![format!("proxy_pass https://{};", srv.addr())];
    pass.extend(tls_verify(&other.cert, true));
    let mut ngx = start_proxy(&prefix, &pass);
    requests(&ngx, REQUESTS, 502);
    let upstream = srv.addr();
    error_lines(
        &prefix,
        &[
            "[error]",
            "upstream SSL certificate verify error: (18:self-signed certificate) while SSL handshaking to upstream",
            &format!("upstream: \"https://{upstream}/"),
        ],
        REQUESTS,
    );
    access_lines(&prefix, 502, Some(&upstream), REQUESTS);

    let (live, post) = live_then_post_mortem(&prefix, &mut ngx, "tls_untrusted");
    live.assert_top("tls-untrusted", Some(&upstream), &["self-signed"]);
    post.assert_top("tls-untrusted", Some(&upstream), &["self-signed"]);
}

/// The upstream's certificate (signed by the CA nginx trusts) expired in 2020.
#[test]
fn tls_expired() {
    let _serial = serial();
    let prefix = Prefix::new();
    let ca = TestCa::create(&tls_dir(&prefix));
    let leaf = ca.sign("expired", "upstream.test", EXPIRED.0, EXPIRED.1);
    let srv = TlsServer::start(&leaf, &prefix.join("s_server.log"));
    let mut pass = vec![format!("proxy_pass https://{};", srv.addr())];
    pass.extend(tls_verify(&ca.cert, true));
    let mut ngx = start_proxy(&prefix, &pass);
    requests(&ngx, REQUESTS, 502);
    let upstream = srv.addr();
    error_lines(
        &prefix,
        &[
            "[error]",
            "upstream SSL certificate verify error: (10:certificate has expired) while SSL handshaking to upstream",
            &format!("upstream: \"https://{upstream}/"),
        ],
        REQUESTS,
    );
    access_lines(&prefix, 502, Some(&upstream), REQUESTS);

    let (live, post) = live_then_post_mortem(&prefix, &mut ngx, "tls_expired");
    live.assert_top("tls-expired", Some(&upstream), &["expired"]);
    post.assert_top("tls-expired", Some(&upstream), &["expired"]);
}

/// The chain verifies, but the certificate is for `other.test` and nginx checks `upstream.test`.
#[test]
fn tls_name_mismatch() {
    let _serial = serial();
    let prefix = Prefix::new();
    let ca = TestCa::create(&tls_dir(&prefix));
    let leaf = ca.sign("other", "other.test", VALID.0, VALID.1);
    let srv = TlsServer::start(&leaf, &prefix.join("s_server.log"));
    let mut pass = vec![format!("proxy_pass https://{};", srv.addr())];
    pass.extend(tls_verify(&ca.cert, true));
    let mut ngx = start_proxy(&prefix, &pass);
    requests(&ngx, REQUESTS, 502);
    let upstream = srv.addr();
    error_lines(
        &prefix,
        &[
            "[error]",
            "upstream SSL certificate does not match \"upstream.test\" while SSL handshaking to upstream",
            &format!("upstream: \"https://{upstream}/"),
        ],
        REQUESTS,
    );
    access_lines(&prefix, 502, Some(&upstream), REQUESTS);

    let (live, post) = live_then_post_mortem(&prefix, &mut ngx, "tls_name_mismatch");
    live.assert_top("tls-name-mismatch", Some(&upstream), &["upstream.test"]);
    post.assert_top("tls-name-mismatch", Some(&upstream), &["upstream.test"]);
}

/// An SNI-only upstream: its certificate for `upstream.test` is served only to clients that
/// name it. Without SNI, the server has only a certificate on brainpoolP256r1, a curve nginx's
/// OpenSSL 3.0 does not offer, so the handshake fails (`handshake failure`, alert 40), as with
/// a CDN or shared host that has no default certificate. nginx has `proxy_ssl_server_name off`.
#[test]
fn tls_sni_required() {
    let _serial = serial();
    let prefix = Prefix::new();
    let dir = tls_dir(&prefix);
    let (srv, up) = TlsServer::sni_only(&dir, &prefix.join("s_server.log"));
    let mut pass = vec![format!("proxy_pass https://{};", srv.addr())];
    pass.extend(tls_verify(&up.cert, false));
    let mut ngx = start_proxy(&prefix, &pass);
    requests(&ngx, REQUESTS, 502);
    let upstream = srv.addr();
    let lines = error_lines(
        &prefix,
        &[
            "[error]",
            "SSL_do_handshake() failed (SSL: ",
            "while SSL handshaking to upstream",
            &format!("upstream: \"https://{upstream}/"),
        ],
        REQUESTS,
    );
    let post_id = if lines[0].contains("unrecognized name") {
        "tls-sni-required"
    } else {
        "tls-handshake"
    };

    let (live, post) = live_then_post_mortem(&prefix, &mut ngx, "tls_sni_required");
    live.assert_top("tls-sni-required", Some(&upstream), &[]);
    post.assert_top(post_id, Some(&upstream), &["SSL_do_handshake() failed"]);
}

/// The upstream speaks TLS 1.3 only; nginx is told `proxy_ssl_protocols TLSv1.2`.
#[test]
fn tls_protocol_mismatch() {
    let _serial = serial();
    let prefix = Prefix::new();
    let id = SelfSigned::create(&tls_dir(&prefix), "upstream", "upstream.test");
    let srv = TlsServer::start_with(&id, &["-tls1_3".as_ref()], &prefix.join("s_server.log"));
    let mut pass = vec![
        format!("proxy_pass https://{};", srv.addr()),
        "proxy_ssl_protocols TLSv1.2;".into(),
    ];
    pass.extend(tls_verify(&id.cert, true));
    let mut ngx = start_proxy(&prefix, &pass);
    requests(&ngx, REQUESTS, 502);
    let upstream = srv.addr();
    error_lines(
        &prefix,
        &[
            "[error]",
            "SSL_do_handshake() failed (SSL: ",
            "protocol version",
            "while SSL handshaking to upstream",
            &format!("upstream: \"https://{upstream}/"),
        ],
        REQUESTS,
    );
    access_lines(&prefix, 502, Some(&upstream), REQUESTS);

    let (live, post) = live_then_post_mortem(&prefix, &mut ngx, "tls_protocol_mismatch");
    live.assert_top("tls-protocol-mismatch", Some(&upstream), &[]);
    post.assert_top(
        "tls-protocol-mismatch",
        Some(&upstream),
        &["protocol version"],
    );
}

/// A second, real nginx answering plain HTTP on 127.0.0.1:PORT (its own prefix).
fn plain_http_backend(prefix: &Prefix) -> Nginx {
    let port = free_port();
    let conf = nginx::config(
        prefix,
        &format!(
            "    server {{\n        listen 127.0.0.1:{port};\n        return 200 \"plain backend\\n\";\n    }}\n"
        ),
    );
    Nginx::start(prefix, &conf, port)
}

/// `proxy_pass https://` to a port that speaks plain HTTP (another nginx): OpenSSL reads the
/// backend's `HTTP/1.1 400` answer to the ClientHello as a TLS record.
#[test]
fn https_to_plain_port() {
    let _serial = serial();
    let backend_prefix = Prefix::new();
    let mut backend = plain_http_backend(&backend_prefix);
    let upstream = format!("127.0.0.1:{}", backend.port());
    assert_eq!(http::get(backend.port(), "/", T), 200, "the plain backend");

    let prefix = Prefix::new();
    let mut ngx = start_proxy(&prefix, &[format!("proxy_pass https://{upstream};")]);
    requests(&ngx, REQUESTS, 502);
    error_lines(
        &prefix,
        &[
            "[error]",
            "SSL_do_handshake() failed (SSL: ",
            "wrong version number",
            "while SSL handshaking to upstream",
            &format!("upstream: \"https://{upstream}/"),
        ],
        REQUESTS,
    );
    access_lines(&prefix, 502, Some(&upstream), REQUESTS);

    let (live, post) = live_then_post_mortem(&prefix, &mut ngx, "https_to_plain_port");
    backend.stop();
    live.assert_top("scheme-mismatch", Some(&upstream), &[]);
    post.assert_top(
        "scheme-mismatch",
        Some(&upstream),
        &["wrong version number"],
    );
}

/// `proxy_pass http://` to a TLS port (`openssl s_server`): the server reads nginx's request
/// line as a TLS record.
#[test]
fn plain_to_tls_port() {
    let _serial = serial();
    let prefix = Prefix::new();
    let id = SelfSigned::create(&tls_dir(&prefix), "upstream", "upstream.test");
    let srv = TlsServer::start(&id, &prefix.join("s_server.log"));
    let upstream = srv.addr();
    let mut ngx = start_proxy(&prefix, &[format!("proxy_pass http://{upstream};")]);
    requests(&ngx, REQUESTS, 502);
    // OpenSSL 3.0's s_server takes the request line for a bad TLS record and closes without an
    // alert; nginx 1.22.1 sees EOF before any response byte.
    error_lines(
        &prefix,
        &[
            "[error]",
            "upstream prematurely closed connection while reading response header from upstream",
            &format!("upstream: \"http://{upstream}/"),
        ],
        REQUESTS,
    );
    access_lines(&prefix, 502, Some(&upstream), REQUESTS);

    let (live, post) = live_then_post_mortem(&prefix, &mut ngx, "plain_to_tls_port");
    live.assert_top("scheme-mismatch", Some(&upstream), &[]);
    post.assert_top(
        "premature-close",
        Some(&upstream),
        &["upstream prematurely closed connection"],
    );
}

/// `proxy_pass` with a variable resolved per request by nginx's `resolver`: a name server on
/// loopback that says NXDOMAIN to everything.
#[test]
fn resolver_failure() {
    let _serial = serial();
    let dns = StubDns::start();
    let prefix = Prefix::new();
    let mut ngx = start_proxy_with(
        &prefix,
        &format!(
            "    resolver 127.0.0.1:{} valid=1s;\n    resolver_timeout 2s;\n",
            dns.port()
        ),
        &[
            "set $b app.test;".into(),
            "proxy_pass http://$b:8080;".into(),
        ],
    );
    requests(&ngx, REQUESTS, 502);
    error_lines(
        &prefix,
        &[
            "[error]",
            "app.test could not be resolved (3: Host not found)",
        ],
        1,
    );
    assert!(
        dns.asked().iter().any(|n| n == "app.test"),
        "nginx did not ask the stub name server: {:?}",
        dns.asked()
    );
    access_lines(&prefix, 502, None, REQUESTS);

    let (live, post) = live_then_post_mortem(&prefix, &mut ngx, "resolver_failure");
    live.assert_top(
        "dns-failure",
        Some("app.test:8080"),
        &["could not be resolved"],
    );
    post.assert_top(
        "dns-failure",
        Some("app.test:8080"),
        &["could not be resolved"],
    );
}

/// `medic-isolate`, built with this package.
fn isolate_bin() -> &'static str {
    env!("CARGO_BIN_EXE_medic-isolate")
}

/// nginx will not start: `proxy_pass http://backend.invalid:8080;` is resolved at startup by the
/// system resolver, and nginx 1.22.1 says `[emerg] host not found in upstream "backend.invalid"
/// in CONF:LINE` (the host without the port). `medic-isolate` gives nginx its own
/// `/etc/resolv.conf` (a stub name server on loopback that says NXDOMAIN) and `/etc/hosts`, so
/// no query leaves the machine; `diagnose` runs in the same isolation.
#[test]
fn nginx_t_failure_host_not_found() {
    let _serial = serial();
    assert!(
        is_root(),
        "this scenario needs root (medic-isolate makes a mount namespace): run the tests as root, as CI does"
    );
    // Port 53 on a loopback address of its own, so a local resolver on 127.0.0.1:53 is no
    // obstacle (all of 127.0.0.0/8 is local on Linux).
    let dns = StubDns::bind("127.53.0.1:53".parse().expect("address"))
        .unwrap_or_else(|e| panic!("bind the stub name server on 127.53.0.1:53: {e}"));
    let prefix = Prefix::new();
    let resolv = prefix.join("resolv.conf");
    fs::write(
        &resolv,
        "nameserver 127.53.0.1\noptions timeout:1 attempts:1\n",
    )
    .expect("write resolv.conf");
    let hosts = prefix.join("hosts");
    fs::write(&hosts, "127.0.0.1 localhost\n::1 localhost ip6-localhost\n").expect("write hosts");
    let wrapper: Vec<&OsStr> = vec![
        isolate_bin().as_ref(),
        "--resolv-conf".as_ref(),
        resolv.as_os_str(),
        "--hosts".as_ref(),
        hosts.as_os_str(),
        "--".as_ref(),
    ];

    let port = free_port();
    let conf = nginx::config(
        &prefix,
        &proxy_server(port, &["proxy_pass http://backend.invalid:8080;".into()]),
    );
    fs::write(prefix.conf(), &conf).expect("write nginx.conf");
    let line = nginx::line_of(&conf, "backend.invalid");
    let console = fs::File::create(prefix.console_log()).expect("create nginx.console");
    let mut child = Command::new(wrapper[0])
        .args(&wrapper[1..])
        .arg(nginx::nginx_bin())
        .arg("-p")
        .arg(format!("{}/", prefix.display()))
        .arg("-c")
        .arg(prefix.conf())
        .arg("-e")
        .arg(prefix.error_log())
        .stdin(Stdio::null())
        .stdout(console.try_clone().expect("dup console file"))
        .stderr(console)
        .spawn()
        .expect("spawn medic-isolate nginx");
    let mut status = None;
    let exited = wait_until(T, || {
        status = child.try_wait().ok().flatten();
        status.is_some()
    });
    if !exited {
        // Our own child, by PID.
        let _ = child.kill();
        let _ = child.wait();
        panic!(
            "nginx started although backend.invalid cannot resolve:\n{}",
            fs::read_to_string(prefix.error_log()).unwrap_or_default()
        );
    }
    let status = status.expect("exit status");
    let console_text = fs::read_to_string(prefix.console_log()).unwrap_or_default();
    assert!(
        !status.success() && status.code() != Some(125) && status.code() != Some(127),
        "nginx under medic-isolate: {status}\n{console_text}"
    );
    error_lines(
        &prefix,
        &[
            "[emerg]",
            &format!(
                "host not found in upstream \"backend.invalid\" in {}:{line}",
                prefix.conf().display()
            ),
        ],
        1,
    );
    assert!(
        dns.asked().iter().any(|n| n == "backend.invalid"),
        "nginx did not ask the stub name server (isolation failed?): {:?}\n{console_text}",
        dns.asked()
    );

    let live = diagnose_wrapped(&wrapper, &prefix, Mode::Live, &[]);
    show("nginx_t_failure_host_not_found live", &live);
    let post = diagnose_wrapped(&wrapper, &prefix, Mode::NoProbe, &[]);
    show("nginx_t_failure_host_not_found no-probe", &post);
    live.assert_top("config-invalid", None, &["host not found in upstream"]);
    post.assert_top("config-invalid", None, &["host not found in upstream"]);
}

/// The control: a CA-signed certificate for `upstream.test`, verified against that CA, with
/// the name and SNI: every request is a 200 and nothing is an error.
#[test]
fn healthy_tls_control() {
    let _serial = serial();
    let prefix = Prefix::new();
    let ca = TestCa::create(&tls_dir(&prefix));
    let leaf = ca.sign("upstream", "upstream.test", VALID.0, VALID.1);
    let srv = TlsServer::start(&leaf, &prefix.join("s_server.log"));
    let mut pass = vec![format!("proxy_pass https://{};", srv.addr())];
    pass.extend(tls_verify(&ca.cert, true));
    let mut ngx = start_proxy(&prefix, &pass);
    requests(&ngx, REQUESTS, 200);
    access_lines(&prefix, 200, Some(&srv.addr()), REQUESTS);
    let errlog = fs::read_to_string(prefix.error_log()).unwrap_or_default();
    assert!(
        !errlog.contains("[error]") && !errlog.contains("[crit]"),
        "a healthy TLS upstream made nginx log errors:\n{errlog}"
    );

    let (live, post) = live_then_post_mortem(&prefix, &mut ngx, "healthy_tls_control");
    live.assert_no_errors();
    post.assert_no_errors();
}

/// `tls-client-cert-required`: the upstream (`openssl s_server -Verify 1`) requires a client
/// certificate and nginx has no `proxy_ssl_certificate`. With TLS 1.3 the server's alert comes
/// after nginx's side of the handshake is done (`tlsv13 alert certificate required`, alert 116);
/// with TLS 1.2 it ends the handshake (`sslv3 alert handshake failure`, alert 40 — which proves
/// nothing by itself).
#[test]
fn tls_client_cert_required() {
    let (live, post, upstream) = mutual_tls(
        "tls_client_cert_required",
        "-tls1_3",
        // nginx 1.22's default `proxy_ssl_protocols` stops at TLSv1.2.
        &["proxy_ssl_protocols TLSv1.2 TLSv1.3;"],
        "certificate required",
    );
    let evidence = ["alert certificate required"];
    live.assert_top("tls-client-cert-required", Some(&upstream), &evidence);
    post.assert_top("tls-client-cert-required", Some(&upstream), &evidence);
}

/// Mutual TLS with TLS 1.2: the server ends the handshake with a bare `handshake failure`
/// (alert 40), which names no reason. Live, the TLS probe sees the server's
/// `CertificateRequest` (in the clear up to TLS 1.2) and names the cause; post-mortem the log
/// proves only a failed handshake.
#[test]
fn tls_client_cert_required_tls12() {
    let (live, post, upstream) = mutual_tls(
        "tls_client_cert_required_tls12",
        "-tls1_2",
        &[],
        "alert handshake failure",
    );
    live.assert_top(
        "tls-client-cert-required",
        Some(&upstream),
        &["CertificateRequest"],
    );
    post.assert_top("tls-handshake", Some(&upstream), &["handshake failure"]);
}

/// `openssl s_server -Verify 1 PROTOCOL` behind nginx without a client certificate: requests
/// get 502 and nginx logs `logged`; the live and post-mortem diagnoses, and the upstream.
fn mutual_tls(
    scenario: &str,
    protocol: &str,
    extra: &[&str],
    logged: &str,
) -> (Diagnosis, Diagnosis, String) {
    let _serial = serial();
    let prefix = Prefix::new();
    let id = SelfSigned::create(&tls_dir(&prefix), "upstream", "upstream.test");
    let srv = TlsServer::start_with(
        &id,
        &["-Verify".as_ref(), "1".as_ref(), protocol.as_ref()],
        &prefix.join("s_server.log"),
    );
    let mut pass = vec![format!("proxy_pass https://{};", srv.addr())];
    pass.extend(extra.iter().map(|s| s.to_string()));
    pass.extend(tls_verify(&id.cert, true));
    let mut ngx = start_proxy(&prefix, &pass);
    requests(&ngx, REQUESTS, 502);
    let upstream = srv.addr();
    let lines = error_lines(
        &prefix,
        &[logged, &format!("upstream: \"https://{upstream}/")],
        1,
    );
    eprintln!("[{scenario}] nginx: {}", lines[0]);
    let (live, post) = live_then_post_mortem(&prefix, &mut ngx, scenario);
    (live, post, upstream)
}

/// An `/etc/hosts` of the test's own for nginx and `diagnose` (`medic-isolate` bind-mounts it in
/// a private mount namespace), and a resolv.conf whose name server does not exist: every name
/// comes from the hosts file (nsswitch `files` first), and no query leaves the machine.
struct Isolation {
    hosts: PathBuf,
    resolv: PathBuf,
}

impl Isolation {
    fn new(prefix: &Prefix, hosts_text: &str) -> Isolation {
        let hosts = prefix.join("hosts");
        fs::write(&hosts, hosts_text).expect("write hosts");
        let resolv = prefix.join("resolv.conf");
        fs::write(
            &resolv,
            "nameserver 127.53.0.9\noptions timeout:1 attempts:1\n",
        )
        .expect("write resolv.conf");
        Isolation { hosts, resolv }
    }

    /// `medic-isolate --resolv-conf R --hosts H --`, to put before a program.
    fn wrapper(&self) -> Vec<&OsStr> {
        vec![
            isolate_bin().as_ref(),
            "--resolv-conf".as_ref(),
            self.resolv.as_os_str(),
            "--hosts".as_ref(),
            self.hosts.as_os_str(),
            "--".as_ref(),
        ]
    }
}

/// nginx (through `medic-isolate`, with the test's `/etc/hosts`) resolved `backend.test` once,
/// at start, to 127.0.0.2 where nothing listens; then the name moved to 127.0.0.1, where the
/// backend answers, and nginx did not notice: its requests got 502 before and after the move.
fn moved_name(prefix: &Prefix) -> (TcpStub, Isolation, Nginx) {
    let backend = TcpStub::start(Behavior::Ok);
    let iso = Isolation::new(prefix, "127.0.0.1 localhost\n127.0.0.2 backend.test\n");
    let port = free_port();
    let conf = nginx::config(
        prefix,
        &proxy_server(
            port,
            &[format!(
                "proxy_pass http://backend.test:{};",
                backend.port()
            )],
        ),
    );
    let ngx = Nginx::start_wrapped(prefix, &conf, port, &iso.wrapper());
    requests(&ngx, REQUESTS, 502);
    // The name moves (same file: the bind mount shows the new text), nginx does not notice.
    fs::write(&iso.hosts, "127.0.0.1 localhost\n127.0.0.1 backend.test\n").expect("rewrite hosts");
    requests(&ngx, 1, 502);
    (backend, iso, ngx)
}

/// `stale-dns`: nginx resolved `backend.test` once, at start (127.0.0.2, where nothing
/// listens), and keeps connecting there after the name moved to 127.0.0.1, where the backend
/// answers. `medic-isolate` gives nginx and `diagnose` their own `/etc/hosts` (a bind mount: the
/// edit below shows in both, and the machine's file is never touched).
#[test]
fn stale_dns() {
    let _serial = serial();
    assert!(
        is_root(),
        "this scenario needs root (medic-isolate makes a mount namespace): run the tests as root, as CI does"
    );
    let prefix = Prefix::new();
    let (backend, iso, mut ngx) = moved_name(&prefix);
    let wrapper = iso.wrapper();
    let old = format!("127.0.0.2:{}", backend.port());
    error_lines(
        &prefix,
        &[
            "(111: Connection refused)",
            &format!("upstream: \"http://{old}/"),
        ],
        REQUESTS,
    );

    let live = diagnose_wrapped(&wrapper, &prefix, Mode::Live, &[]);
    show("stale_dns live", &live);
    let top = live.assert_top(
        "stale-dns",
        Some(&old),
        &[&format!("resolves to {} now", backend.addr())],
    );
    assert!(
        top["fix"]["steps"].to_string().contains("resolver"),
        "{top:#}"
    );
    ngx.stop();
    let post = diagnose_wrapped(&wrapper, &prefix, Mode::NoProbe, &[]);
    show("stale_dns no-probe", &post);
    // The files alone cannot tell a moved name from a dead backend.
    post.assert_top("connect-refused", Some(&old), &["Connection refused"]);
}

/// `stale-dns`, fixed: `fix --apply --yes` (through the same `medic-isolate`, so it and nginx
/// see the test's `/etc/hosts`) reloads nginx, which resolves `backend.test` again; the request
/// is answered 200 and no config file changes.
#[test]
fn stale_dns_fixed_by_a_reload() {
    let _serial = serial();
    assert!(
        is_root(),
        "this scenario needs root (medic-isolate): run the tests as root"
    );
    let prefix = Prefix::new();
    let (_backend, iso, ngx) = moved_name(&prefix);
    let wrapper = iso.wrapper();
    let before = fs::read(prefix.conf()).expect("read nginx.conf");

    let (program, args) = wrapper.split_first().expect("a wrapper");
    let out = Command::new(program)
        .args(args)
        .arg(medic_e2e::medic_bin())
        .args([
            "fix", "--apply", "--yes", "--format", "json", "--since", "30d", "--config",
        ])
        .arg(prefix.conf())
        .arg("--prefix")
        .arg(format!("{}/", prefix.display()))
        .arg("--backup-dir")
        .arg(prefix.join("backups"))
        .arg("--lock-file")
        .arg(prefix.join("fix.lock"))
        .stdin(Stdio::null())
        .output()
        .expect("run nginx-medic fix");
    let text = String::from_utf8_lossy(&out.stdout);
    let json: serde_json::Value = serde_json::from_str(&text).unwrap_or_else(|e| {
        panic!(
            "fix printed no JSON ({e}):\n{text}\n{}",
            String::from_utf8_lossy(&out.stderr)
        )
    });
    assert_eq!(
        out.status.code(),
        Some(0),
        "{json:#}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(json["outcome"], "applied", "{json:#}");
    assert_eq!(json["plan"]["reload"], true, "{json:#}");
    assert!(
        json["plan"]["files"]
            .as_array()
            .is_some_and(|f| f.is_empty()),
        "{json:#}"
    );
    requests(&ngx, 2, 200);
    assert_eq!(
        fs::read(prefix.conf()).expect("read nginx.conf"),
        before,
        "a reload changes no file"
    );
}

/// `proxy_pass http://localhost:PORT` with the app on 127.0.0.1 only: nginx resolves
/// `localhost` to `[::1]` and `127.0.0.1` (its own `/etc/hosts` under `medic-isolate`), is
/// refused on `[::1]`, retries 127.0.0.1 and the client gets 200. That is a `bind-mismatch`
/// warning (a retry per request), never an error and never `backend-starting`.
#[test]
fn localhost_one_address_refuses() {
    let _serial = serial();
    assert!(
        is_root(),
        "this scenario needs root (medic-isolate makes a mount namespace): run the tests as root, as CI does"
    );
    let prefix = Prefix::new();
    let app = TcpStub::start(Behavior::Ok);
    let iso = Isolation::new(&prefix, "::1 localhost\n127.0.0.1 localhost\n");
    let wrapper = iso.wrapper();
    let port = free_port();
    let conf = nginx::config(
        &prefix,
        &proxy_server(
            port,
            &[format!("proxy_pass http://localhost:{};", app.port())],
        ),
    );
    let mut ngx = Nginx::start_wrapped(&prefix, &conf, port, &wrapper);
    requests(&ngx, REQUESTS, 200);
    let refused = format!("[::1]:{}", app.port());
    // Once: nginx then marks [::1] failed for `fail_timeout` (10 s) and goes to 127.0.0.1.
    error_lines(
        &prefix,
        &[
            "(111: Connection refused)",
            &format!("upstream: \"http://{refused}/"),
        ],
        1,
    );

    let live = diagnose_wrapped(&wrapper, &prefix, Mode::Live, &[]);
    show("localhost_one_address_refuses live", &live);
    live.assert_no_errors();
    let f = live
        .findings()
        .iter()
        .find(|f| f["id"] == "bind-mismatch")
        .unwrap_or_else(|| panic!("no bind-mismatch:\n{:#}", live.json));
    assert_eq!(f["severity"], "warning", "{f:#}");
    assert_eq!(f["upstream"], refused.as_str(), "{f:#}");
    assert!(
        !live
            .findings()
            .iter()
            .any(|f| f["id"] == "backend-starting"),
        "{:#}",
        live.json
    );
    ngx.stop();
}
