//! The TLS probe against in-process loopback servers (OpenSSL acceptors with certificates made
//! here): trusted, untrusted, expired, wrong name, SNI-only, TLS 1.3-only, plain HTTP, silent.
//! The same scenarios with the real `openssl s_server` are in `tests/e2e/tests/tls_probe_real.rs`.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener};
use std::path::PathBuf;
use std::thread;
use std::time::{Duration, Instant};

use nginx_medic::probe::tls::{probe_tls, Outcome, TlsSettings};
use openssl::asn1::Asn1Time;
use openssl::bn::{BigNum, MsbOption};
use openssl::ec::{EcGroup, EcKey};
use openssl::hash::MessageDigest;
use openssl::nid::Nid;
use openssl::pkey::{PKey, Private};
use openssl::ssl::{NameType, SniError, SslAcceptor, SslAlert, SslMethod, SslVersion};
use openssl::x509::extension::SubjectAlternativeName;
use openssl::x509::{X509Builder, X509NameBuilder, X509};

const DAY: i64 = 86_400;

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

/// A self-signed certificate for `cn` (also its DNS SAN), valid from `nb` to `na` (unix).
fn cert(cn: &str, nb: i64, na: i64) -> (X509, PKey<Private>) {
    let key = PKey::from_ec_key(
        EcKey::generate(&EcGroup::from_curve_name(Nid::X9_62_PRIME256V1).unwrap()).unwrap(),
    )
    .unwrap();
    let mut name = X509NameBuilder::new().unwrap();
    name.append_entry_by_text("CN", cn).unwrap();
    let name = name.build();
    let mut b = X509Builder::new().unwrap();
    b.set_version(2).unwrap();
    let mut serial = BigNum::new().unwrap();
    serial.rand(64, MsbOption::MAYBE_ZERO, false).unwrap();
    b.set_serial_number(&serial.to_asn1_integer().unwrap())
        .unwrap();
    b.set_subject_name(&name).unwrap();
    b.set_issuer_name(&name).unwrap();
    b.set_pubkey(&key).unwrap();
    b.set_not_before(&Asn1Time::from_unix(nb as _).unwrap())
        .unwrap();
    b.set_not_after(&Asn1Time::from_unix(na as _).unwrap())
        .unwrap();
    let san = SubjectAlternativeName::new()
        .dns(cn)
        .build(&b.x509v3_context(None, None))
        .unwrap();
    b.append_extension(san).unwrap();
    b.sign(&key, MessageDigest::sha256()).unwrap();
    (b.build(), key)
}

fn valid(cn: &str) -> (X509, PKey<Private>) {
    cert(cn, now() - DAY, now() + 30 * DAY)
}

struct Opts {
    tls13_only: bool,
    /// Only this SNI is accepted; without SNI or with another, a fatal `unrecognized_name`.
    sni_only: Option<&'static str>,
}

const PLAIN: Opts = Opts {
    tls13_only: false,
    sni_only: None,
};

/// An acceptor on 127.0.0.1 that serves `n` handshakes in a thread, then stops.
fn tls_server(id: &(X509, PKey<Private>), opts: Opts, n: usize) -> SocketAddr {
    let mut a = SslAcceptor::mozilla_intermediate_v5(SslMethod::tls()).unwrap();
    a.set_certificate(&id.0).unwrap();
    a.set_private_key(&id.1).unwrap();
    if opts.tls13_only {
        a.set_min_proto_version(Some(SslVersion::TLS1_3)).unwrap();
    }
    if let Some(want) = opts.sni_only {
        a.set_servername_callback(move |ssl, alert| {
            if ssl.servername(NameType::HOST_NAME) == Some(want) {
                Ok(())
            } else {
                *alert = SslAlert::UNRECOGNIZED_NAME;
                Err(SniError::ALERT_FATAL)
            }
        });
    }
    let acceptor = a.build();
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap();
    thread::spawn(move || {
        for s in l.incoming().take(n) {
            let Ok(s) = s else { continue };
            s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
            let _ = acceptor.accept(s);
        }
    });
    addr
}

fn pem_file(c: &X509) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("ca.pem");
    std::fs::write(&p, c.to_pem().unwrap()).unwrap();
    (dir, p)
}

fn settings(name: &str, sni: bool, ca: Option<PathBuf>) -> TlsSettings {
    TlsSettings {
        sni: sni.then(|| name.to_string()),
        name: Some(name.to_string()),
        verify: true,
        trusted_ca_file: ca,
        protocols: vec!["TLSv1.2".into(), "TLSv1.3".into()],
    }
}

const T: Duration = Duration::from_secs(10);

#[test]
fn trusted_certificate_verifies_and_is_reported() {
    let id = valid("upstream.test");
    let (_d, ca) = pem_file(&id.0);
    let addr = tls_server(&id, PLAIN, 5);
    let f = probe_tls(addr, &settings("upstream.test", true, Some(ca)), T);
    assert_eq!(f.variants.len(), 5, "{f:#?}");
    assert!(f.variants.iter().all(|v| v.outcome.is_ok()), "{f:#?}");
    let n = f.as_nginx().unwrap();
    assert_eq!(n.verify.as_ref().unwrap().code, 0, "{f:#?}");
    assert!(matches!(&n.outcome, Outcome::Ok { version, .. } if version == "TLSv1.3"));
    let c = f.nginx_certificate().unwrap();
    assert_eq!(c.subject, "CN=upstream.test");
    assert_eq!(c.sans, vec!["DNS:upstream.test"]);
    assert!(c.self_signed && !c.expired && !c.not_yet_valid);
    assert_eq!(c.name_matches, Some(true));
    assert!(matches!(c.days_left, Some(29 | 30)), "{c:?}");
    assert_eq!(f.certificates.len(), 1);
    assert!(f.scheme_mismatch.is_none());
    // The facts serialise for the orchestrator's JSON.
    let j = serde_json::to_value(&f).unwrap();
    assert_eq!(j["variants"][0]["outcome"]["result"], "ok");
}

