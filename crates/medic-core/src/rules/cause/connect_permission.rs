use medic_parse::error_log::FailureClass;

use super::{backend_fix, Cause};
use crate::rules::group::Group;
use crate::rules::{rule, Evidence, Finding};

rule! {
    /// ## What it detects
    /// `connect() failed (13: Permission denied) while connecting to upstream`: the kernel
    /// refused nginx's connect to a TCP upstream. This is what the log alone proves; live, the
    /// finding is `selinux-denied` when SELinux is enforcing (and `socket-permission` for a unix
    /// socket).
    ///
    /// ## Why it causes 502
    /// EACCES on a TCP connect comes from a mandatory access control policy (SELinux's
    /// `httpd_can_network_connect`, an AppArmor profile) or a local firewall rule that rejects
    /// with "administratively prohibited". The backend never sees the connection; nginx
    /// answers 502 Bad Gateway.
    ///
    /// ## Evidence
    /// The failures in the error log and the `proxy_pass` line; live, what the probe saw.
    ///
    /// ## Fix
    /// Find the policy that denies it: `getenforce` and `ausearch -m avc -ts recent` (SELinux:
    /// `setsebool -P httpd_can_network_connect 1`), `dmesg | grep DENIED` (AppArmor: allow
    /// `network inet stream` in nginx's profile), `iptables -S OUTPUT` / `nft list ruleset`
    /// (a reject rule).
    pub struct ConnectPermission = "connect-permission", "the kernel denied nginx's connect to the upstream (13: Permission denied)";
    time = "2-10 min", risk = "medium";
}

impl Cause for ConnectPermission {
    fn classes(&self) -> &'static [FailureClass] {
        &[FailureClass::ConnectPermission]
    }

    fn explain(&self, g: &Group<'_>) -> Option<Finding> {
        let up = g.upstream.as_deref().unwrap_or("the upstream");
        let mut f = g.finding(
            self,
            format!("connects to {up} were denied (13: Permission denied)"),
            backend_fix(self,
                "find and relax the policy that denies nginx's connect: SELinux, AppArmor or a firewall reject",
                vec![
                    "SELinux: `getenforce`; if Enforcing, `ausearch -m avc -ts recent` and `setsebool -P httpd_can_network_connect 1`".to_string(),
                    "AppArmor: `dmesg | grep -i 'apparmor=\"DENIED\"'`; allow the connection in nginx's profile".to_string(),
                    "firewall: look for a REJECT on the OUTPUT chain: `iptables -S OUTPUT`, `nft list ruleset`".to_string(),
                ],
                vec![
                    "getenforce".to_string(),
                    "ausearch -m avc -ts recent".to_string(),
                    "iptables -S OUTPUT".to_string(),
                ]
            ),
        );
        if let Some(p) = g.probes() {
            f.evidence.push(Evidence::probe(
                "selinux",
                format!(
                    "SELinux mode: {}",
                    p.selinux.as_deref().unwrap_or("unknown (not readable)")
                ),
            ));
        }
        if let Some(t) = g.target() {
            for c in &t.facts.tcp {
                f.evidence.push(Evidence::probe(
                    "connect",
                    format!(
                        "connect to {} from the probe: {}",
                        c.address,
                        c.connect.label()
                    ),
                ));
            }
            if let Some(u) = &t.facts.unix {
                if let Some(ls) = &u.ls {
                    f.evidence.push(Evidence::probe("stat", ls.clone()));
                }
            }
        }
        Some(f)
    }
}
