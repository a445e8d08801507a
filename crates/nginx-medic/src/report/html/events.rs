//! What the timeline marks besides the failures, gathered from the facts of a run: restarts
//! (a backend's process or unit started, or stopped), nginx's reloads, OOM kills, and where one
//! file of a rotated log series ends. What the facts cannot tell is said, not left blank.

use medic_core::facts::Facts;
use medic_core::rules::{Finding, State};
use medic_parse::time::LogTime;

/// A kind of marker.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum MarkerKind {
    Restart,
    Reload,
    Oom,
    Rotation,
}

impl MarkerKind {
    pub const ALL: [MarkerKind; 4] = [
        MarkerKind::Restart,
        MarkerKind::Reload,
        MarkerKind::Oom,
        MarkerKind::Rotation,
    ];

    /// The stylesheet's class.
    pub fn class(self) -> &'static str {
        match self {
            MarkerKind::Restart => "restart",
            MarkerKind::Reload => "reload",
            MarkerKind::Oom => "oom",
            MarkerKind::Rotation => "rotation",
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            MarkerKind::Restart => "restart",
            MarkerKind::Reload => "nginx reload",
            MarkerKind::Oom => "OOM kill",
            MarkerKind::Rotation => "log rotation",
        }
    }
}

/// One moment to mark on the timeline.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Marker {
    pub kind: MarkerKind,
    /// nginx's local clock.
    pub at: LogTime,
    pub label: String,
}

/// The timeline's context from the facts of a diagnosis (not part of the JSON report).
#[derive(Debug, Default)]
pub struct Events {
    /// Every failure per minute, the whole window.
    pub failures_per_minute: Vec<(LogTime, u64)>,
    /// In time order.
    pub markers: Vec<Marker>,
    /// Marker kinds the facts cannot tell, and why.
    pub unknown: Vec<(MarkerKind, String)>,
}

/// Markers of one kind kept at most (the newest).
const MAX_PER_KIND: usize = 256;

impl Events {
    /// Gathers the markers from the facts, and from the findings' backends (when each entered
    /// its state) and `backend-starting` stories.
    pub fn of(facts: &Facts, findings: &[Finding]) -> Events {
        let mut markers: Vec<Marker> = Vec::new();
        let mut unknown = Vec::new();
        let logs = &facts.logs;
        if logs.error_logs.is_empty() {
            unknown.push((MarkerKind::Reload, "no error log was read".to_string()));
        }
        for t in &logs.reloads {
            markers.push(Marker {
                kind: MarkerKind::Reload,
                at: *t,
                label: "nginx reloaded its configuration (`reconfiguring`)".into(),
            });
        }
        for (t, path) in &logs.rotations {
            markers.push(Marker {
                kind: MarkerKind::Rotation,
                at: *t,
                label: format!("{path} begins (the first entry read from it)"),
            });
        }
        match &facts.probes {
            None => {
                let why = "a post-mortem (--no-probe) reads no process start times, supervisors or kernel log";
                unknown.push((MarkerKind::Restart, why.to_string()));
                unknown.push((MarkerKind::Oom, why.to_string()));
            }
            Some(p) => {
                match &p.supervisors.oom {
                    None => unknown.push((
                        MarkerKind::Oom,
                        "the kernel log could not be read (see not checked)".to_string(),
                    )),
                    Some(k) => {
                        for kill in &k.kills {
                            let Some(at) = kill.time.as_deref().and_then(iso) else {
                                continue;
                            };
                            let who = match (&kill.task, kill.pid) {
                                (Some(t), Some(pid)) => format!("{t} (pid {pid})"),
                                (Some(t), None) => t.clone(),
                                (None, Some(pid)) => format!("pid {pid}"),
                                (None, None) => "a process".to_string(),
                            };
                            let unit = kill.unit().map_or(String::new(), |u| format!(" of {u}"));
                            markers.push(Marker {
                                kind: MarkerKind::Oom,
                                at,
                                label: format!("the kernel's OOM killer killed {who}{unit}"),
                            });
                        }
                    }
                }
                // The oldest process holding a target's socket: when that server started to
                // listen (a pre-forking server's master is its oldest process).
                for t in &p.targets {
                    let Some(l) = &t.facts.listener else { continue };
                    let Some((at, proc)) = l
                        .processes
                        .iter()
                        .filter_map(|p| Some((iso(p.start_time.as_deref()?)?, p)))
                        .min_by_key(|(t, _)| *t)
                    else {
                        continue;
                    };
                    markers.push(Marker {
                        kind: MarkerKind::Restart,
                        at,
                        label: format!(
                            "{} (pid {}) started; it listens for {} now",
                            proc.program, proc.pid, t.facts.upstream
                        ),
                    });
                }
            }
        }
        for f in findings {
            if let Some(b) = &f.backend {
                if let Some(at) = b.since.as_deref().and_then(iso) {
                    let state = b.state.as_deref().unwrap_or("?");
                    let verb = if state.starts_with("active") || state == "online" {
                        "started"
                    } else {
                        "stopped"
                    };
                    markers.push(Marker {
                        kind: MarkerKind::Restart,
                        at,
                        label: format!("{} {} {verb} ({state} since then)", b.supervisor, b.name),
                    });
                }
            }
            // A backend that refused until it listened again: when the refusals ended, if no
            // start time says better.
            let starting = std::iter::once((f.id, f.last_seen))
                .chain(f.timeline.iter().map(|s| (s.id, Some(s.last_seen))))
                .filter(|(id, _)| *id == "backend-starting")
                .filter_map(|(_, t)| t);
            for at in starting {
                let up = f.upstream.as_deref().unwrap_or("the upstream");
                let known = markers.iter().any(|m| {
                    m.kind == MarkerKind::Restart
                        && (m.at.0 - at.0).abs() <= 120
                        && m.label.contains(up)
                });
                if !known && f.state != State::Latent {
                    markers.push(Marker {
                        kind: MarkerKind::Restart,
                        at,
                        label: format!("{up}: the last refusal before its backend listened again"),
                    });
                }
            }
        }
        markers.sort_by(|a, b| (a.at, a.kind, &a.label).cmp(&(b.at, b.kind, &b.label)));
        markers.dedup();
        for kind in MarkerKind::ALL {
            let n = markers.iter().filter(|m| m.kind == kind).count();
            let mut drop = n.saturating_sub(MAX_PER_KIND);
            markers.retain(|m| {
                if m.kind == kind && drop > 0 {
                    drop -= 1;
                    false
                } else {
                    true
                }
            });
        }
        Events {
            failures_per_minute: logs.failures_per_minute.clone(),
            markers,
            unknown,
        }
    }
}

