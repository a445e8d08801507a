//! The rule catalog: one rule per file, `rules/<group>/<rule>.rs`, its `///` doc is its user
//! documentation (`docs/rules/<id>.md`, SARIF `help`, `nginx-medic` text output).
//!
//! A rule reads the [`Model`] and pushes [`Finding`]s; it never does I/O. IDs are those of
//! `causes.md` §2b and never change.

use medic_parse::time::LogTime;
use serde::Serialize;

use crate::config::{Model, Src};
pub use crate::facts::Impact;
use crate::facts::LogLine;
pub use remedy::{Address, Change, Remedy, Risk};

pub mod cause;
pub mod group;
pub mod latent;
pub mod remedy;
pub mod support;

/// How sure and how urgent a finding is (`causes.md` §3).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Info,
    Warning,
    Error,
}

impl Severity {
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Info => "info",
            Severity::Warning => "warning",
            Severity::Error => "error",
        }
    }
}

/// One piece of evidence: a config line, a log line, a probe result.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Evidence {
    /// `config`, `log`, `probe`, `nginx -t`.
    pub kind: &'static str,
    /// `FILE:LINE` for config and log lines; the probe's name otherwise.
    pub source: String,
    pub text: String,
    /// File and line, when the source is a position (for SARIF and the caret display). The
    /// file's name is the config's own, shared.
    #[serde(skip)]
    pub at: Option<(std::sync::Arc<str>, u32)>,
}

impl Evidence {
    /// A log line.
    pub fn log(line: &LogLine) -> Evidence {
        let at = line
            .source
            .rsplit_once(':')
            .and_then(|(f, l)| Some((std::sync::Arc::from(f), l.parse().ok()?)));
        Evidence {
            kind: "log",
            source: line.source.clone(),
            text: line.text.clone(),
            at,
        }
    }

    /// What a probe saw (`source` names the probe: `connect`, `stat`, `tls`, `listeners`).
    pub fn probe(source: &str, text: String) -> Evidence {
        Evidence {
            kind: "probe",
            source: source.to_string(),
            text,
            at: None,
        }
    }

    /// Another kind of evidence (`nginx -t`, `supervisor`, `kernel`).
    pub fn other(kind: &'static str, source: String, text: String) -> Evidence {
        Evidence {
            kind,
            source,
            text,
            at: None,
        }
    }

    /// The evidence of a config directive.
    pub fn config(src: &Src) -> Evidence {
        let cited = src.cite();
        Evidence {
            kind: "config",
            source: cited.location(),
            text: cited.text,
            at: Some((src.shared_file(), cited.line)),
        }
    }
}

/// What to do about a finding.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Fix {
    pub summary: String,
    pub steps: Vec<String>,
    pub commands: Vec<String>,
    pub time: &'static str,
    pub risk: &'static str,
    /// What `nginx-medic fix` may do by itself (`None`: advice only). Not part of the JSON
    /// contract: `fix --format json` prints the plan made of it.
    #[serde(skip)]
    pub remedy: Option<Remedy>,
}

impl Fix {
    /// This fix, machine-applicable with `remedy`.
    pub fn with_remedy(mut self, remedy: Remedy) -> Fix {
        self.remedy = Some(remedy);
        self
    }
}

