//! The rule docs in `docs/` are generated from the rules' doc comments; this test fails when
//! they are stale. Regenerate with `UPDATE_DOCS=1 cargo test -p medic-core --test docs`.

use std::fs;
use std::path::PathBuf;

use medic_core::rules::{all_docs, catalog_page, causes_page, doc_page};

fn docs_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../docs")
}

#[test]
fn docs_are_fresh() {
    let update = std::env::var_os("UPDATE_DOCS").is_some_and(|v| v == "1");
    let mut wanted = vec![
        (docs_dir().join("latent-causes.md"), catalog_page()),
        (docs_dir().join("root-causes.md"), causes_page()),
    ];
    for r in all_docs() {
        wanted.push((docs_dir().join(format!("rules/{}.md", r.id())), doc_page(r)));
    }
    let mut stale = Vec::new();
    for (path, text) in &wanted {
        let current = fs::read_to_string(path).unwrap_or_default();
        if current == *text {
            continue;
        }
        if update {
            fs::create_dir_all(path.parent().expect("docs dir")).expect("create docs/rules");
            fs::write(path, text).unwrap_or_else(|e| panic!("write {}: {e}", path.display()));
        } else {
            stale.push(path.display().to_string());
        }
    }
    // A page of a rule that no longer exists is stale too.
    if let Ok(dir) = fs::read_dir(docs_dir().join("rules")) {
        for e in dir.flatten() {
            let p = e.path();
            if !wanted.iter().any(|(w, _)| w.file_name() == p.file_name()) {
                if update {
                    fs::remove_file(&p).expect("remove stale rule page");
                } else {
                    stale.push(p.display().to_string());
                }
            }
        }
    }
    assert!(
        stale.is_empty(),
        "stale docs (run `UPDATE_DOCS=1 cargo test -p medic-core --test docs`):\n{}",
        stale.join("\n")
    );
}
