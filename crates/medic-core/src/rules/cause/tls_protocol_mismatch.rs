use medic_parse::error_log::FailureClass;

use super::support::tls::{prefix_of, setting_evidence, ssl_of, tls_of, variant_evidence};
use super::{nginx_fix, Cause};
use crate::facts::tls::{Outcome, TlsFacts};
use crate::rules::group::Group;
use crate::rules::{rule, Finding};

/// OpenSSL reasons that say the two sides share no protocol version.
const REASONS: &[&str] = &[
    "protocol version",
    "unsupported protocol",
    "no protocols available",
    "version too low",
];

rule! {
    /// ## What it detects
    /// nginx and the upstream share no TLS version: `proxy_ssl_protocols` (default `TLSv1
    /// TLSv1.1 TLSv1.2 TLSv1.3` since nginx 1.23.4, without `TLSv1.3` before) and the versions
    /// the upstream accepts do not overlap. The log says so with OpenSSL's reason:
    /// `SSL_do_handshake() failed (SSL: error:0A00042E:SSL routines::tlsv1 alert protocol
    /// version:SSL alert number 70) while SSL handshaking to upstream`, or `unsupported
    /// protocol`, `no protocols available`, `version too low`. Live, the TLS probe proves it:
    /// every handshake with a version nginx offers fails, one with a version nginx does not
    /// offer succeeds.
    ///
    /// ## Why it causes 502
    /// A TLS 1.3-only upstream and `proxy_ssl_protocols TLSv1.2;`, or a legacy upstream that
    /// only speaks TLS 1.0 while nginx's OpenSSL refuses it: the ClientHello offers nothing the
    /// server accepts, the handshake aborts, and nginx answers 502.
    ///
    /// ## Evidence
    /// The handshake failures in the error log; the `proxy_pass` line and
    /// `proxy_ssl_protocols` (or its default); live, the probe's handshake per TLS version,
    /// with the ones nginx offers marked.
    ///
    /// ## Fix
    /// Let `proxy_ssl_protocols` include a version the upstream speaks (`proxy_ssl_protocols
    /// TLSv1.2 TLSv1.3;`), or upgrade a legacy upstream; `nginx -t`; `systemctl reload nginx`.
    pub struct TlsProtocolMismatch = "tls-protocol-mismatch", "nginx and the upstream share no TLS version";
    time = "5 min", risk = "medium";
}

impl Cause for TlsProtocolMismatch {
    fn classes(&self) -> &'static [FailureClass] {
        &[FailureClass::TlsHandshake]
    }

    fn explain(&self, g: &Group<'_>) -> Option<Finding> {
        let tls = tls_of(g);
        let log_says = g.detail.filter(|d| REASONS.iter().any(|r| d.contains(r)));
        let accepted = tls.map(accepted_elsewhere).unwrap_or_default();
        if log_says.is_none() && accepted.is_empty() {
            return None;
        }
        let up = g.upstream.as_deref().unwrap_or("the upstream");
        let prefix = prefix_of(g);
        let ssl = ssl_of(g);
        let configured = ssl
            .map(|(_, _, s)| s.protocols.value.join(" "))
            .filter(|s| !s.is_empty());
        let ours = configured.as_deref().map_or_else(
            || format!("{prefix}_ssl_protocols"),
            |c| format!("{prefix}_ssl_protocols {c}"),
        );
        let title = if accepted.is_empty() {
            format!(
                "nginx and {up} share no TLS version ({ours}): {}",
                log_says.unwrap_or("protocol version")
            )
        } else {
            format!(
                "nginx and {up} share no TLS version: {ours}, the upstream accepts {}",
                accepted.join(" ")
            )
        };
        let wanted = if accepted.is_empty() {
            "TLSv1.2 TLSv1.3".to_string()
        } else {
            let mut v: Vec<String> = configured
                .as_deref()
                .unwrap_or("")
                .split_whitespace()
                .map(str::to_string)
                .collect();
            for a in &accepted {
                if !v.contains(a) {
                    v.push(a.clone());
                }
            }
            v.join(" ")
        };
        let mut f = g.finding(
            self,
            title,
            nginx_fix(self,
                format!("let `{prefix}_ssl_protocols` include a version {up} accepts"),
                vec![
                    format!("set `{prefix}_ssl_protocols {wanted};` next to the `{prefix}_pass` line"),
                    "if the upstream only speaks TLSv1 or TLSv1.1, upgrade it rather than weakening nginx (OpenSSL 3 refuses them at its default security level)".to_string(),
                    format!("check the upstream's versions: `openssl s_client -connect {} -tls1_2 </dev/null` (and `-tls1_3`)", tls.map_or(up, |t| t.addr.as_str())),
                ]
            ),
        );
        if let Some((_, _, s)) = ssl {
            f.evidence.push(setting_evidence(&s.protocols, || {
                format!(
                    "{prefix}_ssl_protocols {}; (nginx's default)",
                    s.protocols.value.join(" ")
                )
            }));
        }
        if let Some(tls) = tls {
            variant_evidence(tls, &mut f);
        }
        Some(f)
    }
}

/// The versions the upstream accepts that nginx does not offer, when every handshake with a
/// version nginx offers failed (skipped ones tell nothing); empty otherwise.
fn accepted_elsewhere(tls: &TlsFacts) -> Vec<String> {
    let tried = |o: &Outcome| !matches!(o, Outcome::Skipped { .. });
    let offered: Vec<_> = tls
        .variants
        .iter()
        .filter(|v| (v.offered_by_nginx || v.as_nginx) && tried(&v.outcome))
        .collect();
    if offered.is_empty() || offered.iter().any(|v| v.outcome.is_ok()) {
        return Vec::new();
    }
    let mut out: Vec<String> = Vec::new();
    for v in &tls.variants {
        if !v.as_nginx && !v.offered_by_nginx && v.outcome.is_ok() && !out.contains(&v.versions) {
            out.push(v.versions.clone());
        }
    }
    out
}
