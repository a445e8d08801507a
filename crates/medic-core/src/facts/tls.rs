//! What the TLS probe saw of one `https://` upstream: the handshake nginx would make, the SNI x
//! version matrix, the certificates and the verify result (filled by `nginx-medic`'s TLS probe).

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

/// Everything the TLS probe learned about one upstream address.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct TlsFacts {
    pub addr: String,
    /// The SNI nginx sends (`None`: no SNI).
    pub sni: Option<String>,
    /// The name certificates were checked against.
    pub name: Option<String>,
    /// `proxy_ssl_verify`: whether nginx itself would reject a certificate that fails.
    pub verify: bool,
    /// Where the trust anchors came from: the `proxy_ssl_trusted_certificate` file, or
    /// `system` (the OpenSSL default paths); `error` when the file could not be loaded.
    pub trust: Trust,
    /// The server answered the ClientHello in plain text (the port speaks HTTP, not TLS).
    pub scheme_mismatch: Option<SchemeMismatch>,
    /// The handshake nginx would make, first; then the SNI x version matrix.
    pub variants: Vec<Variant>,
    /// The distinct leaf certificates the server presented; `Variant::certificate` indexes it.
    pub certificates: Vec<CertFacts>,
}

impl TlsFacts {
    /// The handshake made with nginx's own settings.
    pub fn as_nginx(&self) -> Option<&Variant> {
        self.variants.iter().find(|v| v.as_nginx)
    }

    /// The certificate nginx is shown, if its handshake got that far.
    pub fn nginx_certificate(&self) -> Option<&CertFacts> {
        self.as_nginx()
            .and_then(|v| v.certificate)
            .and_then(|i| self.certificates.get(i))
    }

    /// Handshakes fail without SNI and succeed with it (`tls-sni-required`).
    pub fn sni_required(&self) -> bool {
        let ok = |sni: bool| {
            self.variants
                .iter()
                .filter(|v| !v.as_nginx && v.sni.is_some() == sni)
                .any(|v| v.outcome.is_ok())
        };
        ok(true) && !ok(false)
    }
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Trust {
    /// `file` or `system`.
    pub source: String,
    pub file: Option<PathBuf>,
    /// Why the file could not be loaded (the verify results then fail with code 20).
    pub error: Option<String>,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct SchemeMismatch {
    /// The server's first bytes, non-printable ones escaped: `HTTP/1.1 400 Bad Request\r\n...`.
    pub first_bytes: String,
}

/// One handshake.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Variant {
    /// This is the handshake nginx itself would make.
    pub as_nginx: bool,
    /// The SNI sent (`None`: none).
    pub sni: Option<String>,
    /// The versions offered: `TLSv1.2`, `TLSv1.3`, or the configured range `TLSv1.2-TLSv1.3`.
    pub versions: String,
    /// Whether nginx's `proxy_ssl_protocols` include these versions.
    pub offered_by_nginx: bool,
    pub outcome: Outcome,
    /// The verify result against the trust anchors, as nginx logs it
    /// (`X509_V_OK` is code 0); `None` when no certificate was received.
    pub verify: Option<Verify>,
    /// Index into [`TlsFacts::certificates`].
    pub certificate: Option<usize>,
    pub elapsed_ms: u64,
    /// Whether the server asked for a client certificate (a `CertificateRequest`): seen in the
    /// clear up to TLS 1.2; `None` when it could not be seen (TLS 1.3 encrypts it, or the
    /// handshake ended before).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_cert_requested: Option<bool>,
}

/// How a handshake ended.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "result", rename_all = "kebab-case")]
pub enum Outcome {
    Ok {
        version: String,
        cipher: String,
    },
    /// The server sent a fatal alert: `tlsv1 alert protocol version`,
    /// `tlsv1 unrecognized name`, `sslv3 alert handshake failure`.
    Alert {
        text: String,
    },
    /// The server closed the connection mid-handshake (nginx: `peer closed connection in SSL
    /// handshake`).
    Closed,
    /// The server answered in plain text: see [`TlsFacts::scheme_mismatch`].
    NotTls,
    /// A local OpenSSL error (`wrong version number`, `no protocols available`, ...).
    Error {
        text: String,
    },
    TimedOut,
    /// The TCP connection failed.
    Connect {
        text: String,
    },
    /// Not run: the time budget was spent, or there is no name to send as SNI.
    Skipped {
        why: String,
    },
}

impl Outcome {
    pub fn is_ok(&self) -> bool {
        matches!(self, Outcome::Ok { .. })
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Verify {
    /// OpenSSL's `X509_V_*` code (0: ok, 10: expired, 18: self-signed, 20: unable to get local
    /// issuer, 62: hostname mismatch).
    pub code: i32,
    /// `X509_verify_cert_error_string()`, as in nginx's `(18:self-signed certificate)`.
    pub text: String,
}

/// A certificate as shown by the server.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CertFacts {
    /// `CN=upstream.test, O=Example`.
    pub subject: String,
    /// `DNS:upstream.test`, `IP:127.0.0.1`.
    pub sans: Vec<String>,
    pub issuer: String,
    pub self_signed: bool,
    /// RFC 3339, UTC.
    pub not_before: Option<String>,
    pub not_after: Option<String>,
    /// Now is before `not_before`.
    pub not_yet_valid: bool,
    /// Now is after `not_after`.
    pub expired: bool,
    /// Whole days until `not_after` (negative once expired).
    pub days_left: Option<i64>,
    /// Whether the names cover [`TlsFacts::name`] (`X509_check_host` rules: SAN DNS names,
    /// the CN only without them, a `*` as the whole left-most label).
    pub name_matches: Option<bool>,
    /// SHA-256 of the DER, hex.
    pub sha256: String,
    /// Certificates in the chain the server sent (leaf included).
    pub chain_len: usize,
}
