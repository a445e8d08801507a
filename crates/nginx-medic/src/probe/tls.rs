//! The TLS probe: handshakes with an `https://` upstream the way nginx's `proxy_ssl_*` settings
//! would, plus the variants that tell the TLS causes apart (`causes.md`: `tls-sni-required`,
//! `tls-protocol-mismatch`, `tls-untrusted`, `tls-expired`, `tls-name-mismatch`,
//! `scheme-mismatch`, `cert-expires-soon`).
//!
//! ## Why OpenSSL (the `openssl` crate) and not rustls
//! nginx links OpenSSL, and the messages the user sees in the error log are OpenSSL's:
//! `upstream SSL certificate verify error: (18:self-signed certificate)` is
//! `X509_verify_cert_error_string()` (`src/event/ngx_event_openssl.c`, `ngx_ssl_check_host` and
//! `ngx_http_upstream_ssl_handshake` in `src/http/ngx_http_upstream.c`). Verifying with the same
//! library, the same trust file and the same verify callback (accept, then read
//! `SSL_get_verify_result`, exactly what nginx does) gives the same code and text nginx logged,
//! and the same protocol floor (OpenSSL's security level refuses TLS 1.0/1.1 for nginx too).
//! rustls would give its own error vocabulary, cannot speak TLS 1.0/1.1 at all (still in nginx's
//! default `proxy_ssl_protocols`), and would need a `dangerous` verifier plus x509-parser to show
//! what OpenSSL already reports. The cost: `libssl-dev` and `pkg-config` at build time.
//!
//! ## What is run
//! 1. The handshake nginx would make: SNI as configured, the configured protocol range.
//! 2. The matrix {with SNI, without SNI} x {TLS 1.2, TLS 1.3}.
//!
//! Each one records its outcome (ok / alert from the server / local error / closed / timed out /
//! not TLS at all), the negotiated version, the verify result against the trust anchors, and
//! the leaf certificate it was shown. The whole probe is bounded by the caller's timeout: every
//! handshake gets an equal share of what remains, and every read and write checks the deadline.

use std::io::{self, Read, Write};
use std::net::{IpAddr, SocketAddr, TcpStream};
use std::path::PathBuf;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use openssl::asn1::{Asn1Time, Asn1TimeRef};
use openssl::error::ErrorStack;
use openssl::hash::MessageDigest;
use openssl::ssl::{
    ErrorCode, HandshakeError, Ssl, SslContext, SslContextBuilder, SslMethod, SslRef,
    SslVerifyMode, SslVersion,
};
use openssl::x509::{X509NameRef, X509Ref};

/// How many bytes of the server's first answer are kept (enough for `HTTP/1.1 400 Bad Request`).
const FIRST_BYTES: usize = 64;

/// The `proxy_ssl_*` settings that shape nginx's handshake with one upstream.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TlsSettings {
    /// The SNI nginx sends: `proxy_ssl_server_name on` gives `proxy_ssl_name` or the upstream
    /// host; `None` when off (nginx's default) or when the name is an IP address.
    pub sni: Option<String>,
    /// The name nginx checks the certificate against (`proxy_ssl_name`, default the upstream
    /// host). Also the SNI of the probe's "with SNI" variants when `sni` is `None`.
    pub name: Option<String>,
    /// `proxy_ssl_verify` (default off).
    pub verify: bool,
    /// `proxy_ssl_trusted_certificate`; `None`: the system store is used for the probe's own
    /// verdict (nginx itself refuses `proxy_ssl_verify on` without one).
    pub trusted_ca_file: Option<PathBuf>,
    /// `proxy_ssl_protocols` as written (`TLSv1.2`, `TLSv1.3`, ...). Empty: nginx's default.
    pub protocols: Vec<String>,
}

