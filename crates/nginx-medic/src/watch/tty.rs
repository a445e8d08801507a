//! The live terminal view of `watch` (stdout is a terminal and events go elsewhere): the open
//! incidents, redrawn in place, each with a sparkline of its failures over the window.

use std::collections::HashMap;
use std::io::Write;

use medic_core::incidents::Incident;
use medic_parse::time::LogTime;

/// Failures per slice of the window: (slice, (upstream, class) -> entries).
pub type Slice = (i64, HashMap<(String, &'static str), u64>);

pub struct View {
    drawn: bool,
}

const BARS: [char; 8] = ['▁', '▂', '▃', '▄', '▅', '▆', '▇', '█'];

/// One character per slice: the slice's failures against the busiest slice.
fn sparkline(counts: &[u64]) -> String {
    let max = counts.iter().copied().max().unwrap_or(0);
    counts
        .iter()
        .map(|&n| match n {
            0 => ' ',
            _ => BARS[((n * 7).div_ceil(max.max(1)) as usize).min(7)],
        })
        .collect()
}

impl View {
    pub fn new() -> View {
        View { drawn: false }
    }

    pub fn draw(
        &mut self,
        now: LogTime,
        open: &[Incident],
        slices: &[Slice],
        (slice_secs, window_secs): (i64, i64),
        paths: &[std::path::PathBuf],
        events: u64,
    ) {
        let mut s = String::new();
        // Home and clear: the view replaces itself.
        s.push_str("\x1b[H\x1b[2J");
        s.push_str(&format!(
            "nginx-medic watch  {now}  {} log(s)  {events} event(s)\n",
            paths.len()
        ));
        if open.is_empty() {
            s.push_str("\nno open incident\n");
        }
        for i in open {
            // One character per slice of the window, the newest on the right.
            let last = now.0.div_euclid(slice_secs);
            let width = (window_secs / slice_secs).max(1);
            let mut counts = vec![0u64; width as usize];
            for (slice, cells) in slices {
                let Ok(at) = usize::try_from(slice - (last - width + 1)) else {
                    continue;
                };
                if let Some(c) = counts.get_mut(at) {
                    *c += cells
                        .iter()
                        .filter(|((up, class), _)| *up == i.upstream && i.classes.contains(class))
                        .map(|(_, n)| n)
                        .sum::<u64>();
                }
            }
            let hurt = i.impact.as_ref().map_or(String::new(), |im| {
                format!(", {} client error(s)", im.hurt())
            });
            s.push_str(&format!(
                "\n#{} {} {}  since {}\n   {}\n   {} failure(s){hurt}, last {}  [{}]\n",
                i.incident,
                i.cause,
                i.upstream,
                i.first_seen.unwrap_or(i.opened_at),
                i.title,
                i.count,
                i.last_seen.map_or("-".to_string(), |t| t.to_string()),
                sparkline(&counts),
            ));
            if let Some(e) = i.evidence.first() {
                s.push_str(&format!("   {}  {}\n", e.source, clip(&e.text, 100)));
            }
            if !i.fix.is_empty() {
                s.push_str(&format!("   fix: {}\n", clip(&i.fix, 100)));
            }
        }
        let mut out = std::io::stdout().lock();
        let _ = out.write_all(s.as_bytes()).and_then(|()| out.flush());
        self.drawn = true;
    }

    pub fn leave(&mut self) {
        if self.drawn {
            println!();
        }
    }
}

fn clip(s: &str, n: usize) -> String {
    match s.char_indices().nth(n) {
        Some((i, _)) => format!("{}…", &s[..i]),
        None => s.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sparklines_scale_to_the_busiest_slice() {
        assert_eq!(sparkline(&[0, 1, 7, 3]), " ▂█▄");
        assert_eq!(sparkline(&[]), "");
    }
}
