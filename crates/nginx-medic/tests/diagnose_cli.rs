//! `nginx-medic diagnose` on the bundled incidents (post-mortem: files only), `explain`, and
//! the contract of `causes.md` §3: the text report as an insta snapshot, the JSON's fields,
//! ranking and evidence, SARIF, exit codes.

use std::path::PathBuf;
use std::process::{Command, Output};

use serde_json::Value;

mod common;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn run(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_nginx-medic"))
        .args(args)
        .current_dir(root())
        .output()
        .expect("run nginx-medic")
}

/// `diagnose --no-probe` on `examples/NAME` with its config and both logs.
fn example(name: &str, extra: &[&str]) -> Output {
    let conf = format!("examples/{name}/nginx.conf");
    let err = format!("examples/{name}/error.log");
    let acc = format!("examples/{name}/access.log");
    let mut args = vec![
        "diagnose",
        "--no-probe",
        "--config",
        &conf,
        "--error-log",
        &err,
        "--access-log",
        &acc,
    ];
    args.extend_from_slice(extra);
    run(&args)
}

/// The report's `skipped` checks, each as `"CHECK": "WHY"`.
fn skipped(j: &Value) -> Vec<String> {
    j["skipped"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| format!("{}: {}", s["check"], s["why"]))
        .collect()
}

fn json(out: &Output) -> Value {
    assert!(
        out.status.success(),
        "exit {:?}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("JSON on stdout")
}

#[test]
fn text_report_of_the_mixed_incident() {
    let out = example("502-mixed-incident", &["--color", "never", "--max", "4"]);
    assert!(out.status.success());
    insta::assert_snapshot!(String::from_utf8_lossy(&out.stdout));
}

#[test]
fn json_follows_the_contract() {
    for name in ["502-mixed-incident", "php-fpm-incident", "tls-incident"] {
        let j = json(&example(name, &["--format", "json"]));
        assert_eq!(j["schema"], 1);
        assert_eq!(j["tool"]["name"], "nginx-medic");
        assert!(j["instances"][0]["config"].is_string());
        let findings = j["findings"].as_array().expect("findings");
        assert!(!findings.is_empty(), "{name}: no findings");
        let rank = |s: &str| match s {
            "error" => 2,
            "warning" => 1,
            _ => 0,
        };
        let mut previous = (3, u64::MAX);
        for f in findings {
            for key in ["id", "severity", "title", "evidence", "fix"] {
                assert!(!f[key].is_null(), "{name}: {key} missing in {f:#}");
            }
            for key in ["summary", "steps", "commands", "time", "risk"] {
                assert!(
                    !f["fix"][key].is_null(),
                    "{name}: fix.{key} missing in {f:#}"
                );
            }
            let ev = f["evidence"].as_array().unwrap();
            assert!(!ev.is_empty(), "{name}: no evidence in {f:#}");
            for e in ev {
                assert!(e["kind"].is_string() && e["source"].is_string() && e["text"].is_string());
            }
            // Ranked: severity first, then the requests hurt.
            let here = (
                rank(f["severity"].as_str().unwrap()),
                f["count"].as_u64().unwrap(),
            );
            assert!(
                here.0 < previous.0 || (here.0 == previous.0 && here.1 <= previous.1),
                "{name}: not ranked at {f:#}"
            );
            previous = here;
            // Error findings from the logs cite a log line with file:line.
            if f["severity"] == "error" && f["count"].as_u64() > Some(0) {
                assert!(
                    ev.iter()
                        .any(|e| e["kind"] == "log"
                            && e["source"].as_str().unwrap().contains(".log:")),
                    "{name}: {f:#}"
                );
                assert!(f["first_seen"].is_string() && f["last_seen"].is_string());
            }
        }
        assert!(j["skipped"]
            .as_array()
            .unwrap()
            .iter()
            .any(|s| s["check"] == "probes"));
    }
}

#[test]
fn each_incident_finds_what_was_staged() {
    let ids = |name: &str| -> Vec<String> {
        json(&example(name, &["--format", "json"]))["findings"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|f| f["severity"] != "warning" || f["count"].as_u64() > Some(0))
            .map(|f| f["id"].as_str().unwrap().to_string())
            .collect()
    };
    let mixed = ids("502-mixed-incident");
    for id in [
        "connect-refused",
        "socket-missing",
        "socket-permission",
        "read-timeout",
        "upstream-reset",
        "premature-close",
        "header-too-big",
        "tls-untrusted",
        "rate-limited",
    ] {
        assert!(mixed.contains(&id.to_string()), "{id} not in {mixed:?}");
    }
    let fpm = ids("php-fpm-incident");
    for id in [
        "socket-permission",
        "socket-stale",
        "script-not-found",
        "app-error",
        "read-timeout",
    ] {
        assert!(fpm.contains(&id.to_string()), "{id} not in {fpm:?}");
    }
    let tls = ids("tls-incident");
    for id in [
        "tls-expired",
        "tls-name-mismatch",
        "scheme-mismatch",
        "tls-protocol-mismatch",
    ] {
        assert!(tls.contains(&id.to_string()), "{id} not in {tls:?}");
    }
}

#[test]
fn fail_on_and_sarif() {
    let out = example("tls-incident", &["--format", "json", "--fail-on", "error"]);
    assert_eq!(out.status.code(), Some(1));
    let out = example("tls-incident", &["--format", "sarif"]);
    assert!(out.status.success());
    let s: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(s["version"], "2.1.0");
    let results = s["runs"][0]["results"].as_array().unwrap();
    assert!(results
        .iter()
        .any(|r| r["ruleId"] == "tls-expired" && r["level"] == "error"));
    let rules = s["runs"][0]["tool"]["driver"]["rules"].as_array().unwrap();
    assert!(rules.iter().any(|r| r["id"] == "socket-permission"));
}

#[test]
fn explain_prints_the_docs() {
    let out = run(&["explain", "socket-stale"]);
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("## What it detects") && text.contains("## Fix"),
        "{text}"
    );
    let page = std::fs::read_to_string(root().join("docs/rules/socket-stale.md")).unwrap();
    assert!(
        page.ends_with(text.as_ref()),
        "explain and docs/rules differ"
    );
    let all = run(&["explain", "--all"]);
    let all = String::from_utf8_lossy(&all.stdout);
    assert!(
        all.lines().count() >= 50 && all.contains("ssl-no-sni") && all.contains("backend-down")
    );
    assert_eq!(run(&["explain", "no-such-rule"]).status.code(), Some(2));
}

