//! The serialisable log summary (`nginx-medic logs --format json`, schema in `docs/logs-json.md`).

use std::collections::BTreeMap;

use medic_parse::error_log::FailureClass;
use medic_parse::input::LineLoc;
use medic_parse::time::LogTime;
use serde::Serialize;

use super::{AccessSummary, ErrorSummary, Samples, Window};
use crate::topk::TopK;

/// Version of this JSON layout; bumped only on incompatible changes.
pub const SCHEMA: u32 = 1;
const TOP: usize = 10;

#[derive(Debug, Serialize)]
pub struct LogReport {
    pub schema: u32,
    pub kind: &'static str,
    pub tool: Tool,
    pub window: WindowReport,
    pub inputs: Vec<InputReport>,
    pub errors: Vec<InputProblem>,
    pub error_log: Option<ErrorLogReport>,
    pub access_log: Option<AccessLogReport>,
    pub join: Option<JoinReport>,
}

#[derive(Debug, Serialize)]
pub struct Tool {
    pub name: &'static str,
    pub version: &'static str,
}

#[derive(Debug, Serialize)]
pub struct WindowReport {
    pub since: Option<String>,
    pub until: Option<String>,
}

#[derive(Debug, Serialize, Clone)]
pub struct InputReport {
    pub path: String,
    pub kind: &'static str,
    pub bytes: u64,
    pub compressed: bool,
    pub lines: u64,
    /// Set when reading stopped part-way (what came before was read), or when the file changed
    /// while it was read (truncated by `copytruncate`: what was read counts).
    pub error: Option<String>,
}

#[derive(Debug, Serialize, Clone)]
pub struct InputProblem {
    pub path: String,
    pub error: String,
}

#[derive(Debug, Serialize)]
pub struct Evidence {
    pub source: String,
    pub text: String,
}

#[derive(Debug, Serialize)]
pub struct TopItem {
    pub value: String,
    pub count: u64,
}

#[derive(Debug, Serialize)]
pub struct Unparsed {
    pub count: u64,
    pub samples: Vec<UnparsedSample>,
}

#[derive(Debug, Serialize)]
pub struct UnparsedSample {
    pub source: String,
    pub reason: String,
    pub text: String,
}

