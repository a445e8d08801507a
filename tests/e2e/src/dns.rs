//! A stub DNS server on a loopback address that answers NXDOMAIN to every question.
//!
//! nginx's own `resolver` (per request, for `proxy_pass` with variables) then logs
//! `NAME could not be resolved (3: Host not found)`; glibc's resolver (nginx reading
//! `proxy_pass http://NAME:PORT;` at startup, in a `medic-isolate` namespace whose
//! `/etc/resolv.conf` names this server) makes nginx say `host not found in upstream`.
//!
//! One thread answers UDP queries until the stub is dropped. Every question's name is recorded,
//! so a scenario can check that its nginx really asked.

use std::net::{SocketAddr, UdpSocket};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

/// A UDP name server answering NXDOMAIN (RCODE 3) to everything, stopped on drop.
pub struct StubDns {
    addr: SocketAddr,
    stop: Arc<AtomicBool>,
    asked: Arc<Mutex<Vec<String>>>,
    thread: Option<JoinHandle<()>>,
}

impl StubDns {
    /// On 127.0.0.1, a port the kernel picks.
    pub fn start() -> StubDns {
        StubDns::bind("127.0.0.1:0".parse().expect("a socket address"))
            .unwrap_or_else(|e| panic!("bind the stub DNS server on 127.0.0.1: {e}"))
    }

    /// On `addr` (e.g. `127.53.0.1:53`, which needs root for the port).
    pub fn bind(addr: SocketAddr) -> std::io::Result<StubDns> {
        let sock = UdpSocket::bind(addr)?;
        sock.set_read_timeout(Some(Duration::from_millis(50)))?;
        let addr = sock.local_addr()?;
        let stop = Arc::new(AtomicBool::new(false));
        let asked = Arc::new(Mutex::new(Vec::new()));
        let (flag, log) = (Arc::clone(&stop), Arc::clone(&asked));
        let thread = std::thread::Builder::new()
            .name(format!("stub-dns-{addr}"))
            .spawn(move || serve(&sock, &flag, &log))?;
        Ok(StubDns {
            addr,
            stop,
            asked,
            thread: Some(thread),
        })
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    /// The names asked so far, in order (one per query: A and AAAA count twice).
    pub fn asked(&self) -> Vec<String> {
        self.asked.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }
}

impl Drop for StubDns {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn serve(sock: &UdpSocket, stop: &AtomicBool, asked: &Mutex<Vec<String>>) {
    let mut buf = [0u8; 1500];
    while !stop.load(Ordering::SeqCst) {
        let Ok((n, from)) = sock.recv_from(&mut buf) else {
            continue;
        };
        let Some((name, reply)) = nxdomain(&buf[..n]) else {
            continue;
        };
        asked.lock().unwrap_or_else(|p| p.into_inner()).push(name);
        let _ = sock.send_to(&reply, from);
    }
}

/// The question's name and an NXDOMAIN reply to `query` (RFC 1035 §4.1), or `None` when it is
/// not a standard query with one question.
fn nxdomain(query: &[u8]) -> Option<(String, Vec<u8>)> {
    if query.len() < 12 || query[2] & 0x80 != 0 || u16::from_be_bytes([query[4], query[5]]) != 1 {
        return None;
    }
    let mut i = 12;
    let mut labels = Vec::new();
    loop {
        let len = usize::from(*query.get(i)?);
        if len == 0 {
            break;
        }
        if len > 63 {
            return None;
        }
        labels.push(String::from_utf8_lossy(query.get(i + 1..i + 1 + len)?).into_owned());
        i += 1 + len;
    }
    // The root label, QTYPE and QCLASS.
    let end = i + 1 + 4;
    let question = query.get(12..end)?;
    let mut r = Vec::with_capacity(end);
    r.extend_from_slice(&query[..2]);
    // QR=1, the query's opcode and RD; RA=1, RCODE=3 (NXDOMAIN).
    r.push(0x80 | (query[2] & 0x79));
    r.push(0x83);
    r.extend_from_slice(&[0, 1, 0, 0, 0, 0, 0, 0]);
    r.extend_from_slice(question);
    Some((labels.join("."), r))
}
