//! `nginx-medic fix` on the bundled incident, post-mortem (files only): the plan as text (insta
//! snapshot) and JSON, nothing changed without `--apply`, and the refusals that exit 2 before
//! anything is touched. The real applies are in `tests/e2e/tests/fix_*.rs`.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use serde_json::Value;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// `fix --no-probe` on a copy of `examples/502-mixed-incident` in `dir` (the copy, so a bug that
/// writes could never touch the repository), plus `extra`; stdin is not a terminal.
fn fix(dir: &Path, extra: &[&str]) -> Output {
    let src = root().join("examples/502-mixed-incident");
    for f in ["nginx.conf", "error.log", "access.log"] {
        if !dir.join(f).exists() {
            std::fs::copy(src.join(f), dir.join(f)).expect("copy the example");
        }
    }
    let mut args: Vec<String> = [
        "fix",
        "--no-probe",
        "--config",
        "nginx.conf",
        "--error-log",
        "error.log",
        "--access-log",
        "access.log",
        "--lock-file",
        "fix.lock",
        "--backup-dir",
        "backups",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    args.extend(extra.iter().map(|s| s.to_string()));
    Command::new(env!("CARGO_BIN_EXE_nginx-medic"))
        .args(&args)
        .current_dir(dir)
        .stdin(Stdio::null())
        .output()
        .expect("run nginx-medic")
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// Bytes and mtime of every file in `dir`.
fn snapshot(dir: &Path) -> Vec<(String, Vec<u8>, std::time::SystemTime)> {
    let mut v: Vec<_> = std::fs::read_dir(dir)
        .expect("read_dir")
        .flatten()
        .map(|e| {
            let p = e.path();
            (
                p.display().to_string(),
                std::fs::read(&p).unwrap_or_default(),
                e.metadata().and_then(|m| m.modified()).expect("mtime"),
            )
        })
        .collect();
    v.sort();
    v
}

#[test]
fn the_plan_is_a_diff_and_commands_and_changes_nothing() {
    let dir = tempfile::tempdir().expect("tempdir");
    // Copied first, so the snapshot of the directory is taken of the input.
    fix(dir.path(), &["--format", "json"]);
    let before = snapshot(dir.path());
    let text = fix(dir.path(), &[]);
    assert_eq!(text.status.code(), Some(0), "{}", stdout(&text));
    let shown = stdout(&text).replace(&dir.path().display().to_string(), "[DIR]");
    insta::assert_snapshot!(shown);
    let json = fix(dir.path(), &["--format", "json", "--risk", "medium"]);
    let v: Value = serde_json::from_slice(&json.stdout).expect("JSON");
    assert_eq!(v["outcome"], "planned");
    assert_eq!(v["applied"], false);
    let applied: Vec<&str> = v["plan"]["items"]
        .as_array()
        .expect("items")
        .iter()
        .filter(|i| i["apply"] == true)
        .filter_map(|i| i["id"].as_str())
        .collect();
    assert_eq!(applied, ["header-too-big", "rate-limited"], "{v:#}");
    let diff = v["plan"]["files"][0]["diff"].as_str().expect("a diff");
    assert!(
        diff.contains("+            proxy_buffer_size 8k;"),
        "{diff}"
    );
    assert!(diff.contains("burst=20"), "{diff}");
    assert_eq!(
        snapshot(dir.path()),
        before,
        "fix without --apply changed a file"
    );
}

#[test]
fn apply_without_a_terminal_needs_yes_and_touches_nothing() {
    let dir = tempfile::tempdir().expect("tempdir");
    fix(dir.path(), &["--format", "json"]);
    let before = snapshot(dir.path());
    let o = fix(dir.path(), &["--apply", "--format", "json"]);
    assert_eq!(o.status.code(), Some(2), "{}", stdout(&o));
    let v: Value = serde_json::from_slice(&o.stdout).expect("JSON");
    assert_eq!(v["outcome"], "could-not-run");
    assert!(
        v["reason"].as_str().is_some_and(|r| r.contains("--yes")),
        "{v:#}"
    );
    assert_eq!(snapshot(dir.path()), before);
}

#[test]
fn a_config_that_cannot_be_read_is_exit_2() {
    let dir = tempfile::tempdir().expect("tempdir");
    let o = Command::new(env!("CARGO_BIN_EXE_nginx-medic"))
        .args(["fix", "--no-probe", "--config", "/nonexistent/nginx.conf"])
        .current_dir(dir.path())
        .output()
        .expect("run nginx-medic");
    assert_eq!(o.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("/nonexistent/nginx.conf"),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
}
