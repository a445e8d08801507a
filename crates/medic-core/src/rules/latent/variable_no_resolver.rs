use crate::config::values::{is_ip_literal, split_host_port};
use crate::config::{Model, Pass, Target};
use crate::rules::{rule, Evidence, Finding, Rule, RuleDoc};

use super::config_fix;

rule! {
    /// ## What it detects
    /// A `proxy_pass` (or `fastcgi_pass`, `grpc_pass`, ...) whose URL holds a variable and whose
    /// host is, or may be, a name (`proxy_pass http://$backend;`, `proxy_pass
    /// http://api.internal$request_uri;`), with no `resolver` in effect. Variables whose every
    /// value (from `map` and `set`) is an IP address or an `upstream {}` group are fine.
    ///
    /// ## Why it causes 502/504
    /// With a variable in the URL nginx builds the address per request and, unless the host is
    /// an IP or an `upstream` group, resolves it at run time with the `resolver` directive only
    /// (not `/etc/hosts`, not the system resolver). Without one, every such request fails:
    /// nginx logs `no resolver defined to resolve api.internal` and answers 502. `nginx -t`
    /// does not notice.
    ///
    /// ## Example
    /// ```nginx
    /// location / {
    ///     set $backend api.internal;
    ///     proxy_pass http://$backend:8080;
    /// }
    /// ```
    ///
    /// ## Fix
    /// Add a resolver (the system one is in `/etc/resolv.conf`; in Docker, `127.0.0.11`):
    /// ```nginx
    /// resolver 127.0.0.53 valid=30s;
    /// ```
    /// or use a fixed name or an `upstream {}` group if the target never changes.
    pub struct VariableNoResolver = "variable-no-resolver", "upstream with variables but no resolver";
    time = "5 min", risk = "medium (names then follow DNS changes, which is usually the point)";
}

impl Rule for VariableNoResolver {
    fn check(&self, model: &Model, out: &mut Vec<Finding>) {
        for pass in &model.passes {
            let Target::Dynamic { host } = &pass.target else {
                continue;
            };
            if model.scope(pass).settings.resolver.is_some() || !needs_dns(model, pass, host) {
                continue;
            }
            out.push(
                Finding::latent(
                    self.id(),
                    format!("{} resolves {host} per request, but no resolver is set", pass.kind.directive()),
                    vec![Evidence::config(&pass.src)],
                    config_fix(self,
                        "resolver ADDRESS valid=30s;".to_string(),
                        vec![
                            "find the DNS server: `grep nameserver /etc/resolv.conf` (Docker: 127.0.0.11)".to_string(),
                            format!("add `resolver ADDRESS valid=30s;` in the http, server or location block of {}", pass.src.location()),
                        ]
                    ),
                )
                .upstream(host.clone()),
            );
        }
    }
}

/// Whether the run-time host may need DNS: a literal name, or a variable that can hold one.
fn needs_dns(model: &Model, pass: &Pass, authority: &str) -> bool {
    let host = split_host_port(authority).map_or(authority, |(h, _)| h);
    let known = |v: &str| {
        let h = split_host_port(v).map_or(v, |(h, _)| h);
        !h.contains('$')
            && (is_ip_literal(h)
                || v.starts_with("unix:")
                || model
                    .upstreams
                    .iter()
                    .any(|g| g.protocol == pass.protocol && g.name == h))
    };
    match host.strip_prefix('$') {
        // `$var` or `${var}` alone: look at every value it can take.
        Some(var) => {
            let var = var.trim_start_matches('{').trim_end_matches('}');
            if var.contains('$') || var.contains('.') {
                return true;
            }
            match model.variables.get(var) {
                Some(values) if !values.is_empty() => !values.iter().all(|v| {
                    // `map` values may be whole URLs for a `proxy_pass $var`.
                    let v = v.split_once("://").map_or(v.as_str(), |(_, r)| r);
                    let v = v.split('/').next().unwrap_or(v);
                    known(v)
                }),
                _ => true,
            }
        }
        None => !known(host),
    }
}