/// A local wall-clock time as the facts write it (`2026-11-20T14:32:10`).
fn iso(s: &str) -> Option<LogTime> {
    LogTime::parse_iso(s.as_bytes())
}

#[cfg(test)]
mod tests {
    use medic_core::facts::supervisor::{KernelOom, OomKill};
    use medic_core::facts::{
        Listener, ProbeFacts, ProbedTarget, ProcessInfo, SocketKind, TargetFacts,
    };

    use super::*;

    fn t(s: &str) -> LogTime {
        LogTime::parse_iso(s.as_bytes()).unwrap()
    }

    #[test]
    fn post_mortem_says_what_it_cannot_mark() {
        let mut facts = Facts::default();
        facts.logs.error_logs = vec!["/var/log/nginx/error.log".into()];
        facts.logs.reloads = vec![t("2026-11-20T14:30:00")];
        facts.logs.rotations = vec![(t("2026-11-20T06:25:01"), "/var/log/nginx/error.log".into())];
        let e = Events::of(&facts, &[]);
        let kinds: Vec<MarkerKind> = e.markers.iter().map(|m| m.kind).collect();
        assert_eq!(kinds, [MarkerKind::Rotation, MarkerKind::Reload]);
        let unknown: Vec<MarkerKind> = e.unknown.iter().map(|u| u.0).collect();
        assert_eq!(unknown, [MarkerKind::Restart, MarkerKind::Oom]);
    }

    #[test]
    fn live_marks_oom_kills_and_listener_starts() {
        let listener = Listener {
            kind: SocketKind::Tcp,
            ip: Some("127.0.0.1".parse().unwrap()),
            port: Some(3000),
            path: None,
            inode: 1,
            uid: None,
            processes: vec![ProcessInfo {
                pid: 4242,
                program: "node".into(),
                cmdline: "node app.js".into(),
                uid: None,
                unit: None,
                container: None,
                start_time: Some("2026-11-20T14:36:02".into()),
            }],
        };
        let target: TargetFacts = serde_json::from_value(serde_json::json!({
            "upstream": "127.0.0.1:3000", "passes": [], "addresses": ["127.0.0.1:3000"]
        }))
        .unwrap();
        let mut probes = ProbeFacts::default();
        probes.targets.push(ProbedTarget {
            facts: TargetFacts {
                listener: Some(listener),
                ..target
            },
            tls: None,
        });
        probes.supervisors.oom = Some(KernelOom {
            source: "journalctl -k".into(),
            lines: vec![],
            kills: vec![OomKill {
                time: Some("2026-11-20T14:35:40".into()),
                pid: Some(4100),
                task: Some("node".into()),
                memcg: Some("/system.slice/app.service".into()),
                line: "Killed process 4100 (node)".into(),
            }],
        });
        let facts = Facts {
            probes: Some(probes),
            ..Default::default()
        };
        let e = Events::of(&facts, &[]);
        assert_eq!(e.markers.len(), 2);
        assert_eq!(e.markers[0].kind, MarkerKind::Oom);
        assert!(e.markers[0]
            .label
            .contains("node (pid 4100) of app.service"));
        assert_eq!(e.markers[1].kind, MarkerKind::Restart);
        assert_eq!(e.markers[1].at, t("2026-11-20T14:36:02"));
        assert!(e.unknown.iter().any(|u| u.0 == MarkerKind::Reload));
    }
}
