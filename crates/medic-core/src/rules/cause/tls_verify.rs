use medic_parse::error_log::FailureClass;

use super::support::tls::cert_evidence;
use super::support::tls::{prefix_of, s_client, tls_of};
use super::{nginx_fix, Cause};
use crate::facts::tls::TlsFacts;
use crate::rules::group::Group;
use crate::rules::{rule, Finding};

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
