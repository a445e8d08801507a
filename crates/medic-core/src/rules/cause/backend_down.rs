use medic_parse::error_log::FailureClass;

use super::{backend_fix, Cause};
use crate::facts::Connect;
use crate::rules::group::Group;
use crate::rules::support::candidate_listeners;
use crate::rules::{rule, Evidence, Finding, Remedy, Risk};

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
    /// on the port); the backend that serves it (`backend`: the unit, pm2 app or pool whose
    /// configuration or journal names the address, and how sure that match is), its state and
    /// restarts, its journal lines nearest the failure, and the OOM kills that match it.
    ///
    /// ## Fix
    /// Read why it stopped, then start it, in the words of its supervisor: `systemctl status
    /// my-backend.service`, `journalctl -u my-backend.service -n 50`, `systemctl reset-failed`
    /// for a unit that hit its start limit, `systemctl restart my-backend.service`; `pm2 logs
    /// NAME` and `pm2 restart NAME` (with the daemon's `PM2_HOME` and user) for a pm2 app.
    /// `APP` stands for the backend only when no supervisor names it, and the fix then says
    /// what was looked at.
    ///
    /// `nginx-medic fix` restarts the backend when its supervisor is known with confidence
    /// `certain` or `high` (risk low): `systemctl restart UNIT` or `pm2 restart APP` as the
    /// daemon's user, then waits for it to accept connections. A unit guessed from timing alone is
    /// never restarted.
    pub struct BackendDown = "backend-down", "the backend is down: nothing listens on the upstream address";
    time = "1-3 min", risk = "low";
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
        let (mut steps, mut commands) = g.restart_advice();
        steps.push(format!(
            "check it listens: `ss -tlnp | grep {}`",
            port_of(up)
        ));
        commands.push("ss -tlnp".to_string());
        let who = g
            .backend
            .as_ref()
            .map(|b| format!(" ({} {})", b.supervisor, b.name))
            .unwrap_or_default();
        let mut f = g.finding(
            self,
            format!("nothing listens on {up}: the backend{who} is down"),
            backend_fix(
                self,
                format!("start the backend behind {up} and find out why it stopped"),
                steps,
                commands,
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
        // A supervisor known for sure can bring it back; a guessed one is never restarted.
        if let Some(c) = f.backend.as_deref().and_then(crate::rules::remedy::restart) {
            f.fix = f.fix.clone().with_remedy(Remedy::new(Risk::Low, vec![c]));
        }
        Some(f)
    }
}

/// The port of `HOST:PORT`, for `ss | grep`.
pub(super) fn port_of(up: &str) -> String {
    up.rsplit_once(':')
        .map_or(up.to_string(), |(_, p)| format!(":{p}"))
}
