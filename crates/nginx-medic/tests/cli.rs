//! The binary on files: bad inputs, exit codes, and the text report (insta snapshot).

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

mod common;

fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_nginx-medic"))
}

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn run(args: &[&str], cwd: &Path) -> Output {
    bin()
        .args(args)
        .current_dir(cwd)
        .output()
        .expect("run nginx-medic")
}

/// `logs --format json -` reading `data` on standard input (written from a thread, so a large
/// input cannot block on a full pipe).
fn logs_from_stdin(data: Vec<u8>) -> Output {
    let mut child = bin()
        .args(["logs", "--format", "json", "-"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let writer = std::thread::spawn(move || stdin.write_all(&data));
    let out = child.wait_with_output().unwrap();
    writer.join().unwrap().unwrap();
    out
}

const ERR: &str = "2026/11/20 14:32:10 [error] 7#7: *1 connect() failed (111: Connection refused) while connecting to upstream, client: 10.0.0.1, server: app, request: \"GET /a HTTP/1.1\", upstream: \"http://127.0.0.1:3000/a\", host: \"app\"\n";

#[test]
fn bad_inputs_are_named_and_the_rest_is_read() {
    let dir = tempfile::tempdir().unwrap();
    let good = dir.path().join("error.log");
    std::fs::write(&good, ERR.repeat(3)).unwrap();
    // A gzip cut in half: the lines before the damage count, the damage is reported.
    let mut enc = common::gzip(ERR.repeat(5000).as_bytes());
    enc.truncate(enc.len() / 2);
    let gz = dir.path().join("error.log.1.gz");
    std::fs::write(&gz, &enc).unwrap();
    let out = run(
        &[
            "logs",
            "--format",
            "json",
            "error.log",
            "error.log.1.gz",
            "missing.log",
            ".",
            "nomatch*.log",
        ],
        dir.path(),
    );
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("missing.log: No such file"), "{stderr}");
    assert!(stderr.contains(".: is a directory"), "{stderr}");
    assert!(stderr.contains("nomatch*.log: no file matches"), "{stderr}");
    assert!(
        stderr.contains("error.log.1.gz: gzip data is damaged"),
        "{stderr}"
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["errors"].as_array().unwrap().len(), 3, "{v:#}");
    let inputs = v["inputs"].as_array().unwrap();
    // Rotated series are read oldest first.
    assert_eq!(inputs[0]["path"], "error.log.1.gz");
    assert!(inputs[0]["error"].as_str().unwrap().contains("damaged"));
    let refused = v["error_log"]["by_upstream"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["class"] == "connect-refused")
        .unwrap();
    assert_eq!(refused["upstream"], "127.0.0.1:3000");
    assert!(
        refused["count"].as_u64().unwrap() > 3,
        "the lines before the damage were read"
    );
    assert_eq!(refused["example"]["source"], "error.log.1.gz:1");
}

#[test]
fn nothing_readable_exits_2() {
    let dir = tempfile::tempdir().unwrap();
    let out = run(&["logs", "missing.log", "."], dir.path());
    assert_eq!(out.status.code(), Some(2));
    let out = run(&["logs"], dir.path());
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("no log files given"));
}

#[test]
fn garbage_long_lines_and_stdin() {
    let dir = tempfile::tempdir().unwrap();
    let mut data = ERR.as_bytes().to_vec();
    data.extend_from_slice(b"\xff\xfe not nginx \x00\n");
    data.extend(std::iter::repeat_n(b'x', 3 << 20));
    data.extend_from_slice(b"\n");
    data.extend_from_slice(ERR.replace('\n', "\r\n").as_bytes());
    let out = logs_from_stdin(data);
    assert_eq!(out.status.code(), Some(0));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let e = &v["error_log"];
    assert_eq!(e["lines"], 4);
    assert_eq!(e["unparsed"]["count"], 2);
    let samples = e["unparsed"]["samples"].as_array().unwrap();
    assert_eq!(samples[0]["source"], "<stdin>:2");
    assert_eq!(samples[1]["source"], "<stdin>:3");
    assert!(samples[1]["reason"].as_str().unwrap().contains("skipped"));
    assert_eq!(e["classes"][0]["class"], "connect-refused");
    assert_eq!(e["classes"][0]["count"], 2);
    drop(dir);
}

