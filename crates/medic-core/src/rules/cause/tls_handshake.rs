use medic_parse::error_log::FailureClass;

use super::support::tls::{outcome_text, prefix_of, s_client, tls_of, variant_evidence};
use super::{nginx_fix, Cause};
use crate::facts::tls::TlsFacts;
use crate::rules::group::Group;
use crate::rules::{rule, Finding};

rule! {
    /// ## What it detects
    /// `SSL_do_handshake() failed (SSL: error:...) while SSL handshaking to upstream`, or `peer
    /// closed connection in SSL handshake while SSL handshaking to upstream`: nginx
    /// (`proxy_pass https://`, `grpc_pass grpcs://`, `uwsgi_pass suwsgi://`) could not complete
    /// a TLS handshake with the upstream. This is what the log text alone proves; the causes
    /// tried before it name the reason when the evidence holds (`scheme-mismatch`,
    /// `tls-sni-required`, `tls-protocol-mismatch`).
    ///
    /// ## Why it causes 502
    /// Without a handshake nginx has no connection to send the request on. It logs the OpenSSL
    /// reason (`sslv3 alert handshake failure`, `no shared cipher`, `tlsv1 alert internal
    /// error`, ...), tries the next server of the group if any, and answers 502 Bad Gateway.
    ///
    /// ## Evidence
    /// The handshake failures in the error log with OpenSSL's reason; the `*_pass` line; live,
    /// the TLS probe's handshakes: the one nginx makes with its own `proxy_ssl_*` settings, then
    /// with and without SNI and with each TLS version, and how each ended.
    ///
    /// ## Fix
    /// Reproduce the handshake nginx makes with `openssl s_client -connect HOST:PORT
    /// -servername NAME`, read the upstream's TLS log, and align `proxy_ssl_protocols`,
    /// `proxy_ssl_ciphers`, `proxy_ssl_server_name`/`proxy_ssl_name` and any client certificate
    /// (`proxy_ssl_certificate`) with what the upstream requires; `nginx -t`; `systemctl reload
    /// nginx`.
    pub struct TlsHandshake = "tls-handshake", "the TLS handshake with the upstream fails";
    time = "5-10 min", risk = "low";
}

impl Cause for TlsHandshake {
    fn classes(&self) -> &'static [FailureClass] {
        &[FailureClass::TlsHandshake]
    }

    fn explain(&self, g: &Group<'_>) -> Option<Finding> {
        let up = g.upstream.as_deref().unwrap_or("the upstream");
        let tls = tls_of(g);
        let reason = g.detail.map(str::to_string).or_else(|| {
            tls.and_then(TlsFacts::as_nginx)
                .map(|v| outcome_text(&v.outcome))
        });
        let title = match &reason {
            Some(r) => format!("the TLS handshake with {up} fails: {r}"),
            None => format!("the TLS handshake with {up} fails"),
        };
        let prefix = prefix_of(g);
        let mut f = g.finding(
            self,
            title,
            nginx_fix(self,
                format!("find out what the upstream {up} expects of the handshake and set nginx's {prefix}_ssl_* to match"),
                vec![
                    format!("reproduce the handshake: `{}`", s_client(g, tls)),
                    "read the upstream's own TLS log for why it refused the handshake".to_string(),
                    format!("align `{prefix}_ssl_protocols`, `{prefix}_ssl_ciphers`, `{prefix}_ssl_server_name on;` / `{prefix}_ssl_name`, and a client certificate (`{prefix}_ssl_certificate`) if the upstream requires one"),
                ]
            ),
        );
        if let Some(tls) = tls {
            variant_evidence(tls, &mut f);
        }
        Some(f)
    }
}
