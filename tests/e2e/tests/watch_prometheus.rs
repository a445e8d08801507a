//! A fleet of `nginx-medic watch` processes scraped by a real Prometheus, and the example
//! Prometheus files of `examples/watch/` checked by the real `promtool`.
//!
//! Two hosts, each one `watch` over its own error.log and access.log (real nginx line shapes,
//! from `examples/502-mixed-incident/`): host A's backend refuses connections 7 times, host B's
//! times out 5 times. A Prometheus of our own scrapes both every second; what it stores is
//! queried through its HTTP API, as a dashboard or an alert would: 7 and 5 failures, per class,
//! upstream and status; then 3 more refusals appended to host A's log must reach Prometheus
//! within seconds. Prometheus also loads `examples/watch/alerts.yml`, and every rule must evaluate
//! against the real series without error.
//!
//! Run: `cargo build -p nginx-medic && cargo test -p medic-e2e --test watch_prometheus`.
//! Needs `prometheus` and `promtool` (Debian's `prometheus` package, which `scripts/test`
//! installs; the system service is never used: this test starts its own Prometheus on a free
//! port with its own config and storage in a temporary directory, and stops it by PID).

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::fs::{self, File, OpenOptions};
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use medic_e2e::busy::SETPRIV;
use medic_e2e::{free_port, medic_bin, nginx, wait_until};
use serde_json::Value;

const PROMETHEUS: &str = "/usr/bin/prometheus";
const PROMTOOL: &str = "/usr/bin/promtool";
const INSTALL_HINT: &str =
    "apt-get install prometheus (scripts/test does; then `systemctl disable --now prometheus` \
     if the package started the system service: this test never uses it)";

/// How often our Prometheus scrapes and evaluates: fast enough for a test measured in seconds.
const SCRAPE_INTERVAL: &str = "1s";

/// `examples/watch/` of this repository.
fn examples_watch() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/watch")
}

/// The example configs pass the checks their README tells users to run.
#[test]
fn example_prometheus_files_pass_promtool() {
    let dir = examples_watch();
    for argv in [
        &["check", "config", "prometheus.yml"][..],
        &["check", "rules", "alerts.yml"],
        &["test", "rules", "alerts.test.yml"],
    ] {
        let out = promtool(argv, &dir, None);
        assert!(out.ok, "{out}");
        eprintln!("{out}");
    }
}

