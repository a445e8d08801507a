use medic_parse::error_log::FailureClass;

use super::{backend_fix, Cause};
use crate::facts::Impact;
use crate::facts::{Facts, Origin};
use crate::rules::{rule, Evidence, Finding, RuleDoc as _, Severity};

rule! {
    /// ## What it detects
    /// The access log records 500/502/503/504 that the upstream itself sent: `$upstream_status`
    /// holds the status and `$upstream_header_time` shows a response header arrived, while the
    /// error log has no failure for that upstream. nginx only relayed the backend's answer.
    ///
    /// ## Why it causes 5xx
    /// A backend returns 5xx itself when it is overloaded (503 from a queue or a circuit
    /// breaker), when its own upstream fails (a 502/504 from a second proxy, an API gateway, a
    /// load balancer behind nginx), or on an application error (500). nginx logs nothing in
    /// `error.log`, and looking there finds nothing.
    ///
    /// ## Evidence
    /// An access-log line with the status and the upstream's status; the count per status and
    /// upstream, first and last seen, per minute; the `*_pass` line.
    ///
    /// ## Fix
    /// Look at the backend's own logs for those requests; nginx is only the messenger. A 502 or
    /// 504 from the backend means the problem is one hop further (its own upstream).
    pub struct Backend5xx = "backend-5xx", "the upstream itself answered 5xx";
    time = "10 min", risk = "low";
}

impl Cause for Backend5xx {
    fn check(&self, facts: &Facts, out: &mut Vec<Finding>) {
        for a in &facts.logs.access_5xx {
            if !matches!(a.status, 500 | 502 | 503 | 504) {
                continue;
            }
            let upstream = a.upstream.as_deref();
            let logged = facts.logs.groups.iter().any(|g| {
                g.class.is_failure() && g.upstream.is_some() && g.upstream.as_deref() == upstream
            });
            // A 500 of a PHP fatal error is the application's own answer, and `app-error`
            // already names it with PHP's message.
            let app_error = a.status == 500
                && facts.logs.groups.iter().any(|g| {
                    g.class == FailureClass::FastcgiStderr
                        && g.upstream.as_deref() == upstream
                        && g.detail.as_deref() != Some("Primary script unknown")
                });
            if app_error {
                continue;
            }
            match a.origin {
                Origin::Upstream => {}
                Origin::Unknown if !logged => {}
                _ => continue,
            }
            let up = upstream.unwrap_or("the upstream");
            let mut evidence = vec![Evidence::log(&a.example)];
            if let Some(u) = upstream {
                for (_, p) in crate::rules::support::passes_to(facts, u)
                    .into_iter()
                    .take(3)
                {
                    evidence.push(Evidence::config(&p.src));
                }
            }
            if a.origin == Origin::Unknown {
                evidence.push(Evidence::other(
                    "log",
                    "access log".to_string(),
                    format!("$upstream_status {} and no failure for {up} in the error log: the upstream answered it (the format has no $upstream_header_time to prove it)", a.status),
                ));
            }
            let what = match a.status {
                500 => "an application error",
                502 | 504 => "its own upstream failed, one hop further",
                _ => "overloaded or unavailable by its own account",
            };
            out.push(Finding {
                id: self.id(),
                class: None,
                severity: Severity::Error,
                status: Some(a.status),
                upstream: a.upstream.clone(),
                title: format!("{up} itself answered {} ({} requests)", a.status, a.count),
                count: Some(a.count),
                first_seen: Some(a.first),
                last_seen: Some(a.last),
                evidence,
                fix: backend_fix(self,
                    format!("find why {up} answers {}: {what}; nginx only relays it", a.status),
                    vec![
                        format!("read {up}'s own logs around {} - {} for the requests answered {}", a.first, a.last, a.status),
                        "a 502/504 from the backend: look at what it calls (its database, an API, a proxy behind it)".to_string(),
                        "a 503 from the backend: its own overload protection, maintenance mode, or a dependency down".to_string(),
                    ],
                    vec![]
                ),
                per_minute: a.minutes.clone(),
                backend: None,
                // The access lines themselves are the requests: each client got the upstream's
                // own status, relayed (no retry served it, or the line would not be a 5xx).
                impact: Some(Impact {
                    requests: a.count,
                    client_errors: a.count,
                    retried_ok: 0,
                    statuses: [(a.status.to_string(), a.count)].into(),
                    cut_off: 0,
                }),
                state: Default::default(),
                resolved_at: None,
                timeline: Vec::new(),
            });
        }
    }
}
