//! Scenario tests of the TLS, DNS, protocol and config causes: each fires on its evidence and
//! stays quiet (or yields to another cause) without it.

use medic_parse::error_log::FailureClass;

use super::tests::{live, log_group, post_mortem, tcp_target, top};
use crate::config::{build, testing::one, BuildOptions};
use crate::diagnose::diagnose;
use crate::facts::tls::{CertFacts, Outcome, TlsFacts, Trust, Variant, Verify};
use crate::facts::{Connect, HttpFact, ProbeRequest, Resolution, Speaks};
use crate::facts::{Facts, LogGroup, NginxTest, ProbedTarget};
use crate::rules::{Finding, Severity};

const UP: &str = "127.0.0.1:8443";

/// `facts` with the model of one `location /` holding `lines`.
fn with_conf(mut facts: Facts, lines: &str) -> Facts {
    let text = format!(
        "http {{\n    server {{\n        listen 80;\n        location / {{\n{lines}\n        }}\n    }}\n}}\n"
    );
    facts
        .models
        .push(build(&one(&text), &BuildOptions::default()));
    facts
}

fn group(class: FailureClass, detail: Option<&str>, text: &str) -> LogGroup {
    let mut g = log_group(class, Some(UP), detail, 3);
    g.first_line.text = format!("2026/11/20 14:32:10 [error] 1#1: *1 {text}");
    g
}

fn variant(as_nginx: bool, sni: Option<&str>, versions: &str, offered: bool, ok: bool) -> Variant {
    Variant {
        as_nginx,
        sni: sni.map(str::to_string),
        versions: versions.into(),
        offered_by_nginx: offered,
        outcome: if ok {
            Outcome::Ok {
                version: versions.into(),
                cipher: "TLS_AES_256_GCM_SHA384".into(),
            }
        } else {
            Outcome::Alert {
                text: "sslv3 alert handshake failure".into(),
            }
        },
        verify: None,
        certificate: ok.then_some(0),
        elapsed_ms: 1,
        client_cert_requested: None,
    }
}

fn cert(days_left: i64) -> CertFacts {
    CertFacts {
        subject: "CN=upstream.test".into(),
        sans: vec!["DNS:upstream.test".into()],
        issuer: "CN=Test CA".into(),
        self_signed: false,
        not_before: Some("2024-01-01T00:00:00Z".into()),
        not_after: Some("2026-12-01T00:00:00Z".into()),
        not_yet_valid: false,
        expired: days_left < 0,
        days_left: Some(days_left),
        name_matches: Some(true),
        sha256: "ab".repeat(32),
        chain_len: 1,
    }
}

fn tls_facts(sni: Option<&str>, variants: Vec<Variant>, certs: Vec<CertFacts>) -> TlsFacts {
    TlsFacts {
        addr: UP.into(),
        sni: sni.map(str::to_string),
        name: Some("upstream.test".into()),
        verify: true,
        trust: Trust {
            source: "file".into(),
            file: Some("/etc/nginx/ca.pem".into()),
            error: None,
        },
        scheme_mismatch: None,
        variants,
        certificates: certs,
    }
}

fn tls_target(tls: TlsFacts) -> ProbedTarget {
    let mut t = tcp_target(UP, Connect::Ok { latency_ms: 0.1 });
    t.tls = Some(tls);
    t
}

fn http_fact(speaks: Speaks, tls_expected: bool) -> HttpFact {
    HttpFact {
        address: UP.into(),
        request: ProbeRequest {
            method: "GET".into(),
            host: "localhost".into(),
            path: "/".into(),
            host_from: "the upstream name".into(),
        },
        tls_expected,
        speaks,
        status: None,
        status_line: None,
        ttfb_ms: Some(1.0),
        read_timeout_ms: 60_000,
        ttfb_exceeds_timeout: false,
        gave_up_ms: None,
        header_bytes: None,
        header_complete: false,
        buffer_size: 4096,
        header_exceeds_buffer: false,
        scheme_mismatch: matches!(
            (tls_expected, speaks),
            (false, Speaks::Tls) | (true, Speaks::Http)
        ),
        error: None,
    }
}

