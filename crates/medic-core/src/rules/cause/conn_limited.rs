use medic_parse::error_log::FailureClass;

use super::rate_limited::top_clients;
use super::{nginx_fix, Cause};
use crate::config::{LimitConn, Scope};
use crate::rules::group::Group;
use crate::rules::{rule, Evidence, Finding};

rule! {
    /// ## What it detects
    /// `limiting connections by zone "addr"`: nginx's own `limit_conn` rejected requests
    /// because the key (usually the client address) already had the allowed number of
    /// requests in progress. No upstream is involved; the answer is `limit_conn_status` (503 by
    /// default).
    ///
    /// ## Why it causes 503
    /// `limit_conn Z N;` counts the requests of one key being processed at once (with HTTP/2,
    /// every stream counts). While a slow upstream keeps N of them open, the next ones get 503
    /// Service Unavailable at once. Clients behind one NAT or proxy share a key.
    ///
    /// ## Evidence
    /// The rejections in the error log (count, per minute); the `limit_conn` lines that use the
    /// zone and its limit; the zone's key; the clients rejected most.
    ///
    /// ## Fix
    /// If the clients are legitimate, raise the limit (`limit_conn addr 10;`) or key the zone
    /// on something finer than the address; if the upstream is slow, making it faster frees the
    /// slots. `limit_conn_status 429;` lets clients tell. Then `nginx -t` and `systemctl reload
    /// nginx`. If the clients are abusive, it works as intended.
    pub struct ConnLimited = "conn-limited", "nginx's limit_conn rejected requests";
    time = "5 min", risk = "medium";
}

impl Cause for ConnLimited {
    fn classes(&self) -> &'static [FailureClass] {
        &[FailureClass::ConnLimited]
    }

    fn explain(&self, g: &Group<'_>) -> Option<Finding> {
        let zone = g.detail.unwrap_or("?");
        let uses: Vec<(&Scope, &LimitConn)> = g
            .facts
            .models
            .iter()
            .flat_map(|m| m.scopes.iter())
            .flat_map(|s| s.settings.limit_conn.iter().map(move |l| (s, l)))
            .filter(|(_, l)| l.zone == zone)
            .collect();
        let n = g.count();
        let first = uses.first().map(|(_, l)| *l);
        let mut what = Vec::new();
        if let Some(limit) = first.and_then(|l| l.limit) {
            what.push(format!("{limit} at once"));
        }
        if let Some(key) = first.and_then(|l| l.zone_key.as_deref()) {
            what.push(format!("per {key}"));
        }
        let title = if what.is_empty() {
            format!("limit_conn zone \"{zone}\" rejected {n} requests")
        } else {
            format!(
                "limit_conn zone \"{zone}\" rejected {n} requests ({})",
                what.join(" ")
            )
        };
        let limit = first.and_then(|l| l.limit).unwrap_or(1);
        let mut f = g.finding(
            self,
            title,
            nginx_fix(self,
                format!("let legitimate clients through zone \"{zone}\": a higher limit, or accept it as intended"),
                vec![
                    format!("if the rejected clients are legitimate, raise the limit: `limit_conn {zone} {};`", (limit * 4).max(10)),
                    "a slow upstream holds the slots longer: making it faster frees them".to_string(),
                    "let clients tell a limit from an outage: `limit_conn_status 429;`".to_string(),
                    "if the top clients are abusive, the limit works as intended: nothing to change".to_string(),
                ]
            ),
        );
        f.upstream = None;
        f.status = Some(
            uses.first()
                .map_or(503, |(s, _)| s.settings.limit_conn_status.value),
        );
        let mut seen = Vec::new();
        for (s, l) in &uses {
            let at = l.src.location();
            if seen.contains(&at) || seen.len() >= 3 {
                continue;
            }
            seen.push(at);
            f.evidence.push(Evidence::config(&l.src));
            if let Some(src) = &s.settings.limit_conn_status.src {
                f.evidence.push(Evidence::config(src));
            }
        }
        if let Some(e) = top_clients(g) {
            f.evidence.push(e);
        }
        Some(f)
    }
}
