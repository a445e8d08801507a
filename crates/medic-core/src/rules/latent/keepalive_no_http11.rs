use crate::config::{Model, PassKind, Protocol};
use crate::rules::{rule, Evidence, Finding, Rule, RuleDoc};

use super::config_fix;

rule! {
    /// ## What it detects
    /// An `upstream {}` group with `keepalive N`, reached by a `proxy_pass` where
    /// `proxy_http_version` is not `1.1` (nginx's default is `1.0`) or the `Connection` header
    /// is not cleared with `proxy_set_header Connection "";` (nginx sends `Connection: close`).
    ///
    /// ## Why it causes 502/504
    /// The keepalive cache only keeps connections the upstream leaves open, and with HTTP/1.0 or
    /// `Connection: close` every response ends its connection. nginx opens a new TCP connection
    /// per request while the config looks tuned for reuse: under load the local ports fill with
    /// `TIME_WAIT` sockets until `connect()` fails with `(99: Cannot assign requested address)`,
    /// and the backend pays a handshake per request (with TLS, a full one), so latency grows
    /// into read timeouts (504).
    ///
    /// ## Example
    /// ```nginx
    /// upstream app {
    ///     server 127.0.0.1:8080;
    ///     keepalive 32;
    /// }
    /// server {
    ///     location / {
    ///         proxy_pass http://app;
    ///     }
    /// }
    /// ```
    ///
    /// ## Fix
    /// ```nginx
    /// location / {
    ///     proxy_pass http://app;
    ///     proxy_http_version 1.1;
    ///     proxy_set_header Connection "";
    /// }
    /// ```
    /// `proxy_set_header` in a location replaces every `proxy_set_header` inherited from outer
    /// levels: repeat the ones you need (`Host`, `X-Forwarded-For`, ...).
    pub struct KeepaliveNoHttp11 = "keepalive-no-http11", "upstream keepalive without HTTP/1.1 and an empty Connection header";
    time = "5 min", risk = "low";
}

impl Rule for KeepaliveNoHttp11 {
    fn check(&self, model: &Model, out: &mut Vec<Finding>) {
        for pass in &model.passes {
            if pass.kind != PassKind::Proxy || pass.protocol != Protocol::Http {
                continue;
            }
            let Some(group) = model.group(pass) else {
                continue;
            };
            let Some(keepalive) = &group.keepalive else {
                continue;
            };
            let (Some(version), Some(connection)) = (
                &pass.settings.http_version,
                &pass.settings.connection_header,
            ) else {
                continue;
            };
            let old_http = version.value != "1.1";
            let closes = !connection.value.is_empty();
            if !old_http && !closes {
                continue;
            }
            // At most four, allocated once: 1,000 findings on a 5,000-server config.
            let mut evidence = Vec::with_capacity(4);
            evidence.push(Evidence::config(&pass.src));
            evidence.extend(keepalive.src.iter().map(Evidence::config));
            evidence.extend(
                version
                    .src
                    .iter()
                    .filter(|_| old_http)
                    .map(Evidence::config),
            );
            evidence.extend(
                connection
                    .src
                    .iter()
                    .filter(|_| closes)
                    .map(Evidence::config),
            );
            let mut wrong = Vec::new();
            let mut steps = Vec::new();
            if old_http {
                wrong.push(format!("HTTP/{}", version.value));
                steps.push("add `proxy_http_version 1.1;`".to_string());
            }
            if closes {
                wrong.push(format!("Connection: {}", connection.value));
                steps.push("add `proxy_set_header Connection \"\";` (and repeat the other proxy_set_header lines this level would otherwise stop inheriting)".to_string());
            }
            out.push(
                Finding::latent(
                    self.id(),
                    format!(
                        "upstream {} has keepalive {}, but this location sends {}: every request opens a new connection",
                        group.name,
                        keepalive.value,
                        wrong.join(" and ")
                    ),
                    evidence,
                    config_fix(self,
                        "proxy_http_version 1.1; proxy_set_header Connection \"\";".to_string(),
                        steps
                    ),
                )
                .upstream(group.name.clone()),
            );
        }
    }
}
