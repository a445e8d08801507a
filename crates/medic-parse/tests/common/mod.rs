//! What the corpus tests share: where the config corpora are.

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
