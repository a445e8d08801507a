use medic_parse::error_log::FailureClass;

use super::support::tls::{prefix_of, setting_evidence, ssl_of, tls_of, variant_evidence};
use super::{nginx_fix, Cause};
use crate::rules::group::Group;
use crate::rules::{rule, Change, Finding, Remedy, Risk};

rule! {
    /// ## What it detects
    /// The TLS handshake with an `https://` upstream fails because nginx sends no SNI (server
    /// name indication): `proxy_ssl_server_name` is `off`, nginx's default. Post-mortem, the
    /// log names it when the server says so: `SSL_do_handshake() failed (SSL: error:0A000458:SSL
    /// routines::tlsv1 unrecognized name:SSL alert number 112) while SSL handshaking to
    /// upstream`. Live, the TLS probe proves it whatever the server's alert: every handshake
    /// without SNI fails, and one with the name succeeds.
    ///
    /// ## Why it causes 502
    /// Servers that host several names on one address (CDNs, shared hosting, Kubernetes
    /// ingresses, `openssl s_server -servername_fatal`) pick the certificate by the SNI. Without
    /// it they have no certificate to show, or one nginx cannot use, and abort the handshake
    /// (`unrecognized name`, `handshake failure`). nginx logs it and answers 502.
    ///
    /// ## Evidence
    /// The handshake failures in the error log; the `proxy_pass` line and
    /// `proxy_ssl_server_name` (or its default, off); live, the probe's handshakes with and
    /// without SNI.
    ///
    /// ## Fix
    /// Add `proxy_ssl_server_name on;` next to the `proxy_pass` (and `proxy_ssl_name NAME;`
    /// when the `proxy_pass` names an IP address or an `upstream {}` group rather than the
    /// server's name); `nginx -t`; `systemctl reload nginx`.
    ///
    /// `nginx-medic fix` does it (risk low): `*_ssl_server_name on;` in the block of the `*_pass`
    /// (and `*_ssl_name` when the URL names an address and the probe's handshake used a name);
    /// verified by nginx's own handshake in the probe.
    pub struct TlsSniRequired = "tls-sni-required", "the upstream requires SNI and nginx sends none";
    time = "2 min", risk = "low";
}

impl Cause for TlsSniRequired {
    fn classes(&self) -> &'static [FailureClass] {
        &[FailureClass::TlsHandshake]
    }

    fn explain(&self, g: &Group<'_>) -> Option<Finding> {
        let tls = tls_of(g);
        let ssl = ssl_of(g);
        // nginx sends no SNI: the pass says so, or (no pass known) the probe made nginx's
        // handshake without one.
        let no_sni = match ssl {
            Some((_, _, s)) => !s.server_name.value,
            None => tls.is_none_or(|t| t.sni.is_none()),
        };
        if !no_sni {
            return None;
        }
        let probe_says = tls.is_some_and(|t| t.sni_required());
        let log_says = g.detail.is_some_and(|d| d.contains("unrecognized name"));
        if !probe_says && !log_says {
            return None;
        }
        let up = g.upstream.as_deref().unwrap_or("the upstream");
        let prefix = prefix_of(g);
        let name = tls
            .and_then(|t| t.name.clone())
            .or_else(|| ssl.and_then(|(_, _, s)| s.name.value.as_ref().map(|n| n.to_string())))
            .or_else(|| {
                g.passes.first().and_then(|(_, p)| {
                    let host = p.target.display();
                    let host = host.rsplit_once(':').map_or(host.as_str(), |(h, _)| h);
                    (host.parse::<std::net::IpAddr>().is_err() && !host.starts_with('['))
                        .then(|| host.to_string())
                })
            });
        let why = if probe_says {
            "handshakes without SNI fail, with SNI they succeed"
        } else {
            "the server answers `unrecognized name`"
        };
        let mut steps = vec![format!(
            "add `{prefix}_ssl_server_name on;` next to the `{}` line",
            g.passes
                .first()
                .map_or("proxy_pass", |(_, p)| p.kind.directive())
        )];
        match &name {
            Some(n) => steps.push(format!(
                "nginx will send `{n}` (`{prefix}_ssl_name`, default: the host of the `{prefix}_pass` URL); set `{prefix}_ssl_name {n};` if that is not the name the server expects"
            )),
            None => steps.push(format!(
                "the `{prefix}_pass` names an address, not the server's name: also set `{prefix}_ssl_name NAME;` (nginx never sends an IP address as SNI)"
            )),
        }
        let mut f = g.finding(
            self,
            format!(
                "{up} requires SNI, and nginx sends none ({prefix}_ssl_server_name off): {why}"
            ),
            nginx_fix(
                self,
                format!("turn on SNI: `{prefix}_ssl_server_name on;`"),
                steps,
            ),
        );
        // nginx sends the `*_pass` host as SNI, or `*_ssl_name`; never an IP address. So the
        // machine fix needs a name: the URL's, the one configured, or the one the probe's
        // successful handshake used.
        let host_is_name = g.passes.first().is_some_and(|(_, p)| match &p.target {
            crate::config::Target::Host { host, .. } => {
                host.parse::<std::net::IpAddr>().is_err() && !host.starts_with('[')
            }
            _ => false,
        });
        let ssl_name_set = ssl.is_some_and(|(_, _, s)| s.name.value.is_some());
        let probe_name = tls.and_then(|t| t.name.clone());
        let mut changes = Vec::new();
        for (_, p) in &g.passes {
            changes.push(Change::Set {
                near: p.src.clone(),
                name: format!("{prefix}_ssl_server_name"),
                args: vec!["on".into()],
            });
            if !host_is_name && !ssl_name_set {
                if let Some(n) = &probe_name {
                    changes.push(Change::Set {
                        near: p.src.clone(),
                        name: format!("{prefix}_ssl_name"),
                        args: vec![n.clone()],
                    });
                }
            }
        }
        if !changes.is_empty() && (host_is_name || ssl_name_set || probe_name.is_some()) {
            f.fix = f.fix.clone().with_remedy(Remedy::new(Risk::Low, changes));
        }
        if let Some((_, _, s)) = ssl {
            f.evidence.push(setting_evidence(&s.server_name, || {
                format!("{prefix}_ssl_server_name off; (nginx's default: no SNI)")
            }));
        }
        if let Some(tls) = tls {
            variant_evidence(tls, &mut f);
        }
        Some(f)
    }
}
