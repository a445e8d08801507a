use medic_parse::error_log::FailureClass;

use super::{nginx_fix, Cause};
use crate::rules::group::{parse_ip_port, Group};
use crate::rules::remedy::retarget;
use crate::rules::support::candidate_listeners;
use crate::rules::{rule, Address, Evidence, Finding, Remedy, Risk};

rule! {
    /// ## What it detects
    /// nginx's connects to `HOST:PORT` are refused, nothing listens on that port at any
    /// address, and exactly one other listener is the backend nginx must have meant: the only
    /// application listener on a loopback or wildcard address that no other `*_pass` of the
    /// config uses (system daemons such as sshd are not candidates); for `fastcgi_pass`, the one
    /// PHP-FPM pool's `listen`. Several candidates and none tied to the target (a host that runs
    /// other applications): `backend-down`, which lists them as hints.
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
    ///
    /// `nginx-medic fix` does it when the listener's address is the target's (risk low, the one
    /// candidate being certain): the port of the `*_pass` URL or upstream `server`, the rest as
    /// written; verified by a connect.
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
            // A busy host runs other applications: with several candidates nothing ties one of
            // them to the target (a port a few apart is no evidence: ephemeral ports sit side by
            // side), so the class-level cause stays and `backend-down` lists them as hints.
            let [chosen] = ports.as_slice() else {
                return None;
            };
            let (chosen, how) = (*chosen, "the only application listener on the host");
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
        // The machine changes the port only: when the listener's address is the target's (or
        // every address), that is the whole fix; otherwise the address differs too and a human
        // should pick (bind-mismatch's ground).
        let listener_ip = parse_ip_port(&at).map(|(ip, _)| ip);
        let port_is_enough = listener_ip.is_none_or(|ip| {
            ip.is_unspecified() || g.ip_port().is_some_and(|(target, _)| target == ip)
        });
        if let (true, Ok(p)) = (port_is_enough, new_port.parse::<u16>()) {
            let changes = retarget(g, Address::Port(p));
            if !changes.is_empty() {
                f.fix = f.fix.clone().with_remedy(Remedy::new(Risk::Low, changes));
            }
        }
        super::connect_evidence(t, &mut f);
        f.evidence.push(Evidence::probe("listeners", why));
        Some(f)
    }
}

#[cfg(test)]
mod tests {
    use medic_parse::error_log::FailureClass;

    use crate::facts::{Connect, Listener, ProcessInfo, SocketKind};
    use crate::rules::cause::tests::{live, log_group, tcp_target, top};

    fn app_on(port: u16, program: &str, pid: u32) -> Listener {
        Listener {
            kind: SocketKind::Tcp,
            ip: Some("127.0.0.1".parse().unwrap()),
            port: Some(port),
            path: None,
            inode: u64::from(port),
            uid: Some(1000),
            processes: vec![ProcessInfo {
                pid,
                program: program.into(),
                cmdline: format!("{program} --port {port}"),
                uid: Some(1000),
                unit: None,
                container: None,
                start_time: None,
            }],
        }
    }

    fn refused_with(listeners: Vec<Listener>) -> crate::facts::Facts {
        let up = "127.0.0.1:3000";
        let mut facts = live(
            vec![log_group(FailureClass::ConnectRefused, Some(up), None, 4)],
            vec![tcp_target(up, Connect::Refused)],
        );
        facts.probes.as_mut().unwrap().listeners.sockets = listeners;
        facts
    }

    #[test]
    fn fires_on_the_only_application_listener() {
        let f = top(&refused_with(vec![app_on(3001, "node", 41)]));
        assert_eq!(f.id, "wrong-port");
        assert!(
            f.title.contains("3001") || f.fix.summary.contains("3001"),
            "{f:#?}"
        );
    }

    /// A busy host: several applications listen, none tied to the target.
    #[test]
    fn stays_quiet_when_several_could_be_it() {
        let f = top(&refused_with(vec![
            app_on(3001, "node", 41),
            app_on(8000, "python3", 42),
        ]));
        assert_eq!(f.id, "backend-down");
        assert!(f
            .evidence
            .iter()
            .any(|e| e.text.contains("none of them clearly this backend")));
    }
}
