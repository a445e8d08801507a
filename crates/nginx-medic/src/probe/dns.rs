//! Name resolution through the config's `resolver`, the way nginx does it at run time.
//!
//! nginx resolves a `proxy_pass` host that holds variables per request, with its own DNS client
//! (`src/core/ngx_resolver.c`): A (and AAAA unless `ipv6=off`) queries over UDP to the
//! `resolver` addresses, `resolver_timeout` per query. Its failures are what the error log shows:
//! `X could not be resolved (3: Host not found)`, `(2: Server failure)`,
//! `(110: Operation timed out)`. A dozen lines of DNS wire format are enough to ask the same
//! question the same way; the system resolver would answer a different one (`/etc/hosts`,
//! search domains), which is not what nginx sees.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, UdpSocket};
use std::time::{Duration, Instant};

const TYPE_A: u16 = 1;
const TYPE_AAAA: u16 = 28;

/// What one resolver said about one name.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Answer {
    Addresses(Vec<IpAddr>),
    /// RCODE 3.
    NotFound,
    /// Any other non-zero RCODE (2: server failure, 5: refused, ...).
    Failure(u8),
    /// No answer within the timeout.
    TimedOut,
    /// The resolver could not be asked (socket error) or answered garbage.
    Error(String),
}

impl Answer {
    /// nginx's wording for a failure (`ngx_resolver_strerror`).
    pub fn nginx_error(&self, name: &str) -> Option<String> {
        let why = match self {
            Answer::Addresses(a) if a.is_empty() => "3: Host not found".to_string(),
            Answer::Addresses(_) => return None,
            Answer::NotFound => "3: Host not found".to_string(),
            Answer::Failure(2) => "2: Server failure".to_string(),
            Answer::Failure(5) => "5: Operation refused".to_string(),
            Answer::Failure(c) => format!("{c}: Unknown error"),
            Answer::TimedOut => "110: Operation timed out".to_string(),
            Answer::Error(e) => format!("resolver error: {e}"),
        };
        Some(format!("{name} could not be resolved ({why})"))
    }
}

/// Asks `server` for the A (and, with `ipv6`, AAAA) records of `name`, within `timeout` in all.
pub fn resolve(server: SocketAddr, name: &str, ipv6: bool, timeout: Duration) -> Answer {
    let deadline = Instant::now() + timeout;
    let a = query(server, name, TYPE_A, deadline);
    if !ipv6 {
        return a;
    }
    let aaaa = query(server, name, TYPE_AAAA, deadline);
    match (a, aaaa) {
        (Answer::Addresses(mut v4), Answer::Addresses(v6)) => {
            v4.extend(v6);
            Answer::Addresses(v4)
        }
        (Answer::Addresses(v4), _) if !v4.is_empty() => Answer::Addresses(v4),
        (_, Answer::Addresses(v6)) if !v6.is_empty() => Answer::Addresses(v6),
        (a, _) => a,
    }
}

fn query(server: SocketAddr, name: &str, qtype: u16, deadline: Instant) -> Answer {
    let id = (std::process::id() as u16) ^ (qtype.wrapping_mul(0x9e37)) ^ (name.len() as u16);
    let Some(packet) = build_query(id, name, qtype) else {
        return Answer::Error(format!("{name:?} is not a valid host name"));
    };
    let bind: SocketAddr = match server {
        SocketAddr::V4(_) => (Ipv4Addr::UNSPECIFIED, 0).into(),
        SocketAddr::V6(_) => (Ipv6Addr::UNSPECIFIED, 0).into(),
    };
    let sock = match UdpSocket::bind(bind).and_then(|s| s.connect(server).map(|()| s)) {
        Ok(s) => s,
        Err(e) => return Answer::Error(format!("udp to {server}: {e}")),
    };
    if let Err(e) = sock.send(&packet) {
        return Answer::Error(format!("send to {server}: {e}"));
    }
    let mut buf = [0u8; 1500];
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Answer::TimedOut;
        }
        if sock.set_read_timeout(Some(left)).is_err() {
            return Answer::TimedOut;
        }
        match sock.recv(&mut buf) {
            Ok(n) => {
                if let Some(answer) = parse_response(&buf[..n], id, qtype) {
                    return answer;
                }
                // Not ours (another id): keep waiting, as nginx does.
            }
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) =>
            {
                return Answer::TimedOut
            }
            // ICMP port unreachable shows up as a refused recv: the resolver is not there.
            Err(e) => return Answer::Error(format!("recv from {server}: {e}")),
        }
    }
}

fn build_query(id: u16, name: &str, qtype: u16) -> Option<Vec<u8>> {
    let name = name.trim_end_matches('.');
    if name.is_empty() || name.len() > 253 {
        return None;
    }
    let mut p = Vec::with_capacity(name.len() + 18);
    p.extend_from_slice(&id.to_be_bytes());
    p.extend_from_slice(&[0x01, 0x00]); // recursion desired
    p.extend_from_slice(&[0, 1, 0, 0, 0, 0, 0, 0]); // one question
    for label in name.split('.') {
        if label.is_empty() || label.len() > 63 {
            return None;
        }
        p.push(label.len() as u8);
        p.extend_from_slice(label.as_bytes());
    }
    p.push(0);
    p.extend_from_slice(&qtype.to_be_bytes());
    p.extend_from_slice(&[0, 1]); // class IN
    Some(p)
}

