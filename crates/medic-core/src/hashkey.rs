//! 64-bit keys for byte strings, so hot maps compare integers instead of bytes.
//!
//! The seed is fixed: summaries built by different threads must agree on the keys they merge.
//! Two different strings sharing a key (odds about 2^-64 per pair) would be counted together.

use std::hash::{BuildHasher, Hasher};

const SEED: u64 = 0x6e67_696e_785f_6d65;

#[inline]
pub fn key(bytes: &[u8]) -> u64 {
    let mut h = foldhash::fast::FixedState::with_seed(SEED).build_hasher();
    h.write(bytes);
    h.finish()
}

/// A hasher for keys that are already hashes.
#[derive(Clone, Copy, Default, Debug)]
pub struct PreHashed(u64);

impl Hasher for PreHashed {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        // Only u64 keys are hashed with this; fold anything else in rather than panic.
        for &b in bytes {
            self.0 = self.0.rotate_left(8) ^ u64::from(b);
        }
    }
    fn write_u64(&mut self, n: u64) {
        self.0 = n;
    }
}

pub type PreHashedMap<V> =
    std::collections::HashMap<u64, V, std::hash::BuildHasherDefault<PreHashed>>;
