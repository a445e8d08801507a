//! The timeline: failures per time bucket, stacked by series (a cause, a failure class), with
//! markers for restarts, reloads, OOM kills and log rotations; drawn as SVG on the server.
//!
//! Bounded whatever the window: at most [`MAX_BUCKETS`] buckets (a minute each up to 6 hours,
//! then 5, 15, 60 minutes ...), one `rect` per (series, bucket) with entries, [`MAX_SERIES`]
//! series (the rest are one "other" series), [`MAX_MARKERS`] markers drawn.

use std::fmt::Write as _;

use medic_parse::time::LogTime;

use super::events::{Marker, MarkerKind};
use super::{esc, plural};

/// Bucket sizes in minutes, smallest first.
const BUCKETS: [i64; 8] = [1, 5, 15, 60, 180, 360, 720, 1440];
pub const MAX_BUCKETS: i64 = 360;
/// Colours of the stylesheet (`.s0` ... `.s8`); `.s9` is "other".
pub const MAX_SERIES: usize = 9;
pub const MAX_MARKERS: usize = 300;
/// The narrowest chart, in buckets: a burst of one minute still reads as a moment in time.
const MIN_BUCKETS: i64 = 15;

/// One stacked series: a name and its entries per minute.
#[derive(Clone, Debug)]
pub struct Series {
    pub name: String,
    /// (minute start, entries), any order.
    pub minutes: Vec<(LogTime, u64)>,
}

/// What a timeline draws.
#[derive(Debug, Default)]
pub struct Timeline<'a> {
    /// What the bars count (`failures by cause`).
    pub what: &'a str,
    pub series: Vec<Series>,
    /// Every failure per minute, drawn as a line when it exceeds the stacked bars (the
    /// series keep fewer minutes than the window has).
    pub total: &'a [(LogTime, u64)],
    /// Why the line can be above the bars.
    pub total_note: &'a str,
    pub markers: &'a [Marker],
    /// Marker kinds with no data, and why.
    pub unknown: &'a [(MarkerKind, String)],
}

// Geometry of the SVG's viewBox.
const W: f64 = 960.0;
const LEFT: f64 = 52.0;
const RIGHT: f64 = 14.0;
const TOP: f64 = 22.0;
const PLOT_H: f64 = 170.0;
const BOTTOM: f64 = 40.0;