/// Two watches, one Prometheus: the failures each host logged arrive in Prometheus per instance,
/// class, upstream and status, and new lines follow within seconds.
#[test]
fn prometheus_scrapes_a_fleet_of_watches() {
    let started = Instant::now();
    let prometheus_bin = program(PROMETHEUS, INSTALL_HINT);
    program(PROMTOOL, INSTALL_HINT);
    // Declared first, dropped last: every process below has stopped before its files go.
    let dir = tempfile::Builder::new()
        .prefix("medic-watch-prom-")
        .tempdir()
        .expect("create the test's temporary directory");

    let now = SystemTime::now();
    let mut a = Host::write(dir.path(), "a", now, HOST_A_FAILURES, Failure::Refused);
    let b = Host::write(dir.path(), "b", now, HOST_B_FAILURES, Failure::Timeout);

    // --- the watches, read directly -------------------------------------------------------------
    let watch_a = a.start_watch(dir.path());
    let watch_b = b.start_watch(dir.path());
    for (host, watch) in [(&a, &watch_a), (&b, &watch_b)] {
        let port = host.metrics_port;
        let mut last = None;
        let counted = wait_until(Duration::from_secs(20), || {
            let Some(resp) = try_get(port, "/metrics") else {
                return false;
            };
            let n = sample_sum(&resp.body, "nginx_medic_upstream_failures_total");
            last = Some(resp);
            n == host.failures as f64
        });
        let resp = last.unwrap_or_else(|| {
            panic!(
                "watch {} never served /metrics on 127.0.0.1:{port}\n{}",
                host.name,
                watch.tail()
            )
        });
        assert!(
            counted,
            "watch {}: want {} upstream failures in /metrics within 20 s\n{}\n--- /metrics ---\n{}",
            host.name,
            host.failures,
            watch.tail(),
            resp.body
        );
        check_openmetrics(host, watch, &resp, port, dir.path());
    }
    eprintln!(
        "{:.1?}: both watches serve their failures",
        started.elapsed()
    );

    // --- Prometheus ----------------------------------------------------------------------------
    let prom = Prometheus::start(
        &prometheus_bin,
        dir.path(),
        &[a.metrics_port, b.metrics_port],
    );
    let ctx = |what: &str| {
        format!(
            "{what}\n--- prometheus ---\n{}\n--- watch a ---\n{}\n--- watch b ---\n{}",
            prom.process.tail(),
            watch_a.tail(),
            watch_b.tail()
        )
    };
    let mut targets = Value::Null;
    let up = wait_until(Duration::from_secs(30), || {
        targets = prom.api("/api/v1/targets");
        let active = targets["data"]["activeTargets"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        active.len() == 2 && active.iter().all(|t| t["health"] == "up")
    });
    assert!(
        up,
        "{}",
        ctx(&format!("both targets up within 30 s: {targets:#}"))
    );
    eprintln!("{:.1?}: Prometheus scrapes both", started.elapsed());

    // Per host, as a fleet dashboard groups them.
    let by_instance = "sum by (instance) (nginx_medic_upstream_failures_total)";
    let (instance_a, instance_b) = (a.instance(), b.instance());
    let want = |na: usize, nb: usize| {
        BTreeMap::from([
            (instance_a.clone(), na as f64),
            (instance_b.clone(), nb as f64),
        ])
    };
    let mut got = BTreeMap::new();
    let seen = wait_until(Duration::from_secs(15), || {
        got = prom.query_by(by_instance, &["instance"]);
        got == want(a.failures, b.failures)
    });
    assert!(
        seen,
        "{}",
        ctx(&format!(
            "{by_instance}: got {got:?}, want {:?}",
            want(a.failures, b.failures)
        ))
    );

    // The labels an alert names: class and upstream as nginx wrote them, status of the 5xx.
    let got = prom.query_by(
        "sum by (instance, class, upstream) (nginx_medic_upstream_failures_total)",
        &["instance", "class", "upstream"],
    );
    let want_classes = BTreeMap::from([
        (
            format!("{}|connect-refused|{UPSTREAM_A}", a.instance()),
            a.failures as f64,
        ),
        (
            format!("{}|read-timeout|{UPSTREAM_B}", b.instance()),
            b.failures as f64,
        ),
    ]);
    assert_eq!(
        got,
        want_classes,
        "{}",
        ctx("failures by class and upstream")
    );
    let got = prom.query_by(
        "sum by (instance, upstream, status) (nginx_medic_responses_total)",
        &["instance", "upstream", "status"],
    );
    let want_status = BTreeMap::from([
        (
            format!("{}|{UPSTREAM_A}|502", a.instance()),
            a.failures as f64,
        ),
        (
            format!("{}|{UPSTREAM_B}|504", b.instance()),
            b.failures as f64,
        ),
    ]);
    assert_eq!(
        got,
        want_status,
        "{}",
        ctx("5xx responses by upstream and status")
    );
    let got = prom.query_by(
        "sum by (instance, log) (nginx_medic_log_lines_total)",
        &["instance", "log"],
    );
    let want_lines = BTreeMap::from([
        (format!("{}|access", a.instance()), a.access_lines() as f64),
        (format!("{}|error", a.instance()), a.error_lines() as f64),
        (format!("{}|access", b.instance()), b.access_lines() as f64),
        (format!("{}|error", b.instance()), b.error_lines() as f64),
    ]);
    assert_eq!(got, want_lines, "{}", ctx("log lines read"));
    eprintln!(
        "{:.1?}: Prometheus has 7 and 5 failures, by class, upstream and status",
        started.elapsed()
    );

    // --- new lines ------------------------------------------------------------------------------
    let appended_at = Instant::now();
    a.append(SystemTime::now(), HOST_A_MORE);
    let mut got = BTreeMap::new();
    let followed = wait_until(Duration::from_secs(10), || {
        got = prom.query_by(by_instance, &["instance"]);
        got == want(a.failures, b.failures)
    });
    assert!(
        followed,
        "{}",
        ctx(&format!(
            "{HOST_A_MORE} lines appended to {}: {by_instance} got {got:?} after 10 s, want {:?}",
            a.error_log.display(),
            want(a.failures, b.failures)
        ))
    );
    eprintln!(
        "{:.1?}: {HOST_A_MORE} appended failures reached Prometheus in {:.1?}",
        started.elapsed(),
        appended_at.elapsed()
    );

    // --- the example alert rules, on real series -------------------------------------------------
    let mut rules = Value::Null;
    let evaluated = wait_until(Duration::from_secs(10), || {
        rules = prom.api("/api/v1/rules");
        let all: Vec<&Value> = rules["data"]["groups"]
            .as_array()
            .into_iter()
            .flatten()
            .flat_map(|g| g["rules"].as_array().into_iter().flatten())
            .collect();
        !all.is_empty()
            && all.iter().all(|r| {
                r["health"] == "ok"
                    && r["lastEvaluation"]
                        .as_str()
                        .is_some_and(|t| !t.starts_with("0001-"))
            })
    });
    assert!(
        evaluated,
        "{}",
        ctx(&format!(
            "every rule of alerts.yml evaluated with health ok: {rules:#}"
        ))
    );
    eprintln!(
        "{:.1?}: the rules of alerts.yml evaluate cleanly",
        started.elapsed()
    );
}

// --- the two hosts' logs ------------------------------------------------------------------------

const HOST_A_FAILURES: usize = 7;
const HOST_A_MORE: usize = 3;
const HOST_B_FAILURES: usize = 5;
const UPSTREAM_A: &str = "127.0.0.1:3000";
const UPSTREAM_B: &str = "127.0.0.1:8080";
/// Successful requests logged beside the failures: they must not count as failures.
const OK_REQUESTS: usize = 2;

#[derive(Clone, Copy)]
enum Failure {
    /// The backend is down: `connect()` refused, nginx answers 502.
    Refused,
    /// The backend is too slow: nginx's `proxy_read_timeout` ran out, it answers 504.
    Timeout,
}

/// One nginx host's logs and the `watch` port that serves them.
struct Host {
    name: &'static str,
    kind: Failure,
    error_log: PathBuf,
    access_log: PathBuf,
    failures: usize,
    metrics_port: u16,
}

impl Host {
    /// Writes `failures` failed requests (an error line each and its 5xx access line) after
    /// nginx's startup notices and [`OK_REQUESTS`] successful requests.
    fn write(
        dir: &Path,
        name: &'static str,
        at: SystemTime,
        failures: usize,
        kind: Failure,
    ) -> Host {
        let host_dir = dir.join(name);
        fs::create_dir(&host_dir).expect("create a host's log directory");
        let host = Host {
            name,
            kind,
            error_log: host_dir.join("error.log"),
            access_log: host_dir.join("access.log"),
            failures,
            metrics_port: free_port(),
        };
        let t = Stamp::of(at);
        let mut error = String::new();
        // nginx's own startup lines (src/core/nginx.c, src/event/ngx_event.c), as Debian's
        // nginx 1.22.1 writes them.
        for notice in [
            "using the \"epoll\" event method",
            "nginx/1.22.1",
            "OS: Linux 6.1.0-27-amd64",
            "start worker processes",
        ] {
            writeln!(error, "{} [notice] 1200#1200: {notice}", t.error).expect("write to String");
        }
        let mut access = String::new();
        for _ in 0..OK_REQUESTS {
            writeln!(access, "{}", host.access_line(&t, true)).expect("write to String");
        }
        for i in 0..failures {
            writeln!(error, "{}", host.error_line(&t, 10 + i)).expect("write to String");
            writeln!(access, "{}", host.access_line(&t, false)).expect("write to String");
        }
        fs::write(&host.error_log, error).expect("write error.log");
        fs::write(&host.access_log, access).expect("write access.log");
        host
    }

    /// Appends `n` more failures, as nginx would: whole lines, with O_APPEND.
    fn append(&mut self, at: SystemTime, n: usize) {
        let t = Stamp::of(at);
        let (mut error, mut access) = (String::new(), String::new());
        for i in 0..n {
            writeln!(error, "{}", self.error_line(&t, 100 + i)).expect("write to String");
            writeln!(access, "{}", self.access_line(&t, false)).expect("write to String");
        }
        for (path, text) in [(&self.error_log, error), (&self.access_log, access)] {
            OpenOptions::new()
                .append(true)
                .open(path)
                .and_then(|mut f| f.write_all(text.as_bytes()))
                .unwrap_or_else(|e| panic!("append to {}: {e}", path.display()));
        }
        self.failures += n;
    }

    /// An error-log line of this host's failure, worded as nginx 1.22 words it
    /// (src/event/ngx_event_connect.c, src/http/ngx_http_upstream.c).
    fn error_line(&self, t: &Stamp, cid: usize) -> String {
        match self.kind {
            Failure::Refused => format!(
                "{} [error] 1201#1201: *{cid} connect() failed (111: Connection refused) while connecting to upstream, client: 10.0.0.7, server: shop.test, request: \"GET /api/orders HTTP/1.1\", upstream: \"http://{UPSTREAM_A}/api/orders\", host: \"shop.test\"",
                t.error
            ),
            Failure::Timeout => format!(
                "{} [error] 1201#1201: *{cid} upstream timed out (110: Connection timed out) while reading response header from upstream, client: 10.0.0.8, server: api.test, request: \"GET /report HTTP/1.1\", upstream: \"http://{UPSTREAM_B}/report\", host: \"api.test\"",
                t.error
            ),
        }
    }

    /// An access-log line in [`nginx::LOG_FORMAT`] (`combined` + `$upstream_addr
    /// $upstream_status $upstream_response_time $request_time`).
    fn access_line(&self, t: &Stamp, ok: bool) -> String {
        let (client, path, upstream) = match self.kind {
            Failure::Refused => ("10.0.0.7", "/api/orders", UPSTREAM_A),
            Failure::Timeout => ("10.0.0.8", "/report", UPSTREAM_B),
        };
        let tail = match (self.kind, ok) {
            (_, true) => format!("200 512 \"-\" \"curl/7.88.1\" {upstream} 200 0.012 0.012"),
            (Failure::Refused, false) => {
                format!("502 157 \"-\" \"curl/7.88.1\" {upstream} 502 0.000 0.000")
            }
            (Failure::Timeout, false) => {
                format!("504 167 \"-\" \"curl/7.88.1\" {upstream} 504 60.001 60.002")
            }
        };
        format!("{client} - - [{}] \"GET {path} HTTP/1.1\" {tail}", t.access)
    }

    fn error_lines(&self) -> usize {
        line_count(&self.error_log)
    }

    fn access_lines(&self) -> usize {
        line_count(&self.access_log)
    }

    /// The `instance` label Prometheus gives this host's target.
    fn instance(&self) -> String {
        format!("127.0.0.1:{}", self.metrics_port)
    }

    /// `nginx-medic watch` over this host's two logs, from their first line, without probes.
    fn start_watch(&self, dir: &Path) -> Owned {
        let mut cmd = orphan_proof(&medic_bin());
        cmd.arg("watch")
            .arg("--no-probe")
            .arg("--from-start")
            .arg("--error-log")
            .arg(&self.error_log)
            .arg("--access-log")
            .arg(&self.access_log)
            .arg("--log-format")
            .arg(nginx::LOG_FORMAT)
            .arg("--state-dir")
            .arg(dir.join(format!("{}-state", self.name)))
            .arg("--metrics-listen")
            .arg(self.instance())
            // The log times are written in UTC; the watch reads them in its local zone.
            .env("TZ", "UTC");
        Owned::spawn(&format!("watch {}", self.name), cmd, dir)
    }
}

/// A moment in nginx's two time formats, in UTC.
struct Stamp {
    /// `2026/11/21 20:40:09` (error log, `ngx_cached_err_log_time`).
    error: String,
    /// `21/Nov/2026:20:40:09 +0000` (access log, `$time_local`).
    access: String,
}

impl Stamp {
    fn of(t: SystemTime) -> Stamp {
        let secs = t
            .duration_since(UNIX_EPOCH)
            .expect("the clock is after 1970")
            .as_secs();
        let (days, rem) = (secs / 86_400, secs % 86_400);
        let (h, m, s) = (rem / 3600, rem % 3600 / 60, rem % 60);
        // Howard Hinnant's civil_from_days, for days since 1970-01-01 (no chrono in this crate).
        let z = days as i64 + 719_468;
        let era = z.div_euclid(146_097);
        let doe = z - era * 146_097;
        let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
        let mp = (5 * doy + 2) / 153;
        let d = doy - (153 * mp + 2) / 5 + 1;
        let mo = if mp < 10 { mp + 3 } else { mp - 9 };
        let y = yoe + era * 400 + i64::from(mo <= 2);
        const MONTHS: [&str; 12] = [
            "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
        ];
        Stamp {
            error: format!("{y:04}/{mo:02}/{d:02} {h:02}:{m:02}:{s:02}"),
            access: format!(
                "{d:02}/{}/{y:04}:{h:02}:{m:02}:{s:02} +0000",
                MONTHS[(mo - 1) as usize]
            ),
        }
    }
}

fn line_count(path: &Path) -> usize {
    fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("read {}: {e}", path.display()))
        .lines()
        .count()
}

