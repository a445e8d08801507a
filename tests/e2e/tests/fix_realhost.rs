//! `nginx-medic fix` on real hosts: a booted systemd (see `tests/realhost.rs`) where a backend
//! is stopped for real (a systemd unit stopped with systemctl, a pm2 app stopped with pm2), nginx
//! answers 502, and `fix` run inside as root plans the restart, makes it with `--apply --yes`,
//! and verifies the target accepts connections again; nginx's config is never touched.
//!
//! Run as root, like `tests/realhost.rs` (the rootfs is built and cached on first use). The
//! binary inside is the one `cargo build -p nginx-medic` left in `target/` (bind-mounted at
//! `/usr/local/bin/nginx-medic` by [`RealHost::boot`]).

use std::collections::BTreeMap;
use std::time::Instant;

use medic_e2e::realhost::scenarios::{self, Staged};
use medic_e2e::realhost::RealHost;
use medic_e2e::MedicRun;
use serde_json::Value;

/// Kept out of `/run` and `/var/lib` of the container (both would do: it is a volatile overlay).
const LOCK: &str = "/tmp/fix.lock";
const BACKUPS: &str = "/tmp/medic-backups";

/// `nginx-medic fix --format json` inside, with `--apply --yes` when `apply`; the run and its
/// JSON (printed, with how long it took).
fn fix(host: &RealHost, scenario: &str, apply: bool) -> (MedicRun, Value) {
    let mut args = vec![
        "fix",
        "--format",
        "json",
        "--lock-file",
        LOCK,
        "--backup-dir",
        BACKUPS,
    ];
    if apply {
        args.extend(["--apply", "--yes"]);
    }
    let start = Instant::now();
    let run = host.medic(&args);
    let took = start.elapsed();
    let json = run.json();
    eprintln!(
        "{scenario}: fix{} took {took:.2?}, exit {:?}\n{}\n--- stderr ---\n{}",
        if apply { " --apply --yes" } else { "" },
        run.code(),
        serde_json::to_string_pretty(&json).unwrap(),
        run.stderr
    );
    (run, json)
}

/// The journal's steps, whether the report holds them as a list or as `{steps: [...]}`.
fn steps(j: &Value) -> Vec<Value> {
    let journal = &j["journal"];
    journal
        .as_array()
        .or_else(|| journal["steps"].as_array())
        .cloned()
        .unwrap_or_else(|| panic!("no journal steps in the report: {journal}"))
}

/// The names of the journal's steps, in order.
fn step_names(j: &Value) -> Vec<String> {
    steps(j)
        .iter()
        .map(|s| s["step"].as_str().unwrap_or("").to_string())
        .collect()
}

/// The first step named `name`, which must be there and have succeeded.
fn ok_step(j: &Value, name: &str) -> Value {
    let all = steps(j);
    let s = all
        .iter()
        .find(|s| s["step"] == name)
        .unwrap_or_else(|| panic!("no {name:?} step in the journal: {:?}", step_names(j)))
        .clone();
    assert_eq!(s["ok"], true, "step {name} failed: {s}");
    s
}

/// The plan's item for `id` on `upstream`.
fn item<'j>(j: &'j Value, id: &str, upstream: &str) -> &'j Value {
    j["plan"]["items"]
        .as_array()
        .expect("plan.items is an array")
        .iter()
        .find(|i| i["id"] == id && i["upstream"] == upstream)
        .unwrap_or_else(|| panic!("no {id} item for {upstream} in the plan: {}", j["plan"]))
}

fn commands(j: &Value) -> Vec<String> {
    j["commands"]
        .as_array()
        .expect("commands is an array")
        .iter()
        .map(|c| c.as_str().unwrap_or("").to_string())
        .collect()
}

/// Every file and symlink under `/etc/nginx` inside: relative path -> bytes (a link's target).
fn nginx_tree(host: &RealHost) -> BTreeMap<String, Vec<u8>> {
    let list = host.exec_ok(&["find", "/etc/nginx", "-printf", "%y %P\\n"]);
    let mut out = BTreeMap::new();
    for line in list.lines() {
        let Some((kind, rel)) = line.split_once(' ') else {
            continue;
        };
        let path = format!("/etc/nginx/{rel}");
        match kind {
            "f" => {
                out.insert(rel.to_string(), host.read_file(&path));
            }
            "l" => {
                let target = host.exec_ok(&["readlink", &path]);
                out.insert(format!("{rel} ->"), target.into_bytes());
            }
            _ => {
                out.insert(format!("{rel}/"), Vec::new());
            }
        }
    }
    assert!(
        out.contains_key("nginx.conf"),
        "no /etc/nginx/nginx.conf in {:?}",
        out.keys()
    );
    out
}