/// A finding in the shape of `causes.md` §3.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Finding {
    pub id: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub class: Option<&'static str>,
    pub severity: Severity,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status: Option<u16>,
    /// The upstream as nginx targets it (`HOST:PORT`, `unix:/path`, group name); absent when
    /// the finding is not about one upstream.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub upstream: Option<String>,
    pub title: String,
    /// Requests hurt in the logs read (`diagnose`; 0 when only the probes or the config show
    /// it). Absent in `config lint`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub count: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub first_seen: Option<LogTime>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_seen: Option<LogTime>,
    /// At least one item; the first is where the finding points.
    pub evidence: Vec<Evidence>,
    pub fix: Fix,
    /// Entries per minute (minute start, count), the finding's timeline.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub per_minute: Vec<(LogTime, u32)>,
    /// Who serves the upstream, when the supervisors name it (`causes.md` §3 additions).
    #[serde(skip_serializing_if = "Option::is_none")]
    /// Boxed: most findings have none, and inline it was 264 of a finding's 688 bytes.
    pub backend: Option<Box<crate::backend::Backend>>,
    /// What the clients got, from the access lines joined to the failures (`causes.md` §3
    /// additions); absent when no access line could be joined (impact unknown).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub impact: Option<Impact>,
    /// `ongoing`, `resolved` or `latent` (`causes.md` §3 additions).
    pub state: State,
    /// When the evidence says it stopped (with `state: resolved`).
    pub resolved_at: Option<LogTime>,
    /// The other failures of the same target in the same stretch of time, in time order: one
    /// story (a backend that resets, then refuses, then restarts), told by this finding.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub timeline: Vec<Step>,
}

/// One step of a finding's story: another cause the same target showed around the same time.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Step {
    pub id: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub class: Option<&'static str>,
    pub count: u64,
    pub first_seen: LogTime,
    pub last_seen: LogTime,
    pub title: String,
    /// Where the step shows in the logs (its first line).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub evidence: Option<Evidence>,
}

/// Whether a finding is happening (`causes.md` §3 `state`).
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, serde::Deserialize,
)]
#[serde(rename_all = "lowercase")]
pub enum State {
    /// Failing, or nothing shows it stopped.
    #[default]
    Ongoing,
    /// The evidence says it stopped (the finding says why).
    Resolved,
    /// A config or probe finding: nothing failed yet.
    Latent,
}

impl Finding {
    /// A latent-cause finding (`warning`, no status: no 5xx has been seen yet).
    pub fn latent(id: &'static str, title: String, evidence: Vec<Evidence>, fix: Fix) -> Finding {
        Finding {
            id,
            class: None,
            severity: Severity::Warning,
            status: None,
            upstream: None,
            title,
            count: None,
            first_seen: None,
            last_seen: None,
            evidence,
            fix,
            per_minute: Vec::new(),
            backend: None,
            impact: None,
            state: State::Latent,
            resolved_at: None,
            timeline: Vec::new(),
        }
    }

    pub fn upstream(mut self, upstream: impl Into<String>) -> Finding {
        self.upstream = Some(upstream.into());
        self
    }
}

/// A rule's identity and documentation, declared by [`rule!`] from its doc comment.
pub trait RuleDoc {
    /// The stable ID of `causes.md`.
    fn id(&self) -> &'static str;
    /// One line: what is wrong (the headline of the text output and SARIF `shortDescription`).
    fn title(&self) -> &'static str;
    /// The `///` doc comment as written (each line keeps the space after `///`).
    fn raw_doc(&self) -> &'static str;
    /// The source file as the compiler named it (see [`source_path`]).
    fn file(&self) -> &'static str;
    /// How long the fix takes (`5-10 min`), as `causes.md` §2 gives it.
    fn time(&self) -> &'static str;
    /// What the fix risks: `low`, `medium` or `high`, then why when it matters.
    fn risk(&self) -> &'static str;

    /// The fix of a finding of this rule: what to do, with the rule's time and risk.
    fn fix(&self, summary: String, steps: Vec<String>, commands: Vec<String>) -> Fix {
        Fix {
            summary,
            steps,
            commands,
            time: self.time(),
            risk: self.risk(),
            remedy: None,
        }
    }
}

/// A rule: reads the model, pushes findings.
pub trait Rule: RuleDoc + Send + Sync {
    fn check(&self, model: &Model, out: &mut Vec<Finding>);
}

/// The doc comment as Markdown (the leading space of each `///` line removed).
pub fn doc_markdown(rule: &dyn RuleDoc) -> String {
    let mut s = String::new();
    for line in rule.raw_doc().lines() {
        s.push_str(line.strip_prefix(' ').unwrap_or(line));
        s.push('\n');
    }
    s
}

