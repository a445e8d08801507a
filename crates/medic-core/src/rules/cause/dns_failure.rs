use medic_parse::error_log::FailureClass;

use super::{nginx_fix, Cause};
use crate::config::{Model, Pass, Target};
use crate::facts::{Facts, ProbedTarget};
use crate::rules::group::Group;
use crate::rules::{rule, Evidence, Finding};

rule! {
    /// ## What it detects
    /// nginx could not resolve an upstream's name while serving requests: `NAME could not be
    /// resolved (3: Host not found)` (or `(2: Server failure)`, `(110: Operation timed out)`),
    /// `no resolver defined to resolve NAME`. nginx resolves per request when the `proxy_pass`
    /// host holds a variable (`proxy_pass http://$backend:8080;`) or a `server ... resolve;` is
    /// used, with the `resolver` directive's name servers. (A name that does not resolve at
    /// start, `[emerg] host not found in upstream "NAME"`, stops nginx: that is
    /// `config-invalid`.)
    ///
    /// ## Why it causes 502
    /// Without an address there is nothing to connect to: nginx answers 502 Bad Gateway (after
    /// `resolver_timeout`, 30 s by default, when the name servers do not answer). Without a
    /// `resolver` directive nginx cannot resolve at run time at all.
    ///
    /// ## Evidence
    /// The failures in the error log with the name; the `proxy_pass` line and the `resolver` in
    /// effect there; live, the probe's resolution of the name (with the configured `resolver`
    /// for a variable, else the system resolver) and its error or addresses.
    ///
    /// ## Fix
    /// Fix the name (a typo, a record that was removed) or its DNS record; check it with `dig
    /// @RESOLVER NAME`. Without `resolver`, add one (`resolver 127.0.0.53 valid=30s;` with
    /// systemd-resolved, or the `nameserver` of `/etc/resolv.conf`); `nginx -t`; `systemctl
    /// reload nginx`.
    pub struct DnsFailure = "dns-failure", "an upstream's name does not resolve";
    time = "5-10 min", risk = "medium";
}

impl Cause for DnsFailure {
    fn classes(&self) -> &'static [FailureClass] {
        &[FailureClass::DnsFailure]
    }

    fn explain(&self, g: &Group<'_>) -> Option<Finding> {
        // An [emerg] is nginx refusing its config: `config-invalid` (or `nginx -t`) says it.
        if g.detail == Some("emerg") {
            return None;
        }
        let host = g
            .detail
            .map(str::to_string)
            .or_else(|| Some(g.target()?.facts.resolve.as_ref()?.host.clone()))?;
        if g.log.is_none() {
            // A target that fails to resolve now and also failed in the log: one finding, the
            // log group's, which carries the probe's evidence.
            let logged = g.facts.logs.groups.iter().any(|l| {
                l.class == FailureClass::DnsFailure && l.detail.as_deref() == Some(host.as_str())
            });
            // nginx -t fails on it: `config-invalid` says so.
            let refused = g
                .facts
                .nginx_t
                .iter()
                .any(|t| !t.ok && t.stderr.contains(&format!("\"{host}")));
            if logged || refused {
                return None;
            }
        }
        let targets: Vec<&ProbedTarget> = if g.targets.is_empty() {
            targets_resolving(g.facts, &host)
        } else {
            g.targets.clone()
        };
        let passes: Vec<(&Model, &Pass, String)> = passes_naming(g.facts, &host);
        let upstream = g
            .upstream
            .clone()
            .or_else(|| targets.first().map(|t| t.facts.upstream.clone()))
            .or_else(|| passes.first().map(|(_, _, u)| u.clone()));
        let line = g.log.map(|l| l.first_line.text.as_str()).unwrap_or("");
        let no_resolver = line.contains("no resolver defined");
        let error = targets
            .iter()
            .find_map(|t| t.facts.resolve.as_ref()?.error.clone())
            .or_else(|| {
                let i = line.find("could not be resolved (")? + "could not be resolved ".len();
                let n = line[i..].find(')')?;
                Some(line[i..=i + n].to_string())
            });
        let title = if no_resolver {
            format!("nginx cannot resolve {host}: no resolver defined")
        } else {
            match &error {
                Some(e) if e.contains("could not be resolved") || e.contains("no resolver") => {
                    e.clone()
                }
                Some(e) if e.starts_with('(') => format!("{host} could not be resolved {e}"),
                Some(e) => format!("{host} could not be resolved: {e}"),
                None => format!("{host} could not be resolved"),
            }
        };
        let resolver = passes
            .first()
            .map(|(m, p, _)| m.scope(p))
            .and_then(|s| s.settings.resolver.as_ref());
        let mut steps = Vec::new();
        match resolver {
            Some(r) if !no_resolver => {
                let ns = r.value.first().cloned().unwrap_or_default();
                steps.push(format!("ask nginx's resolver: `dig @{} {host}` (and `getent hosts {host}` for the system's view)", ns.split(':').next().unwrap_or(&ns)));
                steps.push(format!("fix the name in the `proxy_pass` (or the variable that sets it) or create the DNS record for {host}"));
                steps.push("if the resolver itself fails (SERVFAIL, timeouts), point `resolver` at one that works".to_string());
            }
            _ => {
                steps.push(format!("check the name: `getent hosts {host}`; fix it in the `proxy_pass` (or the variable that sets it) or create its DNS record"));
                steps.push("add a `resolver` where the `proxy_pass` is (nginx resolves names it builds per request only with one): `resolver 127.0.0.53 valid=30s;` with systemd-resolved, else the `nameserver` of /etc/resolv.conf".to_string());
            }
        }
        let mut f = g.finding(
            self,
            title,
            nginx_fix(
                self,
                format!("make {host} resolve: fix the name, its DNS record, or nginx's `resolver`"),
                steps,
            ),
        );
        f.upstream = upstream;
        if g.passes.is_empty() {
            for (_, p, _) in passes.iter().take(3) {
                f.evidence.push(Evidence::config(&p.src));
            }
        }
        match resolver {
            Some(r) => f.evidence.push(match &r.src {
                Some(src) => Evidence::config(src),
                None => Evidence::other("config", "default".into(), "resolver (none set)".into()),
            }),
            None if !passes.is_empty() => f.evidence.push(Evidence::other(
                "config",
                "default".to_string(),
                "no `resolver` in effect for this location: names built at run time cannot be resolved".to_string(),
            )),
            None => {}
        }
        for t in &targets {
            if let Some(r) = &t.facts.resolve {
                let what = match &r.error {
                    Some(e) => format!("error: {e}"),
                    None => format!("addresses now: {}", r.addresses.join(", ")),
                };
                f.evidence.push(Evidence::probe(
                    "resolve",
                    format!("{} via {}: {what}", r.host, r.via),
                ));
            }
        }
        Some(f)
    }
}

