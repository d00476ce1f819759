//! The routes and what they read ([`Ops`]): health, readiness and metrics.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde::Serialize;
use sha2::{Digest, Sha256};
use tower_http::limit::RequestBodyLimitLayer;
use tower_http::timeout::TimeoutLayer;

/// One readiness check: its name and, when it fails, why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Check {
    pub name: &'static str,
    pub problem: Option<String>,
}

impl Check {
    pub fn ok(name: &'static str) -> Check {
        Check {
            name,
            problem: None,
        }
    }

    pub fn failed(name: &'static str, problem: impl Into<String>) -> Check {
        Check {
            name,
            problem: Some(problem.into()),
        }
    }
}

/// What the routes read from the running switch (implemented by the binary's wiring).
pub trait Ops: Send + Sync + 'static {
    /// Every readiness check (the store reachable, SIP listening, the CDR log writable...).
    fn readiness(&self) -> Pin<Box<dyn Future<Output = Vec<Check>> + Send + '_>>;
    /// The metrics in the Prometheus text format.
    fn metrics(&self) -> String;
}

/// What every handler shares.
#[derive(Clone)]
struct App {
    ops: Arc<dyn Ops>,
    /// SHA-256 of the scrape token, when `/metrics` needs one.
    metrics_token: Option<[u8; 32]>,
}

/// The routes with their limits: `request_timeout` for a whole request (408 past it) and
/// `body_limit` bytes of body (413 past it).
pub fn router(
    ops: Arc<dyn Ops>,
    metrics_token: Option<&str>,
    request_timeout: Duration,
    body_limit: usize,
    api: Option<crate::api::Api>,
) -> Router {
    let app = App {
        ops,
        metrics_token: metrics_token.map(|t| Sha256::digest(t.as_bytes()).into()),
    };
    let ops_routes = Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .with_state(app);
    let routes = match api {
        Some(api) => ops_routes.merge(crate::api::router(api)),
        None => ops_routes,
    };
    routes
        .layer(RequestBodyLimitLayer::new(body_limit))
        .layer(TimeoutLayer::with_status_code(
            StatusCode::REQUEST_TIMEOUT,
            request_timeout,
        ))
        // Outermost: the API's refusals by the layers above are problem documents too.
        .layer(axum::middleware::map_response(crate::api::as_problem))
}

#[derive(Serialize)]
struct Health {
    status: &'static str,
}

async fn healthz() -> Response {
    axum::Json(Health { status: "ok" }).into_response()
}

#[derive(Serialize)]
struct Readiness {
    status: &'static str,
    /// Each check: `ok`, or what is wrong.
    checks: std::collections::BTreeMap<&'static str, String>,
}

async fn readyz(State(app): State<App>) -> Response {
    let checks = app.ops.readiness().await;
    let ready = checks.iter().all(|c| c.problem.is_none());
    let body = Readiness {
        status: if ready { "ready" } else { "not ready" },
        checks: checks
            .into_iter()
            .map(|c| (c.name, c.problem.unwrap_or_else(|| "ok".into())))
            .collect(),
    };
    let code = if ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (code, axum::Json(body)).into_response()
}

/// Whether `headers` carry `Authorization: Bearer TOKEN` with the token whose hash is
/// `want` (compared as hashes, in constant time).
fn bearer_matches(headers: &HeaderMap, want: &[u8; 32]) -> bool {
    let Some(given) = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
    else {
        return false;
    };
    let given: [u8; 32] = Sha256::digest(given.trim().as_bytes()).into();
    given.iter().zip(want).fold(0u8, |d, (a, b)| d | (a ^ b)) == 0
}