impl TlsSettings {
    /// The settings of a pass from the effective model; `host` is the upstream host name
    /// (`$proxy_host` without the port).
    pub fn from_model(ssl: &medic_core::config::Ssl, host: &str) -> TlsSettings {
        let name = ssl
            .name
            .value
            .as_ref()
            .map_or_else(|| host.to_string(), |n| n.to_string());
        // `ngx_http_upstream_ssl_name()` strips a port from the name and never sends an IP
        // address as SNI (RFC 6066 forbids it).
        let name = strip_port(&name).to_string();
        let bare = name.trim_start_matches('[').trim_end_matches(']');
        let is_ip = bare.parse::<IpAddr>().is_ok();
        TlsSettings {
            sni: (ssl.server_name.value && !is_ip && !name.is_empty()).then(|| name.clone()),
            name: (!name.is_empty()).then_some(name),
            verify: ssl.verify.value,
            trusted_ca_file: ssl.trusted_certificate.value.as_ref().map(PathBuf::from),
            protocols: ssl.protocols.value.iter().map(|p| p.to_string()).collect(),
        }
    }
}

fn strip_port(name: &str) -> &str {
    if let Some(rest) = name.strip_prefix('[') {
        return match rest.find(']') {
            Some(i) => &name[..i + 2],
            None => name,
        };
    }
    match name.rsplit_once(':') {
        Some((h, p)) if !h.contains(':') && p.bytes().all(|b| b.is_ascii_digit()) => h,
        _ => name,
    }
}

pub use medic_core::facts::tls::{
    CertFacts, Outcome, SchemeMismatch, TlsFacts, Trust, Variant, Verify,
};

/// Runs the handshakes against `addr` within `timeout` (all of them together).
pub fn probe_tls(addr: SocketAddr, settings: &TlsSettings, timeout: Duration) -> TlsFacts {
    let deadline = Instant::now() + timeout;
    let mut facts = TlsFacts {
        addr: addr.to_string(),
        sni: settings.sni.clone(),
        name: settings.name.clone(),
        verify: settings.verify,
        trust: Trust {
            source: if settings.trusted_ca_file.is_some() {
                "file".into()
            } else {
                "system".into()
            },
            file: settings.trusted_ca_file.clone(),
            error: None,
        },
        scheme_mismatch: None,
        variants: Vec::new(),
        certificates: Vec::new(),
    };

    let (lo, hi, known) = configured_range(&settings.protocols);
    let range_text = if lo == hi {
        version_name(lo).to_string()
    } else {
        format!("{}-{}", version_name(lo), version_name(hi))
    };
    let matrix_sni = settings.sni.clone().or_else(|| settings.name.clone());
    let mut plan: Vec<(bool, Option<String>, SslVersion, SslVersion, String, bool)> =
        vec![(true, settings.sni.clone(), lo, hi, range_text, known)];
    for sni in [matrix_sni.clone(), None] {
        for v in [SslVersion::TLS1_2, SslVersion::TLS1_3] {
            let offered = offered(&settings.protocols, v);
            plan.push((
                false,
                sni.clone(),
                v,
                v,
                version_name(v).to_string(),
                offered,
            ));
        }
    }

    let total = plan.len();
    for (i, (as_nginx, sni, lo, hi, versions, offered_by_nginx)) in plan.into_iter().enumerate() {
        let start = Instant::now();
        let share = deadline.saturating_duration_since(start) / (total - i) as u32;
        let mut v = Variant {
            as_nginx,
            sni: sni.clone(),
            versions,
            offered_by_nginx,
            outcome: Outcome::Skipped { why: String::new() },
            verify: None,
            certificate: None,
            elapsed_ms: 0,
            client_cert_requested: None,
        };
        if !as_nginx && i <= 2 && matrix_sni.is_none() {
            v.outcome = Outcome::Skipped {
                why: "no name to send as SNI (the upstream is an IP address and proxy_ssl_name is not set)".into(),
            };
        } else if share.is_zero() {
            v.outcome = Outcome::Skipped {
                why: "the probe's time budget was spent".into(),
            };
        } else {
            handshake(
                addr,
                settings,
                sni.as_deref(),
                lo,
                hi,
                start + share,
                &mut v,
                &mut facts,
            );
        }
        v.elapsed_ms = start.elapsed().as_millis() as u64;
        facts.variants.push(v);
    }
    facts
}

