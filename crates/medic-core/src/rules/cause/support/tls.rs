//! TLS: the probe's handshakes and certificates, and the `*_ssl_*` settings of a pass, as
//! evidence.

use crate::config::{Model, Pass, Ssl};
use crate::facts::tls::{CertFacts, Outcome, TlsFacts, Variant};
use crate::rules::group::Group;
use crate::rules::{Evidence, Finding};

/// The TLS probe's facts of the group's first target that has them.
pub(crate) fn tls_of<'f>(g: &Group<'f>) -> Option<&'f TlsFacts> {
    g.targets.iter().find_map(|t| t.tls.as_ref())
}

/// The first pass to the upstream that talks TLS, with its `*_ssl_*` settings.
pub(crate) fn ssl_of<'f>(g: &Group<'f>) -> Option<(&'f Model, &'f Pass, &'f Ssl)> {
    g.passes
        .iter()
        .find_map(|(m, p)| Some((*m, *p, p.settings.ssl.as_deref()?)))
}

/// The directive prefix of the group's pass (`proxy`, `grpc`, `uwsgi`).
pub(crate) fn prefix_of(g: &Group<'_>) -> &'static str {
    g.passes.first().map_or("proxy", |(_, p)| p.kind.prefix())
}

/// The `openssl s_client` command that makes nginx's handshake by hand.
pub(crate) fn s_client(g: &Group<'_>, tls: Option<&TlsFacts>) -> String {
    let addr = tls
        .map(|t| t.addr.clone())
        .or_else(|| g.upstream.clone())
        .unwrap_or_else(|| "HOST:PORT".to_string());
    let name = tls
        .and_then(|t| t.sni.clone().or_else(|| t.name.clone()))
        .map(|n| format!(" -servername {n}"))
        .unwrap_or_default();
    format!("openssl s_client -connect {addr}{name} </dev/null")
}

/// How a handshake ended, in a few words.
pub(crate) fn outcome_text(o: &Outcome) -> String {
    match o {
        Outcome::Ok { version, cipher } => format!("ok ({version}, {cipher})"),
        Outcome::Alert { text } => format!("the server sent the alert `{text}`"),
        Outcome::Closed => "the server closed the connection mid-handshake".to_string(),
        Outcome::NotTls => "the server answered in plain text, not TLS".to_string(),
        Outcome::Error { text } => format!("failed: {text}"),
        Outcome::TimedOut => "timed out".to_string(),
        Outcome::Connect { text } => format!("the connection failed: {text}"),
        Outcome::Skipped { why } => format!("not tried: {why}"),
    }
}

/// `nginx's handshake (no SNI, TLSv1.2-TLSv1.3): ...` for one variant.
pub(crate) fn variant_text(v: &Variant) -> String {
    let who = if v.as_nginx {
        "nginx's own handshake"
    } else {
        "handshake"
    };
    let sni = v
        .sni
        .as_deref()
        .map_or("no SNI".to_string(), |s| format!("SNI {s}"));
    let offered = if v.offered_by_nginx || v.as_nginx {
        ""
    } else {
        ", a version nginx does not offer"
    };
    format!(
        "{who} ({sni}, {}{offered}): {}",
        v.versions,
        outcome_text(&v.outcome)
    )
}

/// One evidence item per handshake the TLS probe made.
pub(crate) fn variant_evidence(tls: &TlsFacts, f: &mut Finding) {
    for v in &tls.variants {
        f.evidence.push(Evidence::probe(
            "tls",
            format!("{}: {}", tls.addr, variant_text(v)),
        ));
    }
}

/// A setting as evidence: its directive, or `NAME VALUE (nginx's default)`.
pub(crate) fn setting_evidence<T>(
    eff: &crate::config::Eff<T>,
    default_text: impl FnOnce() -> String,
) -> Evidence {
    match &eff.src {
        Some(src) => Evidence::config(src),
        None => Evidence::other("config", "default".to_string(), default_text()),
    }
}

/// What a verify failure is about.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum VerifyKind {
    Expired,
    NameMismatch,
    Untrusted,
    Other,
}

