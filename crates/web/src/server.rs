//! The listener: plain HTTP or HTTPS on one address, every connection bounded in time
//! (TLS handshake, first request, request head), a graceful stop that lets requests in
//! flight finish, and a certificate reload that leaves open connections alone.

use std::io;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use axum::Router;
use axum_server::Handle;
use axum_server::tls_rustls::{RustlsAcceptor, RustlsConfig};
use tokio::task::JoinHandle;
use tracing::warn;

/// A certificate chain and its private key, PEM files.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tls {
    pub cert: PathBuf,
    pub key: PathBuf,
}

/// Where and how to listen.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    pub listen: SocketAddr,
    /// HTTPS from these files; plain HTTP without.
    pub tls: Option<Tls>,
    /// A client must send its request head (and finish a TLS handshake) within this.
    pub header_timeout: Duration,
}

/// A running server.
pub struct Running {
    /// The address it listens on (the port chosen when `listen` asked for port 0).
    pub local_addr: SocketAddr,
    handle: Handle<SocketAddr>,
    tls: Option<(RustlsConfig, Tls)>,
    task: JoinHandle<io::Result<()>>,
}

/// Binds `cfg.listen` (an error names the address) and serves `router` on it in a task of
/// its own.
pub async fn serve(cfg: Config, router: Router) -> io::Result<Running> {
    let at_listen =
        |e: io::Error| io::Error::new(e.kind(), format!("http listen {}: {e}", cfg.listen));
    let listener = std::net::TcpListener::bind(cfg.listen).map_err(at_listen)?;
    listener.set_nonblocking(true).map_err(at_listen)?;
    let local_addr = listener.local_addr().map_err(at_listen)?;
    let handle = Handle::new();
    let service = router.into_make_service_with_connect_info::<SocketAddr>();
    let server = axum_server::from_tcp(listener)?;
    let (task, tls) = match &cfg.tls {
        None => {
            let server = bounded(server, &handle, cfg.header_timeout);
            (tokio::spawn(server.serve(service)), None)
        }
        Some(files) => {
            let config = load(files).await?;
            let acceptor =
                RustlsAcceptor::new(config.clone()).handshake_timeout(cfg.header_timeout);
            let server = bounded(server.acceptor(acceptor), &handle, cfg.header_timeout);
            (
                tokio::spawn(server.serve(service)),
                Some((config, files.clone())),
            )
        }
    };
    Ok(Running {
        local_addr,
        handle,
        tls,
        task,
    })
}

/// `server` with its stop handle, and a client's time to send its first request and each
/// request head bounded by `timeout`.
fn bounded<Acc>(
    server: axum_server::Server<SocketAddr, Acc>,
    handle: &Handle<SocketAddr>,
    timeout: Duration,
) -> axum_server::Server<SocketAddr, Acc> {
    let mut server = server.handle(handle.clone()).first_request_timeout(timeout);
    server.http_builder().http1().header_read_timeout(timeout);
    server
}

/// The certificate and key from their files; an error names the files.
async fn load(files: &Tls) -> io::Result<RustlsConfig> {
    RustlsConfig::from_pem_file(&files.cert, &files.key)
        .await
        .map_err(|e| named(files, &e, ""))
}

/// `e`, naming the files it is about.
fn named(files: &Tls, e: &io::Error, then: &str) -> io::Error {
    io::Error::new(
        e.kind(),
        format!(
            "http tls_cert {} / tls_key {}: {e}{then}",
            files.cert.display(),
            files.key.display()
        ),
    )
}

impl Running {
    /// Whether it serves HTTPS.
    pub fn is_tls(&self) -> bool {
        self.tls.is_some()
    }

    /// Reads the certificate and key files again; new connections get the new pair, open
    /// ones keep theirs. A pair that does not load leaves the old one in use (the error says
    /// why).
    pub async fn reload_tls(&self) -> io::Result<()> {
        let Some((config, files)) = &self.tls else {
            return Ok(());
        };
        config
            .reload_from_pem_file(&files.cert, &files.key)
            .await
            .map_err(|e| named(files, &e, " (the previous certificate stays in use)"))
    }

    /// Stops taking connections and gives requests in flight up to `grace` to finish.
    pub async fn stop(self, grace: Duration) {
        self.handle.graceful_shutdown(Some(grace));
        match self.task.await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => warn!(error = %e, "the HTTP server stopped with an error"),
            Err(e) => warn!(error = %e, "the HTTP server task failed"),
        }
    }
}
