//! `nginx-medic probe` against real loopback servers started by each test: listeners on
//! 127.0.0.1, 127.0.0.2 and ::1, a refused port, a slow HTTP server, a 16 KB header, a stale
//! unix socket. Each test owns its listeners; they close when the test's values drop.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::os::unix::net::UnixListener;
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use serde_json::Value;

/// An HTTP server that waits `delay` before answering and sends a header of `header` bytes.
struct Server {
    addr: std::net::SocketAddr,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Server {
    fn start(bind: &str, delay: Duration, header: usize) -> Server {
        let l = TcpListener::bind(bind).unwrap_or_else(|e| panic!("bind {bind}: {e}"));
        let addr = l.local_addr().unwrap();
        let stop = Arc::new(AtomicBool::new(false));
        let flag = Arc::clone(&stop);
        let thread = std::thread::spawn(move || {
            for conn in l.incoming() {
                if flag.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(mut s) = conn else { continue };
                std::thread::spawn(move || {
                    let _ = s.set_read_timeout(Some(Duration::from_secs(5)));
                    let mut buf = [0u8; 4096];
                    let mut got = Vec::new();
                    while !got.windows(4).any(|w| w == b"\r\n\r\n") {
                        match s.read(&mut buf) {
                            Ok(0) | Err(_) => return,
                            Ok(n) => got.extend_from_slice(&buf[..n]),
                        }
                    }
                    std::thread::sleep(delay);
                    let mut resp = b"HTTP/1.1 200 OK\r\nX-Pad: ".to_vec();
                    resp.resize(resp.len() + header, b'a');
                    resp.extend_from_slice(b"\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok");
                    let _ = s.write_all(&resp);
                });
            }
        });
        Server {
            addr,
            stop,
            thread: Some(thread),
        }
    }

    fn port(&self) -> u16 {
        self.addr.port()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        let _ = TcpStream::connect_timeout(&self.addr, Duration::from_secs(1));
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn probe(conf: &str) -> (Option<i32>, String, Value) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("nginx.conf");
    std::fs::write(&path, conf).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_nginx-medic"))
        .args([
            "probe",
            "--format",
            "json",
            "--margin-ms",
            "300",
            "--config",
        ])
        .arg(&path)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let json = serde_json::from_str(&stdout).unwrap_or(Value::Null);
    (
        out.status.code(),
        format!("{stdout}\n{}", String::from_utf8_lossy(&out.stderr)),
        json,
    )
}

fn target<'a>(json: &'a Value, upstream: &str) -> &'a Value {
    json["targets"]
        .as_array()
        .expect("targets")
        .iter()
        .find(|t| t["upstream"] == upstream)
        .unwrap_or_else(|| panic!("no target {upstream} in {json:#}"))
}

fn conf(locations: &str) -> String {
    format!("events {{}}\nhttp {{\n  server {{\n    listen 8080;\n    server_name app.test;\n{locations}  }}\n}}\n")
}

