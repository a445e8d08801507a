//! Adding up [`LogFacts`] read at different times: `watch` reads the logs a few lines at a
//! time and diagnoses the last minutes of them, so the facts of each read are folded into the
//! facts of the window.

use std::collections::{BTreeMap, HashMap};

use medic_parse::time::LogTime;

use super::diagnosis::{Access5xx, ClientClosedGroup, LogFacts, LogGroup, LogLine};

/// How many reloads a window keeps (as the log scan does).
const MAX_RELOADS: usize = 256;
/// The top clients kept per group.
const TOP_CLIENTS: usize = 5;

impl LogFacts {
    /// Folds `o`, read after `self`, into `self`: counts add up, first and last entries and
    /// their lines are the earliest and the latest, minutes add up.
    pub fn absorb(&mut self, o: &LogFacts) {
        // Indexed: a window of busy minutes holds thousands of (class, upstream) groups.
        let key = |g: &LogGroup| (g.class, g.upstream.clone(), g.detail.clone());
        let mut at: HashMap<_, usize> = (self.groups.iter().enumerate())
            .map(|(i, g)| (key(g), i))
            .collect();
        for g in &o.groups {
            match at.get(&key(g)) {
                Some(&i) => absorb_group(&mut self.groups[i], g),
                None => {
                    at.insert(key(g), self.groups.len());
                    self.groups.push(g.clone());
                }
            }
        }
        let key = |a: &Access5xx| (a.upstream.clone(), a.status, a.origin);
        let mut at: HashMap<_, usize> = (self.access_5xx.iter().enumerate())
            .map(|(i, a)| (key(a), i))
            .collect();
        for a in &o.access_5xx {
            match at.get(&key(a)) {
                Some(&i) => absorb_5xx(&mut self.access_5xx[i], a),
                None => {
                    at.insert(key(a), self.access_5xx.len());
                    self.access_5xx.push(a.clone());
                }
            }
        }
        let mut at: HashMap<Option<String>, usize> = (self.client_closed.iter().enumerate())
            .map(|(i, c)| (c.upstream.clone(), i))
            .collect();
        for c in &o.client_closed {
            match at.get(&c.upstream) {
                Some(&i) => absorb_closed(&mut self.client_closed[i], c),
                None => {
                    at.insert(c.upstream.clone(), self.client_closed.len());
                    self.client_closed.push(c.clone());
                }
            }
        }
        self.last_reload = self.last_reload.max(o.last_reload);
        self.reloads.extend_from_slice(&o.reloads);
        if self.reloads.len() > MAX_RELOADS {
            self.reloads.drain(..self.reloads.len() - MAX_RELOADS);
        }
        self.rotations.extend(o.rotations.iter().cloned());
        self.failures_per_minute = add_minutes(&self.failures_per_minute, &o.failures_per_minute);
        for (mine, theirs) in [
            (&mut self.error_logs, &o.error_logs),
            (&mut self.access_logs, &o.access_logs),
        ] {
            for p in theirs {
                if !mine.contains(p) {
                    mine.push(p.clone());
                }
            }
        }
    }
}

fn absorb_group(s: &mut LogGroup, g: &LogGroup) {
    s.count += g.count;
    if g.first < s.first {
        s.first = g.first;
        s.first_line = g.first_line.clone();
    }
    if g.last >= s.last {
        s.last = g.last;
        s.last_line = Some(later_line(g));
    }
    s.minutes = add_minutes(&s.minutes, &g.minutes);
    let mut clients: BTreeMap<&str, u64> = BTreeMap::new();
    for (c, n) in s.top_clients.iter().chain(&g.top_clients) {
        *clients.entry(c).or_default() += n;
    }
    let mut clients: Vec<(String, u64)> = clients
        .into_iter()
        .map(|(c, n)| (c.to_string(), n))
        .collect();
    clients.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    clients.truncate(TOP_CLIENTS);
    s.top_clients = clients;
    match (&mut s.impact, &g.impact) {
        (Some(i), Some(o)) => i.add(o),
        (None, Some(o)) => s.impact = Some(o.clone()),
        _ => {}
    }
}

/// The group's latest line: its last line, or its only one.
fn later_line(g: &LogGroup) -> LogLine {
    g.last_line.clone().unwrap_or_else(|| g.first_line.clone())
}

fn absorb_5xx(s: &mut Access5xx, a: &Access5xx) {
    s.count += a.count;
    s.first = s.first.min(a.first);
    if a.last >= s.last {
        s.last = a.last;
        s.example = a.example.clone();
    }
    s.minutes = add_minutes(&s.minutes, &a.minutes);
}

