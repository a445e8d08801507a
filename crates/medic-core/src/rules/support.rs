//! Questions the rules (and the engine) ask of the facts: which probed targets and passes an
//! upstream name stands for, and which listeners could be a refused backend.

use crate::config::{Model, Pass, Target};
use crate::facts::{Facts, Listener, ProbedTarget, SocketKind};

/// The probed targets an upstream name stands for: the target itself (by name or by any
/// address it resolved to), or every server of a group of that name.
pub fn targets_of<'f>(facts: &'f Facts, upstream: &str) -> Vec<&'f ProbedTarget> {
    let Some(p) = &facts.probes else {
        return Vec::new();
    };
    let exact: Vec<&ProbedTarget> = p
        .targets
        .iter()
        .filter(|t| t.facts.upstream == upstream || t.facts.addresses.iter().any(|a| a == upstream))
        .collect();
    if !exact.is_empty() {
        return exact;
    }
    p.targets
        .iter()
        .filter(|t| t.facts.group.as_deref() == Some(upstream))
        .collect()
}

/// The passes that send to an upstream (by target, group, or a group holding the server).
pub fn passes_to<'f>(facts: &'f Facts, upstream: &str) -> Vec<(&'f Model, &'f Pass)> {
    let mut out = Vec::new();
    for m in &facts.models {
        for p in &m.passes {
            let hit = match &p.target {
                Target::Group { name, index } => {
                    name == upstream
                        || m.upstreams[*index]
                            .servers
                            .iter()
                            .any(|s| same_peer(&s.address, upstream))
                }
                t => same_peer(&t.display(), upstream),
            };
            if hit {
                out.push((m, p));
            }
        }
    }
    out
}

/// Whether two peer names are the same peer. `localhost:80` and `127.0.0.1:80` are not: the
/// log names the address nginx connected to, the config the name; [`targets_of`] joins
/// those through the addresses the probe resolved.
fn same_peer(a: &str, b: &str) -> bool {
    a == b
}

/// The listeners a refused TCP target could have meant: not nginx, reachable from nginx (a
/// loopback or wildcard address), held by a process that could be inspected, not PID 1 or a
/// well-known system daemon, and not a target of another pass of the config.
pub fn candidate_listeners(facts: &Facts, exclude_port: u16) -> Vec<&Listener> {
    const SYSTEM: &[&str] = &[
        "nginx",
        "sshd",
        "systemd",
        "systemd-resolve",
        "chronyd",
        "dnsmasq",
        "cupsd",
        "containerd",
        "dockerd",
        "rpcbind",
        "exim4",
        "master",
        "avahi-daemon",
        "named",
        "unbound",
        "ntpd",
        "snmpd",
        // Datastores and mail: never what a `*_pass` means to reach.
        "postgres",
        "mysqld",
        "mariadbd",
        "redis-server",
        "memcached",
        "mongod",
        "epmd",
        "beam.smp",
        "slapd",
        "dovecot",
        "smtpd",
        "sendmail",
    ];
    // The ports the config sends to: its passes and every server of its upstream groups (the
    // other server of a group is where nginx retries, not a backend on the wrong port).
    let mut targeted: Vec<u16> = facts
        .models
        .iter()
        .flat_map(|m| m.passes.iter())
        .filter_map(|p| match &p.target {
            Target::Host { port, .. } => *port,
            _ => None,
        })
        .collect();
    targeted.extend(
        facts
            .models
            .iter()
            .flat_map(|m| m.upstreams.iter())
            .flat_map(|u| u.servers.iter())
            .filter_map(|s| s.address.rsplit_once(':')?.1.parse::<u16>().ok()),
    );
    facts
        .listeners()
        .iter()
        .filter(|l| matches!(l.kind, SocketKind::Tcp | SocketKind::Tcp6))
        .filter(|l| {
            l.port
                .is_some_and(|p| p != exclude_port && !targeted.contains(&p))
        })
        .filter(|l| {
            l.ip.is_some_and(|ip| ip.is_loopback() || ip.is_unspecified())
        })
        // PID 1 is the init or the container's own agent: its sockets are not an app's (with
        // systemd socket activation the app behind them would not refuse connections).
        .filter(|l| {
            // A socket whose holder could not be inspected (another user's, without root; a
            // sandbox's init) cannot be shown to be the backend's program.
            !l.processes.is_empty()
                && !l
                    .processes
                    .iter()
                    .any(|p| p.pid == 1 || SYSTEM.contains(&p.program.as_str()))
        })
        .collect()
}
