use medic_parse::error_log::FailureClass;

use super::{backend_fix, service_name, Cause};
use crate::diagnose::{candidate_listeners, Group};
use crate::facts::Connect;
use crate::rules::{rule, Evidence, Finding};

rule! {
    /// ## What it detects
    /// nginx's connects are refused (`connect() failed (111: Connection refused) while
    /// connecting to upstream`, or `no live upstreams` once every server of a group failed), and
    /// the probe confirms it now: nothing listens on the target, and no listener of the same
    /// service waits on another port or address.
    ///
    /// ## Why it causes 502
    /// The backend is not running. The kernel answers nginx's SYN with a RST, nginx logs the
    /// refusal and answers 502 Bad Gateway at once (after trying the other servers of the
    /// group, if any; when all are marked failed, `no live upstreams`).
    ///
    /// ## Evidence
    /// The refusals in the error log (first and last, count, per minute); the `*_pass` line;
    /// the probe's refused connect to every address; the listening sockets of the host (none
    /// on the port); the supervisor's state of the backend's unit when known.
    ///
    /// ## Fix
    /// Start the backend, then read its logs for why it stopped:
    /// `systemctl restart APP` and `journalctl -u APP -n 100`.
    /// Time: 1-3 min. Risk: low.
    pub struct BackendDown = "backend-down", "the backend is down: nothing listens on the upstream address";
}

impl Cause for BackendDown {
    fn classes(&self) -> &'static [FailureClass] {
        &[FailureClass::ConnectRefused, FailureClass::NoLiveUpstreams]
    }

    fn explain(&self, g: &Group<'_>) -> Option<Finding> {
        if g.targets.is_empty() || g.unix_path().is_some() {
            return None;
        }
        // Every address of every server refuses now: nothing listens.
        let all_refused = g.targets.iter().all(|t| {
            t.facts.listener.is_none()
                && (t
                    .facts
                    .unix
                    .as_ref()
                    .is_some_and(|u| u.connect == Connect::Missing)
                    || (!t.facts.tcp.is_empty()
                        && t.facts.tcp.iter().all(|c| c.connect == Connect::Refused)))
        });
        if !all_refused {
            return None;
        }
        let up = g.upstream.as_deref().unwrap_or("the upstream");
        let service = service_name(g).unwrap_or_else(|| "APP".to_string());
        let mut f = g.finding(
            self,
            format!("nothing listens on {up}: the backend is down"),
            backend_fix(
                format!("start the backend behind {up} and find out why it stopped"),
                vec![
                    format!("start it: `systemctl restart {service}` (or however it is run: pm2, docker, a shell)"),
                    format!("read why it stopped: `journalctl -u {service} -n 100`; an OOM kill shows in `journalctl -k | grep -i oom`"),
                    format!("check it listens: `ss -tlnp | grep {}`", port_of(up)),
                ],
                vec![
                    format!("systemctl restart {service}"),
                    format!("journalctl -u {service} -n 100 --no-pager"),
                    "ss -tlnp".to_string(),
                ],
                "1-3 min",
                "low",
            ),
        );
        for t in &g.targets {
            super::connect_evidence(t, &mut f);
        }
        f.evidence.push(Evidence::probe(
            "listeners",
            format!("no listening socket on {up} (nor on its port at another address)"),
        ));
        // Several other listeners could be the backend on a wrong port: name them, so the
        // reader can rule that out (`wrong-port` needs exactly one).
        if let Some((_, port)) = g.ip_port() {
            let others: Vec<String> = candidate_listeners(g.facts, port)
                .iter()
                .take(5)
                .map(|l| {
                    let who = l
                        .processes
                        .first()
                        .map(|p| format!(" ({} pid {})", p.program, p.pid))
                        .unwrap_or_default();
                    format!("{}{who}", l.display())
                })
                .collect();
            if !others.is_empty() {
                f.evidence.push(Evidence::probe(
                    "listeners",
                    format!(
                        "other application listeners, none of them clearly this backend: {}",
                        others.join(", ")
                    ),
                ));
            }
        }
        supervisor_evidence(g, &mut f);
        Some(f)
    }
}

/// The port of `HOST:PORT`, for `ss | grep`.
pub(super) fn port_of(up: &str) -> String {
    up.rsplit_once(':')
        .map_or(up.to_string(), |(_, p)| format!(":{p}"))
}

/// What the supervisors say about units whose name appears in the config's passes or that
/// failed: inactive or failed units, restarts.
pub(super) fn supervisor_evidence(g: &Group<'_>, f: &mut Finding) {
    let Some(p) = g.probes() else { return };
    for u in &p.supervisors.systemd {
        let state = u.active_state().unwrap_or("?");
        if state != "active" || u.n_restarts().unwrap_or(0) > 0 {
            f.evidence.push(Evidence::other(
                "supervisor",
                format!("systemd {}", u.unit),
                format!(
                    "ActiveState={state} SubState={} NRestarts={}",
                    u.properties.get("SubState").map_or("?", String::as_str),
                    u.n_restarts().unwrap_or(0)
                ),
            ));
        }
    }
}
