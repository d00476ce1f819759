//! The end-to-end tests of `vts`, in one binary (one link instead of eight): a real `vts
//! serve` on loopback, the `vts` CLI, real sipp, a raw UDP/TCP user agent, baresip and
//! PostgreSQL where a test says so. One module per subject; the harness is testkit's
//! process half (`testkit::{process, sipp, raw}`). The flood test is a binary of its own (`tests/flood.rs`) so that
//! no other test shares the two cores with it.

/// The harness: testkit's real-process half, and the binary under test.
mod common {
    pub(crate) use testkit::process::*;
    pub(crate) use testkit::raw::*;
    pub(crate) use testkit::sipp::*;

    /// The `vts` binary under test.
    pub(crate) const VTS: &str = env!("CARGO_BIN_EXE_vts");

    /// An HTTP client for the API (reqwest, bounded in time). reqwest is built with the
    /// webhooks' `rustls-no-provider`, so the process's rustls provider (ring, as the switch
    /// has) is installed first.
    pub(crate) fn http_client() -> reqwest::blocking::Client {
        #[allow(deprecated)]
        let _ = rustls::crypto::ring::default_provider().install_default();
        reqwest::blocking::Client::builder()
            .timeout(std::time::Duration::from_secs(30))
            .build()
            .unwrap()
    }

    /// A database of its own on the test PostgreSQL server (`VTS_TEST_POSTGRES_URL`, whose
    /// role may create databases; `scripts/test` starts a private throw-away cluster), named
    /// after the test and this process; `None`, said on stderr, when no server is set.
    pub(crate) fn fresh_postgres(test: &str) -> Option<String> {
        use sqlx::migrate::MigrateDatabase;
        let Ok(base) = std::env::var("VTS_TEST_POSTGRES_URL") else {
            eprintln!("VTS_TEST_POSTGRES_URL is not set: skipping {test} on PostgreSQL");
            return None;
        };
        let (head, query) = base.split_once('?').unwrap_or((&base, ""));
        let server = head.rsplit_once('/').map_or(head, |(server, _)| server);
        let name = format!("vts_e2e_{test}_{}", std::process::id());
        let url = if query.is_empty() {
            format!("{server}/{name}")
        } else {
            format!("{server}/{name}?{query}")
        };
        sqlx::any::install_default_drivers();
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
            .block_on(async {
                if sqlx::Any::database_exists(&url).await.unwrap() {
                    sqlx::Any::drop_database(&url).await.unwrap();
                }
                sqlx::Any::create_database(&url)
                    .await
                    .expect("create a test database (the role needs CREATEDB)");
            });
        Some(url)
    }

    /// A `Vts` (the e2e binary) on a database of its own on the test PostgreSQL server
    /// ([`fresh_postgres`]); `None` when no server is set.
    pub(crate) fn postgres_vts(test: &str) -> Option<Vts> {
        let mut vts = Vts::new(VTS);
        vts.db = Some(fresh_postgres(test)?);
        Some(vts)
    }
}

mod accounting;
mod admission;
mod api;
mod attacks;
mod calls;
mod doctor;
mod events;
mod hep;
mod http;
mod lifecycle;
mod ops;
mod security;
mod trace;
mod transport;
mod webhooks;
mod wire;
