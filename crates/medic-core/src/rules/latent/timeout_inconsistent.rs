use std::borrow::Cow;
use std::collections::HashSet;

use foldhash::HashMap;
use std::time::Duration;

use crate::config::values::format_time;
use crate::config::{Eff, Model, Pass, Src, Target};
use crate::rules::{rule, Evidence, Finding, Rule, RuleDoc};

use super::config_fix;

rule! {
    /// ## What it detects
    /// Two kinds of timeout settings that contradict each other:
    /// - a location whose read timeout (`proxy_read_timeout`, `fastcgi_read_timeout`, ...) is
    ///   shorter than its connect timeout;
    /// - the same upstream reached from several locations with different read timeouts.
    ///
    /// ## Why it causes 502/504
    /// The read timeout bounds the wait for the upstream's response, which includes its work;
    /// below the connect timeout it is almost always a typo (`5` meant as minutes, `500ms` for
    /// `500s`) and answers 504 for any request slower than that. When one upstream is reached
    /// with different read timeouts, the same slow request succeeds through one URL and gets a
    /// 504 through another, which is hard to tell from an intermittent backend problem; usually
    /// one location was tuned and the others were forgotten.
    ///
    /// ## Example
    /// ```nginx
    /// location /api/ {
    ///     proxy_pass http://app;
    ///     proxy_read_timeout 300s;
    /// }
    /// location /api/v2/ {
    ///     proxy_pass http://app;
    /// }
    /// ```
    ///
    /// ## Fix
    /// Set one read timeout for the upstream at the `server` or `http` level (or in a shared
    /// include), and keep it above the connect timeout:
    /// ```nginx
    /// proxy_read_timeout 300s;
    /// ```
    pub struct TimeoutInconsistent = "timeout-inconsistent", "inconsistent upstream timeouts";
    time = "5 min", risk = "medium (a longer timeout also holds connections longer)";
}

impl Rule for TimeoutInconsistent {
    fn check(&self, model: &Model, out: &mut Vec<Finding>) {
        for pass in &model.passes {
            if pass.settings.read_timeout.value < pass.settings.connect_timeout.value {
                self.read_below_connect(pass, out);
            }
        }
        // The same upstream (protocol, module, target) with different read timeouts. Grouped
        // in a hash map and sorted once, by target name and module: a sorted map compared
        // names at every pass.
        let mut by_upstream: HashMap<(Cow<'_, str>, &str), Vec<&Pass>> = HashMap::default();
        for pass in &model.passes {
            if matches!(pass.target, Target::Dynamic { .. }) {
                continue;
            }
            by_upstream
                .entry((pass.target.name(), pass.kind.prefix()))
                .or_default()
                .push(pass);
        }
        let mut by_upstream: Vec<_> = by_upstream.into_iter().collect();
        by_upstream.sort_unstable_by(|a, b| a.0.cmp(&b.0));
        for ((target, prefix), passes) in by_upstream {
            let mut values: Vec<Duration> = passes
                .iter()
                .map(|p| p.settings.read_timeout.value)
                .collect();
            values.sort();
            values.dedup();
            if values.len() < 2 {
                continue;
            }
            let mut evidence = Vec::new();
            // Each read timeout directive once, however many locations inherit it: found in a
            // set (a scan of the evidence so far was quadratic in the locations of an
            // upstream).
            let mut seen: HashSet<&Src> = HashSet::new();
            for p in &passes {
                evidence.push(Evidence::config(&p.src));
                if let Some(src) = &p.settings.read_timeout.src {
                    if seen.insert(src) {
                        evidence.push(Evidence::config(src));
                    }
                }
            }
            let shown: Vec<String> = values.iter().map(|d| format_time(*d)).collect();
            let longest = format_time(*values.last().unwrap_or(&Duration::ZERO));
            out.push(
                Finding::latent(
                    self.id(),
                    format!(
                        "upstream {target} is reached with different {prefix}_read_timeout values: {}",
                        shown.join(", ")
                    ),
                    evidence,
                    config_fix(self,
                        format!("one {prefix}_read_timeout for {target} (e.g. {longest})"),
                        vec![format!(
                            "set `{prefix}_read_timeout` once for every location that reaches {target} (server level or a shared include), and remove the per-location values"
                        )]
                    ),
                )
                .upstream(target),
            );
        }
    }
}

impl TimeoutInconsistent {
    fn read_below_connect(&self, pass: &Pass, out: &mut Vec<Finding>) {
        let p = pass.kind.prefix();
        let show = |e: &Eff<Duration>| {
            let v = format_time(e.value);
            if e.is_default() {
                format!("{v} (default)")
            } else {
                v
            }
        };
        let mut evidence = vec![Evidence::config(&pass.src)];
        evidence.extend(pass.settings.read_timeout.src.iter().map(Evidence::config));
        evidence.extend(
            pass.settings
                .connect_timeout
                .src
                .iter()
                .map(Evidence::config),
        );
        out.push(
            Finding::latent(
                self.id(),
                format!(
                    "{p}_read_timeout {} is shorter than {p}_connect_timeout {}",
                    show(&pass.settings.read_timeout),
                    show(&pass.settings.connect_timeout)
                ),
                evidence,
                config_fix(self,
                    format!("{p}_read_timeout at least {}", format_time(pass.settings.connect_timeout.value)),
                    vec![format!(
                        "check the unit of `{p}_read_timeout` ({}): a bare number is seconds; set it above the time the slowest legitimate response takes",
                        pass.settings.read_timeout.src.as_ref().map_or_else(|| pass.src.location(), |s| s.location())
                    )]
                ),
            )
            .upstream(pass.target.display()),
        );
    }
}
