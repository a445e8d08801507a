//! Upstream-side stubs: loopback servers that misbehave in one precise way each.
//!
//! Each TCP stub runs one accept thread and handles connections in turn (the scenarios send one
//! request at a time). What nginx writes for each behaviour, with nginx 1.22.1 on Linux:
//!
//! | behaviour | nginx error-log message |
//! |---|---|
//! | [`Behavior::Hang`] | `upstream timed out (110: Connection timed out) while reading response header from upstream` |
//! | [`Behavior::Reset`] | `recv() failed (104: Connection reset by peer) while reading response header from upstream` |
//! | [`Behavior::Close`] | `upstream prematurely closed connection while reading response header from upstream` |
//! | [`Behavior::BigHeader`] | `upstream sent too big header while reading response header from upstream` |
//! | [`Behavior::GrowingHeader`] | the same, once the header outgrows the buffer |
//! | [`Behavior::Garbage`] | `upstream sent no valid HTTP/1.0 header while reading response header from upstream` |
//! | [`Behavior::Status`] | nothing: a valid response, logged in the access log with its `$upstream_status` |
//!
//! (`src/http/ngx_http_upstream.c` and `src/http/modules/ngx_http_proxy_module.c`.)

use std::fs;
use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::UnixListener;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

/// What a TCP stub does with each connection after reading the request head.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Behavior {
    /// A small, valid `200 OK`.
    Ok,
    /// Never answers; keeps the connection open until the stub stops.
    Hang,
    /// Closes with SO_LINGER 0, so the kernel sends RST instead of FIN.
    Reset,
    /// Closes cleanly (FIN) without a byte of response.
    Close,
    /// `200 OK` with one header line of this many bytes.
    BigHeader(usize),
    /// As [`Behavior::BigHeader`], but the header line of the k-th response of the stub
    /// (k = 0, 1, 2, ...) is this many bytes times 2^k, capped at [`GROWING_HEADER_CAP`]: an
    /// upstream whose cookies pile up, so a buffer raised above the header measured once is
    /// outgrown by the next answers.
    GrowingHeader(usize),
    /// `HELLO\r\n`, then FIN: not HTTP at all. nginx 1.22 logs `upstream sent no valid HTTP/1.0
    /// header` and, without a cache, passes the bytes on as an HTTP/0.9 body (no status line).
    Garbage,
    /// A small, valid response with this status (`503 Service Unavailable`: the 5xx is the
    /// backend's own, nginx only relays it).
    Status(u16),
    /// `200 OK` with a body of this many bytes (more than nginx's buffers: it goes to a temp
    /// file under `proxy_temp_path`).
    BigBody(usize),
    /// `200 OK` announcing 1 MB, then 16 KB of it and a RST: the failure comes after the
    /// header, so the client has its 200 already and gets a body cut short.
    CutBody,
}

/// The largest header line [`Behavior::GrowingHeader`] sends: 60 KB, under the 64 KB nginx-medic's
/// HTTP probe reads at most against a small buffer, so every header is measured whole.
pub const GROWING_HEADER_CAP: usize = 60 << 10;

