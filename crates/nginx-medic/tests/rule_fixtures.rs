//! One catalog test over every root-cause rule, ruff's way: each rule is documented, fires on
//! its own fixture, and stays quiet on the others'.
//!
//! A fixture is what `diagnose --record` wrote while an end-to-end scenario had made the
//! failure happen on a real nginx (`MEDIC_RECORD_FIXTURES=1 cargo test -p medic-e2e`), kept
//! beside the rules: `crates/medic-core/src/rules/fixtures/<id>/<scenario>/`, with the
//! finding the scenario produced on top in `expect.txt`; `quiet/` holds the healthy controls.
//! Replayed here without root or nginx, through the real parser, log scan and engine:
//! - fires: the rule's finding is the top error of its fixture;
//! - stays quiet: no other fixture puts it on top, and a healthy control has no error at all;
//! - documented: its doc has every section, and `explain` shows it.
//!
//! The rules no scenario makes fire on loopback yet are named in [`NOT_RECORDED`], so the gap
//! is visible and shrinks: a new fixture must come off that list.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;

use medic_core::rules::cause::registry;
use medic_core::rules::{doc_section, RuleDoc};
use medic_e2e::diagnose::fixture_label;

/// Root causes without a recorded fixture, and why: what the loopback suite cannot stage, or
/// has not yet.
const NOT_RECORDED: &[(&str, &str)] = &[
    ("config-invalid", "nginx refuses the config: no live run to record (e2e: nginx_t_failure_host_not_found, post-mortem)"),
    ("selinux-denied", "no SELinux on Debian"),
    ("connect-unreachable", "needs a route that does not exist: not on loopback"),
    ("ports-exhausted", "needs the local port range exhausted"),
    ("connect-failed", "needs an errno nginx rarely meets (22 at [crit]); unit test beside the rule"),
    ("temp-file-error", "needs a full file system; unit test beside temp_path_permission"),
    ("stale-dns", "the live run is under medic-isolate, whose recording is not kept yet"),
    ("send-timeout", "not staged live yet (diagnose_more stages it post-mortem)"),
    ("connect-permission", "TCP 13 needs SELinux; unix 13 is socket-permission"),
    ("cert-expires-soon", "a warning beside a healthy upstream, never the top"),
    ("no-live-upstreams", "told as backend-down's story (timeline)"),
    ("read-timeout", "the class-level cause: what a post-mortem says"),
    ("tls-handshake", "the class-level cause: what a post-mortem says"),
    ("tls-verify", "the class-level cause: what a post-mortem says"),
    ("client-closed", "an info finding beside the 504s of hung_backend"),
    (
        "wrong-port",
        "on the suite's busy host nothing ties the one app to the target, so the live run is backend-down with it as a hint; the lone-candidate case is the unit test beside the rule",
    ),
];

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../medic-core/src/rules/fixtures")
}

/// `(expected top id and state, fixture dir)` of every recorded fixture: `expect.txt` holds
/// the id, then the state (`ongoing`, `resolved`, `none` for a quiet one).
fn fixtures() -> Vec<(String, PathBuf)> {
    let mut out = Vec::new();
    for id in std::fs::read_dir(root()).into_iter().flatten().flatten() {
        for dir in std::fs::read_dir(id.path()).into_iter().flatten().flatten() {
            let dir = dir.path();
            if dir.join("bundle.json").is_file() {
                let expect = std::fs::read_to_string(dir.join("expect.txt"))
                    .unwrap_or_else(|e| panic!("{}: expect.txt: {e}", dir.display()));
                out.push((expect.split_whitespace().collect::<Vec<_>>().join(" "), dir));
            }
        }
    }
    out.sort();
    out
}

fn replay(dir: &Path) -> serde_json::Value {
    let out = Command::new(env!("CARGO_BIN_EXE_nginx-medic"))
        .args(["diagnose", "--format", "json", "--replay"])
        .arg(dir)
        .output()
        .expect("run nginx-medic");
    assert!(
        matches!(out.status.code(), Some(0 | 1)),
        "{}: {}",
        dir.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("JSON")
}

#[test]
fn every_rule_is_documented_fires_on_its_fixture_and_stays_quiet_on_the_others() {
    let fixtures = fixtures();
    assert!(fixtures.len() >= 20, "{} fixtures", fixtures.len());
    let mut fired: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let mut wrong = Vec::new();
    for (expect, dir) in &fixtures {
        let j = replay(dir);
        let label = fixture_label(&j);
        let state = j["findings"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|f| f["id"] == label)
            .and_then(|f| f["state"].as_str())
            .unwrap_or("none");
        let (expect, top_error) = (expect.as_str(), format!("{label} {state}"));
        let name = dir.file_name().unwrap().to_string_lossy().into_owned();
        if top_error != expect {
            wrong.push(format!("{name}: expected {expect} on top, got {top_error}"));
        }
        fired.entry(label.to_string()).or_default().push(name);
    }
    assert!(
        wrong.is_empty(),
        "fixtures that replay otherwise:\n{}",
        wrong.join("\n")
    );
    assert!(
        fired.contains_key("quiet"),
        "no healthy control among the fixtures"
    );

    let not_recorded: BTreeSet<&str> = NOT_RECORDED.iter().map(|(id, _)| *id).collect();
    let mut missing = Vec::new();
    for rule in registry() {
        let id = rule.id();
        for section in ["What it detects", "Evidence", "Fix"] {
            assert!(
                doc_section(*rule as &dyn RuleDoc, section).is_some_and(|s| !s.is_empty()),
                "{id}: no `## {section}` in its doc"
            );
        }
        let has = fired.contains_key(id);
        if has && not_recorded.contains(id) {
            missing.push(format!("{id} has a fixture now: take it off NOT_RECORDED"));
        }
        if !has && !not_recorded.contains(id) {
            missing.push(format!(
                "{id} fires on no fixture (record one with MEDIC_RECORD_FIXTURES=1, or say why in NOT_RECORDED)"
            ));
        }
    }
    assert!(missing.is_empty(), "{}", missing.join("\n"));
}
