//! # jobs
//!
//! Background work that is not on the call path: consumers of the durable event stream
//! (webhooks, alerts), retention, scheduled reports. Created empty by the restructuring
//! (issue 13); filled by the operations issues.
//!
//! Rules (checked by `scripts/check-deps`): `jobs` never imports `proxy` or `web`; it meets
//! the web layer only through `store` and `cluster`.
