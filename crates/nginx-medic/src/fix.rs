//! `nginx-medic fix`: the diagnosis, then the plan (a unified diff per config file, the exact
//! commands), then with `--apply` the change made the way an operator should make it: lock,
//! back up outside every include glob, `nginx -t` the staged tree, write atomically, reload,
//! verify, roll back when the fix does not cure.
//!
//! The parts: [`plan`] turns the findings' remedies into edits (reads only), [`apply`] changes
//! the host and [`journal`] records each step, [`verify`] probes the fixed targets again.

pub mod apply;
pub mod journal;
pub mod plan;
pub mod verify;

use std::io::{self, IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Result;
use medic_core::rules::{Change, Risk};
use serde::Serialize;

use crate::cli::{DiagnoseArgs, FixArgs, FixFormat, RiskLevel};
use crate::diagnose::Analysis;
use crate::load::InstanceReport;
use journal::Journal;
use plan::{Plan, Selection};

/// The JSON of `fix --format json`.
#[derive(Serialize)]
struct FixReport<'a> {
    plan: &'a Plan,
    /// The commands the plan runs, in order (or that a person would run).
    commands: Vec<String>,
    applied: bool,
    /// `applied`, `nothing-to-do`, `rolled-back`, `not-written`, `could-not-run`,
    /// `action-failed`, `rollback-failed`, or `planned` without --apply.
    outcome: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    reason: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    backup_dir: Option<String>,
    journal: &'a [journal::Step],
    exit: u8,
}

/// Runs `fix`; the exit status of issue 13: 0 applied and verified (or nothing to do, or only
/// the plan printed), 1 a fix failed and was rolled back, 2 could not run, 4 the rollback failed.
pub fn run(args: &FixArgs) -> Result<u8> {
    let diagnose_args = DiagnoseArgs {
        input: args.input.clone(),
        probe_wait_ms: args.probe_wait_ms,
        ..DiagnoseArgs::default()
    };
    let Some(Analysis { report, facts }) = crate::diagnose::analyze(&diagnose_args)? else {
        return Ok(2);
    };
    let sel = Selection {
        ids: args.ids.clone(),
        upstream: args.upstream.clone(),
        risk: Some(match args.risk {
            RiskLevel::Low => Risk::Low,
            RiskLevel::Medium => Risk::Medium,
        }),
    };
    let plan = plan::plan(&report.findings, &facts, &sel);
    let ctl = control_of(&report.instances, &facts, args);
    let commands = commands_of(&plan, ctl.as_ref());
    let json = args.format == FixFormat::Json;
    let mut out = io::stdout().lock();
    if !json {
        write_plan(&mut out, &plan, &commands, args.apply)?;
        out.flush()?;
    }
    let finish = |out: &mut dyn Write,
                  journal: &Journal,
                  outcome: &str,
                  reason: Option<String>,
                  backup: Option<&Path>,
                  exit: u8|
     -> Result<u8> {
        if json {
            let r = FixReport {
                plan: &plan,
                commands: commands.clone(),
                applied: args.apply,
                outcome: outcome.to_string(),
                reason,
                backup_dir: backup.map(|b| b.display().to_string()),
                journal: journal.steps(),
                exit,
            };
            serde_json::to_writer_pretty(&mut *out, &r)?;
            writeln!(out)?;
        } else if let Some(r) = reason {
            writeln!(out, "{outcome}: {r}")?;
        }
        Ok(exit)
    };
    let quiet = Journal::quiet();
    if !args.apply {
        return finish(&mut out, &quiet, "planned", None, None, 0);
    }
    if plan.is_empty() {
        return finish(
            &mut out,
            &quiet,
            "nothing-to-do",
            Some("no finding has a machine fix at this risk".into()),
            None,
            0,
        );
    }
    if !nix::unistd::geteuid().is_root() {
        return finish(
            &mut out,
            &quiet,
            "could-not-run",
            Some("--apply changes nginx's config and services: run it as root".into()),
            None,
            2,
        );
    }
    let Some(ctl) = ctl else {
        return finish(
            &mut out,
            &quiet,
            "could-not-run",
            Some("no nginx binary found to test and reload the config with".into()),
            None,
            2,
        );
    };
    if !args.yes {
        if !io::stdin().is_terminal() {
            return finish(
                &mut out,
                &quiet,
                "could-not-run",
                Some(
                    "--apply asks for confirmation on a terminal; pass --yes to run it unattended"
                        .into(),
                ),
                None,
                2,
            );
        }
        write!(out, "Apply these changes? [y/N] ")?;
        out.flush()?;
        let mut answer = String::new();
        io::stdin().read_line(&mut answer)?;
        if !matches!(answer.trim(), "y" | "Y" | "yes") {
            return finish(
                &mut out,
                &quiet,
                "not-applied",
                Some("not confirmed".into()),
                None,
                0,
            );
        }
    }
    let backup_dir = args
        .backup_dir
        .as_ref()
        .map(|d| PathBuf::from(d).join(chrono::Utc::now().format("%Y%m%dT%H%M%S%.3fZ").to_string()))
        .unwrap_or_else(apply::default_backup_dir);
    let engine_plan = apply::Plan {
        changes: plan
            .files
            .iter()
            .map(|f| apply::FileChange {
                path: absolute(&f.path),
                before: f.before.clone().into_bytes(),
                after: f.after.clone().into_bytes(),
            })
            .collect(),
        reload: plan.reload,
        actions: plan
            .actions
            .iter()
            .filter_map(|c| match c {
                Change::RestartUnit { unit } => {
                    Some(apply::Action::RestartUnit { unit: unit.clone() })
                }
                Change::RestartPm2 { app, user, home } => Some(apply::Action::RestartPm2 {
                    app: app.clone(),
                    user: user.as_deref().and_then(ids_of),
                    home: home.clone(),
                }),
                _ => None,
            })
            .collect(),
    };
    let opts = apply::ApplyOptions {
        backup_dir: backup_dir.clone(),
        verify: Duration::from_secs(args.verify_seconds.max(1)),
        lock_path: PathBuf::from(&args.lock_file),
        stage_exe: None,
    };
    let mut check = verify::Verifier::new(
        &plan,
        &report.findings,
        args.input.config.clone(),
        args.input.prefix.clone(),
        Duration::from_millis(args.probe_wait_ms.clamp(500, 5_000)),
    );
    let mut journal = Journal::new();
    let outcome = apply::apply(&engine_plan, &ctl, &opts, &mut check, &mut journal);
    let exit = outcome.exit_code();
    let (name, reason) = outcome_words(&outcome);
    let backup = backup_dir.exists().then_some(backup_dir.as_path());
    finish(&mut out, &journal, name, reason, backup, exit)
}

