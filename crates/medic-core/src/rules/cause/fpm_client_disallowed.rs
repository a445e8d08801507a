use medic_parse::error_log::FailureClass;

use super::{backend_fix, Cause};
use crate::rules::group::Group;
use crate::rules::{rule, Evidence, Finding};

rule! {
    /// ## What it detects
    /// nginx's FastCGI connection to a PHP-FPM pool on TCP is closed or reset at once, and the
    /// pool that listens on that port sets `listen.allowed_clients` without nginx's loopback
    /// source address: FPM drops the connection (its log says `Connection disallowed: IP
    /// address 127.0.0.1 has been dropped.`). Live diagnosis only.
    ///
    /// ## Why it causes 502
    /// FPM accepts the TCP connection, checks the client's address against
    /// `listen.allowed_clients`, and closes it before reading the request; nginx sees a reset
    /// or an early end and answers 502.
    ///
    /// ## Evidence
    /// The failures in the error log; the `fastcgi_pass` line; the pool's `listen` and
    /// `listen.allowed_clients` with its file.
    ///
    /// ## Fix
    /// Add nginx's source address (`127.0.0.1` for a loopback `fastcgi_pass`) to
    /// `listen.allowed_clients`, or use a unix socket; restart the pool.
    pub struct FpmClientDisallowed = "fpm-client-disallowed", "PHP-FPM drops nginx's connections: its address is not in listen.allowed_clients";
    time = "5 min", risk = "low";
}

impl Cause for FpmClientDisallowed {
    fn classes(&self) -> &'static [FailureClass] {
        &[FailureClass::UpstreamReset, FailureClass::PrematureClose]
    }

    fn explain(&self, g: &Group<'_>) -> Option<Finding> {
        let (ip, port) = g.ip_port()?;
        let probes = g.probes()?;
        let pool = probes
            .supervisors
            .fpm
            .iter()
            .flat_map(|m| m.pools.iter())
            .chain(
                probes
                    .supervisors
                    .fpm_installed
                    .iter()
                    .flat_map(|i| i.pools.iter()),
            )
            .find(|p| {
                p.listen.as_deref().is_some_and(|l| {
                    l == port.to_string()
                        || l.rsplit_once(':')
                            .is_some_and(|(_, lp)| lp == port.to_string())
                })
            })?;
        let allowed = pool.listen_allowed_clients.as_deref()?;
        let source = if ip.is_loopback() {
            ip.to_string()
        } else {
            return None;
        };
        if allowed.split(',').any(|a| a.trim() == source) {
            return None;
        }
        let up = g.upstream.as_deref().unwrap_or("the upstream");
        let mut f = g.finding(
            self,
            format!("PHP-FPM pool [{}] on {up} drops nginx's connections: {source} is not in listen.allowed_clients ({allowed})", pool.name),
            {
                let (restart_steps, commands) = g.restart_advice();
                let mut steps = vec![format!(
                    "in {}: `listen.allowed_clients = {allowed},{source}` (or a unix socket for nginx)",
                    pool.listen_at.as_deref().unwrap_or("the pool file")
                )];
                steps.extend(restart_steps);
                backend_fix(self,
                    format!("allow {source} in the pool's listen.allowed_clients, or use a unix socket"),
                    steps,
                    commands
                )
            },
        );
        f.evidence.push(Evidence::other(
            "config",
            pool.listen_at
                .clone()
                .unwrap_or_else(|| "php-fpm pool".to_string()),
            format!(
                "listen = {}; listen.allowed_clients = {allowed}",
                pool.listen.as_deref().unwrap_or("?")
            ),
        ));
        Some(f)
    }
}
