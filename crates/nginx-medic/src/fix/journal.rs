//! The journal of a `fix --apply` run: every step the apply engine took, in order, with its
//! outcome and what it saw, printed as it happens and kept for the JSON report.
//!
//! A fix that changes a production config must leave a trail a person can follow afterwards
//! (which files, which backup, which reload, why it rolled back), even when the run was killed
//! halfway: hence one line on stderr per step as soon as it is done, not a summary at the end.

use std::io::Write;

use serde::Serialize;

/// One step: when it ended, its name, whether it succeeded, and what it saw or did.
#[derive(Clone, Debug, Serialize)]
pub struct Step {
    /// RFC 3339, UTC, milliseconds.
    pub at: String,
    /// kebab-case: `lock`, `precheck`, `backup`, `stage-test`, `write`, `reload`, `verify`,
    /// `rollback`, `restore`, `restart`, ...
    pub step: &'static str,
    pub ok: bool,
    pub detail: String,
}

/// The steps of one run.
#[derive(Debug, Serialize)]
pub struct Journal {
    steps: Vec<Step>,
    #[serde(skip)]
    echo: bool,
}

impl Journal {
    /// A journal that also prints each step to stderr as it is recorded.
    pub fn new() -> Journal {
        Journal {
            steps: Vec::new(),
            echo: true,
        }
    }

    /// A journal that only records (tests read the steps instead).
    pub fn quiet() -> Journal {
        Journal {
            steps: Vec::new(),
            echo: false,
        }
    }

    /// Records a step (and prints it: `✓ step: detail` or `✗ step: detail`).
    pub fn record(&mut self, step: &'static str, ok: bool, detail: impl Into<String>) {
        let s = Step {
            at: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
            step,
            ok,
            detail: detail.into(),
        };
        if self.echo {
            let mark = if ok { '✓' } else { '✗' };
            // One line per step: a detail holding nginx's multi-line stderr is folded.
            let detail = s.detail.trim_end().replace('\n', " | ");
            // stderr may be closed (`2>&-`); the step is still recorded.
            let _ = writeln!(std::io::stderr(), "{mark} {step}: {detail}");
        }
        self.steps.push(s);
    }

    pub fn steps(&self) -> &[Step] {
        &self.steps
    }

    /// The steps named `step`, in order.
    pub fn find<'a>(&'a self, step: &'a str) -> impl Iterator<Item = &'a Step> + 'a {
        self.steps.iter().filter(move |s| s.step == step)
    }
}

impl Default for Journal {
    fn default() -> Self {
        Journal::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_in_order_and_serializes() {
        let mut j = Journal::quiet();
        j.record("lock", true, "/run/x.lock");
        j.record("precheck", false, "changed since the plan");
        assert_eq!(j.steps().len(), 2);
        assert_eq!(j.find("precheck").count(), 1);
        let v = serde_json::to_value(&j).unwrap();
        assert_eq!(v["steps"][1]["step"], "precheck");
        assert_eq!(v["steps"][1]["ok"], false);
        assert!(v["steps"][0]["at"].as_str().unwrap().ends_with('Z'));
    }
}
