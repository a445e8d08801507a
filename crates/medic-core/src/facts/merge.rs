//! Adding up [`LogFacts`] read at different times: `watch` reads the logs a few lines at a
//! time and diagnoses the last minutes of them, so the facts of each read are folded into the
//! facts of the window.

use std::collections::{BTreeMap, HashMap};

use medic_parse::access_log::Origin;
use medic_parse::error_log::FailureClass;
use medic_parse::time::LogTime;

use super::diagnosis::{Access5xx, ClientClosedGroup, LogFacts, LogGroup, LogLine};

/// How many reloads a window keeps (as the log scan does).
const MAX_RELOADS: usize = 256;
/// The top clients kept per group.
const TOP_CLIENTS: usize = 5;

impl LogFacts {
    /// Folds `o`, read after `self`, into `self`: counts add up, first and last entries and
    /// their lines are the earliest and the latest, minutes add up. Builds an index of `self`
    /// for the call; [`Merged`] keeps one across calls.
    pub fn absorb(&mut self, o: &LogFacts) {
        let mut m = Merged::from(std::mem::take(self));
        m.absorb(o, 0);
        *self = m.facts;
    }
}

type GroupKey = (FailureClass, Option<String>, Option<String>);
type FiveKey = (Option<String>, u16, Origin);

/// [`LogFacts`] that many reads are folded into, with the index that finds a group in O(1):
/// `watch` folds every read into its window, and a busy window holds thousands of groups.
///
/// Each entry remembers when it was last added to ([`Merged::absorb`]'s `now`), so entries
/// nothing added to for a while can be forgotten ([`Merged::forget_before`]): one copy of the
/// window, however long `watch` runs.
#[derive(Clone, Debug, Default)]
pub struct Merged {
    pub facts: LogFacts,
    groups: HashMap<GroupKey, usize>,
    fives: HashMap<FiveKey, usize>,
    closed: HashMap<Option<String>, usize>,
    /// When each group, 5xx cell and 499 cell was last added to.
    touched: (Vec<i64>, Vec<i64>, Vec<i64>),
}

/// Minutes a group keeps (newest first out of it): the findings' timelines show the last hour.
const MAX_MINUTES: usize = 60;

impl From<LogFacts> for Merged {
    fn from(facts: LogFacts) -> Merged {
        let groups = (facts.groups.iter().enumerate())
            .map(|(i, g)| ((g.class, g.upstream.clone(), g.detail.clone()), i))
            .collect();
        let fives = (facts.access_5xx.iter().enumerate())
            .map(|(i, a)| ((a.upstream.clone(), a.status, a.origin), i))
            .collect();
        let closed = (facts.client_closed.iter().enumerate())
            .map(|(i, c)| (c.upstream.clone(), i))
            .collect();
        let touched = (
            vec![0; facts.groups.len()],
            vec![0; facts.access_5xx.len()],
            vec![0; facts.client_closed.len()],
        );
        Merged {
            facts,
            groups,
            fives,
            closed,
            touched,
        }
    }
}

