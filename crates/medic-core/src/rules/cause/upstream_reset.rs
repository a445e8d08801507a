use medic_parse::error_log::FailureClass;

use super::{backend_fix, Cause};
use crate::rules::group::Group;
use crate::rules::{rule, Finding};

rule! {
    /// ## What it detects
    /// `recv() failed (104: Connection reset by peer) while reading response header from
    /// upstream` (also `readv()`, `send()`, `writev()`, and `(32: Broken pipe)` while sending):
    /// the upstream reset the connection. This is what the log alone proves; live, the finding
    /// is `backend-crash` when the backend's process died then, or `scheme-mismatch` when the
    /// port speaks TLS and nginx plain HTTP.
    ///
    /// ## Why it causes 502
    /// A reset (RST) means the peer's socket was closed abruptly: the process handling the
    /// request died or was killed, the app closed the connection with unread data (a body
    /// it rejected, a request it could not parse), or nginx reused a keepalive connection the
    /// upstream had already closed. nginx answers 502 Bad Gateway (or retries with
    /// `proxy_next_upstream` for idempotent requests).
    ///
    /// ## Evidence
    /// The resets in the error log (count, first and last, per minute) and the `*_pass` line.
    ///
    /// ## Fix
    /// Read the backend's logs at the times of the resets (crashes, restarts, request size
    /// limits); check the kernel log for OOM kills (`journalctl -k | grep -i oom`); with
    /// upstream `keepalive`, make the upstream's idle timeout longer than nginx's
    /// (`keepalive_timeout` in the `upstream {}` block, 60s by default).
    pub struct UpstreamReset = "upstream-reset", "the upstream reset the connection mid-request";
    time = "10-30 min", risk = "low";
}

impl Cause for UpstreamReset {
    fn classes(&self) -> &'static [FailureClass] {
        &[FailureClass::UpstreamReset]
    }

    fn explain(&self, g: &Group<'_>) -> Option<Finding> {
        let up = g.upstream.as_deref().unwrap_or("the upstream");
        Some(g.finding(
            self,
            format!("{up} reset connections mid-request"),
            backend_fix(self,
                format!("find why {up} drops connections: crashes, restarts, request limits, keepalive"),
                vec![
                    "read the backend's log at the times of the resets: a crash, a restart, a request it rejected".to_string(),
                    "look for OOM kills then: `journalctl -k | grep -i -e oom -e 'killed process'`".to_string(),
                    "with `keepalive` in the upstream block: the backend's idle timeout must be longer than nginx's `keepalive_timeout` (60s)".to_string(),
                ],
                vec!["journalctl -k --no-pager | grep -i oom".to_string()]
            ),
        ))
    }
}
