use medic_parse::error_log::FailureClass;

use super::{backend_fix, Cause};
use crate::rules::group::Group;
use crate::rules::{rule, Evidence, Finding};

rule! {
    /// ## What it detects
    /// `no live upstreams while connecting to upstream`: every server of an `upstream {}` group
    /// was marked unavailable (`max_fails` failures within `fail_timeout`, default 1 in 10 s),
    /// so nginx did not even try one. This is what the log alone proves; live, when the
    /// group's servers refuse now, the finding is `backend-down`.
    ///
    /// ## Why it causes 502
    /// After a server fails (refused, timed out, 502 with `proxy_next_upstream`), nginx skips
    /// it for `fail_timeout`. When all are skipped, requests get 502 without any connect: the
    /// real failures are the earlier entries for the group's servers.
    ///
    /// ## Evidence
    /// The `no live upstreams` entries, the `upstream {}` block and its `server` lines.
    ///
    /// ## Fix
    /// Fix the servers' own failures (see the other findings for the group's addresses); if
    /// the group has one server, `max_fails=0` stops nginx from marking it down for a single
    /// failure.
    pub struct NoLiveUpstreams = "no-live-upstreams", "every server of an upstream group was marked down";
    time = "1-10 min", risk = "low";
}

impl Cause for NoLiveUpstreams {
    fn classes(&self) -> &'static [FailureClass] {
        &[FailureClass::NoLiveUpstreams]
    }

    fn explain(&self, g: &Group<'_>) -> Option<Finding> {
        let up = g.upstream.as_deref().unwrap_or("the group");
        let mut f = g.finding(
            self,
            format!("every server of upstream {up} was marked down"),
            backend_fix(self,
                format!("fix the failures of {up}'s servers; nginx retries them after fail_timeout"),
                vec![
                    format!("look at the errors logged for {up}'s servers before the first `no live upstreams`"),
                    "with a single server, `server ADDR max_fails=0;` stops one failure from taking it out for fail_timeout".to_string(),
                ],
                vec!["nginx -t".to_string(), "systemctl reload nginx".to_string()]
            ),
        );
        for (m, p) in &g.passes {
            if let Some(grp) = m.group(p) {
                for s in &grp.servers {
                    f.evidence.push(Evidence::config(&s.src));
                }
                break;
            }
        }
        Some(f)
    }
}