/// The figure: the SVG, its legend and notes. Empty when nothing is to be drawn.
pub fn render(t: &Timeline<'_>) -> String {
    let mut series = t.series.clone();
    series.retain(|s| s.minutes.iter().any(|(_, n)| *n > 0));
    let sum = |s: &Series| s.minutes.iter().map(|(_, n)| n).sum::<u64>();
    series.sort_by(|a, b| sum(b).cmp(&sum(a)).then(a.name.cmp(&b.name)));
    if series.len() > MAX_SERIES + 1 {
        let rest: Vec<Series> = series.split_off(MAX_SERIES);
        series.push(Series {
            name: format!("{} others", rest.len()),
            minutes: rest.into_iter().flat_map(|s| s.minutes).collect(),
        });
    }
    let times = series
        .iter()
        .flat_map(|s| s.minutes.iter().map(|(t, _)| *t))
        .chain(t.total.iter().map(|(t, _)| *t));
    let (Some(lo), Some(hi)) = (times.clone().min(), times.max()) else {
        return String::new();
    };
    let lo = lo.minute().0 / 60;
    let hi = hi.minute().0 / 60;
    let bucket = BUCKETS
        .iter()
        .copied()
        .find(|b| (hi - lo) / b < MAX_BUCKETS)
        .unwrap_or(1440 * ((hi - lo) / (1440 * MAX_BUCKETS) + 1));
    let mut start = lo.div_euclid(bucket) * bucket;
    let mut n = (hi.div_euclid(bucket) * bucket - start) / bucket + 1;
    if n < MIN_BUCKETS {
        // Centre a short burst.
        start -= (MIN_BUCKETS - n) / 2 * bucket;
        n = MIN_BUCKETS;
    }
    let index = |t: LogTime| -> Option<usize> {
        let i = (t.0.div_euclid(60) - start).div_euclid(bucket);
        (0..n).contains(&i).then_some(i as usize)
    };
    let mut counts = vec![vec![0u64; n as usize]; series.len()];
    for (k, s) in series.iter().enumerate() {
        for (at, c) in &s.minutes {
            if let Some(i) = index(*at) {
                counts[k][i] += c;
            }
        }
    }
    let mut total = vec![0u64; n as usize];
    for (at, c) in t.total {
        if let Some(i) = index(*at) {
            total[i] += c;
        }
    }
    let stacked: Vec<u64> = (0..n as usize)
        .map(|i| counts.iter().map(|c| c[i]).sum())
        .collect();
    let draw_total = total.iter().zip(&stacked).any(|(t, s)| t > s);
    let peak = stacked
        .iter()
        .chain(if draw_total { &total[..] } else { &[][..] })
        .copied()
        .max()
        .unwrap_or(0)
        .max(1);
    let (ymax, ystep) = nice_axis(peak);
    let bw = (W - LEFT - RIGHT) / n as f64;
    let x_of = |i: f64| LEFT + i * bw;
    let y_of = |v: u64| TOP + PLOT_H - PLOT_H * v as f64 / ymax as f64;
    let h = TOP + PLOT_H + BOTTOM;

    let mut s = String::new();
    let _ = write!(
        s,
        "<figure class=\"timeline\">\n<svg class=\"chart\" viewBox=\"0 0 {W} {h}\" role=\"img\" aria-label=\"{}\">\n",
        esc(&format!("{} per {}", t.what, bucket_name(bucket)))
    );
    // Grid and y labels.
    let mut v = 0;
    while v <= ymax {
        let y = y_of(v);
        let _ = writeln!(
            s,
            "<line class=\"grid\" x1=\"{LEFT}\" x2=\"{}\" y1=\"{y:.1}\" y2=\"{y:.1}\"/><text x=\"{}\" y=\"{:.1}\" text-anchor=\"end\">{v}</text>",
            W - RIGHT,
            LEFT - 6.0,
            y + 4.0
        );
        v += ystep;
    }
    // Bars: one rect per (series, bucket) with entries, stacked in series order.
    let gap = if bw >= 4.0 { 1.0 } else { 0.0 };
    for i in 0..n as usize {
        let mut base = 0u64;
        for (k, c) in counts.iter().enumerate() {
            if c[i] == 0 {
                continue;
            }
            let (y0, y1) = (y_of(base), y_of(base + c[i]));
            base += c[i];
            let _ = writeln!(
                s,
                "<rect class=\"s{}\" x=\"{:.1}\" y=\"{y1:.1}\" width=\"{:.1}\" height=\"{:.1}\"/>",
                colour(k, series.len()),
                x_of(i as f64),
                (bw - gap).max(0.6),
                (y0 - y1).max(0.5)
            );
        }
    }
    if draw_total {
        // A step line: across each bucket at its height, up or down at its edge.
        let mut d = format!("M{LEFT} {:.1}", y_of(total[0]));
        for (i, v) in total.iter().enumerate() {
            if i > 0 && *v != total[i - 1] {
                let _ = write!(d, "V{:.1}", y_of(*v));
            }
            if total.get(i + 1) != Some(v) {
                let _ = write!(d, "H{:.1}", x_of(i as f64 + 1.0));
            }
        }
        let _ = writeln!(s, "<path class=\"total\" d=\"{d}\"/>");
    }
    // Axis and time labels, on nginx's clock.
    let base_y = TOP + PLOT_H;
    let _ = writeln!(
        s,
        "<line class=\"axis\" x1=\"{LEFT}\" x2=\"{}\" y1=\"{base_y}\" y2=\"{base_y}\"/>",
        W - RIGHT
    );
    let span = n * bucket;
    let tick = [
        1, 2, 5, 10, 15, 30, 60, 120, 180, 360, 720, 1440, 2880, 10080,
    ]
    .into_iter()
    .find(|t| span / t <= 8)
    .unwrap_or(10080 * (span / (10080 * 8) + 1));
    let mut m = (start + tick - 1).div_euclid(tick) * tick;
    let mut last_day = None;
    while m <= start + span {
        let x = LEFT + (m - start) as f64 / bucket as f64 * bw;
        let (y, mo, d, hh, mi, _) = LogTime(m * 60).to_civil();
        // Labels at the right edge end there instead of running off the chart.
        let anchor = if x > W - RIGHT - 30.0 {
            "end"
        } else {
            "middle"
        };
        let _ = write!(
            s,
            "<line class=\"axis\" x1=\"{x:.1}\" x2=\"{x:.1}\" y1=\"{base_y}\" y2=\"{}\"/><text x=\"{x:.1}\" y=\"{}\" text-anchor=\"{anchor}\">{hh:02}:{mi:02}</text>",
            base_y + 4.0,
            base_y + 16.0
        );
        if last_day != Some((y, mo, d)) {
            let _ = write!(
                s,
                "<text x=\"{x:.1}\" y=\"{}\" text-anchor=\"{anchor}\">{y:04}-{mo:02}-{d:02}</text>",
                base_y + 30.0
            );
            last_day = Some((y, mo, d));
        }
        s.push('\n');
        m += tick;
    }
    // Hover targets: one per bucket with entries, its counts in a tooltip.
    for i in 0..n as usize {
        if stacked[i] == 0 && total[i] == 0 {
            continue;
        }
        let from = LogTime((start + i as i64 * bucket) * 60);
        let mut tip = format!(
            "{} (per {}): {}",
            &super::when(from)[..16],
            bucket_name(bucket),
            plural(stacked[i].max(total[i]), "failure")
        );
        let mut parts: Vec<(u64, &str)> = counts
            .iter()
            .zip(&series)
            .filter(|(c, _)| c[i] > 0)
            .map(|(c, s)| (c[i], s.name.as_str()))
            .collect();
        parts.sort_by_key(|p| std::cmp::Reverse(p.0));
        for (c, name) in parts.iter().take(6) {
            let _ = write!(tip, "\n{name}: {c}");
        }
        if parts.len() > 6 {
            let _ = write!(tip, "\n{} more", parts.len() - 6);
        }
        let _ = writeln!(
            s,
            "<rect class=\"hit\" x=\"{:.1}\" y=\"{TOP}\" width=\"{:.1}\" height=\"{PLOT_H}\"><title>{}</title></rect>",
            x_of(i as f64),
            bw,
            esc(&tip)
        );
    }
    // Markers.
    let end = LogTime((start + span) * 60);
    let begin = LogTime(start * 60);
    for m in t
        .markers
        .iter()
        .filter(|m| m.at >= begin && m.at < end)
        .take(MAX_MARKERS)
    {
        let x = LEFT + (m.at.0 - begin.0) as f64 / 60.0 / bucket as f64 * bw;
        let _ = writeln!(
            s,
            "<g class=\"mk {}\"><line x1=\"{x:.1}\" x2=\"{x:.1}\" y1=\"{}\" y2=\"{base_y}\"/>{}<title>{}</title></g>",
            m.kind.class(),
            TOP - 6.0,
            symbol(m.kind, x, TOP - 10.0),
            esc(&format!("{}: {}", &super::when(m.at), m.label))
        );
    }
    s.push_str("</svg>\n<ul class=\"legend\">\n");
    for (k, se) in series.iter().enumerate() {
        let _ = writeln!(
            s,
            "<li><span class=\"sw s{}\"></span><code>{}</code> {}</li>",
            colour(k, series.len()),
            esc(&se.name),
            sum(se)
        );
    }
    if draw_total {
        let _ = writeln!(s, "<li><span class=\"sym-total\"></span>all failures</li>");
    }
    for kind in MarkerKind::ALL {
        let k = t.markers.iter().filter(|m| m.kind == kind).count();
        if k > 0 {
            let _ = writeln!(
                s,
                "<li><svg class=\"key\" viewBox=\"0 0 14 14\"><g class=\"mk {}\">{}</g></svg>{} ({k})</li>",
                kind.class(),
                symbol(kind, 7.0, 7.0),
                kind.name()
            );
        }
    }
    s.push_str("</ul>\n<p class=\"note\">");
    let _ = write!(
        s,
        "{} per {}; times are nginx's local clock, as its logs write them.",
        esc(t.what),
        bucket_name(bucket)
    );
    if draw_total {
        let _ = write!(s, " {}", esc(t.total_note));
    }
    let outside = t
        .markers
        .iter()
        .filter(|m| m.at < begin || m.at >= end)
        .count();
    if outside > 0 {
        let _ = write!(
            s,
            " {} outside the chart's span (listed below).",
            plural(outside as u64, "marker")
        );
    }
    // One sentence per reason: "No restart or OOM kill marks: ...".
    let mut done: Vec<&str> = Vec::new();
    for (_, why) in t.unknown {
        if done.contains(&why.as_str()) {
            continue;
        }
        done.push(why);
        let kinds: Vec<&str> = t
            .unknown
            .iter()
            .filter(|(_, w)| w == why)
            .map(|(k, _)| k.name())
            .collect();
        let _ = write!(
            s,
            " No {} marks: {}.",
            kinds.join(" or "),
            super::diagnose::inline(why)
        );
    }
    s.push_str("</p>\n</figure>\n");
    s
}

