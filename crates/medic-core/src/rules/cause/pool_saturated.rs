use medic_parse::error_log::FailureClass;

use super::support::fpm::{
    fpm_program, fpm_unit, in_window, master_log, pool_at, pool_events, pool_file, pool_line,
};
use super::{backend_fix, Cause};
use crate::facts::supervisor::FpmEvent;
use crate::rules::group::Group;
use crate::rules::{rule, Evidence, Finding};

rule! {
    /// ## What it detects
    /// Requests to a PHP-FPM pool time out or are turned away because every child of the pool
    /// is busy: nginx logs `upstream timed out (110: Connection timed out) while reading
    /// response header from upstream` (or, on a unix socket whose queue overflowed,
    /// `connect() to unix:/path failed (11: Resource temporarily unavailable)`), and the pool
    /// that listens at the `fastcgi_pass` address shows it is full: its master logged
    /// `WARNING: [pool www] server reached pm.max_children setting (N), consider raising it`
    /// around that time, or the probe's FastCGI request to the pool gets no answer within
    /// `fastcgi_read_timeout` now. Live diagnosis only (`--no-probe` cannot see the pool).
    ///
    /// ## Why it causes 504
    /// A PHP-FPM pool runs at most `pm.max_children` scripts at once. When all children are busy
    /// (slow scripts, a slow database, a traffic spike), new connections wait in the socket's
    /// listen queue without an answer. nginx gives up after `fastcgi_read_timeout` and answers
    /// 504 Gateway Time-out; when the queue (`listen.backlog`) overflows, the connect fails at
    /// once and nginx answers 502.
    ///
    /// ## Evidence
    /// The timeouts in the error log; the `fastcgi_pass` line; the pool that listens there, its
    /// file, `pm` and `pm.max_children`; the master's `max_children` warnings; the FastCGI
    /// probe's wait.
    ///
    /// ## Fix
    /// Raise `pm.max_children` in the pool file within the memory you have (average child
    /// size: `ps -o rss= -C php-fpm8.2`; children x size must fit in RAM), and find the slow
    /// requests with the pool's slowlog (`request_slowlog_timeout = 5s`, `slowlog = ...`);
    /// then `systemctl reload php8.2-fpm`.
    pub struct PoolSaturated = "pool-saturated", "every PHP-FPM child of the pool is busy (pm.max_children reached)";
    time = "10 min", risk = "medium";
}

impl Cause for PoolSaturated {
    fn classes(&self) -> &'static [FailureClass] {
        &[FailureClass::ReadTimeout, FailureClass::SocketBacklog]
    }

    fn explain(&self, g: &Group<'_>) -> Option<Finding> {
        if !g.live() {
            return None;
        }
        let (master, pool) = pool_at(g)?;
        let events: Vec<&FpmEvent> = pool_events(master, pool)
            .filter(|e| e.kind == "max-children")
            .filter(|e| in_window(g, e.time.as_deref(), 600, 60))
            .collect();
        let hang = g
            .targets
            .iter()
            .filter_map(|t| t.facts.fastcgi.as_ref())
            .find(|f| f.hangs());
        if events.is_empty() && hang.is_none() {
            return None;
        }
        let up = g.upstream.as_deref().unwrap_or("the pool");
        let max = pool
            .max_children
            .map_or_else(|| "?".to_string(), |m| m.to_string());
        let unit = fpm_unit(g, master);
        let file = pool_file(pool);
        let mut f = g.finding(
            self,
            format!(
                "PHP-FPM pool [{}] behind {up} is saturated: all {max} children (pm.max_children) busy",
                pool.name
            ),
            backend_fix(self,
                format!("give pool [{}] more children within the memory available, and find the slow requests that hold them", pool.name),
                vec![
                    format!("measure a child's memory: `ps -o rss= -C {} | awk '{{s+=$1}} END {{print s/NR/1024 \" MB\"}}'`; pm.max_children x that must fit in the RAM left for PHP", fpm_program(&unit)),
                    format!("raise `pm.max_children` (now {max}) in {file}"),
                    format!("find the slow scripts: set `request_slowlog_timeout = 5s` and `slowlog = /var/log/php-fpm/{}.slow.log` in {file}", pool.name),
                    format!("apply: `systemctl reload {unit}`"),
                ],
                vec![
                    format!("systemctl reload {unit}"),
                    format!("journalctl -u {unit} -n 50 --no-pager"),
                ]
            ),
        );
        f.evidence.push(Evidence::other(
            "supervisor",
            format!("php-fpm pool {}", pool.name),
            pool_line(pool),
        ));
        for e in events.iter().rev().take(3).rev() {
            f.evidence.push(Evidence::other(
                "supervisor",
                master_log(master),
                e.line.clone(),
            ));
        }
        if let Some(h) = hang {
            f.evidence.push(Evidence::probe(
                "fastcgi",
                format!(
                    "a FastCGI request to {} got no answer within fastcgi_read_timeout {} ms: the pool takes no new request now",
                    h.address, h.read_timeout_ms
                ),
            ));
        }
        Some(f)
    }
}
