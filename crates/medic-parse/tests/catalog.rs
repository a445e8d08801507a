//! The failure classes in the code, in docs/failure-classes.md and in the catalog's §1 (the JSON
//! contract) must agree: every class of the catalog is in the code, and every class of the code
//! the catalog lacks is marked **added.** in its doc. The catalog is the project's own,
//! `docs/causes.md`, always; and the team's reference, `../shared/causes.md`, when it is beside
//! the checkout (CI has it): the extended run, which also checks that the project's catalog holds
//! every class of the reference.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use medic_parse::error_log::FailureClass;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// The IDs in the first column of the markdown table(s) of `text`.
fn table_ids(text: &str) -> Vec<(String, String)> {
    text.lines()
        .filter_map(|l| {
            let rest = l.strip_prefix("| `")?;
            let (id, _) = rest.split_once('`')?;
            Some((id.to_string(), l.to_string()))
        })
        .collect()
}

/// The class IDs of §1 of the catalog at `path`.
fn catalog_classes(path: &Path) -> BTreeSet<String> {
    let text =
        std::fs::read_to_string(path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()));
    let section = text
        .split("## 1.")
        .nth(1)
        .and_then(|s| s.split("## 2.").next())
        .unwrap_or_else(|| panic!("{} has no sections 1 and 2", path.display()));
    let ids: BTreeSet<String> = table_ids(section).into_iter().map(|(id, _)| id).collect();
    assert!(!ids.is_empty(), "{}: no class in §1", path.display());
    ids
}

/// The code's classes.
fn code() -> BTreeSet<String> {
    FailureClass::ALL
        .iter()
        .map(|c| c.id().to_string())
        .collect()
}

/// `(id, row)` of docs/failure-classes.md, after checking it lists the code's classes.
fn doc_rows() -> Vec<(String, String)> {
    let doc = std::fs::read_to_string(root().join("docs/failure-classes.md"))
        .expect("docs/failure-classes.md");
    let rows = table_ids(&doc);
    let ids: BTreeSet<String> = rows.iter().map(|(id, _)| id.clone()).collect();
    assert_eq!(
        code(),
        ids,
        "docs/failure-classes.md lists other classes than the code"
    );
    rows
}

/// Every class of the catalog at `path` is in the code; every class the code adds is marked.
fn check_catalog(path: &Path) -> BTreeSet<String> {
    let code = code();
    let catalog = catalog_classes(path);
    for id in &catalog {
        assert!(
            code.contains(id),
            "{} §1 class {id} is missing from the code",
            path.display()
        );
    }
    for (id, row) in &doc_rows() {
        if !catalog.contains(id) && id != "other" {
            assert!(
                row.contains("**added.**"),
                "{id} is not in {} §1: mark it **added.** in docs/failure-classes.md",
                path.display()
            );
        }
    }
    catalog
}

#[test]
fn code_doc_and_project_catalog_agree() {
    let path = root().join("docs/causes.md");
    let n = check_catalog(&path).len();
    eprintln!("catalog: in-repo run over {}: {n} classes", path.display());
}

/// The extended run: the team's reference catalog, when it is beside the checkout.
#[test]
fn code_doc_and_shared_catalog_agree_when_present() {
    let shared = root().join("../shared/causes.md");
    if !shared.exists() {
        eprintln!(
            "catalog: extended run not possible: no {}",
            shared.display()
        );
        return;
    }
    let classes = check_catalog(&shared);
    let ours = catalog_classes(&root().join("docs/causes.md"));
    for id in &classes {
        assert!(
            ours.contains(id),
            "docs/causes.md §1 lacks {id} of {}",
            shared.display()
        );
    }
    eprintln!(
        "catalog: extended run over {}: {} classes",
        shared.display(),
        classes.len()
    );
}