#[test]
fn missing_config_exits_2() {
    let out = Command::new(env!("CARGO_BIN_EXE_nginx-medic"))
        .args(["probe", "--config", "/nonexistent/nginx.conf"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn ok_refused_and_bind_mismatch() {
    let ok = Server::start("127.0.0.1:0", Duration::ZERO, 10);
    let v6 = match Server::start_v6() {
        Some(s) => s,
        None => return, // no IPv6 loopback on this host
    };
    let lo2 = Server::start("127.0.0.2:0", Duration::ZERO, 10);
    let refused = free_port();
    let c = conf(&format!(
        "    location /a {{ proxy_pass http://127.0.0.1:{}; }}\n\
         \x20   location /b {{ proxy_pass http://127.0.0.1:{refused}; }}\n\
         \x20   location /c {{ proxy_pass http://127.0.0.1:{}; }}\n\
         \x20   location /d {{ proxy_pass http://127.0.0.1:{}; }}\n",
        ok.port(),
        v6.port(),
        lo2.port()
    ));
    let (code, all, json) = probe(&c);
    assert_eq!(code, Some(0), "{all}");
    assert_eq!(json["schema"], 1);
    assert_eq!(json["kind"], "probe");

    let a = target(&json, &format!("127.0.0.1:{}", ok.port()));
    assert_eq!(a["tcp"][0]["connect"]["state"], "ok", "{a:#}");
    assert_eq!(a["http"]["status"], 200);
    assert_eq!(a["http"]["request"]["path"], "/a");
    let pids: Vec<u64> = a["listener"]["processes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["pid"].as_u64().unwrap())
        .collect();
    assert!(pids.contains(&(std::process::id() as u64)), "{a:#}");
    assert!(a["passes"][0]["at"].as_str().unwrap().ends_with(":6"));

    let b = target(&json, &format!("127.0.0.1:{refused}"));
    assert_eq!(b["tcp"][0]["connect"]["state"], "refused", "{b:#}");
    assert!(b.get("listener").is_none());

    // The app listens on ::1 only: nginx's 127.0.0.1 is refused, the listener is shown.
    let c = target(&json, &format!("127.0.0.1:{}", v6.port()));
    assert_eq!(c["tcp"][0]["connect"]["state"], "refused", "{c:#}");
    assert_eq!(c["same_port_elsewhere"][0]["ip"], "::1", "{c:#}");

    let d = target(&json, &format!("127.0.0.1:{}", lo2.port()));
    assert_eq!(d["tcp"][0]["connect"]["state"], "refused", "{d:#}");
    assert_eq!(d["same_port_elsewhere"][0]["ip"], "127.0.0.2", "{d:#}");
}

impl Server {
    fn start_v6() -> Option<Server> {
        TcpListener::bind("[::1]:0").ok()?;
        Some(Server::start("[::1]:0", Duration::ZERO, 10))
    }
}

#[test]
fn localhost_reports_each_address() {
    let ok = Server::start("127.0.0.1:0", Duration::ZERO, 10);
    let c = conf(&format!(
        "    location / {{ proxy_pass http://localhost:{}; }}\n",
        ok.port()
    ));
    let (_, all, json) = probe(&c);
    let t = target(&json, &format!("localhost:{}", ok.port()));
    let addrs: Vec<&str> = t["addresses"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a.as_str().unwrap())
        .collect();
    assert!(
        addrs.contains(&format!("[::1]:{}", ok.port()).as_str()),
        "{all}"
    );
    assert!(
        addrs.contains(&format!("127.0.0.1:{}", ok.port()).as_str()),
        "{all}"
    );
    assert_eq!(t["tcp"].as_array().unwrap().len(), addrs.len());
}

#[test]
fn slow_backend_and_big_header() {
    let slow = Server::start("127.0.0.1:0", Duration::from_millis(2500), 10);
    let big = Server::start("127.0.0.1:0", Duration::ZERO, 16 * 1024);
    let c = conf(&format!(
        "    location /slow {{ proxy_pass http://127.0.0.1:{}; proxy_read_timeout 1s; }}\n\
         \x20   location /big {{ proxy_pass http://127.0.0.1:{}/x; proxy_buffer_size 4k; proxy_set_header Host $host; }}\n",
        slow.port(),
        big.port()
    ));
    let start = Instant::now();
    let (code, all, json) = probe(&c);
    let took = start.elapsed();
    assert_eq!(code, Some(0), "{all}");
    // Stopped at the 1 s timeout plus the 300 ms margin, not after the 2.5 s answer.
    assert!(took < Duration::from_millis(2300), "took {took:?}");

    let s = target(&json, &format!("127.0.0.1:{}", slow.port()));
    assert_eq!(s["http"]["ttfb_exceeds_timeout"], true, "{s:#}");
    assert_eq!(s["http"]["read_timeout_ms"], 1000);
    assert_eq!(s["http"]["speaks"], "silent");

    let b = target(&json, &format!("127.0.0.1:{}", big.port()));
    let h = &b["http"];
    assert_eq!(h["header_exceeds_buffer"], true, "{b:#}");
    assert_eq!(h["buffer_size"], 4096);
    assert!(h["header_bytes"].as_u64().unwrap() > 16 * 1024, "{h:#}");
    assert_eq!(h["request"]["host"], "app.test");
    assert_eq!(h["request"]["path"], "/x");
}

#[test]
fn tls_port_behind_http_scheme() {
    // A port that answers like a TLS server does to garbage: an alert record.
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    // Two connections: the connect probe's, then the HTTP probe's.
    let t = std::thread::spawn(move || {
        for _ in 0..2 {
            if let Ok((mut s, _)) = l.accept() {
                let mut buf = [0u8; 1024];
                let _ = s.read(&mut buf);
                let _ = s.write_all(&[0x15, 0x03, 0x03, 0x00, 0x02, 0x02, 0x46]);
            }
        }
    });
    let c = conf(&format!(
        "    location / {{ proxy_pass http://127.0.0.1:{port}; }}\n"
    ));
    let (_, all, json) = probe(&c);
    let h = &target(&json, &format!("127.0.0.1:{port}"))["http"];
    assert_eq!(h["speaks"], "tls", "{all}");
    assert_eq!(h["scheme_mismatch"], true);
    let _ = t.join();
}

#[test]
fn stale_unix_socket() {
    let dir = tempfile::tempdir().unwrap();
    let sock = dir.path().join("app.sock");
    drop(UnixListener::bind(&sock).unwrap());
    let missing = dir.path().join("none.sock");
    let c = conf(&format!(
        "    location /a {{ proxy_pass http://unix:{}; }}\n\
         \x20   location /b {{ fastcgi_pass unix:{}; }}\n",
        sock.display(),
        missing.display()
    ));
    let (code, all, json) = probe(&c);
    assert_eq!(code, Some(0), "{all}");
    let u = &target(&json, &format!("unix:{}", sock.display()))["unix"];
    assert_eq!(u["exists"], true, "{all}");
    assert_eq!(u["is_socket"], true);
    assert_eq!(u["connect"]["state"], "refused");
    let m = &target(&json, &format!("unix:{}", missing.display()))["unix"];
    assert_eq!(m["exists"], false);
    assert_eq!(m["connect"]["state"], "missing");
}
