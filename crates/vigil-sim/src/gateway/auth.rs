//! Authentication as LiteLLM's `user_api_key_auth` answers it: the master key, virtual keys,
//! and the exact messages for a missing, malformed or unknown key.

use axum::http::header::AUTHORIZATION;
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;

use super::errors::proxy_error;
use super::state::{Caller, Inner, Shared};

/// Why authentication failed, with what LiteLLM's failure hook would record about it.
pub(crate) struct AuthFailure {
    /// The message, as LiteLLM words it.
    pub(crate) message: String,
    error_type: &'static str,
    param: &'static str,
    /// The `hashed_api_key` label: empty when no key was passed.
    pub(crate) hashed_api_key: String,
    /// The `exception_class` label.
    pub(crate) exception_class: &'static str,
}

impl AuthFailure {
    fn new(
        message: String,
        error_type: &'static str,
        param: &'static str,
        hashed_api_key: String,
        exception_class: &'static str,
    ) -> Self {
        Self {
            message,
            error_type,
            param,
            hashed_api_key,
            exception_class,
        }
    }

    /// The 401 LiteLLM answers.
    pub(crate) fn response(&self) -> Response {
        proxy_error(
            StatusCode::UNAUTHORIZED,
            self.message.clone(),
            self.error_type,
            self.param,
        )
    }
}

/// Authenticates the `Authorization: Bearer` header against the master key and virtual keys.
///
/// A blocked key still authenticates here; each endpoint decides what a block means to it.
pub(crate) fn authenticate(
    shared: &Shared,
    inner: &Inner,
    headers: &HeaderMap,
) -> Result<Caller, AuthFailure> {
    let header = headers
        .get(AUTHORIZATION)
        .and_then(|value| value.to_str().ok())
        .unwrap_or("");
    if header.trim().is_empty() {
        return Err(AuthFailure::new(
            "Authentication Error, No api key passed in.".to_owned(),
            "auth_error",
            "None",
            String::new(),
            // LiteLLM raises a bare `Exception` here, which its failure hook records as such.
            "Exception",
        ));
    }
    let Some(key) = header.strip_prefix("Bearer ").map(str::trim) else {
        return Err(AuthFailure::new(
            "Authentication Error, Malformed API Key passed in. Ensure Key has `Bearer ` prefix."
                .to_owned(),
            "auth_error",
            "None",
            String::new(),
            "Exception",
        ));
    };
    if key == shared.master_key {
        return Ok(Caller::Master);
    }
    let hashed = crate::sha256_hex(key);
    if !key.starts_with("sk-") {
        return Err(AuthFailure::new(
            format!(
                "Authentication Error, LiteLLM Virtual Key expected. Received={}, expected to start with 'sk-'.",
                mask(key)
            ),
            "auth_error",
            "None",
            hashed,
            "Exception",
        ));
    }
    if inner.keys.contains_key(&hashed) {
        return Ok(Caller::Key(hashed));
    }
    Err(AuthFailure::new(
        format!(
            "Authentication Error, Invalid proxy server token passed. Received API Key = {}, Key Hash (Token) ={hashed}. Unable to find token in cache or `LiteLLM_VerificationTokenTable`",
            crate::abbreviate_key(key)
        ),
        "token_not_found_in_db",
        "key",
        hashed,
        "ProxyException",
    ))
}

/// LiteLLM's answer to a blocked key on an LLM route.
pub(crate) fn blocked_key_response() -> Response {
    proxy_error(
        StatusCode::UNAUTHORIZED,
        "Authentication Error, Key is blocked. Update via `/key/unblock` if you're an admin.",
        "auth_error",
        "None",
    )
}

/// LiteLLM's answer to a virtual key calling an admin-only route.
pub(crate) fn admin_only_response(route: &str, user_id: Option<&str>) -> Response {
    proxy_error(
        StatusCode::UNAUTHORIZED,
        format!(
            "Authentication Error, Only proxy admin can be used to generate, delete, update info for new keys/users/teams. Route={route}. Your role=internal_user. Your user_id={}",
            user_id.unwrap_or("None")
        ),
        "auth_error",
        "None",
    )
}

/// Masks the middle of a string that is not a key, as LiteLLM does: `not-****-key`.
fn mask(value: &str) -> String {
    let characters: Vec<char> = value.chars().collect();
    if characters.len() <= 8 {
        return "****".to_owned();
    }
    let head: String = characters.iter().take(4).collect();
    let tail: String = characters.iter().skip(characters.len() - 4).collect();
    format!("{head}****{tail}")
}
