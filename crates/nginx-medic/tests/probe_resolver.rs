//! A `proxy_pass` with variables is resolved per request with the config's `resolver`: the probe
//! asks the same resolver the same question. A stub DNS server on 127.0.0.1 (started here)
//! answers one name, says NXDOMAIN for another and never answers a third.

use std::net::{TcpListener, UdpSocket};
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use serde_json::Value;

/// Answers A queries: `good.test` → 127.0.0.1, `bad.test` → NXDOMAIN, `slow.test` → nothing;
/// AAAA queries get an empty answer.
struct StubDns {
    port: u16,
    stop: Arc<AtomicBool>,
}

impl StubDns {
    fn start() -> StubDns {
        let sock = UdpSocket::bind("127.0.0.1:0").unwrap();
        sock.set_read_timeout(Some(Duration::from_millis(100)))
            .unwrap();
        let port = sock.local_addr().unwrap().port();
        let stop = Arc::new(AtomicBool::new(false));
        let flag = Arc::clone(&stop);
        std::thread::spawn(move || {
            let mut buf = [0u8; 512];
            while !flag.load(Ordering::SeqCst) {
                let Ok((n, from)) = sock.recv_from(&mut buf) else {
                    continue;
                };
                let q = &buf[..n];
                let (name, end) = qname(q);
                let qtype = u16::from_be_bytes([q[end], q[end + 1]]);
                let question = &q[12..end + 4];
                let mut r = Vec::new();
                r.extend_from_slice(&q[..2]);
                match name.as_str() {
                    "slow.test" => continue,
                    "bad.test" => r.extend_from_slice(&[0x81, 0x83, 0, 1, 0, 0, 0, 0, 0, 0]),
                    "good.test" if qtype == 1 => {
                        r.extend_from_slice(&[0x81, 0x80, 0, 1, 0, 1, 0, 0, 0, 0]);
                    }
                    _ => r.extend_from_slice(&[0x81, 0x80, 0, 1, 0, 0, 0, 0, 0, 0]),
                }
                r.extend_from_slice(question);
                if name == "good.test" && qtype == 1 {
                    r.extend_from_slice(&[0xc0, 12, 0, 1, 0, 1, 0, 0, 0, 5, 0, 4, 127, 0, 0, 1]);
                }
                let _ = sock.send_to(&r, from);
            }
        });
        StubDns { port, stop }
    }
}

impl Drop for StubDns {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
    }
}

fn qname(q: &[u8]) -> (String, usize) {
    let mut i = 12;
    let mut labels = Vec::new();
    while q[i] != 0 {
        let l = usize::from(q[i]);
        labels.push(String::from_utf8_lossy(&q[i + 1..i + 1 + l]).into_owned());
        i += 1 + l;
    }
    (labels.join("."), i + 1)
}

fn probe(conf: &std::path::Path) -> Value {
    let out = Command::new(env!("CARGO_BIN_EXE_nginx-medic"))
        .args(["probe", "--config"])
        .arg(conf)
        .args(["--format", "json"])
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

fn target<'a>(v: &'a Value, upstream: &str) -> &'a Value {
    v["targets"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["upstream"] == upstream)
        .unwrap_or_else(|| panic!("no target {upstream} in {v:#}"))
}

#[test]
fn variables_are_resolved_with_the_configs_resolver() {
    let dns = StubDns::start();
    let app = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = app.local_addr().unwrap().port();
    let dir = tempfile::tempdir().unwrap();
    let conf = dir.path().join("nginx.conf");
    std::fs::write(
        &conf,
        format!(
            "events {{}}\nhttp {{\n  resolver 127.0.0.1:{dns} valid=1s;\n  resolver_timeout 1s;\n  proxy_read_timeout 1s;\n  proxy_connect_timeout 1s;\n  server {{\n    listen 8080;\n    location /good {{ set $b good.test; proxy_pass http://$b:{port}; }}\n    location /bad {{ set $c bad.test; proxy_pass http://$c:{port}; }}\n    location /slow {{ set $d slow.test; proxy_pass http://$d:{port}; }}\n  }}\n}}\n",
            dns = dns.port
        ),
    )
    .unwrap();
    let v = probe(&conf);

    let good = target(&v, &format!("good.test:{port}"));
    assert_eq!(good["resolve"]["via"], "resolver", "{good:#}");
    assert_eq!(
        good["resolve"]["addresses"][0],
        format!("127.0.0.1:{port}"),
        "{good:#}"
    );
    assert_eq!(good["tcp"][0]["connect"]["state"], "ok", "{good:#}");

    let bad = target(&v, &format!("bad.test:{port}"));
    let err = bad["resolve"]["error"].as_str().unwrap();
    assert!(
        err.starts_with("bad.test could not be resolved (3: Host not found)"),
        "{err}"
    );
    assert!(
        bad["tcp"].as_array().is_none_or(|t| t.is_empty()),
        "{bad:#}"
    );

    let slow = target(&v, &format!("slow.test:{port}"));
    let err = slow["resolve"]["error"].as_str().unwrap();
    assert!(err.contains("(110: Operation timed out)"), "{err}");
    drop(app);
}

#[test]
fn no_resolver_is_what_nginx_says() {
    let dir = tempfile::tempdir().unwrap();
    let conf = dir.path().join("nginx.conf");
    std::fs::write(
        &conf,
        "events {}\nhttp {\n  server {\n    listen 8080;\n    location / { set $b api.internal; proxy_pass http://$b; }\n    location /ip { set $i 127.0.0.1:9; proxy_pass http://$i; }\n  }\n}\n",
    )
    .unwrap();
    let v = probe(&conf);
    let t = target(&v, "api.internal:80");
    assert_eq!(
        t["resolve"]["error"], "no resolver defined to resolve api.internal",
        "{t:#}"
    );
    // An address literal needs no resolver: it is connected to (and refused here).
    let ip = target(&v, "127.0.0.1:9");
    assert_eq!(ip["tcp"][0]["connect"]["state"], "refused", "{ip:#}");
}
