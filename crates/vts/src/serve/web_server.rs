//! The HTTP server's start and its certificate reload on SIGHUP (what it serves: `ops.rs`).

use std::sync::Arc;

use tracing::info;

use super::ops;

/// Requests in flight get this long to finish when the HTTP server stops.
pub(super) const HTTP_GRACE: std::time::Duration = std::time::Duration::from_secs(5);

/// Starts the HTTP server (health, readiness, metrics, the REST API).
pub(super) async fn start_http(
    h: &crate::config::HttpSettings,
    ops: ops::SwitchOps,
    api: web::api::Api,
) -> std::io::Result<web::Running> {
    let router = web::router(
        Arc::new(ops),
        h.metrics_token.as_ref().map(|t| t.0.as_str()),
        h.request_timeout,
        h.body_limit,
        Some(api),
    );
    let cfg = web::Config {
        listen: h.listen,
        tls: h.tls.clone(),
        header_timeout: h.header_timeout,
    };
    web::serve(cfg, router).await
}

/// SIGHUP reloads the HTTPS certificate and key from their files (open connections keep
/// theirs; a pair that does not load leaves the old one in use, logged).
pub(super) fn reload_on_sighup(web: Arc<web::Running>) -> Result<(), String> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut hup = signal(SignalKind::hangup()).map_err(|e| format!("cannot handle SIGHUP: {e}"))?;
    tokio::spawn(async move {
        while hup.recv().await.is_some() {
            match web.reload_tls().await {
                Ok(()) => info!("SIGHUP: the HTTPS certificate is reloaded"),
                Err(e) => {
                    tracing::error!(error = %e, "SIGHUP: the HTTPS certificate is not reloaded")
                }
            }
        }
    });
    Ok(())
}
