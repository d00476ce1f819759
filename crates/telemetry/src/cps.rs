//! Calls per second as an operator reads it: new calls offered in the last complete
//! second. The engine ticks the meter once per initial INVITE (one thread writes); any
//! thread reads. Eight slots keyed by the Unix second, so a reader never sees a second
//! still being counted and a quiet switch reads 0, not the last busy second.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

const SLOTS: usize = 8;
/// A slot holds the second in its high bits and the count in its low 24 (16.7 million
/// calls a second: more than any switch takes).
const COUNT_BITS: u32 = 24;
const COUNT_MASK: u64 = (1 << COUNT_BITS) - 1;

/// The meter, shared by the engine (writer) and `/metrics` (reader).
#[derive(Debug, Clone, Default)]
pub struct CpsMeter(Arc<[AtomicU64; SLOTS]>);

impl CpsMeter {
    /// One call offered at `now_s` (Unix seconds).
    pub fn tick(&self, now_s: u64) {
        let slot = &self.0[now_s as usize % SLOTS];
        let v = slot.load(Ordering::Relaxed);
        if v >> COUNT_BITS == now_s {
            if v & COUNT_MASK < COUNT_MASK {
                slot.store(v + 1, Ordering::Relaxed);
            }
        } else {
            slot.store((now_s << COUNT_BITS) | 1, Ordering::Relaxed);
        }
    }

    /// Calls offered in the second before `now_s`.
    pub fn last_second(&self, now_s: u64) -> u64 {
        let second = now_s.saturating_sub(1);
        let v = self.0[second as usize % SLOTS].load(Ordering::Relaxed);
        if v >> COUNT_BITS == second {
            v & COUNT_MASK
        } else {
            0
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_the_last_complete_second_only() {
        let m = CpsMeter::default();
        let t = 1_800_000_000;
        for _ in 0..42 {
            m.tick(t);
        }
        m.tick(t + 1);
        assert_eq!(m.last_second(t), 0, "the second being counted is not read");
        assert_eq!(m.last_second(t + 1), 42);
        assert_eq!(m.last_second(t + 2), 1);
        assert_eq!(m.last_second(t + 3), 0, "a quiet second reads 0");
        assert_eq!(
            m.last_second(t + 1 + SLOTS as u64),
            0,
            "a slot of an old second is not read as a new one"
        );
    }
}
