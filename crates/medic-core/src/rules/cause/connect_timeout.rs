use medic_parse::error_log::FailureClass;

use super::{backend_fix, Cause};
use crate::config::values::format_time;
use crate::facts::Connect;
use crate::rules::group::Group;
use crate::rules::{rule, Evidence, Finding};

rule! {
    /// ## What it detects
    /// `upstream timed out (110: Connection timed out) while connecting to upstream`: nginx's
    /// SYN got no answer within the effective `proxy_connect_timeout` /
    /// `fastcgi_connect_timeout` (default 60s). Live, the probe's own connect to the target
    /// timing out too confirms it is happening now.
    ///
    /// ## Why it causes 504
    /// Nothing answered the connection attempt at all (a refused one would fail at once): a
    /// firewall drops the packets, the host is down or unreachable without an ICMP error, or
    /// the backend's accept queue is full (a listener that stops calling `accept()`, with
    /// `tcp_abort_on_overflow` off, lets SYNs go unanswered). nginx answers 504 Gateway
    /// Time-out (502 if another error follows).
    ///
    /// ## Evidence
    /// The timeouts in the error log; the `*_pass` line; the effective connect timeout; live,
    /// the probe's connect to each address.
    ///
    /// ## Fix
    /// Check the path and the backend: `ip route get ADDR`, the firewall on both hosts
    /// (`iptables -S`, `nft list ruleset`, cloud security groups), and the backend's accept
    /// queue (`ss -ltn`: `Recv-Q` at `Send-Q` means a full backlog: the backend is overloaded
    /// or stuck). Lowering `proxy_connect_timeout` (at most 75s) only fails faster.
    pub struct ConnectTimeout = "connect-timeout", "connections to the upstream time out (SYN unanswered)";
    time = "10 min", risk = "medium";
}

impl Cause for ConnectTimeout {
    fn classes(&self) -> &'static [FailureClass] {
        &[FailureClass::ConnectTimeout]
    }

    fn explain(&self, g: &Group<'_>) -> Option<Finding> {
        let up = g.upstream.as_deref().unwrap_or("the upstream");
        let port = up.rsplit_once(':').map_or("PORT", |(_, p)| p);
        let timed_out_now = g.targets.iter().any(|t| {
            t.facts
                .tcp
                .iter()
                .any(|c| matches!(c.connect, Connect::TimedOut { .. }))
        });
        let title = if timed_out_now {
            format!("connections to {up} time out: no answer to nginx's SYN, and none to the probe's now")
        } else {
            format!("connections to {up} timed out: no answer to nginx's SYN")
        };
        let mut f = g.finding(
            self,
            title,
            backend_fix(self,
                format!("find what swallows the connections to {up}: a firewall drop, a host down, or a full accept queue"),
                vec![
                    format!("is the route and host there? `ip route get {}`, `ping` it", up.rsplit_once(':').map_or(up, |(h, _)| h)),
                    "look for a DROP rule on either host: `iptables -S`, `nft list ruleset`, the cloud security groups".to_string(),
                    format!("on the backend: `ss -ltn 'sport = :{port}'`: `Recv-Q` at `Send-Q` means the accept queue is full (the app is overloaded or stuck)"),
                ],
                vec![
                    format!("ss -ltn 'sport = :{port}'"),
                    "iptables -S".to_string(),
                ]
            ),
        );
        if let Some((_, p)) = g.passes.first() {
            f.evidence.push(match &p.settings.connect_timeout.src {
                Some(src) => Evidence::config(src),
                None => Evidence::other(
                    "config",
                    "default".to_string(),
                    format!(
                        "{}_connect_timeout {} (nginx's default)",
                        p.kind.prefix(),
                        format_time(p.settings.connect_timeout.value)
                    ),
                ),
            });
        }
        for t in &g.targets {
            for c in &t.facts.tcp {
                let what = match &c.connect {
                    Connect::TimedOut { after_ms } => format!("timed out after {after_ms} ms"),
                    other => other.label().to_string(),
                };
                f.evidence.push(Evidence::probe(
                    "connect",
                    format!("connect to {}: {what}", c.address),
                ));
            }
        }
        Some(f)
    }
}
