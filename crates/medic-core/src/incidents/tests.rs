use super::*;
use crate::rules::{Fix, Step};

fn fix() -> Fix {
    Fix {
        summary: "start the backend".into(),
        steps: vec![],
        commands: vec![],
        time: "1 min",
        risk: "low",
        remedy: None,
    }
}

fn line(n: u64) -> crate::facts::LogLine {
    crate::facts::LogLine {
        source: format!("/var/log/nginx/error.log:{n}"),
        text: format!("connect() failed (111: Connection refused) line {n}"),
    }
}

/// A finding the logs show: `count` refusals of 127.0.0.1:3000 from `first` to `last`.
fn refused(id: &'static str, count: u64, first: i64, last: i64) -> Finding {
    let mut f = Finding::latent(
        id,
        "127.0.0.1:3000 refuses connections".into(),
        vec![Evidence::log(&line(1))],
        fix(),
    );
    f.class = Some("connect-refused");
    f.severity = Severity::Error;
    f.status = Some(502);
    f.upstream = Some("127.0.0.1:3000".into());
    f.count = Some(count);
    f.first_seen = Some(LogTime(first));
    f.last_seen = Some(LogTime(last));
    f.state = State::Ongoing;
    f
}

fn at(log: i64) -> Now {
    Now {
        log: LogTime(log),
        ms: log as u64 * 1000,
    }
}

/// Probes on, with a scripted answer.
struct Probes(Option<(LogTime, bool)>);

impl ProbeView for Probes {
    fn can_probe(&self, _: &str) -> bool {
        true
    }
    fn last(&self, _: &str) -> Option<(LogTime, bool)> {
        self.0
    }
}

fn tick(count: u64, first: i64, last: i64, line_no: u64) -> LogFacts {
    LogFacts {
        groups: vec![crate::facts::LogGroup {
            class: FailureClass::ConnectRefused,
            upstream: Some("127.0.0.1:3000".into()),
            detail: None,
            count,
            first: LogTime(first),
            last: LogTime(last),
            first_line: line(line_no),
            last_line: Some(line(line_no + count - 1)),
            minutes: vec![],
            top_clients: vec![],
            impact: None,
        }],
        ..LogFacts::default()
    }
}

#[test]
fn a_failure_opens_counts_and_closes_when_the_probe_sees_it_answer() {
    let mut inc = Incidents::new(Options::default());
    // The backend refuses: the probe confirms it, the incident opens.
    let c = inc.evaluate(
        &[refused("backend-down", 3, 100, 101)],
        at(101),
        &Probes(Some((LogTime(101), false))),
    );
    let [Change::Open(i)] = &c[..] else {
        panic!("{c:?}")
    };
    assert_eq!((i.incident, i.cause, i.count), (1, "backend-down", 3));
    assert_eq!(i.upstream, "127.0.0.1:3000");
    assert_eq!(i.evidence[0].source, "/var/log/nginx/error.log:1");

    // Two more refusals: counted, reported at most every 10 s.
    inc.accumulate(&tick(2, 103, 104, 4), &[], LogTime(104));
    let c = inc.evaluate(
        &[refused("backend-down", 5, 100, 104)],
        at(105),
        &Probes(Some((LogTime(101), false))),
    );
    assert!(c.is_empty(), "{c:?}");
    let c = inc.evaluate(
        &[refused("backend-down", 5, 100, 104)],
        at(111),
        &Probes(Some((LogTime(101), false))),
    );
    let [Change::Update(i)] = &c[..] else {
        panic!("{c:?}")
    };
    assert_eq!(i.count, 5);
    assert_eq!(i.evidence[0].source, "/var/log/nginx/error.log:5");
    assert_eq!(i.last_seen, Some(LogTime(104)));

    // Quiet for 10 s: the engine wants a probe; the target still refuses: it stays open.
    let c = inc.evaluate(
        &[refused("backend-down", 5, 100, 104)],
        at(115),
        &Probes(Some((LogTime(114), false))),
    );
    assert!(c.is_empty(), "{c:?}");
    assert_eq!(inc.wanted_probes(), ["127.0.0.1:3000"]);
    assert_eq!(inc.open().len(), 1);

    // It answers now: closed, saying so.
    let c = inc.evaluate(
        &[refused("backend-down", 5, 100, 104)],
        at(120),
        &Probes(Some((LogTime(119), true))),
    );
    let [Change::Close(i, closed)] = &c[..] else {
        panic!("{c:?}")
    };
    assert_eq!(i.incident, 1);
    assert_eq!(closed.how, "answers");
    assert_eq!(closed.at, LogTime(119));
    assert!(closed.why.contains("answers the probes"), "{}", closed.why);
    assert!(inc.open().is_empty());

    // The old failures still in the window do not open it again; a new one does.
    let c = inc.evaluate(
        &[refused("backend-down", 5, 100, 104)],
        at(121),
        &Probes(Some((LogTime(119), true))),
    );
    assert!(c.is_empty(), "{c:?}");
    let c = inc.evaluate(
        &[refused("backend-down", 6, 100, 125)],
        at(125),
        &Probes(Some((LogTime(125), false))),
    );
    let [Change::Open(i)] = &c[..] else {
        panic!("{c:?}")
    };
    assert_eq!(i.incident, 2);
}

#[test]
fn a_new_incident_waits_for_its_probe_a_little() {
    let mut inc = Incidents::new(Options::default());
    let f = [refused("backend-down", 1, 100, 100)];
    let c = inc.evaluate(&f, at(100), &Probes(None));
    assert!(c.is_empty());
    assert_eq!(inc.wanted_probes(), ["127.0.0.1:3000"]);
    // Past the grace, it opens with what the logs say.
    let c = inc.evaluate(
        &f,
        Now {
            log: LogTime(101),
            ms: 101_600,
        },
        &Probes(None),
    );
    assert!(matches!(&c[..], [Change::Open(_)]), "{c:?}");
}