/// nginx's protocol names, in order. TLS 1.0/1.1 are tried only if configured.
const VERSIONS: [(&str, SslVersion); 4] = [
    ("TLSv1", SslVersion::TLS1),
    ("TLSv1.1", SslVersion::TLS1_1),
    ("TLSv1.2", SslVersion::TLS1_2),
    ("TLSv1.3", SslVersion::TLS1_3),
];

fn version_name(v: SslVersion) -> &'static str {
    VERSIONS
        .iter()
        .find(|(_, x)| *x == v)
        .map_or("?", |(n, _)| n)
}

fn offered(protocols: &[String], v: SslVersion) -> bool {
    if protocols.is_empty() {
        return true;
    }
    protocols.iter().any(|p| {
        VERSIONS
            .iter()
            .any(|(n, x)| *x == v && p.eq_ignore_ascii_case(n))
    })
}

/// The min..max range of the configured protocols (nginx sets `SSL_OP_NO_*` for the others;
/// a hole in the list is rare and approximated by the range). The flag says whether any
/// configured name was understood (`SSLv3` alone is not).
fn configured_range(protocols: &[String]) -> (SslVersion, SslVersion, bool) {
    let idx: Vec<usize> = VERSIONS
        .iter()
        .enumerate()
        .filter(|(_, (n, _))| protocols.iter().any(|p| p.eq_ignore_ascii_case(n)))
        .map(|(i, _)| i)
        .collect();
    match (idx.first(), idx.last()) {
        (Some(&a), Some(&b)) => (VERSIONS[a].1, VERSIONS[b].1, true),
        // nginx 1.23.4+ default: TLSv1 TLSv1.1 TLSv1.2 TLSv1.3.
        _ => (SslVersion::TLS1, SslVersion::TLS1_3, protocols.is_empty()),
    }
}

fn context(
    settings: &TlsSettings,
    lo: SslVersion,
    hi: SslVersion,
    trust: &mut Trust,
) -> Result<SslContext, ErrorStack> {
    let mut b = SslContextBuilder::new(SslMethod::tls_client())?;
    // nginx's `ngx_ssl_verify_callback` accepts every certificate and checks
    // `SSL_get_verify_result()` after the handshake; doing the same keeps the handshake going
    // so the chain is captured even when it does not verify.
    b.set_verify_callback(SslVerifyMode::PEER, |_, _| true);
    match &settings.trusted_ca_file {
        Some(f) => {
            if let Err(e) = b.set_ca_file(f) {
                trust.error = Some(format!("load {}: {}", f.display(), reasons(&e)));
            }
        }
        None => {
            if let Err(e) = b.set_default_verify_paths() {
                trust.error = Some(format!("system store: {}", reasons(&e)));
            }
        }
    }
    b.set_min_proto_version(Some(lo))?;
    b.set_max_proto_version(Some(hi))?;
    Ok(b.build())
}

