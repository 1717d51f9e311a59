//! LiteLLM's team blocking: `POST /team/block` and `POST /team/unblock`, master key only,
//! answering the updated `LiteLLM_TeamTable` row. A blocked team's keys are refused on chat.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;

use axum::Json;
use axum::body::Bytes;
use axum::extract::{ConnectInfo, State};
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use super::admin::{About, AdminRequest, admin_body, log_call_about};
use super::errors::proxy_error;
use super::state::{KeyRecord, Shared, TeamRecord, iso8601_utc, now_unix};

/// `POST /team/block`.
pub(crate) async fn block(
    State(shared): State<Arc<Shared>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let request = AdminRequest {
        peer,
        route: uri.path().to_owned(),
        headers,
    };
    set_team_blocked(&shared, &request, &body, true)
}

/// `POST /team/unblock`.
pub(crate) async fn unblock(
    State(shared): State<Arc<Shared>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let request = AdminRequest {
        peer,
        route: uri.path().to_owned(),
        headers,
    };
    set_team_blocked(&shared, &request, &body, false)
}

/// LiteLLM's answer to a key of a blocked team on an LLM route: `common_checks` raises a bare
/// `Exception`, which the auth exception handler prefixes and answers with 401.
pub(crate) fn blocked_team_response(team_id: &str) -> Response {
    proxy_error(
        StatusCode::UNAUTHORIZED,
        format!(
            "Authentication Error, Team={team_id} is blocked. Update via `/team/unblock` if you're an admin."
        ),
        "auth_error",
        "None",
    )
}

fn set_team_blocked(
    shared: &Shared,
    request: &AdminRequest,
    body: &[u8],
    blocked: bool,
) -> Response {
    let mut guard = shared.lock();
    let inner = &mut *guard;
    let team_id = match admin_body(shared, inner, request, body, "team_id") {
        Ok((_body, team_id)) => team_id,
        Err(response) => return *response,
    };
    let response = match inner.teams.get_mut(&team_id) {
        // An `HTTPException` with a dict detail, which FastAPI answers as `{"detail": ...}`.
        None => (
            StatusCode::NOT_FOUND,
            Json(json!({ "detail": { "error": format!("Team not found, passed team_id={team_id}") } })),
        )
            .into_response(),
        Some(team) => {
            team.blocked = blocked;
            team.updated_at = iso8601_utc(now_unix());
            (StatusCode::OK, Json(team_object(team, &inner.keys))).into_response()
        }
    };
    log_call_about(
        inner,
        &request.route,
        About::subject(Some(team_id)),
        &response,
    );
    response
}

/// A team as LiteLLM returns its `LiteLLM_TeamTable` row.
fn team_object(team: &TeamRecord, keys: &HashMap<String, KeyRecord>) -> Value {
    let spend: f64 = keys
        .values()
        .filter(|key| key.team_id.as_deref() == Some(team.team_id.as_str()))
        .map(|key| key.spend)
        .sum();
    json!({
        "team_id": team.team_id,
        // The simulator's metrics label `team_alias` with the team id; the row agrees.
        "team_alias": team.team_id,
        "organization_id": null,
        "object_permission_id": null,
        "admins": [],
        "members": [],
        "members_with_roles": [],
        "metadata": {},
        "max_budget": null,
        "soft_budget": null,
        "spend": spend,
        "models": [],
        "max_parallel_requests": null,
        "tpm_limit": null,
        "rpm_limit": null,
        "tpd_limit": null,
        "budget_duration": null,
        "budget_reset_at": null,
        "blocked": team.blocked,
        "created_at": team.created_at,
        "updated_at": team.updated_at,
        "model_spend": {},
        "model_max_budget": {},
        "router_settings": {},
        "team_member_permissions": [],
        "access_group_ids": [],
        "policies": [],
        "default_team_member_models": [],
        "budget_limits": null,
        "model_id": null,
        "allow_team_guardrail_config": false,
    })
}
