//! What a request sends, read strictly: a JSON body whose unknown fields are refused (not
//! ignored: a misspelt field would otherwise do nothing silently), a query string likewise;
//! what cannot be read is a 400 problem naming the field, never a 500. And the values the API
//! writes: money as integer millionths of the currency unit (`*_minor`) beside a decimal
//! string, times as RFC 3339 in UTC.

use axum::extract::rejection::{JsonRejection, QueryRejection};
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use domain::Money;
use serde::de::DeserializeOwned;

use super::problem::{FieldError, Problem};

/// A JSON body (`Content-Type: application/json`), read into `T` (`deny_unknown_fields`).
#[derive(Debug, Clone)]
pub(crate) struct Body<T>(pub T);

impl<S, T> FromRequest<S> for Body<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = Problem;

    async fn from_request(req: Request, state: &S) -> Result<Self, Problem> {
        match axum::Json::<T>::from_request(req, state).await {
            Ok(axum::Json(v)) => Ok(Body(v)),
            Err(rejection) => Err(body_problem(&rejection)),
        }
    }
}

fn body_problem(rejection: &JsonRejection) -> Problem {
    match rejection {
        JsonRejection::MissingJsonContentType(_) => {
            Problem::bad_request("the body must be JSON (Content-Type: application/json)")
        }
        JsonRejection::JsonSyntaxError(e) => {
            Problem::bad_request(format!("the body is not JSON: {}", source_text(e)))
        }
        JsonRejection::JsonDataError(e) => {
            let text = source_text(e);
            let mut p = Problem::bad_request(format!("the body does not fit: {text}"));
            p.errors.push(FieldError {
                field: field_of(&text).unwrap_or_else(|| "body".to_string()),
                message: text,
            });
            p
        }
        JsonRejection::BytesRejection(e) => {
            // A body past the limit, or one that broke off.
            let status = e.status();
            Problem::new(status, "bad-request", e.body_text())
        }
        other => Problem::bad_request(other.body_text()),
    }
}

/// The innermost message of an error (serde's, with its position), bounded.
fn source_text(e: &dyn std::error::Error) -> String {
    let mut inner: &dyn std::error::Error = e;
    while let Some(next) = inner.source() {
        inner = next;
    }
    let text = inner.to_string();
    match text.char_indices().nth(300) {
        Some((cut, _)) => format!("{}…", &text[..cut]),
        None => text,
    }
}

/// The field serde names in its message: "unknown field `x`", "missing field `x`", or the
/// path before ": " that serde_path_to_error-style messages give (`ips[0]: ...`).
fn field_of(text: &str) -> Option<String> {
    for marker in ["unknown field `", "missing field `", "duplicate field `"] {
        if let Some(rest) = text.split(marker).nth(1) {
            return rest.split('`').next().map(str::to_string);
        }
    }
    None
}

/// A query string read into `T` (`deny_unknown_fields`).
#[derive(Debug, Clone)]
pub(crate) struct Query<T>(pub T);

impl<S, T> FromRequestParts<S> for Query<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = Problem;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Problem> {
        match axum::extract::Query::<T>::from_request_parts(parts, state).await {
            Ok(axum::extract::Query(v)) => Ok(Query(v)),
            Err(QueryRejection::FailedToDeserializeQueryString(e)) => {
                let text = source_text(&e);
                let mut p = Problem::bad_request(format!("the query does not fit: {text}"));
                p.errors.push(FieldError {
                    field: field_of(&text).unwrap_or_else(|| "query".to_string()),
                    message: text,
                });
                Err(p)
            }
            Err(other) => Err(Problem::bad_request(other.body_text())),
        }
    }
}

/// `money` as `(minor, decimal string)` for a response.
pub(crate) fn money(m: Money) -> (i64, String) {
    (m.0, m.to_string())
}

/// A decimal amount as sent (`"12.50"`; `-` allowed when `signed`) into money, or the
/// problem naming `field`.
pub(crate) fn parse_money(field: &str, text: &str, signed: bool) -> Result<Money, Problem> {
    let t = text.trim();
    let (negative, digits) = match t.strip_prefix('-') {
        Some(rest) if signed => (true, rest),
        _ => (false, t),
    };
    let m = Money::parse(digits).map_err(|e| Problem::invalid(field, e.message()))?;
    Ok(if negative { Money(-m.0) } else { m })
}

/// An epoch-ms time as RFC 3339 in UTC.
pub(crate) fn time(ms: i64) -> String {
    // Always three fractional digits: times sort as text too.
    jiff::Timestamp::from_millisecond(ms)
        .map(|t| format!("{t:.3}"))
        .unwrap_or_default()
}

/// An RFC 3339 time (or a `YYYY-MM-DD` date, midnight UTC) as sent into epoch ms, or the
/// problem naming `field`.
pub(crate) fn parse_time(field: &str, text: &str) -> Result<i64, Problem> {
    domain::parse_instant(text).map_err(|e| Problem::invalid(field, e.message()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_have_three_fractional_digits_and_sort_as_text() {
        assert_eq!(time(1_796_605_474_600), "2026-12-07T01:04:34.600Z");
        assert_eq!(time(1_796_605_474_000), "2026-12-07T01:04:34.000Z");
        assert!(time(1_796_605_474_649) < time(1_796_605_474_650));
        assert!(time(1_796_605_474_600) > time(1_796_605_474_549));
    }

    #[test]
    fn fields_are_named_from_serde_messages() {
        assert_eq!(
            field_of("unknown field `max_chanels`, expected one of `name`, `ips`").as_deref(),
            Some("max_chanels")
        );
        assert_eq!(
            field_of("missing field `name` at line 1").as_deref(),
            Some("name")
        );
        assert_eq!(field_of("invalid type: string"), None);
        assert_eq!(
            parse_money("amount", "-1.5", true).unwrap(),
            Money(-1_500_000)
        );
        assert!(parse_money("amount", "-1.5", false).is_err());
        assert_eq!(time(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(parse_time("since", "1970-01-02").unwrap(), 86_400_000);
    }
}
