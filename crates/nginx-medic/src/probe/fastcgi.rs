//! The FastCGI probe: one real request to a `fastcgi_pass` target, records written by hand
//! (FastCGI 1.0 specification: `FCGI_BEGIN_REQUEST`, `FCGI_PARAMS`, `FCGI_STDIN`).
//!
//! The script asked for never exists (`/nonexistent/nginx-medic-probe.php`): running one of the
//! application's scripts could change something, and a probe must not. A live PHP-FPM pool
//! answers such a request at once with `Primary script unknown` on stderr and
//! `Status: 404 Not Found` / `File not found.` on stdout, which proves the pool has a free child
//! and answers; a pool whose children are all busy (or hung) sends nothing within
//! `fastcgi_read_timeout`.

use std::io::{ErrorKind, Read, Write};
use std::time::{Duration, Instant};

use medic_core::facts::{FastcgiFact, ProbeRequest, Speaks};

use super::http::classify;
use super::reach::ms;

/// The script the probe asks for: absent everywhere.
pub const PROBE_SCRIPT: &str = "/nonexistent/nginx-medic-probe.php";

const VERSION: u8 = 1;
const BEGIN_REQUEST: u8 = 1;
const END_REQUEST: u8 = 3;
const PARAMS: u8 = 4;
const STDIN: u8 = 5;
const STDOUT: u8 = 6;
const STDERR: u8 = 7;
const RESPONDER: u16 = 1;
const REQUEST_ID: u16 = 1;

/// Where to send the request.
pub enum Addr<'a> {
    Tcp(std::net::SocketAddr),
    Unix(&'a str),
}

/// A connected stream of either kind.
enum Stream {
    Tcp(std::net::TcpStream),
    Unix(std::os::unix::net::UnixStream),
}

impl Stream {
    fn set_read_timeout(&self, t: Duration) -> std::io::Result<()> {
        match self {
            Stream::Tcp(s) => s.set_read_timeout(Some(t)),
            Stream::Unix(s) => s.set_read_timeout(Some(t)),
        }
    }
    fn set_write_timeout(&self, t: Duration) -> std::io::Result<()> {
        match self {
            Stream::Tcp(s) => s.set_write_timeout(Some(t)),
            Stream::Unix(s) => s.set_write_timeout(Some(t)),
        }
    }
}

impl Read for Stream {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        match self {
            Stream::Tcp(s) => s.read(buf),
            Stream::Unix(s) => s.read(buf),
        }
    }
}

