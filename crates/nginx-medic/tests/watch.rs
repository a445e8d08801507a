//! `nginx-medic watch` on files: the counters it serves equal what `logs --format json` counts
//! on the same lines, the metrics pass `promtool check metrics`, and a replay opens and closes
//! incidents with evidence that points at the lines.
//!
//! The real-nginx, real-Prometheus and rotation tests are in `tests/e2e` and
//! `crates/medic-follow`.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

const BIN: &str = env!("CARGO_BIN_EXE_nginx-medic");

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// A `watch` started by the test, killed (by PID) when dropped.
struct Watch {
    child: Child,
    metrics: String,
}

impl Drop for Watch {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start(args: &[&str]) -> Watch {
    let mut child = Command::new(BIN)
        .arg("watch")
        .args(["--metrics-listen", "127.0.0.1:0"])
        .args(args)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("starting nginx-medic watch");
    let stderr = child.stderr.take().expect("piped stderr");
    let mut lines = BufReader::new(stderr).lines();
    let mut metrics = None;
    let mut seen = String::new();
    for line in lines.by_ref() {
        let line = line.expect("reading watch's stderr");
        seen.push_str(&line);
        seen.push('\n');
        if let Some(url) = line.strip_prefix("nginx-medic: metrics at http://") {
            metrics = Some(url.trim_end_matches("/metrics").to_string());
        }
        if line.starts_with("nginx-medic: watching ") {
            break;
        }
    }
    // Keep draining stderr so the process never blocks on a full pipe.
    std::thread::spawn(move || for _ in lines {});
    let metrics =
        metrics.unwrap_or_else(|| panic!("watch did not say where its metrics are:\n{seen}"));
    Watch { child, metrics }
}

/// `GET /metrics` as Prometheus asks (OpenMetrics), or as `curl` does (the classic format).
fn get(addr: &str, path: &str) -> String {
    fetch(addr, path, true)
}

fn fetch(addr: &str, path: &str, open_metrics: bool) -> String {
    let mut s = TcpStream::connect(addr).expect("connecting to the metrics endpoint");
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let accept = if open_metrics {
        "application/openmetrics-text;version=1.0.0,text/plain;version=0.0.4;q=0.5"
    } else {
        "*/*"
    };
    write!(
        s,
        "GET {path} HTTP/1.0\r\nHost: {addr}\r\nAccept: {accept}\r\n\r\n"
    )
    .unwrap();
    let mut body = String::new();
    s.read_to_string(&mut body).unwrap();
    let (head, body) = body.split_once("\r\n\r\n").expect("an HTTP response");
    assert!(
        head.starts_with("HTTP/1.0 200") || head.starts_with("HTTP/1.1 200"),
        "{head}"
    );
    let kind = if open_metrics {
        "application/openmetrics-text"
    } else {
        "text/plain; version=0.0.4"
    };
    assert!(head.to_ascii_lowercase().contains(kind), "{head}");
    body.to_string()
}

/// `name{labels}` to value, for every sample.
fn samples(text: &str) -> BTreeMap<String, f64> {
    text.lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
        .filter_map(|l| {
            let (k, v) = l.rsplit_once(' ')?;
            Some((k.to_string(), v.parse().ok()?))
        })
        .collect()
}

fn logs_json(error: &Path, access: &Path) -> Value {
    let out = Command::new(BIN)
        .args(["logs", "--format", "json", "--no-progress", "--error-log"])
        .arg(error)
        .arg("--access-log")
        .arg(access)
        .output()
        .expect("running logs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("logs JSON")
}

/// What `logs --format json` counts, as the metrics name it.
fn expected(report: &Value) -> BTreeMap<String, f64> {
    let mut want = BTreeMap::new();
    let e = &report["error_log"];
    let a = &report["access_log"];
    want.insert(
        r#"nginx_medic_log_lines_total{log="error"}"#.to_string(),
        e["lines"].as_f64().unwrap(),
    );
    want.insert(
        r#"nginx_medic_log_lines_total{log="access"}"#.to_string(),
        a["lines"].as_f64().unwrap(),
    );
    want.insert(
        r#"nginx_medic_parse_errors_total{log="error"}"#.to_string(),
        e["unparsed"]["count"].as_f64().unwrap(),
    );
    want.insert(
        r#"nginx_medic_parse_errors_total{log="access"}"#.to_string(),
        a["unparsed"]["count"].as_f64().unwrap(),
    );
    let failures: Vec<&str> = e["classes"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["failure"] == true)
        .map(|c| c["class"].as_str().unwrap())
        .collect();
    for c in e["by_upstream"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| failures.contains(&c["class"].as_str().unwrap()))
    {
        let k = format!(
            r#"nginx_medic_upstream_failures_total{{class="{}",upstream="{}"}}"#,
            c["class"].as_str().unwrap(),
            escape(c["upstream"].as_str().unwrap())
        );
        *want.entry(k).or_insert(0.0) += c["count"].as_f64().unwrap();
    }
    for c in a["errors_5xx"].as_array().unwrap() {
        let k = format!(
            r#"nginx_medic_responses_total{{upstream="{}",status="{}",origin="{}"}}"#,
            escape(c["upstream"].as_str().unwrap()),
            c["status"],
            c["origin"].as_str().unwrap()
        );
        *want.entry(k).or_insert(0.0) += c["count"].as_f64().unwrap();
    }
    want
}

/// OpenMetrics label value escaping.
fn escape(s: &str) -> String {
    s.replace('\\', r"\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

/// The counters of the families `logs` also counts.
fn counted(got: &BTreeMap<String, f64>) -> BTreeMap<String, f64> {
    got.iter()
        .filter(|(k, v)| {
            (k.starts_with("nginx_medic_log_lines_total")
                || k.starts_with("nginx_medic_parse_errors_total")
                || k.starts_with("nginx_medic_upstream_failures_total")
                || k.starts_with("nginx_medic_responses_total"))
                && (**v != 0.0 || k.starts_with("nginx_medic_log_lines_total"))
        })
        .map(|(k, v)| (k.clone(), *v))
        .collect()
}

fn replay_equals_logs(error: &Path, access: &Path) {
    let want: BTreeMap<String, f64> = expected(&logs_json(error, access))
        .into_iter()
        .filter(|(k, v)| *v != 0.0 || k.starts_with("nginx_medic_log_lines_total"))
        .collect();
    let events = tempfile::NamedTempFile::new().unwrap();
    let w = start(&[
        "--no-probe",
        "--from-start",
        "--error-log",
        error.to_str().unwrap(),
        "--access-log",
        access.to_str().unwrap(),
        "--events",
        events.path().to_str().unwrap(),
    ]);
    let lines_key = r#"nginx_medic_log_lines_total{log="access"}"#;
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut got;
    loop {
        got = counted(&samples(&get(&w.metrics, "/metrics")));
        if got.get(lines_key) == want.get(lines_key) || Instant::now() > deadline {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(
        want.values().sum::<f64>() > 0.0 && want.len() > 4,
        "the input counts nothing: {want:?}"
    );
    assert_eq!(
        got, want,
        "watch's counters differ from `logs --format json`"
    );
}

#[test]
fn counters_equal_logs_on_the_bundled_incident() {
    let dir = root().join("examples/502-mixed-incident");
    replay_equals_logs(&dir.join("error.log"), &dir.join("access.log"));
}

#[test]
fn counters_equal_logs_on_real_lines_of_the_corpus() {
    let corpus = root().join("crates/medic-parse/tests/corpus/logs");
    replay_equals_logs(
        &corpus.join("error-lines.unique.log"),
        &corpus.join("tstack-lnav/test/logfile_shop_access_log.0"),
    );
}

#[test]
fn metrics_pass_promtool_and_a_replay_opens_and_closes_incidents() {
    let dir = root().join("examples/502-mixed-incident");
    let events = tempfile::NamedTempFile::new().unwrap();
    let w = start(&[
        "--no-probe",
        "--from-start",
        "--error-log",
        dir.join("error.log").to_str().unwrap(),
        "--access-log",
        dir.join("access.log").to_str().unwrap(),
        "--events",
        events.path().to_str().unwrap(),
        // The bundled incident is weeks old: without probes, incidents close once quiet this long.
        "--close-after",
        "1",
    ]);
    let read_events = || -> Vec<Value> {
        std::fs::read_to_string(events.path())
            .unwrap()
            .lines()
            .map(|l| serde_json::from_str(l).expect("each event is one JSON line"))
            .collect()
    };
    let ok = wait(Duration::from_secs(20), || {
        let ev = read_events();
        let opened = ev.iter().filter(|e| e["event"] == "incident-open").count();
        let closed = ev.iter().filter(|e| e["event"] == "incident-close").count();
        opened >= 5 && closed == opened
    });
    let ev = read_events();
    assert!(ok, "incidents did not open and close: {ev:#?}");
    let body = get(&w.metrics, "/metrics");
    let opened = ev
        .iter()
        .filter(|e| e["event"] == "incident-open")
        .collect::<Vec<_>>();
    for e in &opened {
        let evidence = e["evidence"].as_array().unwrap();
        assert!(
            evidence.iter().any(|x| x["kind"] == "log"
                && x["source"]
                    .as_str()
                    .unwrap()
                    .contains("502-mixed-incident/error.log:")),
            "an incident without its log line: {e:#}"
        );
        assert!(e["count"].as_u64().unwrap() > 0, "{e:#}");
    }
    for e in ev.iter().filter(|e| e["event"] == "incident-close") {
        assert_eq!(e["closed"]["how"], "quiet", "{e:#}");
        assert!(
            e["closed"]["why"].as_str().unwrap().contains("not probed"),
            "{e:#}"
        );
    }
    // One incident per cause, each counted once.
    let samples = samples(&body);
    let total: f64 = samples
        .iter()
        .filter(|(k, _)| k.starts_with("nginx_medic_incidents_total{"))
        .map(|(_, v)| v)
        .sum();
    assert_eq!(total, opened.len() as f64, "{body}");
    assert!(samples
        .iter()
        .filter(|(k, _)| k.starts_with("nginx_medic_incidents_open{"))
        .all(|(_, v)| *v == 0.0));

    // promtool reads the classic text format: the same samples, counters named `_total`.
    let classic = fetch(&w.metrics, "/metrics", false);
    assert_eq!(super_samples(&classic), samples, "the two formats disagree");
    let body = classic;
    let mut promtool = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("promtool (Debian package prometheus; scripts/test installs it)");
    promtool
        .stdin
        .take()
        .unwrap()
        .write_all(body.as_bytes())
        .unwrap();
    let out = promtool.wait_with_output().unwrap();
    assert!(
        out.status.success() && out.stdout.is_empty() && out.stderr.is_empty(),
        "promtool check metrics is not clean:\n{}{}\n{body}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// [`samples`], for a shadowed name.
fn super_samples(text: &str) -> BTreeMap<String, f64> {
    samples(text)
}

fn wait(timeout: Duration, mut f: impl FnMut() -> bool) -> bool {
    let end = Instant::now() + timeout;
    while Instant::now() < end {
        if f() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    f()
}

#[test]
fn a_terminal_shows_the_open_incidents_with_sparklines() {
    let dir = root().join("examples/502-mixed-incident");
    // util-linux's `script` gives watch a pseudo-terminal, as an operator's shell would.
    let cmd = format!(
        "{BIN} watch --no-probe --from-start --error-log {} --access-log {} --exit-after 2 --close-after 100000000",
        dir.join("error.log").display(),
        dir.join("access.log").display()
    );
    let out = Command::new("script")
        .args(["-qec", &cmd, "/dev/null"])
        .output()
        .expect("script (util-linux)");
    let screen = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{screen}");
    // Redrawn in place: home + clear, then the incidents.
    assert!(screen.contains("\x1b[H\x1b[2J"), "{screen}");
    let last = screen.rsplit("\x1b[H\x1b[2J").next().unwrap();
    assert!(last.contains("nginx-medic watch"), "{last}");
    assert!(last.contains("connect-refused 127.0.0.1:42473"), "{last}");
    assert!(
        last.contains("examples/502-mixed-incident/error.log:7"),
        "the evidence line: {last}"
    );
    assert!(last.contains('█'), "a sparkline: {last}");
}