fn http_target(h: HttpFact) -> ProbedTarget {
    let mut t = tcp_target(UP, Connect::Ok { latency_ms: 0.1 });
    t.facts.http = Some(h);
    t
}

fn ids(facts: &Facts) -> Vec<&'static str> {
    diagnose(facts).iter().map(|f| f.id).collect()
}

fn has_evidence(f: &Finding, kind: &str, needle: &str) -> bool {
    f.evidence
        .iter()
        .any(|e| e.kind == kind && (e.text.contains(needle) || e.source.contains(needle)))
}

// config-invalid

fn emerg_group(class: FailureClass) -> LogGroup {
    let mut g = log_group(class, None, Some("emerg"), 1);
    g.first_line.text = "2026/11/20 14:32:10 [emerg] 4711#4711: host not found in upstream \"backend.invalid\" in /etc/nginx/nginx.conf:12".into();
    g
}

#[test]
fn emerg_in_the_log_is_config_invalid() {
    let f = top(&post_mortem(vec![emerg_group(FailureClass::DnsFailure)]));
    assert_eq!(f.id, "config-invalid");
    assert_eq!(f.severity, Severity::Error);
    assert_eq!(f.status, None);
    assert!(
        f.title
            .contains("host not found in upstream \"backend.invalid\""),
        "{}",
        f.title
    );
    assert!(f.title.contains("nginx.conf:12"), "{}", f.title);
    assert!(
        has_evidence(&f, "config", "/etc/nginx/nginx.conf:12"),
        "{f:#?}"
    );
    assert_eq!(f.fix.commands, ["nginx -t", "systemctl reload nginx"]);
}

#[test]
fn old_emerg_is_info_when_nginx_t_passes_now() {
    let mut facts = live(vec![emerg_group(FailureClass::DnsFailure)], vec![]);
    facts.nginx_t.push(NginxTest {
        command: "nginx -t -c /etc/nginx/nginx.conf".into(),
        ok: true,
        stderr: "nginx: the configuration file /etc/nginx/nginx.conf syntax is ok\nnginx: configuration file /etc/nginx/nginx.conf test is successful\n".into(),
    });
    let f = top(&facts);
    assert_eq!(f.id, "config-invalid");
    assert_eq!(f.severity, Severity::Info);
    assert!(has_evidence(&f, "nginx -t", "test is successful"));
}

#[test]
fn failing_nginx_t_is_one_finding_with_the_log_as_evidence() {
    let mut facts = post_mortem(vec![emerg_group(FailureClass::DnsFailure)]);
    facts.nginx_t.push(NginxTest {
        command: "nginx -t -c /etc/nginx/nginx.conf".into(),
        ok: false,
        stderr: "nginx: [emerg] host not found in upstream \"backend.invalid:8080\" in /etc/nginx/nginx.conf:12\nnginx: configuration file /etc/nginx/nginx.conf test failed\n".into(),
    });
    let all = diagnose(&facts);
    assert_eq!(all.len(), 1, "{all:#?}");
    let f = &all[0];
    assert_eq!(f.id, "config-invalid");
    assert_eq!(
        f.title,
        "nginx -t fails: host not found in upstream \"backend.invalid:8080\" (nginx.conf:12)"
    );
    assert_eq!(f.evidence[0].kind, "nginx -t");
    assert!(f.evidence[0].text.contains("test failed"));
    assert!(has_evidence(f, "log", "[emerg]"));
    assert_eq!(f.count, Some(1));
}

#[test]
fn emerg_of_no_failure_class_is_config_invalid() {
    let mut g = log_group(FailureClass::Other, None, Some("emerg"), 1);
    g.first_line.text =
        "2026/11/20 14:32:10 [emerg] 1#1: unknown directive \"proxy_passs\" in /etc/nginx/nginx.conf:7".into();
    let f = top(&post_mortem(vec![g]));
    assert_eq!(f.id, "config-invalid");
    assert!(f.title.contains("unknown directive"));
    assert_eq!(f.class, None);
}

