use medic_parse::error_log::FailureClass;

use super::{backend_fix, Cause};
use crate::rules::group::Group;
use crate::rules::{rule, Evidence, Finding};

rule! {
    /// ## What it detects
    /// `upstream prematurely closed connection while reading response header from upstream`
    /// (or `upstream prematurely closed FastCGI stdout`): the upstream closed the connection
    /// cleanly (FIN) before sending a complete response, and nothing shows its process died
    /// (that would be `backend-crash`).
    ///
    /// ## Why it causes 502
    /// nginx got end-of-stream where it expected a response header (or the rest of the body):
    /// the app closed the connection without answering (an unhandled exception in a framework
    /// that closes the socket, a worker recycled mid-request, a request too large for it), or a
    /// keepalive mismatch: nginx reused an idle connection the upstream had just closed
    /// (`keepalive` without `proxy_http_version 1.1` and `proxy_set_header Connection ""`, or
    /// an upstream idle timeout shorter than nginx's). nginx answers 502 Bad Gateway.
    ///
    /// ## Evidence
    /// The failures in the error log (count, first and last, per minute); the `*_pass` line;
    /// the `upstream {}` block's `keepalive` and the pass's `proxy_http_version` / `Connection`
    /// header when keepalive is used.
    ///
    /// ## Fix
    /// Read the backend's logs at those times for errors and worker restarts. With upstream
    /// `keepalive`: `proxy_http_version 1.1;` and `proxy_set_header Connection "";`, and make
    /// the upstream's idle timeout longer than nginx's (`keepalive_timeout 60s` in the
    /// `upstream {}` block); then `nginx -t` and `systemctl reload nginx`.
    pub struct PrematureClose = "premature-close", "the upstream closed the connection before a complete response";
    time = "10 min", risk = "low";
}

impl Cause for PrematureClose {
    fn classes(&self) -> &'static [FailureClass] {
        &[FailureClass::PrematureClose]
    }

    fn explain(&self, g: &Group<'_>) -> Option<Finding> {
        let up = g.upstream.as_deref().unwrap_or("the upstream");
        let mut f = g.finding(
            self,
            format!("{up} closed connections before sending a complete response"),
            backend_fix(self,
                format!("find why {up} closes without answering: its errors and restarts, or a keepalive mismatch"),
                vec![
                    "read the backend's log at the times of the failures: exceptions, workers recycled or killed mid-request".to_string(),
                    "with `keepalive` in the upstream block: `proxy_http_version 1.1;` and `proxy_set_header Connection \"\";` in the location".to_string(),
                    "and the backend's idle (keep-alive) timeout must be longer than nginx's `keepalive_timeout` in the upstream block (60s)".to_string(),
                    "after a config change: `nginx -t && systemctl reload nginx`".to_string(),
                ],
                vec!["nginx -t".to_string(), "systemctl reload nginx".to_string()]
            ),
        );
        // Keepalive to the upstream: the settings that decide whether connections are reused.
        for (m, p) in &g.passes {
            let Some(k) = m.group(p).and_then(|u| u.keepalive.as_ref()) else {
                continue;
            };
            if let Some(src) = &k.src {
                f.evidence.push(Evidence::config(src));
            }
            if let Some(v) = &p.settings.http_version {
                f.evidence.push(match &v.src {
                    Some(src) => Evidence::config(src),
                    None => Evidence::other(
                        "config",
                        "default".to_string(),
                        format!(
                            "proxy_http_version {} (nginx's default: no keepalive to the upstream)",
                            v.value
                        ),
                    ),
                });
            }
            break;
        }
        Some(f)
    }
}