/// OpenSSL's `X509_V_ERR_*` code to the cause.
fn kind_of_code(code: i32) -> VerifyKind {
    match code {
        // CERT_NOT_YET_VALID, CERT_HAS_EXPIRED
        9 | 10 => VerifyKind::Expired,
        // HOSTNAME_MISMATCH
        62 => VerifyKind::NameMismatch,
        // UNABLE_TO_GET_ISSUER_CERT, DEPTH_ZERO_SELF_SIGNED_CERT, SELF_SIGNED_CERT_IN_CHAIN,
        // UNABLE_TO_GET_ISSUER_CERT_LOCALLY, UNABLE_TO_VERIFY_LEAF_SIGNATURE
        2 | 18 | 19 | 20 | 21 => VerifyKind::Untrusted,
        _ => VerifyKind::Other,
    }
}

/// The group's verify failure: from the log's detail (`10:certificate has expired`, `does not
/// match`) when there is one, else from the probe's verify of nginx's own handshake.
pub(crate) fn verify_kind(g: &Group<'_>) -> Option<VerifyKind> {
    if let Some(d) = g.detail {
        if d.contains("does not match") {
            return Some(VerifyKind::NameMismatch);
        }
        let code = d.split(':').next()?.trim().parse::<i32>().ok()?;
        return Some(kind_of_code(code));
    }
    let tls = tls_of(g)?;
    let v = tls.as_nginx()?.verify.as_ref()?;
    if v.code != 0 {
        return Some(kind_of_code(v.code));
    }
    // A chain that verifies but names another host: nginx checks the name after the chain.
    let cert = tls.nginx_certificate()?;
    (cert.name_matches == Some(false)).then_some(VerifyKind::NameMismatch)
}

/// `CN=x, SANs DNS:a DNS:b, issuer CN=y, valid 2024-01-01 to 2099-12-31 (N days left)`.
pub(crate) fn cert_text(c: &CertFacts) -> String {
    let sans = if c.sans.is_empty() {
        "no subjectAltName".to_string()
    } else {
        format!("names {}", c.sans.join(", "))
    };
    let issuer = if c.self_signed {
        "self-signed".to_string()
    } else {
        format!("issuer {}", c.issuer)
    };
    let left = match c.days_left {
        _ if c.not_yet_valid => " (not yet valid)".to_string(),
        Some(d) if d < 0 => format!(" (expired {} days ago)", -d),
        _ if c.expired => " (expired)".to_string(),
        Some(d) => format!(" ({d} days left)"),
        None => String::new(),
    };
    format!(
        "certificate {}: {sans}; {issuer}; valid from {} to {}{left}; chain of {}",
        c.subject,
        c.not_before.as_deref().unwrap_or("?"),
        c.not_after.as_deref().unwrap_or("?"),
        c.chain_len
    )
}

/// The probe's view of the certificate nginx is shown: the certificate, the verify result and
/// the trust anchors it was checked against.
pub(crate) fn cert_evidence(g: &Group<'_>, f: &mut Finding) {
    let Some(tls) = tls_of(g) else { return };
    if let Some(c) = tls.nginx_certificate().or(tls.certificates.first()) {
        f.evidence.push(Evidence::probe(
            "tls",
            format!("{}: {}", tls.addr, cert_text(c)),
        ));
    }
    if let Some(v) = tls.as_nginx().and_then(|v| v.verify.as_ref()) {
        let name = tls
            .name
            .as_deref()
            .map(|n| format!(", name {n}"))
            .unwrap_or_default();
        f.evidence.push(Evidence::probe(
            "tls",
            format!(
                "verify now ({}{name}): ({}:{})",
                trust_text(tls),
                v.code,
                v.text
            ),
        ));
    }
    if let Some(e) = &tls.trust.error {
        f.evidence.push(Evidence::probe(
            "tls",
            format!("the trusted certificates could not be loaded: {e}"),
        ));
    }
    if let Some((_, _, s)) = ssl_of(g) {
        if let Some(src) = &s.trusted_certificate.src {
            f.evidence.push(Evidence::config(src));
        }
    }
}

/// `against /etc/nginx/ca.pem` / `against the system CAs`.
pub(crate) fn trust_text(tls: &TlsFacts) -> String {
    match &tls.trust.file {
        Some(p) => format!("against {}", p.display()),
        None => "against the system CAs".to_string(),
    }
}
