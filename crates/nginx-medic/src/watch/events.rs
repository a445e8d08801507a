//! `--events`: one JSON object per line, for Loki, Vector or journald.
//!
//! Every event has `event` and `time` (nginx's wall clock, like the logs). Incident events
//! carry the incident: cause, upstream, counts and impact so far, and evidence as `FILE:LINE`
//! references. The other events are `rotation`, `truncation`, `probe` and `problem` (a log the
//! follower could not read, or a line it skipped), each saying which log and what happened.

use std::io::Write;

use anyhow::{Context, Result};
use medic_core::incidents::{Closed, Incident};
use medic_parse::time::LogTime;
use serde::Serialize;
use serde_json::json;

/// Where events go.
pub struct Events {
    out: Option<Box<dyn Write + Send>>,
    /// The events written (the terminal view shows the last few).
    pub written: u64,
}

#[derive(Serialize)]
struct IncidentEvent<'a> {
    event: &'static str,
    time: LogTime,
    #[serde(flatten)]
    incident: &'a Incident,
    #[serde(skip_serializing_if = "Option::is_none")]
    closed: Option<&'a Closed>,
    #[serde(skip_serializing_if = "Option::is_none")]
    duration_secs: Option<i64>,
}

impl Events {
    /// `-`: stdout; a path: appended to.
    pub fn open(to: Option<&str>) -> Result<Events> {
        let out: Option<Box<dyn Write + Send>> = match to {
            None => None,
            Some("-") => Some(Box::new(std::io::stdout())),
            Some(path) => Some(Box::new(
                std::fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(path)
                    .with_context(|| format!("--events {path}"))?,
            )),
        };
        Ok(Events { out, written: 0 })
    }

    pub fn to_stdout(to: Option<&str>) -> bool {
        to == Some("-")
    }

    fn write(&mut self, v: &impl Serialize) {
        let Some(out) = self.out.as_mut() else {
            return;
        };
        // One write per line: a reader tailing the file never sees half an event.
        let mut line = match serde_json::to_vec(v) {
            Ok(l) => l,
            Err(e) => {
                eprintln!("nginx-medic: an event could not be written: {e}");
                return;
            }
        };
        line.push(b'\n');
        if let Err(e) = out.write_all(&line).and_then(|()| out.flush()) {
            eprintln!("nginx-medic: --events: {e}");
        }
        self.written += 1;
    }

    pub fn incident(
        &mut self,
        event: &'static str,
        now: LogTime,
        inc: &Incident,
        closed: Option<&Closed>,
    ) {
        self.write(&IncidentEvent {
            event,
            time: now,
            incident: inc,
            closed,
            duration_secs: closed.map(|c| c.at.0 - inc.first_seen.unwrap_or(inc.opened_at).0),
        });
    }

    pub fn rotation(&mut self, now: LogTime, log: &str, path: &str, moved_to: &str, drained: u64) {
        self.write(&json!({
            "event": "rotation",
            "time": now,
            "log": log,
            "path": path,
            "moved_to": moved_to,
            "lines_read_after_rename": drained,
        }));
    }

    #[allow(clippy::too_many_arguments)]
    pub fn truncation(
        &mut self,
        now: LogTime,
        log: &str,
        path: &str,
        recovered_from: Option<&str>,
        recovered_lines: u64,
        lost_lines: u64,
        lost_bytes: u64,
    ) {
        self.write(&json!({
            "event": "truncation",
            "time": now,
            "log": log,
            "path": path,
            "recovered_from": recovered_from,
            "recovered_lines": recovered_lines,
            "suspected_lost_lines": lost_lines,
            "suspected_lost_bytes": lost_bytes,
        }));
    }

    pub fn probe(
        &mut self,
        now: LogTime,
        upstream: &str,
        answers: Option<bool>,
        what: &str,
        took_ms: u128,
    ) {
        self.write(&json!({
            "event": "probe",
            "time": now,
            "upstream": upstream,
            "answers": answers,
            "result": what,
            "took_ms": took_ms,
        }));
    }

    pub fn problem(&mut self, now: LogTime, log: &str, path: &str, why: &str) {
        self.write(&json!({
            "event": "problem",
            "time": now,
            "log": log,
            "path": path,
            "why": why,
        }));
    }
}
