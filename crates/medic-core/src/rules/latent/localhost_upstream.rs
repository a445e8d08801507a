use crate::config::{Model, Src, Target};
use crate::rules::{rule, Address, Change, Evidence, Finding, Remedy, Risk, Rule, RuleDoc};

use super::config_fix;

rule! {
    /// ## What it detects
    /// An upstream named `localhost`: `proxy_pass http://localhost:3000`, `fastcgi_pass
    /// localhost:9000`, or `server localhost:8080` in an `upstream {}` group.
    ///
    /// ## Why it causes 502/504
    /// nginx resolves `localhost` once, at startup, to every address it has (`127.0.0.1` and
    /// `::1` on most systems) and treats each as a separate peer, round-robin. An application
    /// that binds only one of them (Node.js 17+ binds `::1` for `localhost`; many servers bind
    /// `127.0.0.1` only) refuses half of the connections: nginx logs `connect() failed (111:
    /// Connection refused)` for the other address, marks it failed, retries the next peer, and
    /// answers 502 when retries are off (`proxy_next_upstream off`, non-idempotent requests after
    /// a partial send) or the working address is itself briefly down.
    ///
    /// ## Example
    /// ```nginx
    /// location / {
    ///     proxy_pass http://localhost:3000;
    /// }
    /// ```
    ///
    /// ## Fix
    /// Name the address the application listens on:
    /// ```nginx
    /// proxy_pass http://127.0.0.1:3000;
    /// ```
    /// or make the application listen on both `127.0.0.1` and `::1`.
    ///
    /// `nginx-medic fix --id localhost-upstream` replaces `localhost` with 127.0.0.1 (risk low)
    /// only when the probe saw a listener there.
    pub struct LocalhostUpstream = "localhost-upstream", "upstream named localhost (127.0.0.1 and ::1 are both tried)";
    time = "2 min", risk = "low";
}

fn is_localhost(host: &str) -> bool {
    host.eq_ignore_ascii_case("localhost") || host.eq_ignore_ascii_case("localhost.localdomain")
}

impl Rule for LocalhostUpstream {
    fn check(&self, model: &Model, out: &mut Vec<Finding>) {
        let mut push = |src: &Src, target: String, port: Option<u16>, group: bool| {
            let ip = match port {
                Some(p) => format!("127.0.0.1:{p}"),
                None => "127.0.0.1".to_string(),
            };
            out.push(
                Finding::latent(
                    self.id(),
                    if group {
                        format!("upstream {target} has a server named localhost: nginx connects to both 127.0.0.1 and ::1")
                    } else {
                        format!("upstream {target} is named localhost: nginx connects to both 127.0.0.1 and ::1")
                    },
                    vec![Evidence::config(src)],
                    config_fix(self,
                        format!("use {ip} (or the address the application binds)"),
                        vec![
                            format!("check which address the application listens on: `ss -ltnp | grep ':{}'`", port.map_or("PORT".to_string(), |p| p.to_string())),
                            format!("replace `localhost` with that address (usually {ip}) at {}", src.location()),
                        ]
                    )
                    // The config alone cannot say which loopback the app binds: `nginx-medic
                    // fix` applies this only when the probe saw a listener there.
                    .with_remedy(Remedy::new(
                        Risk::Low,
                        vec![Change::Retarget {
                            at: src.clone(),
                            index: 0,
                            to: Address::Host("127.0.0.1".into()),
                        }],
                    )),
                )
                .upstream(target),
            );
        };
        for pass in &model.passes {
            if let Target::Host { host, port } = &pass.target {
                if is_localhost(host) {
                    push(&pass.src, pass.target.display(), *port, false);
                }
            }
        }
        // Group servers once each, whether or not a pass uses the group: nginx resolves them all.
        for group in &model.upstreams {
            for s in &group.servers {
                if s.host.as_deref().is_some_and(is_localhost) {
                    push(&s.src, group.name.clone(), s.port, true);
                }
            }
        }
    }
}
