//! `medic-upstream`: a tiny HTTP application server in its own process, for the scenarios where
//! who listens matters (the probes read `/proc` for the listening program, its PID and start
//! time, so the backend must not be the test process itself).
//!
//! ```text
//! medic-upstream --listen ADDR [--listen ADDR]... [--status N] [--delay-ms MS]
//! ```
//!
//! - `--listen 127.0.0.1:8080`, `--listen [::1]:8080`, `--listen 127.0.0.2:8080` (repeatable);
//! - `--status N`: the status of every answer (default 200);
//! - `--delay-ms MS`: wait that long after the request before answering (a slow backend).
//!
//! Each connection gets its own thread: the request head is read, a small response with
//! `Connection: close` is written, the connection is closed. It runs until killed; the scenarios
//! stop it by PID (it is their child).

use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::process::ExitCode;
use std::time::Duration;

fn main() -> ExitCode {
    let mut listen: Vec<SocketAddr> = Vec::new();
    let mut status: u16 = 200;
    let mut delay = Duration::ZERO;
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--listen" => {
                let Some(v) = args.next() else {
                    return usage("--listen needs ADDR:PORT");
                };
                match v.parse() {
                    Ok(addr) => listen.push(addr),
                    Err(e) => return usage(&format!("--listen {v}: {e}")),
                }
            }
            "--status" => {
                let Some(v) = args.next() else {
                    return usage("--status needs a number");
                };
                match v.parse() {
                    Ok(n) if (100..=999).contains(&n) => status = n,
                    _ => return usage(&format!("--status {v}: not an HTTP status")),
                }
            }
            "--delay-ms" => {
                let Some(v) = args.next() else {
                    return usage("--delay-ms needs a number");
                };
                match v.parse() {
                    Ok(ms) => delay = Duration::from_millis(ms),
                    Err(e) => return usage(&format!("--delay-ms {v}: {e}")),
                }
            }
            other => return usage(&format!("unknown argument {other:?}")),
        }
    }
    if listen.is_empty() {
        return usage("at least one --listen ADDR:PORT");
    }
    let mut threads = Vec::new();
    for addr in listen {
        let l = match TcpListener::bind(addr) {
            Ok(l) => l,
            Err(e) => {
                eprintln!("medic-upstream: bind {addr}: {e}");
                return ExitCode::from(1);
            }
        };
        println!("medic-upstream: listening on {addr}");
        threads.push(std::thread::spawn(move || serve(&l, status, delay)));
    }
    for t in threads {
        let _ = t.join();
    }
    ExitCode::SUCCESS
}

fn usage(why: &str) -> ExitCode {
    eprintln!("medic-upstream: {why}\nusage: medic-upstream --listen ADDR [--listen ADDR]... [--status N] [--delay-ms MS]");
    ExitCode::from(2)
}

fn serve(l: &TcpListener, status: u16, delay: Duration) {
    for conn in l.incoming() {
        let Ok(s) = conn else { continue };
        std::thread::spawn(move || answer(s, status, delay));
    }
}

fn answer(mut s: TcpStream, status: u16, delay: Duration) {
    let _ = s.set_read_timeout(Some(Duration::from_secs(5)));
    let _ = s.set_write_timeout(Some(Duration::from_secs(5)));
    let mut buf = Vec::with_capacity(1024);
    let mut chunk = [0u8; 1024];
    loop {
        match s.read(&mut chunk) {
            Ok(0) => return,
            Ok(n) => {
                buf.extend_from_slice(&chunk[..n]);
                if buf.windows(4).any(|w| w == b"\r\n\r\n") {
                    break;
                }
            }
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(_) => return,
        }
    }
    std::thread::sleep(delay);
    let body = format!("medic-upstream {status}\n");
    let resp = format!(
        "HTTP/1.1 {status} {}\r\nContent-Type: text/plain\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        medic_e2e::stubs::reason(status),
        body.len()
    );
    let _ = s.write_all(resp.as_bytes());
}