#[test]
fn untrusted_self_signed_gives_nginx_code_18() {
    let id = valid("upstream.test");
    let other = valid("anchor.test");
    let (_d, ca) = pem_file(&other.0);
    let addr = tls_server(&id, PLAIN, 5);
    let f = probe_tls(addr, &settings("upstream.test", false, Some(ca)), T);
    let v = f.as_nginx().unwrap().verify.clone().unwrap();
    assert_eq!(
        (v.code, v.text.as_str()),
        (18, "self-signed certificate"),
        "{f:#?}"
    );
    assert!(f.as_nginx().unwrap().outcome.is_ok());
}

#[test]
fn expired_and_wrong_name() {
    let id = cert("old.test", now() - 60 * DAY, now() - 30 * DAY);
    let (_d, ca) = pem_file(&id.0);
    let addr = tls_server(&id, PLAIN, 5);
    let f = probe_tls(addr, &settings("upstream.test", true, Some(ca)), T);
    let c = f.nginx_certificate().unwrap();
    assert!(c.expired && !c.not_yet_valid, "{c:?}");
    assert!(c.days_left.unwrap() < -29);
    assert_eq!(c.name_matches, Some(false));
    assert_eq!(
        f.as_nginx().unwrap().verify.as_ref().unwrap().code,
        10,
        "{f:#?}"
    );
}

#[test]
fn missing_ca_file_is_reported() {
    let id = valid("upstream.test");
    let addr = tls_server(&id, PLAIN, 5);
    let f = probe_tls(
        addr,
        &settings("upstream.test", true, Some("/nonexistent/ca.pem".into())),
        T,
    );
    assert!(f
        .trust
        .error
        .as_deref()
        .unwrap()
        .contains("/nonexistent/ca.pem"));
    assert_ne!(f.as_nginx().unwrap().verify.as_ref().unwrap().code, 0);
}

#[test]
fn sni_required() {
    let id = valid("upstream.test");
    let addr = tls_server(
        &id,
        Opts {
            tls13_only: false,
            sni_only: Some("upstream.test"),
        },
        5,
    );
    // proxy_ssl_server_name off: nginx sends no SNI.
    let f = probe_tls(addr, &settings("upstream.test", false, None), T);
    assert!(f.sni_required(), "{f:#?}");
    let n = f.as_nginx().unwrap();
    assert!(
        matches!(&n.outcome, Outcome::Alert { text } if text.contains("unrecognized name")),
        "{f:#?}"
    );
}

#[test]
fn tls13_only_against_tls12_config() {
    let id = valid("upstream.test");
    let addr = tls_server(
        &id,
        Opts {
            tls13_only: true,
            sni_only: None,
        },
        5,
    );
    let mut s = settings("upstream.test", true, None);
    s.protocols = vec!["TLSv1.2".into()];
    let f = probe_tls(addr, &s, T);
    let n = f.as_nginx().unwrap();
    assert_eq!(n.versions, "TLSv1.2");
    assert!(
        matches!(&n.outcome, Outcome::Alert { text } if text.contains("protocol version")),
        "{f:#?}"
    );
    let ok13 = f
        .variants
        .iter()
        .find(|v| !v.as_nginx && v.versions == "TLSv1.3" && v.sni.is_some())
        .unwrap();
    assert!(ok13.outcome.is_ok() && !ok13.offered_by_nginx, "{f:#?}");
}

#[test]
fn plain_http_is_a_scheme_mismatch() {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap();
    thread::spawn(move || {
        for s in l.incoming().take(5) {
            let Ok(mut s) = s else { continue };
            let mut buf = [0u8; 512];
            let _ = s.read(&mut buf);
            let _ = s.write_all(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n");
        }
    });
    let f = probe_tls(addr, &settings("upstream.test", true, None), T);
    let m = f.scheme_mismatch.as_ref().expect("scheme mismatch");
    assert!(m.first_bytes.starts_with("HTTP/1.1 400"), "{m:?}");
    assert!(
        f.variants.iter().all(|v| v.outcome == Outcome::NotTls),
        "{f:#?}"
    );
}

#[test]
fn silent_server_is_bounded_by_the_timeout() {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap();
    // Never accepted: the kernel completes the TCP handshake, nobody answers the ClientHello.
    let start = Instant::now();
    let f = probe_tls(
        addr,
        &settings("upstream.test", true, None),
        Duration::from_millis(600),
    );
    assert!(
        start.elapsed() < Duration::from_secs(2),
        "{:?}",
        start.elapsed()
    );
    assert!(
        f.variants.iter().all(|v| v.outcome == Outcome::TimedOut),
        "{f:#?}"
    );
    drop(l);
}

#[test]
fn refused_port() {
    let addr = {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap()
    };
    let f = probe_tls(addr, &settings("upstream.test", true, None), T);
    assert!(
        matches!(&f.variants[0].outcome, Outcome::Connect { text } if text.contains("refused")),
        "{f:#?}"
    );
}
