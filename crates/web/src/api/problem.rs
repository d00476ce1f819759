//! Errors as RFC 9457 problem documents (`application/problem+json`): a type, a title, the
//! status, a detail an operator can act on and, for a body or query that does not validate,
//! the list of fields at fault. Every refusal of the API is one of these; a 5xx is only ever
//! the database away (503) or a bug (500, logged, its detail withheld).

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use store::StoreError;
use utoipa::ToSchema;

/// One field at fault.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct FieldError {
    /// The field's name as sent (`max_channels`, `ips[2]`); `body` for the body as a whole.
    pub field: String,
    pub message: String,
}

/// An RFC 9457 problem document.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct Problem {
    /// A URI naming the kind of problem (`urn:vts:problem:validation`, ...).
    #[serde(rename = "type")]
    pub kind: String,
    pub title: String,
    pub status: u16,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
    /// The fields at fault (validation problems only).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub errors: Vec<FieldError>,
    /// Seconds to wait before trying again (429 and 503).
    #[serde(skip)]
    pub retry_after: Option<u64>,
}

impl Problem {
    pub fn new(status: StatusCode, kind: &str, detail: impl Into<String>) -> Problem {
        Problem {
            kind: format!("urn:vts:problem:{kind}"),
            title: status.canonical_reason().unwrap_or("Error").to_string(),
            status: status.as_u16(),
            detail: Some(detail.into()),
            errors: Vec::new(),
            retry_after: None,
        }
    }

    /// 400: the request could not be read (not JSON, a wrong type, an unknown field).
    pub fn bad_request(detail: impl Into<String>) -> Problem {
        Problem::new(StatusCode::BAD_REQUEST, "bad-request", detail)
    }

    /// 422: the request was read, and a value in it is not acceptable.
    pub fn invalid(field: &str, message: impl Into<String>) -> Problem {
        let message = message.into();
        let mut p = Problem::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "validation",
            format!("{field}: {message}"),
        );
        p.errors.push(FieldError {
            field: field.to_string(),
            message,
        });
        p
    }

    /// 404: nothing of that kind with that id (also what a customer token gets for another
    /// customer's resource).
    pub fn not_found(what: &str) -> Problem {
        Problem::new(
            StatusCode::NOT_FOUND,
            "not-found",
            format!("no such {what}"),
        )
    }

    pub fn unauthorized(detail: &str) -> Problem {
        Problem::new(StatusCode::UNAUTHORIZED, "unauthorized", detail)
    }

    pub fn forbidden(detail: &str) -> Problem {
        Problem::new(StatusCode::FORBIDDEN, "forbidden", detail)
    }

    pub fn conflict(detail: impl Into<String>) -> Problem {
        Problem::new(StatusCode::CONFLICT, "conflict", detail)
    }

    pub fn too_many(retry_after: u64) -> Problem {
        let mut p = Problem::new(
            StatusCode::TOO_MANY_REQUESTS,
            "rate-limited",
            format!("too many requests: try again in {retry_after} s"),
        );
        p.retry_after = Some(retry_after);
        p
    }

    /// 503: the database did not answer; nothing was changed.
    pub fn unavailable(detail: impl Into<String>) -> Problem {
        let mut p = Problem::new(StatusCode::SERVICE_UNAVAILABLE, "unavailable", detail);
        p.retry_after = Some(5);
        p
    }

    /// 500: a fault of the switch. The cause goes to the log, not to the client.
    pub fn internal(cause: &dyn std::fmt::Display) -> Problem {
        tracing::error!(target: "vts::api", error = %cause, "API request failed");
        Problem::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            "the switch could not do this; the cause is in its log",
        )
    }
}

impl IntoResponse for Problem {
    fn into_response(self) -> Response {
        let status = StatusCode::from_u16(self.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let body = serde_json::to_vec(&self).unwrap_or_default();
        let mut response = (status, body).into_response();
        let headers = response.headers_mut();
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/problem+json"),
        );
        if let Some(s) = self.retry_after {
            headers.insert(header::RETRY_AFTER, HeaderValue::from(s));
        }
        response
    }
}

impl From<StoreError> for Problem {
    fn from(e: StoreError) -> Problem {
        match e {
            StoreError::Invalid(message) => {
                // The store's messages name what they are about; the field is the body.
                let mut p = Problem::new(StatusCode::UNPROCESSABLE_ENTITY, "validation", &message);
                p.errors.push(FieldError {
                    field: "body".into(),
                    message,
                });
                p
            }
            StoreError::NotFound { what, .. } => Problem::not_found(what),
            StoreError::Conflict(message) => Problem::conflict(message),
            e if e.is_unavailable() => {
                tracing::warn!(target: "vts::api", error = %e, "the database is away");
                Problem::unavailable("the database is not answering; nothing was changed")
            }
            other => Problem::internal(&other),
        }
    }
}

/// What every handler returns.
pub(crate) type ApiResult<T> = Result<T, Problem>;
