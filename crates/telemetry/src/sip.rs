//! The SIP path's counters ([`SipMetrics`]): every handle is registered once, when the
//! engine starts, and counting is an atomic add on a handle the engine holds: nothing is
//! looked up by name per packet. Per-carrier handles are made the first time a carrier
//! is tried and kept; past [`LABEL_CAP`] carriers the rest count under `carrier="other"`,
//! so the number of series stays bounded. Labels are ids, methods, classes and reasons:
//! never numbers or addresses.

use std::collections::HashMap;

use domain::{CarrierId, Reject};
use metrics::{Counter, counter, describe_counter};

use crate::cps::CpsMeter;

/// Carriers (and customers) with a series of their own; the rest share `other`.
pub const LABEL_CAP: usize = 1_000;

/// The request methods counted by name; anything else is `other`.
pub const METHODS: [&str; 12] = [
    "INVITE", "ACK", "BYE", "CANCEL", "OPTIONS", "REGISTER", "UPDATE", "INFO", "PRACK", "NOTIFY",
    "MESSAGE", "other",
];

/// A status class as a label (`1xx` … `6xx`).
const CLASSES: [&str; 6] = ["1xx", "2xx", "3xx", "4xx", "5xx", "6xx"];

/// Attempts and answers of one carrier.
#[derive(Clone)]
struct CarrierCounters {
    attempts: Counter,
    answers: Counter,
}

/// The counters of the SIP path, held by the engine.
pub struct SipMetrics {
    requests: Vec<Counter>,
    responses: Vec<Counter>,
    replies: Vec<Counter>,
    offered: Counter,
    answered: Counter,
    refusals: Vec<Counter>,
    carriers: HashMap<CarrierId, CarrierCounters>,
    /// Made when the first carrier past the cap is counted.
    other_carrier: Option<CarrierCounters>,
    cps: CpsMeter,
}

fn class_index(status: u16) -> usize {
    usize::from(status / 100).clamp(1, 6) - 1
}

fn method_index(method: &[u8]) -> usize {
    METHODS[..METHODS.len() - 1]
        .iter()
        .position(|m| m.as_bytes() == method)
        .unwrap_or(METHODS.len() - 1)
}

fn carrier_counters(label: String) -> CarrierCounters {
    CarrierCounters {
        attempts: counter!("vts_carrier_attempts_total", "carrier" => label.clone()),
        answers: counter!("vts_carrier_answers_total", "carrier" => label),
    }
}

/// The help text of each family (Prometheus `# HELP`).
fn describe() {
    describe_counter!(
        "vts_sip_requests_received_total",
        "SIP requests received and parsed, by method."
    );
    describe_counter!(
        "vts_sip_responses_received_total",
        "SIP responses received and parsed, by status class."
    );
    describe_counter!(
        "vts_sip_replies_sent_total",
        "Responses the switch wrote itself (statefully or not), by status class."
    );
    describe_counter!(
        "vts_calls_offered_total",
        "New calls (initial INVITEs) that reached admission."
    );
    describe_counter!("vts_calls_answered_total", "Calls answered by a carrier.");
    describe_counter!(
        "vts_admission_refusals_total",
        "Calls the switch refused or failed itself, by reason (the reply table)."
    );
    describe_counter!(
        "vts_carrier_attempts_total",
        "INVITEs sent to a carrier (by id; past the label cap under \"other\")."
    );
    describe_counter!(
        "vts_carrier_answers_total",
        "Calls a carrier answered (by id; past the label cap under \"other\")."
    );
}

impl SipMetrics {
    /// Registers every handle with the installed recorder ([`crate::exporter`]); without
    /// one (a test of the engine alone) the handles count nothing. `cps` is the meter
    /// `/metrics` reads.
    pub fn register(cps: CpsMeter) -> SipMetrics {
        describe();
        SipMetrics {
            requests: METHODS
                .iter()
                .map(|m| counter!("vts_sip_requests_received_total", "method" => *m))
                .collect(),
            responses: CLASSES
                .iter()
                .map(|c| counter!("vts_sip_responses_received_total", "class" => *c))
                .collect(),
            replies: CLASSES
                .iter()
                .map(|c| counter!("vts_sip_replies_sent_total", "class" => *c))
                .collect(),
            offered: counter!("vts_calls_offered_total"),
            answered: counter!("vts_calls_answered_total"),
            refusals: Reject::ALL
                .iter()
                .map(|r| counter!("vts_admission_refusals_total", "reason" => r.name()))
                .collect(),
            carriers: HashMap::new(),
            other_carrier: None,
            cps,
        }
    }

    /// A request arrived (parsed), by method name.
    pub fn request(&self, method: &[u8]) {
        self.requests[method_index(method)].increment(1);
    }

    /// A response arrived (parsed), by status.
    pub fn response(&self, status: u16) {
        self.responses[class_index(status)].increment(1);
    }

    /// The switch answered a request itself (statefully or not), by status.
    pub fn reply(&self, status: u16) {
        self.replies[class_index(status)].increment(1);
    }

    /// A new call (an initial INVITE) reached admission at `now_s` (Unix seconds).
    pub fn offered(&self, now_s: u64) {
        self.offered.increment(1);
        self.cps.tick(now_s);
    }

    /// A call was refused or failed for `reason`, by the switch itself.
    pub fn refused(&self, reason: Reject) {
        self.refusals[reason as usize].increment(1);
    }

    fn carrier(&mut self, carrier: CarrierId) -> &CarrierCounters {
        if !self.carriers.contains_key(&carrier) {
            if self.carriers.len() >= LABEL_CAP {
                return self
                    .other_carrier
                    .get_or_insert_with(|| carrier_counters("other".into()));
            }
            self.carriers
                .insert(carrier, carrier_counters(carrier.0.to_string()));
        }
        &self.carriers[&carrier]
    }

    /// An attempt went to `carrier`.
    pub fn attempt(&mut self, carrier: CarrierId) {
        self.carrier(carrier).attempts.increment(1);
    }

    /// `carrier` answered a call (2xx to the INVITE).
    pub fn answer(&mut self, carrier: CarrierId) {
        self.answered.increment(1);
        self.carrier(carrier).answers.increment(1);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn methods_and_classes_map_to_bounded_labels() {
        assert_eq!(METHODS[method_index(b"INVITE")], "INVITE");
        assert_eq!(METHODS[method_index(b"PRACK")], "PRACK");
        assert_eq!(METHODS[method_index(b"invite")], "other");
        assert_eq!(METHODS[method_index(b"FOO")], "other");
        assert_eq!(METHODS[method_index(b"other")], "other");
        assert_eq!(CLASSES[class_index(100)], "1xx");
        assert_eq!(CLASSES[class_index(183)], "1xx");
        assert_eq!(CLASSES[class_index(200)], "2xx");
        assert_eq!(CLASSES[class_index(503)], "5xx");
        assert_eq!(CLASSES[class_index(699)], "6xx");
        assert_eq!(CLASSES[class_index(0)], "1xx");
        assert_eq!(CLASSES[class_index(999)], "6xx");
    }

    #[test]
    fn carriers_past_the_cap_share_one_series() {
        let mut m = SipMetrics::register(CpsMeter::default());
        assert!(
            m.other_carrier.is_none(),
            "no \"other\" series until one is needed"
        );
        for id in 0..(LABEL_CAP as i64 + 10) {
            m.attempt(CarrierId(id));
        }
        assert_eq!(m.carriers.len(), LABEL_CAP);
        assert!(m.other_carrier.is_some());
        m.answer(CarrierId(5));
        assert_eq!(m.carriers.len(), LABEL_CAP);
    }
}