#[test]
fn runtime_entries_are_not_config_invalid() {
    let g = group(
        FailureClass::DnsFailure,
        Some("app.test"),
        "app.test could not be resolved (3: Host not found)",
    );
    assert!(!ids(&post_mortem(vec![g])).contains(&"config-invalid"));
}

// scheme-mismatch

#[test]
fn wrong_version_number_is_https_to_a_plain_port() {
    let facts = with_conf(
        post_mortem(vec![group(
            FailureClass::TlsHandshake,
            Some("wrong version number"),
            "SSL_do_handshake() failed (SSL: error:0A00010B:SSL routines::wrong version number) while SSL handshaking to upstream",
        )]),
        &format!("proxy_pass https://{UP};"),
    );
    let f = top(&facts);
    assert_eq!(f.id, "scheme-mismatch");
    assert!(f.title.contains("speaks plain HTTP"), "{}", f.title);
    assert!(f.fix.steps[0].contains(&format!("proxy_pass http://{UP}")));
}

#[test]
fn premature_close_from_a_tls_port_is_scheme_mismatch_live() {
    let facts = live(
        vec![group(
            FailureClass::PrematureClose,
            None,
            "upstream prematurely closed connection while reading response header from upstream",
        )],
        vec![http_target(http_fact(Speaks::Tls, false))],
    );
    let f = top(&facts);
    assert_eq!(f.id, "scheme-mismatch");
    assert!(f.title.contains("the port speaks TLS"), "{}", f.title);
    assert!(has_evidence(&f, "probe", "answers with TLS"));
}

#[test]
fn premature_close_without_a_probe_is_not_scheme_mismatch() {
    let facts = post_mortem(vec![group(
        FailureClass::PrematureClose,
        None,
        "upstream prematurely closed connection while reading response header from upstream",
    )]);
    assert!(!ids(&facts).contains(&"scheme-mismatch"));
    // Live, a port that answers HTTP is not a mismatch either.
    let facts = live(
        vec![group(
            FailureClass::PrematureClose,
            None,
            "upstream prematurely closed connection",
        )],
        vec![http_target(http_fact(Speaks::Http, false))],
    );
    assert!(!ids(&facts).contains(&"scheme-mismatch"));
}

// tls-sni-required, tls-protocol-mismatch, tls-handshake

fn handshake_failure(detail: &str) -> LogGroup {
    group(
        FailureClass::TlsHandshake,
        Some(detail),
        &format!("SSL_do_handshake() failed (SSL: error:0A000410:SSL routines::{detail}:SSL alert number 40) while SSL handshaking to upstream"),
    )
}

fn sni_matrix() -> TlsFacts {
    tls_facts(
        None,
        vec![
            variant(true, None, "TLSv1.2-TLSv1.3", true, false),
            variant(false, Some("upstream.test"), "TLSv1.2", true, true),
            variant(false, Some("upstream.test"), "TLSv1.3", true, true),
            variant(false, None, "TLSv1.2", true, false),
            variant(false, None, "TLSv1.3", true, false),
        ],
        vec![cert(300)],
    )
}

#[test]
fn sni_required_live() {
    let facts = with_conf(
        live(
            vec![handshake_failure("sslv3 alert handshake failure")],
            vec![tls_target(sni_matrix())],
        ),
        &format!("proxy_pass https://{UP};\n proxy_ssl_name upstream.test;"),
    );
    let f = top(&facts);
    assert_eq!(f.id, "tls-sni-required");
    assert!(f.fix.steps[0].contains("proxy_ssl_server_name on;"));
    assert!(has_evidence(&f, "config", "proxy_ssl_server_name off"));
    assert!(has_evidence(&f, "probe", "SNI upstream.test"));
}

#[test]
fn sni_required_post_mortem_from_unrecognized_name() {
    let facts = with_conf(
        post_mortem(vec![handshake_failure("tlsv1 unrecognized name")]),
        &format!("proxy_pass https://{UP};"),
    );
    assert_eq!(top(&facts).id, "tls-sni-required");
}

