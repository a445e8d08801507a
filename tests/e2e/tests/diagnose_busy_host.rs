//! `nginx-medic diagnose` on a busy host: real servers run other things, and nothing may be
//! blamed without evidence that ties it to the failing target.
//!
//! Every live scenario of the suite runs beside the test binary's busy host
//! ([`medic_e2e::busy::shared`], started by `serial()`: three `python3 -m http.server` listeners
//! on unrelated ports, a second PHP-FPM master with a pool on an unrelated unix socket, an
//! unrelated `python3` killed by the kernel's OOM killer). The scenarios here stage a failure
//! that none of them has anything to do with and check, beyond the top finding, that the
//! diagnosis does not pin it on them: live (probes see every listener of the host) and
//! post-mortem.
//!
//! Build the binary first: `cargo build -p nginx-medic && cargo test -p medic-e2e --test
//! diagnose_busy_host`.

use std::path::Path;

use medic_e2e::busy;
use medic_e2e::diagnose::{diagnose, serial, Checks, Diagnosis, Mode};
use medic_e2e::php_fpm::docroot;
use medic_e2e::{free_port, nginx, Nginx, Prefix};
use serde_json::Value;

const REFUSED: &str = "connect() failed (111: Connection refused) while connecting to upstream";

/// The error-log lines that contain every one of `needles`; at least `min`, or a panic with the
/// whole log.
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

/// Every finding in one line, then the top finding whole (its evidence, fix and backend are
/// what the report quotes).
fn summary(label: &str, d: &Diagnosis) {
    for (i, f) in d.findings().iter().enumerate() {
        eprintln!(
            "{label}: #{i} id={} severity={} upstream={} backend={} title={}",
            f["id"], f["severity"], f["upstream"], f["backend"], f["title"]
        );
    }
    match d.findings().first() {
        Some(top) => eprintln!("{label}: top finding:\n{top:#}"),
        None => eprintln!("{label}: no findings"),
    }
}

/// The finding about `upstream`, or a panic with the whole JSON.
fn finding_for<'a>(d: &'a Diagnosis, upstream: &str) -> &'a Value {
    d.findings()
        .iter()
        .find(|f| f["upstream"] == upstream)
        .unwrap_or_else(|| panic!("no finding for {upstream}:\n{:#}", d.json))
}

/// Nothing listens on the proxied port; three `python3 -m http.server` listen on other ports of
/// 127.0.0.1. None of them is tied to the target (another program, no unit or config naming the
/// port): the cause is `backend-down` live (`connect-refused` post-mortem), never `wrong-port`
/// or `bind-mismatch` pointing at a python server.
#[test]
fn busy_host_backend_down_is_not_wrong_port() {
    let _serial = serial();
    let mut checks = Checks::new("busy_host_backend_down_is_not_wrong_port");
    let busy = busy::shared();
    let prefix = Prefix::new();
    let target = format!("127.0.0.1:{}", free_port());
    let port = free_port();
    let body = format!(
        "    server {{
        listen 127.0.0.1:{port};
        server_name app.test;
        proxy_connect_timeout 1s;
        location / {{ proxy_pass http://{target}; }}
    }}"
    );
    let mut server = Nginx::start(&prefix, &nginx::config(&prefix, &body), port);
    server.get_n("/", 3, 502);
    logged(
        &prefix,
        &[REFUSED, &format!("upstream: \"http://{target}/\"")],
        3,
    );

    let check = |d: &Diagnosis, ids: &[&str]| {
        let top = d.top();
        assert!(
            ids.contains(&top["id"].as_str().unwrap_or("")) && top["upstream"] == target.as_str(),
            "the top finding is not {ids:?} for {target}:\n{top:#}"
        );
        assert!(
            !d.findings()
                .iter()
                .any(|f| f["id"] == "wrong-port" || f["id"] == "bind-mismatch"),
            "an unrelated listener was taken for the backend:\n{:#}",
            d.json
        );
        busy.assert_not_blamed(finding_for(d, &target));
    };
    let d = diagnose(&prefix, Mode::Live, &[]);
    summary("busy backend-down live", &d);
    checks.check("live", || check(&d, &["backend-down", "connect-refused"]));
    server.stop();
    let d = diagnose(&prefix, Mode::NoProbe, &[]);
    summary("busy backend-down no-probe", &d);
    checks.check("no-probe", || check(&d, &["connect-refused"]));
    checks.finish();
}

/// The `server {}` of the FastCGI scenario: `.php` under `root` passed to `pass`, the params
/// written out (the prefix has no `fastcgi_params` file).
fn fastcgi_server(port: u16, pass: &str, root: &Path) -> String {
    format!(
        "    server {{
        listen 127.0.0.1:{port};
        root {root};
        location ~ \\.php$ {{
            fastcgi_pass {pass};
            fastcgi_param SCRIPT_FILENAME $document_root$fastcgi_script_name;
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
            fastcgi_read_timeout 2s;
        }}
    }}",
        root = root.display(),
    )
}

/// `fastcgi_pass unix:PREFIX/php.sock`, a path nobody serves; the busy host's PHP-FPM pool
/// listens on a socket in another directory, under another name, in a master nothing ties to
/// this nginx. The cause stays `socket-missing` (the class-level cause; the pool may be listed
/// as a hint), unless the finding says how unsure it is (`backend.confidence` `low`).
#[test]
fn busy_host_socket_missing_is_not_blamed_on_another_pool() {
    let _serial = serial();
    let mut checks = Checks::new("busy_host_socket_missing_is_not_blamed_on_another_pool");
    let busy = busy::shared();
    let prefix = Prefix::new();
    let www = docroot(
        &prefix.join("www"),
        &[("hello.php", "<?php echo \"hello\\n\";\n")],
    );
    let pass = format!("unix:{}", prefix.join("php.sock").display());
    let port = free_port();
    let mut server = Nginx::start(
        &prefix,
        &nginx::config(&prefix, &fastcgi_server(port, &pass, &www)),
        port,
    );
    server.get_n("/hello.php", 3, 502);
    logged(
        &prefix,
        &[&format!(
            "connect() to {pass} failed (2: No such file or directory)"
        )],
        3,
    );

    let check = |d: &Diagnosis| {
        let top = d.top();
        assert_eq!(top["upstream"], pass.as_str(), "top upstream:\n{top:#}");
        match top["id"].as_str() {
            Some("socket-missing") => {}
            Some("socket-path-mismatch") => assert_eq!(
                top["backend"]["confidence"], "low",
                "socket-path-mismatch blames the unrelated pool without saying how unsure it is:\n{top:#}"
            ),
            _ => panic!("the top finding is neither socket-missing nor an unsure socket-path-mismatch:\n{top:#}"),
        }
        if top["id"] == "socket-missing" {
            busy.assert_not_blamed(top);
        }
    };
    let d = diagnose(&prefix, Mode::Live, &[]);
    summary("busy socket-missing live", &d);
    checks.check("live", || check(&d));
    server.stop();
    let d = diagnose(&prefix, Mode::NoProbe, &[]);
    summary("busy socket-missing no-probe", &d);
    checks.check("no-probe", || {
        check(&d);
        d.assert_top(
            "socket-missing",
            Some(&pass),
            &["No such file or directory"],
        );
    });
    checks.finish();
}
