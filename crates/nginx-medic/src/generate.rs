//! `nginx-medic generate man|complete-*`: the man page and the shell completions, from the same
//! clap definitions as `--help`, so a packaged page never drifts from the binary it ships with.
//!
//! The man page is one page for the whole tool (as ripgrep ships one `rg.1`), not clap_mangen's
//! page per subcommand: `man nginx-medic` shows every subcommand with its options. clap_mangen
//! renders each piece; this module arranges them under `.SH COMMANDS`, one `.SS` per subcommand.

use std::io::{self, Write};

use anyhow::{Context, Result};
use clap::CommandFactory;
use clap_complete::Shell;
use clap_mangen::Man;

use crate::cli::{Cli, GenerateArgs, GenerateKind};

pub fn run(args: &GenerateArgs) -> Result<u8> {
    let text = match args.kind {
        GenerateKind::Man => man_page(&today())?,
        GenerateKind::CompleteBash => completion(Shell::Bash),
        GenerateKind::CompleteZsh => completion(Shell::Zsh),
        GenerateKind::CompleteFish => completion(Shell::Fish),
        GenerateKind::CompletePowershell => completion(Shell::PowerShell),
    };
    // Rendered to memory first: clap_complete panics on a failed write, and a closed stdout
    // (`| head`) must stay a clean exit (cli::exit maps BrokenPipe to success).
    let mut out = io::stdout().lock();
    out.write_all(&text).context("writing to stdout")?;
    out.flush().context("writing to stdout")?;
    Ok(0)
}

fn completion(shell: Shell) -> Vec<u8> {
    let mut cmd = Cli::command();
    let mut buf = Vec::new();
    clap_complete::generate(shell, &mut cmd, "nginx-medic", &mut buf);
    buf
}

/// The page's date: `SOURCE_DATE_EPOCH` when set (reproducible packages: scripts/release sets
/// it to the last commit's time), else today.
fn today() -> String {
    let from_env = std::env::var("SOURCE_DATE_EPOCH")
        .ok()
        .and_then(|s| s.trim().parse::<i64>().ok())
        .and_then(|secs| chrono::DateTime::from_timestamp(secs, 0));
    from_env
        .unwrap_or_else(chrono::Utc::now)
        .format("%Y-%m-%d")
        .to_string()
}

/// The whole page as roff: NAME, SYNOPSIS, DESCRIPTION, the global OPTIONS, then COMMANDS with
/// each subcommand (nested ones too: `config parse`) as a subsection holding its synopsis, its
/// description and its options, then EXIT STATUS and SEE ALSO.
pub fn man_page(date: &str) -> Result<Vec<u8>> {
    // `help` is a subcommand in --help, not a command worth a section of the page.
    let mut cmd = Cli::command().disable_help_subcommand(true);
    // Built once here, so global options (`--color`) and the full `nginx-medic config parse`
    // names reach the subcommands rendered below.
    cmd.build();
    let version = cmd.get_version().unwrap_or_default().to_owned();
    let man = Man::new(cmd.clone())
        // mandoc -Tlint: "lower case character in document title".
        .title("NGINX-MEDIC")
        .date(date)
        .source(format!("nginx-medic {version}"))
        .manual("User Commands");
    let mut out = Vec::new();
    man.render_title(&mut out)?;
    man.render_name_section(&mut out)?;
    man.render_synopsis_section(&mut out)?;
    man.render_description_section(&mut out)?;
    out.extend_from_slice(b".PP\nWith no command, nginx-medic runs \\fBdiagnose\\fR.\n");
    man.render_options_section(&mut out)?;
    out.extend_from_slice(b".SH COMMANDS\n");
    for sub in cmd.get_subcommands().filter(|s| !s.is_hide_set()) {
        command_section(sub, &mut out)?;
    }
    out.extend_from_slice(FOOTER.as_bytes());
    let roff = String::from_utf8(out).context("clap_mangen wrote invalid UTF-8")?;
    Ok(tidy(&roff).into_bytes())
}