#[test]
fn sni_on_yields_to_the_class() {
    let facts = with_conf(
        live(
            vec![handshake_failure("sslv3 alert handshake failure")],
            vec![tls_target(sni_matrix())],
        ),
        &format!("proxy_pass https://{UP};\n proxy_ssl_server_name on;"),
    );
    let f = top(&facts);
    assert_eq!(f.id, "tls-handshake");
    assert!(
        f.title.contains("sslv3 alert handshake failure"),
        "{}",
        f.title
    );
    assert!(has_evidence(&f, "probe", "nginx's own handshake"));
}

#[test]
fn protocol_version_alert_is_a_protocol_mismatch() {
    let facts = with_conf(
        post_mortem(vec![handshake_failure("tlsv1 alert protocol version")]),
        &format!("proxy_pass https://{UP};\n proxy_ssl_protocols TLSv1.2;"),
    );
    let f = top(&facts);
    assert_eq!(f.id, "tls-protocol-mismatch");
    assert!(
        f.title.contains("proxy_ssl_protocols TLSv1.2"),
        "{}",
        f.title
    );
    assert!(has_evidence(&f, "config", "proxy_ssl_protocols TLSv1.2"));
}

#[test]
fn protocol_mismatch_live_from_the_matrix() {
    let matrix = tls_facts(
        Some("upstream.test"),
        vec![
            variant(true, Some("upstream.test"), "TLSv1.2", true, false),
            variant(false, Some("upstream.test"), "TLSv1.2", true, false),
            variant(false, Some("upstream.test"), "TLSv1.3", false, true),
            variant(false, None, "TLSv1.2", true, false),
            variant(false, None, "TLSv1.3", false, true),
        ],
        vec![cert(300)],
    );
    let facts = with_conf(
        live(
            vec![handshake_failure("sslv3 alert handshake failure")],
            vec![tls_target(matrix)],
        ),
        &format!(
            "proxy_pass https://{UP};\n proxy_ssl_protocols TLSv1.2;\n proxy_ssl_server_name on;"
        ),
    );
    let f = top(&facts);
    assert_eq!(f.id, "tls-protocol-mismatch");
    assert!(f.title.contains("accepts TLSv1.3"), "{}", f.title);
    assert!(f.fix.steps[0].contains("proxy_ssl_protocols TLSv1.2 TLSv1.3;"));
}

#[test]
fn other_handshake_failures_are_the_class() {
    let f = top(&post_mortem(vec![handshake_failure("no shared cipher")]));
    assert_eq!(f.id, "tls-handshake");
    assert!(f.title.contains("no shared cipher"));
    // Offered versions that work are no protocol mismatch.
    let facts = with_conf(
        live(
            vec![handshake_failure("sslv3 alert handshake failure")],
            vec![tls_target(tls_facts(
                Some("upstream.test"),
                vec![
                    variant(true, Some("upstream.test"), "TLSv1.2-TLSv1.3", true, false),
                    variant(false, Some("upstream.test"), "TLSv1.2", true, true),
                ],
                vec![],
            ))],
        ),
        &format!("proxy_pass https://{UP};\n proxy_ssl_server_name on;"),
    );
    assert_eq!(top(&facts).id, "tls-handshake");
}

// tls-expired, tls-name-mismatch, tls-untrusted, tls-verify

fn verify_error(detail: &str) -> LogGroup {
    group(
        FailureClass::TlsVerify,
        Some(detail),
        &format!(
            "upstream SSL certificate verify error: ({detail}) while SSL handshaking to upstream"
        ),
    )
}

#[test]
fn expired_from_the_log() {
    let f = top(&post_mortem(vec![verify_error(
        "10:certificate has expired",
    )]));
    assert_eq!(f.id, "tls-expired");
    assert!(f.title.contains("has expired"));
    let f = top(&post_mortem(vec![verify_error(
        "9:certificate is not yet valid",
    )]));
    assert_eq!(f.id, "tls-expired");
    assert!(f.title.contains("not yet valid"));
    assert!(f.fix.steps.iter().any(|s| s.contains("timedatectl")));
}

