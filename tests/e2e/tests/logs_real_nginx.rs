//! `nginx-medic logs` on logs that a real nginx wrote while nine kinds of upstream failure were
//! staged against it (see `medic_e2e::incident`).
//!
//! Build the binary first: `cargo build -p nginx-medic && cargo test -p medic-e2e`.

use std::collections::BTreeSet;
use std::fs;
use std::path::Path;
use std::time::Duration;

use medic_e2e::incident::{Case, MixedIncident};
use medic_e2e::{free_port, http, medic, nginx, Nginx, Prefix};
use serde_json::Value;

/// The staging itself, checked against nginx's own error log, without our parser: each failure
/// produced exactly one line per request, with the wording the catalog expects.
#[test]
fn nginx_writes_every_staged_failure() {
    let incident = MixedIncident::stage();
    check_nginx_lines(&incident);
}

/// The diagnosis of that incident, told the access log's `log_format`: every class with its
/// upstream, the 5xx records and where they came from, and the join of the two logs.
#[test]
fn logs_classifies_every_staged_failure() {
    let incident = MixedIncident::stage();
    check_nginx_lines(&incident);

    let error_log = incident.error_log();
    let access_log = incident.access_log();
    let run = medic(
        [
            "logs",
            "--format",
            "json",
            "--log-format",
            nginx::LOG_FORMAT,
        ],
        [&error_log, &access_log],
    );
    assert_eq!(run.code(), Some(0), "{run}");
    let json = run.json();
    check_logs_json(&incident, &access_log, &json, &run);
    check_upstream_5xx(&incident, &json, &run);
}

/// The same incident with the access log in nginx's `combined` format, which the binary reads
/// without being told: the error log is diagnosed the same, and every 5xx is counted (by status
/// alone; `combined` names no upstream).
#[test]
fn logs_reads_combined_access_log_by_default() {
    let incident = MixedIncident::stage();
    let error_log = incident.error_log();
    let access_log = incident.access_combined_log();
    let run = medic(["logs", "--format", "json"], [&error_log, &access_log]);
    assert_eq!(run.code(), Some(0), "{run}");
    let json = run.json();
    check_logs_json(&incident, &access_log, &json, &run);
    let errors_5xx = array(&json, "/access_log/errors_5xx", &run);
    for status in [502, 503, 504] {
        let want: usize = incident
            .cases
            .iter()
            .filter(|c| c.status == status)
            .map(|c| c.requests)
            .sum();
        let got: u64 = errors_5xx
            .iter()
            .filter(|e| e["status"] == status)
            .filter_map(|e| e["count"].as_u64())
            .sum();
        assert_eq!(got, want as u64, "5xx with status {status}\n{run}");
    }
}

