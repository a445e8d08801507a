//! SARIF 2.1.0 for `nginx-medic config lint --format sarif` (code-scanning UIs): the rule docs
//! as `tool.driver.rules`, each finding a result at its config line.

use medic_core::rules::{all_docs, doc_markdown, registry, Finding, Severity};
use serde_json::{json, Value};

use crate::config_lint::LintReport;

const SCHEMA: &str = "https://json.schemastore.org/sarif-2.1.0.json";
const INFO_URI: &str = "https://github.com/nginx-medic/nginx-medic";

pub fn sarif(r: &LintReport) -> Value {
    let mut rules: Vec<Value> = registry()
        .iter()
        .map(|rule| {
            let md = doc_markdown(*rule);
            json!({
                "id": rule.id(),
                "name": rule.id(),
                "shortDescription": {"text": rule.title()},
                "fullDescription": {"text": medic_core::rules::doc_section(*rule, "What it detects").unwrap_or_default()},
                "help": {"text": md, "markdown": md},
                "helpUri": format!("{INFO_URI}/blob/main/docs/rules/{}.md", rule.id()),
                "defaultConfiguration": {"level": "warning"},
            })
        })
        .collect();
    // `config-invalid` comes from the parser and nginx -t, not from a catalog rule.
    rules.push(json!({
        "id": "config-invalid",
        "name": "config-invalid",
        "shortDescription": {"text": "the configuration does not load"},
        "fullDescription": {"text": "nginx -t fails or the configuration does not parse: nginx will not start or reload with it."},
        "help": {"text": "Fix the reported line, then run `nginx -t`.", "markdown": "Fix the reported line, then run `nginx -t`."},
        "defaultConfiguration": {"level": "error"},
    }));
    document(rules, &r.findings)
}

/// SARIF for `nginx-medic diagnose`: every rule of the catalog (root and latent causes).
pub fn sarif_findings(findings: &[Finding]) -> Value {
    let rules: Vec<Value> = all_docs()
        .into_iter()
        .map(|rule| {
            let md = doc_markdown(rule);
            json!({
                "id": rule.id(),
                "name": rule.id(),
                "shortDescription": {"text": rule.title()},
                "fullDescription": {"text": medic_core::rules::doc_section(rule, "What it detects").unwrap_or_default()},
                "help": {"text": md, "markdown": md},
                "helpUri": format!("{INFO_URI}/blob/main/docs/rules/{}.md", rule.id()),
            })
        })
        .collect();
    document(rules, findings)
}

fn document(rules: Vec<Value>, findings: &[Finding]) -> Value {
    let index = |id: &str| rules.iter().position(|r| r["id"] == id);
    let results: Vec<Value> = findings.iter().map(|f| result(f, index(f.id))).collect();
    json!({
        "$schema": SCHEMA,
        "version": "2.1.0",
        "runs": [{
            "tool": {"driver": {
                "name": "nginx-medic",
                "version": env!("CARGO_PKG_VERSION"),
                "informationUri": INFO_URI,
                "rules": rules,
            }},
            "results": results,
        }],
    })
}

fn level(s: Severity) -> &'static str {
    match s {
        Severity::Error => "error",
        Severity::Warning => "warning",
        Severity::Info => "note",
    }
}

fn location(file: &str, line: u32, text: &str) -> Value {
    json!({"physicalLocation": {
        "artifactLocation": {"uri": uri(file)},
        "region": {"startLine": line, "snippet": {"text": text}},
    }})
}

/// A path as a URI reference: absolute paths stay paths (a valid relative reference), with the
/// characters URIs reserve percent-encoded.
fn uri(path: &str) -> String {
    let mut s = String::with_capacity(path.len());
    for b in path.bytes() {
        if b.is_ascii_alphanumeric() || b"/._-~".contains(&b) {
            s.push(b as char);
        } else {
            s.push_str(&format!("%{b:02X}"));
        }
    }
    s
}

fn result(f: &Finding, rule_index: Option<usize>) -> Value {
    let mut located = f.evidence.iter().filter_map(|e| {
        e.at.as_ref()
            .map(|(file, line)| location(file, *line, &e.text))
    });
    let primary: Vec<Value> = located.next().into_iter().collect();
    let related: Vec<Value> = located
        .enumerate()
        .map(|(i, mut l)| {
            l["id"] = json!(i + 1);
            l
        })
        .collect();
    let mut v = json!({
        "ruleId": f.id,
        "level": level(f.severity),
        "message": {"text": format!("{}. Fix: {}", f.title, f.fix.summary)},
        "locations": primary,
        "properties": {"fix": f.fix, "evidence": f.evidence},
    });
    if let Some(i) = rule_index {
        v["ruleIndex"] = json!(i);
    }
    if !related.is_empty() {
        v["relatedLocations"] = json!(related);
    }
    if let Some(u) = &f.upstream {
        v["properties"]["upstream"] = json!(u);
    }
    v
}
