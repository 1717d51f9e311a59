//! Fuzzes `parse_otlp_traces_protobuf` (`POST /v1/traces`, OTLP/protobuf) with arbitrary bytes
//! and checks what must always hold:
//!
//! - parsing never panics, and takes time about linear in the input (libFuzzer's `-timeout`);
//! - a refusal has 1 to `MAX_PROBLEMS` problems, each with a printable path and a short,
//!   printable, lowercase message;
//! - whenever `prost` decodes the whole body as an `ExportTraceServiceRequest` (the oracle:
//!   protobuf's own reading, written independently of vigil's walk), the same request written
//!   as OTLP/JSON gets the same answer from the JSON parser: refused when the protobuf parser
//!   refuses it, else the same batch;
//! - an accepted batch, written back in protobuf (one resource per span), parses to the same
//!   spans, survives the ledger's JSON round trip, and its signals keep the table's promises
//!   (`vigil_fuzz::check_accepted`).

#![no_main]

use libfuzzer_sys::fuzz_target;
use prost::Message as _;
use serde_json::{Value, json};
use vigil_core::intake::otlp_messages as pb;
use vigil_core::intake::{
    MAX_PROBLEMS, Pushed, SpanBatch, parse_otlp_traces, parse_otlp_traces_protobuf,
};
use vigil_fuzz::wire::{kind_number, status_number};

fuzz_target!(|data: &[u8]| {
    let parsed = parse_otlp_traces_protobuf(data);
    if let Ok(request) = pb::ExportTraceServiceRequest::decode(data) {
        let as_json = serde_json::to_vec(&request_json(&request)).expect("serializes");
        match (&parsed, parse_otlp_traces(&as_json)) {
            (Ok(batch), Ok(from_json)) => assert_eq!(batch, &from_json, "JSON and protobuf differ"),
            (Err(_), Err(_)) => {}
            (parsed, from_json) => panic!(
                "protobuf: {parsed:?}\nJSON: {from_json:?}\n{}",
                String::from_utf8_lossy(&as_json)
            ),
        }
    }
    match parsed {
        Err(error) => {
            assert!(!error.problems.is_empty() && error.problems.len() <= MAX_PROBLEMS);
            for problem in &error.problems {
                let message = &problem.message;
                assert!(!message.is_empty() && message.chars().count() <= 256, "{problem:?}");
                assert!(!message.chars().any(char::is_control), "{problem:?}");
                assert!(!problem.path.chars().any(char::is_control), "{problem:?}");
                assert!(
                    !message.starts_with(|ch: char| ch.is_ascii_uppercase())
                        && !message.ends_with('.'),
                    "{problem:?}"
                );
            }
        }
        Ok(batch) => {
            let again = parse_otlp_traces_protobuf(&write_back(&batch))
                .expect("written back, the spans parse");
            assert_eq!(again.spans, batch.spans, "written back, the spans parse differently");
            assert_eq!(again.spans_received, batch.spans.len() as u64);
            let n_spans = batch.spans.len();
            vigil_fuzz::check_accepted(data, &Pushed::Spans(batch), n_spans);
        }
    }
});

/// The request in OTLP/JSON, as protobuf means it: a default (empty id, zero time) is absent.
fn request_json(request: &pb::ExportTraceServiceRequest) -> Value {
    let resources: Vec<Value> = request
        .resource_spans
        .iter()
        .map(|resource_spans| {
            let scopes: Vec<Value> = resource_spans
                .scope_spans
                .iter()
                .map(|scope| json!({ "spans": scope.spans.iter().map(span_json).collect::<Vec<_>>() }))
                .collect();
            let mut map = json!({ "scopeSpans": scopes });
            if let Some(resource) = &resource_spans.resource {
                map["resource"] = json!({ "attributes": attributes_json(&resource.attributes) });
            }
            map
        })
        .collect();
    json!({ "resourceSpans": resources })
}

fn span_json(span: &pb::Span) -> Value {
    let mut map = json!({
        "name": span.name,
        "kind": span.kind,
        "attributes": attributes_json(&span.attributes),
    });
    for (key, id) in [
        ("traceId", &span.trace_id),
        ("spanId", &span.span_id),
        ("parentSpanId", &span.parent_span_id),
    ] {
        if !id.is_empty() {
            map[key] = json!(hex::encode(id));
        }
    }
    for (key, time) in [
        ("startTimeUnixNano", span.start_time_unix_nano),
        ("endTimeUnixNano", span.end_time_unix_nano),
    ] {
        if time != 0 {
            map[key] = json!(time.to_string());
        }
    }
    if let Some(status) = &span.status {
        map["status"] = json!({ "code": status.code, "message": status.message });
    }
    map
}

