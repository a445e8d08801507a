use medic_parse::error_log::FailureClass;

use super::support::timeouts::{requests_of, timeout_evidence, timeout_of};
use super::{nginx_fix, Cause};
use crate::rules::group::Group;
use crate::rules::{rule, Change, Evidence, Finding, Remedy, Risk};

rule! {
    /// ## What it detects
    /// `upstream timed out (110: Connection timed out) while reading response header from
    /// upstream` (or `while sending request to upstream`), and the backend is up: it accepts
    /// connections now, and either the probe's own request also waits longer than the
    /// effective `proxy_read_timeout`/`fastcgi_read_timeout`, or the backend answers the probe
    /// quickly (then specific requests are slow: the ones the log names). A saturated PHP-FPM
    /// pool is `pool-saturated` instead. Live diagnosis only; `--no-probe` reports
    /// `read-timeout`/`send-timeout`.
    ///
    /// ## Why it causes 504
    /// nginx waits at most `*_read_timeout` (default 60s) between two reads of the upstream's
    /// answer, and at most `*_send_timeout` between two writes of the request. A backend that
    /// takes longer (a slow query, an external API, a large report, a lock) is cut off and the
    /// client gets 504 Gateway Time-out, although the backend may finish the work later.
    ///
    /// ## Evidence
    /// The timeouts in the error log (and the requests they name); the `*_pass` line; the
    /// effective timeout and the directive that sets it (or nginx's default); the probe's time
    /// to first byte.
    ///
    /// ## Fix
    /// Make the slow requests fast (preferred): find them in the backend's logs (PHP-FPM:
    /// `request_slowlog_timeout = 5s` and `slowlog`), fix the query or move the work to a
    /// queue. If they are legitimately long, raise the timeout for their `location` only
    /// (`proxy_read_timeout 120s;` there, not in `http {}`), then `nginx -t` and `systemctl
    /// reload nginx`.
    ///
    /// `nginx-medic fix --risk medium` raises the timeout for the `*_pass`'s block only: twice the
    /// current one, or half again the slowest answer the probe timed (at most 10 min).
    pub struct SlowBackend = "slow-backend", "the backend answers slower than nginx's read timeout";
    time = "5 min (timeout)", risk = "medium: masks slowness";
}