#[allow(clippy::too_many_arguments)]
fn handshake(
    addr: SocketAddr,
    settings: &TlsSettings,
    sni: Option<&str>,
    lo: SslVersion,
    hi: SslVersion,
    deadline: Instant,
    v: &mut Variant,
    facts: &mut TlsFacts,
) {
    let ctx = match context(settings, lo, hi, &mut facts.trust) {
        Ok(c) => c,
        Err(e) => {
            v.outcome = Outcome::Error { text: reasons(&e) };
            return;
        }
    };
    let remaining = deadline.saturating_duration_since(Instant::now());
    let tcp = match TcpStream::connect_timeout(&addr, remaining.max(Duration::from_millis(1))) {
        Ok(t) => t,
        Err(e) if e.kind() == io::ErrorKind::TimedOut => {
            v.outcome = Outcome::TimedOut;
            return;
        }
        Err(e) => {
            v.outcome = Outcome::Connect {
                text: format!("connect() to {addr} failed: {e}"),
            };
            return;
        }
    };
    let wire = Wire {
        tcp,
        deadline,
        first: Vec::new(),
        clear: Vec::new(),
    };
    let mut ssl = match Ssl::new(&ctx) {
        Ok(s) => s,
        Err(e) => {
            v.outcome = Outcome::Error { text: reasons(&e) };
            return;
        }
    };
    if let Some(name) = sni {
        if let Err(e) = ssl.set_hostname(name) {
            v.outcome = Outcome::Error {
                text: format!("set SNI {name:?}: {}", reasons(&e)),
            };
            return;
        }
    }
    match ssl.connect(wire) {
        Ok(stream) => {
            let s = stream.ssl();
            v.outcome = Outcome::Ok {
                version: s.version_str().to_string(),
                cipher: s
                    .current_cipher()
                    .map(|c| c.name().to_string())
                    .unwrap_or_default(),
            };
            v.client_cert_requested = certificate_requested(&stream.get_ref().clear);
            record_peer(s, settings, v, facts);
        }
        Err(HandshakeError::SetupFailure(e)) => {
            v.outcome = Outcome::Error { text: reasons(&e) };
        }
        Err(HandshakeError::Failure(mut mid)) | Err(HandshakeError::WouldBlock(mut mid)) => {
            // OpenSSL stops at the 5-byte record header; read on for the evidence.
            mid.get_mut().read_more_plain();
            v.client_cert_requested = certificate_requested(&mid.get_ref().clear);
            let first = &mid.get_ref().first;
            let timed_out = Instant::now() >= deadline
                || mid
                    .error()
                    .io_error()
                    .is_some_and(|e| e.kind() == io::ErrorKind::TimedOut);
            v.outcome = if !first.is_empty() && !is_tls_record(first[0]) {
                facts.scheme_mismatch.get_or_insert_with(|| SchemeMismatch {
                    first_bytes: escape(first),
                });
                Outcome::NotTls
            } else if timed_out {
                Outcome::TimedOut
            } else {
                failure(mid.error())
            };
            record_peer(mid.ssl(), settings, v, facts);
        }
    }
}

/// TLS record content types: change_cipher_spec, alert, handshake, application_data.
fn is_tls_record(b: u8) -> bool {
    (0x14..=0x17).contains(&b)
}

fn failure(e: &openssl::ssl::Error) -> Outcome {
    if let Some(stack) = e.ssl_error() {
        let text = reasons(stack);
        // OpenSSL names received alerts `... alert ...` (`tlsv1 alert protocol version`,
        // `sslv3 alert handshake failure`) or `tlsv1 unrecognized name`.
        if text.contains("alert") || text.contains("unrecognized name") {
            return Outcome::Alert { text };
        }
        return Outcome::Error { text };
    }
    match (e.code(), e.io_error()) {
        (_, Some(io)) => Outcome::Error {
            text: io.to_string(),
        },
        // SSL_ERROR_SYSCALL with no errno, or ZERO_RETURN: the peer closed.
        (c, None) if c == ErrorCode::SYSCALL || c == ErrorCode::ZERO_RETURN => Outcome::Closed,
        (c, None) => Outcome::Error {
            text: format!("SSL error code {}", c.as_raw()),
        },
    }
}

/// `reason (lib)` of each error on the stack, without OpenSSL's file/line noise.
fn reasons(e: &ErrorStack) -> String {
    let v: Vec<String> = e
        .errors()
        .iter()
        .map(|x| x.reason().unwrap_or("unknown error").to_string())
        .collect();
    if v.is_empty() {
        "unknown error".to_string()
    } else {
        v.join("; ")
    }
}

