//! The real-host runs, replayed without root: each directory of `tests/fixtures/realhost/` is
//! what `diagnose --record` wrote inside a booted systemd where `tests/e2e/tests/realhost.rs`
//! staged a real failure (a crash loop, an OOM kill, pm2 giving up, a stopped PHP-FPM, ...).
//!
//! Two replays per recording: the whole diagnosis (`diagnose --replay DIR`, the real parser, log
//! scan and engine; its findings as an insta snapshot), and the supervisor gatherer alone, fed
//! the recorded `systemctl`/`journalctl`/`pm2`/`dmesg` answers through the `Host` seam, which
//! must rebuild exactly the supervisor facts that were recorded.

use std::path::{Path, PathBuf};
use std::process::Command;

use nginx_medic::host::Replay;
use nginx_medic::probe::supervisor::{gather, GatherInput, GatherOptions};
use nginx_medic::record::Bundle;

fn fixtures() -> Vec<PathBuf> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures/realhost");
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(&root)
        .unwrap_or_else(|e| panic!("{}: {e}", root.display()))
        .filter_map(|e| Some(e.ok()?.path()))
        .filter(|p| p.join("bundle.json").is_file())
        .collect();
    dirs.sort();
    // Every real-host scenario has its recording (re-record them with
    // `MEDIC_RECORD_FIXTURES=1 cargo test -p medic-e2e --test realhost`).
    assert!(dirs.len() >= 11, "{dirs:?}");
    dirs
}

/// What a reader checks first: each finding's id, severity, upstream and backend, the
/// evidence from the backend's own records, and the commands.
fn summary(j: &serde_json::Value, dir: &Path) -> String {
    let mut out = String::new();
    for f in j["findings"].as_array().unwrap() {
        out.push_str(&format!(
            "{} {} {}\n",
            f["severity"].as_str().unwrap_or(""),
            f["id"].as_str().unwrap_or(""),
            f["upstream"].as_str().unwrap_or("-")
        ));
        let b = &f["backend"];
        if b.is_object() {
            out.push_str(&format!(
                "  backend: {} {} state={} restarts={} confidence={}\n    why: {}\n",
                b["supervisor"].as_str().unwrap_or(""),
                b["name"].as_str().unwrap_or(""),
                b["state"],
                b["restarts"],
                b["confidence"].as_str().unwrap_or(""),
                b["why"].as_str().unwrap_or("")
            ));
        }
        for s in f["timeline"].as_array().into_iter().flatten() {
            out.push_str(&format!(
                "  story: {} to {} {} x{}: {}\n",
                s["first_seen"].as_str().unwrap_or(""),
                s["last_seen"].as_str().unwrap_or(""),
                s["id"].as_str().unwrap_or(""),
                s["count"],
                s["title"].as_str().unwrap_or("")
            ));
        }
        for e in f["evidence"].as_array().unwrap() {
            let kind = e["kind"].as_str().unwrap_or("");
            if matches!(kind, "journal" | "kernel" | "supervisor" | "log" | "config") {
                out.push_str(&format!(
                    "  {kind} {}: {}\n",
                    e["source"].as_str().unwrap_or(""),
                    e["text"].as_str().unwrap_or("")
                ));
            }
        }
        for c in f["fix"]["commands"].as_array().unwrap() {
            out.push_str(&format!("  $ {}\n", c.as_str().unwrap_or("")));
        }
    }
    out.replace(&dir.display().to_string(), "[bundle]")
}

#[test]
fn recorded_real_hosts_replay_through_the_engine() {
    for dir in fixtures() {
        let name = dir.file_name().unwrap().to_string_lossy().into_owned();
        let out = Command::new(env!("CARGO_BIN_EXE_nginx-medic"))
            .args(["diagnose", "--format", "json", "--replay"])
            .arg(&dir)
            .output()
            .expect("run nginx-medic");
        assert!(
            matches!(out.status.code(), Some(0 | 1)),
            "{name}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let j: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON");
        assert_eq!(j["inputs"]["mode"], "replay");
        insta::assert_snapshot!(format!("replay_{name}"), summary(&j, &dir));
    }
}

#[test]
fn recorded_supervisor_answers_rebuild_the_same_facts() {
    for dir in fixtures() {
        let name = dir.file_name().unwrap().to_string_lossy().into_owned();
        let b = Bundle::read(&dir.display().to_string()).expect("bundle");
        let recorded = &b.probes.as_ref().expect("probes").supervisors;
        let asked = recorded.gathered_for.clone().expect("gathered_for");
        let host = Replay(b.host.clone().expect("host recording"));
        let again = gather(
            &host,
            &GatherInput {
                pids: asked.pids.clone(),
                targets: asked.targets.clone(),
            },
            &GatherOptions {
                since: asked.since.clone(),
                ..GatherOptions::default()
            },
        );
        assert_eq!(
            serde_json::to_value(&again).unwrap(),
            serde_json::to_value(recorded).unwrap(),
            "{name}: the gatherer read the recorded answers differently"
        );
    }
}
