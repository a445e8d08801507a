//! `nginx-medic watch` on a real nginx whose backend goes down, then comes back.
//!
//! 1. nginx (own prefix and port) proxies to `medic-upstream` (its own process) and answers 200;
//! 2. `watch --config` follows nginx's logs from their end, probes on, metrics on loopback;
//! 3. the backend is killed (by PID) and clients get real 502s: `incident-open` must come
//!    within 2 s of the first failing request, naming `backend-down` at that target with the
//!    error-log line as evidence, and the probe that saw nothing listen;
//! 4. the backend starts again and clients get 200s: `incident-close` must follow, saying the
//!    target answers the probes;
//! 5. the counters `watch` serves equal what `logs --format json` counts on the same files.
//!
//! Build the binary first: `cargo build -p nginx-medic && cargo test -p medic-e2e --test
//! watch_real_nginx`.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use medic_e2e::{free_port, http, medic_bin, nginx, wait_until, Nginx, Prefix};
use serde_json::Value;

/// `medic-upstream --listen ADDR`, our child, killed by PID on drop.
struct App(Child);

impl App {
    fn start(addr: SocketAddr) -> App {
        let bin = PathBuf::from(env!("CARGO_BIN_EXE_medic-upstream"));
        let child = Command::new(&bin)
            .args(["--listen", &addr.to_string()])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("spawn {}: {e}", bin.display()));
        assert!(
            wait_until(Duration::from_secs(5), || {
                TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok()
            }),
            "medic-upstream did not listen on {addr} within 5 s"
        );
        App(child)
    }
}

impl Drop for App {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A running `watch`, killed by PID on drop.
struct Watch {
    child: Child,
    metrics: String,
    events: PathBuf,
}

impl Drop for Watch {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Watch {
    fn start(args: &[&str], events: &Path) -> Watch {
        let mut child = Command::new(medic_bin())
            .arg("watch")
            .args(["--metrics-listen", "127.0.0.1:0", "--events"])
            .arg(events)
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("starting nginx-medic watch");
        let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
        let mut metrics = None;
        let mut seen = String::new();
        for line in lines.by_ref() {
            let line = line.expect("watch's stderr");
            seen.push_str(&line);
            seen.push('\n');
            if let Some(url) = line.strip_prefix("nginx-medic: metrics at http://") {
                metrics = Some(url.trim_end_matches("/metrics").to_string());
            }
            if line.starts_with("nginx-medic: watching ") {
                break;
            }
        }
        eprint!("{seen}");
        std::thread::spawn(move || {
            for l in lines.map_while(Result::ok) {
                eprintln!("watch: {l}");
            }
        });
        Watch {
            child,
            metrics: metrics.unwrap_or_else(|| panic!("no metrics address:\n{seen}")),
            events: events.to_path_buf(),
        }
    }

    fn events(&self) -> Vec<Value> {
        std::fs::read_to_string(&self.events)
            .unwrap_or_default()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
            .collect()
    }

