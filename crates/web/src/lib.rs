//! # web
//!
//! The HTTP server of `vts serve` ([`serve`]): `GET /healthz` (the process is up),
//! `GET /readyz` (each readiness check by name, 200 or 503), `GET /metrics` (Prometheus text,
//! behind an optional bearer token); later the REST API, the panel and the customer portal.
//! Plain HTTP or HTTPS (rustls, from PEM files reloaded on demand without dropping
//! connections); every route has a request timeout and a body limit, and a client gets a
//! bounded time to send its request head.
//!
//! What the routes read comes through [`Ops`], implemented by the binary: this crate never
//! imports the proxy (checked by `scripts/check-deps`), and meets background work only
//! through `store` and `cluster`.

pub mod api;
mod routes;
mod server;

pub use routes::{Check, Ops, router};
pub use server::{Config, Running, Tls, serve};
