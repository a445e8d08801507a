use std::net::IpAddr;

use medic_parse::error_log::FailureClass;
use medic_parse::time::LogTime;

use super::{backend_fix, Cause};
use crate::facts::supervisor::{FpmEvent, FpmMaster, FpmPool};
use crate::rules::group::{parse_ip_port, Group};
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

/// Whether a PHP-FPM `listen` value is the address nginx connects to: `unix:/path` and
/// `/path`; `127.0.0.1:9000` and `127.0.0.1:9000`, `9000` (every address) or a wildcard.
pub(super) fn listen_matches(listen: &str, upstream: &str) -> bool {
    if let Some(path) = upstream.strip_prefix("unix:") {
        return listen == path;
    }
    if listen == upstream {
        return true;
    }
    let Some((ip, port)) = parse_ip_port(upstream) else {
        return false;
    };
    if let Ok(p) = listen.parse::<u16>() {
        return p == port;
    }
    let Some((host, p)) = listen.rsplit_once(':') else {
        return false;
    };
    if p.parse::<u16>().ok() != Some(port) {
        return false;
    }
    let host = host.trim_start_matches('[').trim_end_matches(']');
    if host == "*" {
        return true;
    }
    match host.parse::<IpAddr>() {
        Ok(h) => h == ip || (h.is_unspecified() && (h.is_ipv6() || ip.is_ipv4())),
        Err(_) => host == "localhost" && ip.is_loopback(),
    }
}

/// The running PHP-FPM pool that listens where the group's upstream (or one of its servers)
/// points.
pub(super) fn pool_at<'f>(g: &Group<'f>) -> Option<(&'f FpmMaster, &'f FpmPool)> {
    let probes = g.probes()?;
    let mut names: Vec<&str> = g.upstream.as_deref().into_iter().collect();
    for t in &g.targets {
        names.push(&t.facts.upstream);
        names.extend(t.facts.addresses.iter().map(String::as_str));
    }
    probes.supervisors.fpm.iter().find_map(|m| {
        m.pools
            .iter()
            .find(|p| {
                p.listen
                    .as_deref()
                    .is_some_and(|l| names.iter().any(|n| listen_matches(l, n)))
            })
            .map(|p| (m, p))
    })
}

/// The master's events of one pool (events that name no pool count for every pool).
pub(super) fn pool_events<'a>(
    master: &'a FpmMaster,
    pool: &'a FpmPool,
) -> impl Iterator<Item = &'a FpmEvent> + 'a {
    master
        .events
        .iter()
        .filter(move |e| e.pool.as_deref().is_none_or(|p| p == pool.name))
}

/// Whether an event at `time` (local ISO) falls in the group's time window, from `before`
/// seconds before its first entry to `after` seconds after its last; for a group only the
/// probes see, around now. An event whose time could not be read counts.
pub(super) fn in_window(g: &Group<'_>, time: Option<&str>, before: i64, after: i64) -> bool {
    let Some(t) = time.and_then(|t| LogTime::parse_iso(t.as_bytes())) else {
        return true;
    };
    let (first, last) = match (g.log, g.facts.now) {
        (Some(l), _) => (l.first, l.last),
        (None, Some(now)) => (now, now),
        (None, None) => return true,
    };
    t.0 >= first.0 - before && t.0 <= last.0 + after
}

/// `pool [www] (/etc/php/8.2/fpm/pool.d/www.conf): listen = ..., pm = dynamic, pm.max_children = 5`.
pub(super) fn pool_line(p: &FpmPool) -> String {
    let mut s = format!("pool [{}]", p.name);
    if let Some(f) = &p.file {
        s.push_str(&format!(" ({})", f.display()));
    }
    let mut kv = Vec::new();
    let mut add = |k: &str, v: Option<String>| {
        if let Some(v) = v {
            kv.push(format!("{k} = {v}"));
        }
    };
    add("listen", p.listen.clone());
    add("listen.owner", p.listen_owner.clone());
    add("listen.group", p.listen_group.clone());
    add("listen.mode", p.listen_mode.clone());
    add("listen.acl_users", p.listen_acl_users.clone());
    add("listen.acl_groups", p.listen_acl_groups.clone());
    add("listen.backlog", p.listen_backlog.map(|b| b.to_string()));
    add("user", p.user.clone());
    add("pm", p.pm.clone());
    add("pm.max_children", p.max_children.map(|m| m.to_string()));
    add(
        "request_terminate_timeout",
        p.request_terminate_timeout.clone(),
    );
    if !kv.is_empty() {
        s.push_str(": ");
        s.push_str(&kv.join(", "));
    }
    s
}

/// The pool's file, or a description of where it is.
pub(super) fn pool_file(p: &FpmPool) -> String {
    p.file.as_ref().map_or_else(
        || format!("the pool file of [{}]", p.name),
        |f| f.display().to_string(),
    )
}

/// Where a master's events come from.
pub(super) fn master_log(m: &FpmMaster) -> String {
    m.error_log.as_ref().map_or_else(
        || format!("php-fpm master {}", m.pid),
        |p| p.display().to_string(),
    )
}

/// The systemd unit of the PHP-FPM master: the listener's unit when known, else guessed from
/// the master's config path (`/etc/php/8.2/fpm/php-fpm.conf` -> `php8.2-fpm`), else `php-fpm`.
pub(super) fn fpm_unit(g: &Group<'_>, m: &FpmMaster) -> String {
    let from_listener = g
        .targets
        .iter()
        .filter_map(|t| t.facts.listener.as_ref())
        .flat_map(|l| l.processes.iter())
        .find_map(|p| p.unit.clone());
    if let Some(u) = from_listener {
        return u.trim_end_matches(".service").to_string();
    }
    if let Some(c) = m.config.as_ref().and_then(|c| c.to_str()) {
        if let Some(rest) = c.strip_prefix("/etc/php/") {
            if let Some((ver, _)) = rest.split_once('/') {
                return format!("php{ver}-fpm");
            }
        }
    }
    "php-fpm".to_string()
}

/// The process name of a PHP-FPM unit, for `ps -C` (`php8.2-fpm` -> `php-fpm8.2`).
pub(super) fn fpm_program(unit: &str) -> String {
    match unit
        .strip_prefix("php")
        .and_then(|r| r.strip_suffix("-fpm"))
    {
        Some(ver) if !ver.is_empty() => format!("php-fpm{ver}"),
        _ => "php-fpm".to_string(),
    }
}
