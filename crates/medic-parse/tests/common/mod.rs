//! What the corpus tests share: where the config corpora are, and the corpus's log files.

// Each test binary compiles this module and uses a part of it.
#![allow(dead_code)]

use std::path::{Path, PathBuf};

/// `(run, directory, the least number of configs it has)`: the in-repo corpus always, and the
/// shared one when it is beside the workspace (else `test` says the extended run is not
/// possible). Each must hold its crossplane references' manifest.
pub fn config_corpora(test: &str) -> Vec<(&'static str, PathBuf, usize)> {
    let here = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut out = vec![("in-repo", here.join("tests/corpus"), 330)];
    let shared = here.join("../../../shared/corpus");
    if shared.is_dir() {
        out.push(("extended", shared, 833));
    } else {
        eprintln!("{test}: extended run not possible: no {}", shared.display());
    }
    for (run, dir, _) in &out {
        assert!(
            dir.join("crossplane-ref/MANIFEST.jsonl").is_file(),
            "the {run} config corpus is missing: expected {}/crossplane-ref/MANIFEST.jsonl",
            dir.display()
        );
    }
    out
}

/// The log files of a corpus: every `.log`, and lnav's access logs (`*access_log.0`), in path
/// order.
pub fn log_files(corpus: &Path) -> Vec<PathBuf> {
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
    walk(&corpus.join("logs"), &mut out);
    out
}