/// The rule's source file relative to the workspace root, however cargo was invoked.
pub fn source_path(rule: &dyn RuleDoc) -> String {
    let f = rule.file().replace('\\', "/");
    match f.find("src/rules/") {
        Some(i) => format!("crates/medic-core/{}", &f[i..]),
        None => f,
    }
}

/// The rule's page, `docs/rules/<id>.md`: generated from the doc comment, never edited by hand.
pub fn doc_page(rule: &dyn RuleDoc) -> String {
    let group = if is_latent(rule.id()) {
        "Severity: `warning` (a latent cause: no 5xx seen yet). Group: latent causes, `causes.md` §2b; found by `nginx-medic config lint` and `nginx-medic diagnose`."
    } else {
        "Group: root causes, `causes.md` §2; found by `nginx-medic diagnose`. See [the catalog](../root-causes.md) for the order in which causes are tried."
    };
    format!(
        "<!-- Generated from {} by `UPDATE_DOCS=1 cargo test -p medic-core --test docs`; edit the doc comment there. -->\n\n# `{}`: {}\n\n{group}\n\n{}",
        source_path(rule),
        rule.id(),
        rule.title(),
        doc_markdown(rule)
    )
}

fn is_latent(id: &str) -> bool {
    registry().iter().any(|r| r.id() == id)
}

/// Every documented rule: the root causes (§2, in the order they are tried), then the latent
/// causes (§2b).
pub fn all_docs() -> Vec<&'static dyn RuleDoc> {
    let mut v: Vec<&'static dyn RuleDoc> = Vec::new();
    for c in cause::registry() {
        v.push(*c as &dyn RuleDoc);
    }
    for r in registry() {
        v.push(*r as &dyn RuleDoc);
    }
    v
}

/// The documented rule with this ID (a root cause or a latent cause).
pub fn find_doc(id: &str) -> Option<&'static dyn RuleDoc> {
    all_docs().into_iter().find(|r| r.id() == id)
}

/// `docs/root-causes.md`: the root-cause catalog, one row per rule, in the order they are tried.
pub fn causes_page() -> String {
    let mut s = String::from(
        "<!-- Generated from the rule doc comments by `UPDATE_DOCS=1 cargo test -p medic-core --test docs`. -->\n\n\
         # Root causes\n\n\
         Why nginx answered 502/503/504: what `nginx-medic diagnose` reports. The IDs are those of the \
         shared catalog (`causes.md` §2) plus the class-level causes that name what the error log alone \
         proves (`connect-refused`, `read-timeout`, ...: the finding of a post-mortem, `--no-probe`, or \
         of a live run where no refinement holds). Each rule is one file in \
         `crates/medic-core/src/rules/cause/`; its doc comment is its page here and the text of \
         `nginx-medic explain ID`. For each group of failures the causes are tried in this order, \
         most specific first; the first whose evidence holds is the finding.\n\n\
         | id | what | time to fix | risk of the fix |\n|---|---|---|---|\n",
    );
    for c in cause::registry() {
        let r: &dyn RuleDoc = *c;
        s.push_str(&format!(
            "| [`{id}`](rules/{id}.md) | {title} | {time} | {risk} |\n",
            id = r.id(),
            title = r.title().replace('|', "\\|"),
            time = r.time(),
            risk = r.risk().replace('|', "\\|"),
        ));
    }
    s
}

/// `docs/latent-causes.md`: the catalog table, one row per rule.
pub fn catalog_page() -> String {
    let mut s = String::from(
        "<!-- Generated from the rule doc comments by `UPDATE_DOCS=1 cargo test -p medic-core --test docs`. -->\n\n\
         # Latent causes\n\n\
         Settings that will produce 502/503/504 under some condition, found in the configuration before any \
         5xx is seen (`nginx-medic config lint`). The IDs are those of the shared catalog \
         (`causes.md` §2b); each rule is one file in `crates/medic-core/src/rules/latent/`, and its doc \
         comment is its page here. Findings have severity `warning`.\n\n\
         | id | what | time to fix | risk of the fix |\n|---|---|---|---|\n",
    );
    for r in registry() {
        s.push_str(&format!(
            "| [`{id}`](rules/{id}.md) | {title} | {time} | {risk} |\n",
            id = r.id(),
            title = r.title().replace('|', "\\|"),
            time = r.time(),
            risk = r.risk().replace('|', "\\|"),
        ));
    }
    s.push_str(
        "\n`cert-expires-soon` (an upstream certificate expiring within 14 days) is a probe rule: it needs \
         the live certificate and is not part of the config lint.\n",
    );
    s
}

