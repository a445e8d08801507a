//! Root causes (`causes.md` §2): why nginx answered 502/503/504, one rule per file.
//!
//! A cause either explains a [`Group`] of failures of the classes it lists (the error log's
//! entries of one class and upstream, or a target that fails the probes now), or reads other
//! facts ([`Cause::check`]: the access log, `nginx -t`, certificates). For each group the
//! causes are tried in [`CAUSES`] order, most specific first, down to the class-level cause that
//! the log text alone proves; the first that holds names the root cause. So a rule only has to
//! say when *its* evidence holds, and never has to rule out the causes before it.
//!
//! Severity: `error` for what caused (or, seen by a probe now, will cause) 5xx; `warning` for
//! what will; `info` for history.

use medic_parse::error_log::FailureClass;

use super::{Finding, Fix, RuleDoc};
use crate::facts::Facts;
use crate::rules::group::Group;

mod app_error;
mod backend_5xx;
mod backend_crash;
mod backend_down;
mod backend_starting;
mod bind_mismatch;
mod cert_expires_soon;
mod client_closed;
mod config_invalid;
mod conn_limited;
mod connect_failed;
mod connect_permission;
mod connect_refused;
mod connect_timeout;
mod connect_unreachable;
mod dns_failure;
mod fpm_client_disallowed;
mod header_too_big;
mod invalid_response;
mod no_live_upstreams;
mod pool_saturated;
mod ports_exhausted;
mod premature_close;
mod rate_limited;
mod read_timeout;
mod scheme_mismatch;
mod script_not_found;
mod selinux_denied;
mod send_timeout;
mod slow_backend;
mod socket_backlog;
mod socket_missing;
mod socket_path_mismatch;
mod socket_permission;
mod socket_stale;
mod stale_dns;
mod support;
mod temp_file_error;
mod temp_path_permission;
mod tls_client_cert_required;
mod tls_expired;
mod tls_handshake;
mod tls_name_mismatch;
mod tls_protocol_mismatch;
mod tls_sni_required;
mod tls_untrusted;
mod tls_verify;
mod upstream_reset;
mod worker_limits;
mod wrong_port;

#[cfg(test)]
pub(crate) mod tests;
#[cfg(test)]
mod tests_backend;
#[cfg(test)]
mod tests_tls;

/// A root cause.
pub trait Cause: RuleDoc + Send + Sync {
    /// The failure classes this cause may explain; empty when it reads other facts only.
    fn classes(&self) -> &'static [FailureClass] {
        &[]
    }

    /// The finding, when the facts establish this cause for the group.
    fn explain(&self, _group: &Group<'_>) -> Option<Finding> {
        None
    }

    /// Findings from facts other than failure groups (the access log, `nginx -t`, probes).
    fn check(&self, _facts: &Facts, _out: &mut Vec<Finding>) {}
}

/// Every cause, in the order they are tried on a group: the most specific first, each class's
/// own cause (what the log text alone proves) last.
pub static CAUSES: &[&dyn Cause] = &[
    // Whatever the class, an entry at [emerg] is nginx refusing its config.
    &config_invalid::ConfigInvalid,
    // connect-refused, no-live-upstreams
    &socket_stale::SocketStale,
    &stale_dns::StaleDns,
    &backend_starting::BackendStarting,
    &bind_mismatch::BindMismatch,
    &wrong_port::WrongPort,
    &backend_down::BackendDown,
    &connect_refused::ConnectRefused,
    &no_live_upstreams::NoLiveUpstreams,
    // socket-missing
    &socket_path_mismatch::SocketPathMismatch,
    &socket_missing::SocketMissing,
    // connect-permission
    &socket_permission::SocketPermission,
    &selinux_denied::SelinuxDenied,
    &connect_permission::ConnectPermission,
    // socket-backlog, read-timeout, send-timeout
    &pool_saturated::PoolSaturated,
    &socket_backlog::SocketBacklog,
    &slow_backend::SlowBackend,
    &read_timeout::ReadTimeout,
    &send_timeout::SendTimeout,
    &connect_timeout::ConnectTimeout,
    // TLS, and the protocol spoken
    &scheme_mismatch::SchemeMismatch,
    &tls_client_cert_required::TlsClientCertRequired,
    &tls_sni_required::TlsSniRequired,
    &tls_protocol_mismatch::TlsProtocolMismatch,
    &tls_handshake::TlsHandshake,
    &tls_expired::TlsExpired,
    &tls_name_mismatch::TlsNameMismatch,
    &tls_untrusted::TlsUntrusted,
    &tls_verify::TlsVerify,
    // the backend went away mid-request
    &fpm_client_disallowed::FpmClientDisallowed,
    &backend_crash::BackendCrash,
    &upstream_reset::UpstreamReset,
    &premature_close::PrematureClose,
    &header_too_big::HeaderTooBig,
    &invalid_response::InvalidResponse,
    // names, limits, the application
    &dns_failure::DnsFailure,
    &rate_limited::RateLimited,
    &conn_limited::ConnLimited,
    &script_not_found::ScriptNotFound,
    &app_error::AppError,
    &worker_limits::WorkerLimits,
    &connect_unreachable::ConnectUnreachable,
    &ports_exhausted::PortsExhausted,
    &connect_failed::ConnectFailed,
    // temp files
    &temp_path_permission::TempPathPermission,
    &temp_file_error::TempFileError,
    // from the access log and the probes
    &backend_5xx::Backend5xx,
    &client_closed::ClientClosed,
    &cert_expires_soon::CertExpiresSoon,
];

/// Every cause, in catalog order.
pub fn registry() -> &'static [&'static dyn Cause] {
    CAUSES
}

/// The root cause of a group: the first cause in [`CAUSES`] order that explains it.
pub fn explain(group: &Group<'_>) -> Option<Finding> {
    CAUSES
        .iter()
        .filter(|c| c.classes().contains(&group.class))
        .find_map(|c| c.explain(group))
}

/// The classes that every cause may see an `[emerg]` group of.
pub(crate) const ALL_CLASSES: &[FailureClass] = &FailureClass::ALL;

/// A fix that edits nginx's config: the steps, then always `nginx -t` before the reload.
pub(crate) fn nginx_fix(
    rule: &dyn RuleDoc,
    summary: impl Into<String>,
    mut steps: Vec<String>,
) -> Fix {
    steps.push("check the config, then reload: `nginx -t && systemctl reload nginx`".into());
    rule.fix(
        summary.into(),
        steps,
        vec!["nginx -t".into(), "systemctl reload nginx".into()],
    )
}

/// A fix on the backend's side: steps and the commands that go with them.
pub(crate) fn backend_fix(
    rule: &dyn RuleDoc,
    summary: impl Into<String>,
    steps: Vec<String>,
    commands: Vec<String>,
) -> Fix {
    rule.fix(summary.into(), steps, commands)
}

/// The probe's connect to each address of a target, as evidence (`connect to ADDR: refused`).
pub(crate) fn connect_evidence(t: &crate::facts::ProbedTarget, f: &mut Finding) {
    for c in &t.facts.tcp {
        f.evidence.push(super::Evidence::probe(
            "connect",
            format!("connect to {}: {}", c.address, c.connect.label()),
        ));
    }
}
