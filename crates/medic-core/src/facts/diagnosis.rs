//! The facts of one diagnosis: the effective config, what the logs say, what the probes and
//! supervisors saw, `nginx -t`, the clock. Plain data: the `nginx-medic` crate gathers it, the
//! engine ([`crate::diagnose`]) and the rules read it.

use medic_parse::error_log::FailureClass;
use medic_parse::time::LogTime;
use serde::{Deserialize, Serialize};

use super::supervisor::SupervisorFacts;
use super::tls::TlsFacts;
use super::{Listener, Listeners, TargetFacts};
use crate::config::Model;

/// Everything a diagnosis reads.
#[derive(Debug, Default)]
pub struct Facts {
    pub models: Vec<Model>,
    pub logs: LogFacts,
    /// `None`: `--no-probe` (post-mortem, files only).
    pub probes: Option<ProbeFacts>,
    /// `nginx -t` of each instance; empty when it was not run (see `skipped`).
    pub nginx_t: Vec<NginxTest>,
    /// The clock now, on nginx's local wall clock (for `backend-starting` and recency).
    pub now: Option<LogTime>,
    /// When the config files on disk last changed (the newest mtime, local wall clock).
    pub config_changed: Option<LogTime>,
}

/// One `nginx -t` run.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct NginxTest {
    /// The command as run (argv joined, for the evidence).
    pub command: String,
    pub ok: bool,
    /// nginx's stderr (its `[emerg]` lines).
    pub stderr: String,
}

/// What the probes saw, live.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct ProbeFacts {
    pub targets: Vec<ProbedTarget>,
    pub listeners: Listeners,
    pub supervisors: SupervisorFacts,
    /// SELinux mode (`enforcing`, `permissive`, `disabled`), when it could be read.
    pub selinux: Option<String>,
}

/// One probed target: the plain facts and, for `https://`, the TLS probe's.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ProbedTarget {
    #[serde(flatten)]
    pub facts: TargetFacts,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls: Option<TlsFacts>,
}

/// A log line as evidence: `FILE:LINE` and its text.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LogLine {
    pub source: String,
    pub text: String,
}

/// What the logs say.
#[derive(Clone, Debug, Default)]
pub struct LogFacts {
    /// The error log's failures, one group per (class, upstream, detail).
    pub groups: Vec<LogGroup>,
    /// 5xx per (upstream, status) that the access log records with their origin.
    pub access_5xx: Vec<Access5xx>,
    /// 499s per upstream.
    pub client_closed: Vec<ClientClosedGroup>,
    /// The last reload nginx's master logged (`reconfiguring`) in the window.
    pub last_reload: Option<LogTime>,
    /// Every reload in the window (the newest few hundred), in time order: the report's
    /// timeline marks them.
    pub reloads: Vec<LogTime>,
    /// Where one file of a rotated series ends and the next begins: the newer file's first
    /// entry in the window, and its path (the timeline marks them).
    pub rotations: Vec<(LogTime, String)>,
    /// Failures per minute of every failure class together (minute start, entries), for the
    /// whole window: a finding keeps only its last hour of minutes.
    pub failures_per_minute: Vec<(LogTime, u64)>,
    /// The error logs read (for the report).
    pub error_logs: Vec<String>,
    pub access_logs: Vec<String>,
}

/// Error-log entries of one class, upstream and detail.
#[derive(Clone, Debug)]
pub struct LogGroup {
    pub class: FailureClass,
    /// As nginx names the peer; `None` when the entries name none.
    pub upstream: Option<String>,
    pub detail: Option<String>,
    pub count: u64,
    pub first: LogTime,
    pub last: LogTime,
    pub first_line: LogLine,
    pub last_line: Option<LogLine>,
    /// (minute start, entries), in time order.
    pub minutes: Vec<(LogTime, u32)>,
    /// The clients with the most entries of the group's class (value, count).
    pub top_clients: Vec<(String, u64)>,
    /// What the clients of these failures got (the access lines joined to them); `None` when
    /// none could be joined (no access log, no `$upstream_addr`, another vhost's log).
    pub impact: Option<Impact>,
}

/// Where a 5xx came from, as the access log tells (`docs/logs-json.md`).
pub use medic_parse::access_log::Origin;

/// 5xx of one (upstream, status, origin) in the access log.
#[derive(Clone, Debug)]
pub struct Access5xx {
    pub upstream: Option<String>,
    pub status: u16,
    pub origin: Origin,
    pub count: u64,
    pub first: LogTime,
    pub last: LogTime,
    pub example: LogLine,
    pub minutes: Vec<(LogTime, u32)>,
}

/// 499s (the client closed the connection before nginx answered) towards one upstream.
#[derive(Clone, Debug)]
pub struct ClientClosedGroup {
    pub upstream: Option<String>,
    pub count: u64,
    pub first: Option<LogTime>,
    pub last: Option<LogTime>,
    /// Mean and maximum `$upstream_response_time` of those requests, when logged.
    pub mean_wait: Option<f64>,
    pub max_wait: Option<f64>,
    pub example: Option<LogLine>,
}

impl Facts {
    /// Every listener of the host, when the probes ran.
    pub fn listeners(&self) -> &[Listener] {
        self.probes
            .as_ref()
            .map_or(&[][..], |p| p.listeners.sockets.as_slice())
    }
}

/// What the clients of a failure got (`causes.md` §3 `impact`).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Impact {
    /// Access lines joined to the failure's error entries.
    pub requests: u64,
    /// Of those, the client got a 5xx.
    pub client_errors: u64,
    /// Of those, nginx tried the next peer and the client got a good answer.
    pub retried_ok: u64,
    /// Client status -> requests.
    pub statuses: std::collections::BTreeMap<String, u64>,
    /// Of those, the client got a status below 500 and a body cut short: nginx failed after the
    /// response header went out (`while reading upstream`).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub cut_off: u64,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

impl Impact {
    /// Every request was served by a retry: a peer is down, the clients pay latency.
    pub fn all_retried(&self) -> bool {
        self.requests > 0 && self.client_errors == 0 && self.retried_ok == self.requests
    }

    /// The clients hurt: a 5xx, or a response cut short.
    pub fn hurt(&self) -> u64 {
        self.client_errors + self.cut_off
    }

    pub fn add(&mut self, o: &Impact) {
        self.requests += o.requests;
        self.client_errors += o.client_errors;
        self.retried_ok += o.retried_ok;
        self.cut_off += o.cut_off;
        for (k, n) in &o.statuses {
            *self.statuses.entry(k.clone()).or_insert(0) += n;
        }
    }
}
