use super::{backend_fix, Cause};
use crate::facts::Facts;
use crate::rules::{rule, Evidence, Finding, RuleDoc as _, Severity};

rule! {
    /// ## What it detects
    /// The access log records status 499 for requests to an upstream: the client closed the
    /// connection before nginx had an answer for it (nginx's own code, `ngx_http_request.h`:
    /// `NGX_HTTP_CLIENT_CLOSED_REQUEST`), usually after a long `$upstream_response_time`.
    ///
    /// ## Why it causes 499
    /// Not a 5xx, but its twin: clients (a browser, a mobile app, a load balancer with a 30 s
    /// or 60 s idle timeout, an API client's own timeout) gave up waiting for a slow upstream.
    /// With a load balancer in front, its users saw a 502/504 from the load balancer that
    /// nginx never logged.
    ///
    /// ## Evidence
    /// The 499 count per upstream, first and last seen; the mean and longest upstream wait of
    /// those requests (when the log format has `$upstream_response_time`); an example line.
    ///
    /// ## Fix
    /// Speed up the upstream for those requests; raise the client-side timeouts (the load
    /// balancer's idle timeout, the client library's) above what the requests legitimately
    /// take; for work that must finish anyway, `proxy_ignore_client_abort on;`.
    pub struct ClientClosed = "client-closed", "clients gave up before the upstream answered (499)";
    time = "10 min", risk = "low";
}

impl Cause for ClientClosed {
    fn check(&self, facts: &Facts, out: &mut Vec<Finding>) {
        for c in &facts.logs.client_closed {
            if c.count == 0 {
                continue;
            }
            let up = c.upstream.as_deref().unwrap_or("the upstream");
            let wait = match (c.mean_wait, c.max_wait) {
                (Some(mean), Some(max)) => {
                    format!(", upstream wait mean {mean:.1} s, max {max:.1} s")
                }
                (Some(mean), None) => format!(", upstream wait mean {mean:.1} s"),
                (None, Some(max)) => format!(", upstream wait max {max:.1} s"),
                (None, None) => String::new(),
            };
            let mut evidence = Vec::new();
            if let Some(e) = &c.example {
                evidence.push(Evidence::log(e));
            }
            evidence.push(Evidence::other(
                "log",
                "access log".to_string(),
                format!("{} requests to {up} with status 499{wait}", c.count),
            ));
            if let Some(u) = c.upstream.as_deref() {
                for (_, p) in crate::rules::support::passes_to(facts, u)
                    .into_iter()
                    .take(3)
                {
                    evidence.push(Evidence::config(&p.src));
                }
            }
            out.push(Finding {
                id: self.id(),
                class: None,
                severity: Severity::Warning,
                status: Some(499),
                upstream: c.upstream.clone(),
                title: format!(
                    "clients gave up on {up} before it answered ({} requests{wait})",
                    c.count
                ),
                count: Some(c.count),
                first_seen: c.first,
                last_seen: c.last,
                evidence,
                fix: backend_fix(self,
                    format!("make {up} answer before the clients give up, or let them wait longer"),
                    vec![
                        format!("find the slow requests to {up}: `$upstream_response_time` in the access log"),
                        "speed them up in the backend (preferred)".to_string(),
                        "raise the client-side timeouts above what the requests legitimately take: the load balancer's idle timeout, the client library's".to_string(),
                        "for work that must complete even when the client leaves: `proxy_ignore_client_abort on;` in that location".to_string(),
                    ],
                    vec![]
                ),
                per_minute: Vec::new(),
                backend: None,
                impact: None,
                state: Default::default(),
                resolved_at: None,
                timeline: Vec::new(),
            });
        }
    }
}