#[derive(Debug, Serialize)]
pub struct ErrorLogReport {
    pub lines: u64,
    pub entries: u64,
    pub outside_window: u64,
    pub levels: BTreeMap<&'static str, u64>,
    pub first_seen: Option<String>,
    pub last_seen: Option<String>,
    pub classes: Vec<ClassReport>,
    pub by_upstream: Vec<CellReport>,
    pub per_minute: Vec<ErrorMinute>,
    pub unparsed: Unparsed,
    /// Entries counted without their upstream: their class named more than
    /// [`MAX_CELLS_PER_CLASS`](super::error_summary::MAX_CELLS_PER_CLASS) upstreams.
    #[serde(skip_serializing_if = "is_zero")]
    pub without_upstream: u64,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

#[derive(Debug, Serialize)]
pub struct ClassReport {
    pub class: &'static str,
    /// The status clients usually get for it (`causes.md` §1), when fixed.
    pub status: Option<u16>,
    pub failure: bool,
    pub count: u64,
    pub upstreams: usize,
    pub first_seen: String,
    pub last_seen: String,
    pub top_requests: Vec<TopItem>,
    pub top_clients: Vec<TopItem>,
    /// Top counts are lower bounds; each may be short by at most this much.
    pub top_max_error: u64,
}

#[derive(Debug, Serialize)]
pub struct CellReport {
    pub class: &'static str,
    pub upstream: String,
    pub count: u64,
    pub first_seen: String,
    pub last_seen: String,
    pub example: Evidence,
}

#[derive(Debug, Serialize)]
pub struct ErrorMinute {
    pub minute: String,
    pub failures: u64,
    pub classes: BTreeMap<&'static str, u64>,
}

#[derive(Debug, Serialize)]
pub struct AccessLogReport {
    pub format: String,
    /// Where the format came from (given, recognised from the first lines, or the default).
    pub format_note: Option<String>,
    pub lines: u64,
    pub records: u64,
    pub outside_window: u64,
    pub first_seen: Option<String>,
    pub last_seen: Option<String>,
    pub status: BTreeMap<&'static str, u64>,
    pub status_codes: BTreeMap<String, u64>,
    pub errors_5xx: Vec<StatusCellReport>,
    pub per_minute: Vec<AccessMinute>,
    pub client_closed: Vec<ClientClosedReport>,
    pub top_requests_5xx: Vec<TopItem>,
    pub top_clients_5xx: Vec<TopItem>,
    pub unparsed: Unparsed,
}

#[derive(Debug, Serialize)]
pub struct StatusCellReport {
    pub upstream: String,
    pub status: u16,
    pub origin: &'static str,
    pub count: u64,
    pub first_seen: String,
    pub last_seen: String,
    pub example: String,
}

#[derive(Debug, Serialize)]
pub struct AccessMinute {
    pub minute: String,
    pub total: u64,
    pub by: Vec<MinuteCell>,
}

#[derive(Debug, Serialize)]
pub struct MinuteCell {
    pub upstream: String,
    pub status: u16,
    pub origin: &'static str,
    pub count: u64,
}

#[derive(Debug, Serialize)]
pub struct ClientClosedReport {
    pub upstream: String,
    pub count: u64,
    pub mean_upstream_response_time: Option<f64>,
    pub max_upstream_response_time: Option<f64>,
}

#[derive(Debug, Serialize)]
pub struct JoinReport {
    pub indexed_failures: usize,
    /// Failures left out of the index because it was full: the join is partial.
    pub not_indexed: u64,
    pub matched: Vec<JoinCell>,
    pub unexplained_5xx: Vec<UnexplainedCell>,
}

#[derive(Debug, Serialize)]
pub struct JoinCell {
    pub class: &'static str,
    pub status: u16,
    pub count: u64,
}

#[derive(Debug, Serialize)]
pub struct UnexplainedCell {
    pub status: u16,
    pub origin: &'static str,
    pub count: u64,
}

fn lossy(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

fn top(t: &TopK) -> Vec<TopItem> {
    t.top(TOP)
        .into_iter()
        .map(|(v, count)| TopItem {
            value: lossy(v),
            count,
        })
        .collect()
}

fn unparsed(s: &Samples, source: &dyn Fn(LineLoc) -> String) -> Unparsed {
    Unparsed {
        count: s.count,
        samples: s
            .samples
            .iter()
            .map(|(loc, reason, text)| UnparsedSample {
                source: source(*loc),
                reason: reason.clone(),
                text: lossy(text),
            })
            .collect(),
    }
}

fn window(w: &Window) -> WindowReport {
    WindowReport {
        since: w.since.map(|t| t.to_string()),
        until: w.until.map(|t| t.to_string()),
    }
}

impl LogReport {
    pub fn new(
        version: &'static str,
        win: &Window,
        inputs: Vec<InputReport>,
        errors: Vec<InputProblem>,
        err: Option<&ErrorSummary>,
        acc: Option<&AccessSummary<'_>>,
        source: &dyn Fn(LineLoc) -> String,
    ) -> LogReport {
        let join = match (err.and_then(|e| e.join.as_ref()), acc) {
            (Some(j), Some(a)) => {
                let mut matched: Vec<JoinCell> = a
                    .joined
                    .iter()
                    .map(|((c, s), n)| JoinCell {
                        class: c.id(),
                        status: *s,
                        count: *n,
                    })
                    .collect();
                matched.sort_by(|x, y| {
                    y.count
                        .cmp(&x.count)
                        .then(x.class.cmp(y.class))
                        .then(x.status.cmp(&y.status))
                });
                let mut unexplained: Vec<UnexplainedCell> = a
                    .unexplained_5xx
                    .iter()
                    .map(|((s, o), n)| UnexplainedCell {
                        status: *s,
                        origin: o.as_str(),
                        count: *n,
                    })
                    .collect();
                unexplained.sort_by(|x, y| y.count.cmp(&x.count).then(x.status.cmp(&y.status)));
                Some(JoinReport {
                    indexed_failures: j.len(),
                    not_indexed: j.dropped,
                    matched,
                    unexplained_5xx: unexplained,
                })
            }
            _ => None,
        };
        LogReport {
            schema: SCHEMA,
            kind: "logs",
            tool: Tool {
                name: "nginx-medic",
                version,
            },
            window: window(win),
            inputs,
            errors,
            error_log: err.map(|e| error_report(e, source)),
            access_log: acc.map(|a| access_report(a, source)),
            join,
        }
    }
}

fn error_report(e: &ErrorSummary, source: &dyn Fn(LineLoc) -> String) -> ErrorLogReport {
    let mut classes = Vec::new();
    // Exact: doubling left room for 8,192 rows of 7,393 at the scan's peak (1.2 MB).
    let mut cells = Vec::with_capacity(e.cells.iter().map(|m| m.len()).sum());
    for class in FailureClass::ALL {
        let map = &e.cells[class as usize];
        if map.is_empty() {
            continue;
        }
        let count = map.values().map(|c| c.count).sum();
        let first = map.values().map(|c| c.first).min().unwrap_or_default();
        let last = map.values().map(|c| c.last).max().unwrap_or_default();
        let tops = e.tops[class as usize].as_ref();
        classes.push(ClassReport {
            class: class.id(),
            status: class.usual_status(),
            failure: class.is_failure(),
            count,
            upstreams: map.len(),
            first_seen: first.to_string(),
            last_seen: last.to_string(),
            top_requests: tops.map(|t| top(&t.requests)).unwrap_or_default(),
            top_clients: tops.map(|t| top(&t.clients)).unwrap_or_default(),
            top_max_error: tops.map_or(0, |t| t.requests.max_error().max(t.clients.max_error())),
        });
        for c in map.values() {
            cells.push(CellReport {
                class: class.id(),
                upstream: lossy(&c.upstream),
                count: c.count,
                first_seen: c.first.to_string(),
                last_seen: c.last.to_string(),
                example: Evidence {
                    source: source(c.example.0),
                    text: lossy(c.example.1.bytes()),
                },
            });
        }
    }
    // Failures first, the biggest first; `other` and app stderr after them.
    classes.sort_by(|a, b| {
        b.failure
            .cmp(&a.failure)
            .then(b.count.cmp(&a.count))
            .then(a.class.cmp(b.class))
    });
    // Sorted through their indices: a cell is a large value, and moving thousands of them
    // while sorting cost more than comparing them.
    let mut order: Vec<usize> = (0..cells.len()).collect();
    order.sort_unstable_by(|&i, &j| {
        let (a, b) = (&cells[i], &cells[j]);
        b.count
            .cmp(&a.count)
            .then(a.class.cmp(b.class))
            .then(a.upstream.cmp(&b.upstream))
            // Cells of one upstream told apart by their detail (two TLS verify errors) tie so
            // far: the earliest first, not the hash map's order.
            .then(a.first_seen.cmp(&b.first_seen))
            .then(a.example.source.cmp(&b.example.source))
            // As a stable sort would leave them.
            .then(i.cmp(&j))
    });
    // Each cell moved to its place by swaps, following `to` (where the cell now at `i` goes):
    // no second list of cells (a megabyte at the peak of a 1 GiB scan).
    let mut to = vec![0; order.len()];
    for (place, &i) in order.iter().enumerate() {
        to[i] = place;
    }
    for i in 0..cells.len() {
        while to[i] != i {
            let j = to[i];
            cells.swap(i, j);
            to.swap(i, j);
        }
    }
    let mut minutes: Vec<(&i64, &[u32; FailureClass::COUNT])> = e.minutes.iter().collect();
    minutes.sort_by_key(|(m, _)| **m);
    let per_minute = minutes
        .into_iter()
        .filter_map(|(m, counts)| {
            let classes: BTreeMap<&'static str, u64> = FailureClass::ALL
                .into_iter()
                .filter(|c| c.is_failure() && counts[*c as usize] > 0)
                .map(|c| (c.id(), u64::from(counts[c as usize])))
                .collect();
            let failures = classes.values().sum();
            (failures > 0).then(|| ErrorMinute {
                minute: LogTime(m * 60).minute_string(),
                failures,
                classes,
            })
        })
        .collect();
    ErrorLogReport {
        lines: e.lines,
        entries: e.entries,
        outside_window: e.outside_window,
        levels: e
            .level_counts()
            .filter(|(_, n)| *n > 0)
            .map(|(l, n)| (l.as_str(), n))
            .collect(),
        first_seen: e.first.map(|t| t.to_string()),
        last_seen: e.last.map(|t| t.to_string()),
        classes,
        by_upstream: cells,
        per_minute,
        unparsed: unparsed(&e.unparsed, source),
        without_upstream: e.overflow,
    }
}

fn access_report(a: &AccessSummary<'_>, source: &dyn Fn(LineLoc) -> String) -> AccessLogReport {
    const NAMES: [&str; 6] = ["invalid", "1xx", "2xx", "3xx", "4xx", "5xx"];
    let status = NAMES
        .iter()
        .zip(a.status_classes)
        .filter(|(_, n)| *n > 0)
        .map(|(k, n)| (*k, n))
        .collect();
    let status_codes = a
        .status_codes
        .iter()
        .enumerate()
        .filter(|(_, n)| **n > 0)
        .map(|(i, n)| ((400 + i).to_string(), *n))
        .collect();
    let mut errors: Vec<StatusCellReport> = a
        .by_upstream
        .iter()
        .map(|((up, st, o), c)| StatusCellReport {
            upstream: lossy(up),
            status: *st,
            origin: o.as_str(),
            count: c.count,
            first_seen: c.first.to_string(),
            last_seen: c.last.to_string(),
            example: source(c.example),
        })
        .collect();
    errors.sort_by(|x, y| {
        y.count
            .cmp(&x.count)
            .then(x.upstream.cmp(&y.upstream))
            .then(x.status.cmp(&y.status))
    });
    let mut by_minute: BTreeMap<i64, Vec<MinuteCell>> = BTreeMap::new();
    for ((m, up, st, o), n) in &a.per_minute {
        by_minute.entry(*m).or_default().push(MinuteCell {
            upstream: lossy(up),
            status: *st,
            origin: o.as_str(),
            count: *n,
        });
    }
    let per_minute = by_minute
        .into_iter()
        .map(|(m, mut by)| {
            by.sort_by(|x, y| {
                y.count
                    .cmp(&x.count)
                    .then(x.upstream.cmp(&y.upstream))
                    .then(x.status.cmp(&y.status))
            });
            AccessMinute {
                minute: LogTime(m).minute_string(),
                total: by.iter().map(|c| c.count).sum(),
                by,
            }
        })
        .collect();
    let mut client_closed: Vec<ClientClosedReport> = a
        .client_closed
        .iter()
        .map(|(up, c)| ClientClosedReport {
            upstream: lossy(up),
            count: c.count,
            mean_upstream_response_time: (c.urt_n > 0)
                .then(|| (c.urt_sum / c.urt_n as f64 * 1000.0).round() / 1000.0),
            max_upstream_response_time: (c.urt_n > 0).then_some(c.urt_max),
        })
        .collect();
    client_closed.sort_by(|x, y| y.count.cmp(&x.count).then(x.upstream.cmp(&y.upstream)));
    AccessLogReport {
        format: a.format().source().to_string(),
        format_note: None,
        lines: a.lines,
        records: a.records,
        outside_window: a.outside_window,
        first_seen: a.first.map(|t| t.to_string()),
        last_seen: a.last.map(|t| t.to_string()),
        status,
        status_codes,
        errors_5xx: errors,
        per_minute,
        client_closed,
        top_requests_5xx: top(&a.top_requests_5xx),
        top_clients_5xx: top(&a.top_clients_5xx),
        unparsed: unparsed(&a.unparsed, source),
    }
}
