use medic_parse::error_log::FailureClass;

use super::{backend_fix, Cause};
use crate::facts::Connect;
use crate::rules::group::Group;
use crate::rules::{rule, Evidence, Finding, Remedy, Risk};

rule! {
    /// ## What it detects
    /// `connect() to unix:/path failed (111: Connection refused)`: the unix socket file exists
    /// (otherwise nginx would log `(2: No such file or directory)`), but no process listens on
    /// it. The backend died and left its socket file behind. The log text alone proves it; the
    /// probe adds the file's `ls -l` and a refused connect now.
    ///
    /// ## Why it causes 502
    /// A unix socket file outlives the process that bound it when that process is killed (a
    /// crash, `kill -9`, the OOM killer). Connecting to it is refused; nginx answers 502.
    ///
    /// ## Evidence
    /// The refusals in the error log; the `fastcgi_pass`/`proxy_pass` line; the socket file
    /// (`srw-rw---- www-data:www-data`) and the refused connect; no listener bound at the path.
    ///
    /// ## Fix
    /// Restart the backend (PHP-FPM removes and re-creates its socket): `systemctl restart
    /// php8.2-fpm`; then find out why it died (`journalctl -u php8.2-fpm`, `journalctl -k | grep
    /// -i oom`).
    ///
    /// `nginx-medic fix` restarts the service when its supervisor is known with confidence
    /// `certain` or `high` (risk low), then waits for the socket to accept.
    pub struct SocketStale = "socket-stale", "a stale unix socket: the file exists, nothing listens";
    time = "1-3 min", risk = "low";
}

impl Cause for SocketStale {
    fn classes(&self) -> &'static [FailureClass] {
        &[FailureClass::ConnectRefused]
    }

    fn explain(&self, g: &Group<'_>) -> Option<Finding> {
        let path = g.unix_path()?;
        let unix = g.target().and_then(|t| t.facts.unix.as_ref());
        // Live and the socket is gone or answers now: not stale (any more).
        if g.live() && unix.is_some_and(|u| u.connect != Connect::Refused) {
            return None;
        }
        let mut f = g.finding(
            self,
            format!("{path} is a stale socket: nothing listens on it"),
            backend_fix(self,
                "restart the backend that owns the socket, then find out why it died",
                vec![
                    "restart it (PHP-FPM re-creates its socket): `systemctl restart php8.2-fpm` (or the app's unit)".to_string(),
                    "find out why it died: `journalctl -u UNIT -n 100`, `journalctl -k | grep -i oom`".to_string(),
                ],
                vec![
                    "systemctl restart php8.2-fpm".to_string(),
                    "journalctl -k --no-pager | grep -i oom".to_string(),
                ]
            ),
        );
        if let Some(u) = unix {
            if let Some(ls) = &u.ls {
                f.evidence.push(Evidence::probe("stat", ls.clone()));
            }
            f.evidence.push(Evidence::probe(
                "connect",
                format!(
                    "connect to unix:{path}: {} (no process has it open for listening)",
                    u.connect.label()
                ),
            ));
        }
        // A supervisor known for sure can bring it back; a guessed one is never restarted.
        if let Some(c) = f.backend.as_deref().and_then(crate::rules::remedy::restart) {
            f.fix = f.fix.clone().with_remedy(Remedy::new(Risk::Low, vec![c]));
        }
        Some(f)
    }
}
