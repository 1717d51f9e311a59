//! Batches written back in the format clients send, so that a target can check that parsing
//! what it accepted, written back, gives the same batch. What the parsers drop (unknown
//! fields, raw tool arguments, spans that are not GenAI) is not written back: tool calls
//! carry their argument hash, and every span gets its own resource.

use serde_json::{Map, Value, json};
use vigil_core::Timestamp;
use vigil_core::intake::{
    AgentRunBatch, AlertBatch, EvalBatch, GenAiSpan, SpanBatch, SpanKind, StatusCode,
};
use vigil_core::signal::Labels;

/// `at` as RFC 3339 that `parse_rfc3339` reads back to `at`. In UTC when its year is 0000 to
/// 9999; an offset at the edge of the range can move an instant outside those years, and
/// it is then written in the local time of the offset that brings it back (as a leap second
/// for the very last instants, which only a leap second at -23:59 reaches).
#[must_use]
pub fn rfc3339(at: Timestamp) -> String {
    const EDGE_MILLIS: i64 = (23 * 60 + 59) * 60_000;
    let utc = at.to_rfc3339();
    if utc.len() == "2026-03-01T12:00:00.000Z".len() && !utc.starts_with('-') {
        return utc;
    }
    let (shift, offset) = if at.0 < 0 {
        (EDGE_MILLIS, "+23:59")
    } else {
        (-EDGE_MILLIS, "-23:59")
    };
    let local = Timestamp(at.0 + shift).to_rfc3339();
    if let Some(millis) = local.strip_prefix("10000-01-01T00:00:00.") {
        // The last second of 9999 at -23:59 as a leap second: no other form reaches it.
        return format!(
            "9999-12-31T23:59:60.{}{offset}",
            millis.trim_end_matches('Z')
        );
    }
    format!("{}{offset}", local.strip_suffix('Z').unwrap_or(&local))
}

/// Inserts `key: value` when `value` is present.
fn put(map: &mut Map<String, Value>, key: &str, value: Option<Value>) {
    if let Some(value) = value {
        map.insert(key.to_owned(), value);
    }
}

fn object(value: Value) -> Map<String, Value> {
    match value {
        Value::Object(map) => map,
        _ => Map::new(),
    }
}

fn labels(labels: &Labels) -> Value {
    Value::Object(
        labels
            .iter()
            .map(|(name, value)| (name.to_owned(), Value::from(value)))
            .collect(),
    )
}

/// An eval batch as `POST /v1/push/evals` takes it.
#[must_use]
pub fn evals(batch: &EvalBatch) -> Vec<u8> {
    let results: Vec<Value> = batch
        .results
        .iter()
        .map(|result| {
            let mut map = object(json!({
                "suite": result.suite,
                "case": result.case,
                "passed": result.passed,
                "model": result.model,
                "prompt_name": result.prompt_name,
                "prompt_version": result.prompt_version,
            }));
            put(&mut map, "score", result.score.map(Value::from));
            put(
                &mut map,
                "input_tokens",
                result.input_tokens.map(Value::from),
            );
            put(&mut map, "run_id", result.run_id.clone().map(Value::from));
            put(&mut map, "ts", result.ran_at.map(|at| rfc3339(at).into()));
            Value::Object(map)
        })
        .collect();
    serde_json::to_vec(&json!({ "results": results })).unwrap_or_default()
}

/// An agent-run batch as `POST /v1/push/agent-runs` takes it (arguments as their hash).
#[must_use]
pub fn agent_runs(batch: &AgentRunBatch) -> Vec<u8> {
    let runs: Vec<Value> = batch
        .runs
        .iter()
        .map(|run| {
            let calls: Vec<Value> = run
                .tool_calls
                .iter()
                .map(|call| {
                    let mut map = object(json!({ "name": call.name }));
                    put(
                        &mut map,
                        "arguments_hash",
                        call.arguments_hash.clone().map(Value::from),
                    );
                    Value::Object(map)
                })
                .collect();
            let mut map = object(json!({
                "run_id": run.run_id,
                "agent": run.agent,
                "iterations": run.iterations,
                "outcome": run.outcome.as_str(),
                "tool_calls": calls,
            }));
            put(&mut map, "input_tokens", run.input_tokens.map(Value::from));
            put(
                &mut map,
                "output_tokens",
                run.output_tokens.map(Value::from),
            );
            put(&mut map, "ts", run.ended_at.map(|at| rfc3339(at).into()));
            put(&mut map, "api_key", run.api_key.clone().map(Value::from));
            Value::Object(map)
        })
        .collect();
    serde_json::to_vec(&json!({ "runs": runs })).unwrap_or_default()
}