/// What holds whatever the access log's format: inputs, the error-log classes and upstreams,
/// the number of access records.
fn check_logs_json(
    incident: &MixedIncident,
    access_log: &Path,
    json: &Value,
    run: &medic_e2e::MedicRun,
) {
    let error_log = incident.error_log();
    let ctx = |what: &str| format!("{what}\n{run}");
    assert_eq!(json["schema"], 1, "{}", ctx("schema"));
    assert_eq!(json["kind"], "logs", "{}", ctx("kind"));

    // Inputs: both files, their kind sniffed from the content, every line read.
    let inputs = array(json, "/inputs", run);
    for (path, kind) in [(error_log.as_path(), "error"), (access_log, "access")] {
        let input = inputs
            .iter()
            .find(|i| i["path"].as_str() == path.to_str())
            .unwrap_or_else(|| panic!("{}", ctx(&format!("no input {}", path.display()))));
        assert_eq!(input["kind"], kind, "{}", ctx("input kind"));
        assert_eq!(
            input["lines"].as_u64(),
            Some(line_count(path)),
            "{}",
            ctx(&format!("lines of {}", path.display()))
        );
    }

    // Error log: every line parses; each class counted once per request.
    let failures: usize = incident.cases.iter().map(|c| c.requests).sum();
    let entries = json["error_log"]["entries"]
        .as_u64()
        .unwrap_or_else(|| panic!("{}", ctx("error_log.entries")));
    assert!(
        entries as usize >= failures && entries <= line_count(&error_log),
        "{}",
        ctx(&format!("error_log.entries {entries}: want {failures}..={} (the failures, and at most every line)", line_count(&error_log)))
    );
    assert_eq!(
        json["error_log"]["unparsed"]["count"],
        0,
        "{}",
        ctx("every line nginx wrote is in the grammar")
    );
    let classes = array(json, "/error_log/classes", run);
    let staged: BTreeSet<&str> = incident.cases.iter().map(|c| c.class).collect();
    for c in classes {
        let class = c["class"].as_str().unwrap_or_default();
        assert!(
            class == "other" || staged.contains(class),
            "{}",
            ctx(&format!("class {class:?} was not staged"))
        );
    }
    for case in &incident.cases {
        let c = classes
            .iter()
            .find(|c| c["class"] == case.class)
            .unwrap_or_else(|| panic!("{}", ctx(&format!("class {} missing", case.class))));
        assert_eq!(
            c["count"].as_u64(),
            Some(case.requests as u64),
            "{}",
            ctx(&format!("count of {}", case.class))
        );
    }

    // Per upstream: the right peer (as nginx targets it), with an example that points at a line
    // of error.log showing that failure.
    let by_upstream = array(json, "/error_log/by_upstream", run);
    let error_text = fs::read_to_string(&error_log).expect("read error.log");
    let error_lines: Vec<&str> = error_text.lines().collect();
    for case in &incident.cases {
        let entry = by_upstream
            .iter()
            .find(|e| {
                e["class"] == case.class
                    && match &case.upstream {
                        Some(u) => e["upstream"] == **u,
                        // limit_req rejects before an upstream is chosen.
                        None => e["upstream"].is_null() || e["upstream"] == "-",
                    }
            })
            .unwrap_or_else(|| {
                panic!(
                    "{}",
                    ctx(&format!(
                        "by_upstream has no {} for {:?}",
                        case.class, case.upstream
                    ))
                )
            });
        assert!(
            entry["count"].as_u64().unwrap_or(0) >= 1,
            "{}",
            ctx(&format!("count of {}", case.class))
        );
        for t in ["first_seen", "last_seen"] {
            assert!(
                entry[t].as_str().is_some_and(|s| !s.is_empty()),
                "{}",
                ctx(&format!("{t} of {}", case.class))
            );
        }
        let source = entry["example"]["source"].as_str().unwrap_or_default();
        let (path, line) = source
            .rsplit_once(':')
            .and_then(|(p, n)| Some((p, n.parse::<usize>().ok()?)))
            .unwrap_or_else(|| {
                panic!(
                    "{}",
                    ctx(&format!("example.source {source:?} is not PATH:LINE"))
                )
            });
        assert_eq!(
            Some(path),
            error_log.to_str(),
            "{}",
            ctx("example.source path")
        );
        let cited = line
            .checked_sub(1)
            .and_then(|i| error_lines.get(i))
            .unwrap_or_else(|| {
                panic!(
                    "{}",
                    ctx(&format!("example.source {source:?}: no such line"))
                )
            });
        assert!(
            shows(case, cited),
            "{}",
            ctx(&format!("{source} is not a {} line: {cited}", case.class))
        );
    }

    // Access log: every record parsed (two warm-up requests, then each location per round).
    let records = 2 + medic_e2e::incident::ROUNDS * (incident.cases.len() + 1);
    assert_eq!(
        json["access_log"]["records"].as_u64(),
        Some(records as u64),
        "{}",
        ctx("access_log.records")
    );
    assert_eq!(line_count(access_log), records as u64, "access.log lines");
}

/// Each failure's 5xx counted under its upstream, and made by nginx, not by the upstream. The
/// format has no `$upstream_header_time`, so a 502/504 whose `$upstream_status` nginx itself set
/// to 502/504 may honestly be "unknown"; a limit_req 503 (`$upstream_status` "-") can only be
/// nginx's. Then the join of the two logs.
fn check_upstream_5xx(incident: &MixedIncident, json: &Value, run: &medic_e2e::MedicRun) {
    let ctx = |what: &str| format!("{what}\n{run}");
    let errors_5xx = array(json, "/access_log/errors_5xx", run);
    for case in &incident.cases {
        let matching: Vec<&Value> = errors_5xx
            .iter()
            .filter(|e| {
                e["status"] == case.status
                    && match &case.upstream {
                        Some(u) => e["upstream"] == **u,
                        None => true,
                    }
            })
            .collect();
        let count: u64 = matching.iter().filter_map(|e| e["count"].as_u64()).sum();
        assert_eq!(
            count,
            case.requests as u64,
            "{}",
            ctx(&format!(
                "errors_5xx for {} {:?} {}",
                case.class, case.upstream, case.status
            ))
        );
        for e in matching {
            let origin = e["origin"].as_str().unwrap_or_default();
            let allowed: &[&str] = if case.upstream.is_some() {
                &["nginx", "unknown"]
            } else {
                &["nginx"]
            };
            assert!(
                allowed.contains(&origin),
                "{}",
                ctx(&format!(
                    "origin {origin:?} of {} {}: want one of {allowed:?}",
                    case.class, case.status
                ))
            );
            if case.upstream.is_none() {
                // nginx writes "-" for $upstream_addr when no upstream was chosen.
                assert!(
                    e["upstream"].is_null() || e["upstream"] == "-",
                    "{}",
                    ctx(&format!("upstream of the limit_req 503: {}", e["upstream"]))
                );
            }
        }
    }

    // The join: each failure line matched to its access record with the right status (the
    // limit_req ones too, though neither log names an upstream for them), and no 5xx left
    // unexplained: every one of them has its error-log line.
    let matched = array(json, "/join/matched", run);
    for case in &incident.cases {
        let count: u64 = matched
            .iter()
            .filter(|m| m["class"] == case.class && m["status"] == case.status)
            .filter_map(|m| m["count"].as_u64())
            .sum();
        assert_eq!(
            count,
            case.requests as u64,
            "{}",
            ctx(&format!("join.matched {} -> {}", case.class, case.status))
        );
    }
    assert_eq!(
        json["join"]["unexplained_5xx"].as_array().map(Vec::len),
        Some(0),
        "{}",
        ctx("join.unexplained_5xx")
    );
}