/// A section of the doc (`## Fix` -> its text), trimmed.
pub fn doc_section(rule: &dyn RuleDoc, heading: &str) -> Option<String> {
    let md = doc_markdown(rule);
    let start = md.find(&format!("## {heading}\n"))? + heading.len() + 4;
    let rest = &md[start..];
    let end = rest.find("\n## ").map_or(rest.len(), |i| i + 1);
    Some(rest[..end].trim().to_string())
}

/// Declares a rule struct from its doc comment, id, title, and its fix's time and risk:
///
/// ```ignore
/// rule! {
///     /// ## What it detects ...
///     /// ## Fix ...
///     pub struct SslNoSni = "ssl-no-sni", "https upstream without SNI";
///     time = "2 min", risk = "low (the handshake only gains the server name)";
/// }
/// ```
///
/// The doc attributes are kept on the struct (rustdoc) and also concatenated into a `&'static
/// str`, so one text feeds rustdoc, `docs/rules/`, SARIF and the terminal. The time and risk are
/// declared once: they close the doc's Fix section and are every finding's `fix.time`/`fix.risk`.
macro_rules! rule {
    ($(#[doc = $doc:literal])* pub struct $name:ident = $id:literal, $title:literal;
     time = $time:literal, risk = $risk:literal;) => {
        $(#[doc = $doc])*
        pub struct $name;

        impl $crate::rules::RuleDoc for $name {
            fn id(&self) -> &'static str {
                $id
            }
            fn title(&self) -> &'static str {
                $title
            }
            fn raw_doc(&self) -> &'static str {
                // The doc ends with its Fix section; the time and risk close it.
                concat!($($doc, "\n"),*, " Time: ", $time, ". Risk: ", $risk, ".\n")
            }
            fn time(&self) -> &'static str {
                $time
            }
            fn risk(&self) -> &'static str {
                $risk
            }
            fn file(&self) -> &'static str {
                file!()
            }
        }
    };
}
pub(crate) use rule;

/// Every rule, in catalog order.
pub fn registry() -> &'static [&'static dyn Rule] {
    latent::RULES
}

/// The rule with this ID.
pub fn find(id: &str) -> Option<&'static dyn Rule> {
    registry().iter().copied().find(|r| r.id() == id)
}

/// Runs every rule and ranks the findings: most severe first, then by where they point.
pub fn check_all(model: &Model) -> Vec<Finding> {
    let rules = registry();
    // The rules are independent, and on a 5,000-server config they were a tenth of `config
    // lint`, one after another: two threads take them in turn. Each rule's findings are kept
    // apart, in its order, so the ranked list is the one a single thread makes.
    let next = std::sync::atomic::AtomicUsize::new(0);
    let take = || {
        let mut done = Vec::new();
        loop {
            let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            let Some(rule) = rules.get(i) else {
                return done;
            };
            let mut found = Vec::new();
            rule.check(model, &mut found);
            // What lets the lists be joined in any order (below).
            debug_assert!(found.iter().all(|f| f.id == rule.id()), "{}", rule.id());
            done.push((i, found));
        }
    };
    let mut done = std::thread::scope(|scope| {
        let other = medic_thread::spawn_scoped(scope, "rules", take);
        let mut done = take();
        // Without a second thread this one has taken every rule.
        if let Ok(other) = other {
            match medic_thread::join(other) {
                Ok(theirs) => done.extend(theirs),
                Err(panic) => std::panic::resume_unwind(panic),
            }
        }
        done
    });
    // Joined into the list with the most room, not into a new one: on a 5,000-server config
    // the copy was 0.6 MB beside the lists it copied, at the run's peak. `rank` gives the same
    // order whatever the joining order: findings that tie on every key have one ID, so come
    // from one rule, whose list keeps its order.
    done.sort_unstable_by_key(|(i, found)| (std::cmp::Reverse(found.capacity()), *i));
    let mut lists = done.into_iter().map(|(_, found)| found);
    let mut out = lists.next().unwrap_or_default();
    for found in lists {
        out.extend(found);
    }
    rank(&mut out);
    out
}