impl Merged {
    /// Folds `o`, read after what is here, in (see [`LogFacts::absorb`]); `now` is when (any
    /// clock: [`Merged::forget_before`] compares with it).
    pub fn absorb(&mut self, o: &LogFacts, now: i64) {
        let f = &mut self.facts;
        let (tg, tf, tc) = &mut self.touched;
        for g in &o.groups {
            let key = (g.class, g.upstream.clone(), g.detail.clone());
            match self.groups.get(&key) {
                Some(&i) => {
                    absorb_group(&mut f.groups[i], g);
                    tg[i] = now;
                }
                None => {
                    self.groups.insert(key, f.groups.len());
                    f.groups.push(g.clone());
                    tg.push(now);
                }
            }
        }
        for a in &o.access_5xx {
            let key = (a.upstream.clone(), a.status, a.origin);
            match self.fives.get(&key) {
                Some(&i) => {
                    absorb_5xx(&mut f.access_5xx[i], a);
                    tf[i] = now;
                }
                None => {
                    self.fives.insert(key, f.access_5xx.len());
                    f.access_5xx.push(a.clone());
                    tf.push(now);
                }
            }
        }
        for c in &o.client_closed {
            match self.closed.get(&c.upstream) {
                Some(&i) => {
                    absorb_closed(&mut f.client_closed[i], c);
                    tc[i] = now;
                }
                None => {
                    tc.push(now);
                    self.closed
                        .insert(c.upstream.clone(), f.client_closed.len());
                    f.client_closed.push(c.clone());
                }
            }
        }
        f.last_reload = f.last_reload.max(o.last_reload);
        f.reloads.extend_from_slice(&o.reloads);
        if f.reloads.len() > MAX_RELOADS {
            f.reloads.drain(..f.reloads.len() - MAX_RELOADS);
        }
        f.rotations.extend(o.rotations.iter().cloned());
        add_minutes(&mut f.failures_per_minute, &o.failures_per_minute);
        for (mine, theirs) in [
            (&mut f.error_logs, &o.error_logs),
            (&mut f.access_logs, &o.access_logs),
        ] {
            for p in theirs {
                if !mine.contains(p) {
                    mine.push(p.clone());
                }
            }
        }
    }
}

impl Merged {
    /// Forgets the entries nothing was added to since `cutoff`, the groups beyond the
    /// `max_groups` with the most entries, and the oldest minutes of every group past
    /// [`MAX_MINUTES`]; says how many groups went for the cap, or `None` when nothing was
    /// forgotten.
    pub fn forget_before(&mut self, cutoff: i64, max_groups: usize) -> Option<usize> {
        let f = &mut self.facts;
        let (tg, tf, tc) = &mut self.touched;
        let before = (f.groups.len(), f.access_5xx.len(), f.client_closed.len());
        keep_touched(&mut f.groups, tg, cutoff);
        let mut capped = 0;
        if f.groups.len() > max_groups {
            // The smallest groups go: at thousands of failing targets at once, the biggest
            // are where the clients are hurt.
            let mut counts: Vec<u64> = f.groups.iter().map(|g| g.count).collect();
            let (_, nth, _) = counts.select_nth_unstable_by(max_groups - 1, |a, b| b.cmp(a));
            let least = *nth;
            let mut room_at_least =
                max_groups - f.groups.iter().filter(|g| g.count > least).count();
            let keep: Vec<bool> = f
                .groups
                .iter()
                .map(|g| {
                    g.count > least
                        || (g.count == least && room_at_least > 0 && {
                            room_at_least -= 1;
                            true
                        })
                })
                .collect();
            capped = keep.iter().filter(|k| !**k).count();
            let mut it = keep.iter();
            f.groups.retain(|_| *it.next().unwrap_or(&true));
            let mut it = keep.iter();
            tg.retain(|_| *it.next().unwrap_or(&true));
        }
        keep_touched(&mut f.access_5xx, tf, cutoff);
        keep_touched(&mut f.client_closed, tc, cutoff);
        for g in &mut f.groups {
            if g.minutes.len() > MAX_MINUTES {
                g.minutes.drain(..g.minutes.len() - MAX_MINUTES);
            }
        }
        if f.failures_per_minute.len() > MAX_MINUTES {
            let cut = f.failures_per_minute.len() - MAX_MINUTES;
            f.failures_per_minute.drain(..cut);
        }
        let forgot = before != (f.groups.len(), f.access_5xx.len(), f.client_closed.len());
        if !forgot {
            return None;
        }
        let touched = std::mem::take(&mut self.touched);
        *self = Merged::from(std::mem::take(&mut self.facts));
        self.touched = touched;
        Some(capped)
    }
}

