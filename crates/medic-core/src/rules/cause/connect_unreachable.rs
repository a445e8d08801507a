use medic_parse::error_log::FailureClass;

use super::{backend_fix, Cause};
use crate::facts::Connect;
use crate::rules::group::Group;
use crate::rules::{rule, Evidence, Finding};

rule! {
    /// ## What it detects
    /// `connect() failed (113: No route to host) while connecting to upstream`, or `(101:
    /// Network is unreachable)`, `(112: Host is down)`, `(100: Network is down)`: the kernel
    /// could not send nginx's connection towards the upstream at all.
    ///
    /// ## Why it causes 502
    /// `No route to host` comes from an ICMP "host unreachable" (the host is down on the local
    /// network, ARP gets no answer, or a firewall rejects with `icmp-host-prohibited`);
    /// `Network is unreachable` means there is no route for that address family (a name that
    /// resolves to an IPv6 address on a host without IPv6, `localhost` to `::1` with IPv6
    /// off). The connect fails at once and nginx answers 502 Bad Gateway (or tries the next
    /// address).
    ///
    /// ## Evidence
    /// The failures in the error log and the `*_pass` line; live, the probe's connect to each
    /// address.
    ///
    /// ## Fix
    /// Check the route and the host: `ip route get ADDR`, `ping ADDR`, the firewall on the
    /// backend (a REJECT rule); for an IPv6 address without IPv6 connectivity, use the IPv4
    /// address, or `resolver ... ipv6=off;` for names resolved at run time.
    pub struct ConnectUnreachable = "connect-unreachable", "no route to the upstream (host or network unreachable)";
    time = "5-10 min", risk = "medium";
}

impl Cause for ConnectUnreachable {
    fn classes(&self) -> &'static [FailureClass] {
        &[FailureClass::ConnectUnreachable]
    }

    fn explain(&self, g: &Group<'_>) -> Option<Finding> {
        let up = g.upstream.as_deref().unwrap_or("the upstream");
        let host = up
            .rsplit_once(':')
            .map_or(up, |(h, _)| h)
            .trim_start_matches('[')
            .trim_end_matches(']');
        let v6 = host.contains(':');
        let mut steps = vec![
            format!("is there a route? `ip route get {host}`; is the host up? `ping {host}`"),
            "on the backend host, look for a REJECT rule: `iptables -S`, `nft list ruleset`"
                .to_string(),
        ];
        if v6 {
            steps.push("an IPv6 address on a host without IPv6 connectivity: use the IPv4 address in the `*_pass` (or `resolver ... ipv6=off;`), then `nginx -t && systemctl reload nginx`".to_string());
        }
        let mut f = g.finding(
            self,
            format!("no route to {up}: the host or its network is unreachable"),
            backend_fix(
                self,
                format!("restore the path to {up}, or point nginx at an address it can reach"),
                steps,
                vec![format!("ip route get {host}"), format!("ping -c 3 {host}")],
            ),
        );
        for t in &g.targets {
            for c in &t.facts.tcp {
                let what = match &c.connect {
                    Connect::Error { error } => error.clone(),
                    other => other.label().to_string(),
                };
                f.evidence.push(Evidence::probe(
                    "connect",
                    format!("connect to {} now: {what}", c.address),
                ));
            }
        }
        Some(f)
    }
}
