//! The binary's side of the HTTP server: what `/readyz` checks and what `/metrics` shows,
//! read from the running parts (the store, the SIP thread, accounting, the engine's status,
//! latency, guards and CPS). The `web` crate serves them without knowing the proxy.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use cluster::{AccountingGate, StatusHandle};
use proxy::Guards;
use store::Store;
use telemetry::latency::Latency;
use telemetry::{CpsMeter, LABEL_CAP, text};
use web::Check;

/// How long the store has to answer the readiness check.
const STORE_CHECK: Duration = Duration::from_secs(2);

/// Everything `/readyz` and `/metrics` read.
pub(crate) struct SwitchOps {
    pub(crate) store: Store,
    /// Cleared when the SIP thread dies.
    pub(crate) sip_alive: Arc<AtomicBool>,
    pub(crate) status: StatusHandle,
    pub(crate) latency: Latency,
    pub(crate) guards: Guards,
    pub(crate) cps: CpsMeter,
    pub(crate) cdr: accounting::CdrState,
    pub(crate) gate: AccountingGate,
    /// The capture of SIP messages (HEP, traces), when on.
    pub(crate) capture: Option<CaptureCounts>,
    /// Webhook deliveries.
    pub(crate) webhooks: Arc<jobs::webhooks::Counts>,
}

/// What the capture side counts.
pub(crate) struct CaptureCounts {
    /// Copies the engine dropped because the consumer was behind.
    pub(crate) dropped: Arc<std::sync::atomic::AtomicU64>,
    pub(crate) hep: Option<Arc<telemetry::hep::Sent>>,
    pub(crate) traces: Option<Arc<jobs::capture::TraceCounts>>,
}

impl web::Ops for SwitchOps {
    fn readiness(&self) -> Pin<Box<dyn Future<Output = Vec<Check>> + Send + '_>> {
        Box::pin(async move {
            let store = match tokio::time::timeout(STORE_CHECK, self.store.versions()).await {
                Ok(Ok(_)) => Check::ok("store"),
                Ok(Err(e)) => Check::failed("store", format!("unreachable: {e}")),
                Err(_) => Check::failed("store", format!("no answer within {STORE_CHECK:?}")),
            };
            let sip = if !self.sip_alive.load(Ordering::Relaxed) {
                Check::failed("sip", "the SIP thread stopped")
            } else if self.status.borrow().draining {
                Check::failed("sip", "draining: shutting down")
            } else {
                Check::ok("sip")
            };
            let cdr_log = if self.cdr.log_failed() {
                Check::failed("cdr_log", "the write-ahead log is failing (CDR_LOG_FAILED)")
            } else if self.gate.is_full() {
                Check::failed("cdr_log", "the write-ahead log is full (CDR_LOG_FULL)")
            } else {
                Check::ok("cdr_log")
            };
            vec![store, sip, cdr_log]
        })
    }

    fn metrics(&self) -> String {
        telemetry::exporter().render(|out| self.scrape(out))
    }
}

impl SwitchOps {
    /// The families read at scrape time.
    fn scrape(&self, out: &mut String) {
        let status = self.status.borrow().clone();
        text::gauge(
            out,
            "vts_calls_in_progress",
            "Calls in progress (set up or answered).",
            f64::from(status.calls),
        );
        per_id(
            out,
            "vts_customer_calls_in_progress",
            "Calls in progress per customer (by id; past the label cap under \"other\").",
            "customer",
            status.by_customer.iter().map(|(id, n)| (id.0, *n)),
        );
        per_id(
            out,
            "vts_carrier_calls_in_progress",
            "Calls in progress per carrier (by id; past the label cap under \"other\").",
            "carrier",
            status.by_carrier.iter().map(|(id, n)| (id.0, *n)),
        );
        text::family(
            out,
            "vts_carrier_health",
            "gauge",
            "A carrier's health from the OPTIONS probes: 1 for its state, 0 for the others.",
        );
        for (id, health) in status.health.iter().take(LABEL_CAP) {
            let id = id.0.to_string();
            for state in ["up", "suspect", "down"] {
                let v = if health.as_str() == state { 1.0 } else { 0.0 };
                text::sample(
                    out,
                    "vts_carrier_health",
                    &[("carrier", &id), ("state", state)],
                    v,
                );
            }
        }
        text::gauge(
            out,
            "vts_draining",
            "1 while the switch is shutting down (new calls refused).",
            if status.draining { 1.0 } else { 0.0 },
        );
        let now_s = u64::try_from(domain::now_ms() / 1000).unwrap_or_default();
        text::gauge(
            out,
            "vts_cps",
            "New calls offered in the last complete second.",
            self.cps.last_second(now_s) as f64,
        );
        let report = self.guards.report();
        text::family(
            out,
            "vts_resources_in_use",
            "gauge",
            "Bounded resources in use (transactions, calls in setup, TCP connections...).",
        );
        for (g, v) in &report.gauges {
            text::sample(
                out,
                "vts_resources_in_use",
                &[("resource", g.as_str())],
                *v as f64,
            );
        }
        text::family(
            out,
            "vts_caps_reached_total",
            "counter",
            "Times each protective cap was reached (docs/SECURITY.md).",
        );
        for (c, v) in &report.caps {
            text::sample(
                out,
                "vts_caps_reached_total",
                &[("cap", c.as_str())],
                *v as f64,
            );
        }
        text::family(
            out,
            "vts_guard_events_total",
            "counter",
            "What the switch dropped, refused or retried to protect itself.",
        );
        for (c, v) in &report.counters {
            text::sample(
                out,
                "vts_guard_events_total",
                &[("event", c.as_str())],
                *v as f64,
            );
        }
        let (invite, reply) = self.latency.histograms();
        text::histogram(
            out,
            "vts_invite_seconds",
            "Initial INVITEs: arrival to the INVITE leaving for the carrier.",
            &invite,
        );
        text::histogram(
            out,
            "vts_response_seconds",
            "Responses: arrival to the relayed response leaving for the customer.",
            &reply,
        );
        let cdr = self.cdr.snapshot();
        text::gauge(
            out,
            "vts_cdr_queue",
            "CDRs waiting for the database (all of them are in the write-ahead log).",
            cdr.queued as f64,
        );
        text::gauge(
            out,
            "vts_cdr_wal_bytes",
            "Bytes of the CDR write-ahead log on disk.",
            cdr.wal_bytes as f64,
        );
        text::family(
            out,
            "vts_cdrs_written_total",
            "counter",
            "CDRs written to the store.",
        );
        text::sample(out, "vts_cdrs_written_total", &[], cdr.written as f64);
        text::gauge(
            out,
            "vts_cdrs_quarantined",
            "CDRs the database refused, kept in DATA_DIR/quarantine.",
            cdr.quarantined as f64,
        );
        text::gauge(
            out,
            "vts_cdr_log_failed",
            "1 while the write-ahead log is failing (new calls refused).",
            if cdr.log_failed { 1.0 } else { 0.0 },
        );
        if let Some(c) = &self.capture {
            capture_families(out, c);
        }
        webhook_families(out, &self.webhooks);
        text::histogram(
            out,
            "vts_store_write_seconds",
            "Time of each CDR batch insert into the store.",
            &cdr.write_latency,
        );
    }
}

