use medic_parse::error_log::FailureClass;

use super::support::tls::{cert_evidence, verify_kind, VerifyKind};
use super::support::tls::{prefix_of, setting_evidence, ssl_of, tls_of};
use super::{nginx_fix, Cause};
use crate::rules::group::Group;
use crate::rules::{rule, Finding};

rule! {
    /// ## What it detects
    /// `upstream SSL certificate does not match "NAME" while SSL handshaking to upstream` (or
    /// the verify error `(62:hostname mismatch)`): with `proxy_ssl_verify on`, the upstream's
    /// certificate chain verifies, but none of its names covers the name nginx checks,
    /// `proxy_ssl_name` (default: the host of the `proxy_pass` URL, an IP address or an
    /// `upstream {}` group name included). The log text alone proves it; live, the probe shows
    /// the names the certificate holds.
    ///
    /// ## Why it causes 502
    /// After the chain, nginx checks the certificate's subjectAltName DNS names (the CN only
    /// when there are none) against `proxy_ssl_name`. A certificate for `api.example.com`
    /// reached as `proxy_pass https://10.0.0.5` or `https://backend` (a group name) fails it:
    /// nginx closes the connection and answers 502.
    ///
    /// ## Evidence
    /// The errors in the error log with the name nginx checked; the `proxy_pass` line and
    /// `proxy_ssl_name`; live, the certificate's subject and subjectAltNames.
    ///
    /// ## Fix
    /// Set `proxy_ssl_name` to a name the certificate holds (`proxy_ssl_name api.example.com;`,
    /// usually with `proxy_ssl_server_name on;`), or reissue the upstream's certificate with the
    /// name nginx uses in its subjectAltName; `nginx -t`; `systemctl reload nginx`.
    pub struct TlsNameMismatch = "tls-name-mismatch", "the upstream's certificate does not cover the name nginx checks";
    time = "5 min", risk = "low";
}

impl Cause for TlsNameMismatch {
    fn classes(&self) -> &'static [FailureClass] {
        &[FailureClass::TlsVerify]
    }

    fn explain(&self, g: &Group<'_>) -> Option<Finding> {
        if verify_kind(g)? != VerifyKind::NameMismatch {
            return None;
        }
        let up = g.upstream.as_deref().unwrap_or("the upstream");
        let tls = tls_of(g);
        let ssl = ssl_of(g);
        let prefix = prefix_of(g);
        // nginx names the name it checked: `does not match "upstream.test"`.
        let name = g
            .log
            .and_then(|l| quoted_after(&l.first_line.text, "does not match \""))
            .or_else(|| tls.and_then(|t| t.name.clone()))
            .or_else(|| ssl.and_then(|(_, _, s)| s.name.value.as_ref().map(|n| n.to_string())));
        let cert = tls.and_then(|t| t.nginx_certificate().or(t.certificates.first()));
        let names: Vec<String> = cert
            .map(|c| {
                c.sans
                    .iter()
                    .filter_map(|s| s.strip_prefix("DNS:"))
                    .map(str::to_string)
                    .collect()
            })
            .unwrap_or_default();
        let checked = name.as_deref().unwrap_or("the name nginx checks");
        let title = if names.is_empty() {
            format!("the certificate of {up} does not cover {checked}")
        } else {
            format!(
                "the certificate of {up} is for {}, not {checked}",
                names.join(", ")
            )
        };
        let use_name = names
            .iter()
            .find(|n| !n.starts_with('*'))
            .cloned()
            .unwrap_or_else(|| "NAME".to_string());
        let mut f = g.finding(
            self,
            title,
            nginx_fix(self,
                format!("make `{prefix}_ssl_name` a name the certificate holds, or reissue the certificate for {checked}"),
                vec![
                    format!("if the upstream is meant to be reached as {use_name}: `{prefix}_ssl_name {use_name};` and `{prefix}_ssl_server_name on;` next to the `{prefix}_pass` line"),
                    format!("or reissue the upstream's certificate with {checked} in its subjectAltName"),
                    format!("do not turn `{prefix}_ssl_verify` off: that accepts any certificate"),
                ]
            ),
        );
        if let Some((_, _, s)) = ssl {
            if s.name.src.is_some() {
                f.evidence.push(setting_evidence(&s.name, String::new));
            }
        }
        cert_evidence(g, &mut f);
        Some(f)
    }
}

/// The text between `open` and the next `"`.
fn quoted_after(text: &str, open: &str) -> Option<String> {
    let i = text.find(open)? + open.len();
    let n = text[i..].find('"')?;
    Some(text[i..i + n].to_string())
}
