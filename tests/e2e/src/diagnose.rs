//! Running `nginx-medic diagnose` on a scenario's nginx and checking its findings.
//!
//! A scenario stages a real failure (nginx logs it), then calls [`diagnose`] twice: once live
//! (probes on, while the upstream side is still in its broken state) and once post-mortem
//! ([`Mode::NoProbe`], after nginx and the upstream side are stopped: files only). The JSON is
//! `causes.md` §3.
//!
//! Scenarios of one test file share the host's listening sockets (what the probes look at), so
//! they take [`serial`] first: one scenario's stubs at a time.
//!
//! Every live scenario runs on a busy host: [`serial`] and the live `diagnose*` helpers start the
//! test binary's [`crate::busy::shared`] (unrelated `python3 -m http.server` listeners, another
//! PHP-FPM master, an unrelated OOM kill) before the scenario picks its ports, so nothing the
//! scenario asserts can come from a host that runs nothing else.

use std::panic::{catch_unwind, resume_unwind, AssertUnwindSafe};
use std::path::Path;
use std::sync::{Mutex, MutexGuard};

use serde_json::Value;

use crate::{medic_env, MedicRun, Prefix};

/// Live (probes, supervisors, `nginx -t`) or post-mortem (`--no-probe`: read files only).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    Live,
    NoProbe,
}

/// Holds the host's listeners for one scenario at a time within a test binary, beside the
/// binary's busy host ([`crate::busy::shared`], started on the first call).
///
/// The busy host starts here, before the scenario takes its free ports: started later, one of
/// its listeners could take a port the scenario chose because nothing listened there.
pub fn serial() -> MutexGuard<'static, ()> {
    static LOCK: Mutex<()> = Mutex::new(());
    let guard = LOCK.lock().unwrap_or_else(|p| p.into_inner());
    crate::busy::shared();
    guard
}

/// `nginx-medic diagnose --config PREFIX/conf/nginx.conf --prefix PREFIX --format json`
/// (`--no-probe` post-mortem) plus `extra`. The logs are the ones the config names.
pub fn diagnose(prefix: &Prefix, mode: Mode, extra: &[&str]) -> Diagnosis {
    diagnose_config(&prefix.conf(), prefix.path(), mode, extra)
}

/// As [`diagnose`], with `env` added to the binary's environment (e.g. `TZ`).
///
/// Like every `diagnose*` here, the window is `--since 30d` unless `extra` gives its own
/// `--since`.
pub fn diagnose_env(
    prefix: &Prefix,
    mode: Mode,
    extra: &[&str],
    env: &[(&str, &str)],
) -> Diagnosis {
    run_diagnose(&prefix.conf(), prefix.path(), mode, extra, env)
}

/// As [`diagnose`], for a config file at another place.
pub fn diagnose_config(conf: &Path, prefix: &Path, mode: Mode, extra: &[&str]) -> Diagnosis {
    run_diagnose(conf, prefix, mode, extra, &[])
}

fn run_diagnose(
    conf: &Path,
    prefix: &Path,
    mode: Mode,
    extra: &[&str],
    env: &[(&str, &str)],
) -> Diagnosis {
    let mut args: Vec<String> = vec![
        "diagnose".into(),
        "--config".into(),
        conf.display().to_string(),
        "--prefix".into(),
        format!("{}/", prefix.display()),
        "--format".into(),
        "json".into(),
    ];
    if !extra.contains(&"--since") {
        // Every log line the test produced counts, however old the machine's clock says it is.
        args.extend(["--since".into(), "30d".into()]);
    }
    let mut record = None;
    match mode {
        // Already running when the scenario took `serial`; this covers one that did not.
        Mode::Live => {
            crate::busy::shared();
            if std::env::var_os("MEDIC_RECORD_FIXTURES").is_some() {
                let dir = tempfile::tempdir().expect("a temp dir for the recording");
                args.extend(["--record".into(), dir.path().display().to_string()]);
                record = Some(dir);
            }
        }
        Mode::NoProbe => args.push("--no-probe".into()),
    }
    args.extend(extra.iter().map(|s| s.to_string()));
    let run = medic_env(args, Vec::<&Path>::new(), env);
    let json = run.json();
    if let Some(dir) = record {
        keep_rule_fixture(dir.path(), &json);
    }
    Diagnosis { run, json }
}