fn record_peer(s: &SslRef, settings: &TlsSettings, v: &mut Variant, facts: &mut TlsFacts) {
    let Some(leaf) = s.peer_certificate() else {
        return;
    };
    let r = s.verify_result();
    v.verify = Some(Verify {
        code: r.as_raw(),
        text: r.error_string().to_string(),
    });
    let chain_len = s.peer_cert_chain().map_or(1, |c| c.len());
    let cert = cert_facts(&leaf, settings.name.as_deref(), chain_len);
    let i = match facts
        .certificates
        .iter()
        .position(|c| c.sha256 == cert.sha256)
    {
        Some(i) => i,
        None => {
            facts.certificates.push(cert);
            facts.certificates.len() - 1
        }
    };
    v.certificate = Some(i);
}

fn name_text(n: &X509NameRef) -> String {
    n.entries()
        .map(|e| {
            let key = e.object().nid().short_name().unwrap_or("?");
            let val = e.data().to_string().unwrap_or_else(|_| "?".to_string());
            format!("{key}={val}")
        })
        .collect::<Vec<_>>()
        .join(", ")
}

fn unix_time(t: &Asn1TimeRef) -> Option<i64> {
    let epoch = Asn1Time::from_unix(0).ok()?;
    let d = epoch.diff(t).ok()?;
    Some(i64::from(d.days) * 86_400 + i64::from(d.secs))
}

fn rfc3339(unix: i64) -> Option<String> {
    chrono::DateTime::from_timestamp(unix, 0).map(|t| t.format("%Y-%m-%dT%H:%M:%SZ").to_string())
}

/// Summarises a certificate; `name` is checked against its names.
pub fn cert_facts(cert: &X509Ref, name: Option<&str>, chain_len: usize) -> CertFacts {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64);
    let nb = unix_time(cert.not_before());
    let na = unix_time(cert.not_after());
    let mut dns = Vec::new();
    let mut ips = Vec::new();
    let mut sans = Vec::new();
    if let Some(names) = cert.subject_alt_names() {
        for g in names.iter() {
            if let Some(d) = g.dnsname() {
                dns.push(d.to_string());
                sans.push(format!("DNS:{d}"));
            } else if let Some(ip) = g.ipaddress() {
                let ip = match ip.len() {
                    4 => <[u8; 4]>::try_from(ip).ok().map(IpAddr::from),
                    16 => <[u8; 16]>::try_from(ip).ok().map(IpAddr::from),
                    _ => None,
                };
                if let Some(ip) = ip {
                    ips.push(ip);
                    sans.push(format!("IP:{ip}"));
                }
            } else if let Some(e) = g.email() {
                sans.push(format!("email:{e}"));
            } else if let Some(u) = g.uri() {
                sans.push(format!("URI:{u}"));
            }
        }
    }
    let cn: Vec<String> = cert
        .subject_name()
        .entries_by_nid(openssl::nid::Nid::COMMONNAME)
        .filter_map(|e| e.data().to_string().ok())
        .collect();
    let subject = name_text(cert.subject_name());
    let issuer = name_text(cert.issuer_name());
    CertFacts {
        self_signed: subject == issuer,
        subject,
        sans,
        issuer,
        not_before: nb.and_then(rfc3339),
        not_after: na.and_then(rfc3339),
        not_yet_valid: nb.is_some_and(|t| now < t),
        expired: na.is_some_and(|t| now > t),
        days_left: na.map(|t| (t - now).div_euclid(86_400)),
        name_matches: name.map(|n| host_matches(n, &dns, &ips, &cn)),
        sha256: cert
            .digest(MessageDigest::sha256())
            .map(|d| d.iter().map(|b| format!("{b:02x}")).collect())
            .unwrap_or_default(),
        chain_len,
    }
}