/// The outcome's JSON name and, for failures, the sentence that says why.
fn outcome_words(o: &apply::Outcome) -> (&'static str, Option<String>) {
    use apply::Outcome::*;
    match o {
        Applied => ("applied", None),
        NothingToDo => ("nothing-to-do", None),
        RolledBack => (
            "rolled-back",
            Some(
                "the fix did not verify; the files were restored and nginx verified as before"
                    .into(),
            ),
        ),
        NotWritten => (
            "not-written",
            Some("nginx -t rejected the staged config: nothing was written".into()),
        ),
        CouldNotRun(why) => ("could-not-run", Some(why.clone())),
        ActionFailed => (
            "action-failed",
            Some("a restart did not bring the target back (restarts cannot be rolled back)".into()),
        ),
        RollbackFailed => (
            "rollback-failed",
            Some("THE ROLLBACK FAILED: restore by hand from the backup (RESTORE.txt)".into()),
        ),
    }
}

/// uid and gid of a user name (pm2's daemon user).
fn ids_of(user: &str) -> Option<(u32, u32)> {
    nix::unistd::User::from_name(user)
        .ok()
        .flatten()
        .map(|u| (u.uid.as_raw(), u.gid.as_raw()))
}

fn absolute(p: &str) -> PathBuf {
    let p = Path::new(p);
    if p.is_absolute() {
        p.to_path_buf()
    } else {
        std::env::current_dir()
            .map(|d| d.join(p))
            .unwrap_or_else(|_| p.to_path_buf())
    }
}

/// How to test and reload the nginx whose config was diagnosed.
fn control_of(
    instances: &[InstanceReport],
    facts: &medic_core::facts::Facts,
    args: &FixArgs,
) -> Option<apply::NginxCtl> {
    let i = instances.first()?;
    let binary = i.binary.as_ref().map(PathBuf::from).or_else(|| {
        crate::discover::CANDIDATES
            .iter()
            .map(PathBuf::from)
            .find(|p| p.is_file())
    })?;
    let prefix = i.prefix.clone().or_else(|| args.input.prefix.clone());
    let under_prefix = |p: &str| -> PathBuf {
        let path = Path::new(p);
        match (&prefix, path.is_absolute()) {
            (Some(pre), false) => Path::new(pre).join(path),
            _ => absolute(p),
        }
    };
    let model = facts.models.first();
    let pid_file = model
        .and_then(|m| m.pid.as_ref())
        .map(|p| under_prefix(&p.value))
        .unwrap_or_else(|| {
            if prefix.is_some() {
                under_prefix("logs/nginx.pid")
            } else {
                PathBuf::from("/run/nginx.pid")
            }
        });
    let error_logs = model
        .map(|m| {
            m.error_logs
                .iter()
                .filter(|e| !e.path.starts_with("syslog:") && e.path != "stderr")
                .map(|e| under_prefix(&e.path))
                .collect()
        })
        .unwrap_or_default();
    let conf = absolute(&i.config);
    let include_patterns = include_patterns(&conf, args);
    Some(apply::NginxCtl {
        binary,
        prefix: prefix.map(PathBuf::from),
        conf,
        startup_error_log: None,
        pid_file,
        error_logs,
        unit: facts
            .probes
            .as_ref()
            .and_then(|p| p.supervisors.nginx_unit.as_ref())
            .map(|u| u.unit.clone()),
        include_patterns,
    })
}

