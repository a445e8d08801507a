//! `nginx-medic diagnose` on whole incidents rather than one failure: several upstreams broken
//! at once, a healthy nginx under a few hundred mixed requests, and an nginx whose clock is in
//! another time zone than the tool's.
//!
//! As in `diagnose_proxy.rs`, each scenario proves its staging from nginx's own log lines, runs
//! `diagnose` live while the broken state holds, stops nginx, runs it post-mortem
//! (`--no-probe`), and fails at the end with every failed check.
//!
//! Build the binary first: `cargo build -p nginx-medic && cargo test -p medic-e2e --test
//! diagnose_incident`.

use std::collections::BTreeMap;
use std::fs;
use std::time::Duration;

use medic_e2e::diagnose::{diagnose, diagnose_env, serial, Checks, Diagnosis, Mode};
use medic_e2e::stubs::{Behavior, TcpStub};
use medic_e2e::{free_port, http, nginx, Nginx, Prefix};
use serde_json::Value;

const TIMEOUT: Duration = Duration::from_secs(10);
const REFUSED: &str = "connect() failed (111: Connection refused) while connecting to upstream";
const READ_TIMEOUT: &str =
    "upstream timed out (110: Connection timed out) while reading response header from upstream";

// ---------------------------------------------------------------------------------------------
// Staging helpers
// ---------------------------------------------------------------------------------------------

/// One `server {}` on 127.0.0.1:`port` with the scenario's `locations`; every failure answers
/// within 1-2 s.
fn server_body(port: u16, locations: &str) -> String {
    format!(
        "    server {{
        listen 127.0.0.1:{port};
        server_name app.test;
        proxy_connect_timeout 1s;
        proxy_send_timeout 2s;
        proxy_read_timeout 1s;

{locations}
    }}"
    )
}

/// Checks the config with the real `nginx -t`, then starts nginx with `env` added to its
/// environment.
fn start_nginx(prefix: &Prefix, port: u16, locations: &str, env: &[(&str, &str)]) -> Nginx {
    let conf = nginx::config(prefix, &server_body(port, locations));
    let t = nginx::test_config(prefix, &conf);
    assert!(t.ok, "nginx -t refuses the scenario config:\n{}", t.stderr);
    Nginx::start_env(prefix, &conf, port, env)
}

/// The error-log lines that contain every one of `needles`; exactly `want` of them, or a panic
/// with the whole log.
fn logged(prefix: &Prefix, needles: &[&str], want: usize) -> Vec<String> {
    let (lines, text) = prefix.error_lines_with(needles);
    assert_eq!(
        lines.len(),
        want,
        "nginx's error.log has {} line(s) with {needles:?}, the staging expects {want}:\n{text}",
        lines.len()
    );
    if let Some(l) = lines.first() {
        eprintln!("nginx error.log: {l}");
    }
    lines
}

/// The access-log lines (`log_format medic`) that contain every one of `needles`.
fn accessed(prefix: &Prefix, needles: &[&str]) -> Vec<String> {
    fs::read_to_string(prefix.access_log())
        .unwrap_or_default()
        .lines()
        .filter(|l| needles.iter().all(|n| l.contains(n)))
        .map(str::to_string)
        .collect()
}

/// Asserts that the access log has `want` lines for `path`, each with client status `status` and
/// `$upstream_addr $upstream_status` = `upstream ustatus`: the lines the impact is joined from.
fn accessed_exactly(
    prefix: &Prefix,
    path: &str,
    want: usize,
    status: u16,
    upstream: &str,
    ustatus: u16,
) {
    let all = accessed(prefix, &[&format!("\"GET {path} HTTP/1.1\"")]);
    let lines = accessed(
        prefix,
        &[
            &format!("\"GET {path} HTTP/1.1\" {status} "),
            &format!("\"{}\" {upstream} {ustatus} ", http::USER_AGENT),
        ],
    );
    assert!(
        all.len() == want && lines.len() == want,
        "access.log should have {want} lines of {path}, all {status} from {upstream} {ustatus}:\n{}",
        fs::read_to_string(prefix.access_log()).unwrap_or_default()
    );
    eprintln!("nginx access.log: {}", lines[0]);
}

