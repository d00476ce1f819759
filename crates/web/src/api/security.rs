//! `/api/v1/blocklist`, `/api/v1/whitelist` and `/api/v1/settings`: the sources the switch
//! refuses or never blocks automatically, and the global settings. Operators only; changes
//! need an admin token.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use domain::Setting;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::Api;
use super::auth::Principal;
use super::customers::parse_net;
use super::input::{Body, time};
use super::problem::{ApiResult, Problem};

/// One block-list entry.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct BlockView {
    pub network: String,
    pub reason: String,
    /// manual, flood or auth_fail.
    pub source: String,
    /// null: permanent.
    pub expires: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct BlockList {
    pub items: Vec<BlockView>,
}

/// The block list.
#[utoipa::path(get, path = "/api/v1/blocklist", tag = "security",
    responses((status = 200, body = BlockList), (status = 403, body = Problem)),
    security(("bearer" = [])))]
pub(crate) async fn blocks(State(api): State<Api>, who: Principal) -> ApiResult<Json<BlockList>> {
    who.operator()?;
    let items = api
        .store
        .list_blocks()
        .await?
        .iter()
        .map(|b| BlockView {
            network: b.network.to_string(),
            reason: b.reason.clone(),
            source: b.source.clone(),
            expires: b.expires_ms.map(time),
        })
        .collect();
    Ok(Json(BlockList { items }))
}

/// A source to block.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct NewBlock {
    /// An address or network (CIDR).
    pub network: String,
    pub reason: Option<String>,
    /// Seconds until it ends (1 to 31536000); none: permanent.
    pub seconds: Option<u32>,
}

/// Blocks a source (admin): its requests get 403 Forbidden - Blacklisted within a second.
#[utoipa::path(post, path = "/api/v1/blocklist", tag = "security", request_body = NewBlock,
    responses((status = 201, body = BlockView), (status = 403, body = Problem), (status = 422, body = Problem)),
    security(("bearer" = [])))]
pub(crate) async fn add_block(
    State(api): State<Api>,
    who: Principal,
    Body(new): Body<NewBlock>,
) -> ApiResult<(StatusCode, Json<BlockView>)> {
    who.operator()?;
    who.admin()?;
    let net = parse_net(&new.network)
        .ok_or_else(|| Problem::invalid("network", "an address or network (CIDR)"))?;
    if new.seconds.is_some_and(|s| s == 0 || s > 31_536_000) {
        return Err(Problem::invalid("seconds", "1 to 31536000"));
    }
    let expires_ms = new.seconds.map(|s| domain::now_ms() + i64::from(s) * 1000);
    let reason = new.reason.unwrap_or_default();
    who.store(&api).add_block(net, &reason, expires_ms).await?;
    Ok((
        StatusCode::CREATED,
        Json(BlockView {
            network: net.trunc().to_string(),
            reason,
            source: "manual".into(),
            expires: expires_ms.map(time),
        }),
    ))
}

/// A network in a path: `198.51.100.0/24` written `198.51.100.0_24` or percent-encoded.
fn path_net(text: &str) -> ApiResult<ipnet::IpNet> {
    parse_net(&text.replace('_', "/"))
        .ok_or_else(|| Problem::invalid("network", "an address or network (CIDR; `/` as `_`)"))
}

/// Lifts a block (admin): 404 when there is none for exactly this network.
#[utoipa::path(delete, path = "/api/v1/blocklist/{network}", tag = "security",
    params(("network" = String, Path, description = "Address or network; `/` may be written `_`")),
    responses((status = 204), (status = 403, body = Problem), (status = 404, body = Problem)),
    security(("bearer" = [])))]
pub(crate) async fn remove_block(
    State(api): State<Api>,
    who: Principal,
    Path(network): Path<String>,
) -> ApiResult<StatusCode> {
    who.operator()?;
    who.admin()?;
    if who.store(&api).remove_block(path_net(&network)?).await? {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(Problem::not_found("block"))
    }
}

/// One whitelist entry.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct WhitelistView {
    pub network: String,
    pub reason: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct WhitelistList {
    pub items: Vec<WhitelistView>,
}

/// The whitelist: sources never blocked automatically.
#[utoipa::path(get, path = "/api/v1/whitelist", tag = "security",
    responses((status = 200, body = WhitelistList), (status = 403, body = Problem)),
    security(("bearer" = [])))]