#[test]
fn since_until_window() {
    let dir = tempfile::tempdir().unwrap();
    let later = ERR.replace("14:32:10", "15:00:00");
    std::fs::write(dir.path().join("error.log"), format!("{ERR}{later}")).unwrap();
    let out = run(
        &[
            "logs",
            "--format",
            "json",
            "--since",
            "2026-11-20 14:45",
            "error.log",
        ],
        dir.path(),
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["error_log"]["outside_window"], 1);
    assert_eq!(v["error_log"]["first_seen"], "2026-11-20T15:00:00");
    let out = run(&["logs", "--since", "soon", "error.log"], dir.path());
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn text_report_of_the_bundled_incident() {
    let out = run(
        &[
            "logs",
            "--color",
            "never",
            "examples/502-mixed-incident/error.log",
            "examples/502-mixed-incident/access.log",
        ],
        &root(),
    );
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    insta::assert_snapshot!(String::from_utf8_lossy(&out.stdout));
}

/// Example texts of a regular file are kept as offsets and read back at the end; standard
/// input's are copied as they come. The same log both ways (a file large enough for two
/// readers, with multi-line and CRLF entries) gives the same examples.
#[test]
fn examples_read_back_from_a_file_match_the_text_read() {
    let mut log = String::new();
    let mut i = 0u64;
    while log.len() < 34 << 20 {
        let (h, m) = (i / 60_000 % 24, i / 1000 % 60);
        let up = format!("10.0.{}.{}:80", i % 7, i % 211);
        let entry = match i % 5 {
            0 => format!("2026/11/20 {h:02}:{m:02}:10 [error] 7#7: *{i} connect() failed (111: Connection refused) while connecting to upstream, client: 10.0.0.1, server: app, request: \"GET /a/{i} HTTP/1.1\", upstream: \"http://{up}/a\", host: \"app\"\n"),
            1 => format!("2026/11/20 {h:02}:{m:02}:11 [error] 7#7: *{i} FastCGI sent in stderr: \"PHP message: boom {i}\nStack trace:\n#0 {{main}}\" while reading response header from upstream, client: 10.0.0.2, server: app, request: \"GET /x HTTP/1.1\", upstream: \"fastcgi://{up}\", host: \"app\"\n"),
            2 => format!("2026/11/20 {h:02}:{m:02}:12 [error] 7#7: *{i} upstream timed out (110: Connection timed out) while reading response header from upstream, client: 10.0.0.3, server: app, request: \"POST /b HTTP/1.1\", upstream: \"http://{up}/b\", host: \"app\"\r\n"),
            3 => format!("2026/11/20 {h:02}:{m:02}:13 [warn] 7#7: *{i} an upstream response is buffered to a temporary file {i} while reading upstream\n"),
            _ => format!("2026/11/20 {h:02}:{m:02}:14 [error] 7#7: *{i} limiting requests, excess: 0.{i} by zone \"z{}\", client: 10.0.0.4, server: app, request: \"GET / HTTP/1.1\", host: \"app\"\n", i % 13),
        };
        log.push_str(&entry);
        i += 1;
    }
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("error.log");
    std::fs::write(&path, &log).unwrap();
    let examples = |v: &serde_json::Value| -> Vec<(String, String, u64, String, String)> {
        let mut rows: Vec<_> = v["error_log"]["by_upstream"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| {
                let source = c["example"]["source"].as_str().unwrap();
                let line = source.rsplit(':').next().unwrap().to_string();
                (
                    c["class"].as_str().unwrap().to_string(),
                    c["upstream"].as_str().unwrap().to_string(),
                    c["count"].as_u64().unwrap(),
                    line,
                    c["example"]["text"].as_str().unwrap().to_string(),
                )
            })
            .collect();
        rows.sort();
        rows
    };
    let from_file = run(
        &[
            "logs",
            "--format",
            "json",
            "--threads",
            "2",
            path.to_str().unwrap(),
        ],
        dir.path(),
    );
    assert_eq!(from_file.status.code(), Some(0));
    let from_stdin = logs_from_stdin(log.into_bytes());
    let file_json: serde_json::Value = serde_json::from_slice(&from_file.stdout).unwrap();
    let stdin_json: serde_json::Value = serde_json::from_slice(&from_stdin.stdout).unwrap();
    let (a, b) = (examples(&file_json), examples(&stdin_json));
    assert!(a.len() > 200, "{} cells", a.len());
    assert!(
        a.iter().any(|r| r.4.contains("\nStack trace:")),
        "a multi-line example"
    );
    assert_eq!(a, b);
    assert!(file_json["errors"].as_array().unwrap().is_empty());
}

/// `config parse` writes each file's JSON as it parses it, with no tree; the JSON must be
/// what the library prints from the whole tree (which `medic-parse`'s differential test holds
/// to crossplane's, byte for byte). A config of several files with errors of each kind: a
/// missing include, a directive in the wrong context, a syntax error, a non-UTF-8 byte.
#[test]
fn config_parse_prints_the_whole_tree_json_file_by_file() {
    use medic_parse::config::{parse_nginx_t, parse_with, to_json, DiskFs, JsonStyle, Options};

    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::create_dir(d.join("sites")).unwrap();
    std::fs::write(
        d.join("nginx.conf"),
        "user www-data;\nevents {}\nhttp {\n    include sites/*.conf;\n    include missing.conf;\n    \
         # a comment\n    server_tokens off;\n}\n",
    )
    .unwrap();
    for i in 0..40 {
        let extra = match i {
            3 => "        listen 80;\n", // context error: listen in location
            7 => "        return 200 \"caf\u{e9}\";\n", // non-ASCII
            _ => "",
        };
        std::fs::write(
            d.join(format!("sites/s{i:02}.conf")),
            format!(
                "server {{\n    listen {};\n    server_name s{i}.example;\n    location / {{\n{extra}        \
                 proxy_pass http://127.0.0.1:{};\n    }}\n}}\n",
                8000 + i,
                9000 + i
            ),
        )
        .unwrap();
    }
    let mut bad = b"server {\n    listen 81;\n    server_name \xff\xfe;\n".to_vec();
    bad.extend_from_slice(b"    location / { return 200; }}\n}\n");
    std::fs::write(d.join("sites/zz.conf"), bad).unwrap();

    let cases: [(&[&str], Options, JsonStyle); 3] = [
        (&[], Options::default(), JsonStyle::default()),
        (
            &["--pretty"],
            Options::default(),
            JsonStyle {
                indent: Some(4),
                ..JsonStyle::default()
            },
        ),
        (
            &["--single-file", "--include-comments"],
            Options {
                single_file: true,
                comments: true,
                ..Options::default()
            },
            JsonStyle {
                single_file: true,
                ..JsonStyle::default()
            },
        ),
    ];
    for (flags, opts, style) in cases {
        let main = d.join("nginx.conf").display().to_string();
        let mut args = vec!["config", "parse", &main];
        args.extend_from_slice(flags);
        let out = run(&args, d);
        let config = parse_with(&DiskFs::default(), &main, &opts);
        let want = to_json(&config, style);
        // Following includes finds the errors; one file alone has none.
        let failed = config.errors().next().is_some();
        assert_eq!(failed, !opts.single_file, "{want}");
        assert_eq!(out.status.code(), Some(i32::from(failed)), "{flags:?}");
        assert!(want.contains("\\u00e9") || opts.single_file, "{want}");
        assert_eq!(String::from_utf8_lossy(&out.stdout), want, "{flags:?}");
    }

    // The same files as an `nginx -T` dump on stdin: includes resolve to its sections.
    let mut dump = b"nginx: the configuration file /etc/nginx/nginx.conf syntax is ok\n".to_vec();
    for name in [
        "nginx.conf",
        "sites/s00.conf",
        "sites/s03.conf",
        "sites/zz.conf",
    ] {
        dump.extend_from_slice(format!("# configuration file /etc/nginx/{name}:\n").as_bytes());
        dump.extend_from_slice(&std::fs::read(d.join(name)).unwrap());
        dump.push(b'\n');
    }
    let dump = String::from_utf8_lossy(&dump)
        .replace("sites/*.conf", "/etc/nginx/sites/*.conf")
        .into_bytes();
    let mut child = bin()
        .args(["config", "parse", "-"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(&dump).unwrap();
    let out = child.wait_with_output().unwrap();
    let want = to_json(
        &parse_nginx_t(&dump, &Options::default()).unwrap(),
        JsonStyle::default(),
    );
    assert!(want.contains("/etc/nginx/sites/s03.conf"), "{want}");
    assert_eq!(String::from_utf8_lossy(&out.stdout), want);
}

/// `THP_enabled` of a running process (`/proc/PID/status`), once it reads `want`, within 10 s.
fn thp_enabled_becomes(pid: u32, want: &str) -> String {
    let mut seen = String::new();
    for _ in 0..1000 {
        let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
        seen = status
            .lines()
            .find_map(|l| l.strip_prefix("THP_enabled:"))
            .expect("the kernel reports THP_enabled")
            .trim()
            .to_string();
        if seen == want {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    seen
}

/// Transparent huge pages are off from before `main` (mimalloc's first arena would be faulted
/// in 2 MiB pages), for every command (`config parse`'s slow tail was their faults waiting on
/// compaction). The commands wait on standard input while the test reads their status.
#[test]
fn huge_pages_off_for_every_command() {
    for (args, want) in [
        (&["config", "parse", "-"][..], "0"),
        (&["logs", "--format", "json", "-"][..], "0"),
        (&["config", "lint", "--config", "/dev/stdin"][..], "0"),
    ] {
        let mut child = bin()
            .args(args)
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        // Give each command time to reach where it reads its input.
        std::thread::sleep(std::time::Duration::from_millis(200));
        let seen = thp_enabled_becomes(child.id(), want);
        drop(child.stdin.take());
        child.wait().unwrap();
        assert_eq!(seen, want, "{args:?}");
    }
}
