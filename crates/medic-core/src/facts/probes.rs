//! What the probes saw of each upstream target: connects, unix socket files, HTTP and FastCGI
//! answers.

use serde::{Deserialize, Serialize};

use super::Listener;

/// The outcome of one `connect(2)`, in the terms of nginx's error log (`causes.md` §1).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "state", rename_all = "kebab-case")]
pub enum Connect {
    /// Connected (and closed again at once).
    Ok { latency_ms: f64 },
    /// ECONNREFUSED: nothing listens (TCP), or a stale unix socket file.
    Refused,
    /// No answer within the effective `*_connect_timeout`.
    TimedOut { after_ms: u64 },
    /// EACCES / EPERM: for this process (a unix socket's mode, SELinux, a firewall's reject).
    Denied { error: String },
    /// EAGAIN on a unix socket: the listen backlog is full.
    BacklogFull,
    /// ENOENT: the unix socket file does not exist.
    Missing,
    /// Another error (`EHOSTUNREACH`, `ENETUNREACH`, ...), with the OS's text.
    Error { error: String },
}

impl Connect {
    /// A short word for the text report.
    pub fn label(&self) -> &'static str {
        match self {
            Connect::Ok { .. } => "ok",
            Connect::Refused => "refused",
            Connect::TimedOut { .. } => "timeout",
            Connect::Denied { .. } => "denied",
            Connect::BacklogFull => "backlog-full",
            Connect::Missing => "missing",
            Connect::Error { .. } => "error",
        }
    }

    pub fn is_ok(&self) -> bool {
        matches!(self, Connect::Ok { .. })
    }
}

/// A TCP connect to one resolved address of a target.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TcpFact {
    /// `127.0.0.1:8080` / `[::1]:8080`.
    pub address: String,
    pub connect: Connect,
}

/// Whether the nginx worker user may connect to a unix socket (`connect(2)` needs write
/// permission on the socket file and search permission on every directory above it).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct WorkerAccess {
    /// The `user` directive (default `nobody`).
    pub user: String,
    pub uid: Option<u32>,
    /// Primary and supplementary groups, from `/etc/passwd` and `/etc/group`.
    pub gids: Vec<u32>,
    /// `None` when the user is unknown to `/etc/passwd` (then `why` says so).
    pub allowed: Option<bool>,
    /// What grants or denies it: `root`, `write by owner`, `no search on /run/php (drwx------ root:root)`.
    pub why: String,
}

/// A unix socket target's file and a real connect to it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct UnixFact {
    pub path: String,
    pub exists: bool,
    pub is_socket: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub owner: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub group: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uid: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gid: Option<u32>,
    /// Permission bits in octal (`0660`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mode: Option<String>,
    /// `srw-rw---- www-data:www-data`, as `ls -l` shows it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ls: Option<String>,
    /// The worker user's permission, from the modes (the probe itself may run as root).
    pub worker: WorkerAccess,
    /// A non-blocking connect as this process: refused = stale socket, backlog-full = EAGAIN.
    pub connect: Connect,
}

/// What the first bytes of an answer look like.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Speaks {
    /// `HTTP/1.x NNN`.
    Http,
    /// A TLS record (0x15 alert, 0x16 handshake): the port speaks TLS.
    Tls,
    /// A FastCGI record (version 1).
    Fastcgi,
    /// Something else.
    Other,
    /// Closed without a byte.
    Nothing,
    /// Sent nothing before the timeout.
    Silent,
}

/// The request a probe sends, as nginx would (method, `Host`, path).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProbeRequest {
    pub method: String,
    /// The `Host` header (HTTP) or `SERVER_NAME` (FastCGI).
    pub host: String,
    /// The path (HTTP) or `SCRIPT_FILENAME` (FastCGI).
    pub path: String,
    /// Where `host` came from: `proxy_set_header Host ... (FILE:LINE)` or `the upstream name`.
    pub host_from: String,
}

