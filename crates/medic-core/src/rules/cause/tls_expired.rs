use medic_parse::error_log::FailureClass;

use super::support::tls::{cert_evidence, verify_kind, VerifyKind};
use super::support::tls::{s_client, tls_of};
use super::{backend_fix, Cause};
use crate::rules::group::Group;
use crate::rules::{rule, Finding};

rule! {
    /// ## What it detects
    /// `upstream SSL certificate verify error: (10:certificate has expired) while SSL
    /// handshaking to upstream` (or `(9:certificate is not yet valid)`): with `proxy_ssl_verify
    /// on`, the upstream's certificate is outside its validity dates. The log text alone proves
    /// it; live, the probe shows the certificate and its dates (and whether it has been renewed
    /// since).
    ///
    /// ## Why it causes 502
    /// nginx verifies the certificate during the handshake and rejects one whose `notAfter` is
    /// past (or whose `notBefore` is ahead: a wrong clock on either host). It closes the
    /// connection and answers 502 Bad Gateway to every request for that upstream.
    ///
    /// ## Evidence
    /// The verify errors in the error log; the `proxy_pass` line; live, the certificate the
    /// upstream shows (subject, names, issuer, `notBefore`/`notAfter`, days left) and the
    /// probe's verify result.
    ///
    /// ## Fix
    /// Renew the upstream's certificate (`certbot renew`, or your CA), install it, reload the
    /// upstream's server; check with `openssl s_client -connect HOST:PORT -servername NAME |
    /// openssl x509 -noout -dates`. For `not yet valid`, check both hosts' clocks
    /// (`timedatectl`).
    pub struct TlsExpired = "tls-expired", "the upstream's certificate has expired (or is not yet valid)";
    time = "10-30 min", risk = "low";
}

impl Cause for TlsExpired {
    fn classes(&self) -> &'static [FailureClass] {
        &[FailureClass::TlsVerify]
    }

    fn explain(&self, g: &Group<'_>) -> Option<Finding> {
        if verify_kind(g)? != VerifyKind::Expired {
            return None;
        }
        let up = g.upstream.as_deref().unwrap_or("the upstream");
        let tls = tls_of(g);
        let cert = tls.and_then(|t| t.nginx_certificate().or(t.certificates.first()));
        let not_yet = g.detail.map_or_else(
            || cert.is_some_and(|c| c.not_yet_valid),
            |d| d.starts_with("9:"),
        );
        let title = match cert {
            // The log says it failed; the upstream shows a valid certificate now.
            Some(c) if !c.expired && !c.not_yet_valid => format!(
                "the certificate of {up} was {} when nginx rejected it; it shows one valid until {} now (renewed since?)",
                if not_yet { "not yet valid" } else { "expired" },
                c.not_after.as_deref().unwrap_or("?")
            ),
            Some(c) if c.not_yet_valid => format!(
                "the certificate of {up} is not yet valid (valid from {})",
                c.not_before.as_deref().unwrap_or("?")
            ),
            Some(c) => format!(
                "the certificate of {up} has expired ({}{})",
                c.not_after.as_deref().unwrap_or("?"),
                c.days_left
                    .filter(|d| *d < 0)
                    .map(|d| format!(", {} days ago", -d))
                    .unwrap_or_default()
            ),
            None if not_yet => format!("the certificate of {up} is not yet valid"),
            None => format!("the certificate of {up} has expired"),
        };
        let check = format!(
            "{} 2>/dev/null | openssl x509 -noout -dates",
            s_client(g, tls)
        );
        let mut steps = vec![
            format!("renew the certificate of the server behind {up} (`certbot renew`, or your CA), install it with its chain, and reload that server"),
            format!("check the dates nginx will see: `{check}`"),
        ];
        if not_yet {
            steps.push("`not yet valid` is often a clock: check both hosts with `timedatectl` (NTP synchronized?)".to_string());
        }
        let mut f = g.finding(
            self,
            title,
            backend_fix(
                self,
                format!("renew the certificate of {up}"),
                steps,
                vec![check],
            ),
        );
        cert_evidence(g, &mut f);
        Some(f)
    }
}