#[test]
fn expired_in_the_log_renewed_since_keeps_the_log_and_adds_the_probe() {
    let mut tls = tls_facts(
        Some("upstream.test"),
        vec![variant(
            true,
            Some("upstream.test"),
            "TLSv1.2-TLSv1.3",
            true,
            true,
        )],
        vec![cert(200)],
    );
    tls.variants[0].verify = Some(Verify {
        code: 0,
        text: "ok".into(),
    });
    let facts = live(
        vec![verify_error("10:certificate has expired")],
        vec![tls_target(tls)],
    );
    let f = top(&facts);
    assert_eq!(f.id, "tls-expired");
    assert!(f.title.contains("renewed since"), "{}", f.title);
    assert!(has_evidence(&f, "probe", "200 days left"));
}

#[test]
fn expired_seen_by_the_probe_only() {
    let mut tls = tls_facts(
        Some("upstream.test"),
        vec![variant(
            true,
            Some("upstream.test"),
            "TLSv1.2-TLSv1.3",
            true,
            true,
        )],
        vec![cert(-30)],
    );
    tls.variants[0].verify = Some(Verify {
        code: 10,
        text: "certificate has expired".into(),
    });
    let f = top(&live(vec![], vec![tls_target(tls)]));
    assert_eq!(f.id, "tls-expired");
    assert_eq!(f.count, Some(0));
    assert!(f.title.contains("30 days ago"), "{}", f.title);
}

#[test]
fn name_mismatch_names_the_name() {
    let g = group(
        FailureClass::TlsVerify,
        Some("does not match"),
        "upstream SSL certificate does not match \"upstream.test\" while SSL handshaking to upstream",
    );
    let f = top(&post_mortem(vec![g.clone()]));
    assert_eq!(f.id, "tls-name-mismatch");
    assert!(f.title.contains("upstream.test"), "{}", f.title);
    // Live, the names the certificate holds.
    let mut c = cert(300);
    c.sans = vec!["DNS:other.test".into()];
    c.name_matches = Some(false);
    let tls = tls_facts(
        Some("upstream.test"),
        vec![variant(
            true,
            Some("upstream.test"),
            "TLSv1.2-TLSv1.3",
            true,
            true,
        )],
        vec![c],
    );
    let f = top(&live(vec![g], vec![tls_target(tls)]));
    assert_eq!(f.id, "tls-name-mismatch");
    assert!(
        f.title.contains("is for other.test, not upstream.test"),
        "{}",
        f.title
    );
    assert!(f.fix.steps[0].contains("proxy_ssl_name other.test;"));
}

#[test]
fn self_signed_is_untrusted() {
    let facts = with_conf(
        post_mortem(vec![verify_error("18:self-signed certificate")]),
        &format!("proxy_pass https://{UP};\n proxy_ssl_verify on;"),
    );
    let f = top(&facts);
    assert_eq!(f.id, "tls-untrusted");
    assert!(f.title.contains("nginx trusts no CA"), "{}", f.title);
    assert!(f.fix.steps[0].contains("self-signed"));
    for d in [
        "19:self-signed certificate in certificate chain",
        "20:unable to get local issuer certificate",
        "21:unable to verify the first certificate",
        "2:unable to get issuer certificate",
    ] {
        assert_eq!(
            top(&post_mortem(vec![verify_error(d)])).id,
            "tls-untrusted",
            "{d}"
        );
    }
}

#[test]
fn other_verify_errors_are_the_class() {
    let f = top(&post_mortem(vec![verify_error(
        "26:unsupported certificate purpose",
    )]));
    assert_eq!(f.id, "tls-verify");
    assert!(f.title.contains("26:unsupported certificate purpose"));
    let all = ids(&post_mortem(vec![verify_error(
        "10:certificate has expired",
    )]));
    assert!(!all.contains(&"tls-verify") && !all.contains(&"tls-untrusted"));
}

// dns-failure

const DYNAMIC: &str =
    "resolver 127.0.0.53 valid=10s;\n set $b app.test;\n proxy_pass http://$b:8080;";

