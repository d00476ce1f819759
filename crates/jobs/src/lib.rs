//! # jobs
//!
//! Background work that is not on the call path: consumers of the durable event stream
//! (webhooks, alerts: later issues), [`retention`] (old events now; SIP traces next),
//! scheduled reports.
//!
//! Rules (checked by `scripts/check-deps`): `jobs` never imports `proxy` or `web`; it meets
//! the web layer only through `store` and `cluster`.

pub mod retention;