async fn metrics(State(app): State<App>, headers: HeaderMap) -> Response {
    if let Some(want) = &app.metrics_token
        && !bearer_matches(&headers, want)
    {
        let mut r = (StatusCode::UNAUTHORIZED, "a bearer token is needed\n").into_response();
        r.headers_mut().insert(
            header::WWW_AUTHENTICATE,
            HeaderValue::from_static("Bearer realm=\"metrics\""),
        );
        return r;
    }
    let text = app.ops.metrics();
    (
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
        )],
        text,
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::body::Body;
    use axum::http::Request;
    use tower::ServiceExt as _;

    /// In-process stand-in for the switch (the real wiring is tested end to end in
    /// `crates/vts/tests/e2e/http.rs`): fixed checks and metrics.
    struct Fixed(Vec<Check>);

    impl Ops for Fixed {
        fn readiness(&self) -> Pin<Box<dyn Future<Output = Vec<Check>> + Send + '_>> {
            let checks = self.0.clone();
            Box::pin(async move { checks })
        }
        fn metrics(&self) -> String {
            "# TYPE up gauge\nup 1\n".into()
        }
    }

    fn app(checks: Vec<Check>, token: Option<&str>) -> Router {
        router(
            Arc::new(Fixed(checks)),
            token,
            Duration::from_secs(5),
            1024,
            None,
        )
    }

    async fn get(app: Router, path: &str, auth: Option<&str>) -> (StatusCode, String) {
        let mut req = Request::get(path);
        if let Some(a) = auth {
            req = req.header(header::AUTHORIZATION, a);
        }
        let r = app.oneshot(req.body(Body::empty()).unwrap()).await.unwrap();
        let status = r.status();
        let body = axum::body::to_bytes(r.into_body(), 1 << 20).await.unwrap();
        (status, String::from_utf8(body.to_vec()).unwrap())
    }

    #[tokio::test]
    async fn readiness_names_the_failing_check() {
        let ready = app(vec![Check::ok("store"), Check::ok("sip")], None);
        let (code, body) = get(ready, "/readyz", None).await;
        assert_eq!(code, StatusCode::OK);
        assert_eq!(
            body,
            r#"{"status":"ready","checks":{"sip":"ok","store":"ok"}}"#
        );

        let failing = app(
            vec![
                Check::ok("store"),
                Check::failed("cdr_log", "failing: disk full"),
            ],
            None,
        );
        let (code, body) = get(failing, "/readyz", None).await;
        assert_eq!(code, StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(
            body,
            r#"{"status":"not ready","checks":{"cdr_log":"failing: disk full","store":"ok"}}"#
        );
    }

    #[tokio::test]
    async fn metrics_need_the_token_when_one_is_set() {
        let open = app(vec![], None);
        assert_eq!(get(open, "/metrics", None).await.0, StatusCode::OK);
        let closed = || app(vec![], Some("s3cret"));
        assert_eq!(
            get(closed(), "/metrics", None).await.0,
            StatusCode::UNAUTHORIZED
        );
        assert_eq!(
            get(closed(), "/metrics", Some("Bearer wrong")).await.0,
            StatusCode::UNAUTHORIZED
        );
        assert_eq!(
            get(closed(), "/metrics", Some("Basic s3cret")).await.0,
            StatusCode::UNAUTHORIZED
        );
        let (code, body) = get(closed(), "/metrics", Some("Bearer s3cret")).await;
        assert_eq!(code, StatusCode::OK);
        assert_eq!(body, "# TYPE up gauge\nup 1\n");
        assert_eq!(get(closed(), "/healthz", None).await.0, StatusCode::OK);
    }

    /// Readiness that takes `delay` (a store that hangs).
    struct Slow(Duration);

    impl Ops for Slow {
        fn readiness(&self) -> Pin<Box<dyn Future<Output = Vec<Check>> + Send + '_>> {
            let delay = self.0;
            Box::pin(async move {
                tokio::time::sleep(delay).await;
                vec![Check::ok("store")]
            })
        }
        fn metrics(&self) -> String {
            String::new()
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_request_past_its_timeout_gets_408() {
        let slow = |delay| {
            router(
                Arc::new(Slow(delay)),
                None,
                Duration::from_secs(30),
                1024,
                None,
            )
        };
        let (code, _) = get(slow(Duration::from_secs(60)), "/readyz", None).await;
        assert_eq!(code, StatusCode::REQUEST_TIMEOUT);
        let (code, _) = get(slow(Duration::from_secs(1)), "/readyz", None).await;
        assert_eq!(code, StatusCode::OK);
    }

    #[tokio::test]
    async fn a_body_past_the_limit_gets_413() {
        let req = Request::post("/healthz")
            .header(header::CONTENT_LENGTH, "4096")
            .body(Body::from(vec![b'x'; 4096]))
            .unwrap();
        let r = app(vec![], None).oneshot(req).await.unwrap();
        assert_eq!(r.status(), StatusCode::PAYLOAD_TOO_LARGE);
    }

    #[tokio::test]
    async fn unknown_paths_are_404() {
        assert_eq!(
            get(app(vec![], None), "/nope", None).await.0,
            StatusCode::NOT_FOUND
        );
    }
}
