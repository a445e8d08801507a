//! A minimal HTTP/1.1 client: enough to make nginx handle one request and to read its status.
//!
//! std::net rather than `curl`, so the suite needs one program fewer and the User-Agent that
//! lands in the access log is ours.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

pub const USER_AGENT: &str = "medic-e2e/0.1";

/// Sends `GET path` to 127.0.0.1:port and returns the response status.
///
/// Panics if nginx does not answer within `timeout` (nginx always answers, with a 5xx if need
/// be; silence means the staging is broken).
pub fn get(port: u16, path: &str, timeout: Duration) -> u16 {
    let mut s = TcpStream::connect(("127.0.0.1", port))
        .unwrap_or_else(|e| panic!("connect to nginx on 127.0.0.1:{port}: {e}"));
    s.set_read_timeout(Some(timeout)).expect("set_read_timeout");
    s.set_write_timeout(Some(timeout))
        .expect("set_write_timeout");
    let req = format!(
        "GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUser-Agent: {USER_AGENT}\r\nConnection: close\r\n\r\n"
    );
    s.write_all(req.as_bytes())
        .unwrap_or_else(|e| panic!("send GET {path}: {e}"));
    let mut resp = Vec::new();
    // Read to EOF (Connection: close) so nginx finishes the request, and logs it, before we go on.
    if let Err(e) = s.read_to_end(&mut resp) {
        panic!("read the answer to GET {path} from 127.0.0.1:{port}: {e}");
    }
    let head = String::from_utf8_lossy(&resp[..resp.len().min(64)]).into_owned();
    let mut parts = head.split(' ');
    match (parts.next(), parts.next().and_then(|c| c.parse().ok())) {
        (Some(v), Some(code)) if v.starts_with("HTTP/1.") => code,
        _ => panic!("GET {path}: not an HTTP response: {head:?}"),
    }
}