/// The probed targets whose name is `host`.
fn targets_resolving<'f>(facts: &'f Facts, host: &str) -> Vec<&'f ProbedTarget> {
    let Some(p) = &facts.probes else {
        return Vec::new();
    };
    p.targets
        .iter()
        .filter(|t| t.facts.resolve.as_ref().is_some_and(|r| r.host == host))
        .collect()
}

/// The passes whose host is `host`, written or built from `set`/`map` values
/// (`proxy_pass http://$b:8080;` with `set $b app.test;`), with the upstream as nginx would
/// name it (`app.test:8080`).
pub(super) fn passes_naming<'f>(
    facts: &'f Facts,
    host: &str,
) -> Vec<(&'f Model, &'f Pass, String)> {
    let mut out = Vec::new();
    for m in &facts.models {
        for p in &m.passes {
            let authorities = match &p.target {
                Target::Host { .. } => vec![p.target.display()],
                Target::Dynamic { host } => expand(m, host),
                _ => continue,
            };
            for a in authorities {
                let h = a.rsplit_once(':').map_or(a.as_str(), |(h, port)| {
                    if port.bytes().all(|b| b.is_ascii_digit()) {
                        h
                    } else {
                        a.as_str()
                    }
                });
                if h == host {
                    let up = if a.contains(':') {
                        a.clone()
                    } else {
                        // No port written: the scheme's default.
                        let port = if p.tls { 443 } else { 80 };
                        format!("{a}:{port}")
                    };
                    out.push((m, p, up));
                    break;
                }
            }
        }
    }
    out
}

/// The values an authority with variables can take, from the model's `set`/`map` values (the
/// first variable only; values that hold variables themselves are unknown).
fn expand(m: &Model, authority: &str) -> Vec<String> {
    let Some(i) = authority.find('$') else {
        return vec![authority.to_string()];
    };
    let rest = &authority[i + 1..];
    let (name, after) = if let Some(r) = rest.strip_prefix('{') {
        match r.find('}') {
            Some(n) => (&r[..n], &r[n + 1..]),
            None => return Vec::new(),
        }
    } else {
        let n = rest
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .unwrap_or(rest.len());
        (&rest[..n], &rest[n..])
    };
    m.variables
        .get(name)
        .into_iter()
        .flatten()
        .filter(|v| !v.contains('$'))
        .map(|v| format!("{}{v}{after}", &authority[..i]))
        .filter(|a| !a.contains('$'))
        .collect()
}
