//! `nginx-medic probe` against a real PHP-FPM (a unix-socket pool with `listen.mode 0600`, an
//! open one, a TCP pool), a FastCGI target that hangs, and `https://` to a plain port; on a
//! config that the real nginx accepts (`nginx -t`).
//!
//! Build the binary first: `cargo build -p nginx-medic && cargo test -p medic-e2e`.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use medic_e2e::nginx::{self, line_of, test_config};
use medic_e2e::php_fpm::{PhpFpm, Pool};
use medic_e2e::stubs::{Behavior, TcpStub};
use medic_e2e::{free_port, is_root, medic, Prefix};
use serde_json::Value;

fn target<'a>(json: &'a Value, upstream: &str) -> &'a Value {
    json["targets"]
        .as_array()
        .expect("targets")
        .iter()
        .find(|t| t["upstream"] == upstream)
        .unwrap_or_else(|| panic!("no target {upstream} in {json:#}"))
}

/// A plain HTTP server that answers any first bytes (a request or a TLS ClientHello) at once,
/// on a thread per connection, like a real one: `https://` pointed at it is a scheme mismatch.
struct PlainHttp {
    addr: std::net::SocketAddr,
}

impl PlainHttp {
    fn start() -> PlainHttp {
        let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind plain http");
        let addr = l.local_addr().unwrap();
        // The thread ends with the test process; it holds no other resource.
        std::thread::spawn(move || {
            for mut s in l.incoming().flatten() {
                std::thread::spawn(move || {
                    use std::io::{Read, Write};
                    let mut buf = [0u8; 2048];
                    let _ = s.set_read_timeout(Some(Duration::from_secs(5)));
                    if s.read(&mut buf).unwrap_or(0) > 0 {
                        let _ = s.write_all(
                            b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
                        );
                    }
                });
            }
        });
        PlainHttp { addr }
    }

    fn addr(&self) -> String {
        self.addr.to_string()
    }
}

#[test]
fn probe_real_php_fpm_pools() {
    let prefix = Prefix::new();
    let closed = prefix.join("closed.sock");
    let open = prefix.join("open.sock");
    let tcp_port = free_port();
    let fpm = PhpFpm::start(
        prefix.path(),
        &[
            Pool {
                name: "closed".into(),
                listen: closed.display().to_string(),
                mode: Some("0600".into()),
            },
            Pool {
                name: "open".into(),
                listen: open.display().to_string(),
                mode: Some("0666".into()),
            },
            Pool {
                name: "tcp".into(),
                listen: format!("127.0.0.1:{tcp_port}"),
                mode: None,
            },
        ],
    );
    let hang = TcpStub::start(Behavior::Hang);
    let plain = PlainHttp::start();
    let port = free_port();
    let body = format!(
        "    server {{
        listen 127.0.0.1:{port};
        server_name app.test;
        location /closed {{ fastcgi_pass unix:{closed}; }}
        location /open {{ fastcgi_pass unix:{open}; }}
        location /tcp {{ fastcgi_pass 127.0.0.1:{tcp_port}; }}
        location /hang {{ fastcgi_pass {hang}; fastcgi_read_timeout 1s; }}
        location /tls {{ proxy_pass https://{plain}; }}
    }}",
        closed = closed.display(),
        open = open.display(),
        hang = hang.addr(),
        plain = plain.addr(),
    );
    let conf = nginx::config(&prefix, &body);
    let t = test_config(&prefix, &conf);
    assert!(t.ok, "nginx -t refuses the scenario config:\n{}", t.stderr);

    let start = Instant::now();
    let run = medic(
        [
            "probe",
            "--format",
            "json",
            "--margin-ms",
            "300",
            "--config",
            prefix.conf().to_str().unwrap(),
        ],
        Vec::<PathBuf>::new(),
    );
    let took = start.elapsed();
    assert_eq!(run.code(), Some(0), "{run}");
    assert!(took < Duration::from_secs(5), "took {took:?}\n{run}");
    let json = run.json();

    for sock in [&closed, &open] {
        let t = target(&json, &format!("unix:{}", sock.display()));
        let f = &t["fastcgi"];
        assert_eq!(f["answered"], true, "{t:#}");
        assert_eq!(f["status"], 404, "{t:#}");
        assert!(
            f["stderr"]
                .as_str()
                .unwrap_or_default()
                .contains("Primary script unknown"),
            "{t:#}"
        );
        // Who listens: the pool's master, as ss -xlp would say.
        let pids: Vec<u64> = t["listener"]["processes"]
            .as_array()
            .unwrap_or_else(|| panic!("no listener processes: {t:#}"))
            .iter()
            .map(|p| p["pid"].as_u64().unwrap())
            .collect();
        assert!(pids.contains(&(fpm.pid().unwrap() as u64)), "{t:#}");
        assert_eq!(
            t["passes"][0]["at"],
            format!(
                "{}:{}",
                prefix.conf().display(),
                line_of(&conf, &format!("fastcgi_pass unix:{}", sock.display()))
            )
        );
    }
    let closed_t = &target(&json, &format!("unix:{}", closed.display()))["unix"];
    assert_eq!(closed_t["mode"], "0600", "{closed_t:#}");
    let open_t = &target(&json, &format!("unix:{}", open.display()))["unix"];
    if is_root() {
        // nginx's workers run as nobody (the harness config's `user nobody nogroup`).
        assert_eq!(closed_t["worker"]["user"], "nobody");
        assert_eq!(closed_t["worker"]["allowed"], false, "{closed_t:#}");
        assert_eq!(open_t["worker"]["allowed"], true, "{open_t:#}");
    }

    let tcp = target(&json, &format!("127.0.0.1:{tcp_port}"));
    assert_eq!(tcp["tcp"][0]["connect"]["state"], "ok", "{tcp:#}");
    assert_eq!(tcp["fastcgi"]["answered"], true, "{tcp:#}");
    assert_eq!(tcp["fastcgi"]["speaks"], "fastcgi");

    let h = target(&json, &hang.addr());
    assert_eq!(h["fastcgi"]["answered"], false, "{h:#}");
    assert_eq!(h["fastcgi"]["ttfb_exceeds_timeout"], true, "{h:#}");
    assert_eq!(h["fastcgi"]["read_timeout_ms"], 1000);

    let p = target(&json, &plain.addr());
    assert_eq!(p["http"]["tls_expected"], true, "{p:#}");
    assert_eq!(p["http"]["speaks"], "http", "{p:#}");
    assert_eq!(p["http"]["scheme_mismatch"], true, "{p:#}");
    // The TLS probe (probe/tls.rs) sees the plain answer to its ClientHello too.
    assert!(!p["tls"]["scheme_mismatch"].is_null(), "{p:#}");

    // The text report: one line per target.
    let text = medic(
        ["probe", "--config", prefix.conf().to_str().unwrap()],
        Vec::<PathBuf>::new(),
    );
    assert_eq!(text.code(), Some(0), "{text}");
    assert!(text.stdout.contains("fastcgi answers 404"), "{text}");
    assert!(text.stdout.contains("fastcgi HANGS"), "{text}");
    drop(fpm);
}
