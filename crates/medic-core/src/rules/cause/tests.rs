//! Scenario tests of the causes: facts as the gatherers would record them, through the engine.

use medic_parse::error_log::FailureClass;
use medic_parse::time::LogTime;

use crate::diagnose::diagnose;
use crate::facts::{Connect, TargetFacts, TcpFact};
use crate::facts::{Facts, LogGroup, LogLine, ProbeFacts, ProbedTarget};
use crate::rules::Finding;

pub(crate) fn t(s: &str) -> LogTime {
    LogTime::parse_iso(s.as_bytes()).unwrap()
}

/// A group of `count` error-log entries of `class` for `upstream`.
pub(crate) fn log_group(
    class: FailureClass,
    upstream: Option<&str>,
    detail: Option<&str>,
    count: u64,
) -> LogGroup {
    LogGroup {
        class,
        upstream: upstream.map(str::to_string),
        detail: detail.map(str::to_string),
        count,
        first: t("2026-11-20T14:32:10"),
        last: t("2026-11-20T14:35:22"),
        first_line: LogLine {
            source: "/var/log/nginx/error.log:120".into(),
            text: format!("2026/11/20 14:32:10 [error] 1#1: *1 {} ...", class.id()),
        },
        last_line: None,
        minutes: vec![(t("2026-11-20T14:32:00"), 1)],
        top_clients: vec![],
        impact: None,
    }
}

/// A probed TCP target with one address and its connect outcome.
pub(crate) fn tcp_target(upstream: &str, connect: Connect) -> ProbedTarget {
    ProbedTarget {
        facts: TargetFacts {
            upstream: upstream.into(),
            group: None,
            passes: vec![],
            addresses: vec![upstream.into()],
            resolve: None,
            tcp: vec![TcpFact {
                address: upstream.into(),
                connect,
            }],
            unix: None,
            http: None,
            fastcgi: None,
            listener: None,
            same_port_elsewhere: vec![],
            skipped: vec![],
        },
        tls: None,
    }
}

pub(crate) fn live(groups: Vec<LogGroup>, targets: Vec<ProbedTarget>) -> Facts {
    Facts {
        logs: crate::facts::LogFacts {
            groups,
            ..Default::default()
        },
        probes: Some(ProbeFacts {
            targets,
            ..Default::default()
        }),
        ..Default::default()
    }
}

pub(crate) fn post_mortem(groups: Vec<LogGroup>) -> Facts {
    Facts {
        logs: crate::facts::LogFacts {
            groups,
            ..Default::default()
        },
        ..Default::default()
    }
}

pub(crate) fn top(facts: &Facts) -> Finding {
    diagnose(facts).into_iter().next().expect("a finding")
}

#[test]
fn refused_live_nothing_listens_is_backend_down() {
    let f = top(&live(
        vec![log_group(
            FailureClass::ConnectRefused,
            Some("127.0.0.1:3000"),
            None,
            42,
        )],
        vec![tcp_target("127.0.0.1:3000", Connect::Refused)],
    ));
    assert_eq!(f.id, "backend-down");
    assert_eq!(f.upstream.as_deref(), Some("127.0.0.1:3000"));
    assert_eq!(f.count, Some(42));
    assert!(f.evidence.iter().any(|e| e.kind == "probe"));
}

#[test]
fn refused_post_mortem_is_the_class() {
    let f = top(&post_mortem(vec![log_group(
        FailureClass::ConnectRefused,
        Some("127.0.0.1:3000"),
        None,
        3,
    )]));
    assert_eq!(f.id, "connect-refused");
    assert_eq!(f.evidence[0].kind, "log");
}

#[test]
fn refused_unix_socket_is_stale() {
    let f = top(&post_mortem(vec![log_group(
        FailureClass::ConnectRefused,
        Some("unix:/run/php/php8.2-fpm.sock"),
        None,
        3,
    )]));
    assert_eq!(f.id, "socket-stale");
}

#[test]
fn healthy_probe_and_empty_logs_give_nothing() {
    let f = diagnose(&live(
        vec![],
        vec![tcp_target(
            "127.0.0.1:3000",
            Connect::Ok { latency_ms: 0.1 },
        )],
    ));
    assert!(f.is_empty(), "{f:#?}");
}
