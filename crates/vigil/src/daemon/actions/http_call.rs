//! `http.call` through the generic HTTP caller (its host must be on the allow-list): any
//! expected status is success. It cannot be read back, so after a crash it is sent again
//! with the same `Idempotency-Key`, which the service recognises.

use std::collections::BTreeMap;

use vigil_connectors::ConnectorError;
use vigil_connectors::http_action::{HttpMethod, HttpRequestSpec};
use vigil_core::engine::ActionOutcome;

use super::Targets;

/// Calls the service.
pub(super) async fn act(
    targets: &Targets,
    method: &str,
    url: &str,
    body: Option<&str>,
    expect_status: &[u16],
    idempotency_key: &str,
) -> Result<ActionOutcome, ConnectorError> {
    let Some(caller) = &targets.http else {
        return Err(ConnectorError::NotConfigured {
            what: "`http.call` needs `actions.http` in the config".to_owned(),
        });
    };
    let spec =
        HttpRequestSpec {
            method: http_method(method)?,
            url: url.to_owned(),
            headers: Vec::new(),
            body: match body {
                Some(text) => Some(serde_json::from_str(text).map_err(|error| {
                    ConnectorError::NotConfigured {
                        what: format!("the body is not JSON: {error}"),
                    }
                })?),
                None => None,
            },
            expected_statuses: expect_status.to_vec(),
            idempotency_key: Some(idempotency_key.to_owned()),
        };
    let answer = caller.call(&spec).await?;
    Ok(ActionOutcome {
        succeeded: true,
        http_status: Some(answer.status),
        detail: format!("answered {}: {}", answer.status, answer.excerpt),
        prior: BTreeMap::new(),
    })
}

/// Sent again with the same Idempotency-Key: the service recognises the retry.
pub(super) fn already_done() -> Option<String> {
    None
}

fn http_method(method: &str) -> Result<HttpMethod, ConnectorError> {
    Ok(match method {
        "GET" => HttpMethod::Get,
        "POST" => HttpMethod::Post,
        "PUT" => HttpMethod::Put,
        "PATCH" => HttpMethod::Patch,
        "DELETE" => HttpMethod::Delete,
        other => {
            return Err(ConnectorError::NotConfigured {
                what: format!("`{other}` is not an HTTP method vigil uses"),
            });
        }
    })
}
