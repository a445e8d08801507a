//! The root-cause and latent-cause IDs of `../shared/causes.md` (§2, §2b) each have a rule, and
//! every rule's ID is either in the shared catalog or one of the class-level causes this project
//! added (named in `docs/root-causes.md`).

use std::path::PathBuf;

use medic_core::rules::all_docs;
use medic_parse::error_log::FailureClass;

/// The IDs in the first column of the table under `heading`.
fn table_ids(text: &str, heading: &str) -> Vec<String> {
    let start = text
        .find(heading)
        .unwrap_or_else(|| panic!("no {heading} in causes.md"));
    let rest = &text[start + heading.len()..];
    let end = rest.find("\n## ").unwrap_or(rest.len());
    rest[..end]
        .lines()
        .filter_map(|l| l.strip_prefix("| `"))
        .filter_map(|l| l.split('`').next())
        .map(str::to_string)
        .collect()
}

#[test]
fn every_shared_cause_has_a_rule_and_every_rule_is_known() {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/causes.md");
    let text =
        std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()));
    let root = table_ids(&text, "## 2. Root causes");
    let latent = table_ids(&text, "## 2b. Latent causes");
    assert!(root.len() >= 30 && latent.len() >= 9, "{root:?} {latent:?}");
    let ours: Vec<&str> = all_docs().iter().map(|r| r.id()).collect();
    for id in root.iter().chain(latent.iter()) {
        assert!(
            ours.contains(&id.as_str()),
            "causes.md names {id}, no rule has it"
        );
    }
    for id in &ours {
        let shared = root.iter().chain(latent.iter()).any(|s| s == id);
        // The class-level causes: what the error log alone proves.
        let class_level = FailureClass::from_id(id).is_some();
        assert!(
            shared || class_level,
            "rule {id} is neither in causes.md nor a class-level cause"
        );
    }
}
