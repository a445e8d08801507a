use medic_parse::error_log::FailureClass;

use super::{nginx_fix, Cause};
use crate::diagnose::Group;
use crate::rules::{rule, Evidence, Finding};

rule! {
    /// ## What it detects
    /// nginx's connects to `ADDR:PORT` are refused, and the probe finds nothing on that address
    /// but a listener on the same port at another one: the app is bound to `[::1]` and nginx
    /// dials `127.0.0.1`, or to `127.0.0.2`, or to a public IP only. (`localhost` resolving to
    /// `::1` first is the classic way to get here.)
    ///
    /// ## Why it causes 502
    /// A TCP listener only accepts connections to the address it is bound to (or to every
    /// address of its family with `0.0.0.0` / `::`). The app runs fine, but not where nginx
    /// looks: every connect is refused and nginx answers 502.
    ///
    /// ## Evidence
    /// The refusals in the error log; the `proxy_pass` line; the refused connect to the target;
    /// the listener on the same port at the other address, with its process.
    ///
    /// ## Fix
    /// Bind the app to the address nginx uses (`127.0.0.1`, or both loopbacks), or point
    /// `proxy_pass` at the address it is bound to (`proxy_pass http://[::1]:3000;`), then
    /// `nginx -t` and `systemctl reload nginx`.
    /// Time: 5-10 min. Risk: medium (the app's bind address may be set in several places).
    pub struct BindMismatch = "bind-mismatch", "the backend listens on the same port at another address";
}

impl Cause for BindMismatch {
    fn classes(&self) -> &'static [FailureClass] {
        &[FailureClass::ConnectRefused]
    }

    fn explain(&self, g: &Group<'_>) -> Option<Finding> {
        let t = g.target()?;
        if t.facts.listener.is_some() || t.facts.same_port_elsewhere.is_empty() {
            return None;
        }
        let up = g.upstream.as_deref().unwrap_or("the upstream");
        let other = &t.facts.same_port_elsewhere[0];
        let at = other.display();
        let who = other
            .processes
            .first()
            .map(|p| format!(" ({} pid {})", p.program, p.pid))
            .unwrap_or_default();
        let directive = g
            .passes
            .first()
            .map_or("proxy_pass", |(_, p)| p.kind.directive());
        let mut f = g.finding(
            self,
            format!("nginx connects to {up}, but the backend listens on {at}"),
            nginx_fix(
                format!("make nginx and the backend use the same address: {directive} to {at}, or bind the app to {up}"),
                vec![
                    format!("either point nginx at the bound address: `{directive} http://{at};`"),
                    format!("or bind the app to {up} (or to both loopbacks) and restart it"),
                ],
                "5-10 min",
                "medium",
            ),
        );
        super::connect_evidence(t, &mut f);
        for l in &t.facts.same_port_elsewhere {
            f.evidence.push(Evidence::probe(
                "listeners",
                format!("listening on {}{who}", l.display()),
            ));
        }
        Some(f)
    }
}