fn attributes_json(attributes: &[pb::KeyValue]) -> Vec<Value> {
    attributes
        .iter()
        .map(|attribute| match &attribute.value {
            Some(value) => json!({ "key": attribute.key, "value": any_json(value) }),
            None => json!({ "key": attribute.key }),
        })
        .collect()
}

fn any_json(value: &pb::AnyValue) -> Value {
    match &value.value {
        None => json!({}),
        Some(pb::Value::StringValue(text)) => json!({ "stringValue": text }),
        Some(pb::Value::BoolValue(flag)) => json!({ "boolValue": flag }),
        Some(pb::Value::IntValue(int)) => json!({ "intValue": int }),
        // JSON has no NaN or infinity: as OTLP/JSON writes them, a string.
        Some(pb::Value::DoubleValue(double)) if !double.is_finite() => {
            json!({ "doubleValue": double.to_string() })
        }
        Some(pb::Value::DoubleValue(double)) => json!({ "doubleValue": double }),
        Some(pb::Value::ArrayValue(array)) => {
            json!({ "arrayValue": { "values": array.values.iter().map(any_json).collect::<Vec<_>>() } })
        }
        Some(pb::Value::KvlistValue(list)) => {
            json!({ "kvlistValue": { "values": attributes_json(&list.values) } })
        }
        Some(pb::Value::BytesValue(bytes)) => json!({ "bytesValue": hex::encode(bytes) }),
    }
}

/// The GenAI spans of a batch as an OTLP/protobuf export, one resource per span.
fn write_back(batch: &SpanBatch) -> Vec<u8> {
    let text = |key: &str, value: &str| pb::KeyValue {
        key: key.to_owned(),
        value: Some(pb::AnyValue {
            value: Some(pb::Value::StringValue(value.to_owned())),
        }),
    };
    let int = |key: &str, value: u64| pb::KeyValue {
        key: key.to_owned(),
        value: Some(pb::AnyValue {
            value: Some(pb::Value::IntValue(value as i64)),
        }),
    };
    let resource_spans = batch
        .spans
        .iter()
        .map(|span| {
            let mut attributes = Vec::new();
            for (key, value) in [
                ("gen_ai.operation.name", &span.operation),
                ("gen_ai.provider.name", &span.provider),
                ("gen_ai.request.model", &span.request_model),
                ("gen_ai.response.model", &span.response_model),
                ("error.type", &span.error_type),
                ("gen_ai.agent.name", &span.agent_name),
                ("gen_ai.tool.name", &span.tool_name),
            ] {
                attributes.extend(value.as_deref().map(|value| text(key, value)));
            }
            attributes.extend(span.input_tokens.map(|n| int("gen_ai.usage.input_tokens", n)));
            attributes.extend(span.output_tokens.map(|n| int("gen_ai.usage.output_tokens", n)));
            if !span.finish_reasons.is_empty() {
                attributes.push(pb::KeyValue {
                    key: "gen_ai.response.finish_reasons".to_owned(),
                    value: Some(pb::AnyValue {
                        value: Some(pb::Value::ArrayValue(pb::ArrayValue {
                            values: span
                                .finish_reasons
                                .iter()
                                .map(|reason| pb::AnyValue {
                                    value: Some(pb::Value::StringValue(reason.clone())),
                                })
                                .collect(),
                        })),
                    }),
                });
            }
            // A span whose only GenAI mark was an empty provider still needs one.
            if span.operation.is_none() && span.provider.is_none() {
                attributes.push(text("gen_ai.system", ""));
            }
            pb::ResourceSpans {
                resource: span.service_name.as_ref().map(|name| pb::Resource {
                    attributes: vec![text("service.name", name)],
                }),
                scope_spans: vec![pb::ScopeSpans {
                    scope: None,
                    spans: vec![pb::Span {
                        trace_id: hex::decode(&span.trace_id).expect("hex"),
                        span_id: hex::decode(&span.span_id).expect("hex"),
                        parent_span_id: span
                            .parent_span_id
                            .as_ref()
                            .map_or_else(Vec::new, |id| hex::decode(id).expect("hex")),
                        name: span.name.clone(),
                        kind: kind_number(span.kind) as i32,
                        start_time_unix_nano: span.start_time_unix_nano,
                        end_time_unix_nano: span.end_time_unix_nano,
                        attributes,
                        status: Some(pb::Status {
                            message: span.status.message.clone(),
                            code: status_number(span.status.code) as i32,
                        }),
                    }],
                }],
            }
        })
        .collect();
    pb::ExportTraceServiceRequest { resource_spans }.encode_to_vec()
}
