use medic_parse::error_log::FailureClass;

use super::{backend_fix, Cause};
use crate::rules::group::Group;
use crate::rules::{rule, Evidence, Finding};

rule! {
    /// ## What it detects
    /// `connect() failed (13: Permission denied) while connecting to upstream` on a TCP
    /// upstream, with SELinux in enforcing mode: the policy forbids nginx (`httpd_t`) to open
    /// network connections unless the boolean `httpd_can_network_connect` is on (the default on
    /// RHEL, CentOS, Rocky, Alma and Fedora). Also a unix socket whose modes do let the worker
    /// user in while SELinux is enforcing (the socket's label is the obstacle). Live diagnosis
    /// only (the mode is read from the host).
    ///
    /// ## Why it causes 502
    /// The kernel refuses the `connect(2)` itself with EACCES: nothing reaches the backend,
    /// which may be perfectly healthy (a `curl` from a shell works, because the shell is not
    /// confined as `httpd_t`). nginx answers 502 Bad Gateway.
    ///
    /// ## Evidence
    /// The `(13: Permission denied)` failures in the error log; the `proxy_pass` line; the
    /// SELinux mode; the probe's own connect (unconfined), which succeeds.
    ///
    /// ## Fix
    /// `setsebool -P httpd_can_network_connect 1` (persistent). Confirm with `ausearch -m avc
    /// -ts recent` (denials for `nginx` with `name_connect`). For a unix socket, label it
    /// `httpd_var_run_t` (`semanage fcontext` + `restorecon`). Never `setenforce 0` for good.
    pub struct SelinuxDenied = "selinux-denied", "SELinux forbids nginx to connect to the upstream";
    time = "2 min", risk = "medium";
}

impl Cause for SelinuxDenied {
    fn classes(&self) -> &'static [FailureClass] {
        &[FailureClass::ConnectPermission]
    }

    fn explain(&self, g: &Group<'_>) -> Option<Finding> {
        let mode = g.probes()?.selinux.as_deref()?;
        if mode != "enforcing" {
            return None;
        }
        let up = g.upstream.as_deref().unwrap_or("the upstream");
        let unix = g.unix_path();
        if unix.is_some()
            && g.target()
                .and_then(|t| t.facts.unix.as_ref())
                .is_none_or(|u| u.worker.allowed != Some(true))
        {
            return None;
        }
        let fix = match unix {
            None => backend_fix(self,
                "allow nginx to make network connections: `setsebool -P httpd_can_network_connect 1`",
                vec![
                    "confirm the denials: `ausearch -m avc -ts recent | grep name_connect` (or `grep denied /var/log/audit/audit.log`)".to_string(),
                    "allow nginx to connect out, persistently: `setsebool -P httpd_can_network_connect 1`".to_string(),
                    "narrower alternative: label the backend's port as an http port: `semanage port -a -t http_port_t -p tcp PORT`".to_string(),
                ],
                vec![
                    "getsebool httpd_can_network_connect".to_string(),
                    "setsebool -P httpd_can_network_connect 1".to_string(),
                ]
            ),
            Some(path) => backend_fix(self,
                format!("give {path} a label nginx may connect to (httpd_var_run_t)"),
                vec![
                    "confirm the denials: `ausearch -m avc -ts recent | grep connectto`".to_string(),
                    format!("label the socket's path: `semanage fcontext -a -t httpd_var_run_t '{path}'` then `restorecon -v {path}`"),
                    "restart the backend so it re-creates the socket with the label".to_string(),
                ],
                vec![
                    format!("ls -Z {path}"),
                    format!("restorecon -v {path}"),
                ]
            ),
        };
        let mut f = g.finding(
            self,
            format!("SELinux (enforcing) denies nginx's connections to {up}"),
            fix,
        );
        f.evidence
            .push(Evidence::probe("selinux", format!("SELinux mode: {mode}")));
        if let Some(t) = g.target() {
            for c in &t.facts.tcp {
                f.evidence.push(Evidence::probe(
                    "connect",
                    format!(
                        "connect to {} from the probe (not confined as httpd_t): {}",
                        c.address,
                        c.connect.label()
                    ),
                ));
            }
            if let Some(u) = &t.facts.unix {
                f.evidence.push(Evidence::probe(
                    "unix.worker",
                    format!(
                        "the modes let nginx's worker user {} in ({}): the denial is not the file mode",
                        u.worker.user, u.worker.why
                    ),
                ));
            }
        }
        Some(f)
    }
}