fn resolve_failure() -> LogGroup {
    let mut g = log_group(FailureClass::DnsFailure, None, Some("app.test"), 3);
    g.first_line.text = "2026/11/20 14:32:10 [error] 1#1: *1 app.test could not be resolved (3: Host not found), client: 127.0.0.1, server: , request: \"GET / HTTP/1.1\", host: \"localhost\"".into();
    g
}

fn unresolved_target() -> ProbedTarget {
    let mut t = tcp_target("app.test:8080", Connect::Refused);
    t.facts.tcp.clear();
    t.facts.addresses.clear();
    t.facts.resolve = Some(Resolution {
        host: "app.test".into(),
        via: "resolver".into(),
        addresses: vec![],
        error: Some("app.test could not be resolved (3: Host not found)".into()),
    });
    t
}

#[test]
fn dns_failure_post_mortem_finds_the_upstream_in_the_config() {
    let f = top(&with_conf(post_mortem(vec![resolve_failure()]), DYNAMIC));
    assert_eq!(f.id, "dns-failure");
    assert_eq!(f.upstream.as_deref(), Some("app.test:8080"));
    assert_eq!(
        f.title,
        "app.test could not be resolved (3: Host not found)"
    );
    assert!(has_evidence(&f, "config", "resolver 127.0.0.53"));
    assert!(has_evidence(&f, "config", "proxy_pass http://$b:8080"));
}

#[test]
fn dns_failure_live_is_one_finding_with_the_probe() {
    let facts = with_conf(
        live(vec![resolve_failure()], vec![unresolved_target()]),
        DYNAMIC,
    );
    let all = diagnose(&facts);
    assert_eq!(all.len(), 1, "{all:#?}");
    assert_eq!(all[0].id, "dns-failure");
    assert_eq!(all[0].upstream.as_deref(), Some("app.test:8080"));
    assert_eq!(all[0].count, Some(3));
    assert!(has_evidence(
        &all[0],
        "probe",
        "app.test via resolver: error"
    ));
    // The probe alone still finds it.
    let f = top(&with_conf(live(vec![], vec![unresolved_target()]), DYNAMIC));
    assert_eq!(f.id, "dns-failure");
    assert_eq!(f.count, Some(0));
}

#[test]
fn no_resolver_defined() {
    let mut g = log_group(FailureClass::DnsFailure, None, Some("app.test"), 1);
    g.first_line.text = "2026/11/20 14:32:10 [error] 1#1: *1 no resolver defined to resolve app.test, client: 127.0.0.1".into();
    let f = top(&with_conf(
        post_mortem(vec![g]),
        "set $b app.test;\n proxy_pass http://$b:8080;",
    ));
    assert_eq!(f.id, "dns-failure");
    assert!(f.title.contains("no resolver defined"));
    assert!(has_evidence(&f, "config", "no `resolver` in effect"));
    assert!(f
        .fix
        .steps
        .iter()
        .any(|s| s.contains("resolver 127.0.0.53")));
}

#[test]
fn emerg_host_not_found_is_not_dns_failure() {
    let mut facts = post_mortem(vec![emerg_group(FailureClass::DnsFailure)]);
    facts.nginx_t.push(NginxTest {
        command: "nginx -t".into(),
        ok: false,
        stderr: "nginx: [emerg] host not found in upstream \"backend.invalid\" in /etc/nginx/nginx.conf:12".into(),
    });
    assert_eq!(ids(&facts), ["config-invalid"]);
}

// cert-expires-soon

fn expiring(days: i64) -> Facts {
    let tls = tls_facts(
        Some("upstream.test"),
        vec![variant(
            true,
            Some("upstream.test"),
            "TLSv1.2-TLSv1.3",
            true,
            true,
        )],
        vec![cert(days)],
    );
    live(vec![], vec![tls_target(tls)])
}

