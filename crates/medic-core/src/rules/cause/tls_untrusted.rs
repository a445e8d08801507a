use medic_parse::error_log::FailureClass;

use super::support::tls::{cert_evidence, verify_kind, VerifyKind};
use super::support::tls::{prefix_of, s_client, ssl_of, tls_of};
use super::{nginx_fix, Cause};
use crate::facts::tls::TlsFacts;
use crate::rules::group::Group;
use crate::rules::{rule, Evidence, Finding};

rule! {
    /// ## What it detects
    /// `upstream SSL certificate verify error: (N:REASON) while SSL handshaking to upstream`
    /// where the chain does not lead to a CA nginx trusts: `(18:self-signed certificate)`,
    /// `(19:self-signed certificate in certificate chain)`, `(20:unable to get local issuer
    /// certificate)`, `(21:unable to verify the first certificate)`, `(2:unable to get issuer
    /// certificate)`. The log text alone proves it; live, the probe shows the certificate, its
    /// issuer and the trust anchors it was checked against.
    ///
    /// ## Why it causes 502
    /// With `proxy_ssl_verify on`, nginx trusts only the certificates in
    /// `proxy_ssl_trusted_certificate`: it does not load the system's CA store, so without that
    /// directive no certificate verifies. A self-signed upstream, an internal CA nginx was not
    /// given, or an upstream that does not send its intermediate certificate: nginx rejects the
    /// handshake and answers 502.
    ///
    /// ## Evidence
    /// The verify errors in the error log; the `proxy_pass` line and
    /// `proxy_ssl_trusted_certificate`; live, the certificate (subject, issuer, self-signed,
    /// chain length) and the probe's verify result against the same file.
    ///
    /// ## Fix
    /// Put the CA that signed the upstream's certificate (for a self-signed one, the certificate
    /// itself) in the file named by `proxy_ssl_trusted_certificate`, or make the upstream send
    /// its full chain; `nginx -t`; `systemctl reload nginx`.
    pub struct TlsUntrusted = "tls-untrusted", "the upstream's certificate chain does not lead to a CA nginx trusts";
    time = "5 min", risk = "low (disabling verify: high)";
}

impl Cause for TlsUntrusted {
    fn classes(&self) -> &'static [FailureClass] {
        &[FailureClass::TlsVerify]
    }

    fn explain(&self, g: &Group<'_>) -> Option<Finding> {
        if verify_kind(g)? != VerifyKind::Untrusted {
            return None;
        }
        let up = g.upstream.as_deref().unwrap_or("the upstream");
        let tls = tls_of(g);
        let prefix = prefix_of(g);
        let ssl = ssl_of(g);
        let reason = g.detail.map(str::to_string).or_else(|| {
            tls.and_then(TlsFacts::as_nginx)
                .and_then(|v| v.verify.as_ref())
                .map(|v| format!("{}:{}", v.code, v.text))
        });
        let reason = reason.unwrap_or_else(|| "untrusted".to_string());
        let code = reason.split(':').next().unwrap_or("");
        let trusted = ssl.map(|(_, _, s)| s.trusted_certificate.value.clone());
        let title = match &trusted {
            Some(None) => format!(
                "the certificate of {up} does not verify ({reason}): no {prefix}_ssl_trusted_certificate, so nginx trusts no CA"
            ),
            Some(Some(file)) => {
                format!("the certificate of {up} does not verify against {file} ({reason})")
            }
            None => format!("the certificate of {up} does not verify ({reason})"),
        };
        let file = trusted.flatten().map_or_else(
            || "/etc/nginx/upstream-ca.pem".to_string(),
            |f| f.to_string(),
        );
        let show = s_client(g, tls).replace(" </dev/null", " -showcerts </dev/null");
        let mut steps = Vec::new();
        match code {
            "18" => steps.push(format!(
                "the upstream's certificate is self-signed: it is its own CA. Once you have checked it is the right one, put it in {file}: `{} 2>/dev/null | openssl x509 > {file}`",
                s_client(g, tls)
            )),
            "21" | "2" => steps.push(format!(
                "the upstream does not send its intermediate certificate: configure it to send the full chain (e.g. `fullchain.pem`), or add the intermediate to {file}; see the chain: `{show}`"
            )),
            _ => steps.push(format!(
                "put the CA certificate that signed the upstream's certificate (the root of the chain `{show}` shows) in {file}"
            )),
        }
        steps.push(format!(
            "`{prefix}_ssl_trusted_certificate {file};` next to the `{prefix}_pass` line (nginx does not use the system's CA store by itself)"
        ));
        steps.push(format!(
            "do not turn `{prefix}_ssl_verify` off: that accepts any certificate, an attacker's too"
        ));
        let mut f = g.finding(
            self,
            title,
            nginx_fix(
                self,
                format!(
                    "give nginx the CA of {up}'s certificate in `{prefix}_ssl_trusted_certificate`"
                ),
                steps,
            ),
        );
        if let Some((_, _, s)) = ssl {
            if s.trusted_certificate.src.is_none() {
                f.evidence.push(Evidence::other(
                    "config",
                    "default".to_string(),
                    format!("no {prefix}_ssl_trusted_certificate: nginx trusts no CA"),
                ));
            }
        }
        cert_evidence(g, &mut f);
        Some(f)
    }
}
