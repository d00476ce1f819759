//! # telemetry
//!
//! What the switch measures, and its Prometheus rendering; no HTTP (the `web` crate serves
//! `/metrics`) and no database.
//!
//! - [`SipMetrics`]: the SIP path's counters (requests and responses by method and class,
//!   the switch's own replies, calls offered and answered, refusals by reason, attempts and
//!   answers per carrier), handles registered once with the recorder [`exporter`]
//!   installs;
//! - [`CpsMeter`]: new calls in the last complete second;
//! - [`latency`]: log-linear histograms of the time messages spend inside the switch;
//! - [`text`]: the text format for what is read at scrape time (gauges from the switch's
//!   state, the histograms), appended by [`Exporter::render`] to the counters;
//! - [`capture`]: copies of every SIP message handed off the call path ([`capture::Tap`]);
//! - [`hep`]: the HEPv3 encoding of a captured message, as Kamailio's siptrace sends it.

pub mod capture;
mod cps;
pub mod hep;
pub mod ladder;
pub mod latency;
mod sip;
pub mod text;
pub mod trace;

use std::sync::OnceLock;

use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};

pub use cps::CpsMeter;
pub use sip::{LABEL_CAP, METHODS, SipMetrics};

/// The process's metrics recorder and what renders it.
pub struct Exporter {
    handle: Option<PrometheusHandle>,
}

/// Installs the Prometheus recorder as the process's metrics recorder (once: later calls
/// return the same exporter). Install it before [`SipMetrics::register`], or the handles
/// count nothing. When another recorder is installed already, the counters are not ours to
/// render: [`Exporter::render`] then gives the scrape-time families only.
pub fn exporter() -> &'static Exporter {
    static EXPORTER: OnceLock<Exporter> = OnceLock::new();
    EXPORTER.get_or_init(|| {
        let recorder = PrometheusBuilder::new().build_recorder();
        let handle = recorder.handle();
        Exporter {
            handle: metrics::set_global_recorder(recorder).ok().map(|()| handle),
        }
    })
}

impl Exporter {
    /// The counters, then what `scrape` writes (gauges and histograms read now).
    pub fn render(&self, scrape: impl FnOnce(&mut String)) -> String {
        let mut out = self
            .handle
            .as_ref()
            .map(PrometheusHandle::render)
            .unwrap_or_default();
        if !out.is_empty() && !out.ends_with('\n') {
            out.push('\n');
        }
        scrape(&mut out);
        out
    }
}
