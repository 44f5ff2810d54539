//! A hash index from user hash to slab slot that stores only the 4-byte slot.
//!
//! `HashMap<u32, u32>` spends 8 bytes plus a control byte per bucket; this table keeps just
//! the slot number and reads the key back from the slab, which brings the per-user memory of
//! [`super::users::UserDirectory`] from about 40 to about 30 bytes. Open addressing with
//! linear probing, load factor at most 3/4, backward-shift deletion (no tombstones). The
//! keys are MD5-derived user hashes; a multiplicative mix spreads small test values too.
//!
//! Each bucket also has a one-byte fingerprint of its key in a side array (1.3-2.7 bytes
//! per user): a probe reads the slab only when the fingerprint matches. Without it a miss
//! (every new user of a ring handshake) read a random slab entry per occupied bucket on its
//! way, several cache misses per lookup at high load.

const EMPTY: u32 = u32::MAX;

/// Slot numbers indexed by the key the caller's `key_of(slot)` returns.
#[derive(Clone, Debug, Default)]
pub(super) struct SlotIndex {
    buckets: Vec<u32>,
    /// Fingerprint of the key in the same bucket (meaningless where the bucket is empty).
    prints: Vec<u8>,
    len: usize,
}

impl SlotIndex {
    pub(super) fn len(&self) -> usize {
        self.len
    }

    fn mask(&self) -> usize {
        self.buckets.len() - 1
    }

    fn home(&self, key: u32) -> usize {
        // Fibonacci hashing: the top bits of key × 2^32/φ.
        let mixed = u64::from(key).wrapping_mul(0x9E37_79B9_7F4A_7C15);
        (mixed >> 32) as usize & self.mask()
    }

    /// Bits of the mix below the ones [`SlotIndex::home`] uses, so keys sharing a home
    /// still differ here.
    fn print(key: u32) -> u8 {
        (u64::from(key).wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 24) as u8
    }

    /// The bucket holding `key`, if present.
    fn position(&self, key: u32, key_of: impl Fn(u32) -> u32) -> Option<usize> {
        if self.buckets.is_empty() {
            return None;
        }
        let print = Self::print(key);
        let mut i = self.home(key);
        loop {
            match self.buckets[i] {
                EMPTY => return None,
                slot if self.prints[i] == print && key_of(slot) == key => return Some(i),
                _ => i = (i + 1) & self.mask(),
            }
        }
    }

    pub(super) fn get(&self, key: u32, key_of: impl Fn(u32) -> u32) -> Option<u32> {
        self.position(key, key_of).map(|i| self.buckets[i])
    }

    /// Add `slot` under `key`, which must not be present yet.
    pub(super) fn insert(&mut self, key: u32, slot: u32, key_of: impl Fn(u32) -> u32) {
        if (self.len + 1) * 4 > self.buckets.len() * 3 {
            self.grow(&key_of);
        }
        let mut i = self.home(key);
        while self.buckets[i] != EMPTY {
            i = (i + 1) & self.mask();
        }
        self.buckets[i] = slot;
        self.prints[i] = Self::print(key);
        self.len += 1;
    }

    /// Remove `key`, returning its slot.
    pub(super) fn remove(&mut self, key: u32, key_of: impl Fn(u32) -> u32) -> Option<u32> {
        let mut hole = self.position(key, &key_of)?;
        let slot = self.buckets[hole];
        let mask = self.mask();
        let mut j = hole;
        loop {
            j = (j + 1) & mask;
            let moved = self.buckets[j];
            if moved == EMPTY {
                break;
            }
            let k = self.home(key_of(moved));
            // The entry at j may fill the hole unless its home lies cyclically in (hole, j].
            let stays = if hole <= j {
                hole < k && k <= j
            } else {
                hole < k || k <= j
            };
            if !stays {
                self.buckets[hole] = moved;
                self.prints[hole] = self.prints[j];
                hole = j;
            }
        }
        self.buckets[hole] = EMPTY;
        self.len -= 1;
        Some(slot)
    }

    fn grow(&mut self, key_of: &impl Fn(u32) -> u32) {
        let size = (self.buckets.len() * 2).max(16);
        let old = std::mem::replace(&mut self.buckets, vec![EMPTY; size]);
        self.prints = vec![0; size];
        for slot in old.into_iter().filter(|&s| s != EMPTY) {
            let key = key_of(slot);
            let mut i = self.home(key);
            while self.buckets[i] != EMPTY {
                i = (i + 1) & self.mask();
            }
            self.buckets[i] = slot;
            self.prints[i] = Self::print(key);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::collections::HashMap;

    proptest! {
        /// Same answers as a `HashMap` under random inserts and removals, including keys
        /// that collide in the low bits.
        #[test]
        fn behaves_like_a_map(ops in proptest::collection::vec((any::<bool>(), 0u32..64, any::<bool>()), 0..400)) {
            let mut keys: Vec<u32> = Vec::new();
            let mut index = SlotIndex::default();
            let mut model: HashMap<u32, u32> = HashMap::new();
            for (insert, k, high) in ops {
                let key = if high { k << 26 } else { k };
                let key_of = |slot: u32| keys[slot as usize];
                if insert {
                    if model.contains_key(&key) {
                        continue;
                    }
                    let slot = keys.len() as u32;
                    keys.push(key);
                    let key_of = |slot: u32| keys[slot as usize];
                    index.insert(key, slot, key_of);
                    model.insert(key, slot);
                } else {
                    prop_assert_eq!(index.remove(key, key_of), model.remove(&key));
                }
                prop_assert_eq!(index.len(), model.len());
                let key_of = |slot: u32| keys[slot as usize];
                for k in 0..64u32 {
                    for key in [k, k << 26] {
                        prop_assert_eq!(index.get(key, key_of), model.get(&key).copied());
                    }
                }
            }
        }
    }
}