pub(crate) async fn whitelist(
    State(api): State<Api>,
    who: Principal,
) -> ApiResult<Json<WhitelistList>> {
    who.operator()?;
    let items = api
        .store
        .list_whitelist()
        .await?
        .iter()
        .map(|(n, r)| WhitelistView {
            network: n.to_string(),
            reason: r.clone(),
        })
        .collect();
    Ok(Json(WhitelistList { items }))
}

/// A source never to block automatically.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct NewWhitelist {
    pub network: String,
    pub reason: Option<String>,
}

/// Whitelists a source (admin).
#[utoipa::path(post, path = "/api/v1/whitelist", tag = "security", request_body = NewWhitelist,
    responses((status = 201, body = WhitelistView), (status = 403, body = Problem), (status = 422, body = Problem)),
    security(("bearer" = [])))]
pub(crate) async fn add_whitelist(
    State(api): State<Api>,
    who: Principal,
    Body(new): Body<NewWhitelist>,
) -> ApiResult<(StatusCode, Json<WhitelistView>)> {
    who.operator()?;
    who.admin()?;
    let net = parse_net(&new.network)
        .ok_or_else(|| Problem::invalid("network", "an address or network (CIDR)"))?;
    let reason = new.reason.unwrap_or_default();
    who.store(&api).add_whitelist(net, &reason).await?;
    Ok((
        StatusCode::CREATED,
        Json(WhitelistView {
            network: net.trunc().to_string(),
            reason,
        }),
    ))
}

/// Removes a whitelist entry (admin).
#[utoipa::path(delete, path = "/api/v1/whitelist/{network}", tag = "security",
    params(("network" = String, Path, description = "Address or network; `/` may be written `_`")),
    responses((status = 204), (status = 403, body = Problem), (status = 404, body = Problem)),
    security(("bearer" = [])))]
pub(crate) async fn remove_whitelist(
    State(api): State<Api>,
    who: Principal,
    Path(network): Path<String>,
) -> ApiResult<StatusCode> {
    who.operator()?;
    who.admin()?;
    if who
        .store(&api)
        .remove_whitelist(path_net(&network)?)
        .await?
    {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(Problem::not_found("whitelist entry"))
    }
}

/// One global setting.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct SettingView {
    pub key: String,
    pub value: String,
    /// The value is the built-in default (nothing stored).
    pub default: bool,
    pub help: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct SettingList {
    pub items: Vec<SettingView>,
}

/// Every setting with its value, default and help.
#[utoipa::path(get, path = "/api/v1/settings", tag = "security",
    responses((status = 200, body = SettingList), (status = 403, body = Problem)),
    security(("bearer" = [])))]
pub(crate) async fn settings(
    State(api): State<Api>,
    who: Principal,
) -> ApiResult<Json<SettingList>> {
    who.operator()?;
    let stored = api.store.list_settings().await?;
    let items = Setting::ALL
        .iter()
        .map(|s| {
            let value = stored
                .iter()
                .find(|(k, _)| k == s.key())
                .map(|(_, v)| v.clone());
            SettingView {
                key: s.key().to_string(),
                default: value.is_none(),
                value: value.unwrap_or_else(|| s.default_value().to_string()),
                help: s.help().to_string(),
            }
        })
        .collect();
    Ok(Json(SettingList { items }))
}

/// A setting's new value.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct SettingChange {
    pub value: String,
}

/// Sets a global setting (admin); unknown keys are 404.
#[utoipa::path(put, path = "/api/v1/settings/{key}", tag = "security",
    params(("key" = String, Path)), request_body = SettingChange,
    responses((status = 200, body = SettingView), (status = 403, body = Problem),
        (status = 404, body = Problem), (status = 422, body = Problem)),
    security(("bearer" = [])))]
pub(crate) async fn set_setting(
    State(api): State<Api>,
    who: Principal,
    Path(key): Path<String>,
    Body(change): Body<SettingChange>,
) -> ApiResult<Json<SettingView>> {
    who.operator()?;
    who.admin()?;
    let setting = Setting::from_key(&key).map_err(|_| Problem::not_found("setting"))?;
    let value = setting
        .check(&change.value)
        .map_err(|e| Problem::invalid("value", e.message()))?;
    who.store(&api).set_setting(setting.key(), &value).await?;
    Ok(Json(SettingView {
        key: setting.key().to_string(),
        value,
        default: false,
        help: setting.help().to_string(),
    }))
}
