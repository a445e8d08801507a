//! The HTTP probe: the request nginx would send to a `proxy_pass` target, timed against the
//! effective `proxy_read_timeout`, its response header measured against `proxy_buffer_size`
//! (`ngx_http_proxy_process_status_line` / `..._process_header` in
//! `src/http/modules/ngx_http_proxy_module.c`: a header that does not fit the buffer is
//! `upstream sent too big header`).
//!
//! It also tells which protocol the port speaks: a TLS record (0x15 alert, 0x16 handshake) to a
//! plain request means `http://` to a TLS port; an HTTP answer where nginx uses `https://` means
//! a plain port (the TLS handshake itself is the TLS probe's job).

use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use medic_core::facts::{HttpFact, ProbeRequest, Speaks};
use memchr::memmem;

use super::reach::ms;

/// The limits of one HTTP probe.
#[derive(Clone, Copy, Debug)]
pub struct Limits {
    pub connect_timeout: Duration,
    /// The effective `proxy_read_timeout`.
    pub read_timeout: Duration,
    /// Extra time the probe waits beyond `read_timeout`, so "slower than the timeout" is seen.
    pub margin: Duration,
    /// The effective `proxy_buffer_size`.
    pub buffer_size: u64,
    /// Stop waiting for the first byte after this long even if the read timeout is longer
    /// (`diagnose --probe-wait`); `None`: wait the timeout out.
    pub max_wait: Option<Duration>,
}

/// Sends `request` to `addr` and measures the answer. `http_version` is `1.0` or `1.1`.
pub fn probe(
    addr: SocketAddr,
    request: ProbeRequest,
    http_version: &str,
    tls_expected: bool,
    limits: Limits,
) -> HttpFact {
    let mut fact = HttpFact {
        address: addr.to_string(),
        request,
        tls_expected,
        speaks: Speaks::Silent,
        status: None,
        status_line: None,
        ttfb_ms: None,
        read_timeout_ms: limits.read_timeout.as_millis() as u64,
        ttfb_exceeds_timeout: false,
        gave_up_ms: None,
        header_bytes: None,
        header_complete: false,
        buffer_size: limits.buffer_size,
        header_exceeds_buffer: false,
        scheme_mismatch: false,
        error: None,
    };
    let mut stream = match TcpStream::connect_timeout(&addr, limits.connect_timeout) {
        Ok(s) => s,
        Err(e) => {
            fact.error = Some(format!("connect: {e}"));
            return fact;
        }
    };
    let head = format!(
        "{} {} HTTP/{http_version}\r\nHost: {}\r\nConnection: close\r\nUser-Agent: nginx-medic-probe\r\n\r\n",
        fact.request.method, fact.request.path, fact.request.host
    );
    let _ = stream.set_write_timeout(Some(limits.connect_timeout.max(Duration::from_secs(1))));
    if let Err(e) = stream.write_all(head.as_bytes()) {
        fact.error = Some(format!("send request: {e}"));
        return fact;
    }
    let sent = Instant::now();
    let full = limits.read_timeout + limits.margin;
    let wait = limits.max_wait.map_or(full, |cap| cap.min(full));
    let deadline = sent + wait;
    // Read past the buffer size so "how much too big" is known, but not without bound.
    let cap = (limits.buffer_size as usize * 4).clamp(64 * 1024, 1024 * 1024);
    let mut buf = Vec::with_capacity(16 * 1024);
    let mut chunk = vec![0u8; 16 * 1024];
    loop {
        let now = Instant::now();
        if now >= deadline {
            break;
        }
        let _ = stream.set_read_timeout(Some(deadline - now));
        match stream.read(&mut chunk) {
            Ok(0) => {
                if buf.is_empty() {
                    fact.speaks = Speaks::Nothing;
                }
                break;
            }
            Ok(n) => {
                if buf.is_empty() {
                    let ttfb = sent.elapsed();
                    fact.ttfb_ms = Some(ms(ttfb));
                    fact.ttfb_exceeds_timeout = ttfb > limits.read_timeout;
                }
                buf.extend_from_slice(&chunk[..n]);
                if header_end(&buf).is_some() || buf.len() >= cap || !buf.starts_with(b"H") {
                    break;
                }
            }
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => break,
            Err(e) => {
                fact.error = Some(format!("read response: {e}"));
                if buf.is_empty() {
                    fact.speaks = Speaks::Nothing;
                }
                break;
            }
        }
    }
    if buf.is_empty() {
        if fact.speaks == Speaks::Silent {
            if wait < full {
                fact.gave_up_ms = Some(wait.as_millis() as u64);
            } else {
                fact.ttfb_exceeds_timeout = true;
            }
        }
        // `http://` to a TLS port: a TLS server closes on (or ignores) a plain request; ask it
        // in its own protocol to tell it from a backend that just closes.
        if fact.speaks == Speaks::Nothing
            && !tls_expected
            && speaks_tls(addr, limits.connect_timeout)
        {
            fact.speaks = Speaks::Tls;
            fact.scheme_mismatch = true;
        }
        return fact;
    }
    fact.speaks = classify(&buf);
    if fact.speaks == Speaks::Other && !tls_expected && speaks_tls(addr, limits.connect_timeout) {
        fact.speaks = Speaks::Tls;
    }
    if fact.speaks == Speaks::Http {
        let line_end = memchr::memchr(b'\n', &buf).unwrap_or(buf.len().min(200));
        let line = String::from_utf8_lossy(&buf[..line_end])
            .trim_end()
            .to_string();
        fact.status = line.split(' ').nth(1).and_then(|s| s.parse().ok());
        fact.status_line = Some(line);
        match header_end(&buf) {
            Some(end) => {
                fact.header_bytes = Some(end as u64);
                fact.header_complete = true;
            }
            None => fact.header_bytes = Some(buf.len() as u64),
        }
        fact.header_exceeds_buffer = fact.header_bytes.is_some_and(|b| b > limits.buffer_size);
    }
    // nginx's own answer to plain HTTP on an `ssl` port (`ngx_http_request.c`).
    let plain_to_tls = memmem::find(&buf, b"plain HTTP request was sent to HTTPS port").is_some();
    if plain_to_tls {
        fact.speaks = Speaks::Tls;
    }
    fact.scheme_mismatch = matches!(
        (tls_expected, fact.speaks),
        (false, Speaks::Tls) | (true, Speaks::Http)
    );
    fact
}

