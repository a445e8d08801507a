//! `nginx-medic generate`: the man page passes `mandoc -Tlint` and renders with `man -l`; the
//! shells parse their completion scripts; every long flag of every command (walked from
//! `Cli::command()`, so a new flag or subcommand is covered without touching this file) is in
//! the man page's section of that command and in each completion script's block for it.
//!
//! mandoc, man, zsh and fish are required, not optional: scripts/test installs them, and a
//! missing one fails the test instead of skipping it. PowerShell is not packaged for Debian, so
//! its script is only checked for content.

use std::collections::BTreeMap;
use std::io::Write;
use std::process::{Command, Output, Stdio};

use clap::CommandFactory;
use nginx_medic::cli::Cli;

fn generate(kind: &str) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_nginx-medic"))
        .args(["generate", kind])
        .output()
        .expect("run nginx-medic");
    assert!(out.status.success(), "generate {kind}: {out:?}");
    assert!(out.stderr.is_empty(), "generate {kind}: {out:?}");
    String::from_utf8(out.stdout).expect("UTF-8")
}

/// Runs a tool the test needs; a missing tool is a failure that says how to get it.
fn tool(program: &str, args: &[&str], stdin: &str) -> Output {
    let mut child = Command::new(program)
        .args(args)
        .env("LC_ALL", "C.UTF-8")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| {
            panic!("{program} {args:?}: {e} (scripts/test installs mandoc, man-db, zsh and fish)")
        });
    child
        .stdin
        .take()
        .unwrap()
        .write_all(stdin.as_bytes())
        .unwrap();
    child.wait_with_output().unwrap()
}

fn write_temp(name: &str, text: &str) -> (tempfile::TempDir, String) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(name);
    std::fs::write(&path, text).unwrap();
    (dir, path.to_str().unwrap().to_owned())
}

/// Every visible command (`nginx-medic`, `nginx-medic diagnose`, `nginx-medic config parse`,
/// ...) with its long flags, from the same definition the binary parses with. Built first, so
/// `--help`, `--version` and the global `--color` are there as the user sees them.
fn commands() -> BTreeMap<Vec<String>, Vec<(String, bool)>> {
    fn walk(
        cmd: &clap::Command,
        path: Vec<String>,
        out: &mut BTreeMap<Vec<String>, Vec<(String, bool)>>,
    ) {
        let flags = cmd
            .get_arguments()
            .filter(|a| !a.is_hide_set())
            .filter_map(|a| Some((a.get_long()?.to_owned(), a.is_global_set())))
            .collect();
        for sub in cmd.get_subcommands().filter(|s| !s.is_hide_set()) {
            if sub.get_name() == "help" {
                continue; // clap's own `help` subcommand: no flags of its own
            }
            let mut p = path.clone();
            p.push(sub.get_name().to_owned());
            walk(sub, p, out);
        }
        out.insert(path, flags);
    }
    let mut cmd = Cli::command();
    cmd.build();
    let mut out = BTreeMap::new();
    walk(&cmd, Vec::new(), &mut out);
    assert!(out.len() >= 8, "the walk found too few commands: {out:?}");
    out
}

/// `flag` occurs in `text` as a whole word: `--config` is not found in `--config-file`, nor
/// roff's `\-\-config` in `\-\-config\-file`.
fn has_word(text: &str, flag: &str) -> bool {
    text.match_indices(flag).any(|(i, _)| {
        let rest = &text[i + flag.len()..];
        !rest.starts_with(|c: char| c.is_ascii_alphanumeric() || c == '-' || c == '_')
            && !rest.starts_with("\\-")
    })
}