/// The plan of a restart-only fix: no file, no reload, exactly the one restart `change`.
fn check_restart_plan(j: &Value, upstream: &str, change: &Value, command: &str) {
    let show = || serde_json::to_string_pretty(&j["plan"]).unwrap();
    let it = item(j, "backend-down", upstream);
    assert_eq!(it["apply"], true, "{}", show());
    assert!(it["why_not"].is_null(), "{}", show());
    assert!(
        it["changes"].as_array().unwrap().contains(change),
        "no {change} in the item's changes: {}",
        show()
    );
    assert_eq!(
        j["plan"]["actions"].as_array().unwrap(),
        &vec![change.clone()],
        "{}",
        show()
    );
    assert_eq!(
        j["plan"]["files"].as_array().map(Vec::len),
        Some(0),
        "{}",
        show()
    );
    assert_eq!(j["plan"]["reload"], false, "{}", show());
    assert!(
        commands(j).iter().any(|c| c == command),
        "no {command:?} in {:?}",
        commands(j)
    );
}

/// Without --apply: exit 0, `planned`, nothing applied, an empty journal.
fn check_planned_only(run: &MedicRun, j: &Value) {
    assert_eq!(run.code(), Some(0), "{run}");
    assert_eq!(j["outcome"], "planned", "{run}");
    assert_eq!(j["applied"], false, "{run}");
    assert_eq!(j["exit"], 0, "{run}");
    assert!(
        steps(j).is_empty(),
        "a plan-only run journaled steps: {run}"
    );
}

/// With --apply --yes: exit 0, `applied`, the restart journaled (its command named), then a
/// verify step that passed after it; no backup of a fix that writes no file.
fn check_applied(run: &MedicRun, j: &Value, restart_detail: &str) {
    assert_eq!(run.code(), Some(0), "{run}");
    assert_eq!(j["outcome"], "applied", "{run}");
    assert_eq!(j["applied"], true, "{run}");
    assert_eq!(j["exit"], 0, "{run}");
    let names = step_names(j);
    let restart = ok_step(j, "restart");
    assert!(
        restart["detail"]
            .as_str()
            .unwrap_or("")
            .contains(restart_detail),
        "the restart step does not name {restart_detail:?}: {restart}"
    );
    let verify = ok_step(j, "verify");
    let at = |n: &str| names.iter().position(|s| s == n).unwrap();
    assert!(
        at("restart") < at("verify"),
        "verify before restart: {names:?}"
    );
    assert!(
        verify["detail"].as_str().unwrap_or("").contains("healthy"),
        "the verify step does not say what it probed: {verify}"
    );
    for s in ["write", "reload", "rollback", "backup"] {
        assert!(
            !names.iter().any(|n| n == s),
            "a restart-only fix journaled {s}: {names:?}"
        );
    }
    assert!(j["backup_dir"].is_null(), "{run}");
}

/// The backend-down finding on `upstream` in a diagnosis.
fn finding<'j>(j: &'j Value, upstream: &str) -> &'j Value {
    j["findings"]
        .as_array()
        .expect("findings is an array")
        .iter()
        .find(|f| f["id"] == "backend-down" && f["upstream"] == upstream)
        .unwrap_or_else(|| {
            panic!(
                "no backend-down finding for {upstream}: {}",
                serde_json::to_string_pretty(&j["findings"]).unwrap()
            )
        })
}

fn staged_ok(s: &Staged, name: &str) {
    assert_eq!(s.scenario, name);
    assert_eq!(s.status, 502, "{s:#?}");
}

