use medic_parse::error_log::FailureClass;

use super::support::{self, tls::tls_of};
use super::{nginx_fix, Cause};
use crate::rules::group::Group;
use crate::rules::{rule, Evidence, Finding};

rule! {
    /// ## What it detects
    /// The upstream answers nginx's TLS with the alert `certificate required` (TLS 1.3 alert
    /// 116): the upstream wants a client certificate (mutual TLS) and nginx sent none. With TLS
    /// 1.3 the client's side of the handshake is over when the alert comes, so nginx 1.22 logs it
    /// at `[crit]` as `SSL_read() failed (SSL: error:0A00045C:SSL routines::tlsv13 alert
    /// certificate required:SSL alert number 116) while reading response header from upstream`
    /// (measured with `openssl s_server -Verify 1`). With TLS 1.2 the server ends the handshake
    /// with a plain `handshake failure` (alert 40), which does not name the reason: live, the
    /// TLS probe confirms it when the server's flight (in the clear up to TLS 1.2) holds a
    /// `CertificateRequest` in the handshake nginx itself makes; post-mortem, it stays
    /// `tls-handshake`.
    ///
    /// ## Why it causes 502
    /// Without `proxy_ssl_certificate`, nginx answers the server's certificate request with an
    /// empty certificate list; the upstream aborts the handshake and nginx answers 502.
    ///
    /// ## Evidence
    /// The handshake failures in the error log with the alert; the `proxy_pass https://` line;
    /// for TLS 1.2, the probe's handshake that saw the `CertificateRequest`.
    ///
    /// ## Fix
    /// Give nginx a client certificate the upstream trusts: `proxy_ssl_certificate` and
    /// `proxy_ssl_certificate_key` in the location (or server) that proxies to it, then `nginx
    /// -t` and reload.
    pub struct TlsClientCertRequired = "tls-client-cert-required", "the upstream requires a client certificate and nginx presents none";
    time = "10-30 min", risk = "medium";
}

impl Cause for TlsClientCertRequired {
    fn classes(&self) -> &'static [FailureClass] {
        &[FailureClass::TlsHandshake, FailureClass::UpstreamReset]
    }

    fn explain(&self, g: &Group<'_>) -> Option<Finding> {
        let log = g.log?;
        let says =
            |t: &str| t.contains("alert certificate required") || t.contains("alert number 116");
        let logged = says(&log.first_line.text)
            || log.last_line.as_ref().is_some_and(|l| says(&l.text))
            || g.detail.is_some_and(says);
        // TLS 1.2: a bare handshake failure, and the probe saw the server ask for a certificate
        // in the handshake nginx makes.
        let asked = tls_of(g)
            .and_then(|t| t.as_nginx())
            .filter(|v| v.client_cert_requested == Some(true));
        let failure =
            |t: &str| t.contains("alert handshake failure") || t.contains("alert number 40");
        let handshake_failed = failure(&log.first_line.text) || g.detail.is_some_and(failure);
        if !(logged || asked.is_some() && handshake_failed) {
            return None;
        }
        let up = g.upstream.as_deref().unwrap_or("the upstream");
        let mut f = g.finding(
            self,
            if logged {
                format!("{up} requires a client certificate (TLS alert `certificate required`) and nginx sends none")
            } else {
                format!("{up} asks for a client certificate in its TLS handshake and fails the handshake: nginx sends none")
            },
            nginx_fix(self,
                "give nginx a client certificate the upstream trusts",
                vec![
                    "`proxy_ssl_certificate /etc/nginx/client.crt;` and `proxy_ssl_certificate_key /etc/nginx/client.key;` where it proxies to this upstream".to_string(),
                ]
            ),
        );
        if let Some(v) = asked {
            f.evidence.push(Evidence::probe(
                "tls",
                format!(
                    "nginx's handshake ({}): the server asked for a client certificate (CertificateRequest) and the handshake failed: {}",
                    v.versions,
                    support::tls::outcome_text(&v.outcome)
                ),
            ));
        }
        Some(f)
    }
}
