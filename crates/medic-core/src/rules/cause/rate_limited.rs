use medic_parse::error_log::FailureClass;

use super::{nginx_fix, Cause};
use crate::config::{LimitReq, LimitReqZone, Model, Scope};
use crate::rules::group::Group;
use crate::rules::{rule, Change, Evidence, Finding, Remedy, Risk};

rule! {
    /// ## What it detects
    /// `limiting requests, excess: 1.000 by zone "perip"` (logged at `[error]` by default,
    /// `limit_req_log_level`): nginx's own `limit_req` rejected requests. No upstream is
    /// involved; the answer is `limit_req_status` (503 by default).
    ///
    /// ## Why it causes 503
    /// `limit_req zone=Z [burst=N] [nodelay];` lets requests of one key (usually the client
    /// address) through at the zone's `rate`; up to `burst` excess requests wait (or pass at
    /// once with `nodelay`), and the rest are rejected with 503 Service Unavailable. Without
    /// `burst`, any two requests closer together than 1/rate are one too many: a page that
    /// loads ten assets through the limited location fails.
    ///
    /// ## Evidence
    /// The rejections in the error log (count, per minute); the `limit_req` lines that use the
    /// zone, the `limit_req_zone` definition (key, rate), `burst` and `nodelay`; the clients
    /// rejected most.
    ///
    /// ## Fix
    /// If the clients are legitimate: raise the zone's `rate`, or allow bursts (`limit_req
    /// zone=Z burst=20 nodelay;`); return 429 instead of 503 with `limit_req_status 429;` so
    /// clients can tell. If they are abusive, it works as intended. Then `nginx -t` and
    /// `systemctl reload nginx`.
    ///
    /// `nginx-medic fix --risk medium` adds `burst=20` to each `limit_req` of the zone that has
    /// none (`nodelay` is left to a human).
    pub struct RateLimited = "rate-limited", "nginx's limit_req rejected requests";
    time = "5 min", risk = "medium";
}

impl Cause for RateLimited {
    fn classes(&self) -> &'static [FailureClass] {
        &[FailureClass::RateLimited]
    }

    fn explain(&self, g: &Group<'_>) -> Option<Finding> {
        let zone = g.detail.unwrap_or("?");
        let uses = limit_reqs(&g.facts.models, zone);
        let def: Option<&LimitReqZone> = uses
            .iter()
            .find_map(|(_, _, l)| l.zone_def.as_ref())
            .or_else(|| {
                g.facts
                    .models
                    .iter()
                    .flat_map(|m| m.limit_req_zones.iter())
                    .find(|z| z.name == zone)
            });
        let mut what = Vec::new();
        if let Some(r) = def.and_then(|d| d.rate) {
            what.push(format!("rate={r}"));
        }
        if let Some((_, _, l)) = uses.first() {
            what.push(match l.burst {
                Some(b) => format!("burst={b}"),
                None => "no burst".to_string(),
            });
            if l.nodelay {
                what.push("nodelay".to_string());
            }
        }
        let status = uses
            .first()
            .map_or(503, |(_, s, _)| s.settings.limit_req_status.value);
        let n = g.count();
        let title = if what.is_empty() {
            format!("limit_req zone \"{zone}\" rejected {n} requests")
        } else {
            format!(
                "limit_req zone \"{zone}\" rejected {n} requests ({})",
                what.join(", ")
            )
        };
        let mut f = g.finding(
            self,
            title,
            nginx_fix(self,
                format!("let legitimate clients through zone \"{zone}\": a higher rate or a burst, or accept the limit as intended"),
                vec![
                    format!("if the rejected clients are legitimate, allow bursts: `limit_req zone={zone} burst=20 nodelay;`"),
                    format!("or raise the rate in `limit_req_zone ... zone={zone}:10m rate=...;`"),
                    "let clients tell a limit from an outage: `limit_req_status 429;`".to_string(),
                    "if the top clients are abusive, the limit works as intended: nothing to change".to_string(),
                ]
            ),
        );
        // Without a burst, two requests in the same instant are one too many: a burst is the
        // fix the machine may make (medium risk: the zone then admits short bursts).
        let mut changes: Vec<Change> = Vec::new();
        for (_, _, l) in &uses {
            let c = Change::Append {
                at: l.src.clone(),
                args: vec!["burst=20".into()],
            };
            if l.burst.is_none() && !changes.contains(&c) {
                changes.push(c);
            }
        }
        if !changes.is_empty() {
            f.fix = f
                .fix
                .clone()
                .with_remedy(Remedy::new(Risk::Medium, changes));
        }
        f.upstream = None;
        f.status = Some(status);
        let mut seen = Vec::new();
        for (_, s, l) in &uses {
            let at = l.src.location();
            if seen.contains(&at) || seen.len() >= 3 {
                continue;
            }
            seen.push(at);
            f.evidence.push(Evidence::config(&l.src));
            if let Some(src) = &s.settings.limit_req_status.src {
                f.evidence.push(Evidence::config(src));
            }
        }
        if let Some(d) = def {
            f.evidence.push(Evidence::config(&d.src));
        }
        if let Some(e) = top_clients(g) {
            f.evidence.push(e);
        }
        Some(f)
    }
}

/// Every `limit_req` in effect that uses `zone`, with its scope.
fn limit_reqs<'m>(models: &'m [Model], zone: &str) -> Vec<(&'m Model, &'m Scope, &'m LimitReq)> {
    models
        .iter()
        .flat_map(|m| m.scopes.iter().map(move |s| (m, s)))
        .flat_map(|(m, s)| s.settings.limit_req.iter().map(move |l| (m, s, l)))
        .filter(|(_, _, l)| l.zone == zone)
        .collect()
}

/// The clients the group's entries name most, as evidence.
pub(super) fn top_clients(g: &Group<'_>) -> Option<Evidence> {
    let log = g.log?;
    if log.top_clients.is_empty() {
        return None;
    }
    let list: Vec<String> = log
        .top_clients
        .iter()
        .take(5)
        .map(|(c, n)| format!("{c} ({n})"))
        .collect();
    Some(Evidence::other(
        "log",
        "top clients".to_string(),
        format!("clients rejected most: {}", list.join(", ")),
    ))
}