#[test]
fn certificate_expiring_within_14_days_is_a_warning() {
    let all = diagnose(&expiring(7));
    assert_eq!(all.len(), 1, "{all:#?}");
    let f = &all[0];
    assert_eq!(f.id, "cert-expires-soon");
    assert_eq!(f.severity, Severity::Warning);
    assert_eq!(f.status, None);
    assert_eq!(f.upstream.as_deref(), Some(UP));
    assert!(
        f.title.contains("expires in 7 days (2026-12-01T00:00:00Z)"),
        "{}",
        f.title
    );
}

#[test]
fn certificate_far_from_expiry_or_expired_is_not_expiring_soon() {
    assert!(!ids(&expiring(30)).contains(&"cert-expires-soon"));
    assert!(!ids(&expiring(-1)).contains(&"cert-expires-soon"));
    assert!(!ids(&post_mortem(vec![])).contains(&"cert-expires-soon"));
}

// header-too-big

fn too_big() -> LogGroup {
    group(
        FailureClass::HeaderTooBig,
        None,
        "upstream sent too big header while reading response header from upstream",
    )
}

#[test]
fn header_too_big_live_measures_the_header() {
    let mut h = http_fact(Speaks::Http, false);
    h.status_line = Some("HTTP/1.1 200 OK".into());
    h.header_bytes = Some(9000);
    h.header_complete = true;
    h.header_exceeds_buffer = true;
    let facts = with_conf(
        live(vec![too_big()], vec![http_target(h)]),
        &format!("proxy_pass http://{UP};"),
    );
    let f = top(&facts);
    assert_eq!(f.id, "header-too-big");
    assert!(has_evidence(
        &f,
        "probe",
        "upstream header is 9000 bytes; proxy_buffer_size is 4k"
    ));
    assert!(
        f.fix.steps[0].contains("proxy_buffer_size 16k;"),
        "{:?}",
        f.fix.steps
    );
    assert!(f.fix.steps[1].contains("proxy_buffers 8 16k;"));
}

#[test]
fn header_too_big_post_mortem_doubles_the_buffer() {
    let facts = with_conf(
        post_mortem(vec![too_big()]),
        &format!("fastcgi_buffer_size 16k;\n fastcgi_pass {UP};"),
    );
    let f = top(&facts);
    assert_eq!(f.id, "header-too-big");
    assert!(f.title.contains("fastcgi_buffer_size (16k)"), "{}", f.title);
    assert!(f.fix.steps[0].contains("fastcgi_buffer_size 32k;"));
    assert!(has_evidence(&f, "config", "fastcgi_buffer_size 16k"));
    // Not for other classes.
    assert!(
        !ids(&post_mortem(vec![handshake_failure("no shared cipher")])).contains(&"header-too-big")
    );
}

// invalid-response

fn invalid() -> LogGroup {
    group(
        FailureClass::InvalidResponse,
        None,
        "upstream sent no valid HTTP/1.0 header while reading response header from upstream, client: 127.0.0.1",
    )
}

#[test]
fn proxy_pass_to_a_fastcgi_port() {
    let facts = with_conf(
        live(
            vec![invalid()],
            vec![http_target(http_fact(Speaks::Fastcgi, false))],
        ),
        &format!("proxy_pass http://{UP};"),
    );
    let f = top(&facts);
    assert_eq!(f.id, "invalid-response");
    assert!(f.title.contains("speaks FastCGI"), "{}", f.title);
    assert!(f.fix.summary.contains("fastcgi_pass"));
    assert!(has_evidence(&f, "probe", "a FastCGI record"));
}

#[test]
fn invalid_response_post_mortem_quotes_nginx() {
    let f = top(&post_mortem(vec![invalid()]));
    assert_eq!(f.id, "invalid-response");
    assert!(
        f.title
            .starts_with("upstream sent no valid HTTP/1.0 header"),
        "{}",
        f.title
    );
}

#[test]
fn invalid_response_from_a_tls_port_is_scheme_mismatch() {
    let facts = live(
        vec![invalid()],
        vec![http_target(http_fact(Speaks::Tls, false))],
    );
    let all = ids(&facts);
    assert_eq!(all[0], "scheme-mismatch");
    assert!(!all.contains(&"invalid-response"));
}