#[test]
fn man_page_is_lint_clean_renders_and_documents_every_flag() {
    let page = generate("man");
    let (_dir, path) = write_temp("nginx-medic.1", &page);

    // Everything mandoc reports, down to style: nothing is allowed.
    let lint = tool("mandoc", &["-Tlint", "-W", "all", &path], "");
    let report =
        String::from_utf8_lossy(&lint.stdout).into_owned() + &String::from_utf8_lossy(&lint.stderr);
    assert!(
        lint.status.success() && report.is_empty(),
        "mandoc -Tlint:\n{report}"
    );

    // man-db's groff, with its warnings (lintian runs the same), as a user would read it.
    let man = Command::new("man")
        .args(["--warnings", "-E", "UTF-8", "-l", &path])
        .env("MANWIDTH", "100")
        .env("MANPAGER", "cat")
        .env("LC_ALL", "C.UTF-8")
        .output()
        .expect("man (scripts/test installs man-db)");
    let text = String::from_utf8_lossy(&man.stdout);
    assert!(
        man.status.success() && man.stderr.is_empty(),
        "man -l: {}",
        String::from_utf8_lossy(&man.stderr)
    );
    assert!(text.starts_with("NGINX-MEDIC(1)"), "{text}");
    for heading in ["SYNOPSIS", "OPTIONS", "COMMANDS", "EXIT STATUS"] {
        assert!(
            text.contains(&format!("\n{heading}\n")),
            "no {heading}:\n{text}"
        );
    }

    // Each command's flags in its own section: `.SS "nginx\-medic config parse"` up to the next
    // `.SS` or `.SH`; the top level and the global flags (`--color`) under `.SH OPTIONS`.
    let mut sections: BTreeMap<String, String> = BTreeMap::new();
    let mut current = String::new();
    for line in page.lines() {
        if let Some(h) = line
            .strip_prefix(".SH ")
            .or_else(|| line.strip_prefix(".SS "))
        {
            current = h.trim_matches('"').replace("\\-", "-");
        }
        let s = sections.entry(current.clone()).or_default();
        s.push_str(line);
        s.push('\n');
    }
    for (path, flags) in commands() {
        let title = ["nginx-medic".to_owned()]
            .into_iter()
            .chain(path.iter().cloned())
            .collect::<Vec<_>>()
            .join(" ");
        if !path.is_empty() {
            assert!(
                text.contains(&format!("\n   {title}\n")),
                "no section {title} in the rendered page"
            );
        }
        for (flag, global) in flags {
            let where_ = if path.is_empty() || global {
                "OPTIONS"
            } else {
                &title
            };
            let section = sections.get(where_).map_or("", String::as_str);
            let roff = format!("\\-\\-{}", flag.replace('-', "\\-"));
            assert!(
                has_word(section, &roff),
                "--{flag} of `{title}` is not in the man page's {where_}"
            );
        }
    }
}

/// A completion script cut into the blocks that each complete one command; a command's flags
/// must all be in one block, so a flag completed only for another command does not count.
fn blocks(shell: &str, script: &str) -> Vec<String> {
    match shell {
        // `opts="-h --config ... --help"`, one line per command.
        "bash" => script
            .lines()
            .filter(|l| l.trim_start().starts_with("opts=\""))
            .map(str::to_owned)
            .collect(),
        // One `_arguments` call per command.
        "zsh" => script
            .split("_arguments \"${_arguments_options[@]}\"")
            .skip(1)
            .map(str::to_owned)
            .collect(),
        // Lines grouped by their condition: `-n "__fish_nginx_medic_using_subcommand diagnose"`.
        "fish" => {
            let mut by_cond: BTreeMap<&str, String> = BTreeMap::new();
            for line in script.lines().filter(|l| l.starts_with("complete ")) {
                let cond = line
                    .split_once(" -n \"")
                    .and_then(|(_, rest)| rest.split_once('"'))
                    .map_or("", |(c, _)| c);
                let b = by_cond.entry(cond).or_default();
                b.push_str(line);
                b.push('\n');
            }
            by_cond.into_values().collect()
        }
        // `'nginx-medic;config;parse' {` opens each command's block.
        "powershell" => script
            .split("\n        'nginx-medic")
            .skip(1)
            .map(str::to_owned)
            .collect(),
        _ => unreachable!(),
    }
}

#[test]
fn completion_scripts_parse_and_complete_every_flag() {
    let commands = commands();
    for shell in ["bash", "zsh", "fish", "powershell"] {
        let script = generate(&format!("complete-{shell}"));
        assert!(script.len() > 1000, "{shell}: {script}");
        let syntax = match shell {
            "bash" => Some(tool("bash", &["-n"], &script)),
            "zsh" => Some(tool("zsh", &["-n"], &script)),
            "fish" => Some(tool("fish", &["--no-execute"], &script)),
            _ => None, // PowerShell is not installable here: content checks only.
        };
        if let Some(out) = syntax {
            assert!(
                out.status.success() && out.stderr.is_empty(),
                "{shell} rejects its completion script: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        let blocks = blocks(shell, &script);
        assert!(blocks.len() >= commands.len(), "{shell}: {blocks:?}");
        for (path, flags) in &commands {
            // fish names a long option `-l config`; the others write `--config`.
            let words: Vec<String> = flags
                .iter()
                .map(|(f, _)| match shell {
                    "fish" => format!("-l {f}"),
                    _ => format!("--{f}"),
                })
                .collect();
            assert!(
                blocks.iter().any(|b| words.iter().all(|w| has_word(b, w))),
                "{shell}: no block completes every flag of `nginx-medic {}`: {words:?}",
                path.join(" ")
            );
        }
    }
}
