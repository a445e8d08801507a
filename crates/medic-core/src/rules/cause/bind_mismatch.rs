use medic_parse::error_log::FailureClass;

use super::{nginx_fix, Cause};
use crate::rules::group::{parse_ip_port, Group};
use crate::rules::remedy::retarget;
use crate::rules::{rule, Address, Evidence, Finding, Remedy, Risk};

rule! {
    /// ## What it detects
    /// nginx's connects to `ADDR:PORT` are refused, and the probe finds nothing on that address
    /// but a listener on the same port at another one: the app is bound to `[::1]` and nginx
    /// dials `127.0.0.1`, or to `127.0.0.2`, or to a public IP only. (`localhost` resolving to
    /// `::1` first is the classic way to get here.)
    ///
    /// When the target is a name with several addresses (`proxy_pass http://localhost:3000`:
    /// `[::1]` and `127.0.0.1`) and the app listens on one of them, nginx is refused on the
    /// other, logs it, and retries the next address: the client is served, every request pays
    /// a refused connect and a retry. That finding is a `warning`.
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
    ///
    /// `nginx-medic fix` does it when the backend listens on one address only (risk low): the host
    /// of the `*_pass` URL or upstream `server` becomes that address, the port as written; verified
    /// by a connect.
    pub struct BindMismatch = "bind-mismatch", "the backend listens on the same port at another address";
    time = "5-10 min", risk = "medium";
}

impl BindMismatch {
    /// A name with several addresses (`localhost`: `[::1]` and `127.0.0.1`) where the address
    /// that refused is not the one the backend listens on: nginx tries the addresses in turn,
    /// so the refusal costs a retry, and the client is served by the next address (with the
    /// default `proxy_next_upstream error timeout`). A warning, not an outage.
    fn other_address_serves(
        &self,
        g: &Group<'_>,
        t: &crate::facts::ProbedTarget,
    ) -> Option<Finding> {
        let refused = g.upstream.as_deref()?;
        g.ip_port()?;
        let refused_now = t
            .facts
            .tcp
            .iter()
            .any(|c| c.address == refused && c.connect == crate::facts::Connect::Refused);
        let serving: Vec<&str> = t
            .facts
            .tcp
            .iter()
            .filter(|c| c.connect.is_ok())
            .map(|c| c.address.as_str())
            .collect();
        if !refused_now || serving.is_empty() || t.facts.upstream == refused {
            return None;
        }
        let name = &t.facts.upstream;
        let at = serving.join(", ");
        let mut f = g.finding(
            self,
            format!("{name} resolves to {refused} too, where nothing listens: nginx tries it, is refused, and retries {at}"),
            nginx_fix(self,
                format!("make {name} mean only the address the backend listens on, or bind the app to every address {name} resolves to"),
                vec![
                    format!("point nginx at the address the app listens on: `proxy_pass http://{at};` instead of {name}"),
                    format!("or bind the app to {refused} as well (both loopbacks) and restart it"),
                ]
            ),
        );
        f.severity = crate::rules::Severity::Warning;
        // One address serves: the name becomes that address (the port as written).
        point_at_the_only(
            g,
            &mut f,
            serving
                .iter()
                .filter_map(|a| parse_ip_port(a).map(|(ip, _)| ip)),
        );
        super::connect_evidence(t, &mut f);
        f.evidence.push(Evidence::probe(
            "resolve",
            format!(
                "{name} resolves to {}; nginx tries them in turn (proxy_next_upstream error), so a refusal on {refused} costs each request a retry",
                t.facts.addresses.join(", ")
            ),
        ));
        Some(f)
    }
}

impl Cause for BindMismatch {
    fn classes(&self) -> &'static [FailureClass] {
        &[FailureClass::ConnectRefused]
    }

    fn explain(&self, g: &Group<'_>) -> Option<Finding> {
        let t = g.target()?;
        if let Some(f) = self.other_address_serves(g, t) {
            return Some(f);
        }
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
            nginx_fix(self,
                format!("make nginx and the backend use the same address: {directive} to {at}, or bind the app to {up}"),
                vec![
                    format!("either point nginx at the bound address: `{directive} http://{at};`"),
                    format!("or bind the app to {up} (or to both loopbacks) and restart it"),
                ]
            ),
        );
        // Certain when the backend listens on one address only (one socket, or one per
        // family is not that): nginx is pointed at it, the port unchanged.
        point_at_the_only(
            g,
            &mut f,
            t.facts.same_port_elsewhere.iter().filter_map(|l| l.ip),
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

/// The machine fix when the backend serves on exactly one of `addresses`: nginx pointed there.
fn point_at_the_only(
    g: &Group<'_>,
    f: &mut Finding,
    addresses: impl Iterator<Item = std::net::IpAddr>,
) {
    let mut hosts: Vec<String> = addresses.map(host_of).collect();
    hosts.sort();
    hosts.dedup();
    if let [only] = hosts.as_slice() {
        let changes = retarget(g, Address::Host(only.clone()));
        if !changes.is_empty() {
            f.fix = f.fix.clone().with_remedy(Remedy::new(Risk::Low, changes));
        }
    }
}

/// An address as a URL's host: IPv6 in brackets.
fn host_of(ip: std::net::IpAddr) -> String {
    match ip {
        std::net::IpAddr::V6(v6) => format!("[{v6}]"),
        std::net::IpAddr::V4(v4) => v4.to_string(),
    }
}
