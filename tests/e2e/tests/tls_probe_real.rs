//! The TLS probe against the real `openssl s_server` with certificates made by the openssl
//! binary: self-signed, expired (signed by a test CA with past dates), SNI-only, TLS 1.3-only,
//! wrong name; and a real nginx speaking plain HTTP probed as TLS. Each test owns its servers
//! (children, killed by PID on drop).

use std::ffi::OsStr;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use medic_e2e::tls::{SelfSigned, TestCa, TlsServer};
use medic_e2e::{free_port, nginx, Nginx, Prefix};
use nginx_medic::probe::tls::{probe_tls, Outcome, TlsFacts, TlsSettings};

const T: Duration = Duration::from_secs(10);

fn settings(name: &str, sni: bool, ca: Option<PathBuf>) -> TlsSettings {
    TlsSettings {
        sni: sni.then(|| name.to_string()),
        name: Some(name.to_string()),
        verify: true,
        trusted_ca_file: ca,
        protocols: vec!["TLSv1.2".into(), "TLSv1.3".into()],
    }
}

fn addr(s: &TlsServer) -> SocketAddr {
    s.addr().parse().unwrap()
}

fn nginx_verify(f: &TlsFacts) -> (i32, String) {
    let v = f
        .as_nginx()
        .unwrap()
        .verify
        .clone()
        .unwrap_or_else(|| panic!("{f:#?}"));
    (v.code, v.text)
}

#[test]
fn self_signed_is_untrusted_unless_it_is_the_anchor() {
    let dir = tempfile::tempdir().unwrap();
    let id = SelfSigned::create(dir.path(), "up", "upstream.test");
    let other = SelfSigned::create(dir.path(), "other", "other.test");
    let srv = TlsServer::start(&id, &dir.path().join("s_server.log"));

    let f = probe_tls(
        addr(&srv),
        &settings("upstream.test", true, Some(other.cert.clone())),
        T,
    );
    assert!(f.as_nginx().unwrap().outcome.is_ok(), "{f:#?}");
    assert_eq!(nginx_verify(&f), (18, "self-signed certificate".into()));
    let c = f.nginx_certificate().unwrap();
    assert_eq!(c.subject, "CN=upstream.test");
    assert_eq!(c.issuer, "CN=upstream.test");
    assert!(c.self_signed && c.name_matches == Some(true) && !c.expired);

    let f = probe_tls(
        addr(&srv),
        &settings("upstream.test", true, Some(id.cert.clone())),
        T,
    );
    assert_eq!(nginx_verify(&f).0, 0, "{f:#?}");
}

#[test]
fn expired_leaf_from_a_test_ca() {
    let dir = tempfile::tempdir().unwrap();
    let ca = TestCa::create(dir.path());
    let leaf = ca.sign("old", "upstream.test", "20200101000000Z", "20200201000000Z");
    let srv = TlsServer::start(&leaf, &dir.path().join("s_server.log"));
    let f = probe_tls(
        addr(&srv),
        &settings("upstream.test", true, Some(ca.cert.clone())),
        T,
    );
    assert_eq!(
        nginx_verify(&f),
        (10, "certificate has expired".into()),
        "{f:#?}"
    );
    let c = f.nginx_certificate().unwrap();
    assert!(c.expired && !c.self_signed, "{c:?}");
    assert_eq!(c.issuer, "CN=medic test CA");
    assert_eq!(c.not_before.as_deref(), Some("2020-01-01T00:00:00Z"));
    assert_eq!(c.not_after.as_deref(), Some("2020-02-01T00:00:00Z"));
}

#[test]
fn wrong_name_is_reported_while_the_chain_verifies() {
    let dir = tempfile::tempdir().unwrap();
    let ca = TestCa::create(dir.path());
    let leaf = ca.sign("api", "api.test", "20240101000000Z", "20991231000000Z");
    let srv = TlsServer::start(&leaf, &dir.path().join("s_server.log"));
    let f = probe_tls(
        addr(&srv),
        &settings("upstream.test", true, Some(ca.cert.clone())),
        T,
    );
    assert_eq!(nginx_verify(&f).0, 0, "{f:#?}");
    let c = f.nginx_certificate().unwrap();
    assert_eq!(c.sans, vec!["DNS:api.test"]);
    assert_eq!(c.name_matches, Some(false));
}