impl Write for Stream {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        match self {
            Stream::Tcp(s) => s.write(buf),
            Stream::Unix(s) => s.write(buf),
        }
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Appends one record (content below 64 KiB, no padding).
fn record(out: &mut Vec<u8>, kind: u8, content: &[u8]) {
    let len = content.len() as u16;
    out.extend_from_slice(&[VERSION, kind]);
    out.extend_from_slice(&REQUEST_ID.to_be_bytes());
    out.extend_from_slice(&len.to_be_bytes());
    out.extend_from_slice(&[0, 0]);
    out.extend_from_slice(content);
}

/// A name-value pair: lengths below 128 take one byte, others four with the high bit set.
fn pair(out: &mut Vec<u8>, name: &str, value: &str) {
    for len in [name.len(), value.len()] {
        if len < 128 {
            out.push(len as u8);
        } else {
            out.extend_from_slice(&((len as u32) | 0x8000_0000).to_be_bytes());
        }
    }
    out.extend_from_slice(name.as_bytes());
    out.extend_from_slice(value.as_bytes());
}

/// The bytes of a whole request: begin, params, empty params, empty stdin.
pub fn request_bytes(req: &ProbeRequest) -> Vec<u8> {
    let mut params = Vec::new();
    for (n, v) in [
        ("GATEWAY_INTERFACE", "CGI/1.1"),
        ("SERVER_SOFTWARE", "nginx-medic-probe"),
        ("REQUEST_METHOD", req.method.as_str()),
        ("SCRIPT_FILENAME", req.path.as_str()),
        ("SCRIPT_NAME", "/nginx-medic-probe.php"),
        ("REQUEST_URI", "/nginx-medic-probe.php"),
        ("DOCUMENT_URI", "/nginx-medic-probe.php"),
        ("QUERY_STRING", ""),
        ("SERVER_PROTOCOL", "HTTP/1.1"),
        ("SERVER_NAME", req.host.as_str()),
        ("HTTP_HOST", req.host.as_str()),
        ("REMOTE_ADDR", "127.0.0.1"),
        ("CONTENT_LENGTH", "0"),
    ] {
        pair(&mut params, n, v);
    }
    let mut out = Vec::with_capacity(params.len() + 64);
    let mut begin = Vec::with_capacity(8);
    begin.extend_from_slice(&RESPONDER.to_be_bytes());
    begin.extend_from_slice(&[0, 0, 0, 0, 0, 0]); // flags 0: close when done
    record(&mut out, BEGIN_REQUEST, &begin);
    record(&mut out, PARAMS, &params);
    record(&mut out, PARAMS, &[]);
    record(&mut out, STDIN, &[]);
    out
}

/// A non-blocking connect (a full backlog is EAGAIN, not a wait), then a blocking stream.
fn unix_connect(path: &str) -> std::io::Result<std::os::unix::net::UnixStream> {
    let sock = socket2::Socket::new(socket2::Domain::UNIX, socket2::Type::STREAM, None)?;
    sock.set_nonblocking(true)?;
    sock.connect(&socket2::SockAddr::unix(path)?)?;
    sock.set_nonblocking(false)?;
    Ok(std::os::fd::OwnedFd::from(sock).into())
}

/// Sends the probe request and reads the answer within `read_timeout + margin` (or
/// `max_wait`, when shorter).
pub fn probe(
    addr: Addr<'_>,
    request: ProbeRequest,
    connect_timeout: Duration,
    read_timeout: Duration,
    margin: Duration,
    max_wait: Option<Duration>,
) -> FastcgiFact {
    let mut fact = FastcgiFact {
        address: match &addr {
            Addr::Tcp(a) => a.to_string(),
            Addr::Unix(p) => format!("unix:{p}"),
        },
        request,
        speaks: Speaks::Silent,
        answered: false,
        status: None,
        stdout_head: None,
        stderr: None,
        ttfb_ms: None,
        read_timeout_ms: read_timeout.as_millis() as u64,
        ttfb_exceeds_timeout: false,
        gave_up_ms: None,
        error: None,
    };
    let connected = match addr {
        Addr::Tcp(a) => std::net::TcpStream::connect_timeout(&a, connect_timeout).map(Stream::Tcp),
        Addr::Unix(p) => unix_connect(p).map(Stream::Unix),
    };
    let mut stream = match connected {
        Ok(s) => s,
        Err(e) => {
            fact.error = Some(format!("connect: {e}"));
            return fact;
        }
    };
    let _ = stream.set_write_timeout(connect_timeout.max(Duration::from_secs(1)));
    if let Err(e) = stream.write_all(&request_bytes(&fact.request)) {
        fact.error = Some(format!("send request: {e}"));
        return fact;
    }
    let sent = Instant::now();
    let full = read_timeout + margin;
    let wait = max_wait.map_or(full, |cap| cap.min(full));
    let deadline = sent + wait;
    let mut buf = Vec::with_capacity(4096);
    let mut chunk = [0u8; 8192];
    let mut stdout = Vec::new();
    let mut stderr = Vec::new();
    let mut pos = 0;
    'read: loop {
        let now = Instant::now();
        if now >= deadline {
            break;
        }
        let _ = stream.set_read_timeout(deadline - now);
        match stream.read(&mut chunk) {
            Ok(0) => break,
            Ok(n) => {
                if buf.is_empty() {
                    let t = sent.elapsed();
                    fact.ttfb_ms = Some(ms(t));
                    fact.ttfb_exceeds_timeout = t > read_timeout;
                    fact.speaks = classify(&chunk[..n]);
                    if fact.speaks != Speaks::Fastcgi {
                        buf.extend_from_slice(&chunk[..n]);
                        break;
                    }
                }
                buf.extend_from_slice(&chunk[..n]);
                // Walk the complete records received so far.
                while buf.len() >= pos + 8 {
                    let kind = buf[pos + 1];
                    let len = u16::from_be_bytes([buf[pos + 4], buf[pos + 5]]) as usize;
                    let pad = buf[pos + 6] as usize;
                    if buf.len() < pos + 8 + len + pad {
                        break;
                    }
                    let content = &buf[pos + 8..pos + 8 + len];
                    match kind {
                        STDOUT if stdout.len() < 4096 => stdout.extend_from_slice(content),
                        STDERR if stderr.len() < 4096 => stderr.extend_from_slice(content),
                        END_REQUEST => {
                            fact.answered = true;
                            break 'read;
                        }
                        _ => {}
                    }
                    pos += 8 + len + pad;
                }
            }
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => break,
            Err(e) => {
                fact.error = Some(format!("read response: {e}"));
                break;
            }
        }
    }
    if buf.is_empty() {
        if fact.error.is_none() && Instant::now() >= deadline {
            if wait < full {
                fact.gave_up_ms = Some(wait.as_millis() as u64);
            } else {
                fact.ttfb_exceeds_timeout = true;
            }
        } else if fact.error.is_none() {
            fact.speaks = Speaks::Nothing;
        }
        return fact;
    }
    if fact.speaks != Speaks::Fastcgi {
        fact.stdout_head = Some(String::from_utf8_lossy(&buf[..buf.len().min(200)]).into_owned());
        return fact;
    }
    if !stdout.is_empty() {
        let text = String::from_utf8_lossy(&stdout).into_owned();
        fact.status = text
            .lines()
            .take_while(|l| !l.trim().is_empty())
            .find_map(|l| {
                let (k, v) = l.split_once(':')?;
                k.eq_ignore_ascii_case("status")
                    .then(|| v.split_whitespace().next()?.parse().ok())?
            })
            .or(Some(200));
        fact.stdout_head = Some(text.chars().take(512).collect());
    }
    if !stderr.is_empty() {
        fact.stderr = Some(String::from_utf8_lossy(&stderr).trim_end().to_string());
    }
    if !fact.answered && fact.error.is_none() {
        fact.error = Some("the connection ended before FCGI_END_REQUEST".to_string());
    }
    fact
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records() {
        let mut out = Vec::new();
        pair(&mut out, "A", &"x".repeat(200));
        assert_eq!(&out[..5], &[1, 0x80, 0, 0, 200]);
        let req = ProbeRequest {
            method: "GET".into(),
            host: "h".into(),
            path: PROBE_SCRIPT.into(),
            host_from: String::new(),
        };
        let b = request_bytes(&req);
        assert_eq!(&b[..8], &[1, BEGIN_REQUEST, 0, 1, 0, 8, 0, 0]);
        // Ends with the empty STDIN record.
        assert_eq!(&b[b.len() - 8..], &[1, STDIN, 0, 1, 0, 0, 0, 0]);
    }
}