/// `X509_check_host()` as nginx calls it (flags 0): an IP name against the IP SANs; a DNS
/// name against the DNS SANs, or the CN only when there are no DNS SANs; a wildcard only as
/// the whole left-most label, matching exactly one label.
pub fn host_matches(name: &str, dns: &[String], ips: &[IpAddr], cn: &[String]) -> bool {
    let bare = name.trim_start_matches('[').trim_end_matches(']');
    if let Ok(ip) = bare.parse::<IpAddr>() {
        return ips.contains(&ip);
    }
    let name = name.trim_end_matches('.').to_ascii_lowercase();
    let pats: &[String] = if dns.is_empty() { cn } else { dns };
    pats.iter().any(|p| {
        let p = p.trim_end_matches('.').to_ascii_lowercase();
        match p.strip_prefix("*.") {
            Some(suffix) if suffix.contains('.') => name
                .split_once('.')
                .is_some_and(|(first, rest)| !first.is_empty() && rest == suffix),
            _ => p == name,
        }
    })
}

fn escape(b: &[u8]) -> String {
    b.iter()
        .flat_map(|&c| std::ascii::escape_default(c))
        .map(char::from)
        .collect()
}

/// The socket under OpenSSL: enforces the deadline on every read and write, and keeps the
/// server's first bytes (to recognise a plain-text answer).
#[derive(Debug)]
struct Wire {
    tcp: TcpStream,
    deadline: Instant,
    first: Vec<u8>,
    /// The server's bytes while they are still in the clear (up to its ChangeCipherSpec, at
    /// most [`CLEAR_BYTES`]): where a TLS 1.2 `CertificateRequest` shows.
    clear: Vec<u8>,
}

/// The server's first flight read for its handshake messages: certificates included.
const CLEAR_BYTES: usize = 64 << 10;

/// Whether the server's handshake messages in the clear include a `CertificateRequest`
/// (handshake type 13, RFC 5246 §7.4.4): `None` when the records turned encrypted before it
/// could be seen (TLS 1.3: type 23 after the ServerHello) and no request was seen.
fn certificate_requested(clear: &[u8]) -> Option<bool> {
    let mut handshake = Vec::new();
    let mut rest = clear;
    while rest.len() >= 5 {
        let (kind, len) = (rest[0], usize::from(u16::from_be_bytes([rest[3], rest[4]])));
        let Some(body) = rest.get(5..5 + len) else {
            break;
        };
        match kind {
            22 => handshake.extend_from_slice(body),
            // ChangeCipherSpec, or an encrypted record: nothing after is in the clear.
            20 | 23 => break,
            _ => {}
        }
        rest = &rest[5 + len..];
    }
    let mut msgs = handshake.as_slice();
    while msgs.len() >= 4 {
        if msgs[0] == 13 {
            return Some(true);
        }
        let len = usize::from(msgs[1]) << 16 | usize::from(msgs[2]) << 8 | usize::from(msgs[3]);
        // ServerHelloDone (14) ends the TLS 1.2 server flight: no request in it.
        if msgs[0] == 14 {
            return Some(false);
        }
        msgs = msgs.get(4 + len..).unwrap_or_default();
    }
    // Encrypted before the flight ended (TLS 1.3), or cut short: not seen either way.
    None
}

impl Wire {
    fn remaining(&self) -> io::Result<Duration> {
        let r = self.deadline.saturating_duration_since(Instant::now());
        if r.is_zero() {
            Err(io::Error::new(
                io::ErrorKind::TimedOut,
                "TLS probe deadline",
            ))
        } else {
            Ok(r)
        }
    }
}

/// A socket timeout surfaces as `WouldBlock` (EAGAIN), which OpenSSL would take for a
/// non-blocking socket; call it what it is.
fn timeout_kind(e: io::Error) -> io::Error {
    if e.kind() == io::ErrorKind::WouldBlock {
        io::Error::new(io::ErrorKind::TimedOut, e)
    } else {
        e
    }
}

impl Wire {
    /// After a non-TLS answer: reads what else the server sent (up to [`FIRST_BYTES`], at most
    /// 200 ms and within the deadline).
    fn read_more_plain(&mut self) {
        if self.first.is_empty() || is_tls_record(self.first[0]) {
            return;
        }
        let end = self
            .deadline
            .min(Instant::now() + Duration::from_millis(200));
        let mut buf = [0u8; FIRST_BYTES];
        while self.first.len() < FIRST_BYTES {
            let r = end.saturating_duration_since(Instant::now());
            if r.is_zero() || self.tcp.set_read_timeout(Some(r)).is_err() {
                return;
            }
            match self.tcp.read(&mut buf[..FIRST_BYTES - self.first.len()]) {
                Ok(0) | Err(_) => return,
                Ok(n) => self.first.extend_from_slice(&buf[..n]),
            }
        }
    }
}

