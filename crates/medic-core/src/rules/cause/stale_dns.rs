use medic_parse::error_log::FailureClass;

use super::{nginx_fix, Cause};
use crate::facts::ProbedTarget;
use crate::rules::group::Group;
use crate::rules::{rule, Change, Evidence, Finding, Remedy, Risk};

rule! {
    /// ## What it detects
    /// nginx's connects to an address fail (refused, timed out, unreachable), the config names
    /// that peer by a host name that nginx resolved once (at start or reload: `proxy_pass
    /// http://NAME:PORT` without variables, or `server NAME` in an `upstream`), and the name
    /// resolves elsewhere now, where the probe's connect succeeds. Live diagnosis only.
    ///
    /// ## Why it causes 502
    /// nginx resolves such names when it reads its config and never again: when the backend
    /// moves (a container restarted with a new IP, a cloud load balancer's address rotated,
    /// `/etc/hosts` edited), workers keep connecting to the old address. Nothing answers there,
    /// so every request fails with 502 (or 504 after `proxy_connect_timeout`), while the
    /// backend runs fine at its new address.
    ///
    /// ## Evidence
    /// The failures in the error log, naming the old address; the `*_pass` line with the name;
    /// the probe's resolution of the name now (other addresses) and its successful connect.
    ///
    /// ## Fix
    /// Reload nginx now so it resolves the name again (`nginx -t && systemctl reload nginx`).
    /// For names that move, let nginx re-resolve: a `resolver` with `valid=`, and the name in a
    /// variable (`set $backend http://NAME:PORT; proxy_pass $backend;`) or `server NAME
    /// resolve;` (nginx 1.27.3+ or NGINX Plus).
    ///
    /// `nginx-medic fix` does it (risk low): a reload, verified by a new worker generation and a
    /// connect.
    pub struct StaleDns = "stale-dns", "nginx still connects to an address the backend's name no longer resolves to";
    time = "2-10 min", risk = "low";
}

impl Cause for StaleDns {
    fn classes(&self) -> &'static [FailureClass] {
        &[
            FailureClass::ConnectRefused,
            FailureClass::ConnectTimeout,
            FailureClass::ConnectUnreachable,
        ]
    }

    fn explain(&self, g: &Group<'_>) -> Option<Finding> {
        g.log?;
        let old = g.upstream.as_deref()?;
        let (ip, port) = g.ip_port()?;
        let probes = g.probes()?;
        // The probed targets named by a host name on the same port that resolve elsewhere now
        // and answer there.
        let moved: Vec<&ProbedTarget> = probes
            .targets
            .iter()
            .filter(|t| {
                let f = &t.facts;
                let Some((host, p)) = f.upstream.rsplit_once(':') else {
                    return false;
                };
                let named = host
                    .trim_matches(['[', ']'])
                    .parse::<std::net::IpAddr>()
                    .is_err();
                named
                    && p.parse() == Ok(port)
                    && !f.addresses.is_empty()
                    && !f.addresses.iter().any(|a| a == old)
                    && f.tcp.iter().any(|c| c.connect.is_ok())
            })
            .collect();
        let [t] = moved[..] else {
            return None;
        };
        let name = &t.facts.upstream;
        let passes = crate::rules::support::passes_to(g.facts, name);
        let mut f = g.finding(
            self,
            format!("nginx connects to {old}, but {name} resolves to {} now and answers there", t.facts.addresses.join(", ")),
            nginx_fix(self,
                format!("reload nginx so it resolves {name} again; let it re-resolve names that move"),
                vec![
                    "reload now: nginx resolves the name again when it reads its config".to_string(),
                    format!("for a name that moves: `resolver` with `valid=30s`, and `set $backend http://{name}; proxy_pass $backend;` (or `server {name} resolve;` on nginx 1.27.3+)"),
                ]
            ),
        );
        for (_, p) in passes.iter().take(2) {
            f.evidence.push(Evidence::config(&p.src));
        }
        f.evidence.push(Evidence::probe(
            "resolve",
            format!(
                "{name} resolves to {} now; nginx connected to {ip}",
                t.facts.addresses.join(", ")
            ),
        ));
        super::connect_evidence(t, &mut f);
        f.fix = f
            .fix
            .clone()
            .with_remedy(Remedy::new(Risk::Low, vec![Change::Reload]));
        Some(f)
    }
}
