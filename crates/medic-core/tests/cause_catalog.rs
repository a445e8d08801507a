//! The project's catalog, `docs/causes.md` (the contract: IDs of §2 and §2b, each root cause's
//! time and risk), and the rules agree: every ID has a rule, every rule's ID is in the catalog or
//! is one of the class-level causes (named in `docs/root-causes.md`), and a rule's time and risk
//! are the catalog's. When the team's reference catalog `../shared/causes.md` is beside the
//! checkout (CI has it), the project's catalog must hold every ID it lists, with the same time
//! and risk.

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

/// `(id, time, risk)` of each row of the table under `heading` (time and risk are the last two
/// columns of §2; §2b has none).
fn table_rows(text: &str, heading: &str) -> Vec<(String, Option<(String, String)>)> {
    let start = text
        .find(heading)
        .unwrap_or_else(|| panic!("no {heading} in the catalog"));
    let rest = &text[start + heading.len()..];
    let end = rest.find("\n## ").unwrap_or(rest.len());
    rest[..end]
        .lines()
        .filter_map(|l| l.strip_prefix("| `"))
        .filter_map(|l| {
            let id = l.split('`').next()?.to_string();
            let cols: Vec<&str> = l.split(" | ").map(str::trim).collect();
            let fix = (cols.len() >= 6).then(|| {
                let n = cols.len();
                (
                    cols[n - 2].to_string(),
                    cols[n - 1].trim_end_matches('|').trim().to_string(),
                )
            });
            Some((id, fix))
        })
        .collect()
}

/// Checks one catalog against the rules; the number of causes it lists.
fn check_catalog(path: &std::path::Path) -> usize {
    let text =
        std::fs::read_to_string(path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()));
    let root = table_rows(&text, "## 2. Root causes");
    let latent = table_rows(&text, "## 2b. Latent causes");
    assert!(root.len() >= 30 && latent.len() >= 9, "{root:?} {latent:?}");
    for (id, fix) in root.iter().chain(latent.iter()) {
        let rule = all_docs()
            .into_iter()
            .find(|r| r.id() == id)
            .unwrap_or_else(|| panic!("{} names {id}, no rule has it", path.display()));
        if let Some((time, risk)) = fix {
            assert_eq!(
                (rule.time(), rule.risk()),
                (time.as_str(), risk.as_str()),
                "{id}: the rule's time and risk differ from {}",
                path.display()
            );
        }
    }
    root.len() + latent.len()
}

/// The project's own catalog.
fn project_catalog() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../docs/causes.md")
}

#[test]
fn the_project_catalog_and_the_rules_agree() {
    let n = check_catalog(&project_catalog());
    eprintln!(
        "cause catalog: in-repo run over {}: {n} causes",
        project_catalog().display()
    );
    let text = std::fs::read_to_string(project_catalog()).expect("docs/causes.md");
    let ids: Vec<String> = table_ids(&text, "## 2. Root causes")
        .into_iter()
        .chain(table_ids(&text, "## 2b. Latent causes"))
        .collect();
    for r in all_docs() {
        // The class-level causes: what the error log alone proves.
        let class_level = FailureClass::from_id(r.id()).is_some();
        assert!(
            ids.iter().any(|i| i == r.id()) || class_level,
            "rule {} is neither in docs/causes.md nor a class-level cause",
            r.id()
        );
    }
}

/// The extended run: the team's reference catalog, when it is beside the checkout.
#[test]
fn the_shared_catalog_is_covered_when_present() {
    let shared = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/causes.md");
    if !shared.exists() {
        eprintln!(
            "cause catalog: extended run not possible: no {}",
            shared.display()
        );
        return;
    }
    let n = check_catalog(&shared);
    let ours = std::fs::read_to_string(project_catalog()).expect("docs/causes.md");
    let text = std::fs::read_to_string(&shared).expect("shared causes.md");
    for heading in ["## 2. Root causes", "## 2b. Latent causes"] {
        let mine = table_ids(&ours, heading);
        for id in table_ids(&text, heading) {
            assert!(
                mine.contains(&id),
                "docs/causes.md lacks {id} of {}",
                shared.display()
            );
        }
    }
    eprintln!(
        "cause catalog: extended run over {}: {n} causes",
        shared.display()
    );
}
