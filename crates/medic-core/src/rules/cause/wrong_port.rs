use medic_parse::error_log::FailureClass;

use super::{nginx_fix, Cause};
use crate::rules::group::{parse_ip_port, Group};
use crate::rules::support::candidate_listeners;
use crate::rules::{rule, Evidence, Finding};

rule! {
    /// ## What it detects
    /// nginx's connects to `HOST:PORT` are refused, nothing listens on that port at any
    /// address, and exactly one other listener is the backend nginx must have meant: the only
    /// application listener on a loopback or wildcard address that no other `*_pass` of the
    /// config uses (system daemons such as sshd are not candidates), or, on a host that runs
    /// other applications, the only one whose port looks like a slip of the target's (a few
    /// apart, 3000/3001, or one digit changed, 8000/8080); for `fastcgi_pass`, the one PHP-FPM
    /// pool's `listen`. Several candidates and none tied: `backend-down`, which lists them.
    ///
    /// ## Why it causes 502
    /// The app was started on another port (a changed `PORT`, a second instance, a package
    /// default) or the config names the wrong one. Every connect is refused: 502.
    ///
    /// ## Evidence
    /// The refusals in the error log; the `*_pass` line; the refused connect; the candidate
    /// listener with its process (and the PHP-FPM pool file for a pool).
    ///
    /// ## Fix
    /// Change the port in `proxy_pass` (or the app's port) so they match; `nginx -t`;
    /// `systemctl reload nginx`.
    pub struct WrongPort = "wrong-port", "the backend listens on another port";
    time = "5-10 min", risk = "medium";
}

impl Cause for WrongPort {
    fn classes(&self) -> &'static [FailureClass] {
        &[FailureClass::ConnectRefused]
    }

    fn explain(&self, g: &Group<'_>) -> Option<Finding> {
        let t = g.target()?;
        if t.facts.listener.is_some() || !t.facts.same_port_elsewhere.is_empty() {
            return None;
        }
        let (_, port) = g.ip_port()?;
        let fastcgi = g
            .passes
            .first()
            .is_some_and(|(_, p)| p.kind.directive() == "fastcgi_pass");
        let probes = g.probes()?;
        // A PHP-FPM pool on TCP is the intended backend of a fastcgi_pass.
        let pools: Vec<(String, String)> = probes
            .supervisors
            .fpm
            .iter()
            .flat_map(|m| m.pools.iter())
            .filter_map(|p| {
                let l = p.listen.as_deref()?;
                let (_, pp) = parse_ip_port(l).or_else(|| {
                    l.parse::<u16>()
                        .ok()
                        .map(|p| ("0.0.0.0".parse().unwrap(), p))
                })?;
                (pp != port).then(|| {
                    (
                        l.to_string(),
                        format!(
                            "PHP-FPM pool [{}] listen = {l}{}",
                            p.name,
                            p.file
                                .as_ref()
                                .map(|f| format!(" ({})", f.display()))
                                .unwrap_or_default()
                        ),
                    )
                })
            })
            .collect();
        let (at, why) = if fastcgi && pools.len() == 1 {
            pools[0].clone()
        } else {
            let cands = candidate_listeners(g.facts, port);
            let cands: Vec<_> = if fastcgi {
                cands
                    .into_iter()
                    .filter(|l| l.processes.iter().any(|p| p.program.starts_with("php-fpm")))
                    .collect()
            } else {
                cands
                    .into_iter()
                    .filter(|l| !l.processes.iter().any(|p| p.program.starts_with("php-fpm")))
                    .collect()
            };
            // One socket per family of one process counts once ([::]:3000 and 0.0.0.0:3000).
            let mut ports: Vec<u16> = cands.iter().filter_map(|l| l.port).collect();
            ports.sort_unstable();
            ports.dedup();
            // A busy host runs other applications: with several candidates, only one whose
            // port looks like a slip of the target's (3000/3001, 8000/8080) is tied to it.
            let (chosen, how) = match ports.as_slice() {
                [only] => (
                    *only,
                    "the only application listener on the host".to_string(),
                ),
                _ => {
                    // A few apart first (3000/3001), then one digit changed (8000/8080).
                    let few_apart: Vec<u16> = ports
                        .iter()
                        .copied()
                        .filter(|p| p.abs_diff(port) <= 10)
                        .collect();
                    let near = if few_apart.is_empty() {
                        ports
                            .iter()
                            .copied()
                            .filter(|p| looks_like(port, *p))
                            .collect()
                    } else {
                        few_apart
                    };
                    let [only] = near.as_slice() else {
                        return None;
                    };
                    (
                        *only,
                        format!(
                            "the only one of {} application listeners whose port looks like {port} (a slip of a digit or a few)",
                            ports.len()
                        ),
                    )
                }
            };
            let l = cands.iter().copied().find(|l| l.port == Some(chosen))?;
            let who = l
                .processes
                .first()
                .map(|p| {
                    format!(
                        "{} (pid {}{}): {}",
                        p.program,
                        p.pid,
                        p.unit
                            .as_ref()
                            .map(|u| format!(", {u}"))
                            .unwrap_or_default(),
                        p.cmdline
                    )
                })
                .unwrap_or_else(|| "a process that could not be inspected".into());
            (
                l.display(),
                format!("listening on {}: {who}; {how}", l.display()),
            )
        };
        let up = g.upstream.as_deref().unwrap_or("the upstream");
        let new_port = at
            .rsplit_once(':')
            .map_or(at.as_str(), |(_, p)| p)
            .to_string();
        let directive = g
            .passes
            .first()
            .map_or("proxy_pass", |(_, p)| p.kind.directive());
        let mut f = g.finding(
            self,
            format!("nothing listens on {up}; the backend listens on {at}"),
            nginx_fix(self,
                format!("point {directive} at port {new_port} (or move the app back to {up})"),
                vec![format!(
                    "change the port of `{directive}` from {port} to {new_port} (the line above), or restart the app on port {port}"
                )]
            ),
        );
        super::connect_evidence(t, &mut f);
        f.evidence.push(Evidence::probe("listeners", why));
        Some(f)
    }
}

/// Whether `other` looks like a slip of `port`: a few apart (3000, 3001) or one digit changed
/// (8000, 8080).
fn looks_like(port: u16, other: u16) -> bool {
    if port.abs_diff(other) <= 10 {
        return true;
    }
    let (a, b) = (port.to_string(), other.to_string());
    a.len() == b.len() && a.chars().zip(b.chars()).filter(|(x, y)| x != y).count() == 1
}

#[cfg(test)]
mod tests {
    use super::looks_like;

    #[test]
    fn slips_of_a_port() {
        assert!(looks_like(3000, 3001));
        assert!(looks_like(8000, 8080));
        assert!(!looks_like(3000, 45189));
        assert!(!looks_like(8000, 9090));
    }
}