impl Read for Wire {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let r = self.remaining()?;
        self.tcp.set_read_timeout(Some(r))?;
        let n = self.tcp.read(buf).map_err(timeout_kind)?;
        let room = FIRST_BYTES.saturating_sub(self.first.len());
        self.first.extend_from_slice(&buf[..n.min(room)]);
        let room = CLEAR_BYTES.saturating_sub(self.clear.len());
        self.clear.extend_from_slice(&buf[..n.min(room)]);
        Ok(n)
    }
}

impl Write for Wire {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let r = self.remaining()?;
        self.tcp.set_write_timeout(Some(r))?;
        self.tcp.write(buf).map_err(timeout_kind)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.tcp.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A TLS 1.2 server flight, as records: ServerHello, then `last` (13: CertificateRequest,
    /// 14: ServerHelloDone).
    fn flight(last: &[u8]) -> Vec<u8> {
        let mut hs = vec![2, 0, 0, 2, 3, 3];
        for &t in last {
            hs.extend_from_slice(&[t, 0, 0, 1, 0]);
        }
        let mut rec = vec![22, 3, 3];
        rec.extend_from_slice(&(hs.len() as u16).to_be_bytes());
        rec.extend(hs);
        rec
    }

    #[test]
    fn a_certificate_request_shows_in_a_tls12_flight() {
        assert_eq!(certificate_requested(&flight(&[13, 14])), Some(true));
        assert_eq!(certificate_requested(&flight(&[14])), Some(false));
        // TLS 1.3: encrypted after the ServerHello.
        let mut v13 = flight(&[]);
        v13.extend_from_slice(&[23, 3, 3, 0, 2, 0xde, 0xad]);
        assert_eq!(certificate_requested(&v13), None);
        assert_eq!(certificate_requested(&[22, 3]), None);
    }

    #[test]
    fn wildcard_covers_one_label() {
        let dns = vec!["*.example.com".to_string()];
        assert!(host_matches("api.example.com", &dns, &[], &[]));
        assert!(!host_matches("a.b.example.com", &dns, &[], &[]));
        assert!(!host_matches("example.com", &dns, &[], &[]));
    }

    #[test]
    fn cn_only_without_dns_sans() {
        let cn = vec!["Upstream.Test".to_string()];
        assert!(host_matches("upstream.test", &[], &[], &cn));
        let dns = vec!["other.test".to_string()];
        assert!(!host_matches("upstream.test", &dns, &[], &cn));
    }

    #[test]
    fn ip_names_match_ip_sans_only() {
        let ip: IpAddr = "127.0.0.1".parse().unwrap();
        assert!(host_matches("127.0.0.1", &[], &[ip], &["127.0.0.1".into()]));
        assert!(!host_matches("127.0.0.1", &[], &[], &["127.0.0.1".into()]));
    }

    #[test]
    fn ports_are_stripped() {
        assert_eq!(strip_port("a.test:8443"), "a.test");
        assert_eq!(strip_port("[::1]:443"), "[::1]");
        assert_eq!(strip_port("::1"), "::1");
        assert_eq!(strip_port("a.test"), "a.test");
    }

    #[test]
    fn protocol_range() {
        let p = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        let (lo, hi, k) = configured_range(&p(&["TLSv1.2"]));
        assert_eq!((lo, hi, k), (SslVersion::TLS1_2, SslVersion::TLS1_2, true));
        assert!(!offered(&p(&["TLSv1.2"]), SslVersion::TLS1_3));
        assert!(offered(&[], SslVersion::TLS1_3));
    }
}