/// The colour class of the k-th series: "other" keeps the grey.
fn colour(k: usize, len: usize) -> usize {
    if len == MAX_SERIES + 1 && k == MAX_SERIES {
        9
    } else {
        k.min(9)
    }
}

fn bucket_name(b: i64) -> String {
    match b {
        1 => "minute".into(),
        60 => "hour".into(),
        1440 => "day".into(),
        b if b % 60 == 0 => format!("{} hours", b / 60),
        b => format!("{b} minutes"),
    }
}

/// A marker's symbol centred on (x, y): diamond (reload), triangle (restart), cross (OOM
/// kill), square (rotation).
fn symbol(kind: MarkerKind, x: f64, y: f64) -> String {
    let d = match kind {
        MarkerKind::Reload => format!("M{x:.1} {:.1}l5 5-5 5-5-5z", y - 5.0),
        MarkerKind::Restart => format!("M{x:.1} {:.1}l5 9h-10z", y - 5.0),
        MarkerKind::Oom => format!(
            "M{:.1} {:.1}l2-2 3 3 3-3 2 2-3 3 3 3-2 2-3-3-3 3-2-2 3-3z",
            x - 5.0,
            y - 3.0
        ),
        MarkerKind::Rotation => format!("M{:.1} {:.1}h8v8h-8z", x - 4.0, y - 4.0),
    };
    format!("<path class=\"sym\" d=\"{d}\"/>")
}

