use crate::config::{values::is_ip_literal, Model, Pass, Target};
use crate::rules::{rule, Evidence, Finding, Rule, RuleDoc};

use super::config_fix;

rule! {
    /// ## What it detects
    /// An upstream reached over TLS (`proxy_pass https://NAME`, `grpc_pass grpcs://NAME`,
    /// `uwsgi_pass suwsgi://NAME`, stream `proxy_ssl on`) and named by a host name (directly, in
    /// an `upstream {}` group, or through a variable), while `proxy_ssl_server_name` is off,
    /// which is nginx's default.
    ///
    /// ## Why it causes 502/504
    /// Without `proxy_ssl_server_name on`, nginx sends no SNI in its TLS ClientHello. TLS front
    /// ends that serve several names (CDNs, cloud load balancers, Kubernetes ingresses, any
    /// virtual-hosted TLS server) choose the certificate by SNI, or refuse the handshake without
    /// it. nginx then logs `SSL_do_handshake() failed (SSL: ... alert handshake failure) while
    /// SSL handshaking to upstream`, or receives a default certificate that fails verification,
    /// and the client gets a 502. It often works on the day it is written and breaks when the
    /// upstream moves behind a shared front end.
    ///
    /// ## Example
    /// ```nginx
    /// location /api/ {
    ///     proxy_pass https://api.example.com;
    /// }
    /// ```
    ///
    /// ## Fix
    /// Turn SNI on; for an `upstream {}` group also name the host the upstream expects (the
    /// default `proxy_ssl_name` is the group's name):
    /// ```nginx
    /// location /api/ {
    ///     proxy_pass https://api.example.com;
    ///     proxy_ssl_server_name on;
    /// }
    /// ```
    pub struct SslNoSni = "ssl-no-sni", "https upstream without SNI";
    time = "2 min", risk = "low (the handshake only gains the server name)";
}

impl Rule for SslNoSni {
    fn check(&self, model: &Model, out: &mut Vec<Finding>) {
        for pass in &model.passes {
            let Some(ssl) = &pass.settings.ssl else {
                continue;
            };
            if !pass.tls || ssl.server_name.value || !named_by_host(model, pass) {
                continue;
            }
            let directive = format!("{}_ssl_server_name", pass.kind.prefix());
            let mut evidence = vec![Evidence::config(&pass.src)];
            if let Some(src) = &ssl.server_name.src {
                evidence.push(Evidence::config(src));
            }
            let group = matches!(pass.target, Target::Group { .. });
            let mut steps = vec![format!(
                "add `{directive} on;` next to `{}` ({})",
                pass.src.text(),
                pass.src.location()
            )];
            if group && ssl.name.value.is_none() {
                steps.push(format!(
                    "the target is an upstream group: also set `{}_ssl_name HOST;` to the name the upstream's certificate is for (the default is the group's name)",
                    pass.kind.prefix()
                ));
            }
            let target = pass.target.display();
            out.push(
                Finding::latent(
                    self.id(),
                    format!("TLS upstream {target} is named by host, but nginx sends no SNI"),
                    evidence,
                    config_fix(self, format!("{directive} on;"), steps),
                )
                .upstream(target),
            );
        }
    }
}

/// Whether the TLS peer is known by a name (SNI matters) rather than only by IP or socket.
fn named_by_host(model: &Model, pass: &Pass) -> bool {
    match &pass.target {
        Target::Host { host, .. } => !is_ip_literal(host),
        Target::Unix { .. } => false,
        Target::Dynamic { .. } => true,
        Target::Group { .. } => model.group(pass).is_some_and(|g| {
            g.servers
                .iter()
                .any(|s| s.host.as_deref().is_some_and(|h| !is_ip_literal(h)))
        }),
    }
}
