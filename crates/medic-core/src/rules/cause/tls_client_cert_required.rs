use medic_parse::error_log::FailureClass;

use super::{nginx_fix, Cause};
use crate::diagnose::Group;
use crate::rules::{rule, Finding};

rule! {
    /// ## What it detects
    /// The upstream's TLS handshake ends with the alert `certificate required` (TLS 1.3 alert
    /// 116; OpenSSL's reason `tlsv13 alert certificate required` in nginx's `SSL_do_handshake()
    /// failed` line): the upstream wants a client certificate (mutual TLS) and nginx sent none.
    ///
    /// ## Why it causes 502
    /// Without `proxy_ssl_certificate`, nginx answers the server's certificate request with an
    /// empty certificate list; the upstream aborts the handshake and nginx answers 502.
    ///
    /// ## Evidence
    /// The handshake failures in the error log with the alert; the `proxy_pass https://` line.
    ///
    /// ## Fix
    /// Give nginx a client certificate the upstream trusts: `proxy_ssl_certificate` and
    /// `proxy_ssl_certificate_key` in the location (or server) that proxies to it, then `nginx
    /// -t` and reload.
    /// Time: 10-30 min. Risk: medium.
    pub struct TlsClientCertRequired = "tls-client-cert-required", "the upstream requires a client certificate and nginx presents none";
}

impl Cause for TlsClientCertRequired {
    fn classes(&self) -> &'static [FailureClass] {
        &[FailureClass::TlsHandshake, FailureClass::UpstreamReset]
    }

    fn explain(&self, g: &Group<'_>) -> Option<Finding> {
        let log = g.log?;
        let says =
            |t: &str| t.contains("alert certificate required") || t.contains("alert number 116");
        if !(says(&log.first_line.text)
            || log.last_line.as_ref().is_some_and(|l| says(&l.text))
            || g.detail.is_some_and(says))
        {
            return None;
        }
        let up = g.upstream.as_deref().unwrap_or("the upstream");
        Some(g.finding(
            self,
            format!("{up} requires a client certificate (TLS alert `certificate required`) and nginx sends none"),
            nginx_fix(
                "give nginx a client certificate the upstream trusts",
                vec![
                    "`proxy_ssl_certificate /etc/nginx/client.crt;` and `proxy_ssl_certificate_key /etc/nginx/client.key;` where it proxies to this upstream".to_string(),
                ],
                "10-30 min",
                "medium",
            ),
        ))
    }
}
