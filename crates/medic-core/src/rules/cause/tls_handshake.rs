use medic_parse::error_log::FailureClass;

use super::{nginx_fix, Cause};
use crate::config::{Model, Pass, Ssl};
use crate::facts::tls::{Outcome, TlsFacts, Variant};
use crate::rules::group::Group;
use crate::rules::{rule, Evidence, Finding};

rule! {
    /// ## What it detects
    /// `SSL_do_handshake() failed (SSL: error:...) while SSL handshaking to upstream`, or `peer
    /// closed connection in SSL handshake while SSL handshaking to upstream`: nginx
    /// (`proxy_pass https://`, `grpc_pass grpcs://`, `uwsgi_pass suwsgi://`) could not complete
    /// a TLS handshake with the upstream. This is what the log text alone proves; the causes
    /// tried before it name the reason when the evidence holds (`scheme-mismatch`,
    /// `tls-sni-required`, `tls-protocol-mismatch`).
    ///
    /// ## Why it causes 502
    /// Without a handshake nginx has no connection to send the request on. It logs the OpenSSL
    /// reason (`sslv3 alert handshake failure`, `no shared cipher`, `tlsv1 alert internal
    /// error`, ...), tries the next server of the group if any, and answers 502 Bad Gateway.
    ///
    /// ## Evidence
    /// The handshake failures in the error log with OpenSSL's reason; the `*_pass` line; live,
    /// the TLS probe's handshakes: the one nginx makes with its own `proxy_ssl_*` settings, then
    /// with and without SNI and with each TLS version, and how each ended.
    ///
    /// ## Fix
    /// Reproduce the handshake nginx makes with `openssl s_client -connect HOST:PORT
    /// -servername NAME`, read the upstream's TLS log, and align `proxy_ssl_protocols`,
    /// `proxy_ssl_ciphers`, `proxy_ssl_server_name`/`proxy_ssl_name` and any client certificate
    /// (`proxy_ssl_certificate`) with what the upstream requires; `nginx -t`; `systemctl reload
    /// nginx`.
    pub struct TlsHandshake = "tls-handshake", "the TLS handshake with the upstream fails";
    time = "5-10 min", risk = "low";
}

impl Cause for TlsHandshake {
    fn classes(&self) -> &'static [FailureClass] {
        &[FailureClass::TlsHandshake]
    }

    fn explain(&self, g: &Group<'_>) -> Option<Finding> {
        let up = g.upstream.as_deref().unwrap_or("the upstream");
        let tls = tls_of(g);
        let reason = g.detail.map(str::to_string).or_else(|| {
            tls.and_then(TlsFacts::as_nginx)
                .map(|v| outcome_text(&v.outcome))
        });
        let title = match &reason {
            Some(r) => format!("the TLS handshake with {up} fails: {r}"),
            None => format!("the TLS handshake with {up} fails"),
        };
        let prefix = prefix_of(g);
        let mut f = g.finding(
            self,
            title,
            nginx_fix(self,
                format!("find out what the upstream {up} expects of the handshake and set nginx's {prefix}_ssl_* to match"),
                vec![
                    format!("reproduce the handshake: `{}`", s_client(g, tls)),
                    "read the upstream's own TLS log for why it refused the handshake".to_string(),
                    format!("align `{prefix}_ssl_protocols`, `{prefix}_ssl_ciphers`, `{prefix}_ssl_server_name on;` / `{prefix}_ssl_name`, and a client certificate (`{prefix}_ssl_certificate`) if the upstream requires one"),
                ]
            ),
        );
        if let Some(tls) = tls {
            variant_evidence(tls, &mut f);
        }
        Some(f)
    }
}

/// The TLS probe's facts of the group's first target that has them.
pub(super) fn tls_of<'f>(g: &Group<'f>) -> Option<&'f TlsFacts> {
    g.targets.iter().find_map(|t| t.tls.as_ref())
}

/// The first pass to the upstream that talks TLS, with its `*_ssl_*` settings.
pub(super) fn ssl_of<'f>(g: &Group<'f>) -> Option<(&'f Model, &'f Pass, &'f Ssl)> {
    g.passes
        .iter()
        .find_map(|(m, p)| Some((*m, *p, p.ssl.as_ref()?)))
}

/// The directive prefix of the group's pass (`proxy`, `grpc`, `uwsgi`).
pub(super) fn prefix_of(g: &Group<'_>) -> &'static str {
    g.passes.first().map_or("proxy", |(_, p)| p.kind.prefix())
}

/// The `openssl s_client` command that makes nginx's handshake by hand.
pub(super) fn s_client(g: &Group<'_>, tls: Option<&TlsFacts>) -> String {
    let addr = tls
        .map(|t| t.addr.clone())
        .or_else(|| g.upstream.clone())
        .unwrap_or_else(|| "HOST:PORT".to_string());
    let name = tls
        .and_then(|t| t.sni.clone().or_else(|| t.name.clone()))
        .map(|n| format!(" -servername {n}"))
        .unwrap_or_default();
    format!("openssl s_client -connect {addr}{name} </dev/null")
}

/// How a handshake ended, in a few words.
pub(super) fn outcome_text(o: &Outcome) -> String {
    match o {
        Outcome::Ok { version, cipher } => format!("ok ({version}, {cipher})"),
        Outcome::Alert { text } => format!("the server sent the alert `{text}`"),
        Outcome::Closed => "the server closed the connection mid-handshake".to_string(),
        Outcome::NotTls => "the server answered in plain text, not TLS".to_string(),
        Outcome::Error { text } => format!("failed: {text}"),
        Outcome::TimedOut => "timed out".to_string(),
        Outcome::Connect { text } => format!("the connection failed: {text}"),
        Outcome::Skipped { why } => format!("not tried: {why}"),
    }
}

/// `nginx's handshake (no SNI, TLSv1.2-TLSv1.3): ...` for one variant.
pub(super) fn variant_text(v: &Variant) -> String {
    let who = if v.as_nginx {
        "nginx's own handshake"
    } else {
        "handshake"
    };
    let sni = v
        .sni
        .as_deref()
        .map_or("no SNI".to_string(), |s| format!("SNI {s}"));
    let offered = if v.offered_by_nginx || v.as_nginx {
        ""
    } else {
        ", a version nginx does not offer"
    };
    format!(
        "{who} ({sni}, {}{offered}): {}",
        v.versions,
        outcome_text(&v.outcome)
    )
}

/// One evidence item per handshake the TLS probe made.
pub(super) fn variant_evidence(tls: &TlsFacts, f: &mut Finding) {
    for v in &tls.variants {
        f.evidence.push(Evidence::probe(
            "tls",
            format!("{}: {}", tls.addr, variant_text(v)),
        ));
    }
}

/// A setting as evidence: its directive, or `NAME VALUE (nginx's default)`.
pub(super) fn setting_evidence<T>(
    eff: &crate::config::Eff<T>,
    default_text: impl FnOnce() -> String,
) -> Evidence {
    match &eff.src {
        Some(src) => Evidence::config(src),
        None => Evidence::other("config", "default".to_string(), default_text()),
    }
}