/// Unreadable inputs are named on stderr and skipped; only when nothing could be read does the
/// run fail (exit 2).
#[test]
fn logs_reports_unreadable_inputs() {
    let prefix = Prefix::new();
    let port = free_port();
    let refused = format!("127.0.0.1:{}", free_port());
    let body = format!(
        "    server {{\n        listen 127.0.0.1:{port};\n        location / {{\n            proxy_pass http://{refused};\n        }}\n    }}"
    );
    let mut server = Nginx::start(&prefix, &nginx::config(&prefix, &body), port);
    assert_eq!(http::get(port, "/", Duration::from_secs(10)), 502);
    server.stop();
    let error_log = prefix.error_log();
    assert!(
        fs::read_to_string(&error_log)
            .expect("read error.log")
            .contains("(111: Connection refused) while connecting to upstream"),
        "{}",
        server.diagnostics()
    );

    let dir = prefix.join("conf");
    let missing = prefix.join("logs/no-such.log");

    let run = medic(["logs", "--format", "json"], [&dir, &missing, &error_log]);
    assert_eq!(
        run.code(),
        Some(0),
        "a readable log among bad inputs:\n{run}"
    );
    for bad in [&dir, &missing] {
        assert!(
            run.stderr.contains(bad.to_str().expect("UTF-8 path")),
            "stderr does not name {}:\n{run}",
            bad.display()
        );
    }
    let json = run.json();
    let by_upstream = array(&json, "/error_log/by_upstream", &run);
    assert!(
        by_upstream
            .iter()
            .any(|e| e["class"] == "connect-refused" && e["upstream"] == *refused),
        "connect-refused for {refused}:\n{run}"
    );

    let run = medic(["logs", "--format", "json"], [&dir, &missing]);
    assert_eq!(run.code(), Some(2), "only bad inputs:\n{run}");
    for bad in [&dir, &missing] {
        assert!(
            run.stderr.contains(bad.to_str().expect("UTF-8 path")),
            "stderr does not name {}:\n{run}",
            bad.display()
        );
    }
}

/// Every case has exactly one error-log line per request, with the expected wording.
fn check_nginx_lines(incident: &MixedIncident) {
    let log = || fs::read_to_string(incident.error_log()).unwrap_or_default();
    for case in &incident.cases {
        let lines = incident.nginx_lines(case);
        assert_eq!(
            lines.len(),
            case.requests,
            "{}: want {} lines containing {:?} for GET {}\n--- error.log ---\n{}",
            case.class,
            case.requests,
            case.nginx_says,
            case.location,
            log()
        );
    }
}

/// Whether an error-log line is one of `case`'s.
fn shows(case: &Case, line: &str) -> bool {
    line.contains(&format!("request: \"GET {} HTTP/1.1\"", case.location))
        && case.nginx_says.iter().all(|s| line.contains(s))
}

fn line_count(path: &Path) -> u64 {
    fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("read {}: {e}", path.display()))
        .lines()
        .count() as u64
}

/// The array at a JSON pointer, or a panic that shows the run.
fn array<'a>(json: &'a Value, pointer: &str, run: &medic_e2e::MedicRun) -> &'a Vec<Value> {
    json.pointer(pointer)
        .and_then(Value::as_array)
        .unwrap_or_else(|| panic!("{pointer} is not an array\n{run}"))
}
