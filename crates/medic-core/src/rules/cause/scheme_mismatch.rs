use medic_parse::error_log::FailureClass;

use super::{nginx_fix, Cause};
use crate::facts::Speaks;
use crate::rules::group::Group;
use crate::rules::{rule, Evidence, Finding};

rule! {
    /// ## What it detects
    /// nginx and the upstream speak different protocols on the wire: `proxy_pass https://` to
    /// a port that speaks plain HTTP, or `proxy_pass http://` to a port that speaks TLS. The
    /// first shows in the log alone: OpenSSL reads the server's plain `HTTP/1.1 400` answer as a
    /// TLS record, `SSL_do_handshake() failed (SSL: error:0A00010B:SSL routines::wrong version
    /// number) while SSL handshaking to upstream` (or `http request`). The second leaves only
    /// its consequence in the log (`upstream prematurely closed connection`, `recv() failed
    /// (104: Connection reset by peer)`, `upstream sent no valid HTTP/1.0 header`); live, the
    /// probe's first bytes show which protocol the port speaks.
    ///
    /// ## Why it causes 502
    /// A TLS server cannot parse a plain request line, and a plain HTTP server answers a
    /// ClientHello with `400 Bad Request` (nginx: `The plain HTTP request was sent to HTTPS
    /// port`). Either way nginx gets no usable response and answers 502.
    ///
    /// ## Evidence
    /// The failures in the error log; the `*_pass` line with its scheme; live, the first bytes
    /// the port answered (a TLS record, or an `HTTP/1.1` status line).
    ///
    /// ## Fix
    /// Use the scheme the port speaks (`proxy_pass http://...` for a plain port, `https://`
    /// for a TLS port), or point the pass at the upstream's other port; `nginx -t`;
    /// `systemctl reload nginx`.
    pub struct SchemeMismatch = "scheme-mismatch", "nginx and the upstream speak different protocols (http vs https)";
    time = "2 min", risk = "low";
}

impl Cause for SchemeMismatch {
    fn classes(&self) -> &'static [FailureClass] {
        &[
            FailureClass::TlsHandshake,
            FailureClass::UpstreamReset,
            FailureClass::PrematureClose,
            FailureClass::InvalidResponse,
        ]
    }

    fn explain(&self, g: &Group<'_>) -> Option<Finding> {
        // (nginx speaks TLS to a plain port, evidence)
        let mut found: Option<bool> = None;
        let mut seen = Vec::new();
        if g.class == FailureClass::TlsHandshake {
            // OpenSSL read the server's plain-text answer to the ClientHello as a record.
            if g.detail.is_some_and(|d| {
                d.contains("wrong version number")
                    || d.contains("http_request")
                    || d.contains("http request")
            }) {
                found = Some(true);
            }
        }
        for t in &g.targets {
            if let Some(m) = t.tls.as_ref().and_then(|x| x.scheme_mismatch.as_ref()) {
                found = Some(true);
                seen.push(Evidence::probe(
                    "tls",
                    format!(
                        "{}: the answer to a TLS ClientHello is plain text: {}",
                        t.tls.as_ref().map_or("", |x| x.addr.as_str()),
                        m.first_bytes
                    ),
                ));
            }
            if let Some(h) = &t.facts.http {
                let tls_port = !h.tls_expected && h.speaks == Speaks::Tls;
                if h.scheme_mismatch || tls_port {
                    found = Some(h.tls_expected);
                    let what = match (h.tls_expected, &h.status_line) {
                        (true, Some(line)) => format!("the port answers plain HTTP: `{line}`"),
                        (true, None) => "the port answers plain HTTP".to_string(),
                        (false, _) => "the port answers with TLS (a TLS record, or `The plain HTTP request was sent to HTTPS port`)".to_string(),
                    };
                    seen.push(Evidence::probe("http", format!("{}: {what}", h.address)));
                }
            }
        }
        let tls_to_plain = found?;
        let up = g.upstream.as_deref().unwrap_or("the upstream");
        let directive = g
            .passes
            .first()
            .map_or("proxy_pass", |(_, p)| p.kind.directive());
        let (title, summary, step) = if tls_to_plain {
            (
                format!("nginx speaks TLS to {up}, but the port speaks plain HTTP ({directive} https://)"),
                format!("use `{directive} http://{up}` (the port speaks plain HTTP), or the upstream's TLS port"),
                format!("change `{directive} https://{up}...` to `{directive} http://{up}...`, or point it at the port where the upstream speaks TLS"),
            )
        } else {
            (
                format!("nginx speaks plain HTTP to {up}, but the port speaks TLS ({directive} http://)"),
                format!("use `{directive} https://{up}` (the port speaks TLS), or the upstream's plain port"),
                format!("change `{directive} http://{up}...` to `{directive} https://{up}...` (and set `proxy_ssl_server_name on;` and the `proxy_ssl_verify` settings you need), or point it at the upstream's plain HTTP port"),
            )
        };
        let mut f = g.finding(self, title, nginx_fix(self, summary, vec![step]));
        f.evidence.extend(seen);
        Some(f)
    }
}
