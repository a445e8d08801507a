//! Machine-applicable fixes: what `nginx-medic fix` may do about a finding, as typed values.
//!
//! A rule that can say exactly what to change sets [`Fix::remedy`](super::Fix::remedy): which
//! directive (by its [`Src`]: file and line), which argument, the new value, or which service
//! to restart. The planner in `nginx-medic` turns it into byte-range edits on the original
//! text; the prose `steps` stay the advice for everything the machine should not do.
//!
//! The remedy has its own [`Risk`]: the risk of *this* change, made by the tool, tested with
//! `nginx -t`, verified after the reload and rolled back when it does not cure. It can be lower
//! than the rule's `risk`, which is about the whole manual fix (a wrong-port edit is low-risk
//! when the one candidate listener is certain; choosing between candidates is not).

use std::fmt;

use serde::Serialize;

use crate::config::Src;

/// How much a machine fix risks; `fix --risk` applies those at or below its level.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Risk {
    /// Changes nothing but the broken thing (a buffer, the SNI flag, the address that listens,
    /// a restart of a stopped service).
    Low,
    /// Changes behaviour beyond the failure: a longer timeout masks slowness, a burst admits
    /// more requests than the rate.
    Medium,
}

impl Risk {
    pub fn as_str(self) -> &'static str {
        match self {
            Risk::Low => "low",
            Risk::Medium => "medium",
        }
    }
}

impl fmt::Display for Risk {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The new address a [`Change::Retarget`] writes into a `*_pass` URL or an upstream `server`.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Address {
    /// The host part only (an IP literal, `[::1]` bracketed): the port stays as written.
    Host(String),
    /// The port only: the host stays as written.
    Port(u16),
    /// A unix socket path (`unix:` is kept).
    Unix(String),
}

impl fmt::Display for Address {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Address::Host(h) => write!(f, "host {h}"),
            Address::Port(p) => write!(f, "port {p}"),
            Address::Unix(p) => write!(f, "unix:{p}"),
        }
    }
}

/// One change a remedy makes.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum Change {
    /// `name args;` in the block where `near` (a `*_pass`) is written: a directive of that name
    /// in the same block gets the new arguments, else a new line goes right after `near`, with
    /// its indentation. The setting then holds for that block only.
    Set {
        near: Src,
        name: String,
        args: Vec<String>,
    },
    /// Argument `index` of the directive at `at` (a `*_pass` URL or an upstream `server`)
    /// gets a new host, port or socket path; the rest of the argument is kept as written.
    Retarget { at: Src, index: usize, to: Address },
    /// Arguments added to the directive at `at` (`burst=20` to a `limit_req`).
    Append { at: Src, args: Vec<String> },
    /// Reload nginx without a config change (it re-resolves upstream names).
    Reload,
    /// Restart a systemd unit (a backend that stopped or whose socket went stale).
    RestartUnit { unit: String },
    /// Restart a pm2 app, with its daemon's home, as the user the daemon runs as.
    RestartPm2 {
        app: String,
        #[serde(skip_serializing_if = "Option::is_none")]
        home: Option<String>,
        #[serde(skip_serializing_if = "Option::is_none")]
        user: Option<String>,
    },
}

impl Change {
    /// The directive a config change is anchored on.
    pub fn anchor(&self) -> Option<&Src> {
        match self {
            Change::Set { near, .. } => Some(near),
            Change::Retarget { at, .. } | Change::Append { at, .. } => Some(at),
            _ => None,
        }
    }
}

/// What the machine may do about a finding: the changes, all or none, and their risk.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Remedy {
    pub risk: Risk,
    pub changes: Vec<Change>,
}

impl Remedy {
    pub fn new(risk: Risk, changes: Vec<Change>) -> Remedy {
        Remedy { risk, changes }
    }
}

/// The name of the directive a [`Src`] quotes (`proxy_pass` of `proxy_pass http://b;`).
pub fn directive_name(src: &Src) -> &str {
    src.name()
}

/// The restart of the backend that serves a target, when its supervisor is known with
/// confidence (`certain` or `high`): a unit guessed from timing alone is never restarted by
/// the machine.
pub fn restart(b: &crate::backend::Backend) -> Option<Change> {
    if !matches!(b.confidence.as_str(), "certain" | "high") {
        return None;
    }
    match b.supervisor.as_str() {
        "systemd" => Some(Change::RestartUnit {
            unit: b.name.clone(),
        }),
        "php-fpm" => b.unit.clone().map(|unit| Change::RestartUnit { unit }),
        "pm2" => Some(Change::RestartPm2 {
            app: b.name.clone(),
            home: b.pm2_home.clone(),
            user: b.user.clone(),
        }),
        _ => None,
    }
}

/// The changes that point every `*_pass` of a failure group (or the upstream `server` lines
/// it goes through) at `to`.
pub fn retarget(g: &super::group::Group<'_>, to: Address) -> Vec<Change> {
    use crate::config::Target;
    let mut out: Vec<Change> = Vec::new();
    let mut push = |c: Change| {
        if !out.contains(&c) {
            out.push(c);
        }
    };
    let peer = g.upstream.as_deref();
    for (model, pass) in &g.passes {
        match &pass.target {
            Target::Host { .. } | Target::Unix { .. } => push(Change::Retarget {
                at: pass.src.clone(),
                index: 0,
                to: to.clone(),
            }),
            Target::Group { index, .. } => {
                let Some(up) = model.upstreams.get(*index) else {
                    continue;
                };
                for s in &up.servers {
                    let written = match (&s.host, s.port) {
                        (Some(h), Some(p)) => format!("{h}:{p}"),
                        _ => s.address.to_string(),
                    };
                    if peer == Some(written.as_str()) || peer == Some(s.address.as_str()) {
                        push(Change::Retarget {
                            at: s.src.clone(),
                            index: 0,
                            to: to.clone(),
                        });
                    }
                }
            }
            Target::Dynamic { .. } => {}
        }
    }
    out
}