fn absorb_closed(s: &mut ClientClosedGroup, c: &ClientClosedGroup) {
    let waits = |g: &ClientClosedGroup| g.mean_wait.map(|m| (m, g.count));
    s.mean_wait = match (waits(s), waits(c)) {
        (Some((a, n)), Some((b, m))) if n + m > 0 => {
            Some((a * n as f64 + b * m as f64) / (n + m) as f64)
        }
        (a, b) => a.or(b).map(|(m, _)| m),
    };
    s.max_wait = match (s.max_wait, c.max_wait) {
        (Some(a), Some(b)) => Some(a.max(b)),
        (a, b) => a.or(b),
    };
    s.count += c.count;
    s.first = match (s.first, c.first) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    };
    if c.last >= s.last {
        s.last = c.last;
        if c.example.is_some() {
            s.example = c.example.clone();
        }
    }
}

/// Two (minute, count) series in time order, added up.
fn add_minutes<N: Copy + std::ops::Add<Output = N>>(
    a: &[(LogTime, N)],
    b: &[(LogTime, N)],
) -> Vec<(LogTime, N)> {
    let mut out: Vec<(LogTime, N)> = Vec::with_capacity(a.len() + b.len());
    let (mut i, mut j) = (0, 0);
    while i < a.len() || j < b.len() {
        let next = match (a.get(i), b.get(j)) {
            (Some(x), Some(y)) if x.0 == y.0 => {
                i += 1;
                j += 1;
                (x.0, x.1 + y.1)
            }
            (Some(x), Some(y)) if x.0 < y.0 => {
                i += 1;
                *x
            }
            (Some(x), None) => {
                i += 1;
                *x
            }
            (_, Some(y)) => {
                j += 1;
                *y
            }
            (None, None) => unreachable!("the loop runs while one has more"),
        };
        out.push(next);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::facts::Impact;
    use medic_parse::error_log::FailureClass;

    fn line(s: &str) -> LogLine {
        LogLine {
            source: s.to_string(),
            text: format!("text of {s}"),
        }
    }

    fn group(first: i64, last: i64, count: u64, src: &str) -> LogGroup {
        LogGroup {
            class: FailureClass::ConnectRefused,
            upstream: Some("127.0.0.1:3000".into()),
            detail: None,
            count,
            first: LogTime(first),
            last: LogTime(last),
            first_line: line(&format!("{src}:first")),
            last_line: Some(line(&format!("{src}:last"))),
            minutes: vec![(LogTime(first / 60 * 60), count as u32)],
            top_clients: vec![("10.0.0.1".into(), count)],
            impact: Some(Impact {
                requests: count,
                client_errors: count,
                ..Impact::default()
            }),
        }
    }

    #[test]
    fn groups_add_up_and_keep_the_earliest_and_latest_lines() {
        let mut w = LogFacts {
            groups: vec![group(60, 70, 3, "a")],
            error_logs: vec!["e.log".into()],
            ..LogFacts::default()
        };
        let tick = LogFacts {
            groups: vec![group(100, 130, 2, "b")],
            error_logs: vec!["e.log".into()],
            last_reload: Some(LogTime(90)),
            ..LogFacts::default()
        };
        w.absorb(&tick);
        assert_eq!(w.groups.len(), 1);
        let g = &w.groups[0];
        assert_eq!(g.count, 5);
        assert_eq!((g.first, g.last), (LogTime(60), LogTime(130)));
        assert_eq!(g.first_line.source, "a:first");
        assert_eq!(g.last_line.as_ref().unwrap().source, "b:last");
        assert_eq!(g.minutes, vec![(LogTime(60), 5)]);
        assert_eq!(g.top_clients, vec![("10.0.0.1".to_string(), 5)]);
        assert_eq!(g.impact.as_ref().unwrap().client_errors, 5);
        assert_eq!(w.last_reload, Some(LogTime(90)));
        assert_eq!(w.error_logs, vec!["e.log".to_string()]);
    }

    #[test]
    fn minutes_merge_in_order() {
        let a = [(LogTime(0), 1u32), (LogTime(120), 2)];
        let b = [(LogTime(60), 4u32), (LogTime(120), 3), (LogTime(180), 1)];
        assert_eq!(
            add_minutes(&a, &b),
            vec![
                (LogTime(0), 1),
                (LogTime(60), 4),
                (LogTime(120), 5),
                (LogTime(180), 1)
            ]
        );
    }
}