/// A gauge family with one sample per id, the first [`LABEL_CAP`] ids by their own label
/// and the rest summed under `other`.
fn per_id(
    out: &mut String,
    name: &str,
    help: &str,
    label: &str,
    values: impl Iterator<Item = (i64, u32)>,
) {
    text::family(out, name, "gauge", help);
    let mut other: Option<u64> = None;
    for (i, (id, n)) in values.enumerate() {
        if i < LABEL_CAP {
            text::sample(out, name, &[(label, &id.to_string())], f64::from(n));
        } else {
            *other.get_or_insert(0) += u64::from(n);
        }
    }
    if let Some(n) = other {
        text::sample(out, name, &[(label, "other")], n as f64);
    }
}

/// Webhook deliveries by outcome.
fn webhook_families(out: &mut String, c: &jobs::webhooks::Counts) {
    let n = |a: &std::sync::atomic::AtomicU64| a.load(Ordering::Relaxed) as f64;
    text::family(
        out,
        "vts_webhook_deliveries_total",
        "counter",
        "Webhook delivery attempts by outcome: delivered (2xx), retried (timeout, connection error, 5xx, 408, 429), failed (given up).",
    );
    for (result, v) in [
        ("delivered", &c.delivered),
        ("retried", &c.retried),
        ("failed", &c.failed),
    ] {
        text::sample(
            out,
            "vts_webhook_deliveries_total",
            &[("result", result)],
            n(v),
        );
    }
}

/// The capture families: the queue's drops, HEP packets, stored trace messages.
fn capture_families(out: &mut String, c: &CaptureCounts) {
    let n = |a: &std::sync::atomic::AtomicU64| a.load(Ordering::Relaxed) as f64;
    text::family(
        out,
        "vts_capture_dropped_total",
        "counter",
        "Copies of SIP messages dropped because the capture consumer was behind (calls are never held).",
    );
    text::sample(out, "vts_capture_dropped_total", &[], n(&c.dropped));
    if let Some(sent) = &c.hep {
        text::family(
            out,
            "vts_hep_packets_total",
            "counter",
            "SIP messages exported as HEP: sent, or failed (send error, too large).",
        );
        text::sample(
            out,
            "vts_hep_packets_total",
            &[("result", "sent")],
            n(&sent.packets),
        );
        text::sample(
            out,
            "vts_hep_packets_total",
            &[("result", "failed")],
            n(&sent.failed),
        );
    }
    if let Some(t) = &c.traces {
        text::family(
            out,
            "vts_trace_messages_total",
            "counter",
            "SIP messages of stored traces: written, dropped (store away too long, or trimmed to trace.max_mb, oldest first), evicted (trace.memory_mb reached before the call's outcome).",
        );
        text::sample(
            out,
            "vts_trace_messages_total",
            &[("result", "written")],
            n(&t.written),
        );
        text::sample(
            out,
            "vts_trace_messages_total",
            &[("result", "dropped")],
            n(&t.dropped),
        );
        text::sample(
            out,
            "vts_trace_messages_total",
            &[("result", "evicted")],
            n(&t.evicted),
        );
    }
}