// --- /metrics as OpenMetrics ----------------------------------------------------------------------

/// A watch's `/metrics`: OpenMetrics by its Content-Type (Prometheus picks its parser by it),
/// ending in `# EOF`, and clean for `promtool check metrics`.
fn check_openmetrics(host: &Host, watch: &Owned, resp: &Response, port: u16, dir: &Path) {
    let ctx = |what: &str| {
        format!(
            "watch {}: {what}\n{}\n--- /metrics ---\n{}",
            host.name,
            watch.tail(),
            resp.body
        )
    };
    assert_eq!(resp.status, 200, "{}", ctx("status of GET /metrics"));
    let content_type = resp.header("content-type").unwrap_or_default();
    assert!(
        content_type.starts_with("application/openmetrics-text"),
        "{}",
        ctx(&format!(
            "Content-Type {content_type:?}: want application/openmetrics-text"
        ))
    );
    assert!(
        resp.body.ends_with("# EOF\n"),
        "{}",
        ctx("an OpenMetrics exposition ends with `# EOF`")
    );
    for family in [
        "nginx_medic_log_lines",
        "nginx_medic_upstream_failures",
        "nginx_medic_responses",
        "nginx_medic_incidents_total",
        "nginx_medic_log_rotations",
        "nginx_medic_log_lines_suspected_lost",
        "nginx_medic_parse_errors",
    ] {
        let family = family.trim_end_matches("_total");
        assert!(
            resp.body.contains(&format!("# TYPE {family} counter\n")),
            "{}",
            ctx(&format!("a counter family {family}"))
        );
    }
    assert!(
        resp.body
            .contains("# TYPE nginx_medic_incidents_open gauge\n"),
        "{}",
        ctx("a gauge family nginx_medic_incidents_open")
    );

    // promtool (up to the newest 2.x) lints the classic text format only: given OpenMetrics it
    // sees `# HELP x` / `# TYPE x counter` with samples named `x_total`, a family without help.
    // watch serves the classic format to a client that does not ask for OpenMetrics (curl,
    // promtool): the same samples, a counter family named by its samples, no `# EOF`.
    let classic = try_get_as(port, "/metrics", "*/*").expect("the classic format");
    assert!(
        classic
            .header("content-type")
            .is_some_and(|t| t.starts_with("text/plain; version=0.0.4")),
        "{}",
        ctx("the classic format's Content-Type")
    );
    let samples = |t: &str| -> Vec<String> {
        let mut v: Vec<String> = t
            .lines()
            .filter(|l| !l.starts_with('#'))
            .map(str::to_string)
            .collect();
        v.sort();
        v
    };
    assert_eq!(
        samples(&classic.body),
        samples(&resp.body),
        "{}",
        ctx("both formats carry the same samples")
    );
    let out = promtool(&["check", "metrics"], dir, Some(&classic.body));
    assert!(
        out.ok && out.stdout.trim().is_empty() && out.stderr.trim().is_empty(),
        "{}",
        ctx(&format!(
            "promtool check metrics must be clean\n{out}\n--- as given to promtool ---\n{}",
            classic.body
        ))
    );
}