/// An Alertmanager notification (webhook version 4).
#[must_use]
pub fn alertmanager(batch: &AlertBatch) -> Vec<u8> {
    let alerts: Vec<Value> = batch
        .alerts
        .iter()
        .map(|alert| {
            let mut map = object(json!({
                "status": alert.status.as_str(),
                "labels": labels(&alert.labels),
                "annotations": labels(&alert.annotations),
                "startsAt": rfc3339(alert.starts_at),
                "generatorURL": alert.generator_url,
                "fingerprint": alert.fingerprint,
            }));
            put(
                &mut map,
                "endsAt",
                alert.ends_at.map(|at| rfc3339(at).into()),
            );
            Value::Object(map)
        })
        .collect();
    let body = json!({
        "version": "4",
        "status": batch.status.as_str(),
        "receiver": batch.receiver,
        "groupKey": batch.group_key,
        "groupLabels": labels(&batch.group_labels),
        "commonLabels": labels(&batch.common_labels),
        "commonAnnotations": labels(&batch.common_annotations),
        "externalURL": batch.external_url,
        "truncatedAlerts": batch.truncated_alerts,
        "alerts": alerts,
    });
    serde_json::to_vec(&body).unwrap_or_default()
}

/// OTLP's number for a span kind.
#[must_use]
pub fn kind_number(kind: SpanKind) -> u64 {
    match kind {
        SpanKind::Unspecified => 0,
        SpanKind::Internal => 1,
        SpanKind::Server => 2,
        SpanKind::Client => 3,
        SpanKind::Producer => 4,
        SpanKind::Consumer => 5,
    }
}

/// OTLP's number for a status code.
#[must_use]
pub fn status_number(code: StatusCode) -> u64 {
    match code {
        StatusCode::Unset => 0,
        StatusCode::Ok => 1,
        StatusCode::Error => 2,
    }
}

fn attribute(key: &str, value: Value) -> Value {
    json!({ "key": key, "value": value })
}

fn span(span: &GenAiSpan) -> Value {
    let mut attributes = Vec::new();
    let texts = [
        ("gen_ai.operation.name", &span.operation),
        ("gen_ai.provider.name", &span.provider),
        ("gen_ai.request.model", &span.request_model),
        ("gen_ai.response.model", &span.response_model),
        ("error.type", &span.error_type),
        ("gen_ai.agent.name", &span.agent_name),
        ("gen_ai.tool.name", &span.tool_name),
    ];
    for (key, text) in texts {
        if let Some(text) = text {
            attributes.push(attribute(key, json!({ "stringValue": text })));
        }
    }
    if span.operation.is_none() && span.provider.is_none() {
        // It was a GenAI span by an empty operation or provider, which is kept as absent.
        attributes.push(attribute("gen_ai.system", json!({ "stringValue": "" })));
    }
    for (key, tokens) in [
        ("gen_ai.usage.input_tokens", span.input_tokens),
        ("gen_ai.usage.output_tokens", span.output_tokens),
    ] {
        if let Some(tokens) = tokens {
            attributes.push(attribute(key, json!({ "intValue": tokens.to_string() })));
        }
    }
    if !span.finish_reasons.is_empty() {
        let values: Vec<Value> = span
            .finish_reasons
            .iter()
            .map(|reason| json!({ "stringValue": reason }))
            .collect();
        attributes.push(attribute(
            "gen_ai.response.finish_reasons",
            json!({ "arrayValue": { "values": values } }),
        ));
    }
    let mut map = object(json!({
        "traceId": span.trace_id,
        "spanId": span.span_id,
        "name": span.name,
        "kind": kind_number(span.kind),
        "startTimeUnixNano": span.start_time_unix_nano.to_string(),
        "endTimeUnixNano": span.end_time_unix_nano.to_string(),
        "attributes": attributes,
        "status": { "code": status_number(span.status.code), "message": span.status.message },
    }));
    put(
        &mut map,
        "parentSpanId",
        span.parent_span_id.clone().map(Value::from),
    );
    let mut resource = object(json!({ "scopeSpans": [ { "spans": [ Value::Object(map) ] } ] }));
    if let Some(service_name) = &span.service_name {
        let attributes = [attribute(
            "service.name",
            json!({ "stringValue": service_name }),
        )];
        resource.insert("resource".to_owned(), json!({ "attributes": attributes }));
    }
    Value::Object(resource)
}

/// The GenAI spans of a batch as an OTLP/JSON export, one resource per span.
#[must_use]
pub fn otlp(batch: &SpanBatch) -> Vec<u8> {
    let resources: Vec<Value> = batch.spans.iter().map(span).collect();
    serde_json::to_vec(&json!({ "resourceSpans": resources })).unwrap_or_default()
}
