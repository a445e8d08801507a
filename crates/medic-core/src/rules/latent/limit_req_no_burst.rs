use std::collections::HashSet;

use crate::config::Model;
use crate::rules::{rule, Change, Evidence, Finding, Remedy, Risk, Rule, RuleDoc};

use super::config_fix;

rule! {
    /// ## What it detects
    /// A `limit_req zone=NAME` without `burst=N`.
    ///
    /// ## Why it causes 502/504
    /// Without `burst`, nginx's burst is 0: a request that arrives sooner than `1/rate` after
    /// the previous one from the same key is rejected at once with `limit_req_status` (503 by
    /// default) and the log line `limiting requests, excess: 0.xxx by zone "NAME"`. Browsers
    /// open several connections and load a page's assets in parallel, and clients behind one NAT
    /// share an address, so ordinary traffic gets 503s well below the configured rate. It looks
    /// like an overloaded backend, but the backend never sees the request.
    ///
    /// ## Example
    /// ```nginx
    /// limit_req_zone $binary_remote_addr zone=api:10m rate=10r/s;
    /// location /api/ {
    ///     limit_req zone=api;
    /// }
    /// ```
    ///
    /// ## Fix
    /// Allow a burst, served without delay:
    /// ```nginx
    /// limit_req zone=api burst=20 nodelay;
    /// ```
    ///
    /// `nginx-medic fix --risk medium --id limit-req-no-burst` adds `burst=20` (`nodelay` is left
    /// to a human).
    pub struct LimitReqNoBurst = "limit-req-no-burst", "limit_req without burst";
    time = "5 min", risk = "medium (the limit admits short bursts above the rate)";
}

impl Rule for LimitReqNoBurst {
    fn check(&self, model: &Model, out: &mut Vec<Finding>) {
        // A limit_req written at server level is in effect in every location below it: report
        // the directive once (a 5,000-server config has one in each of 15,000 scopes).
        let mut seen = HashSet::new();
        for scope in &model.scopes {
            for l in scope.settings.limit_req.iter() {
                if l.burst.is_some() || !seen.insert(&l.src) {
                    continue;
                }
                let mut evidence = vec![Evidence::config(&l.src)];
                let rate = match &l.zone_def {
                    Some(z) => {
                        evidence.push(Evidence::config(&z.src));
                        z.rate.map_or("its rate".to_string(), |r| r.to_string())
                    }
                    None => "its rate".to_string(),
                };
                out.push(Finding::latent(
                    self.id(),
                    format!(
                        "limit_req zone={} has no burst: any request faster than {rate} gets {}",
                        l.zone, scope.settings.limit_req_status.value
                    ),
                    evidence,
                    config_fix(self,
                        format!("limit_req zone={} burst=N nodelay;", l.zone),
                        vec![format!(
                            "add `burst=N nodelay` to `{}` ({}); N about the number of requests one page load makes",
                            l.src.text(),
                            l.src.location()
                        )]
                    )
                    // The machine adds a burst of 20 and leaves `nodelay` to a human: it
                    // changes how excess requests are paced, not only whether they pass.
                    .with_remedy(Remedy::new(
                        Risk::Medium,
                        vec![Change::Append {
                            at: l.src.clone(),
                            args: vec!["burst=20".into()],
                        }],
                    )),
                ));
            }
        }
    }
}