// ---------------------------------------------------------------------------------------------
// Reading the diagnosis
// ---------------------------------------------------------------------------------------------

/// Every finding in one line each (id, severity, state, upstream, count, impact), for the
/// test output and the report.
fn summary(label: &str, d: &Diagnosis) {
    if d.findings().is_empty() {
        eprintln!("{label}: no findings");
    }
    for (i, f) in d.findings().iter().enumerate() {
        eprintln!(
            "{label}: #{i} id={} class={} severity={} state={} upstream={} count={} first={} last={} impact={}",
            f["id"],
            f["class"],
            f["severity"],
            f["state"],
            f["upstream"],
            f["count"],
            f["first_seen"],
            f["last_seen"],
            f["impact"]
        );
    }
}

/// The finding about `upstream`; a panic with the whole JSON when there is none.
fn finding_for<'a>(d: &'a Diagnosis, upstream: &str) -> &'a Value {
    d.findings()
        .iter()
        .find(|f| f["upstream"] == upstream)
        .unwrap_or_else(|| panic!("no finding for {upstream}:\n{:#}", d.json))
}

/// The finding's `id`, `class`, `severity` and `impact` (`requests` and `client_errors` are
/// `n`, every client got `status`).
fn assert_failure(f: &Value, id: &str, class: Option<&str>, n: u64, status: u16) {
    assert_eq!(f["id"], id, "id:\n{f:#}");
    match class {
        Some(c) => assert_eq!(f["class"], c, "class:\n{f:#}"),
        None => assert!(f["class"].is_null(), "no class expected:\n{f:#}"),
    }
    assert_eq!(f["severity"], "error", "severity:\n{f:#}");
    assert_eq!(f["state"], "ongoing", "state:\n{f:#}");
    let impact = &f["impact"];
    assert!(impact.is_object(), "no impact:\n{f:#}");
    assert_eq!(impact["requests"], n, "impact.requests:\n{f:#}");
    assert_eq!(impact["client_errors"], n, "impact.client_errors:\n{f:#}");
    assert_eq!(impact["retried_ok"], 0, "impact.retried_ok:\n{f:#}");
    let mut statuses = serde_json::Map::new();
    statuses.insert(status.to_string(), n.into());
    assert_eq!(
        impact["statuses"],
        Value::Object(statuses),
        "impact.statuses:\n{f:#}"
    );
    assert_eq!(f["count"], n, "count:\n{f:#}");
}

/// Asserts that the run read the scenario's error and access logs (`inputs`), so a quiet
/// diagnosis is one of these logs, not of nothing.
fn assert_read_logs(d: &Diagnosis, prefix: &Prefix) {
    for (key, path) in [
        ("error_logs", prefix.error_log()),
        ("access_logs", prefix.access_log()),
    ] {
        let read = d.json["inputs"][key]
            .as_array()
            .cloned()
            .unwrap_or_default();
        assert!(
            read.iter().any(|p| p.as_str() == path.to_str()),
            "inputs.{key} does not list {}:\n{:#}",
            path.display(),
            d.json["inputs"]
        );
    }
}

// ---------------------------------------------------------------------------------------------
// Several causes at once
// ---------------------------------------------------------------------------------------------