/// One subcommand's `.SS`: clap_mangen's synopsis, description and options without their
/// `.SH` headings, which would end the COMMANDS section. Subcommands of subcommands follow.
fn command_section(cmd: &clap::Command, out: &mut Vec<u8>) -> Result<()> {
    let name = cmd.get_bin_name().unwrap_or_else(|| cmd.get_name());
    // Global options (`--color`) are under OPTIONS once, not again in every command.
    let man = Man::new(
        cmd.clone()
            .mut_args(|a| if a.is_global_set() { a.hide(true) } else { a }),
    );
    writeln!(out, ".SS \"{}\"", name.replace('-', "\\-"))?;
    let mut piece = Vec::new();
    man.render_synopsis_section(&mut piece)?;
    out.extend_from_slice(&without_headings(&piece));
    piece.clear();
    man.render_description_section(&mut piece)?;
    out.extend_from_slice(b".PP\n");
    out.extend_from_slice(&without_headings(&piece));
    if cmd.get_arguments().any(|a| !a.is_hide_set()) {
        piece.clear();
        man.render_options_section(&mut piece)?;
        out.extend_from_slice(&without_headings(&piece));
    }
    for sub in cmd.get_subcommands().filter(|s| !s.is_hide_set()) {
        command_section(sub, out)?;
    }
    Ok(())
}

/// The roff of a clap_mangen section without its `.SH` lines.
fn without_headings(roff: &[u8]) -> Vec<u8> {
    roff.split_inclusive(|&b| b == b'\n')
        .filter(|line| !line.starts_with(b".SH "))
        .flatten()
        .copied()
        .collect()
}

/// What `mandoc -Tlint` finds in clap_mangen's roff, removed: the `Aq` string defined again by
/// every rendered piece (once is enough), blank lines (a `.sp` each, beside `.br`: "skipping
/// paragraph macro"), a `.br` repeated, trailing spaces, and text lines over 80 bytes (one help
/// text is one line), wrapped at a space; in fill mode a newline is a space.
fn tidy(roff: &str) -> String {
    let mut out = String::with_capacity(roff.len());
    let mut aq_defined = false;
    let mut last = "";
    for line in roff.lines() {
        if line.starts_with(".ie \\n(.g .ds Aq ") {
            if aq_defined {
                continue;
            }
        } else if line.starts_with(".el .ds Aq ") {
            if aq_defined {
                continue;
            }
            aq_defined = true;
        }
        let trimmed = line.trim_end();
        // A trailing `\ ` is an escaped space, not whitespace to drop.
        let line = if trimmed.ends_with('\\') {
            line
        } else {
            trimmed
        };
        if line.is_empty() || (line == ".br" && last == ".br") {
            continue;
        }
        if line.starts_with(['.', '\'']) {
            out.push_str(line);
            out.push('\n');
        } else {
            wrap(line, &mut out);
        }
        last = line;
    }
    out
}

/// A text line as lines of at most 80 bytes where it has room to break: at a space not escaped
/// by a backslash. A piece that would start with `.` or `'` (a control line) gets `\&` first.
fn wrap(line: &str, out: &mut String) {
    const WIDTH: usize = 80;
    let mut rest = line;
    while rest.len() > WIDTH {
        let bytes = rest.as_bytes();
        let breakable = |i: usize| bytes[i] == b' ' && i > 0 && bytes[i - 1] != b'\\';
        let at = (1..=WIDTH)
            .rev()
            .find(|&i| breakable(i))
            .or_else(|| (WIDTH..bytes.len()).find(|&i| breakable(i)));
        let Some(at) = at else { break };
        out.push_str(&rest[..at]);
        out.push('\n');
        rest = rest[at..].trim_start_matches(' ');
        if rest.starts_with(['.', '\'']) {
            out.push_str("\\&");
        }
    }
    out.push_str(rest);
    out.push('\n');
}

const FOOTER: &str = r#".SH EXIT STATUS
.TP
0
Done; no finding at or above \fB\-\-fail\-on\fR.
.TP
1
A finding at or above \fB\-\-fail\-on\fR.
.TP
2
nginx\-medic could not do its job (the error is on standard error).
.PP
A closed standard output (a pipe to \fBhead\fR) is not an error.
.SH SEE ALSO
\fBnginx\fR(8), \fBnginx\-medic explain \-\-all\fR (the rules and their fixes)
"#;
