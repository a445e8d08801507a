//! The Prometheus / OpenMetrics counters of `watch`, served at `GET /metrics`.
//!
//! Labels are bounded: `class` and `cause` come from the catalog, `log` is `error` or
//! `access`, `status` is a 5xx, `origin` one of three; `upstream` takes the names the config
//! gives and, beyond them, at most `--max-series` others; anything past that is `other`, so a
//! scanner hammering random hosts cannot grow the series without end.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use anyhow::{Context, Result};
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

use medic_core::config::{Model, Target};
use medic_core::incidents::Incident;
use medic_parse::access_log::Origin;

use super::read::Counts;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct LogLabel {
    log: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct FailureLabels {
    class: &'static str,
    upstream: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ResponseLabels {
    upstream: String,
    status: u16,
    origin: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct IncidentLabels {
    cause: &'static str,
    upstream: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct CauseLabel {
    cause: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ResultLabel {
    result: &'static str,
}

/// Every metric `watch` serves.
pub struct Metrics {
    registry: Arc<Registry>,
    lines: Family<LogLabel, Counter>,
    parse_errors: Family<LogLabel, Counter>,
    rotations: Family<LogLabel, Counter>,
    truncations: Family<LogLabel, Counter>,
    suspected_lost: Family<LogLabel, Counter>,
    failures: Family<FailureLabels, Counter>,
    responses: Family<ResponseLabels, Counter>,
    incidents_open: Family<IncidentLabels, Gauge>,
    incidents: Family<CauseLabel, Counter>,
    probes: Family<ResultLabel, Counter>,
    upstreams: Upstreams,
    /// The `incidents_open` series set last time.
    open_series: HashMap<IncidentLabels, i64>,
}

/// The `upstream` label's values: the config's, then up to a cap of others.
struct Upstreams {
    known: HashSet<String>,
    others: HashSet<String>,
    cap: usize,
}

impl Upstreams {
    fn label(&mut self, up: &str) -> String {
        if self.known.contains(up) || self.others.contains(up) {
            return up.to_string();
        }
        if self.others.len() < self.cap {
            self.others.insert(up.to_string());
            return up.to_string();
        }
        "other".to_string()
    }
}

/// The targets the config sends to, as nginx names them in its logs.
fn config_upstreams(models: &[Model]) -> HashSet<String> {
    let mut out = HashSet::new();
    for m in models {
        for p in &m.passes {
            if !matches!(p.target, Target::Dynamic { .. }) {
                out.insert(p.target.display());
            }
        }
        for u in &m.upstreams {
            out.insert(u.name.clone());
            for s in &u.servers {
                out.insert(s.address.to_string());
            }
        }
    }
    out
}

fn origin_label(o: Origin) -> &'static str {
    match o {
        Origin::Nginx => "nginx",
        Origin::Upstream => "upstream",
        Origin::Unknown => "unknown",
    }
}

impl Metrics {
    pub fn new(models: &[Model], max_series: usize) -> Metrics {
        let mut r = Registry::with_prefix("nginx_medic");
        let lines = Family::<LogLabel, Counter>::default();
        r.register(
            "log_lines",
            "Lines read from nginx's logs, by log kind",
            lines.clone(),
        );
        let parse_errors = Family::<LogLabel, Counter>::default();
        r.register(
            "parse_errors",
            "Lines that could not be read as log records (counted, not diagnosed)",
            parse_errors.clone(),
        );
        let rotations = Family::<LogLabel, Counter>::default();
        r.register(
            "log_rotations",
            "Log rotations followed (rename or truncation)",
            rotations.clone(),
        );
        let truncations = Family::<LogLabel, Counter>::default();
        r.register(
            "log_truncations",
            "Logs truncated in place (logrotate copytruncate)",
            truncations.clone(),
        );
        let suspected_lost = Family::<LogLabel, Counter>::default();
        r.register(
            "log_lines_suspected_lost",
            "Lines that may have been lost between a copy and a truncation (an estimate that errs high)",
            suspected_lost.clone(),
        );
        let failures = Family::<FailureLabels, Counter>::default();
        r.register(
            "upstream_failures",
            "Error-log entries by failure class and upstream",
            failures.clone(),
        );
        let responses = Family::<ResponseLabels, Counter>::default();
        r.register(
            "responses",
            "5xx responses in the access log by upstream, status and origin (nginx, upstream, unknown)",
            responses.clone(),
        );
        let incidents_open = Family::<IncidentLabels, Gauge>::default();
        r.register(
            "incidents_open",
            "Open incidents by root cause and upstream",
            incidents_open.clone(),
        );
        let incidents = Family::<CauseLabel, Counter>::default();
        r.register(
            "incidents",
            "Incidents opened, by root cause",
            incidents.clone(),
        );
        let probes = Family::<ResultLabel, Counter>::default();
        r.register(
            "probes",
            "Targets probed, by whether they answered",
            probes.clone(),
        );
        Metrics {
            registry: Arc::new(r),
            lines,
            parse_errors,
            rotations,
            truncations,
            suspected_lost,
            failures,
            responses,
            incidents_open,
            incidents,
            probes,
            upstreams: Upstreams {
                known: config_upstreams(models),
                others: HashSet::new(),
                cap: max_series,
            },
            open_series: HashMap::new(),
        }
    }

    pub fn add(&mut self, c: &Counts) {
        for (class, up, n) in &c.failures {
            let upstream = self.upstreams.label(up);
            self.failures
                .get_or_create(&FailureLabels { class, upstream })
                .inc_by(*n);
        }
        for (up, status, origin, n) in &c.responses {
            let upstream = self.upstreams.label(up);
            self.responses
                .get_or_create(&ResponseLabels {
                    upstream,
                    status: *status,
                    origin: origin_label(*origin),
                })
                .inc_by(*n);
        }
        for (i, log) in ["error", "access"].into_iter().enumerate() {
            if c.parse_errors[i] > 0 {
                self.parse_errors
                    .get_or_create(&LogLabel { log })
                    .inc_by(c.parse_errors[i]);
            }
        }
        // The lines last: a scrape runs beside this and reads the lines' family first, so one
        // that sees a read's lines counted sees what they counted too (a CI run caught a scrape
        // between the lines and the failures of the last read).
        for (i, log) in ["error", "access"].into_iter().enumerate() {
            if c.lines[i] > 0 {
                self.lines
                    .get_or_create(&LogLabel { log })
                    .inc_by(c.lines[i]);
            }
        }
    }

    /// Makes the zero series exist from the start: a rate over a counter that appears only
    /// with its first increment misses that increment.
    pub fn declare(&mut self) {
        for log in ["error", "access"] {
            for f in [
                &self.lines,
                &self.parse_errors,
                &self.rotations,
                &self.truncations,
                &self.suspected_lost,
            ] {
                let _ = f.get_or_create(&LogLabel { log });
            }
        }
    }

    pub fn rotation(&self, log: &'static str) {
        self.rotations.get_or_create(&LogLabel { log }).inc();
    }

    pub fn truncation(&self, log: &'static str, suspected_lost: u64) {
        self.truncations.get_or_create(&LogLabel { log }).inc();
        self.suspected_lost
            .get_or_create(&LogLabel { log })
            .inc_by(suspected_lost);
    }

    pub fn suspected_lost(&self, log: &'static str, lines: u64) {
        self.suspected_lost
            .get_or_create(&LogLabel { log })
            .inc_by(lines);
    }

    pub fn incident_opened(&mut self, cause: &'static str) {
        self.incidents.get_or_create(&CauseLabel { cause }).inc();
    }

    /// The open incidents now, per (cause, upstream); series of closed ones go to 0.
    pub fn set_open(&mut self, open: &[Incident]) {
        let mut now: HashMap<IncidentLabels, i64> = HashMap::new();
        for i in open {
            let upstream = self.upstreams.label(&i.upstream);
            *now.entry(IncidentLabels {
                cause: i.cause,
                upstream,
            })
            .or_default() += 1;
        }
        for (labels, n) in &now {
            self.incidents_open.get_or_create(labels).set(*n);
        }
        for labels in self.open_series.keys() {
            if !now.contains_key(labels) {
                self.incidents_open.get_or_create(labels).set(0);
            }
        }
        self.open_series = now;
    }

    pub fn probed(&self, answered: bool) {
        let result = if answered { "answers" } else { "fails" };
        self.probes.get_or_create(&ResultLabel { result }).inc();
    }

    /// The OpenMetrics text of every metric.
    pub fn encode(&self) -> Result<String> {
        encode(&self.registry)
    }

    pub fn registry(&self) -> Arc<Registry> {
        self.registry.clone()
    }
}

fn encode(r: &Registry) -> Result<String> {
    let mut s = String::new();
    prometheus_client::encoding::text::encode(&mut s, r).context("encoding the metrics")?;
    Ok(s)
}

/// OpenMetrics text as Prometheus' text format 0.0.4, for scrapers that do not ask for
/// OpenMetrics (`curl`, `promtool check metrics`): a counter family is named with its
/// `_total` suffix there, and there is no `# EOF`.
fn to_prometheus_text(open_metrics: &str) -> String {
    let mut out = String::with_capacity(open_metrics.len());
    let mut help: Option<&str> = None;
    for line in open_metrics.lines() {
        if let Some(rest) = line.strip_prefix("# HELP ") {
            help = Some(rest);
            continue;
        }
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            let (name, kind) = rest.split_once(' ').unwrap_or((rest, "untyped"));
            let name = if kind == "counter" {
                format!("{name}_total")
            } else {
                name.to_string()
            };
            if let Some(h) = help.take() {
                let text = h.split_once(' ').map_or("", |(_, t)| t);
                out.push_str(&format!("# HELP {name} {text}\n"));
            }
            out.push_str(&format!("# TYPE {name} {kind}\n"));
            continue;
        }
        if line == "# EOF" || line.starts_with("# UNIT ") {
            continue;
        }
        out.push_str(line);
        out.push('\n');
    }
    out
}

/// Serves `GET /metrics` on `listen` from a thread of its own until the process ends.
pub fn serve(listen: &str, registry: Arc<Registry>) -> Result<std::net::SocketAddr> {
    let server = tiny_http::Server::http(listen)
        .map_err(|e| anyhow::anyhow!("--metrics-listen {listen}: {e}"))?;
    let addr = server
        .server_addr()
        .to_ip()
        .context("--metrics-listen: not an IP address")?;
    std::thread::Builder::new()
        .name("metrics".into())
        .spawn(move || {
            for req in server.incoming_requests() {
                // Prometheus asks for OpenMetrics in its Accept header; others get the classic
                // text format.
                let open_metrics = req.headers().iter().any(|h| {
                    h.field.equiv("Accept")
                        && h.value.as_str().contains("application/openmetrics-text")
                });
                let (code, body, kind) = match (req.method(), req.url()) {
                    (tiny_http::Method::Get, "/metrics") => match encode(&registry) {
                        Ok(b) if open_metrics => (
                            200,
                            b,
                            "application/openmetrics-text; version=1.0.0; charset=utf-8",
                        ),
                        Ok(b) => (
                            200,
                            to_prometheus_text(&b),
                            "text/plain; version=0.0.4; charset=utf-8",
                        ),
                        Err(e) => (500, format!("{e:#}\n"), "text/plain; charset=utf-8"),
                    },
                    (tiny_http::Method::Get, "/") => (
                        200,
                        "nginx-medic watch: metrics at /metrics\n".to_string(),
                        "text/plain; charset=utf-8",
                    ),
                    _ => (404, "not found\n".to_string(), "text/plain; charset=utf-8"),
                };
                let header = tiny_http::Header::from_bytes(&b"Content-Type"[..], kind.as_bytes())
                    .expect("a valid header");
                let _ = req.respond(
                    tiny_http::Response::from_string(body)
                        .with_status_code(code)
                        .with_header(header),
                );
            }
        })
        .context("starting the metrics thread")?;
    Ok(addr)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counters_take_their_total_name_in_the_classic_format() {
        let om = "# HELP x_lines Lines read.\n# TYPE x_lines counter\nx_lines_total{log=\"error\"} 3\n# HELP x_open Open.\n# TYPE x_open gauge\nx_open 1\n# EOF\n";
        assert_eq!(
            to_prometheus_text(om),
            "# HELP x_lines_total Lines read.\n# TYPE x_lines_total counter\nx_lines_total{log=\"error\"} 3\n# HELP x_open Open.\n# TYPE x_open gauge\nx_open 1\n"
        );
    }
}
