use medic_parse::error_log::FailureClass;

use super::{nginx_fix, Cause};
use crate::rules::group::Group;
use crate::rules::{rule, Evidence, Finding};

rule! {
    /// ## What it detects
    /// `connect() failed (99: Cannot assign requested address) while connecting to upstream`:
    /// the kernel had no free local port for a new connection to the upstream (or
    /// `proxy_bind` names an address the host does not have).
    ///
    /// ## Why it causes 502
    /// Each connection to one upstream `IP:PORT` needs its own local port from
    /// `net.ipv4.ip_local_port_range` (about 28 000 by default). Without upstream keepalive
    /// nginx opens and closes a connection per request, and every closed one stays in
    /// TIME_WAIT for 60 s: past ~470 requests a second to one backend the range runs out and
    /// connects fail at once, so nginx answers 502 Bad Gateway.
    ///
    /// ## Evidence
    /// The failures in the error log (count, per minute); the `*_pass` line; the upstream
    /// block's `keepalive` when there is one.
    ///
    /// ## Fix
    /// Reuse connections: `keepalive 32;` in an `upstream {}` block, with `proxy_http_version
    /// 1.1;` and `proxy_set_header Connection "";` in the location; then `nginx -t` and
    /// `systemctl reload nginx`. Widen the range (`sysctl -w
    /// net.ipv4.ip_local_port_range="15000 65000"`) and confirm with `ss -s` (TIME_WAIT count).
    /// Check any `proxy_bind` address exists on the host.
    pub struct PortsExhausted = "ports-exhausted", "no free local port for new upstream connections";
    time = "10 min", risk = "medium";
}

impl Cause for PortsExhausted {
    fn classes(&self) -> &'static [FailureClass] {
        &[FailureClass::PortsExhausted]
    }

    fn explain(&self, g: &Group<'_>) -> Option<Finding> {
        let up = g.upstream.as_deref().unwrap_or("the upstream");
        let mut fix = nginx_fix(self,
            format!("reuse connections to {up} (upstream keepalive) and widen the local port range"),
            vec![
                "confirm: `ss -s` shows tens of thousands of TIME_WAIT, `sysctl net.ipv4.ip_local_port_range`".to_string(),
                format!("put {up} in an `upstream {{}}` block with `keepalive 32;`, and in the location `proxy_http_version 1.1;` and `proxy_set_header Connection \"\";`"),
                "widen the range: `sysctl -w net.ipv4.ip_local_port_range=\"15000 65000\"` (persist it in /etc/sysctl.d/)".to_string(),
                "if the location uses `proxy_bind`, check that address exists on the host (`ip addr`)".to_string(),
            ]
        );
        fix.commands.insert(0, "ss -s".to_string());
        let mut f = g.finding(
            self,
            format!("no free local port to connect to {up} (99: Cannot assign requested address)"),
            fix,
        );
        let keepalive = g
            .passes
            .iter()
            .find_map(|(m, p)| m.group(p).and_then(|u| u.keepalive.as_ref()));
        match keepalive.and_then(|k| k.src.as_ref()) {
            Some(src) => f.evidence.push(Evidence::config(src)),
            None if !g.passes.is_empty() => f.evidence.push(Evidence::other(
                "config",
                "keepalive".to_string(),
                format!("no upstream keepalive for {up}: a new connection (and a local port) per request"),
            )),
            None => {}
        }
        Some(f)
    }
}