/// Keeps the items of `v` whose `touched` is at least `cutoff` (both in step).
fn keep_touched<T>(v: &mut Vec<T>, touched: &mut Vec<i64>, cutoff: i64) {
    let mut keep = touched.iter().map(|t| *t >= cutoff);
    v.retain(|_| keep.next().unwrap_or(true));
    touched.retain(|t| *t >= cutoff);
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
    add_minutes(&mut s.minutes, &g.minutes);
    // Amortised: a group read for a day keeps its last hour (see [`Merged::forget_before`]).
    if s.minutes.len() > 2 * MAX_MINUTES {
        s.minutes.drain(..s.minutes.len() - MAX_MINUTES);
    }
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
    add_minutes(&mut s.minutes, &a.minutes);
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

/// Adds the (minute, count) series `b` into `a`, both in time order. Reads come in time
/// order, so `b` usually starts at or after `a`'s last minute: then it is an append.
fn add_minutes<N: Copy + std::ops::AddAssign>(a: &mut Vec<(LogTime, N)>, b: &[(LogTime, N)]) {
    let Some(first) = b.first() else {
        return;
    };
    if a.last().is_none_or(|l| l.0 <= first.0) {
        let mut rest = b;
        if let (Some(l), Some(f)) = (a.last_mut(), b.first()) {
            if l.0 == f.0 {
                l.1 += f.1;
                rest = &b[1..];
            }
        }
        a.extend_from_slice(rest);
        return;
    }
    let mut out: Vec<(LogTime, N)> = Vec::with_capacity(a.len() + b.len());
    let (mut i, mut j) = (0, 0);
    while i < a.len() || j < b.len() {
        let next = match (a.get(i), b.get(j)) {
            (Some(x), Some(y)) if x.0 == y.0 => {
                i += 1;
                j += 1;
                let mut n = x.1;
                n += y.1;
                (x.0, n)
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
    *a = out;
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
    fn entries_nothing_added_to_are_forgotten() {
        let mut m = Merged::default();
        let mut other = group(60, 70, 1, "o");
        other.upstream = Some("127.0.0.1:4000".into());
        m.absorb(
            &LogFacts {
                groups: vec![group(60, 70, 3, "a"), other],
                ..LogFacts::default()
            },
            100,
        );
        m.absorb(
            &LogFacts {
                groups: vec![group(100, 130, 2, "b")],
                ..LogFacts::default()
            },
            200,
        );
        assert_eq!(m.forget_before(100, 10), None);
        assert_eq!(m.forget_before(150, 10), Some(0));
        assert_eq!(m.facts.groups.len(), 1);
        assert_eq!(m.facts.groups[0].count, 5);
        // The index still finds what is left.
        m.absorb(
            &LogFacts {
                groups: vec![group(140, 140, 1, "c")],
                ..LogFacts::default()
            },
            300,
        );
        assert_eq!(m.facts.groups.len(), 1);
        assert_eq!(m.facts.groups[0].count, 6);
        assert_eq!(m.forget_before(301, 10), Some(0));
        assert!(m.facts.groups.is_empty());
    }

    #[test]
    fn past_the_cap_the_smallest_groups_go() {
        let mut m = Merged::default();
        let groups = (1..=5u64)
            .map(|n| {
                let mut g = group(60, 70, n, "g");
                g.upstream = Some(format!("127.0.0.1:{}", 3000 + n));
                g
            })
            .collect();
        m.absorb(
            &LogFacts {
                groups,
                ..LogFacts::default()
            },
            100,
        );
        assert_eq!(m.forget_before(0, 2), Some(3));
        let mut left: Vec<u64> = m.facts.groups.iter().map(|g| g.count).collect();
        left.sort();
        assert_eq!(left, vec![4, 5]);
    }

    #[test]
    fn minutes_merge_in_order() {
        let mut a = vec![(LogTime(0), 1u32), (LogTime(120), 2)];
        let b = [(LogTime(60), 4u32), (LogTime(120), 3), (LogTime(180), 1)];
        add_minutes(&mut a, &b);
        let mut appended = vec![(LogTime(0), 1u32), (LogTime(60), 2)];
        add_minutes(&mut appended, &[(LogTime(60), 1), (LogTime(120), 5)]);
        assert_eq!(
            appended,
            vec![(LogTime(0), 1), (LogTime(60), 3), (LogTime(120), 5)]
        );
        assert_eq!(
            a,
            vec![
                (LogTime(0), 1),
                (LogTime(60), 4),
                (LogTime(120), 5),
                (LogTime(180), 1)
            ]
        );
    }
}
