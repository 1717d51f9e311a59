//! `http.call`: call another service over HTTP (its host must be on the config's
//! allow-list). Cedar: `call` on the `Service`.

use std::collections::BTreeMap;

use super::{
    Action, ActionKind, ActionName, SimulatedAction, Spec, StepParams, Target, no_params_problem,
    split_list,
};

/// The HTTP methods `http.call` may use.
const HTTP_METHODS: [&str; 5] = ["GET", "POST", "PUT", "PATCH", "DELETE"];

/// `http.call`: `service` (the Cedar resource), `method`, `url`, optional `body` (JSON) and
/// `expect_status`.
pub(super) const CALL: Spec = Spec {
    name: "http.call",
    cedar_action: ActionName::Call,
    resource_param: "service",
    target: Target::HttpAllowList,
    params: &["service", "method", "url"],
    optional_params: &["body", "expect_status"],
    undoes: None,
    params_problem: no_params_problem,
    literal_problem,
    build,
};

fn literal_problem(name: &str, value: &str) -> Option<String> {
    match name {
        "method" => (!HTTP_METHODS.contains(&value))
            .then(|| format!("`{value}` is not one of {}", HTTP_METHODS.join(", "))),
        "url" => (!(value.starts_with("http://") || value.starts_with("https://")))
            .then(|| "must start with http:// or https://".to_owned()),
        "expect_status" => (!value.split(',').all(|code| {
            code.trim()
                .parse::<u16>()
                .is_ok_and(|c| (100..=599).contains(&c))
        }))
        .then(|| "must list HTTP status codes separated by commas".to_owned()),
        "body" => serde_json::from_str::<serde_json::Value>(value)
            .err()
            .map(|error| format!("is not JSON: {error}")),
        _ => None,
    }
}

fn build(params: &StepParams<'_>) -> Result<Action, String> {
    let expect_status = match params.param("expect_status") {
        None => Vec::new(),
        Some(list) => split_list(&list)
            .iter()
            .map(|code| {
                code.parse::<u16>()
                    .map_err(|_| format!("`expect_status` has `{code}`"))
            })
            .collect::<Result<_, _>>()?,
    };
    let body = params.param("body");
    if let Some(body) = &body
        && let Err(error) = serde_json::from_str::<serde_json::Value>(body)
    {
        return Err(format!("`body` is not JSON: {error}"));
    }
    Ok(Action::HttpCall {
        service: params.required("service")?,
        method: params.required("method")?.to_ascii_uppercase(),
        url: params.required("url")?,
        body,
        expect_status,
    })
}

/// For people: `POST https://ops.example/drain (ops)`, without query or user info.
pub(super) fn describe(service: &str, method: &str, url: &str) -> String {
    format!("{method} {} ({service})", url_without_query(url))
}

/// A URL without its query string, user info or fragment, for people and logs.
fn url_without_query(url: &str) -> String {
    let cut = url.find(['?', '#']).unwrap_or(url.len());
    let url = url.get(..cut).unwrap_or(url);
    match (url.find("://"), url.find('@')) {
        (Some(scheme_end), Some(at)) if at > scheme_end => {
            let scheme = url.get(..scheme_end + 3).unwrap_or("");
            let rest = url.get(at + 1..).unwrap_or("");
            format!("{scheme}{rest}")
        }
        _ => url.to_owned(),
    }
}

/// The simulated answer: about the service; nothing replaced.
pub(super) fn simulate(service: &str) -> SimulatedAction {
    SimulatedAction {
        kind: ActionKind::HttpCall,
        target: service.to_owned(),
        version: None,
        prior: BTreeMap::new(),
    }
}
