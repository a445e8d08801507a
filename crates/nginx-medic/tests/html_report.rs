//! `diagnose --format html` and `logs --format html`: the bundled incidents, hostile strings in
//! every field a log can carry, a day of a million failures (the page stays under 1 MB), and
//! each page in a real headless Chromium driven over WebDriver: no console error (a blocked
//! style or a CSP violation is one), no dialog. Chromium and chromedriver are required (Debian:
//! `chromium`, `chromium-driver`; `scripts/test` installs them): the test fails without them.
//!
//! `UPDATE_DOCS=1` writes the screenshot of the mixed incident's page to `docs/html-report.png`.

use std::io::{BufWriter, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use medic_parse::time::LogTime;
use serde_json::{json, Value};

const EXAMPLES: [&str; 3] = ["502-mixed-incident", "php-fpm-incident", "tls-incident"];
const P1: &str = "</script><svg onload=alert(1)>";
const P2: &str = "\"><img src=x onerror=alert(1)>";
/// The access log format of the bundled incidents (their README).
const FORMAT: &str = "$remote_addr - $remote_user [$time_local] \"$request\" $status $body_bytes_sent \"$http_referer\" \"$http_user_agent\" $upstream_addr $upstream_status $upstream_response_time $request_time";

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn run(args: &[&str]) -> Output {
    let out = Command::new(env!("CARGO_BIN_EXE_nginx-medic"))
        .args(args)
        .current_dir(root())
        .output()
        .expect("run nginx-medic");
    assert!(
        out.status.success(),
        "nginx-medic {args:?}: exit {:?}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// `diagnose --no-probe --format html` of `examples/NAME` with its config and both logs.
fn example(name: &str) -> String {
    let (conf, err, acc) = (
        format!("examples/{name}/nginx.conf"),
        format!("examples/{name}/error.log"),
        format!("examples/{name}/access.log"),
    );
    let out = run(&[
        "diagnose",
        "--no-probe",
        "--config",
        &conf,
        "--error-log",
        &err,
        "--access-log",
        &acc,
        "--format",
        "html",
    ]);
    String::from_utf8(out.stdout).expect("UTF-8")
}

fn csp_hash(css: &str) -> String {
    format!(
        "'sha256-{}'",
        openssl::base64::encode_block(&openssl::sha::sha256(css.as_bytes()))
    )
}

/// The page is self-contained and inert: one stylesheet whose hash is the CSP's, no script,
/// no `style=`, no event handler, nothing loaded (`src`), links in-page only.
fn check_page(html: &str, what: &str) {
    assert!(html.starts_with("<!DOCTYPE html>"), "{what}: doctype");
    assert_eq!(html.matches("<style>").count(), 1, "{what}: one <style>");
    let css = &html[html.find("<style>").unwrap() + 7..html.find("</style>").unwrap()];
    let csp = format!(
        "<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; style-src {}\">",
        csp_hash(css)
    );
    assert!(html.contains(&csp), "{what}: CSP with the sheet's hash");
    // Every `<` of the page starts a tag of ours: text from logs has its `<` escaped.
    for tag in html
        .split('<')
        .skip(1)
        .map(|t| &t[..t.find('>').unwrap_or(t.len())])
    {
        let name = tag.split_whitespace().next().unwrap_or("");
        assert!(
            !matches!(
                name,
                "script" | "img" | "iframe" | "object" | "embed" | "link"
            ),
            "{what}: <{tag}>"
        );
        let lower = tag.to_ascii_lowercase();
        for bad in [" style=", " src=", "http://", "https://", "javascript:"] {
            assert!(!lower.contains(bad), "{what}: {bad} in <{tag}>");
        }
        assert!(
            !lower
                .split_whitespace()
                .any(|a| a.starts_with("on") && a.contains('=')),
            "{what}: an event handler in <{tag}>"
        );
        if let Some(i) = tag.find("href=\"") {
            assert_eq!(&tag[i + 6..i + 7], "#", "{what}: <{tag}>");
        }
    }
}

#[test]
fn example_reports_are_self_contained() {
    for name in EXAMPLES {
        let html = example(name);
        check_page(&html, name);
        assert!(html.contains("Verdict"), "{name}");
        assert!(
            html.contains("<svg class=\"chart\""),
            "{name}: the timeline"
        );
        assert!(html.contains("id=\"f1\""), "{name}: the first finding");
        assert!(html.contains("Not checked"), "{name}: skipped checks");
        assert!(
            html.contains(&format!("examples/{name}/error.log")),
            "{name}"
        );
        eprintln!("{name}: {} bytes", html.len());
    }
    // The verdict is the text report's first finding.
    let text = run(&[
        "diagnose",
        "--no-probe",
        "--config",
        "examples/502-mixed-incident/nginx.conf",
        "--error-log",
        "examples/502-mixed-incident/error.log",
        "--access-log",
        "examples/502-mixed-incident/access.log",
        "--color",
        "never",
    ]);
    let first = String::from_utf8_lossy(&text.stdout)
        .lines()
        .next()
        .unwrap()
        .to_string();
    let (head, title) = first.split_once(": ").unwrap();
    let html = example("502-mixed-incident");
    let verdict = &html[html.find("class=\"verdict").unwrap()..html.find("</section>").unwrap()];
    let id = head.trim_start_matches("error[").trim_end_matches(']');
    assert!(verdict.contains(&format!("<code class=\"id\">{id}</code> {title}</h1>")));
}

/// Hostile strings in request lines, hosts, user agents and upstream names.
fn hostile_logs(dir: &Path) -> (PathBuf, PathBuf, PathBuf) {
    let err = dir.join("error.log");
    let acc = dir.join("access.log");
    let conf = dir.join("nginx.conf");
    let mut e = String::new();
    for (i, (req, host, up)) in [
        (P1, P2, "127.0.0.1:42473"),
        (P2, P1, "127.0.0.1:42473"),
        ("x", "a", P1),
        ("y", "b", P2),
    ]
    .into_iter()
    .enumerate()
    {
        e.push_str(&format!(
            "2026/11/21 20:40:1{i} [error] 22566#22566: *{} connect() failed (111: Connection refused) while connecting to upstream, client: 127.0.0.1, server: app.test, request: \"GET /{req} HTTP/1.1\", upstream: \"http://{up}/{req}\", host: \"{host}\"\n",
            i + 6
        ));
        e.push_str(&format!(
            "2026/11/21 20:40:1{i} [error] 22566#22566: *{} no live upstreams while connecting to upstream, client: 127.0.0.1, server: app.test, request: \"POST {req} HTTP/1.1\", upstream: \"http://{up}/\", host: \"{host}\"\n",
            i + 30
        ));
    }
    e.push_str(&format!("{P1} not an error-log line {P2}\n"));
    std::fs::write(&err, e).unwrap();
    let mut a = String::new();
    for (i, (req, ua, up)) in [
        (P1, P2, "127.0.0.1:42473"),
        (P2, P1, "127.0.0.1:42473"),
        ("x", P1, P2),
        ("y", P2, P1),
    ]
    .into_iter()
    .enumerate()
    {
        a.push_str(&format!(
            "127.0.0.1 - - [21/Nov/2026:20:40:1{i} +0000] \"GET /{req} HTTP/1.1\" 502 157 \"{P1}\" \"{ua}\" {up} 502 0.000 0.000\n"
        ));
    }
    std::fs::write(&acc, a).unwrap();
    std::fs::write(
        &conf,
        "events {}\nhttp {\n  server {\n    listen 127.0.0.1:39547;\n    location / { proxy_pass http://127.0.0.1:42473; }\n  }\n}\n",
    )
    .unwrap();
    (conf, err, acc)
}

fn hostile_pages(dir: &Path) -> Vec<(String, String)> {
    let (conf, err, acc) = hostile_logs(dir);
    let (conf, err, acc) = (
        conf.to_str().unwrap(),
        err.to_str().unwrap(),
        acc.to_str().unwrap(),
    );
    let diagnose = run(&[
        "diagnose",
        "--no-probe",
        "--config",
        conf,
        "--error-log",
        err,
        "--access-log",
        acc,
        "--log-format",
        FORMAT,
        "--max",
        "0",
        "--format",
        "html",
    ]);
    let logs = run(&[
        "logs",
        "--log-format",
        FORMAT,
        "--error-log",
        err,
        "--access-log",
        acc,
        "--format",
        "html",
    ]);
    vec![
        (
            "hostile-diagnose".to_string(),
            String::from_utf8(diagnose.stdout).unwrap(),
        ),
        (
            "hostile-logs".to_string(),
            String::from_utf8(logs.stdout).unwrap(),
        ),
    ]
}

#[test]
fn hostile_strings_are_escaped() {
    let dir = tempfile::tempdir().unwrap();
    for (what, html) in hostile_pages(dir.path()) {
        check_page(&html, &what);
        for raw in [P1, P2, "<svg onload", "<img src"] {
            assert!(!html.contains(raw), "{what}: {raw} unescaped");
        }
        // The strings did reach the page, escaped.
        assert!(
            html.contains("&lt;/script&gt;&lt;svg onload=alert(1)&gt;"),
            "{what}"
        );
        assert!(
            html.contains("&quot;&gt;&lt;img src=x onerror=alert(1)&gt;"),
            "{what}"
        );
    }
}

/// A small deterministic generator (xorshift64*), so the day of failures is the same each run.
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        (self.0.wrapping_mul(0x2545_f491_4f6c_dd1d) >> 33) % n
    }
}

/// 24 hours, 1 M failure lines in nginx's shapes (`examples/502-mixed-incident/error.log`),
/// four classes, 20 upstreams: each page stays under 1 MB.
#[test]
fn a_day_of_a_million_failures_stays_under_a_megabyte() {
    let started = Instant::now();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("error.log");
    let shapes = [
        ("error", "connect() failed (111: Connection refused) while connecting to upstream"),
        ("error", "upstream timed out (110: Connection timed out) while reading response header from upstream"),
        ("error", "recv() failed (104: Connection reset by peer) while reading response header from upstream"),
        ("error", "upstream prematurely closed connection while reading response header from upstream"),
    ];
    let day = LogTime::parse_iso(b"2026-11-22T00:00:00").unwrap().0;
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let mut w = BufWriter::with_capacity(1 << 20, std::fs::File::create(&path).unwrap());
    const LINES: i64 = 1_000_000;
    for i in 0..LINES {
        let (y, mo, d, h, mi, s) = LogTime(day + i * 86_400 / LINES).to_civil();
        let (level, msg) = shapes[rng.below(4) as usize];
        let up = rng.below(20);
        writeln!(
            w,
            "{y}/{mo:02}/{d:02} {h:02}:{mi:02}:{s:02} [{level}] 7#7: *{i} {msg}, client: 10.1.0.{}, server: a, request: \"GET /{} HTTP/1.1\", upstream: \"http://10.0.0.{}:80/\", host: \"a\"",
            rng.below(250),
            rng.below(10),
            up + 1
        )
        .unwrap();
    }
    w.flush().unwrap();
    drop(w);
    let generated = started.elapsed();
    // A config that names the 20 upstreams: the diagnosis does not depend on the host's own.
    let conf = dir.path().join("nginx.conf");
    let servers: String = (1..=20)
        .map(|i| format!("    server 10.0.0.{i}:80;\n"))
        .collect();
    std::fs::write(
        &conf,
        format!("events {{}}\nhttp {{\n  upstream app {{\n{servers}  }}\n  server {{\n    listen 80;\n    location / {{ proxy_pass http://app; }}\n  }}\n}}\n"),
    )
    .unwrap();
    let p = path.to_str().unwrap();
    // Both at once: the two cores each read a copy.
    let spawn = |args: &[&str]| -> Child {
        Command::new(env!("CARGO_BIN_EXE_nginx-medic"))
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap()
    };
    let diagnose = spawn(&[
        "diagnose",
        "--no-probe",
        "--config",
        conf.to_str().unwrap(),
        "--error-log",
        p,
        "--format",
        "html",
    ]);
    let logs = spawn(&["logs", "--no-progress", p, "--format", "html"]);
    for (what, child) in [("diagnose", diagnose), ("logs", logs)] {
        let out = child.wait_with_output().unwrap();
        assert!(out.status.success(), "{what}: {:?}", out.status);
        let html = String::from_utf8(out.stdout).unwrap();
        check_page(&html, what);
        assert!(html.contains("<svg class=\"chart\""), "{what}");
        assert!(
            html.contains("per 5 minutes"),
            "{what}: a day in 5-minute buckets"
        );
        eprintln!("{what}: 1 M lines over 24 h: {} bytes", html.len());
        assert!(html.len() < 1_000_000, "{what}: {} bytes", html.len());
    }
    eprintln!(
        "generated in {:.1?}, whole test {:.1?}",
        generated,
        started.elapsed()
    );
}

/// A WebDriver session of chromedriver on loopback, started by the test and killed at the end.
struct Driver {
    child: Child,
    port: u16,
    session: String,
    /// The endpoint that returns the browser's console log.
    log_path: &'static str,
}

impl Driver {
    fn start() -> Driver {
        let find = |name: &str| -> PathBuf {
            std::env::var_os("PATH")
                .iter()
                .flat_map(std::env::split_paths)
                .map(|d| d.join(name))
                .find(|p| p.is_file())
                .unwrap_or_else(|| {
                    panic!("{name} not found: install Debian's chromium and chromium-driver (scripts/test does)")
                })
        };
        let chromium = find("chromium");
        let chromedriver = find("chromedriver");
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let child = Command::new(chromedriver)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start chromedriver");
        let mut d = Driver {
            child,
            port,
            session: String::new(),
            log_path: "",
        };
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Ok((200, v)) = d.try_call("GET", "/status", None) {
                if v["value"]["ready"] == true {
                    break;
                }
            }
            assert!(Instant::now() < deadline, "chromedriver did not get ready");
            std::thread::sleep(Duration::from_millis(100));
        }
        let (status, v) = d.call(
            "POST",
            "/session",
            Some(json!({"capabilities": {"alwaysMatch": {
                "browserName": "chrome",
                "goog:chromeOptions": {
                    "binary": chromium,
                    "args": ["--headless=new", "--no-sandbox", "--disable-gpu", "--hide-scrollbars", "--window-size=1200,1500"]
                },
                "goog:loggingPrefs": {"browser": "ALL"}
            }}})),
        );
        assert_eq!(status, 200, "new session: {v}");
        d.session = v["value"]["sessionId"].as_str().unwrap().to_string();
        // The W3C mode of chromedriver keeps the log under Selenium's prefix; older ones answer
        // the JSON wire protocol's path.
        for path in ["se/log", "log"] {
            let (status, _) = d.call(
                "POST",
                &format!("/session/{}/{path}", d.session),
                Some(json!({"type": "browser"})),
            );
            if status == 200 {
                d.log_path = path;
                break;
            }
        }
        assert!(!d.log_path.is_empty(), "no browser log endpoint answers");
        eprintln!(
            "chromedriver: the browser log is POST /session/ID/{}",
            d.log_path
        );
        d
    }

    fn try_call(
        &self,
        method: &str,
        path: &str,
        body: Option<Value>,
    ) -> std::io::Result<(u16, Value)> {
        let mut s = TcpStream::connect(("127.0.0.1", self.port))?;
        s.set_read_timeout(Some(Duration::from_secs(60)))?;
        let body = body.map(|b| b.to_string()).unwrap_or_default();
        // chromedriver speaks HTTP/1.1 only; it closes after the answer when asked to.
        write!(
            s,
            "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{}\r\nConnection: close\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
            self.port,
            body.len()
        )?;
        // It says `Connection: close` and keeps the connection open: read by the length.
        let mut raw = Vec::new();
        let mut buf = [0u8; 64 << 10];
        let head_end = loop {
            if let Some(i) = raw.windows(4).position(|w| w == b"\r\n\r\n") {
                break i + 4;
            }
            let n = s.read(&mut buf)?;
            if n == 0 {
                break raw.len();
            }
            raw.extend_from_slice(&buf[..n]);
        };
        let head = String::from_utf8_lossy(&raw[..head_end]).to_ascii_lowercase();
        let status = head
            .split_whitespace()
            .nth(1)
            .and_then(|s| s.parse().ok())
            .unwrap_or(0);
        let header = |name: &str| {
            head.lines().find_map(|l| {
                l.strip_prefix(name)
                    .map(|v| v.trim_start_matches(':').trim().to_string())
            })
        };
        let body = match header("content-length").and_then(|v| v.parse::<usize>().ok()) {
            Some(len) => {
                while raw.len() < head_end + len {
                    let n = s.read(&mut buf)?;
                    if n == 0 {
                        break;
                    }
                    raw.extend_from_slice(&buf[..n]);
                }
                String::from_utf8_lossy(&raw[head_end..]).into_owned()
            }
            None => {
                // Chunked (or delimited by the close): up to the last chunk.
                while !raw.ends_with(b"0\r\n\r\n") {
                    let n = s.read(&mut buf)?;
                    if n == 0 {
                        break;
                    }
                    raw.extend_from_slice(&buf[..n]);
                }
                let body = String::from_utf8_lossy(&raw[head_end..]).into_owned();
                if header("transfer-encoding").is_some_and(|v| v.contains("chunked")) {
                    dechunk(&body)
                } else {
                    body
                }
            }
        };
        Ok((status, serde_json::from_str(&body).unwrap_or(Value::Null)))
    }

    fn call(&self, method: &str, path: &str, body: Option<Value>) -> (u16, Value) {
        self.try_call(method, path, body)
            .unwrap_or_else(|e| panic!("{method} {path}: {e}"))
    }

    /// Opens the page; returns its console entries at SEVERE and whether a dialog opened.
    fn open(&self, file: &Path) -> (Vec<String>, bool) {
        let url = format!("file://{}", file.canonicalize().unwrap().display());
        let (status, v) = self.call(
            "POST",
            &format!("/session/{}/url", self.session),
            Some(json!({ "url": url })),
        );
        assert_eq!(status, 200, "navigate to {url}: {v}");
        let (alert, _) = self.call(
            "GET",
            &format!("/session/{}/alert/text", self.session),
            None,
        );
        if alert == 200 {
            self.call(
                "POST",
                &format!("/session/{}/alert/dismiss", self.session),
                None,
            );
        }
        let (status, v) = self.call(
            "POST",
            &format!("/session/{}/{}", self.session, self.log_path),
            Some(json!({"type": "browser"})),
        );
        assert_eq!(status, 200, "browser log: {v}");
        let severe = v["value"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|e| e["level"] == "SEVERE")
            .map(|e| e["message"].as_str().unwrap_or("").to_string())
            .collect();
        (severe, alert == 200)
    }

    fn screenshot(&self) -> Vec<u8> {
        let (status, v) = self.call(
            "GET",
            &format!("/session/{}/screenshot", self.session),
            None,
        );
        assert_eq!(status, 200, "screenshot");
        openssl::base64::decode_block(v["value"].as_str().unwrap()).unwrap()
    }
}

