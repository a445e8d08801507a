use medic_parse::error_log::FailureClass;

use super::tls_handshake::{prefix_of, s_client, ssl_of, tls_of};
use super::{nginx_fix, Cause};
use crate::facts::tls::{CertFacts, TlsFacts};
use crate::rules::group::Group;
use crate::rules::{rule, Evidence, Finding};

rule! {
    /// ## What it detects
    /// `upstream SSL certificate verify error: (N:REASON) while SSL handshaking to upstream`
    /// with a reason the more specific causes do not cover (`7:certificate signature failure`,
    /// `23:certificate revoked`, `24:invalid CA certificate`, `26:unsupported certificate
    /// purpose`, ...): `proxy_ssl_verify on` and the upstream's certificate failed OpenSSL's
    /// verification. Expired, untrusted and wrong-name certificates have their own causes
    /// (`tls-expired`, `tls-untrusted`, `tls-name-mismatch`).
    ///
    /// ## Why it causes 502
    /// With `proxy_ssl_verify on`, nginx closes the connection when the certificate does not
    /// verify, before sending the request, and answers 502 Bad Gateway.
    ///
    /// ## Evidence
    /// The verify errors in the error log with OpenSSL's code and reason; the `proxy_pass` line;
    /// live, the certificate the upstream shows (subject, names, issuer, dates) and the probe's
    /// own verify result against the configured trust anchors.
    ///
    /// ## Fix
    /// Look at the chain the upstream sends (`openssl s_client -connect HOST:PORT -servername
    /// NAME -showcerts`) and fix what OpenSSL's reason names on the upstream's side (reissue
    /// the certificate, send the full chain), or correct `proxy_ssl_trusted_certificate`;
    /// `nginx -t`; `systemctl reload nginx`.
    pub struct TlsVerify = "tls-verify", "the upstream's certificate does not verify";
    time = "10-30 min", risk = "low (turning `proxy_ssl_verify` off instead: high)";
}

impl Cause for TlsVerify {
    fn classes(&self) -> &'static [FailureClass] {
        &[FailureClass::TlsVerify]
    }

    fn explain(&self, g: &Group<'_>) -> Option<Finding> {
        let up = g.upstream.as_deref().unwrap_or("the upstream");
        let tls = tls_of(g);
        let reason = g.detail.map(str::to_string).or_else(|| {
            tls.and_then(TlsFacts::as_nginx)
                .and_then(|v| v.verify.as_ref())
                .map(|v| format!("{}:{}", v.code, v.text))
        });
        let title = match &reason {
            Some(r) => format!("the certificate of {up} does not verify: ({r})"),
            None => format!("the certificate of {up} does not verify"),
        };
        let prefix = prefix_of(g);
        let mut f = g.finding(
            self,
            title,
            nginx_fix(self,
                format!("fix what OpenSSL's reason names in {up}'s certificate or chain, or nginx's trust anchors"),
                vec![
                    format!("look at the chain the upstream sends: `{}`", s_client(g, tls).replace(" </dev/null", " -showcerts </dev/null")),
                    "fix what the reason names on the upstream's side: reissue the certificate, send the full chain".to_string(),
                    format!("or give nginx the right CA: `{prefix}_ssl_trusted_certificate /path/to/ca.pem;`"),
                    format!("do not turn `{prefix}_ssl_verify` off: that accepts any certificate, an attacker's too"),
                ]
            ),
        );
        cert_evidence(g, &mut f);
        Some(f)
    }
}

/// What a verify failure is about.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum VerifyKind {
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
pub(super) fn verify_kind(g: &Group<'_>) -> Option<VerifyKind> {
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
pub(super) fn cert_text(c: &CertFacts) -> String {
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
pub(super) fn cert_evidence(g: &Group<'_>, f: &mut Finding) {
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
pub(super) fn trust_text(tls: &TlsFacts) -> String {
    match &tls.trust.file {
        Some(p) => format!("against {}", p.display()),
        None => "against the system CAs".to_string(),
    }
}