    /// Waits for the first event of `kind` for which `matches` holds.
    fn wait_for(
        &self,
        kind: &str,
        timeout: Duration,
        matches: impl Fn(&Value) -> bool,
    ) -> Option<Value> {
        let end = Instant::now() + timeout;
        loop {
            if let Some(e) = self
                .events()
                .into_iter()
                .find(|e| e["event"] == kind && matches(e))
            {
                return Some(e);
            }
            if Instant::now() > end {
                return None;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn metrics(&self) -> String {
        let mut s = TcpStream::connect(&self.metrics).expect("metrics endpoint");
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        write!(
            s,
            "GET /metrics HTTP/1.0\r\nHost: x\r\nAccept: application/openmetrics-text\r\n\r\n"
        )
        .unwrap();
        let mut body = String::new();
        s.read_to_string(&mut body).unwrap();
        body.split_once("\r\n\r\n")
            .map(|(_, b)| b.to_string())
            .unwrap_or_default()
    }
}

fn sample(metrics: &str, key: &str) -> f64 {
    metrics
        .lines()
        .find_map(|l| l.strip_prefix(key)?.trim().parse().ok())
        .unwrap_or(0.0)
}

#[test]
fn backend_down_then_up_opens_and_closes_an_incident() {
    let prefix = Prefix::new();
    let port = free_port();
    let backend: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
    let body = format!(
        "    server {{
        listen 127.0.0.1:{port};
        server_name app.test;
        proxy_connect_timeout 1s;
        proxy_read_timeout 2s;
        location / {{
            proxy_pass http://{backend};
        }}
    }}"
    );
    let conf = nginx::config(&prefix, &body);
    let t = nginx::test_config(&prefix, &conf);
    assert!(t.ok, "nginx -t: {}", t.stderr);
    let nginx = Nginx::start(&prefix, &conf, port);
    let app = App::start(backend);
    nginx.get_n("/", 3, 200);

    let events = prefix.join("events.jsonl");
    let prefix_s = prefix.display().to_string();
    let conf_path = prefix.conf().display().to_string();
    let w = Watch::start(
        &[
            "--config",
            &conf_path,
            "--prefix",
            &prefix_s,
            "--quiet",
            "2",
            "--probe-interval",
            "1",
        ],
        &events,
    );
    // The backend goes away: the next requests are refused, for real.
    drop(app);
    let failed_at = Instant::now();
    nginx.get_n("/", 5, 502);
    let (refused, _) = prefix.error_lines_with(&["connect() failed (111: Connection refused)"]);
    assert_eq!(
        refused.len(),
        5,
        "the staging: five refusals in nginx's error log"
    );

    let open = w
        .wait_for("incident-open", Duration::from_secs(10), |_| true)
        .unwrap_or_else(|| panic!("no incident-open: {:#?}", w.events()));
    let took = failed_at.elapsed();
    eprintln!("incident-open {took:?} after the first failing request: {open:#}");
    assert!(
        took <= Duration::from_secs(2),
        "incident-open took {took:?} (target 2 s)"
    );
    assert_eq!(open["cause"], "backend-down", "{open:#}");
    assert_eq!(open["upstream"], backend.to_string(), "{open:#}");
    let evidence = open["evidence"].as_array().unwrap();
    let error_log = prefix.error_log().display().to_string();
    assert!(
        evidence.iter().any(|e| e["kind"] == "log"
            && e["source"]
                .as_str()
                .unwrap()
                .starts_with(&format!("{error_log}:"))),
        "the evidence cites the error log's lines: {open:#}"
    );
    assert!(
        evidence.iter().any(|e| e["kind"] == "probe"),
        "the incident opens with what the probe saw: {open:#}"
    );
    let probe = w
        .wait_for("probe", Duration::from_secs(1), |e| {
            e["upstream"] == backend.to_string()
        })
        .expect("a probe event");
    assert_eq!(probe["answers"], false, "{probe:#}");

    // Back up: the clients get 200s, the probe sees it answer, the incident closes.
    let _app = App::start(backend);
    nginx.get_n("/", 3, 200);
    let close = w
        .wait_for("incident-close", Duration::from_secs(20), |_| true)
        .unwrap_or_else(|| panic!("no incident-close: {:#?}", w.events()));
    eprintln!("incident-close: {close:#}");
    assert_eq!(close["incident"], open["incident"]);
    assert!(
        ["answers", "resolved"].contains(&close["closed"]["how"].as_str().unwrap()),
        "{close:#}"
    );
    assert_eq!(close["count"], 5, "{close:#}");

    // What it counted equals what `logs` counts on the same files.
    let m = w.metrics();
    let report = medic_e2e::medic(
        [
            "logs",
            "--format",
            "json",
            "--no-progress",
            "--error-log",
            &error_log,
            "--access-log",
            &prefix.access_log().display().to_string(),
        ],
        Vec::<PathBuf>::new(),
    )
    .json();
    let refused_key = format!(
        r#"nginx_medic_upstream_failures_total{{class="connect-refused",upstream="{backend}"}}"#
    );
    assert_eq!(sample(&m, &refused_key), 5.0, "{m}");
    let by_upstream = report["error_log"]["by_upstream"].as_array().unwrap();
    let logged: u64 = by_upstream
        .iter()
        .filter(|c| c["class"] == "connect-refused")
        .map(|c| c["count"].as_u64().unwrap())
        .sum();
    assert_eq!(logged, 5);
    assert_eq!(
        sample(&m, r#"nginx_medic_incidents_total{cause="backend-down"}"#),
        1.0,
        "{m}"
    );
    assert_eq!(
        sample(
            &m,
            &format!(r#"nginx_medic_incidents_open{{cause="backend-down",upstream="{backend}"}}"#)
        ),
        0.0,
        "{m}"
    );
    let _ = http::USER_AGENT;
}
