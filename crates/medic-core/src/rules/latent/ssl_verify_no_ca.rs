use crate::config::{Model, Target};
use crate::rules::{rule, Evidence, Finding, Rule, RuleDoc};

use super::config_fix;

rule! {
    /// ## What it detects
    /// `proxy_ssl_verify on` (or `grpc_ssl_verify`, `uwsgi_ssl_verify`) in effect for a TLS
    /// upstream, or one whose URL holds variables, with no `proxy_ssl_trusted_certificate`.
    ///
    /// ## Why it causes 502/504
    /// nginx does not use the system CA store for upstreams: without a trusted certificate file
    /// it cannot verify anything. nginx 1.22 refuses such a config
    /// (`[emerg] no proxy_ssl_trusted_certificate for proxy_ssl_verify`), so the edit waits in
    /// the files until the next reload or restart (a package upgrade, a reboot), which then
    /// fails: the old workers keep serving on a reload, but a restart leaves nothing listening
    /// and the load balancer in front answers 502. Older or patched builds that accept it fail
    /// every handshake instead (`upstream SSL certificate verify error`), a 502 per request.
    ///
    /// ## Example
    /// ```nginx
    /// location /billing/ {
    ///     proxy_pass https://billing.internal;
    ///     proxy_ssl_verify on;
    /// }
    /// ```
    ///
    /// ## Fix
    /// Give the CA that signed the upstream's certificate (the system bundle works for public
    /// CAs):
    /// ```nginx
    /// proxy_ssl_trusted_certificate /etc/ssl/certs/ca-certificates.crt;
    /// ```
    pub struct SslVerifyNoCa = "ssl-verify-no-ca", "upstream certificate verification without a CA";
    time = "5 min", risk = "low (turning verification off instead: high)";
}

impl Rule for SslVerifyNoCa {
    fn check(&self, model: &Model, out: &mut Vec<Finding>) {
        for pass in &model.passes {
            let Some(ssl) = &pass.settings.ssl else {
                continue;
            };
            // nginx sets up TLS for https:// and for any URL with variables (the scheme may
            // turn out to be https at run time), and checks verify/CA for both.
            let tls_capable = pass.tls || matches!(pass.target, Target::Dynamic { .. });
            if !tls_capable || !ssl.verify.value || ssl.trusted_certificate.value.is_some() {
                continue;
            }
            let p = pass.kind.prefix();
            let mut evidence = vec![Evidence::config(&pass.src)];
            if let Some(src) = &ssl.verify.src {
                evidence.push(Evidence::config(src));
            }
            let target = pass.target.display();
            out.push(
                Finding::latent(
                    self.id(),
                    format!("{p}_ssl_verify is on for {target}, but no {p}_ssl_trusted_certificate is given"),
                    evidence,
                    config_fix(self,
                        format!("{p}_ssl_trusted_certificate /path/to/ca.pem;"),
                        vec![format!(
                            "add `{p}_ssl_trusted_certificate FILE;` with the CA of {target}'s certificate (for a public CA: /etc/ssl/certs/ca-certificates.crt)"
                        )]
                    ),
                )
                .upstream(target),
            );
        }
    }
}