/// What the first bytes say the port speaks.
/// Whether `addr` answers a TLS ClientHello with a TLS record (a ServerHello, or an alert: either
/// way the port speaks TLS). The hello is a fixed TLS 1.2 one with two common suites; no
/// handshake is completed.
fn speaks_tls(addr: SocketAddr, timeout: Duration) -> bool {
    const HELLO: [u8; 52] = [
        0x16, 0x03, 0x01, 0x00, 0x2f, // record: handshake, 47 bytes
        0x01, 0x00, 0x00, 0x2b, // ClientHello, 43 bytes
        0x03, 0x03, // TLS 1.2
        0x6e, 0x67, 0x69, 0x6e, 0x78, 0x2d, 0x6d, 0x65, 0x64, 0x69, 0x63, 0x2d, 0x70, 0x72, 0x6f,
        0x62, 0x65, 0x2d, 0x72, 0x61, 0x6e, 0x64, 0x6f, 0x6d, 0x2d, 0x2d, 0x2d, 0x2d, 0x2d, 0x2d,
        0x2d, 0x2d, // 32 bytes of "random"
        0x00, // no session id
        0x00, 0x04, 0xc0, 0x2f, 0x00, 0x9c, // ECDHE-RSA-AES128-GCM-SHA256, AES128-GCM-SHA256
        0x01, 0x00, // no compression
    ];
    let Ok(mut s) = TcpStream::connect_timeout(&addr, timeout) else {
        return false;
    };
    let wait = timeout.clamp(Duration::from_millis(200), Duration::from_secs(2));
    let _ = s.set_write_timeout(Some(wait));
    let _ = s.set_read_timeout(Some(wait));
    if s.write_all(&HELLO).is_err() {
        return false;
    }
    let mut first = [0u8; 5];
    match s.read(&mut first) {
        Ok(n) if n > 0 => classify(&first[..n]) == Speaks::Tls,
        _ => false,
    }
}

pub fn classify(buf: &[u8]) -> Speaks {
    match buf.first() {
        None => Speaks::Nothing,
        // TLS record types: 0x15 alert, 0x16 handshake; then version 3.x.
        Some(0x15 | 0x16) if !matches!(buf.get(1), Some(&v) if v != 3) => Speaks::Tls,
        // FastCGI record: version 1, type 1..=11.
        Some(1) if buf.get(1).is_some_and(|&t| (1..=11).contains(&t)) => Speaks::Fastcgi,
        _ if buf.starts_with(b"HTTP/") => Speaks::Http,
        _ => Speaks::Other,
    }
}

/// Bytes up to and including the blank line ending the header.
fn header_end(buf: &[u8]) -> Option<usize> {
    let crlf = memmem::find(buf, b"\r\n\r\n").map(|i| i + 4);
    let lf = memmem::find(buf, b"\n\n").map(|i| i + 2);
    match (crlf, lf) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds() {
        assert_eq!(classify(b"HTTP/1.1 200 OK\r\n"), Speaks::Http);
        assert_eq!(classify(&[0x15, 3, 1, 0, 2]), Speaks::Tls);
        assert_eq!(classify(&[1, 6, 0, 1]), Speaks::Fastcgi);
        assert_eq!(classify(b"SSH-2.0"), Speaks::Other);
        assert_eq!(header_end(b"HTTP/1.1 200 OK\r\nA: b\r\n\r\nbody"), Some(25));
    }
}
