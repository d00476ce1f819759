//! `vts token` (create, list, revoke) and `vts audit`: the API's tokens and the record of
//! every change.

use domain::{Scope, now_ms};
use store::Store;

use crate::cli::{EventFormat, TokenCmd};
use crate::output::term;

pub(super) async fn run(store: &Store, cmd: TokenCmd) -> crate::error::Result {
    match cmd {
        TokenCmd::Create {
            name,
            scope,
            expires,
        } => {
            let expires_ms = expires.map(|days| now_ms() + i64::from(days) * 86_400_000);
            let (token, secret) = store.create_token(&name, scope, expires_ms).await?;
            println!(
                "token {} {:?} ({}): keep it now, it is not shown again",
                token.id, token.name, token.scope
            );
            println!("{secret}");
        }
        TokenCmd::List { format } => {
            let tokens = store.list_tokens().await?;
            match format {
                EventFormat::Json => {
                    for t in &tokens {
                        println!("{}", serde_json::to_string(t)?);
                    }
                }
                EventFormat::Table => {
                    println!(
                        "{:<5} {:<24} {:<14} {:<20} {:<20} {:<20} STATE",
                        "ID", "NAME", "SCOPE", "CREATED", "EXPIRES", "LAST USED"
                    );
                    let now = now_ms();
                    for t in &tokens {
                        let state = if t.revoked_ms.is_some() {
                            "revoked"
                        } else if !t.usable(now) {
                            "expired"
                        } else {
                            "active"
                        };
                        println!(
                            "{:<5} {:<24} {:<14} {:<20} {:<20} {:<20} {state}",
                            t.id,
                            term(&t.name),
                            scope_text(t.scope),
                            time(Some(t.created_ms)),
                            time(t.expires_ms),
                            time(t.last_used_ms),
                        );
                    }
                }
            }
        }
        TokenCmd::Revoke { id } => {
            let token = store.revoke_token(id).await?;
            println!("token {} {:?} revoked", token.id, token.name);
        }
    }
    Ok(())
}

pub(super) async fn audit(
    store: &Store,
    target: Option<String>,
    limit: u32,
    format: EventFormat,
) -> crate::error::Result {
    let records = store.audit_records(target.as_deref(), None, limit).await?;
    for r in &records {
        match format {
            EventFormat::Json => println!("{}", serde_json::to_string(r)?),
            EventFormat::Table => println!(
                "{:<6} {} {:<24} {:<24} {}",
                r.id,
                time(Some(r.at_ms)),
                term(&r.actor),
                r.action,
                term(&r.target)
            ),
        }
    }
    Ok(())
}

fn scope_text(scope: Scope) -> String {
    scope.to_string()
}

/// An epoch-ms time as RFC 3339 (UTC, seconds), `-` for none.
fn time(ms: Option<i64>) -> String {
    ms.and_then(|ms| jiff::Timestamp::from_millisecond(ms).ok())
        .map_or("-".to_string(), |t| {
            t.strftime("%Y-%m-%dT%H:%M:%SZ").to_string()
        })
}
