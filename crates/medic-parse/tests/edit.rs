//! `config::edit` over every config of the corpus (the configs the crossplane differential test
//! lists): an edit must change its range and nothing else, whatever the file looks like.
//!
//! * `tests/corpus/`, always; the whole shared corpus (`../shared/corpus`) when it is beside
//!   the workspace: the extended run, as in `config_crossplane.rs`.
//!
//! For each file [`EditableFile::parse`] accepts: no edits give back the bytes; every
//! directive's span runs from its name to its `;` or `}`; every argument's span, unquoted as
//! the lexer does, is the argument; and replacing a first argument with `X` re-parses to the
//! same directives but that argument, every other byte in place. A refused file must be one the
//! lexer cannot read byte for byte (CR, invalid UTF-8) or one with a syntax error.
//! `cargo test -p medic-parse --test edit -- --nocapture` prints the counts.

mod common;

use std::path::{Path, PathBuf};
use std::time::Instant;

use medic_parse::config::edit::{apply, EditError, EditableFile};
use medic_parse::config::{lexer, parse_bytes, Args, ConfigErrorKind, Directive, Name, Options};

/// Directives mutated per file: enough to reach every kind of argument across the corpus, few
/// enough to keep the test in seconds in debug builds.
const MUTATIONS_PER_FILE: usize = 12;

/// The configs a corpus lists, as `configs/<source>/<file>`.
fn configs(corpus: &Path) -> Vec<PathBuf> {
    let manifest = corpus.join("crossplane-ref/MANIFEST.jsonl");
    let text = std::fs::read_to_string(&manifest)
        .unwrap_or_else(|e| panic!("reading {}: {e}", manifest.display()));
    text.lines()
        .map(|line| {
            let v: serde_json::Value = serde_json::from_str(line).unwrap();
            let (Some(source), Some(file)) = (v["source"].as_str(), v["file"].as_str()) else {
                panic!("bad MANIFEST line {line}");
            };
            corpus.join("configs").join(source).join(file)
        })
        .collect()
}

/// `(depth, name, args, line)` of every directive, in the order of the text.
type Flat = Vec<(usize, Name, Args, u32)>;

fn flatten(ds: &[Directive], depth: usize, out: &mut Flat) {
    for d in ds {
        out.push((depth, d.name.clone(), d.args.clone(), d.line));
        if let Some(b) = &d.block {
            flatten(b, depth + 1, out);
        }
    }
}

fn flat(f: &EditableFile) -> Flat {
    let mut out = Vec::new();
    flatten(f.directives(), 0, &mut out);
    out
}

/// A quoted token's source back to its text the way the lexer does it: only a backslash before
/// the quote that opened it goes.
fn unquote(src: &str) -> String {
    let q = src.chars().next().unwrap();
    let inner = &src[1..src.len() - 1];
    let mut out = String::new();
    let mut cs = inner.chars();
    while let Some(c) = cs.next() {
        if c == '\\' {
            match cs.next() {
                Some(n) if n == q => out.push(q),
                Some(n) => {
                    out.push('\\');
                    out.push(n);
                }
                None => out.push('\\'),
            }
        } else {
            out.push(c);
        }
    }
    out
}

fn check_spans(path: &Path, f: &EditableFile) {
    let text = f.text();
    for d in f.walk() {
        let s = &text[d.span()];
        let name_src = &text[d.span().start..];
        // A quoted name (`"listen" 80;`) starts with its quote; its text is checked no further.
        assert!(
            name_src.starts_with(d.name()) || name_src.starts_with(['"', '\'']),
            "{}:{}: span of {} starts {:?}",
            path.display(),
            d.line(),
            d.name(),
            &s[..s.len().min(40)]
        );
        assert!(
            s.ends_with(';') || s.ends_with('}'),
            "{}:{}: span of {} ends {:?}",
            path.display(),
            d.line(),
            d.name(),
            s.chars().rev().take(40).collect::<String>()
        );
        assert_eq!(d.arg_spans().len(), d.args().len());
        let n = d.args().len();
        for (i, (arg, span)) in d.args().iter().zip(d.arg_spans()).enumerate() {
            let src = &text[span.clone()];
            let lua_body = lexer::is_lua_block(d.name()) && i + 1 == n;
            let quoted = !lua_body
                && src.len() >= 2
                && src.starts_with(['"', '\''])
                && src.ends_with(&src[..1]);
            let got = if quoted { unquote(src) } else { src.to_owned() };
            assert_eq!(
                &got,
                arg,
                "{}:{}: argument {i} of {}: source {src:?}",
                path.display(),
                d.line(),
                d.name()
            );
        }
    }
}