#[test]
fn nothing_to_read_is_exit_2() {
    let out = run(&[
        "diagnose",
        "--no-probe",
        "--config",
        "/nonexistent/nginx.conf",
    ]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("/nonexistent/nginx.conf"));
}

#[test]
fn bad_inputs_are_named_never_a_panic() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    // Binary noise, then an entry of 10 MB (nginx never writes one: skipped, counted).
    let mut noise: Vec<u8> = (0..200_000u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    noise.extend_from_slice(b"\n2026/11/20 14:32:10 [error] 7#7: *1 ");
    noise.extend(std::iter::repeat_n(b'x', 10 << 20));
    noise.push(b'\n');
    std::fs::write(d.join("error.log"), &noise).unwrap();
    std::fs::write(d.join("nginx.conf"), b"\x00\xff garbage {{{ ;;;\n").unwrap();
    let p = |n: &str| d.join(n).display().to_string();
    let out = run(&[
        "diagnose",
        "--no-probe",
        "--format",
        "json",
        "--config",
        &p("nginx.conf"),
        "--error-log",
        &p("error.log"),
        "--error-log",
        &p("missing.log"),
        "--access-log",
        &d.display().to_string(),
    ]);
    let j = json(&out);
    // The config that does not parse is a finding, with the file:line nginx would name.
    let top = &j["findings"][0];
    assert_eq!(top["id"], "config-invalid", "{j:#}");
    assert!(top["evidence"][0]["source"]
        .as_str()
        .unwrap()
        .contains("nginx.conf:"));
    let skipped = skipped(&j);
    let said = |needle: &str| skipped.iter().any(|s| s.contains(needle));
    assert!(said("missing.log"), "{skipped:#?}");
    assert!(said("is a directory"), "{skipped:#?}");
    assert!(
        said("error.log:1"),
        "unreadable lines are named with file:line: {skipped:#?}"
    );
}

/// `diagnose --format json` with the mixed incident's config and no probes; the logs follow.
const MIXED_CONFIG_JSON: [&str; 6] = [
    "diagnose",
    "--no-probe",
    "--format",
    "json",
    "--config",
    "examples/502-mixed-incident/nginx.conf",
];

/// A log read in part (a gzip cut short, as a file truncated while it is read also gives):
/// the findings stand on what was read, and `skipped` says what was not, where the on-call
/// engineer reads the report, not only on stderr.
#[test]
fn a_log_read_in_part_is_named_in_skipped() {
    let dir = tempfile::tempdir().unwrap();
    let log = std::fs::read(root().join("examples/502-mixed-incident/error.log")).unwrap();
    let mut gz = common::gzip(&log.repeat(2000));
    gz.truncate(gz.len() / 2);
    let path = dir.path().join("error.log.1.gz");
    std::fs::write(&path, &gz).unwrap();
    let path = path.display().to_string();
    let out = run(&[&MIXED_CONFIG_JSON[..], &["--error-log", &path]].concat());
    let j = json(&out);
    assert!(
        !j["findings"].as_array().unwrap().is_empty(),
        "what was read still counts: {j:#}"
    );
    let skipped = skipped(&j);
    assert!(
        skipped
            .iter()
            .any(|s| s.contains("error.log.1.gz") && s.contains("the lines before that were read")),
        "{skipped:#?}"
    );
}

/// A log that is a named pipe (a log shipper's, or `/dev/stdout` in a container) is named in
/// `skipped` at once: opening a pipe waits for a writer, and `diagnose` used to wait with it.
#[test]
fn a_log_that_is_a_pipe_is_skipped_without_waiting() {
    let dir = tempfile::tempdir().unwrap();
    let pipe = dir.path().join("error.log");
    let made = Command::new("mkfifo").arg(&pipe).status().expect("mkfifo");
    assert!(made.success());
    let out_path = dir.path().join("out.json");
    let mut child = Command::new(env!("CARGO_BIN_EXE_nginx-medic"))
        .args(MIXED_CONFIG_JSON)
        .args([
            "--error-log",
            "examples/502-mixed-incident/error.log",
            "--error-log",
        ])
        .arg(&pipe)
        .current_dir(root())
        .stdout(std::fs::File::create(&out_path).unwrap())
        .spawn()
        .expect("run nginx-medic");
    let started = std::time::Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if started.elapsed() > std::time::Duration::from_secs(30) {
            let _ = child.kill();
            let _ = child.wait();
            panic!("diagnose waited on the pipe");
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    };
    assert_eq!(status.code(), Some(0));
    let j: Value = serde_json::from_slice(&std::fs::read(&out_path).unwrap()).unwrap();
    assert!(!j["findings"].as_array().unwrap().is_empty(), "{j:#}");
    let skipped = skipped(&j);
    assert!(
        skipped
            .iter()
            .any(|s| s.contains("error.log") && s.contains("not a file")),
        "{skipped:#?}"
    );
}
