use medic_parse::error_log::FailureClass;

use super::{nginx_fix, Cause};
use crate::facts::Speaks;
use crate::rules::group::Group;
use crate::rules::{rule, Evidence, Finding};

rule! {
    /// ## What it detects
    /// nginx could not parse the upstream's answer: `upstream sent no valid HTTP/1.0 header`,
    /// `upstream sent invalid header`, `upstream sent invalid chunked response`, `upstream
    /// sent duplicate header line`, `upstream prematurely sent response` (`*_pass` modules,
    /// `ngx_http_proxy_module.c`, `ngx_http_fastcgi_module.c`). This is what the log alone
    /// proves; live, the probe's first bytes say what the port speaks: FastCGI to a
    /// `proxy_pass`, HTTP to a `fastcgi_pass`, or something else entirely (a database, SSH,
    /// another service). TLS against plain HTTP is `scheme-mismatch`.
    ///
    /// ## Why it causes 502
    /// nginx expects the protocol of its `*_pass` directive. An answer in another protocol, or
    /// an HTTP answer that breaks the rules (no status line, a header field without a colon, a
    /// broken chunk), cannot be passed on: nginx answers 502 Bad Gateway.
    ///
    /// ## Evidence
    /// The errors in the error log; the `*_pass` line; live, what the port answered to the
    /// probe's request (HTTP status line, a FastCGI record, other bytes).
    ///
    /// ## Fix
    /// Point nginx at the right protocol or port: `fastcgi_pass` for PHP-FPM (not
    /// `proxy_pass`), `proxy_pass http://` for an HTTP server, the application's HTTP port
    /// rather than its admin or database port; or fix the application's malformed headers.
    /// `nginx -t`; `systemctl reload nginx`.
    pub struct InvalidResponse = "invalid-response", "the upstream's answer is not the protocol nginx expects";
    time = "5-10 min", risk = "medium";
}

impl Cause for InvalidResponse {
    fn classes(&self) -> &'static [FailureClass] {
        &[FailureClass::InvalidResponse]
    }

    fn explain(&self, g: &Group<'_>) -> Option<Finding> {
        let up = g.upstream.as_deref().unwrap_or("the upstream");
        let directive = g
            .passes
            .first()
            .map_or("proxy_pass", |(_, p)| p.kind.directive());
        // What nginx said, without the context: `upstream sent no valid HTTP/1.0 header`.
        let said = g.log.and_then(|l| {
            let t = &l.first_line.text;
            let i = t.find("upstream ")?;
            let rest = &t[i..];
            let end = [" while ", ", client:"]
                .iter()
                .filter_map(|s| rest.find(s))
                .min()
                .unwrap_or(rest.len());
            Some(rest[..end].to_string())
        });
        // What the probe says the port speaks.
        let mut speaks = None;
        let mut seen = Vec::new();
        for t in &g.targets {
            if let Some(h) = &t.facts.http {
                speaks = speaks.or(Some(h.speaks));
                let what = match (&h.status_line, h.speaks) {
                    (Some(line), Speaks::Http) => format!("answers HTTP: `{line}`"),
                    (_, s) => format!("answers an HTTP request with {}", speaks_text(s)),
                };
                seen.push(Evidence::probe("http", format!("{}: {what}", h.address)));
            }
            if let Some(fc) = &t.facts.fastcgi {
                speaks = speaks.or(Some(fc.speaks));
                seen.push(Evidence::probe(
                    "fastcgi",
                    format!(
                        "{}: answers a FastCGI request with {}",
                        fc.address,
                        speaks_text(fc.speaks)
                    ),
                ));
            }
        }
        let (title, summary, step) = match (directive, speaks) {
            ("proxy_pass", Some(Speaks::Fastcgi)) => (
                format!("{up} speaks FastCGI, but nginx sends HTTP to it (proxy_pass)"),
                format!("use `fastcgi_pass {up};` (with `include fastcgi_params;` and `SCRIPT_FILENAME`) instead of `proxy_pass`"),
                format!("replace `proxy_pass http://{up};` with `fastcgi_pass {up};`, `include fastcgi_params;` and `fastcgi_param SCRIPT_FILENAME $document_root$fastcgi_script_name;`"),
            ),
            ("fastcgi_pass", Some(Speaks::Http)) => (
                format!("{up} speaks HTTP, but nginx sends FastCGI to it (fastcgi_pass)"),
                format!("use `proxy_pass http://{up};` instead of `fastcgi_pass`"),
                format!("replace `fastcgi_pass {up};` with `proxy_pass http://{up};`, or point `fastcgi_pass` at the PHP-FPM pool's `listen`"),
            ),
            (d, Some(s @ (Speaks::Other | Speaks::Nothing | Speaks::Fastcgi | Speaks::Http)))
                if !matches!((d, s), ("proxy_pass", Speaks::Http) | ("fastcgi_pass", Speaks::Fastcgi)) =>
            {
                (
                format!(
                    "{up} does not speak what {directive} expects{}: it answers with {}",
                    said.as_deref().map(|w| format!(" ({w})")).unwrap_or_default(),
                    speaks_text(s)
                ),
                format!("point {directive} at the port that speaks its protocol"),
                format!("check what listens on {up} (`ss -tlnp`): another service than the one meant? Then fix the port in `{directive}`"),
                )
            }
            _ => (
                match &said {
                    Some(s) => format!("{s} ({up})"),
                    None => format!("{up} sent a response nginx cannot parse"),
                },
                format!("make sure {up} is the service {directive} expects, speaking its protocol"),
                format!("see what the port answers: `curl -sv http://{up}/` (HTTP) and what listens there: `ss -tlnp`; fix the port or the directive (`proxy_pass` for HTTP, `fastcgi_pass` for PHP-FPM), or the application's malformed response"),
            ),
        };
        let mut f = g.finding(self, title, nginx_fix(self, summary, vec![step]));
        f.evidence.extend(seen);
        Some(f)
    }
}

fn speaks_text(s: Speaks) -> &'static str {
    match s {
        Speaks::Http => "HTTP",
        Speaks::Tls => "TLS",
        Speaks::Fastcgi => "a FastCGI record",
        Speaks::Other => "bytes that are not an HTTP status line (nor FastCGI)",
        Speaks::Nothing => "nothing (it closed the connection)",
        Speaks::Silent => "silence (nothing before the timeout)",
    }
}