/// The clients a finding hurt: the 5xx its joined access lines got, else the error-log count.
fn hurt(f: &Finding) -> u64 {
    f.impact.as_ref().map_or(f.count.unwrap_or(0), Impact::hurt)
}

/// The one order of findings, for `diagnose` and `config lint` alike: most severe first, then
/// ongoing before resolved before latent, then the clients hurt, then the most recent; ties by
/// where the evidence points (file and line), ID and upstream, so the output is stable.
pub fn rank(findings: &mut [Finding]) {
    // The order is found on indexes and then applied: a stable sort of the findings themselves
    // took scratch space for all of them (1 MB for `config lint` on 5,000 servers, at its peak).
    let mut order: Vec<usize> = (0..findings.len()).collect();
    order.sort_by(|&i, &j| ranking(&findings[i], &findings[j]));
    // Where each finding goes; every swap puts one in its place.
    let mut place = vec![0; order.len()];
    for (to, &from) in order.iter().enumerate() {
        place[from] = to;
    }
    for i in 0..findings.len() {
        while place[i] != i {
            let to = place[i];
            findings.swap(i, to);
            place.swap(i, to);
        }
    }
}

/// [`rank`]'s order of two findings.
fn ranking(a: &Finding, b: &Finding) -> std::cmp::Ordering {
    // Borrowed: a clone per comparison was an allocation per comparison.
    fn at(f: &Finding) -> Option<&(std::sync::Arc<str>, u32)> {
        f.evidence.first().and_then(|e| e.at.as_ref())
    }
    b.severity
        .cmp(&a.severity)
        .then_with(|| a.state.cmp(&b.state))
        .then_with(|| hurt(b).cmp(&hurt(a)))
        .then_with(|| b.last_seen.cmp(&a.last_seen))
        .then_with(|| at(a).cmp(&at(b)))
        .then_with(|| a.id.cmp(b.id))
        .then_with(|| a.upstream.cmp(&b.upstream))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `rank` puts findings in the order a stable sort of them would: by [`ranking`], and
    /// findings that tie in the order they came (here, many tie on every key).
    #[test]
    fn rank_is_a_stable_sort_by_ranking() {
        let mut seed = 7u64;
        let mut next = |n: u64| {
            seed = seed
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            (seed >> 33) % n
        };
        let fix = Fix {
            summary: String::new(),
            steps: Vec::new(),
            commands: Vec::new(),
            time: "",
            risk: "",
            remedy: None,
        };
        let findings: Vec<Finding> = (0..300)
            .map(|i| {
                let evidence = match next(3) {
                    0 => Vec::new(),
                    line => vec![Evidence::config(&crate::config::Src::new(
                        "a.conf".into(),
                        line as u32,
                        "x;".into(),
                    ))],
                };
                let id = ["a", "b"][next(2) as usize];
                let mut f = Finding::latent(id, i.to_string(), evidence, fix.clone());
                f.severity = [Severity::Info, Severity::Warning, Severity::Error][next(3) as usize];
                f.state = [State::Ongoing, State::Resolved, State::Latent][next(3) as usize];
                f.count = Some(next(2));
                f.upstream = (next(2) == 0).then(|| "u".to_string());
                f
            })
            .collect();
        let mut expected = findings.clone();
        expected.sort_by(ranking);
        let mut ranked = findings;
        rank(&mut ranked);
        let titles = |f: &[Finding]| f.iter().map(|f| f.title.clone()).collect::<Vec<_>>();
        assert_eq!(titles(&ranked), titles(&expected));
        rank(&mut []);
    }
}