/// With `MEDIC_RECORD_FIXTURES=1`, a live diagnosis's recording becomes a rule fixture:
/// `crates/medic-core/src/rules/fixtures/<label>/<test>/` ([`fixture_label`]: the top error's
/// id, or `quiet` for the healthy controls). `crates/nginx-medic/tests/rule_fixtures.rs`
/// replays each and checks the same finding comes out on top. Only the facts are kept (not
/// the gatherer's raw answers), and of this machine's OOM kills the last three.
fn keep_rule_fixture(recorded: &Path, json: &Value) {
    let id = fixture_label(json);
    let test = std::thread::current()
        .name()
        .unwrap_or("scenario")
        .replace("::", "-");
    let root =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../crates/medic-core/src/rules/fixtures");
    let dest = root.join(id).join(&test);
    let _ = std::fs::remove_dir_all(&dest);
    std::fs::create_dir_all(&dest).expect("create the fixture dir");
    for entry in walk(recorded) {
        let rel = entry.strip_prefix(recorded).expect("inside the recording");
        let to = dest.join(rel);
        std::fs::create_dir_all(to.parent().expect("a parent")).expect("mkdir");
        if rel == Path::new("bundle.json") {
            let mut b: Value =
                serde_json::from_slice(&std::fs::read(&entry).expect("read bundle.json"))
                    .expect("bundle.json is JSON");
            // The replay reads the recorded facts; the gatherer's raw answers (`host`) are for
            // the real-host fixtures, which re-run the gatherer on them.
            if let Some(o) = b.as_object_mut() {
                o.remove("host");
            }
            // This machine's OOM kills since boot are many (every test binary stages one):
            // the last three show the fixture an unrelated kill.
            if let Some(oom) = b.pointer_mut("/probes/supervisors/oom") {
                for list in ["kills", "lines"] {
                    if let Some(v) = oom.get_mut(list).and_then(Value::as_array_mut) {
                        let keep = if list == "kills" { 3 } else { 6 };
                        let cut = v.len().saturating_sub(keep);
                        v.drain(..cut);
                    }
                }
            }
            std::fs::write(&to, serde_json::to_vec_pretty(&b).expect("JSON")).expect("write");
        } else {
            std::fs::copy(&entry, &to).expect("copy a recorded file");
        }
    }
    let state = json["findings"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|f| f["id"] == id)
        .and_then(|f| f["state"].as_str())
        .unwrap_or("none");
    std::fs::write(dest.join("expect.txt"), format!("{id}\n{state}\n")).expect("write expect.txt");
    // `nginx -T` and the logs stay as recorded: the evidence cites their lines.
}

/// What a fixture is recorded for: its top error; without one, its first finding from the
/// logs (a warning: a retried failure, a 404); else `quiet`. `rule_fixtures.rs` replays by it.
pub fn fixture_label(json: &Value) -> &str {
    let findings = json["findings"].as_array().map_or(&[][..], Vec::as_slice);
    findings
        .iter()
        .find(|f| f["severity"] == "error")
        .or_else(|| {
            findings
                .iter()
                .find(|f| f["class"].is_string() && f["count"].as_u64() > Some(0))
        })
        .and_then(|f| f["id"].as_str())
        .unwrap_or("quiet")
}

/// Every file under `dir`.
fn walk(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let p = e.path();
        if p.is_dir() {
            out.extend(walk(&p));
        } else {
            out.push(p);
        }
    }
    out
}

/// As [`diagnose`], run through a wrapper program: `WRAPPER... nginx-medic diagnose ...`
/// (e.g. `medic-isolate --resolv-conf F --hosts F --`, for a scenario whose name resolution
/// must stay on loopback).
pub fn diagnose_wrapped(
    wrapper: &[&std::ffi::OsStr],
    prefix: &Prefix,
    mode: Mode,
    extra: &[&str],
) -> Diagnosis {
    let (program, wrapper_args) = wrapper.split_first().expect("a wrapper program");
    let mut cmd = std::process::Command::new(program);
    cmd.args(wrapper_args)
        .arg(crate::medic_bin())
        .args(["diagnose", "--config"])
        .arg(prefix.conf())
        .arg("--prefix")
        .arg(format!("{}/", prefix.display()))
        .args(["--format", "json", "--since", "30d"]);
    match mode {
        Mode::Live => {
            crate::busy::shared();
        }
        Mode::NoProbe => {
            cmd.arg("--no-probe");
        }
    }
    cmd.args(extra);
    let argv = std::iter::once(cmd.get_program())
        .chain(cmd.get_args())
        .map(|a| a.to_string_lossy().into_owned())
        .collect();
    let child = cmd
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("spawn {program:?}: {e}"));
    let out = crate::wait_output(child, std::time::Duration::from_secs(60));
    let run = MedicRun {
        argv,
        status: out.status,
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    };
    let json = run.json();
    Diagnosis { run, json }
}