#[test]
fn stopped_unit_is_restarted() {
    let start = Instant::now();
    let host = RealHost::boot();
    let s = scenarios::stopped_by_hand(&host);
    staged_ok(&s, "stopped_by_hand");
    assert_eq!(s.upstream, scenarios::BACKEND);
    assert_eq!(host.unit_prop(scenarios::UNIT, "ActiveState"), "inactive");
    assert_eq!(host.curl("http://127.0.0.1/"), 502);
    let before = nginx_tree(&host);

    let (run, j) = fix(&host, s.scenario, false);
    check_planned_only(&run, &j);
    let change = serde_json::json!({"kind": "restart-unit", "unit": scenarios::UNIT});
    check_restart_plan(
        &j,
        scenarios::BACKEND,
        &change,
        "systemctl restart my-backend.service",
    );
    assert_eq!(
        host.unit_prop(scenarios::UNIT, "ActiveState"),
        "inactive",
        "fix without --apply started the unit"
    );
    assert_eq!(host.curl("http://127.0.0.1/"), 502);

    let (run, j) = fix(&host, s.scenario, true);
    check_applied(&run, &j, "systemctl restart my-backend.service");
    let state = host.unit_show(scenarios::UNIT, &["ActiveState", "SubState"]);
    assert_eq!(state["ActiveState"], "active", "{state:?}");
    assert_eq!(state["SubState"], "running", "{state:?}");
    assert_eq!(host.curl("http://127.0.0.1/"), 200);
    assert_eq!(nginx_tree(&host), before, "the fix changed /etc/nginx");

    // Nothing left to fix: the diagnosis finds the backend up, the plan is empty.
    let (run, j) = fix(&host, s.scenario, true);
    assert_eq!(run.code(), Some(0), "{run}");
    assert_eq!(j["outcome"], "nothing-to-do", "{run}");
    assert!(!commands(&j).iter().any(|c| c.contains("restart")), "{run}");
    drop(host);
    eprintln!(
        "stopped_unit_is_restarted: whole test {:.2?}",
        start.elapsed()
    );
}

#[test]
fn pm2_app_is_restarted() {
    let start = Instant::now();
    let host = RealHost::boot();
    let s = scenarios::pm2_stopped(&host);
    staged_ok(&s, "pm2_stopped");
    assert_eq!(s.upstream, scenarios::PM2_BACKEND);
    assert_eq!(s.facts["status"], "stopped");
    let before = nginx_tree(&host);

    // What the diagnosis knows of the backend decides whether the machine may restart it.
    let d = host.medic(&["diagnose", "--format", "json"]);
    assert!(matches!(d.code(), Some(0 | 1)), "{d}");
    let d = d.json();
    let f = finding(&d, scenarios::PM2_BACKEND);
    eprintln!(
        "pm2_stopped: the finding's backend {}",
        serde_json::to_string_pretty(&f["backend"]).unwrap()
    );
    assert_eq!(f["backend"]["supervisor"], "pm2", "{f}");
    assert_eq!(f["backend"]["name"], scenarios::PM2_APP, "{f}");
    let confident = matches!(
        f["backend"]["confidence"].as_str(),
        Some("certain" | "high")
    );

    let (run, j) = fix(&host, s.scenario, false);
    check_planned_only(&run, &j);
    if !confident {
        // A guess is advice only: nothing to apply, and the plan says why.
        let it = item(&j, "backend-down", scenarios::PM2_BACKEND);
        assert_eq!(it["apply"], false, "{it}");
        assert!(
            it["why_not"].as_str().is_some_and(|w| !w.is_empty()),
            "{it}"
        );
        assert!(j["plan"]["actions"].as_array().unwrap().is_empty(), "{j}");
        eprintln!(
            "pm2_stopped: confidence {} is below high: the restart is advice only",
            f["backend"]["confidence"]
        );
        return;
    }
    let change = serde_json::json!({
        "kind": "restart-pm2",
        "app": scenarios::PM2_APP,
        "home": scenarios::PM2_HOME,
        "user": scenarios::PM2_USER,
    });
    check_restart_plan(
        &j,
        scenarios::PM2_BACKEND,
        &change,
        "sudo -u deploy PM2_HOME=/home/deploy/.pm2 pm2 restart orders-api",
    );
    assert_eq!(
        scenarios::pm2_app(&host)["pm2_env"]["status"],
        "stopped",
        "fix without --apply started the app"
    );
    assert_eq!(host.curl("http://127.0.0.1/"), 502);

    let (run, j) = fix(&host, s.scenario, true);
    check_applied(&run, &j, "pm2 restart orders-api");
    let app = scenarios::pm2_app(&host);
    assert_eq!(app["pm2_env"]["status"], "online", "{app:#}");
    assert_eq!(host.curl("http://127.0.0.1/"), 200);
    assert_eq!(nginx_tree(&host), before, "the fix changed /etc/nginx");
    // The restart went to deploy's daemon: root got none of its own.
    assert!(
        !host.exec(&["test", "-e", "/root/.pm2"]).status.success(),
        "fix --apply started a pm2 daemon as root"
    );
    drop(host);
    eprintln!("pm2_app_is_restarted: whole test {:.2?}", start.elapsed());
}