impl Cause for SlowBackend {
    fn classes(&self) -> &'static [FailureClass] {
        &[FailureClass::ReadTimeout, FailureClass::SendTimeout]
    }

    fn explain(&self, g: &Group<'_>) -> Option<Finding> {
        if !g.live() {
            return None;
        }
        let t = g.targets.iter().find(|t| {
            t.facts.tcp.iter().any(|c| c.connect.is_ok())
                || t.facts.unix.as_ref().is_some_and(|u| u.connect.is_ok())
        })?;
        let http = t.facts.http.as_ref();
        let fcgi = t.facts.fastcgi.as_ref();
        let exceeds = http.is_some_and(|h| h.hangs()) || fcgi.is_some_and(|f| f.hangs());
        let answers = http.is_some_and(|h| h.status.is_some()) || fcgi.is_some_and(|f| f.answered);
        if !exceeds && !answers {
            return None;
        }
        let up = g.upstream.as_deref().unwrap_or("the upstream");
        let send = g.class == FailureClass::SendTimeout;
        let pass = g.passes.first().map(|(_, p)| *p);
        let (directive, value) = timeout_of(pass, send);
        let requests = requests_of(g);
        let title = if exceeds {
            format!("{up} takes longer than {directive} {value} to answer")
        } else if requests.is_empty() {
            format!("{up} answers, but some requests take longer than {directive} {value}")
        } else {
            format!(
                "{up} answers, but some requests take longer than {directive} {value}: {}",
                requests.join(", ")
            )
        };
        let mut steps = vec![
            if requests.is_empty() {
                "find the slow requests: the backend's own logs, `$upstream_response_time` in the access log".to_string()
            } else {
                format!(
                    "the slow requests the log names: {}; find out why in the backend's logs",
                    requests.join(", ")
                )
            },
            "make them fast (preferred): fix the slow query or external call, or move long work to a background job".to_string(),
            format!(
                "only if they are legitimately long: raise `{directive}` for their `location` only (e.g. `{directive} 120s;` next to the `*_pass` line above), not for the whole server"
            ),
        ];
        if fcgi.is_some() {
            steps.insert(
                1,
                "PHP-FPM names slow scripts with a stack trace: `request_slowlog_timeout = 5s` and `slowlog = /var/log/php-fpm/slow.log` in the pool file".to_string(),
            );
        }
        let mut f = g.finding(
            self,
            title,
            nginx_fix(self,
                format!("make the backend answer within {directive} {value} (preferred), or raise the timeout for that location only"),
                steps
            ),
        );
        // The longer timeout goes to the location of the `*_pass` only: twice the current
        // one, or half again the slowest answer the probe timed, in whole seconds (at most
        // 10 min). Medium risk: it hides slowness instead of curing it.
        if let Some(p) = pass {
            let now = if send {
                p.settings.send_timeout.value
            } else {
                p.settings.read_timeout.value
            };
            let seen_ms = http
                .and_then(|h| h.ttfb_ms)
                .or(fcgi.and_then(|c| c.ttfb_ms))
                .unwrap_or(0.0);
            let secs = (now.as_secs() * 2)
                .max((seen_ms * 1.5 / 1000.0).ceil() as u64)
                .clamp(1, 600);
            let changes: Vec<Change> = g
                .passes
                .iter()
                .map(|(_, p)| Change::Set {
                    near: p.src.clone(),
                    name: directive.clone(),
                    args: vec![format!("{secs}s")],
                })
                .collect();
            f.fix = f
                .fix
                .clone()
                .with_remedy(Remedy::new(Risk::Medium, changes));
        }
        f.evidence.push(timeout_evidence(pass, send));
        if let Some(h) = http {
            f.evidence.push(Evidence::probe(
                "http",
                if let Some(ms) = h.gave_up_ms.filter(|_| !h.ttfb_exceeds_timeout) {
                    format!(
                        "{} {} (Host {}) to {}: no first byte within {ms} ms, when the probe stopped waiting (the read timeout is {} ms)",
                        h.request.method, h.request.path, h.request.host, h.address, h.read_timeout_ms
                    )
                } else if h.ttfb_exceeds_timeout {
                    format!(
                        "{} {} (Host {}) to {}: no first byte within {} ms (the read timeout): timed out like nginx",
                        h.request.method, h.request.path, h.request.host, h.address, h.read_timeout_ms
                    )
                } else {
                    format!(
                        "{} {} (Host {}) to {}: {} after {} ms",
                        h.request.method,
                        h.request.path,
                        h.request.host,
                        h.address,
                        h.status_line.as_deref().unwrap_or("an answer"),
                        h.ttfb_ms.map_or("?".to_string(), |t| format!("{t:.0}"))
                    )
                },
            ));
        }
        if let Some(c) = fcgi {
            f.evidence.push(Evidence::probe(
                "fastcgi",
                if let Some(ms) = c.gave_up_ms.filter(|_| !c.ttfb_exceeds_timeout) {
                    format!(
                        "FastCGI request to {}: no answer within {ms} ms, when the probe stopped waiting (the read timeout is {} ms)",
                        c.address, c.read_timeout_ms
                    )
                } else if c.ttfb_exceeds_timeout {
                    format!(
                        "FastCGI request to {}: no answer within {} ms (the read timeout)",
                        c.address, c.read_timeout_ms
                    )
                } else {
                    format!(
                        "FastCGI request to {} for a missing script: answered {} after {} ms: the backend is up, the slow requests are specific ones",
                        c.address,
                        c.status.map_or("?".to_string(), |s| s.to_string()),
                        c.ttfb_ms.map_or("?".to_string(), |t| format!("{t:.0}"))
                    )
                },
            ));
        }
        Some(f)
    }
}