/// One run of `diagnose` and its JSON.
pub struct Diagnosis {
    pub run: MedicRun,
    pub json: Value,
}

impl Diagnosis {
    pub fn findings(&self) -> &[Value] {
        self.json["findings"]
            .as_array()
            .map(Vec::as_slice)
            .unwrap_or_else(|| panic!("no findings array:\n{}", self.run))
    }

    /// The first finding (the most likely root cause).
    pub fn top(&self) -> &Value {
        self.findings()
            .first()
            .unwrap_or_else(|| panic!("no findings at all:\n{}", self.run))
    }

    /// Asserts the top finding's `id`, `upstream` (when given) and that one evidence item's
    /// `text` or `source` contains each of `evidence`; and that no finding blames the busy host
    /// ([`crate::busy::BusyHost::assert_not_blamed`]). Returns the finding.
    pub fn assert_top(&self, id: &str, upstream: Option<&str>, evidence: &[&str]) -> &Value {
        let top = self.top();
        assert_eq!(
            top["id"], id,
            "top finding is not {id}:\n{:#}\n{}",
            self.json, self.run.stderr
        );
        if let Some(up) = upstream {
            assert_eq!(top["upstream"], up, "upstream of {id}:\n{:#}", self.json);
        }
        let items = top["evidence"].as_array().expect("evidence array");
        assert!(!items.is_empty(), "no evidence:\n{:#}", top);
        for needle in evidence {
            assert!(
                items.iter().any(|e| {
                    e["text"].as_str().unwrap_or("").contains(needle)
                        || e["source"].as_str().unwrap_or("").contains(needle)
                }),
                "no evidence of {id} contains {needle:?}:\n{:#}",
                top
            );
        }
        for key in ["title", "severity", "fix"] {
            assert!(!top[key].is_null(), "{id} has no {key}:\n{top:#}");
        }
        if let Some(busy) = crate::busy::running() {
            for f in self.findings() {
                busy.assert_not_blamed(f);
            }
        }
        top
    }

    /// A healthy setup: no finding has severity `error`.
    pub fn assert_no_errors(&self) {
        let errors: Vec<&Value> = self
            .findings()
            .iter()
            .filter(|f| f["severity"] == "error")
            .collect();
        assert!(
            errors.is_empty(),
            "a healthy setup gave error findings:\n{errors:#?}\n{}",
            self.run
        );
    }
}

/// Runs every check of a scenario, remembers which failed, and fails the scenario at the end
/// with all of them: a wrong live diagnosis does not hide the post-mortem one.
pub struct Checks {
    scenario: &'static str,
    failed: Vec<(String, Box<dyn std::any::Any + Send>)>,
}

impl Checks {
    pub fn new(scenario: &'static str) -> Checks {
        Checks {
            scenario,
            failed: Vec::new(),
        }
    }

    /// Runs `f`; a panic in it is a failed check, reported now and again by [`Checks::finish`].
    pub fn check(&mut self, what: &str, f: impl FnOnce()) {
        if let Err(e) = catch_unwind(AssertUnwindSafe(f)) {
            eprintln!("{}: check {what:?} FAILED", self.scenario);
            self.failed.push((what.to_string(), e));
        } else {
            eprintln!("{}: check {what:?} passed", self.scenario);
        }
    }

    /// Panics with the failed checks, if any (the one panic itself when only one failed).
    pub fn finish(mut self) {
        match self.failed.len() {
            0 => {}
            1 => {
                let (_, e) = self.failed.remove(0);
                resume_unwind(e);
            }
            _ => {
                let names: Vec<&str> = self.failed.iter().map(|(w, _)| w.as_str()).collect();
                panic!(
                    "{}: these checks failed (messages above): {names:?}",
                    self.scenario
                );
            }
        }
    }
}