/// `None` when the packet is not the answer to our query.
fn parse_response(b: &[u8], id: u16, qtype: u16) -> Option<Answer> {
    if b.len() < 12 || u16::from_be_bytes([b[0], b[1]]) != id || b[2] & 0x80 == 0 {
        return None;
    }
    let rcode = b[3] & 0x0f;
    match rcode {
        0 => {}
        3 => return Some(Answer::NotFound),
        c => return Some(Answer::Failure(c)),
    }
    let qd = u16::from_be_bytes([b[4], b[5]]);
    let an = u16::from_be_bytes([b[6], b[7]]);
    let mut i = 12;
    for _ in 0..qd {
        i = skip_name(b, i)? + 4;
    }
    let mut out = Vec::new();
    for _ in 0..an {
        i = skip_name(b, i)?;
        let rr = b.get(i..i + 10)?;
        let rtype = u16::from_be_bytes([rr[0], rr[1]]);
        let len = usize::from(u16::from_be_bytes([rr[8], rr[9]]));
        let data = b.get(i + 10..i + 10 + len)?;
        i += 10 + len;
        match (rtype, len) {
            (TYPE_A, 4) if qtype == TYPE_A => out.push(IpAddr::V4(Ipv4Addr::new(
                data[0], data[1], data[2], data[3],
            ))),
            (TYPE_AAAA, 16) if qtype == TYPE_AAAA => {
                let mut o = [0u8; 16];
                o.copy_from_slice(data);
                out.push(IpAddr::V6(Ipv6Addr::from(o)));
            }
            // CNAMEs and other records: the resolver followed them for us.
            _ => {}
        }
    }
    Some(Answer::Addresses(out))
}

/// The offset after a (possibly compressed) name.
fn skip_name(b: &[u8], mut i: usize) -> Option<usize> {
    loop {
        let len = *b.get(i)?;
        match len {
            0 => return Some(i + 1),
            l if l & 0xc0 == 0xc0 => return Some(i + 2),
            l => i += 1 + usize::from(l),
        }
    }
}

/// The addresses of a `resolver` directive's arguments (`127.0.0.1`, `[::1]:5353`,
/// `dns.example:53` is skipped: nginx resolves those names once at start).
pub fn resolver_addrs(args: &[impl AsRef<str>]) -> Vec<SocketAddr> {
    args.iter()
        .map(|a| a.as_ref())
        .filter(|a| !a.contains('='))
        .filter_map(|a| {
            if let Ok(s) = a.parse::<SocketAddr>() {
                return Some(s);
            }
            let bare = a.trim_start_matches('[').trim_end_matches(']');
            bare.parse::<IpAddr>()
                .ok()
                .map(|ip| SocketAddr::new(ip, 53))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_and_response_roundtrip() {
        let q = build_query(7, "api.internal", TYPE_A).unwrap();
        // A response: the question echoed, then one A record with a compressed name.
        let mut r = q.clone();
        r[2] = 0x81;
        r[3] = 0x80;
        r[7] = 1; // ANCOUNT
        r.extend_from_slice(&[0xc0, 12, 0, 1, 0, 1, 0, 0, 0, 60, 0, 4, 10, 0, 0, 7]);
        assert_eq!(
            parse_response(&r, 7, TYPE_A),
            Some(Answer::Addresses(vec!["10.0.0.7".parse().unwrap()]))
        );
        assert_eq!(parse_response(&r, 8, TYPE_A), None);
        r[3] = 0x83;
        assert_eq!(parse_response(&r, 7, TYPE_A), Some(Answer::NotFound));
        assert_eq!(parse_response(&r[..5], 7, TYPE_A), None);
        assert!(build_query(1, "", TYPE_A).is_none());
        assert!(build_query(1, &"a".repeat(64), TYPE_A).is_none());
    }

    #[test]
    fn resolver_arguments() {
        let a = resolver_addrs(&["127.0.0.1", "[::1]:5353", "valid=30s", "ipv6=off"]);
        assert_eq!(
            a,
            vec![
                "127.0.0.1:53".parse().unwrap(),
                "[::1]:5353".parse().unwrap()
            ]
        );
    }

    #[test]
    fn nginx_wording() {
        assert_eq!(
            Answer::NotFound.nginx_error("b.test").as_deref(),
            Some("b.test could not be resolved (3: Host not found)")
        );
        assert_eq!(
            Answer::TimedOut.nginx_error("b").as_deref(),
            Some("b could not be resolved (110: Operation timed out)")
        );
        assert_eq!(
            Answer::Addresses(vec![IpAddr::V4(Ipv4Addr::LOCALHOST)]).nginx_error("b"),
            None
        );
    }
}