/// `set_arg(d, 0, "X")` on up to [`MUTATIONS_PER_FILE`] directives, spread over the file.
fn check_mutations(path: &Path, f: &EditableFile) -> usize {
    let text = f.text();
    let before = flat(f);
    let all = f.walk();
    // An argument over several lines would move the lines of what follows: not what is tested.
    let candidates: Vec<usize> = (0..all.len())
        .filter(|&i| {
            let d = &all[i];
            d.arg_spans()
                .first()
                .is_some_and(|s| !text[s.clone()].contains('\n'))
        })
        .collect();
    let step = candidates.len().div_ceil(MUTATIONS_PER_FILE).max(1);
    let mut done = 0;
    for &i in candidates.iter().step_by(step) {
        let d = &all[i];
        let edit = f.set_arg(d, 0, "X").unwrap();
        let edited = apply(text, std::slice::from_ref(&edit)).unwrap();
        let r = &edit.range;
        assert_eq!(&edited[..r.start], &text[..r.start]);
        assert_eq!(
            &edited[edited.len() - (text.len() - r.end)..],
            &text[r.end..]
        );
        let again = EditableFile::parse(edited.as_bytes()).unwrap_or_else(|e| {
            panic!(
                "{}:{}: {} with its first argument X does not parse: {e}",
                path.display(),
                d.line(),
                d.name()
            )
        });
        let mut expected = before.clone();
        expected[i].2[0] = "X".into();
        assert_eq!(
            flat(&again),
            expected,
            "{}:{}: {} with its first argument X",
            path.display(),
            d.line(),
            d.name()
        );
        done += 1;
    }
    done
}

/// A refusal must have the reason the bytes give.
fn check_refusal(path: &Path, bytes: &[u8], e: &EditError) {
    match e {
        EditError::NotUtf8 { offset } => {
            let err = std::str::from_utf8(bytes).unwrap_err();
            assert_eq!(err.valid_up_to(), *offset, "{}", path.display());
        }
        EditError::CarriageReturn { .. } => {
            assert!(bytes.contains(&b'\r'), "{}", path.display());
        }
        EditError::Syntax { line, .. } => {
            let opts = Options {
                single_file: true,
                ..Options::syntax_only()
            };
            let c = parse_bytes("f.conf", bytes, &opts);
            let first = c.errors().next();
            assert!(
                first.is_some_and(|x| x.kind == ConfigErrorKind::Syntax && x.line == *line),
                "{}: refused for a syntax error the parser does not report: {e}",
                path.display()
            );
        }
        other => panic!("{}: refused for {other}", path.display()),
    }
}

#[test]
fn edit_corpus() {
    let t0 = Instant::now();
    for (run, corpus, at_least) in common::config_corpora("edit_corpus") {
        let files = configs(&corpus);
        assert!(
            files.len() >= at_least,
            "{run}: {} configs, expected at least {at_least}",
            files.len()
        );
        let (mut accepted, mut mutations) = (0, 0);
        let mut refused: Vec<(String, String)> = Vec::new();
        for path in &files {
            let bytes = std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            let f = match EditableFile::parse(&bytes) {
                Ok(f) => f,
                Err(e) => {
                    check_refusal(path, &bytes, &e);
                    refused.push((path.display().to_string(), e.to_string()));
                    continue;
                }
            };
            accepted += 1;
            assert_eq!(apply(f.text(), &[]).unwrap().as_bytes(), &bytes[..]);
            check_spans(path, &f);
            mutations += check_mutations(path, &f);
        }
        println!(
            "edit_corpus: {run}: {} configs, {accepted} accepted, {} refused, {mutations} arguments replaced",
            files.len(),
            refused.len()
        );
        for (p, e) in &refused {
            println!("  refused {p}: {e}");
        }
        // Nearly every real config can be edited; a parser change that refuses many would be
        // a regression even if each refusal had its reason.
        assert!(
            accepted * 10 >= files.len() * 9,
            "{run}: {accepted} of {}",
            files.len()
        );
    }
    println!("edit_corpus: {:.1?}", t0.elapsed());
}
