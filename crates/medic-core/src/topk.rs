//! Bounded "top values" counting (Misra-Gries), so memory stays flat whatever the input.
//!
//! Requests and clients have unbounded cardinality (IDs in paths, scanners). A sketch of `k`
//! counters finds every value seen more than `n / (k + 1)` times among `n`, and undercounts by at
//! most that much; reports call these counts "at least".

use crate::hashkey::{key, PreHashedMap};

/// A value kept without a heap allocation: high-cardinality inputs (IDs in URIs) insert and
/// evict constantly, and malloc/free was a tenth of the error-log scan. Longer values are cut
/// (display only; counting uses the hash of the whole value).
#[derive(Clone, Copy, Debug)]
struct Inline {
    len: u8,
    bytes: [u8; Inline::CAP],
}

impl Inline {
    const CAP: usize = 118;

    fn new(v: &[u8]) -> Inline {
        let n = v.len().min(Self::CAP);
        let mut bytes = [0u8; Self::CAP];
        bytes[..n].copy_from_slice(&v[..n]);
        Inline {
            len: n as u8,
            bytes,
        }
    }

    fn as_bytes(&self) -> &[u8] {
        &self.bytes[..usize::from(self.len)]
    }
}

#[derive(Clone, Debug)]
pub struct TopK {
    cap: usize,
    /// key(value) to (count, value)
    counts: PreHashedMap<(u64, Inline)>,
    /// Everything added, to tell how far a count may be off.
    total: u64,
    /// Sum of the decrements: an upper bound on how much any count is short.
    error: u64,
}

impl TopK {
    pub fn new(cap: usize) -> TopK {
        TopK {
            cap: cap.max(1),
            counts: PreHashedMap::with_capacity_and_hasher(cap + 1, Default::default()),
            total: 0,
            error: 0,
        }
    }

    #[inline]
    pub fn add(&mut self, value: &[u8]) {
        self.add_n(value, 1);
    }

    pub fn add_n(&mut self, value: &[u8], n: u64) {
        self.total += n;
        let k = key(value);
        if let Some(c) = self.counts.get_mut(&k) {
            c.0 += n;
            return;
        }
        self.counts.insert(k, (n, Inline::new(value)));
        if self.counts.len() > self.cap {
            self.shrink();
        }
    }

    /// Takes the smallest count off every counter and drops those at zero.
    fn shrink(&mut self) {
        let min = self.counts.values().map(|c| c.0).min().unwrap_or(0);
        self.error += min;
        self.counts.retain(|_, c| {
            c.0 -= min;
            c.0 > 0
        });
    }

    pub fn merge(&mut self, other: TopK) {
        self.total += other.total;
        self.error += other.error;
        for (k, (n, v)) in other.counts {
            self.counts.entry(k).or_insert((0, v)).0 += n;
        }
        while self.counts.len() > self.cap {
            self.shrink();
        }
    }

    /// The `n` largest, largest first (ties by value, so the order is stable).
    pub fn top(&self, n: usize) -> Vec<(&[u8], u64)> {
        let mut v: Vec<(&[u8], u64)> = self
            .counts
            .values()
            .map(|(c, k)| (k.as_bytes(), *c))
            .collect();
        v.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(b.0)));
        v.truncate(n);
        v
    }

    /// How much any reported count may be short of the truth.
    pub fn max_error(&self) -> u64 {
        self.error
    }

    pub fn total(&self) -> u64 {
        self.total
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn exact_when_few_values() {
        let mut t = TopK::new(8);
        for v in [&b"a"[..], b"b", b"a", b"c", b"a", b"b"] {
            t.add(v);
        }
        assert_eq!(t.top(2), vec![(&b"a"[..], 3), (&b"b"[..], 2)]);
        assert_eq!(t.max_error(), 0);
    }

    proptest! {
        #[test]
        fn heavy_hitters_survive(noise in proptest::collection::vec(0u32..10_000, 0..2000), heavy in 1u32..5) {
            let mut t = TopK::new(16);
            let mut n = 0u64;
            for (i, x) in noise.iter().enumerate() {
                t.add(x.to_string().as_bytes());
                n += 1;
                if i % 3 == 0 {
                    t.add(format!("heavy{heavy}").as_bytes());
                    n += 1;
                }
            }
            let heavy_count = noise.len().div_ceil(3) as u64;
            prop_assert!(t.counts.len() <= 16);
            if heavy_count > n / 17 {
                let top = t.top(16);
                let name = format!("heavy{heavy}");
                prop_assert!(top.iter().any(|(k, _)| *k == name.as_bytes()));
            }
            for (_, c) in t.top(16) {
                prop_assert!(c + t.max_error() >= c);
            }
        }
    }
}