#[test]
fn the_probe_renames_the_cause_without_a_new_incident() {
    let mut inc = Incidents::new(Options {
        probe_grace_ms: 0,
        ..Options::default()
    });
    let c = inc.evaluate(
        &[refused("backend-down", 2, 100, 100)],
        at(100),
        &Probes(None),
    );
    assert!(matches!(&c[..], [Change::Open(_)]));
    let c = inc.evaluate(
        &[refused("wrong-port", 2, 100, 100)],
        at(111),
        &Probes(Some((LogTime(110), false))),
    );
    let [Change::Update(i)] = &c[..] else {
        panic!("{c:?}")
    };
    assert_eq!((i.cause, i.cause_was), ("wrong-port", Some("backend-down")));
    assert_eq!(inc.open().len(), 1);
}

#[test]
fn resolved_by_the_diagnosis_closes_with_its_reason() {
    let mut inc = Incidents::new(Options::default());
    inc.evaluate(&[refused("backend-down", 2, 100, 100)], at(100), &NoProbes);
    let mut f = refused("backend-down", 2, 100, 100);
    f.state = State::Resolved;
    f.resolved_at = Some(LogTime(105));
    f.evidence.push(Evidence::other(
        "log",
        "error log".into(),
        "resolved: nginx reloaded at 105".into(),
    ));
    let c = inc.evaluate(&[f], at(106), &NoProbes);
    let [Change::Close(_, closed)] = &c[..] else {
        panic!("{c:?}")
    };
    assert_eq!(
        (closed.how, closed.at, closed.why.as_str()),
        ("resolved", LogTime(105), "resolved: nginx reloaded at 105")
    );
}

#[test]
fn without_probes_it_closes_after_a_long_quiet_and_says_it_did_not_look() {
    let mut inc = Incidents::new(Options::default());
    let f = [refused("backend-down", 2, 100, 100)];
    assert!(matches!(
        &inc.evaluate(&f, at(100), &NoProbes)[..],
        [Change::Open(_)]
    ));
    assert!(inc.evaluate(&f, at(399), &NoProbes).is_empty());
    assert!(inc.wanted_probes().is_empty());
    // The window dropped the failures: the finding is gone, the incident is not yet.
    let c = inc.evaluate(&[], at(400), &NoProbes);
    let [Change::Close(_, closed)] = &c[..] else {
        panic!("{c:?}")
    };
    assert_eq!(closed.how, "quiet");
    assert!(closed.why.contains("not probed"), "{}", closed.why);
}

#[test]
fn a_story_step_stays_in_its_incident() {
    let mut inc = Incidents::new(Options {
        probe_grace_ms: 0,
        ..Options::default()
    });
    let mut crash = refused("backend-crash", 1, 100, 100);
    crash.class = Some("upstream-reset");
    inc.evaluate(&[crash.clone()], at(100), &NoProbes);
    // The refusals that follow join the crash's story: no second incident.
    crash.timeline.push(Step {
        id: "backend-down",
        class: Some("connect-refused"),
        count: 3,
        first_seen: LogTime(101),
        last_seen: LogTime(102),
        title: "refused".into(),
        evidence: None,
    });
    let c = inc.evaluate(&[crash], at(103), &NoProbes);
    assert!(c.iter().all(|c| !matches!(c, Change::Open(_))), "{c:?}");
    assert_eq!(inc.open().len(), 1);
    // Its refusals count.
    inc.accumulate(&tick(2, 104, 104, 9), &[], LogTime(104));
    assert_eq!(inc.open()[0].count, 3);
}

#[test]
fn warnings_and_latent_findings_do_not_open_incidents_unless_failing() {
    let mut inc = Incidents::new(Options::default());
    let mut latent = refused("limit-req-no-burst", 0, 100, 100);
    latent.state = State::Latent;
    latent.count = Some(0);
    latent.severity = Severity::Warning;
    assert!(inc.evaluate(&[latent], at(100), &NoProbes).is_empty());
}

#[test]
fn a_failure_read_now_is_not_quiet_however_old_its_time() {
    let mut inc = Incidents::new(Options {
        close_after_secs: 5,
        ..Options::default()
    });
    // A replay of last year's log: the failures' times are a year old, read now.
    let f = [refused("backend-down", 2, 100, 100)];
    assert!(matches!(
        &inc.evaluate(&f, at(1_000_000), &NoProbes)[..],
        [Change::Open(_)]
    ));
    inc.accumulate(&tick(1, 101, 101, 3), &[], LogTime(1_000_003));
    assert!(inc.evaluate(&f, at(1_000_004), &NoProbes).is_empty());
    // Nothing read for 11 s (more than --quiet and --close-after): quiet.
    assert!(matches!(
        &inc.evaluate(&f, at(1_000_014), &NoProbes)[..],
        [Change::Close(..)]
    ));
}

#[test]
fn open_incidents_are_capped() {
    let mut inc = Incidents::new(Options {
        max_open: 2,
        probe_grace_ms: 0,
        ..Options::default()
    });
    let mut findings = Vec::new();
    for port in 0..5u16 {
        let mut f = refused("backend-down", 1, 100, 100);
        f.upstream = Some(format!("127.0.0.1:{}", 3000 + port));
        findings.push(f);
    }
    inc.evaluate(&findings, at(100), &NoProbes);
    assert_eq!(inc.open().len(), 2);
    assert_eq!(inc.suppressed, 3);
}