/// A TCP server on 127.0.0.1 with one [`Behavior`], stopped on drop.
pub struct TcpStub {
    addr: SocketAddr,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl TcpStub {
    pub fn start(behavior: Behavior) -> TcpStub {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind a stub upstream");
        let addr = listener.local_addr().expect("stub local_addr");
        let stop = Arc::new(AtomicBool::new(false));
        let flag = Arc::clone(&stop);
        let thread = std::thread::Builder::new()
            .name(format!("stub-{behavior:?}-{}", addr.port()))
            .spawn(move || serve(&listener, behavior, &flag))
            .expect("spawn a stub thread");
        TcpStub {
            addr,
            stop,
            thread: Some(thread),
        }
    }

    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    /// `127.0.0.1:PORT`, as nginx names the peer.
    pub fn addr(&self) -> String {
        self.addr.to_string()
    }
}

impl Drop for TcpStub {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // Wake the blocking accept(); the thread sees the flag and returns.
        let _ = TcpStream::connect_timeout(&self.addr, Duration::from_secs(1));
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn serve(listener: &TcpListener, behavior: Behavior, stop: &AtomicBool) {
    // Connections of `Hang` are held here until the stub stops.
    let mut held = Vec::new();
    // Responses sent so far (`GrowingHeader`'s k): one thread serves the stub's connections in
    // turn, so a local count is the stub's own. Connections that never send a request (a
    // connect-only probe) do not count.
    let mut answered: u32 = 0;
    for conn in listener.incoming() {
        if stop.load(Ordering::SeqCst) {
            break;
        }
        let Ok(mut s) = conn else { continue };
        let _ = s.set_read_timeout(Some(Duration::from_secs(5)));
        let _ = s.set_write_timeout(Some(Duration::from_secs(5)));
        if !read_head(&mut s) {
            continue;
        }
        match behavior {
            Behavior::Ok => {
                let _ = s.write_all(
                    b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 3\r\nConnection: close\r\n\r\nok\n",
                );
            }
            Behavior::Hang => held.push(s),
            Behavior::Reset => {
                // SO_LINGER with a zero timeout: close() discards the socket and sends RST.
                let _ = socket2::SockRef::from(&s).set_linger(Some(Duration::ZERO));
            }
            Behavior::Close => {
                let _ = s.shutdown(std::net::Shutdown::Both);
            }
            Behavior::BigHeader(n) => {
                let mut resp = Vec::with_capacity(n + 128);
                resp.extend_from_slice(b"HTTP/1.1 200 OK\r\nX-Big: ");
                resp.resize(resp.len() + n, b'a');
                resp.extend_from_slice(b"\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
                // nginx stops reading at its buffer size and closes: a write error is expected.
                let _ = s.write_all(&resp);
            }
            Behavior::GrowingHeader(start) => {
                let n = start
                    .saturating_mul(1usize.checked_shl(answered).unwrap_or(usize::MAX))
                    .min(GROWING_HEADER_CAP);
                answered = answered.saturating_add(1);
                let mut resp = Vec::with_capacity(n + 128);
                resp.extend_from_slice(b"HTTP/1.1 200 OK\r\nX-Big: ");
                resp.resize(resp.len() + n, b'a');
                resp.extend_from_slice(b"\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
                // As BigHeader: nginx may stop reading at its buffer size.
                let _ = s.write_all(&resp);
            }
            Behavior::Garbage => {
                let _ = s.write_all(b"HELLO\r\n");
                let _ = s.shutdown(std::net::Shutdown::Both);
            }
            Behavior::BigBody(n) => {
                let mut resp = format!(
                    "HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\nContent-Length: {n}\r\nConnection: close\r\n\r\n"
                )
                .into_bytes();
                resp.resize(resp.len() + n, b'x');
                // nginx may stop reading when its temp file fails: a write error is expected.
                let _ = s.write_all(&resp);
            }
            Behavior::CutBody => {
                let mut resp = b"HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\nContent-Length: 1000000\r\nConnection: close\r\n\r\n".to_vec();
                resp.resize(resp.len() + (16 << 10), b'x');
                let _ = s.write_all(&resp);
                let _ = s.flush();
                std::thread::sleep(Duration::from_millis(50));
                let _ = socket2::SockRef::from(&s).set_linger(Some(Duration::ZERO));
            }
            Behavior::Status(code) => {
                let resp = format!(
                    "HTTP/1.1 {code} {}\r\nContent-Type: text/plain\r\nContent-Length: 6\r\nConnection: close\r\n\r\nstub!\n",
                    reason(code)
                );
                let _ = s.write_all(resp.as_bytes());
            }
        }
    }
}

/// The reason phrase of the statuses the stubs send (any other: `Status`).
pub fn reason(code: u16) -> &'static str {
    match code {
        200 => "OK",
        404 => "Not Found",
        500 => "Internal Server Error",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        504 => "Gateway Timeout",
        _ => "Status",
    }
}

/// Reads until the end of the request head (`\r\n\r\n`); false if the peer went away first.
///
/// The stubs answer only after nginx has sent the whole request, so nginx is waiting for the
/// response header when the stub misbehaves, and logs `while reading response header`.
fn read_head(s: &mut TcpStream) -> bool {
    let mut buf = Vec::with_capacity(1024);
    let mut chunk = [0u8; 1024];
    loop {
        match s.read(&mut chunk) {
            Ok(0) => return false,
            Ok(n) => {
                buf.extend_from_slice(&chunk[..n]);
                if buf.windows(4).any(|w| w == b"\r\n\r\n") {
                    return true;
                }
            }
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(_) => return false,
        }
    }
}

/// A listening unix socket that nobody may connect to: mode 000.
///
/// `connect(2)` on a unix socket needs write permission on the socket file. As root the nginx
/// workers run as `nobody` (see [`crate::nginx::config`]) and get EACCES; as any other user
/// mode 000 denies the owner too.
pub struct DeniedSocket {
    path: PathBuf,
    _listener: UnixListener,
}

impl DeniedSocket {
    pub fn bind(path: &Path) -> DeniedSocket {
        let listener = UnixListener::bind(path)
            .unwrap_or_else(|e| panic!("bind unix socket {}: {e}", path.display()));
        fs::set_permissions(path, fs::Permissions::from_mode(0o000))
            .unwrap_or_else(|e| panic!("chmod 000 {}: {e}", path.display()));
        DeniedSocket {
            path: path.to_path_buf(),
            _listener: listener,
        }
    }

    /// `unix:/path`, as nginx names the peer.
    pub fn addr(&self) -> String {
        format!("unix:{}", self.path.display())
    }
}

impl Drop for DeniedSocket {
    fn drop(&mut self) {
        let _ = fs::remove_file(&self.path);
    }
}
