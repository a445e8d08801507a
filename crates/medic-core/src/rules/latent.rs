//! Latent causes (`causes.md` §2b): settings that will produce 502/504 under some condition,
//! found in the config before any 5xx is seen. Severity `warning`.

use super::{Fix, Rule};

mod fastcgi_no_script_filename;
mod keepalive_no_http11;
mod limit_req_no_burst;
mod localhost_upstream;
mod ssl_no_sni;
mod ssl_verify_no_ca;
mod timeout_inconsistent;
mod variable_no_resolver;

#[cfg(test)]
mod tests;

pub use fastcgi_no_script_filename::FastcgiNoScriptFilename;
pub use keepalive_no_http11::KeepaliveNoHttp11;
pub use limit_req_no_burst::LimitReqNoBurst;
pub use localhost_upstream::LocalhostUpstream;
pub use ssl_no_sni::SslNoSni;
pub use ssl_verify_no_ca::SslVerifyNoCa;
pub use timeout_inconsistent::TimeoutInconsistent;
pub use variable_no_resolver::VariableNoResolver;

/// The group's rules in catalog order (`causes.md` §2b).
pub(super) static RULES: &[&dyn Rule] = &[
    &SslNoSni,
    &SslVerifyNoCa,
    &KeepaliveNoHttp11,
    &LocalhostUpstream,
    &VariableNoResolver,
    &FastcgiNoScriptFilename,
    &TimeoutInconsistent,
    &LimitReqNoBurst,
];

/// A config fix: edit, `nginx -t`, reload (every latent fix ends the same way).
fn config_fix(rule: &dyn super::RuleDoc, summary: String, mut steps: Vec<String>) -> Fix {
    steps.push("check the config, then reload: `nginx -t && systemctl reload nginx`".to_string());
    rule.fix(
        summary,
        steps,
        vec!["nginx -t".to_string(), "systemctl reload nginx".to_string()],
    )
}
