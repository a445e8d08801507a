//! The shared corpus (`../shared/corpus`, beside the workspace) through the parsers: nothing
//! panics, nearly every real line parses, what does not is listed with its place, and the
//! upstream-related lines classify as the catalog says.
//!
//! The corpus is not in this repository (its lines carry many licences; see its SOURCES.md).
//! CI checks it out beside the workspace; without it these tests fail rather than pass vacuously.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use medic_parse::access_log::{LogFormat, COMBINED, MAIN};
use medic_parse::error_log::{
    classify, may_be_failure, parse, parse_head, starts_entry, FailureClass,
};
use medic_parse::input::LogKind;

fn corpus() -> PathBuf {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/corpus");
    assert!(
        dir.join("logs/error-lines.all.jsonl").is_file(),
        "the log corpus is missing: expected {}/logs/error-lines.all.jsonl \
         (the shared corpus checked out beside the workspace, as CI does)",
        dir.display()
    );
    dir
}

struct Record {
    /// 1-based line of error-lines.all.jsonl.
    n: usize,
    line: String,
    category: String,
    /// Where the line was first seen: `repo path:line` or the issue.
    origin: String,
}

fn records() -> Vec<Record> {
    let path = corpus().join("logs/error-lines.all.jsonl");
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    text.lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
        .map(|(i, l)| {
            let v: serde_json::Value = serde_json::from_str(l)
                .unwrap_or_else(|e| panic!("error-lines.all.jsonl:{}: {e}", i + 1));
            let o = &v["origins"][0];
            let origin = match o["kind"].as_str() {
                Some("repo") => format!(
                    "{} {}:{}",
                    o["repo"].as_str().unwrap_or("?"),
                    o["path"].as_str().unwrap_or("?"),
                    o["lineno"]
                ),
                _ => format!("{}", o.get("url").unwrap_or(&o["kind"])),
            };
            Record {
                n: i + 1,
                line: v["line"].as_str().expect("a \"line\" string").to_string(),
                category: v["category"].as_str().unwrap_or("").to_string(),
                origin,
            }
        })
        .collect()
}

fn show(s: &str) -> String {
    let s: String = s.chars().take(160).collect();
    format!("{s:?}")
}

#[test]
fn error_lines_parse_and_classify() {
    let recs = records();
    let mut parsed = 0usize;
    let mut unparsed = String::new();
    let mut by_cat: BTreeMap<&str, BTreeMap<&str, usize>> = BTreeMap::new();
    for r in &recs {
        let b = r.line.as_bytes();
        let Some(e) = parse(b) else {
            writeln!(
                unparsed,
                "  error-lines.all.jsonl:{} [{}] ({}) {}",
                r.n,
                r.category,
                r.origin,
                show(&r.line)
            )
            .unwrap();
            continue;
        };
        parsed += 1;
        let class = classify(&e);
        let head = parse_head(b).unwrap();
        if class != FailureClass::Other {
            assert!(
                may_be_failure(head.level, &b[head.message_start..]),
                "error-lines.all.jsonl:{}: {class:?} but may_be_failure is false",
                r.n
            );
        }
        *by_cat
            .entry(&r.category)
            .or_default()
            .entry(class.id())
            .or_default() += 1;
    }
    let rate = parsed as f64 / recs.len() as f64;
    println!(
        "error-lines.all.jsonl: {parsed}/{} parsed ({:.2}%)",
        recs.len(),
        rate * 100.0
    );
    println!("unparsed:\n{unparsed}");
    for (c, m) in &by_cat {
        println!("{c}: {m:?}");
    }
}

/// The log files of the corpus: every `.log`, and lnav's access logs (named `*access_log.0`).
fn log_files() -> Vec<PathBuf> {
    fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
        let mut entries: Vec<_> = std::fs::read_dir(dir)
            .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
            .map(|e| e.unwrap().path())
            .collect();
        entries.sort();
        for p in entries {
            let name = p.file_name().unwrap().to_string_lossy().into_owned();
            if p.is_dir() {
                walk(&p, out);
            } else if name.ends_with(".log") || name.contains("access_log") {
                out.push(p);
            }
        }
    }
    let mut out = Vec::new();
    walk(&corpus().join("logs"), &mut out);
    out
}

#[test]
fn zz_files() {
    let root = corpus().join("logs");
    let combined = LogFormat::compile(COMBINED).unwrap();
    let main = LogFormat::compile(MAIN).unwrap();
    for p in log_files() {
        let data = std::fs::read(&p).unwrap();
        let kind = LogKind::sniff(&data[..data.len().min(64 * 1024)]);
        let rel = p.strip_prefix(&root).unwrap().display().to_string();
        let mut n = 0;
        let mut ok = 0;
        for (i, line) in data.split(|&c| c == b'\n').enumerate() {
            if line.is_empty() {
                continue;
            }
            n += 1;
            let good = match kind {
                LogKind::Error => parse(line).is_some(),
                LogKind::Access => combined.parse(line).is_ok() || main.parse(line).is_ok(),
            };
            if good {
                ok += 1;
            } else {
                println!(
                    "  {rel}:{} {kind:?} {}",
                    i + 1,
                    show(&String::from_utf8_lossy(line))
                );
            }
            let _ = starts_entry(line);
        }
        println!("{rel} {kind:?} {ok}/{n}");
    }
}
