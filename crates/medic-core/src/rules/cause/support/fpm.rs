//! PHP-FPM: which pool serves an upstream, its events in a failure window, and how to name
//! it (file, log, unit).

use crate::facts::supervisor::{FpmEvent, FpmMaster, FpmPool};
use crate::rules::group::{parse_ip_port, Group};
use medic_parse::time::LogTime;
use std::net::IpAddr;

/// Whether a PHP-FPM `listen` value is the address nginx connects to: `unix:/path` and
/// `/path`; `127.0.0.1:9000` and `127.0.0.1:9000`, `9000` (every address) or a wildcard.
pub(crate) fn listen_matches(listen: &str, upstream: &str) -> bool {
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
pub(crate) fn pool_at<'f>(g: &Group<'f>) -> Option<(&'f FpmMaster, &'f FpmPool)> {
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
pub(crate) fn pool_events<'a>(
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
pub(crate) fn in_window(g: &Group<'_>, time: Option<&str>, before: i64, after: i64) -> bool {
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
pub(crate) fn pool_line(p: &FpmPool) -> String {
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
pub(crate) fn pool_file(p: &FpmPool) -> String {
    p.file.as_ref().map_or_else(
        || format!("the pool file of [{}]", p.name),
        |f| f.display().to_string(),
    )
}

/// Where a master's events come from.
pub(crate) fn master_log(m: &FpmMaster) -> String {
    m.error_log.as_ref().map_or_else(
        || format!("php-fpm master {}", m.pid),
        |p| p.display().to_string(),
    )
}

/// The systemd unit of the PHP-FPM master: the listener's unit when known, else guessed from
/// the master's config path (`/etc/php/8.2/fpm/php-fpm.conf` -> `php8.2-fpm`), else `php-fpm`.
pub(crate) fn fpm_unit(g: &Group<'_>, m: &FpmMaster) -> String {
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
pub(crate) fn fpm_program(unit: &str) -> String {
    match unit
        .strip_prefix("php")
        .and_then(|r| r.strip_suffix("-fpm"))
    {
        Some(ver) if !ver.is_empty() => format!("php-fpm{ver}"),
        _ => "php-fpm".to_string(),
    }
}
