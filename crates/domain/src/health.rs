//! Carrier health from OPTIONS probes (SPEC.md "Routing"): consecutive failures take a
//! carrier down, consecutive successes bring it back. Only probes count: a failed call fails
//! over but never changes health.

use crate::invalid::Invalid;
use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Health {
    /// Answering probes.
    #[default]
    Up,
    /// Missed a probe (fewer than the failure threshold in a row): still takes calls.
    Suspect,
    /// Missed the threshold of probes in a row: gets no calls until it answers the
    /// recovery threshold of probes in a row.
    Down,
}

impl Health {
    pub fn as_str(self) -> &'static str {
        match self {
            Health::Up => "up",
            Health::Suspect => "suspect",
            Health::Down => "down",
        }
    }

    /// Whether calls may go to a carrier in this state.
    pub fn takes_calls(self) -> bool {
        self != Health::Down
    }
}

impl FromStr for Health {
    type Err = Invalid;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "up" => Ok(Health::Up),
            "suspect" => Ok(Health::Suspect),
            "down" => Ok(Health::Down),
            other => Err(format!("unknown health {other:?} (up, suspect or down)").into()),
        }
    }
}

impl fmt::Display for Health {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Whether a probe's answer means the carrier is alive: 2xx, and 404 and 480 (a carrier
/// that does not know the probe's user still answers).
pub fn probe_alive(status: u16) -> bool {
    (200..300).contains(&status) || status == 404 || status == 480
}

/// One carrier's probe record.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct HealthTracker {
    pub state: Health,
    failures: u32,
    successes: u32,
}

impl HealthTracker {
    pub fn new(state: Health) -> Self {
        HealthTracker {
            state,
            failures: 0,
            successes: 0,
        }
    }

    /// Records one probe result; the new state when it changed.
    pub fn record(
        &mut self,
        alive: bool,
        fail_threshold: u32,
        recover_threshold: u32,
    ) -> Option<Health> {
        let before = self.state;
        if alive {
            self.failures = 0;
            self.successes += 1;
            self.state = match self.state {
                Health::Down if self.successes < recover_threshold.max(1) => Health::Down,
                _ => Health::Up,
            };
        } else {
            self.successes = 0;
            self.failures += 1;
            self.state = if self.state == Health::Down || self.failures >= fail_threshold.max(1) {
                Health::Down
            } else {
                Health::Suspect
            };
        }
        (self.state != before).then_some(self.state)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thresholds_and_the_suspect_state() {
        let mut t = HealthTracker::default();
        assert_eq!(t.record(false, 2, 2), Some(Health::Suspect));
        assert!(t.state.takes_calls());
        assert_eq!(
            t.record(true, 2, 2),
            Some(Health::Up),
            "one success clears suspect"
        );
        assert_eq!(t.record(false, 2, 2), Some(Health::Suspect));
        assert_eq!(t.record(false, 2, 2), Some(Health::Down));
        assert!(!t.state.takes_calls());
        assert_eq!(t.record(false, 2, 2), None);
        assert_eq!(t.record(true, 2, 2), None, "one success is not enough");
        assert_eq!(
            t.record(false, 2, 2),
            None,
            "and a failure starts the count again"
        );
        assert_eq!(t.record(true, 2, 2), None);
        assert_eq!(t.record(true, 2, 2), Some(Health::Up));
        let mut strict = HealthTracker::new(Health::Up);
        assert_eq!(strict.record(false, 1, 1), Some(Health::Down));
        assert_eq!(strict.record(true, 1, 1), Some(Health::Up));
        assert!(probe_alive(200) && probe_alive(404) && probe_alive(480));
        assert!(!probe_alive(503) && !probe_alive(408) && !probe_alive(403));
    }
}
