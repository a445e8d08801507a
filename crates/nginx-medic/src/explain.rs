//! `nginx-medic explain ID` / `--all`: the rule docs, from the same doc comments as
//! `docs/rules/*.md`.

use std::io::{self, Write};

use anyhow::{bail, Result};
use medic_core::rules::{all_docs, doc_page, doc_section, find_doc};

pub fn run(args: &crate::cli::ExplainArgs) -> Result<u8> {
    let stdout = io::stdout();
    let mut out = io::BufWriter::new(stdout.lock());
    match (&args.id, args.all) {
        (Some(id), _) => {
            let Some(rule) = find_doc(id) else {
                let _ = writeln!(
                    io::stderr(),
                    "nginx-medic: no rule {id:?}; `nginx-medic explain --all` lists them"
                );
                return Ok(2);
            };
            // The page without its generated-file comment.
            let page = doc_page(rule);
            let body = page.split_once("-->\n\n").map_or(page.as_str(), |(_, b)| b);
            write!(out, "{body}")?;
        }
        (None, true) => {
            let docs = all_docs();
            let width = docs.iter().map(|r| r.id().len()).max().unwrap_or(0);
            for r in docs {
                let fix = doc_section(r, "Fix").unwrap_or_default();
                let flat = fix.split_whitespace().collect::<Vec<_>>().join(" ");
                let time = flat
                    .find("Time: ")
                    .map(|i| {
                        let v = &flat[i + 6..];
                        v[..v.find(". ").unwrap_or(v.len())].trim_end_matches('.')
                    })
                    .unwrap_or("");
                writeln!(out, "{:width$}  {}  [{}]", r.id(), r.title(), time)?;
            }
        }
        (None, false) => bail!("give a rule ID (`nginx-medic explain socket-permission`) or --all"),
    }
    out.flush()?;
    Ok(0)
}
