//! Failures after the response header went out, staged on a real nginx: the client got the
//! upstream's 200 and a body cut short, never a 502. nginx logs them `while reading upstream`.
//!
//! - `temp_path_permission`: the workers (`user nobody`) may not write `proxy_temp_path` any
//!   more (it was given to root, as after changing nginx's `user`), and a response larger than
//!   the buffers must go to a temp file: `open() ".../proxy/..." failed (13: Permission
//!   denied) while reading upstream`.
//! - `cut_off_response`: the upstream announces 1 MB, sends 16 KB and resets.
//!
//! Each is diagnosed live and post-mortem (`--no-probe`). Build the binary first: `cargo build
//! -p nginx-medic && cargo test -p medic-e2e --test diagnose_after_header`.

use std::fs;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::os::unix::fs::{chown, PermissionsExt};
use std::time::Duration;

use medic_e2e::diagnose::{diagnose, serial, Checks, Diagnosis, Mode};
use medic_e2e::stubs::{Behavior, TcpStub};
use medic_e2e::{free_port, http, is_root, nginx, Nginx, Prefix};
use serde_json::Value;

const TIMEOUT: Duration = Duration::from_secs(10);

/// nginx proxying `/` to `upstream` with small buffers, so a large body goes to a temp file.
fn start(prefix: &Prefix, upstream: &str) -> Nginx {
    let port = free_port();
    // A small send buffer towards the client: nginx cannot hand a large body to the kernel at
    // once, so it buffers the rest in its temp file.
    let body = format!(
        "    server {{
        listen 127.0.0.1:{port} sndbuf=8k;
        server_name app.test;
        proxy_read_timeout 2s;
        proxy_buffers 4 4k;
        location / {{
            proxy_pass http://{upstream};
        }}
    }}"
    );
    let conf = nginx::config(prefix, &body);
    let t = nginx::test_config(prefix, &conf);
    assert!(t.ok, "nginx -t refuses the scenario config:\n{}", t.stderr);
    Nginx::start(prefix, &conf, port)
}

/// A GET whose client waits before reading, as a slow client does: nginx must put the body
/// it cannot send yet somewhere. Returns the status.
fn slow_get(port: u16) -> u16 {
    let mut s = TcpStream::connect(("127.0.0.1", port)).expect("connect to nginx");
    s.set_read_timeout(Some(TIMEOUT)).expect("read timeout");
    s.write_all(b"GET / HTTP/1.1\r\nHost: app.test\r\nConnection: close\r\n\r\n")
        .expect("send the request");
    std::thread::sleep(Duration::from_millis(700));
    let mut resp = Vec::new();
    // The body may be cut short: whatever arrived is enough.
    let _ = s.read_to_end(&mut resp);
    let head = String::from_utf8_lossy(&resp[..resp.len().min(32)]).into_owned();
    head.split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or_else(|| panic!("not an HTTP response: {head:?}"))
}

/// The error-log lines holding `needle`; at least one, or a panic with the whole log.
fn logged(prefix: &Prefix, needle: &str) -> Vec<String> {
    let text = fs::read_to_string(prefix.error_log()).unwrap_or_default();
    let lines: Vec<String> = text
        .lines()
        .filter(|l| l.contains(needle))
        .map(str::to_string)
        .collect();
    assert!(!lines.is_empty(), "no {needle:?} in the error log:\n{text}");
    lines
}

/// The top error finding: its id, no status, the cut-off said in the title, and the clients'
/// 200s counted as cut off.
fn check_cut_off(d: &Diagnosis, ids: &[&str], requests: u64) -> Value {
    let top = d.top().clone();
    let id = top["id"].as_str().unwrap_or_default();
    assert!(
        ids.contains(&id),
        "top finding {id}, expected one of {ids:?}:\n{top:#}"
    );
    assert_eq!(top["severity"], "error", "{top:#}");
    assert!(
        top.get("status").is_none_or(Value::is_null),
        "a cut-off 200 has no 5xx status:\n{top:#}"
    );
    let title = top["title"].as_str().unwrap_or_default();
    assert!(
        title.contains("cut-off") || title.contains("cut off"),
        "{title}"
    );
    assert_eq!(top["impact"]["statuses"]["200"], requests, "{top:#}");
    assert_eq!(top["impact"]["cut_off"], requests, "{top:#}");
    assert_eq!(top["impact"]["client_errors"], 0, "{top:#}");
    top
}

#[test]
fn temp_path_permission() {
    assert!(
        is_root(),
        "the scenario needs workers that drop to nobody: run as root"
    );
    let _serial = serial();
    let mut checks = Checks::new("temp_path_permission");
    let prefix = Prefix::new();
    let stub = TcpStub::start(Behavior::BigBody(4 << 20));
    let mut server = start(&prefix, &stub.addr());
    // As after `user` changed: the temp directory belongs to someone the workers are not.
    let temp = prefix.join("temp/proxy");
    chown(&temp, Some(0), Some(0)).expect("chown the proxy temp dir to root");
    fs::set_permissions(&temp, fs::Permissions::from_mode(0o700)).expect("chmod 700");
    for _ in 0..3 {
        // The status line went out before the temp file failed: 200.
        assert_eq!(slow_get(server.port()), 200);
    }
    let lines = logged(
        &prefix,
        "failed (13: Permission denied) while reading upstream",
    );
    eprintln!("[temp_path_permission] nginx: {}", lines[0]);

    let check = |d: &Diagnosis| {
        let top = check_cut_off(d, &["temp-path-permission"], 3);
        let text = top.to_string();
        assert!(text.contains(&temp.display().to_string()), "{top:#}");
        assert!(
            text.contains("chown -R nobody:"),
            "the fix gives the dir to the workers' user:\n{top:#}"
        );
    };
    let d = diagnose(&prefix, Mode::Live, &[]);
    checks.check("live", || check(&d));
    server.stop();
    let d = diagnose(&prefix, Mode::NoProbe, &[]);
    checks.check("no-probe", || check(&d));
    checks.finish();
}

#[test]
fn cut_off_response() {
    let _serial = serial();
    let mut checks = Checks::new("cut_off_response");
    let prefix = Prefix::new();
    let stub = TcpStub::start(Behavior::CutBody);
    let mut server = start(&prefix, &stub.addr());
    for _ in 0..2 {
        assert_eq!(http::get(server.port(), "/", TIMEOUT), 200);
    }
    let lines = logged(&prefix, "while reading upstream");
    eprintln!("[cut_off_response] nginx: {}", lines[0]);

    let check = |d: &Diagnosis| {
        check_cut_off(
            d,
            &["upstream-reset", "premature-close", "backend-crash"],
            2,
        );
    };
    let d = diagnose(&prefix, Mode::Live, &[]);
    checks.check("live", || check(&d));
    server.stop();
    let d = diagnose(&prefix, Mode::NoProbe, &[]);
    checks.check("no-probe", || check(&d));
    checks.finish();
}
