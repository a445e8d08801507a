use medic_parse::error_log::FailureClass;

use super::support::timeouts::{requests_of, timeout_evidence, timeout_of};
use super::{nginx_fix, Cause};
use crate::rules::group::Group;
use crate::rules::{rule, Evidence, Finding};

rule! {
    /// ## What it detects
    /// `upstream timed out (110: Connection timed out) while reading response header from
    /// upstream` (or `while reading upstream`, mid-body): the upstream accepted the request but
    /// sent nothing for longer than the effective `proxy_read_timeout` /
    /// `fastcgi_read_timeout` (default 60s). This is what the log alone proves; live, the
    /// finding is `slow-backend` (the backend is up but slow) or `pool-saturated` (every
    /// PHP-FPM child busy) when the probes show which.
    ///
    /// ## Why it causes 504
    /// nginx stops waiting after the read timeout, closes the connection and answers 504
    /// Gateway Time-out. The backend is slow (a slow query, an external call), overloaded (all
    /// workers busy, requests queued), or hung.
    ///
    /// ## Evidence
    /// The timeouts in the error log (count, first and last, the requests they name); the
    /// `*_pass` line; the effective read timeout and where it is set.
    ///
    /// ## Fix
    /// Find out whether the backend is slow for everything (overloaded, hung: check its workers
    /// and its logs) or for some requests (optimise them). Raise the read timeout only for the
    /// `location` of legitimately long requests, then `nginx -t` and `systemctl reload nginx`.
    /// Run `nginx-medic diagnose` live to tell which.
    pub struct ReadTimeout = "read-timeout", "the upstream did not answer within the read timeout";
    time = "5-30 min", risk = "medium: masks slowness";
}

impl Cause for ReadTimeout {
    fn classes(&self) -> &'static [FailureClass] {
        &[FailureClass::ReadTimeout]
    }

    fn explain(&self, g: &Group<'_>) -> Option<Finding> {
        let up = g.upstream.as_deref().unwrap_or("the upstream");
        let pass = g.passes.first().map(|(_, p)| *p);
        let (directive, value) = timeout_of(pass, false);
        let requests = requests_of(g);
        let mut f = g.finding(
            self,
            format!("{up} did not answer within {directive} {value}"),
            nginx_fix(self,
                format!("find why {up} is slow (overloaded, hung, or slow requests); raise {directive} only for legitimately long requests"),
                vec![
                    if requests.is_empty() {
                        "see which requests time out: `$upstream_response_time` in the access log, the backend's own logs".to_string()
                    } else {
                        format!("the requests that timed out include {}: look them up in the backend's logs", requests.join(", "))
                    },
                    "check the backend's workers: all busy (PHP-FPM `server reached pm.max_children`, a full thread pool) means overload, not one slow request".to_string(),
                    format!("only for legitimately long requests: `{directive} 120s;` in their `location`"),
                ]
            ),
        );
        f.evidence.push(timeout_evidence(pass, false));
        if let Some(t) = g.target() {
            // Live, but neither refinement held: say what the probe saw.
            let seen: Vec<String> = t
                .facts
                .tcp
                .iter()
                .map(|c| format!("connect to {}: {}", c.address, c.connect.label()))
                .chain(
                    t.facts
                        .unix
                        .iter()
                        .map(|u| format!("connect to unix:{}: {}", u.path, u.connect.label())),
                )
                .collect();
            if !seen.is_empty() {
                f.evidence.push(Evidence::probe("connect", seen.join(", ")));
            }
        }
        Some(f)
    }
}