/// The sum of every sample of `name` (any labels) in an exposition.
fn sample_sum(text: &str, name: &str) -> f64 {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .filter(|l| {
            l.strip_prefix(name)
                .is_some_and(|rest| rest.starts_with('{') || rest.starts_with(' '))
        })
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

// --- promtool -------------------------------------------------------------------------------------

struct ToolRun {
    argv: String,
    ok: bool,
    stdout: String,
    stderr: String,
}

impl std::fmt::Display for ToolRun {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "$ {}\nok: {}\n--- stdout ---\n{}--- stderr ---\n{}",
            self.argv, self.ok, self.stdout, self.stderr
        )
    }
}

/// `promtool ARGV` in `dir`, with `stdin` if given; 60 s at most.
fn promtool(argv: &[&str], dir: &Path, stdin: Option<&str>) -> ToolRun {
    let bin = program(PROMTOOL, INSTALL_HINT);
    let mut child = Command::new(&bin)
        .args(argv)
        .current_dir(dir)
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("spawn {}: {e}", bin.display()));
    if let Some(text) = stdin {
        child
            .stdin
            .take()
            .expect("piped stdin")
            .write_all(text.as_bytes())
            .expect("write promtool's stdin");
    }
    let pid = child.id();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(child.wait_with_output());
    });
    let out = match rx.recv_timeout(Duration::from_secs(60)) {
        Ok(out) => out.expect("wait for promtool"),
        Err(_) => {
            // Our own child, by PID.
            let _ = Command::new("kill")
                .args(["-KILL", &pid.to_string()])
                .status();
            panic!("promtool {argv:?} (pid {pid}) did not finish within 60 s");
        }
    };
    ToolRun {
        argv: format!("promtool {} (in {})", argv.join(" "), dir.display()),
        ok: out.status.success(),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

// --- Prometheus -----------------------------------------------------------------------------------

/// A Prometheus of our own: config, storage and port of this test, the example alert rules.
struct Prometheus {
    port: u16,
    process: Owned,
}

impl Prometheus {
    fn start(bin: &Path, dir: &Path, targets: &[u16]) -> Prometheus {
        let port = free_port();
        let config = dir.join("prometheus.yml");
        let rules = examples_watch().join("alerts.yml");
        let targets = targets
            .iter()
            .map(|p| format!("'127.0.0.1:{p}'"))
            .collect::<Vec<_>>()
            .join(", ");
        fs::write(
            &config,
            format!(
                "global:\n  scrape_interval: {SCRAPE_INTERVAL}\n  scrape_timeout: {SCRAPE_INTERVAL}\n  evaluation_interval: {SCRAPE_INTERVAL}\n\
                 rule_files:\n  - '{}'\n\
                 scrape_configs:\n  - job_name: nginx-medic\n    static_configs:\n      - targets: [{targets}]\n",
                rules.display()
            ),
        )
        .expect("write prometheus.yml");
        let check = promtool(&["check", "config", "prometheus.yml"], dir, None);
        assert!(check.ok, "the test's own Prometheus config:\n{check}");

        let mut cmd = orphan_proof(bin);
        cmd.arg(format!("--config.file={}", config.display()))
            .arg(format!(
                "--storage.tsdb.path={}",
                dir.join("tsdb").display()
            ))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            // Nothing of the system installation: no console templates, no lifecycle API.
            .arg("--web.console.templates=")
            .arg("--web.console.libraries=");
        let process = Owned::spawn("prometheus", cmd, dir);
        let prom = Prometheus { port, process };
        let ready = wait_until(Duration::from_secs(30), || {
            try_get(port, "/-/ready").is_some_and(|r| r.status == 200)
        });
        assert!(
            ready,
            "Prometheus on 127.0.0.1:{port} not ready within 30 s\n{}",
            prom.process.tail()
        );
        prom
    }

    /// GET an API path; its JSON (`status` must be `success`).
    fn api(&self, path_and_query: &str) -> Value {
        let resp = try_get(self.port, path_and_query).unwrap_or_else(|| {
            panic!(
                "GET {path_and_query} from Prometheus on 127.0.0.1:{}: no answer\n{}",
                self.port,
                self.process.tail()
            )
        });
        let json: Value = serde_json::from_str(&resp.body)
            .unwrap_or_else(|e| panic!("GET {path_and_query}: not JSON ({e}): {}", resp.body));
        assert_eq!(json["status"], "success", "GET {path_and_query}: {json:#}");
        json
    }

    /// An instant query, as `label1|label2|... -> value` of each series.
    fn query_by(&self, promql: &str, labels: &[&str]) -> BTreeMap<String, f64> {
        let json = self.api(&format!("/api/v1/query?query={}", percent_encode(promql)));
        json["data"]["result"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|s| {
                let key = labels
                    .iter()
                    .map(|l| s["metric"][l].as_str().unwrap_or(""))
                    .collect::<Vec<_>>()
                    .join("|");
                let value = s["value"][1]
                    .as_str()
                    .and_then(|v| v.parse::<f64>().ok())
                    .unwrap_or(f64::NAN);
                (key, value)
            })
            .collect()
    }
}

/// `%XX` for every byte outside RFC 3986's unreserved set.
fn percent_encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

// --- HTTP -----------------------------------------------------------------------------------------

struct Response {
    status: u16,
    headers: Vec<(String, String)>,
    body: String,
}

impl Response {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// `GET path` from 127.0.0.1:port over HTTP/1.1 (`Connection: close`, chunked bodies decoded);
/// `None` if nothing answers (yet).
fn try_get(port: u16, path: &str) -> Option<Response> {
    try_get_as(
        port,
        path,
        "application/openmetrics-text;version=1.0.0,application/json;q=0.9,*/*;q=0.1",
    )
}

/// [`try_get`] with this `Accept` header.
fn try_get_as(port: u16, path: &str, accept: &str) -> Option<Response> {
    let timeout = Duration::from_secs(5);
    let mut s = TcpStream::connect_timeout(&([127, 0, 0, 1], port).into(), timeout).ok()?;
    s.set_read_timeout(Some(timeout)).ok()?;
    s.set_write_timeout(Some(timeout)).ok()?;
    let req = format!(
        "GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nAccept: {accept}\r\nConnection: close\r\n\r\n"
    );
    s.write_all(req.as_bytes()).ok()?;
    let mut raw = Vec::new();
    s.read_to_end(&mut raw).ok()?;
    let split = raw.windows(4).position(|w| w == b"\r\n\r\n")?;
    let head = String::from_utf8_lossy(&raw[..split]).into_owned();
    let mut body = raw[split + 4..].to_vec();
    let mut lines = head.split("\r\n");
    let status = lines.next()?.split(' ').nth(1)?.parse().ok()?;
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
        .collect();
    let chunked = headers.iter().any(|(k, v)| {
        k.eq_ignore_ascii_case("transfer-encoding") && v.eq_ignore_ascii_case("chunked")
    });
    if chunked {
        body = dechunk(&body)?;
    }
    Some(Response {
        status,
        headers,
        body: String::from_utf8_lossy(&body).into_owned(),
    })
}

fn dechunk(mut raw: &[u8]) -> Option<Vec<u8>> {
    let mut out = Vec::new();
    loop {
        let eol = raw.windows(2).position(|w| w == b"\r\n")?;
        let size_field = String::from_utf8_lossy(&raw[..eol]);
        let size = usize::from_str_radix(size_field.split(';').next()?.trim(), 16).ok()?;
        raw = &raw[eol + 2..];
        if size == 0 {
            return Some(out);
        }
        out.extend_from_slice(raw.get(..size)?);
        raw = raw.get(size + 2..)?;
    }
}

// --- processes ------------------------------------------------------------------------------------

/// Path of a program the test needs, or a panic that says how to get it (never a skip).
fn program(path: &str, hint: &str) -> PathBuf {
    let p = PathBuf::from(path);
    assert!(p.is_file(), "{path} not found: {hint}");
    p
}

/// `setpriv --pdeathsig KILL -- PROGRAM`: PROGRAM dies with the test's thread even if the test
/// binary is killed before its `Drop`s run.
fn orphan_proof(program: &Path) -> Command {
    let setpriv = self::program(SETPRIV, "apt-get install util-linux");
    let mut cmd = Command::new(setpriv);
    cmd.args(["--pdeathsig", "KILL", "--"]).arg(program);
    cmd
}

/// A child this test started, its stdout and stderr in a file; killed by PID and reaped on
/// `Drop`, also when the test panics.
struct Owned {
    name: String,
    child: Child,
    log: PathBuf,
}

impl Owned {
    fn spawn(name: &str, mut cmd: Command, dir: &Path) -> Owned {
        let log = dir.join(format!("{}.out", name.replace(' ', "-")));
        let out = File::create(&log).unwrap_or_else(|e| panic!("create {}: {e}", log.display()));
        let err = out.try_clone().expect("clone a file handle");
        let argv: Vec<String> = std::iter::once(cmd.get_program())
            .chain(cmd.get_args())
            .map(|a| a.to_string_lossy().into_owned())
            .collect();
        let child = cmd
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .spawn()
            .unwrap_or_else(|e| panic!("spawn {name}: {e}: {argv:?}"));
        eprintln!("started {name} (pid {}): {}", child.id(), argv.join(" "));
        Owned {
            name: name.to_string(),
            child,
            log,
        }
    }

    /// The last lines it wrote, and whether it is still running.
    fn tail(&self) -> String {
        let text = fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        let from = lines.len().saturating_sub(40);
        format!(
            "{} (pid {}), output {}:\n{}",
            self.name,
            self.child.id(),
            self.log.display(),
            lines[from..].join("\n")
        )
    }
}

impl Drop for Owned {
    fn drop(&mut self) {
        // Our own child, by PID (Child::kill is SIGKILL to that PID), then reaped.
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