/// A chunked HTTP body, joined.
fn dechunk(mut body: &str) -> String {
    let mut out = String::new();
    while let Some((size, rest)) = body.split_once("\r\n") {
        let n = usize::from_str_radix(size.trim(), 16).unwrap_or(0);
        if n == 0 || rest.len() < n {
            break;
        }
        out.push_str(&rest[..n]);
        body = rest[n..].trim_start_matches("\r\n");
    }
    out
}

impl Drop for Driver {
    fn drop(&mut self) {
        if !self.session.is_empty() {
            let _ = self.try_call("DELETE", &format!("/session/{}", self.session), None);
        }
        // By its PID: only the chromedriver this test started.
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Inserts `what` right after `<main>`, or at the end of `<head>` with `in_head`.
fn broken(html: &str, what: &str, in_head: bool) -> String {
    if in_head {
        html.replacen("</head>", &format!("{what}</head>"), 1)
    } else {
        html.replacen("<main>", &format!("<main>{what}"), 1)
    }
}

#[test]
fn pages_render_in_chromium_without_console_errors() {
    let dir = tempfile::tempdir().unwrap();
    let mut pages: Vec<(String, String)> = EXAMPLES
        .iter()
        .map(|n| (n.to_string(), example(n)))
        .collect();
    pages.extend(hostile_pages(dir.path()));
    let logs = run(&[
        "logs",
        "--log-format",
        FORMAT,
        "examples/502-mixed-incident/error.log",
        "examples/502-mixed-incident/access.log",
        "--format",
        "html",
    ]);
    pages.push((
        "logs-502-mixed-incident".into(),
        String::from_utf8(logs.stdout).unwrap(),
    ));
    let base = pages[0].1.clone();
    // SVG presentation attributes are not inline styles: the CSP lets them through.
    pages.push((
        "svg-presentation-attributes".into(),
        broken(
            &base,
            "<svg width=\"8\" height=\"8\"><rect width=\"8\" height=\"8\" fill=\"red\"/></svg>",
            false,
        ),
    ));
    let driver = Driver::start();
    for (name, html) in &pages {
        let file = dir.path().join(format!("{name}.html"));
        std::fs::write(&file, html).unwrap();
        let (severe, dialog) = driver.open(&file);
        assert!(severe.is_empty(), "{name}: console errors {severe:#?}");
        assert!(!dialog, "{name}: a dialog opened");
        let png = driver.screenshot();
        assert!(png.starts_with(b"\x89PNG"), "{name}: screenshot");
        std::fs::write(dir.path().join(format!("{name}.png")), &png).unwrap();
        if name == "502-mixed-incident" && std::env::var_os("UPDATE_DOCS").is_some_and(|v| v == "1")
        {
            std::fs::write(root().join("docs/html-report.png"), &png).unwrap();
        }
    }
    // The check can fail: what the CSP blocks is a console error.
    for (name, html) in [
        ("style-attribute", broken(&base, "<p style=\"color:red\">styled</p>", false)),
        ("svg-style-attribute", broken(&base, "<svg width=\"8\" height=\"8\"><rect width=\"8\" height=\"8\" style=\"fill:red\"/></svg>", false)),
        ("unhashed-style", broken(&base, "<style>p{color:red}</style>", true)),
    ] {
        let file = dir.path().join(format!("{name}.html"));
        std::fs::write(&file, html).unwrap();
        let (severe, _) = driver.open(&file);
        assert!(
            severe.iter().any(|m| m.contains("Content Security Policy")),
            "{name}: no CSP error in {severe:#?}"
        );
    }
    assert!(
        root().join("docs/html-report.png").is_file(),
        "docs/html-report.png: run with UPDATE_DOCS=1"
    );
}