#[test]
fn sni_only_server() {
    let dir = tempfile::tempdir().unwrap();
    let default = SelfSigned::create(dir.path(), "default", "default.test");
    let up = SelfSigned::create(dir.path(), "up", "upstream.test");
    let extra: Vec<&OsStr> = vec![
        "-servername".as_ref(),
        "upstream.test".as_ref(),
        "-cert2".as_ref(),
        up.cert.as_os_str(),
        "-key2".as_ref(),
        up.key.as_os_str(),
        "-servername_fatal".as_ref(),
    ];
    let srv = TlsServer::start_with(&default, &extra, &dir.path().join("s_server.log"));
    // proxy_ssl_server_name off: nginx is shown the default certificate.
    let f = probe_tls(
        addr(&srv),
        &settings("upstream.test", false, Some(up.cert.clone())),
        T,
    );
    let n = f.as_nginx().unwrap();
    let shown = &f.certificates[n.certificate.unwrap()];
    assert_eq!(shown.subject, "CN=default.test", "{f:#?}");
    assert_eq!(shown.name_matches, Some(false));
    let with_sni = f
        .variants
        .iter()
        .find(|v| !v.as_nginx && v.sni.is_some() && v.outcome.is_ok())
        .unwrap_or_else(|| panic!("{f:#?}"));
    let good = &f.certificates[with_sni.certificate.unwrap()];
    assert_eq!(good.subject, "CN=upstream.test");
    assert_eq!(with_sni.verify.as_ref().unwrap().code, 0);
    // Another SNI: the server's fatal unrecognized_name alert.
    let f = probe_tls(addr(&srv), &settings("wrong.test", true, None), T);
    assert!(
        matches!(&f.as_nginx().unwrap().outcome, Outcome::Alert { text } if text.contains("unrecognized name")),
        "{f:#?}"
    );
}

#[test]
fn tls13_only_server_and_a_tls12_config() {
    let dir = tempfile::tempdir().unwrap();
    let id = SelfSigned::create(dir.path(), "up", "upstream.test");
    let srv = TlsServer::start_with(&id, &["-tls1_3".as_ref()], &dir.path().join("s_server.log"));
    let mut s = settings("upstream.test", true, Some(id.cert.clone()));
    s.protocols = vec!["TLSv1.2".into()];
    let f = probe_tls(addr(&srv), &s, T);
    let n = f.as_nginx().unwrap();
    assert!(
        matches!(&n.outcome, Outcome::Alert { text } if text.contains("protocol version")),
        "{f:#?}"
    );
    for v in f.variants.iter().filter(|v| !v.as_nginx && v.sni.is_some()) {
        assert_eq!(v.outcome.is_ok(), v.versions == "TLSv1.3", "{v:?}");
    }
}

#[test]
fn plain_http_nginx_probed_as_tls() {
    let prefix = Prefix::new();
    let port = free_port();
    let conf = nginx::config(
        &prefix,
        &format!(
            "    server {{\n        listen 127.0.0.1:{port};\n        return 200 ok;\n    }}\n"
        ),
    );
    let _nginx = Nginx::start(&prefix, &conf, port);
    let f = probe_tls(
        format!("127.0.0.1:{port}").parse().unwrap(),
        &settings("upstream.test", true, None),
        T,
    );
    let m = f
        .scheme_mismatch
        .as_ref()
        .unwrap_or_else(|| panic!("{f:#?}"));
    assert!(
        m.first_bytes.starts_with("HTTP/1.1 400 Bad Request"),
        "{m:?}"
    );
    assert_eq!(f.as_nginx().unwrap().outcome, Outcome::NotTls);
}