/// The y axis's top and step: 1, 2 or 5 times a power of ten, four steps or fewer.
fn nice_axis(peak: u64) -> (u64, u64) {
    let mut step = 1u64;
    loop {
        for m in [1, 2, 5] {
            let s = step * m;
            if peak.div_ceil(s) <= 4 {
                return (peak.div_ceil(s) * s, s);
            }
        }
        step *= 10;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: &str) -> LogTime {
        LogTime::parse_iso(s.as_bytes()).unwrap()
    }

    #[test]
    fn axis_steps_are_round() {
        assert_eq!(nice_axis(1), (1, 1));
        assert_eq!(nice_axis(7), (8, 2));
        assert_eq!(nice_axis(18), (20, 5));
        assert_eq!(nice_axis(1234), (1500, 500));
    }

    /// A day of minutes for 30 series: 360 buckets at most, one rect per (series, bucket), nine
    /// colours and "others".
    #[test]
    fn a_day_is_bounded() {
        let day0 = t("2026-11-20T00:00:00").0;
        let series: Vec<Series> = (0..30)
            .map(|k| Series {
                name: format!("cause-{k}"),
                minutes: (0..1440)
                    .map(|m| (LogTime(day0 + m * 60), 1 + k as u64))
                    .collect(),
            })
            .collect();
        let svg = render(&Timeline {
            what: "failures by cause",
            series,
            ..Default::default()
        });
        let rects = svg.matches("<rect class=\"s").count();
        assert_eq!(rects, 10 * 288, "5-minute buckets over a day");
        assert!(svg.contains("per 5 minutes"));
        assert!(svg.contains("21 others"));
        assert!(svg.len() < 400_000, "{}", svg.len());
    }

    #[test]
    fn markers_outside_the_span_are_counted_not_drawn() {
        let markers = [
            Marker {
                kind: MarkerKind::Reload,
                at: t("2026-11-20T14:33:20"),
                label: "nginx reloaded".into(),
            },
            Marker {
                kind: MarkerKind::Oom,
                at: t("2026-11-19T01:00:00"),
                label: "OOM kill".into(),
            },
        ];
        let unknown = [(MarkerKind::Restart, "no probes".to_string())];
        let svg = render(&Timeline {
            what: "failures by cause",
            series: vec![Series {
                name: "backend-down".into(),
                minutes: vec![(t("2026-11-20T14:32:00"), 3), (t("2026-11-20T14:35:00"), 1)],
            }],
            markers: &markers,
            unknown: &unknown,
            ..Default::default()
        });
        assert_eq!(svg.matches("<g class=\"mk reload\"><line").count(), 1);
        assert_eq!(svg.matches("<g class=\"mk oom\"><line").count(), 0);
        assert!(svg.contains("1 marker outside the chart"));
        assert!(svg.contains("No restart marks: no probes."));
    }
}
