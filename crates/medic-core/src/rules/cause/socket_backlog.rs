use medic_parse::error_log::FailureClass;

use super::support::fpm::{fpm_unit, pool_at, pool_file, pool_line};
use super::{backend_fix, Cause};
use crate::facts::Connect;
use crate::rules::group::Group;
use crate::rules::{rule, Evidence, Finding};

rule! {
    /// ## What it detects
    /// `connect() to unix:/run/php/php8.2-fpm.sock failed (11: Resource temporarily
    /// unavailable) while connecting to upstream`: the unix socket's listen queue was full. When
    /// the live probes show the PHP-FPM pool behind it saturated, the finding is
    /// `pool-saturated`.
    ///
    /// ## Why it causes 502
    /// Connections to a unix socket wait in its backlog until the backend accepts them. When
    /// the backend's workers are all busy, the queue fills up (PHP-FPM's `listen.backlog`,
    /// capped by `net.core.somaxconn`), and a non-blocking connect fails with EAGAIN at once:
    /// nginx answers 502 Bad Gateway without waiting.
    ///
    /// ## Evidence
    /// The failures in the error log; the `fastcgi_pass` line; live, the probe's connect
    /// (`backlog-full`) and the pool's `listen.backlog` and `pm.max_children`.
    ///
    /// ## Fix
    /// The queue is full because the workers are: raise `pm.max_children` within memory and
    /// fix the slow requests (PHP-FPM `slowlog`); a longer queue (`listen.backlog = 511` and
    /// `sysctl net.core.somaxconn=1024`) only absorbs short spikes. Restart the pool.
    pub struct SocketBacklog = "socket-backlog", "the unix socket's listen queue is full";
    time = "10 min", risk = "medium";
}

impl Cause for SocketBacklog {
    fn classes(&self) -> &'static [FailureClass] {
        &[FailureClass::SocketBacklog]
    }

    fn explain(&self, g: &Group<'_>) -> Option<Finding> {
        let up = g.upstream.as_deref().unwrap_or("the socket");
        let pool = pool_at(g);
        let unit = pool.map_or_else(|| "php8.2-fpm".to_string(), |(m, _)| fpm_unit(g, m));
        let file = pool.map_or_else(|| "the pool file".to_string(), |(_, p)| pool_file(p));
        let mut f = g.finding(
            self,
            format!("the listen queue of {up} was full: the backend accepts connections slower than they come"),
            backend_fix(self,
                "give the backend more workers and find the slow requests; a longer queue only absorbs spikes",
                vec![
                    format!("raise `pm.max_children` in {file} within memory (children x average child size must fit in RAM)"),
                    format!("find the slow scripts: `request_slowlog_timeout = 5s` and `slowlog = ...` in {file}"),
                    format!("for short spikes: `listen.backlog = 511` in {file} and `sysctl -w net.core.somaxconn=1024` (the kernel caps the backlog at it)"),
                    format!("apply: `systemctl restart {unit}`"),
                ],
                vec![
                    "sysctl net.core.somaxconn".to_string(),
                    format!("systemctl restart {unit}"),
                ]
            ),
        );
        if let Some(u) = g.target().and_then(|t| t.facts.unix.as_ref()) {
            let now = if u.connect == Connect::BacklogFull {
                "full now (EAGAIN)"
            } else {
                "accepted now"
            };
            f.evidence.push(Evidence::probe(
                "connect",
                format!("connect to unix:{}: {} ({now})", u.path, u.connect.label()),
            ));
        }
        if let Some((m, p)) = pool {
            f.evidence.push(Evidence::other(
                "supervisor",
                format!("php-fpm master {}", m.pid),
                pool_line(p),
            ));
        }
        Some(f)
    }
}
