use super::support::tls::cert_text;
use super::{backend_fix, Cause};
use crate::facts::Facts;
use crate::rules::{rule, Evidence, Finding, RuleDoc};

/// Warn this many days ahead (`causes.md` §2b).
const DAYS: i64 = 14;

rule! {
    /// ## What it detects
    /// The certificate an `https://` upstream shows nginx expires within 14 days (the TLS
    /// probe reads its `notAfter`). Nothing fails yet: this is a warning, found live only.
    ///
    /// ## Why it causes 502
    /// Once it expires, every handshake with `proxy_ssl_verify on` fails with `upstream SSL
    /// certificate verify error: (10:certificate has expired)` and nginx answers 502 Bad
    /// Gateway (`tls-expired`). Clients that talk to the upstream directly fail too.
    ///
    /// ## Evidence
    /// The probe's view of the certificate: subject, names, issuer, `notBefore`/`notAfter` and
    /// the days left.
    ///
    /// ## Fix
    /// Renew the certificate now (`certbot renew`, or your CA) and reload the upstream's server;
    /// if it should renew itself, find out why it did not (`systemctl list-timers`, the ACME
    /// client's log).
    pub struct CertExpiresSoon = "cert-expires-soon", "an upstream's certificate expires within 14 days";
    time = "10-30 min", risk = "low";
}

impl Cause for CertExpiresSoon {
    fn check(&self, facts: &Facts, out: &mut Vec<Finding>) {
        let Some(p) = &facts.probes else { return };
        let mut seen: Vec<(&str, &str)> = Vec::new();
        for t in &p.targets {
            let Some(tls) = &t.tls else { continue };
            let Some(c) = tls.nginx_certificate() else {
                continue;
            };
            let Some(days) = c.days_left else { continue };
            if c.expired || c.not_yet_valid || !(0..=DAYS).contains(&days) {
                continue;
            }
            let up = t.facts.upstream.as_str();
            if seen.contains(&(up, c.sha256.as_str())) {
                continue;
            }
            seen.push((up, c.sha256.as_str()));
            let when = c.not_after.as_deref().unwrap_or("?");
            let mut f = Finding::latent(
                self.id(),
                format!("the certificate of {up} expires in {days} days ({when})"),
                vec![Evidence::probe(
                    "tls",
                    format!("{}: {}", tls.addr, cert_text(c)),
                )],
                backend_fix(self,
                    format!("renew the certificate of {up} before {when}"),
                    vec![
                        format!("renew the certificate of the server behind {up} (`certbot renew`, or your CA), install it with its chain, reload that server"),
                        "if renewal is automatic, find out why it has not run: `systemctl list-timers`, the ACME client's log".to_string(),
                        format!("check: `openssl s_client -connect {}{} </dev/null 2>/dev/null | openssl x509 -noout -enddate`", tls.addr, tls.sni.as_deref().or(tls.name.as_deref()).map(|n| format!(" -servername {n}")).unwrap_or_default()),
                    ],
                    vec![format!(
                        "openssl s_client -connect {} </dev/null 2>/dev/null | openssl x509 -noout -enddate",
                        tls.addr
                    )]
                ),
            )
            .upstream(up);
            f.count = Some(0);
            for pass in &t.facts.passes {
                f.evidence.push(Evidence::other(
                    "config",
                    pass.at.clone(),
                    format!("{} {};", pass.directive, pass.url),
                ));
            }
            out.push(f);
        }
    }
}
