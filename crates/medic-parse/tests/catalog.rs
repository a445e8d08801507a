//! The failure classes in the code, in docs/failure-classes.md and in the shared catalog
//! (../shared/causes.md §1, the JSON contract) must agree: the same IDs, and every class the
//! project added marked as such in its doc.

use std::collections::BTreeSet;
use std::path::PathBuf;

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

#[test]
fn code_doc_and_shared_catalog_agree() {
    let code: BTreeSet<String> = FailureClass::ALL
        .iter()
        .map(|c| c.id().to_string())
        .collect();

    let doc = std::fs::read_to_string(root().join("docs/failure-classes.md"))
        .expect("docs/failure-classes.md");
    let doc_rows = table_ids(&doc);
    let doc_ids: BTreeSet<String> = doc_rows.iter().map(|(id, _)| id.clone()).collect();
    assert_eq!(
        code, doc_ids,
        "docs/failure-classes.md lists other classes than the code"
    );

    let shared_path = root().join("../shared/causes.md");
    let shared = std::fs::read_to_string(&shared_path).unwrap_or_else(|e| {
        panic!(
            "{}: {e} (the shared catalog sits beside the repository)",
            shared_path.display()
        )
    });
    let section = shared
        .split("## 1.")
        .nth(1)
        .and_then(|s| s.split("## 2.").next())
        .expect("causes.md has sections 1 and 2");
    let shared_ids: BTreeSet<String> = table_ids(section).into_iter().map(|(id, _)| id).collect();
    assert!(!shared_ids.is_empty());
    for id in &shared_ids {
        assert!(
            code.contains(id),
            "causes.md §1 class {id} is missing from the code"
        );
    }
    for (id, row) in &doc_rows {
        if !shared_ids.contains(id) && id != "other" {
            assert!(
                row.contains("**added.**"),
                "{id} is not in causes.md §1: mark it **added.** in docs/failure-classes.md"
            );
        }
    }
}
