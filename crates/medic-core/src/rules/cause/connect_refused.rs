use medic_parse::error_log::FailureClass;

use super::{backend_fix, Cause};
use crate::rules::group::Group;
use crate::rules::{rule, Evidence, Finding};

rule! {
    /// ## What it detects
    /// `connect() failed (111: Connection refused) while connecting to upstream`: the upstream
    /// refused nginx's connections. This is what the error log alone proves; with live probes
    /// (`nginx-medic diagnose` without `--no-probe`) the finding becomes `backend-down`,
    /// `wrong-port`, `bind-mismatch`, `backend-starting` or `socket-stale` when the host shows
    /// which.
    ///
    /// ## Why it causes 502
    /// Nothing accepted connections at the address nginx uses at that time: the backend was
    /// stopped or restarting, listens on another port or address, or its listen queue was
    /// closed. nginx answers 502 Bad Gateway.
    ///
    /// ## Evidence
    /// The refusals in the error log (first and last, count, per minute) and the `*_pass` line.
    ///
    /// ## Fix
    /// Check what listens now (`ss -tlnp`), compare it with the `proxy_pass` address, and start
    /// the backend or correct the address. Run `nginx-medic diagnose` live to tell which.
    pub struct ConnectRefused = "connect-refused", "the upstream refused nginx's connections";
    time = "1-10 min", risk = "low";
}

impl Cause for ConnectRefused {
    fn classes(&self) -> &'static [FailureClass] {
        &[FailureClass::ConnectRefused]
    }

    fn explain(&self, g: &Group<'_>) -> Option<Finding> {
        let up = g.upstream.as_deref().unwrap_or("the upstream");
        let mut f = g.finding(
            self,
            format!("connections to {up} were refused"),
            backend_fix(self,
                format!("make something listen on {up} again, or point nginx where the backend listens"),
                vec![
                    "see what listens now: `ss -tlnp` (as root, to see the programs)".to_string(),
                    format!("if nothing listens on {up}: start the backend and read its logs for why it stopped"),
                    "if it listens elsewhere: fix the `proxy_pass` address (or the app's), then `nginx -t && systemctl reload nginx`".to_string(),
                ],
                vec!["ss -tlnp".to_string(), "nginx -t".to_string()]
            ),
        );
        if let Some(t) = g.target() {
            // Live, but none of the refinements held: say what the probe saw.
            let seen: Vec<String> = t
                .facts
                .tcp
                .iter()
                .map(|c| format!("{} {}", c.address, c.connect.label()))
                .collect();
            if !seen.is_empty() {
                f.evidence.push(Evidence::probe(
                    "connect",
                    format!("now: {}", seen.join(", ")),
                ));
            }
        }
        Some(f)
    }
}
