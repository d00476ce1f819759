//! # web
//!
//! The HTTP server of `vts serve`: health and readiness, metrics, the REST API and, later,
//! the panel and the customer portal. Created empty by the restructuring (issue 13); filled
//! by the operations issues.
//!
//! Rules (checked by `scripts/check-deps`): `web` never imports `proxy` or `jobs`; it meets
//! background work only through `store` and `cluster`.