/// Every `include` pattern of the config, absolute (relative ones are nginx's: against the
/// main file's directory).
fn include_patterns(conf: &Path, args: &FixArgs) -> Vec<String> {
    let mut skipped = Vec::new();
    let Ok(Some(loaded)) = crate::load::load_with(
        Some(&conf.display().to_string()),
        args.input.prefix.as_deref(),
        false,
        &mut skipped,
    ) else {
        return Vec::new();
    };
    let dir = conf.parent().unwrap_or(Path::new("/"));
    let mut out = Vec::new();
    for l in &loaded {
        for f in &l.cfg.files {
            let mut stack: Vec<&medic_parse::config::Directive> = f.parsed.iter().collect();
            while let Some(d) = stack.pop() {
                if d.name == "include" {
                    if let Some(a) = d.args.first() {
                        let p = if Path::new(a).is_absolute() {
                            a.to_string()
                        } else {
                            dir.join(a).display().to_string()
                        };
                        if !out.contains(&p) {
                            out.push(p);
                        }
                    }
                }
                if let Some(b) = &d.block {
                    stack.extend(b.iter());
                }
            }
        }
    }
    out
}

/// The commands the plan stands for, in order: test, reload, restarts.
fn commands_of(plan: &Plan, ctl: Option<&apply::NginxCtl>) -> Vec<String> {
    let mut out = Vec::new();
    let nginx = |extra: &str| -> String {
        match ctl {
            Some(c) => {
                let mut s = c.binary.display().to_string();
                if let Some(p) = &c.prefix {
                    s.push_str(&format!(" -p {}", p.display()));
                }
                s.push_str(&format!(" -c {} {extra}", c.conf.display()));
                s
            }
            None => format!("nginx {extra}"),
        }
    };
    if plan.reload {
        out.push(nginx("-t"));
        match ctl.and_then(|c| c.unit.as_deref()) {
            Some(u) => out.push(format!("systemctl reload {u}")),
            None => out.push(nginx("-s reload")),
        }
    }
    for a in &plan.actions {
        match a {
            Change::RestartUnit { unit } => out.push(format!("systemctl restart {unit}")),
            Change::RestartPm2 { app, home, user } => {
                let mut s = String::new();
                if let Some(u) = user {
                    s.push_str(&format!("sudo -u {u} "));
                }
                if let Some(h) = home {
                    s.push_str(&format!("PM2_HOME={h} "));
                }
                s.push_str(&format!("pm2 restart {app}"));
                out.push(s);
            }
            _ => {}
        }
    }
    out
}

/// The plan as text: what will be applied, what stays advice and why, the diffs, the
/// commands.
fn write_plan(
    out: &mut dyn Write,
    plan: &Plan,
    commands: &[String],
    apply: bool,
) -> io::Result<()> {
    if plan.items.is_empty() {
        writeln!(
            out,
            "nginx-medic fix: no ongoing finding to fix (name one with --id to fix a latent or resolved one)"
        )?;
        return Ok(());
    }
    let (chosen, advice): (Vec<_>, Vec<_>) = plan.items.iter().partition(|i| i.apply);
    writeln!(
        out,
        "nginx-medic fix: {} fix{} to apply, {} as advice",
        chosen.len(),
        if chosen.len() == 1 { "" } else { "es" },
        advice.len()
    )?;
    let line = |i: &plan::Item| {
        format!(
            "{}{}{}: {}",
            i.id,
            i.upstream
                .as_deref()
                .map(|u| format!(" {u}"))
                .unwrap_or_default(),
            i.risk.map(|r| format!(" (risk {r})")).unwrap_or_default(),
            i.summary
        )
    };
    if !chosen.is_empty() {
        writeln!(out, "\nto apply:")?;
        for i in &chosen {
            writeln!(out, "  ✓ {}", line(i))?;
        }
    }
    if !advice.is_empty() {
        writeln!(
            out,
            "\nadvice only (see `nginx-medic diagnose` for the steps):"
        )?;
        for i in &advice {
            writeln!(out, "  · {}", line(i))?;
            if let Some(why) = &i.why_not {
                writeln!(out, "      not applied: {why}")?;
            }
        }
    }
    for f in &plan.files {
        writeln!(out)?;
        write!(out, "{}", f.diff)?;
    }
    if !commands.is_empty() {
        writeln!(out, "\nthen:")?;
        for c in commands {
            writeln!(out, "  {c}")?;
        }
    }
    if !apply && !chosen.is_empty() {
        writeln!(
            out,
            "\nNothing was changed. Run again with --apply to back up, test, write, reload and verify (rolled back if it does not cure)."
        )?;
    }
    Ok(())
}