/// Three locations broken at once, each its own way, each hurting a different number of
/// clients: /a is refused (nothing listens; 12 requests, 502), /c gets the backend's own 503
/// (6 requests), /b hangs past `proxy_read_timeout 1s` (3 requests, 504).
///
/// The requests go a, c, b: the most recent failure hurt the fewest clients, so a ranking by
/// recency (or by the order in the logs) gives b, c, a, the reverse of the ranking by clients
/// hurt that `causes.md` §3 asks for (a: 12, c: 6, b: 3).
#[test]
fn several_causes_ranked_by_clients_hurt() {
    let _serial = serial();
    let mut checks = Checks::new("several_causes_ranked_by_clients_hurt");
    let prefix = Prefix::new();
    let down = format!("127.0.0.1:{}", free_port());
    let hang = TcpStub::start(Behavior::Hang);
    let s503 = TcpStub::start(Behavior::Status(503));
    let (slow, busy) = (hang.addr(), s503.addr());
    let port = free_port();
    let mut server = start_nginx(
        &prefix,
        port,
        &format!(
            "        location /a {{ proxy_pass http://{down}; }}
        location /b {{ proxy_pass http://{slow}; }}
        location /c {{ proxy_pass http://{busy}; }}"
        ),
        &[],
    );
    server.get_n("/a", 12, 502);
    server.get_n("/c", 6, 503);
    server.get_n("/b", 3, 504);
    logged(
        &prefix,
        &[REFUSED, &format!("upstream: \"http://{down}/a\"")],
        12,
    );
    logged(
        &prefix,
        &[READ_TIMEOUT, &format!("upstream: \"http://{slow}/b\"")],
        3,
    );
    logged(&prefix, &[&format!("upstream: \"http://{busy}/c\"")], 0);
    accessed_exactly(&prefix, "/a", 12, 502, &down, 502);
    accessed_exactly(&prefix, "/b", 3, 504, &slow, 504);
    accessed_exactly(&prefix, "/c", 6, 503, &busy, 503);

    // (upstream, live id, post-mortem id, class, clients hurt, status), in the expected order.
    let expected = [
        (
            down.as_str(),
            "backend-down",
            "connect-refused",
            Some("connect-refused"),
            12,
            502,
        ),
        (busy.as_str(), "backend-5xx", "backend-5xx", None, 6, 503),
        (
            slow.as_str(),
            "slow-backend",
            "read-timeout",
            Some("read-timeout"),
            3,
            504,
        ),
    ];
    // Each cause and the ranking are checked apart, so one wrong cause does not hide the others.
    let check = |checks: &mut Checks, d: &Diagnosis, mode: Mode| {
        for (up, live_id, post_id, class, n, status) in expected {
            let id = if mode == Mode::Live { live_id } else { post_id };
            checks.check(&format!("{mode:?} {id} {up}"), || {
                assert_failure(finding_for(d, up), id, class, n, status);
            });
        }
        checks.check(&format!("{mode:?} ranking"), || {
            let order: Vec<&str> = d
                .findings()
                .iter()
                .filter(|f| f["severity"] == "error")
                .map(|f| f["upstream"].as_str().unwrap_or("?"))
                .collect();
            let want: Vec<&str> = expected.iter().map(|e| e.0).collect();
            assert_eq!(
                order, want,
                "the error findings are not ranked by clients hurt (12, 6, 3):\n{:#}",
                d.json
            );
        });
    };

    let d = diagnose(&prefix, Mode::Live, &["--probe-wait-ms", "1500"]);
    summary("several_causes live", &d);
    check(&mut checks, &d, Mode::Live);
    server.stop();
    let d = diagnose(&prefix, Mode::NoProbe, &[]);
    summary("several_causes no-probe", &d);
    check(&mut checks, &d, Mode::NoProbe);
    drop((hang, s503));
    checks.finish();
}

// ---------------------------------------------------------------------------------------------
// Control under load
// ---------------------------------------------------------------------------------------------

/// The ids whose findings say clients got a 5xx (or were turned away) because of an upstream or
/// nginx's own limits: none may appear for a healthy nginx, whatever the severity.
const FAILURE_IDS: &[&str] = &[
    "backend-5xx",
    "backend-down",
    "backend-starting",
    "wrong-port",
    "bind-mismatch",
    "connect-refused",
    "connect-timeout",
    "read-timeout",
    "send-timeout",
    "slow-backend",
    "upstream-reset",
    "premature-close",
    "backend-crash",
    "invalid-response",
    "header-too-big",
    "no-live-upstreams",
    "rate-limited",
    "conn-limited",
    "worker-limits",
    "client-closed",
];

/// A healthy nginx under 300 requests from 4 clients at once: 200s from the backend, 404s the
/// backend answers itself, 404s of static files nginx does not find (logged by nginx at level
/// `[error]`: `open() "..." failed (2: No such file or directory)`) and `return 301`
/// redirects. Nothing failed: no error finding, no finding of a failure at all.
#[test]
fn healthy_control_under_load() {
    let _serial = serial();
    let mut checks = Checks::new("healthy_control_under_load");
    let prefix = Prefix::new();
    let ok = TcpStub::start(Behavior::Ok);
    let not_found = TcpStub::start(Behavior::Status(404));
    let port = free_port();
    let html = prefix.join("html");
    fs::write(html.join("present.txt"), "here\n").expect("write a static file");
    let mut server = start_nginx(
        &prefix,
        port,
        &format!(
            "        location / {{ proxy_pass http://{ok}; }}
        location /api/gone {{ proxy_pass http://{gone}; }}
        location /static/ {{ alias {html}/; }}
        location = /old {{ return 301 /new; }}",
            ok = ok.addr(),
            gone = not_found.addr(),
            html = html.display(),
        ),
        &[],
    );
    // Per client, 75 requests: (path, status, how many).
    let mix: &[(&str, u16, usize)] = &[
        ("/", 200, 40),
        ("/app/page", 200, 10),
        ("/static/present.txt", 200, 5),
        ("/static/missing.png", 404, 8),
        ("/api/gone", 404, 4),
        ("/old", 301, 8),
    ];
    let clients: Vec<_> = (0..4)
        .map(|c| {
            std::thread::spawn(move || {
                let mut got: BTreeMap<u16, usize> = BTreeMap::new();
                // Interleaved: every kind of request keeps coming for the whole run.
                let mut left: Vec<usize> = mix.iter().map(|m| m.2).collect();
                let mut k = c;
                while left.iter().any(|&n| n > 0) {
                    k = (k + 1) % mix.len();
                    if left[k] == 0 {
                        continue;
                    }
                    left[k] -= 1;
                    let (path, want, _) = mix[k];
                    let status = http::get(port, path, TIMEOUT);
                    assert_eq!(status, want, "GET {path}");
                    *got.entry(status).or_default() += 1;
                }
                got
            })
        })
        .collect();
    let mut total: BTreeMap<u16, usize> = BTreeMap::new();
    for c in clients {
        for (s, n) in c.join().expect("a client thread") {
            *total.entry(s).or_default() += n;
        }
    }
    eprintln!("clients got: {total:?}");
    assert_eq!(total.values().sum::<usize>(), 300, "{total:?}");
    assert_eq!(accessed(&prefix, &[http::USER_AGENT]).len(), 300);
    logged(
        &prefix,
        &["open() \"", "missing.png\" failed (2: No such file"],
        32,
    );
    assert_eq!(accessed(&prefix, &[" 404 ", &not_found.addr()]).len(), 16);

    let check = |d: &Diagnosis| {
        assert_read_logs(d, &prefix);
        d.assert_no_errors();
        let failures: Vec<&Value> = d
            .findings()
            .iter()
            .filter(|f| {
                FAILURE_IDS.contains(&f["id"].as_str().unwrap_or("")) || !f["class"].is_null()
            })
            .collect();
        assert!(
            failures.is_empty(),
            "a healthy nginx gave failure findings:\n{failures:#?}"
        );
    };
    let d = diagnose(&prefix, Mode::Live, &[]);
    summary("healthy_control_under_load live", &d);
    checks.check("live", || check(&d));
    server.stop();
    let d = diagnose(&prefix, Mode::NoProbe, &[]);
    summary("healthy_control_under_load no-probe", &d);
    checks.check("no-probe", || check(&d));
    drop((ok, not_found));
    checks.finish();
}

// ---------------------------------------------------------------------------------------------
// Time zones
// ---------------------------------------------------------------------------------------------

/// `YYYY/MM/DD HH:MM:SS` at the start of an error-log line as `YYYY-MM-DDTHH:MM:SS` (the JSON's
/// `first_seen`/`last_seen` form: nginx's local wall clock).
fn iso_of_error_line(line: &str) -> String {
    let stamp = line
        .get(..19)
        .unwrap_or_else(|| panic!("no time in {line:?}"));
    stamp.replacen('/', "-", 2).replacen(' ', "T", 1)
}

/// nginx runs with `TZ=zone` (its error log and `$time_local` in that zone's wall clock, the
/// latter with the zone's offset); 4 requests are refused (nothing listens). The diagnosis runs
/// with the same `TZ` and with `TZ=UTC`, live and post-mortem, with the test's 30-day window and
/// with `--since 1h`: every run must find the refusals as an ongoing error, joined with the
/// access log (`impact.requests` 4), seen from the first to the last error line as nginx wrote
/// them.
fn timezone_scenario(scenario: &'static str, zone: &str, offset: &str) {
    let zoneinfo = std::path::Path::new("/usr/share/zoneinfo").join(zone);
    assert!(
        zoneinfo.is_file(),
        "{} is missing: install tzdata (apt-get install tzdata)",
        zoneinfo.display()
    );
    let _serial = serial();
    let mut checks = Checks::new(scenario);
    let prefix = Prefix::new();
    let target = format!("127.0.0.1:{}", free_port());
    let port = free_port();
    let mut server = start_nginx(
        &prefix,
        port,
        &format!("        location / {{ proxy_pass http://{target}; }}"),
        &[("TZ", zone)],
    );
    server.get_n("/", 4, 502);
    let lines = logged(
        &prefix,
        &[REFUSED, &format!("upstream: \"http://{target}/\"")],
        4,
    );
    let (first, last) = (
        iso_of_error_line(&lines[0]),
        iso_of_error_line(&lines[lines.len() - 1]),
    );
    let access = accessed(&prefix, &[http::USER_AGENT]);
    assert_eq!(access.len(), 4, "access.log: {access:#?}");
    assert!(
        access.iter().all(|l| l.contains(&format!(" {offset}] "))),
        "nginx's $time_local is not in {zone} ({offset}):\n{access:#?}"
    );
    eprintln!("nginx access.log: {}", access[0]);

    let check = |d: &Diagnosis, id: &str| {
        let f = finding_for(d, &target);
        assert_failure(f, id, Some("connect-refused"), 4, 502);
        assert!(f["resolved_at"].is_null(), "resolved_at:\n{f:#}");
        assert_eq!(f["first_seen"], first.as_str(), "first_seen:\n{f:#}");
        assert_eq!(f["last_seen"], last.as_str(), "last_seen:\n{f:#}");
        d.assert_top(id, Some(&target), &["Connection refused"]);
    };
    let runs = |checks: &mut Checks, mode: Mode, id: &str| {
        for tz in [zone, "UTC"] {
            for window in [&[][..], &["--since", "1h"][..]] {
                let label = format!("{scenario} {mode:?} TZ={tz} {window:?}");
                let mut extra = window.to_vec();
                if mode == Mode::Live {
                    extra.extend(["--probe-wait-ms", "1500"]);
                }
                let d = diagnose_env(&prefix, mode, &extra, &[("TZ", tz)]);
                summary(&label, &d);
                checks.check(&label, || check(&d, id));
            }
        }
    };
    runs(&mut checks, Mode::Live, "backend-down");
    server.stop();
    runs(&mut checks, Mode::NoProbe, "connect-refused");
    checks.finish();
}

/// nginx in Asia/Kolkata (UTC+05:30, a half-hour offset): seen from UTC its wall clock is
/// ahead, its log lines seem to come from the future.
#[test]
fn nginx_in_another_timezone() {
    timezone_scenario("nginx_in_another_timezone", "Asia/Kolkata", "+0530");
}

/// nginx in America/New_York (UTC-05:00 or -04:00): seen from UTC its wall clock is behind, its
/// log lines seem hours old (outside a `--since 1h` read as the tool's own wall clock).
#[test]
fn nginx_in_a_timezone_behind_utc() {
    let offset = new_york_offset();
    timezone_scenario(
        "nginx_in_a_timezone_behind_utc",
        "America/New_York",
        &offset,
    );
}

/// New York's offset now (`-0500` in winter, `-0400` in summer), from `date` run in that zone.
fn new_york_offset() -> String {
    let out = std::process::Command::new("date")
        .arg("+%z")
        .env("TZ", "America/New_York")
        .output()
        .expect("run date +%z");
    let s = String::from_utf8_lossy(&out.stdout).trim().to_string();
    assert!(
        s == "-0500" || s == "-0400",
        "date +%z in America/New_York says {s:?}: is tzdata installed?"
    );
    s
}
