use medic_parse::error_log::FailureClass;
use medic_parse::time::LogTime;

use super::{backend_fix, Cause};
use crate::rules::group::Group;
use crate::rules::{rule, Evidence, Finding};

rule! {
    /// ## What it detects
    /// nginx's connects were refused for a while, and the backend listens now, in a process
    /// that started after the refusals began: the backend crashed or was restarted, and was
    /// not accepting connections until it was up again.
    ///
    /// ## Why it causes 502
    /// Between a backend's exit and the moment its new process listens, every connect is
    /// refused. A deploy that stops the old process before the new one listens, a crash loop
    /// restarted by systemd or pm2, or a slow start all look like this.
    ///
    /// ## Evidence
    /// The refusals in the error log (first and last seen); the listener now, its process and
    /// when that process started; the supervisor's restart count and journal when known.
    ///
    /// ## Fix
    /// If it crashed, find out why, in its supervisor's words (`journalctl -u my-backend.service
    /// -n 50`, `pm2 logs NAME`; OOM kills: `journalctl -k | grep -i oom`). For
    /// deploys, start the new process before stopping the old one (a readiness check, socket
    /// activation, or a graceful reload of the app). Nothing to fix if it is rare.
    pub struct BackendStarting = "backend-starting", "the backend was restarting: refused until it listened again";
    time = "5 min", risk = "low";
}

impl Cause for BackendStarting {
    fn classes(&self) -> &'static [FailureClass] {
        &[FailureClass::ConnectRefused, FailureClass::NoLiveUpstreams]
    }

    fn explain(&self, g: &Group<'_>) -> Option<Finding> {
        let log = g.log?;
        let t = g.target()?;
        let l = t.facts.listener.as_ref()?;
        if !t.facts.tcp.iter().any(|c| c.connect.is_ok()) && t.facts.unix.is_none() {
            return None;
        }
        // The listener must be on the address that refused: `localhost` resolves to `[::1]`
        // and `127.0.0.1`, and an app on the second one did not "start" when the first refused.
        if let Some((ip, port)) = g.ip_port() {
            let accepts_now = t
                .facts
                .tcp
                .iter()
                .any(|c| c.address == g.upstream.as_deref().unwrap_or("") && c.connect.is_ok());
            if !l.accepts(ip, port) || !accepts_now {
                return None;
            }
        }
        // The newest process holding the socket (a pre-forking server: the master is oldest).
        let started = l
            .processes
            .iter()
            .filter_map(|p| Some((LogTime::parse_iso(p.start_time.as_deref()?.as_bytes())?, p)))
            .min_by_key(|(t, _)| *t)?;
        // Log times have whole seconds, process start times have more: a start in the same
        // second as the first refusal may as well have come before it, so it proves nothing.
        if started.0 <= log.first {
            return None;
        }
        let p = started.1;
        let up = g.upstream.as_deref().unwrap_or("the upstream");
        let (mut steps, mut commands) = g.restart_advice();
        steps.retain(|s| !s.contains("restart it") && !s.starts_with("start it"));
        commands.retain(|c| !c.contains(" restart ") && !c.starts_with("systemctl reset-failed"));
        if g.backend.is_none() {
            let unit = p.unit.clone().unwrap_or_else(|| p.program.clone());
            steps = vec![format!("why did it stop? `journalctl -u {unit} -n 200`")];
            commands = vec![format!("journalctl -u {unit} -n 200 --no-pager")];
        }
        steps.push("OOM kills: `journalctl -k | grep -i oom`".to_string());
        steps.push("for deploys: start the new process before stopping the old one (readiness check, socket activation, graceful reload)".to_string());
        steps
            .push("if it happens rarely and during deploys only, nothing needs fixing".to_string());
        commands.push("journalctl -k --no-pager | grep -i oom".to_string());
        let mut f = g.finding(
            self,
            format!(
                "{up} refused connections until its backend ({}) started again at {}",
                g.backend
                    .as_ref()
                    .map_or(p.program.as_str(), |b| b.name.as_str()),
                p.start_time.as_deref().unwrap_or("?")
            ),
            backend_fix(
                self,
                "find out why the backend restarted; make restarts seamless",
                steps,
                commands,
            ),
        );
        f.evidence.push(Evidence::probe(
            "listeners",
            format!(
                "listening now on {}: {} (pid {}) started {}, after the first refusal at {}",
                l.display(),
                p.program,
                p.pid,
                p.start_time.as_deref().unwrap_or("?"),
                log.first
            ),
        ));
        Some(f)
    }
}
