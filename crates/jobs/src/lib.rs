//! # jobs
//!
//! Background work that is not on the call path: consumers of the durable event stream
//! ([`webhooks`]; alerts: later issues), [`capture`] (the engine's copies of SIP messages to the
//! HEP collector and to stored traces), [`retention`] (old events and traces), scheduled
//! reports.
//!
//! Rules (checked by `scripts/check-deps`): `jobs` never imports `proxy` or `web`; it meets
//! the web layer only through `store` and `cluster`.

pub mod capture;
pub mod retention;
pub mod webhooks;
