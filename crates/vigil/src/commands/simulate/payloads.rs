//! The bodies a scenario's shorthand pushes stand for: a batch of eval results (split between
//! the models serving, when it gives `by_model`) and an OTLP/JSON trace export of GenAI and
//! database spans. Both are parsed by vigil's own intake, as a pushed body would be.

use serde_json::{Value, json};

use super::scenario::{RawEvals, RawSpans};

/// The JSON body of `POST /v1/push/evals` for `evals` while its model is routed to
/// `fallback` (by vigil's `litellm.set_fallbacks`), if it is; an error names a model that
/// answers cases but that `by_model` does not describe.
pub(super) fn evals_body(evals: &RawEvals, fallback: Option<&str>) -> Result<Value, String> {
    // Each part: the model, how many cases it answers, how many of those fail.
    let parts: Vec<(&str, u32, u32)> = match &evals.by_model {
        None => vec![(
            evals.model.as_str(),
            evals.cases,
            evals.failed.unwrap_or_default(),
        )],
        Some(by_model) => {
            let share = match fallback {
                Some(_) => evals.fallback_share.unwrap_or(1.0),
                None => 0.0,
            };
            let n_fallback = share_of(evals.cases, share);
            let answering = [
                (evals.model.as_str(), evals.cases - n_fallback),
                (fallback.unwrap_or_default(), n_fallback),
            ];
            let mut parts = Vec::new();
            for (model, n_cases) in answering {
                if n_cases == 0 {
                    continue;
                }
                let Some(model_evals) = by_model.get(model) else {
                    return Err(format!(
                        "`by_model` does not say how `{model}` does, and it answers {n_cases} of the cases"
                    ));
                };
                let fail_rate = f64::from(model_evals.failed) / f64::from(evals.cases.max(1));
                parts.push((model, n_cases, share_of(n_cases, fail_rate)));
            }
            parts
        }
    };
    let mut results = Vec::new();
    for (model, n_cases, n_failed) in parts {
        for idx_in_part in 0..n_cases {
            let mut result = json!({
                "suite": evals.suite,
                "case": format!("case-{}", results.len()),
                "passed": idx_in_part >= n_failed,
                "model": model,
                "prompt_name": evals.prompt,
                "prompt_version": evals.version,
            });
            if let (Some(tokens), Some(object)) = (evals.input_tokens, result.as_object_mut()) {
                object.insert("input_tokens".to_owned(), json!(tokens));
            }
            results.push(result);
        }
    }
    Ok(json!({ "results": results }))
}

/// `share` (0 to 1) of `n`, rounded to the nearest whole number.
fn share_of(n: u32, share: f64) -> u32 {
    // Within 0..=n by the clamp, so the conversion loses nothing.
    (f64::from(n) * share.clamp(0.0, 1.0)).round() as u32
}

/// The OTLP/JSON `ExportTraceServiceRequest` for `groups`, each span ending at `end_ms` (Unix
/// milliseconds). Ids are made from `push_idx`, `end_ms` and the span's place in the push, so
/// that a run is the same every time and no two spans of a run share an id.
pub(super) fn spans_body(groups: &[RawSpans], push_idx: usize, end_ms: i64) -> Value {
    let end_ns = u64::try_from(end_ms).unwrap_or_default() * 1_000_000;
    let mut n_span = 0_u64;
    let resource_spans: Vec<Value> = groups
        .iter()
        .map(|group| {
            let start_ns = end_ns.saturating_sub(group.duration_ms * 1_000_000);
            let attributes = span_attributes(group);
            let name = span_name(group);
            let mut status = json!({ "code": 0 });
            if let Some(error) = &group.error {
                status = json!({ "code": 2, "message": error });
            }
            let spans: Vec<Value> = (0..group.count)
                .map(|_| {
                    n_span += 1;
                    json!({
                        "traceId": format!("{:08x}{:012x}{:012x}", push_idx + 1, end_ms, n_span),
                        "spanId": format!("{n_span:016x}"),
                        "name": name,
                        "kind": 3,
                        "startTimeUnixNano": start_ns.to_string(),
                        "endTimeUnixNano": end_ns.to_string(),
                        "attributes": attributes,
                        "status": status,
                    })
                })
                .collect();
            let mut resource = json!({ "attributes": [] });
            if let Some(service) = &group.service {
                resource = json!({ "attributes": [string_attribute("service.name", service)] });
            }
            json!({
                "resource": resource,
                "scopeSpans": [{
                    "scope": { "name": "vigil.simulate" },
                    "spans": spans,
                }],
            })
        })
        .collect();
    json!({ "resourceSpans": resource_spans })
}

/// The span's name, as the semantic conventions form it: `chat gpt-4o`, `query docs`.
fn span_name(group: &RawSpans) -> String {
    let operation = span_operation(group);
    match (&group.model, &group.collection) {
        (Some(model), _) => format!("{operation} {model}"),
        (None, Some(collection)) => format!("{operation} {collection}"),
        (None, None) => operation.to_owned(),
    }
}

fn span_operation(group: &RawSpans) -> &str {
    match (&group.operation, &group.db_system) {
        (Some(operation), _) => operation,
        (None, Some(_)) => "query",
        (None, None) => "chat",
    }
}

fn span_attributes(group: &RawSpans) -> Vec<Value> {
    let mut attributes = Vec::new();
    let mut text = |key: &str, value: &Option<String>| {
        if let Some(value) = value {
            attributes.push(string_attribute(key, value));
        }
    };
    let operation = Some(span_operation(group).to_owned());
    if group.db_system.is_some() {
        text("db.system.name", &group.db_system);
        text("db.operation.name", &operation);
        text("db.collection.name", &group.collection);
    } else {
        text("gen_ai.operation.name", &operation);
        text("gen_ai.provider.name", &group.provider);
        text("gen_ai.system", &group.system);
        text("gen_ai.request.model", &group.model);
        text("gen_ai.response.model", &group.response_model);
    }
    text("server.address", &group.server_address);
    text("error.type", &group.error);
    for (key, tokens) in [
        ("gen_ai.usage.input_tokens", group.input_tokens),
        ("gen_ai.usage.output_tokens", group.output_tokens),
    ] {
        if let Some(tokens) = tokens {
            attributes.push(json!({ "key": key, "value": { "intValue": tokens.to_string() } }));
        }
    }
    if let Some(reason) = &group.finish_reason {
        attributes.push(json!({
            "key": "gen_ai.response.finish_reasons",
            "value": { "arrayValue": { "values": [ { "stringValue": reason } ] } },
        }));
    }
    attributes
}

fn string_attribute(key: &str, value: &str) -> Value {
    json!({ "key": key, "value": { "stringValue": value } })
}