/// The HTTP probe of a `proxy_pass` target.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct HttpFact {
    /// The address probed.
    pub address: String,
    pub request: ProbeRequest,
    /// Whether nginx talks TLS to it (`https://`); the probe then only checks that the port
    /// does not answer plain HTTP (the handshake itself is the TLS probe's).
    pub tls_expected: bool,
    pub speaks: Speaks,
    /// Status code, when the answer is HTTP.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<u16>,
    /// The status line.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status_line: Option<String>,
    /// Time from the request's last byte to the answer's first byte.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ttfb_ms: Option<f64>,
    /// The effective `proxy_read_timeout`.
    pub read_timeout_ms: u64,
    /// No first byte within `proxy_read_timeout`: nginx answers 504.
    pub ttfb_exceeds_timeout: bool,
    /// The probe stopped waiting after this long, before `proxy_read_timeout` ran out
    /// (`diagnose --probe-wait`): no first byte by then.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gave_up_ms: Option<u64>,
    /// Bytes of the response header (status line to the blank line). When the header did not
    /// end within what the probe reads, the bytes read so far and `header_complete: false`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub header_bytes: Option<u64>,
    pub header_complete: bool,
    /// The effective `proxy_buffer_size`.
    pub buffer_size: u64,
    /// The header does not fit `proxy_buffer_size`: nginx answers 502 (`too big header`).
    pub header_exceeds_buffer: bool,
    /// The protocol the port speaks is not the one nginx uses (`scheme-mismatch`).
    pub scheme_mismatch: bool,
    /// An error while talking, if any (`Connection reset by peer`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

impl HttpFact {
    /// No first byte within the read timeout, or within as long as the probe waited.
    pub fn hangs(&self) -> bool {
        self.ttfb_exceeds_timeout || self.gave_up_ms.is_some()
    }
}

/// The FastCGI probe of a `fastcgi_pass` target: a real request for a script that does not
/// exist (never one of the application's: probes change nothing), which any live PHP-FPM pool
/// answers with `Primary script unknown` / `File not found.`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct FastcgiFact {
    pub address: String,
    pub request: ProbeRequest,
    pub speaks: Speaks,
    /// The pool answered (a complete response, `FCGI_END_REQUEST`).
    pub answered: bool,
    /// `Status:` of the script's output (PHP-FPM sends `404 Not Found` for a missing script).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<u16>,
    /// The start of `FCGI_STDOUT` (the headers and a little body).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stdout_head: Option<String>,
    /// `FCGI_STDERR` (`Primary script unknown`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stderr: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ttfb_ms: Option<f64>,
    /// The effective `fastcgi_read_timeout`.
    pub read_timeout_ms: u64,
    /// No answer within `fastcgi_read_timeout`: the pool hangs (every child busy?).
    pub ttfb_exceeds_timeout: bool,
    /// The probe stopped waiting after this long, before `fastcgi_read_timeout` ran out
    /// (`diagnose --probe-wait`): no answer by then.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gave_up_ms: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

impl FastcgiFact {
    /// No answer within the read timeout, or within as long as the probe waited.
    pub fn hangs(&self) -> bool {
        self.ttfb_exceeds_timeout || self.gave_up_ms.is_some()
    }
}

/// A `*_pass` that sends to a target: where it is written and its kind.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PassRef {
    /// `FILE:LINE`.
    pub at: String,
    /// `proxy_pass`, `fastcgi_pass`, ...
    pub directive: String,
    pub url: String,
}

/// A resolved address of a host target (or why the name did not resolve).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Resolution {
    /// The name as written.
    pub host: String,
    /// `system` (getaddrinfo), `literal`, or `localhost` (both loopbacks, as nginx tries them).
    pub via: String,
    pub addresses: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// Everything the probes learnt about one upstream target.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TargetFacts {
    /// As nginx names the peer: `HOST:PORT`, `[::1]:PORT`, `unix:/path`.
    pub upstream: String,
    /// The `upstream {}` group the target is a `server` of.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub group: Option<String>,
    pub passes: Vec<PassRef>,
    /// The addresses connected to (one per resolved address; the path for a unix socket).
    pub addresses: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resolve: Option<Resolution>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tcp: Vec<TcpFact>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unix: Option<UnixFact>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub http: Option<HttpFact>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fastcgi: Option<FastcgiFact>,
    /// Who listens at the target (the first address that has a listener).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub listener: Option<Listener>,
    /// Listeners on the same port at other addresses (`bind-mismatch` evidence).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub same_port_elsewhere: Vec<Listener>,
    /// What could not be probed for this target, and why.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub skipped: Vec<super::Skipped>,
}
