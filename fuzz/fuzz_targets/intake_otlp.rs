//! Fuzzes `parse_otlp_traces` (`POST /v1/traces`, OTLP/JSON) with arbitrary bytes and checks
//! what must always hold:
//!
//! - parsing never panics, and takes time about linear in the input (libFuzzer's `-timeout`);
//! - a refusal has 1 to `MAX_PROBLEMS` problems, each naming a field of the body (or where a
//!   missing one belongs) with a short lowercase message (`vigil_fuzz::problems`);
//! - an accepted export counts every span it carried, and keeps exactly those that carry
//!   `gen_ai.operation.name`, `gen_ai.provider.name` or `gen_ai.system`, in order;
//! - each kept span equals what the JSON said: ids in lowercase hex of the right length,
//!   times (never ending before they start), kind and status by number or name, the status
//!   message cut to 512 characters, the resource's `service.name`, and each GenAI attribute
//!   from its last occurrence (strings cut to 256 characters, empty as absent; tokens from
//!   the current key, else the older one);
//! - written back as an export (one resource per span), it parses to the same spans;
//! - it survives the ledger's JSON round trip, and its signals keep the table's promises:
//!   finite, bounded per span and finish reason, one request per model call
//!   (`vigil_fuzz::signals`).

#![no_main]

use libfuzzer_sys::fuzz_target;
use serde_json::{Map, Value};
use vigil_core::intake::otlp::MAX_STATUS_MESSAGE_CHARS;
use vigil_core::intake::{GenAiSpan, MAX_NAME_CHARS, Pushed, SpanBatch, parse_otlp_traces};
use vigil_fuzz::wire::{kind_number, status_number};
use vigil_fuzz::{field, items, text};

const GEN_AI_KEYS: [&str; 3] = [
    "gen_ai.operation.name",
    "gen_ai.provider.name",
    "gen_ai.system",
];

fuzz_target!(|data: &[u8]| {
    match parse_otlp_traces(data) {
        Err(error) => vigil_fuzz::problems::check(data, &error),
        Ok(batch) => {
            let n_gen_ai = check_against_input(data, &batch);
            let again = parse_otlp_traces(&vigil_fuzz::wire::otlp(&batch))
                .expect("written back, the spans parse");
            assert_eq!(
                again.spans, batch.spans,
                "written back, the spans parse differently"
            );
            assert_eq!(again.spans_received, batch.spans.len() as u64);
            vigil_fuzz::check_accepted(data, &Pushed::Spans(batch), n_gen_ai);
        }
    }
});

/// An attribute list: each entry's key and value (an absent value is `null`).
fn attributes(map: &Map<String, Value>) -> Vec<(&str, &Value)> {
    items(map, "attributes")
        .iter()
        .map(|entry| {
            let entry = entry
                .as_object()
                .expect("an accepted attribute is an object");
            let key = entry["key"].as_str().expect("a string key");
            (key, field(entry, "value").unwrap_or(&Value::Null))
        })
        .collect()
}

/// The value of the last attribute named `key`.
fn last<'v>(attributes: &[(&str, &'v Value)], key: &str) -> Option<&'v Value> {
    attributes
        .iter()
        .rev()
        .find(|(name, _)| *name == key)
        .map(|(_, value)| *value)
}

fn cut(text: &str, max_chars: usize) -> String {
    text.chars().take(max_chars).collect()
}

/// A `stringValue` attribute as kept: cut, empty as absent.
fn string_attribute(attributes: &[(&str, &Value)], key: &str) -> Option<String> {
    let value = last(attributes, key)?;
    let text = value["stringValue"]
        .as_str()
        .expect("an accepted string attribute");
    Some(cut(text, MAX_NAME_CHARS)).filter(|text| !text.is_empty())
}

/// A token count as kept: an `intValue` (decimal string or number), else a whole
/// `doubleValue` below 2^53.
fn tokens(attributes: &[(&str, &Value)], key: &str, older: &str) -> Option<u64> {
    let value = last(attributes, key).or_else(|| last(attributes, older))?;
    if let Some(int) = value.get("intValue") {
        return Some(uint64(int));
    }
    let double = value["doubleValue"].as_f64().expect("an accepted double");
    assert!(double >= 0.0 && double.fract() == 0.0 && double < 9_007_199_254_740_992.0);
    Some(double as u64)
}

fn uint64(value: &Value) -> u64 {
    match value {
        Value::String(text) => {
            assert!(text.bytes().all(|byte| byte.is_ascii_digit()), "{text:?}");
            text.parse().expect("an accepted decimal")
        }
        other => other.as_u64().expect("an accepted whole number"),
    }
}

fn finish_reasons(attributes: &[(&str, &Value)]) -> Vec<String> {
    let Some(value) = last(attributes, "gen_ai.response.finish_reasons") else {
        return Vec::new();
    };
    if let Some(text) = value.get("stringValue").and_then(Value::as_str) {
        return vec![cut(text, MAX_NAME_CHARS)];
    }
    let values = value["arrayValue"].get("values").and_then(Value::as_array);
    values.map_or_else(Vec::new, |values| {
        values
            .iter()
            .map(|item| {
                cut(
                    item["stringValue"].as_str().expect("a string"),
                    MAX_NAME_CHARS,
                )
            })
            .collect()
    })
}

/// An OTLP enum as its number, or the index of its proto name.
fn enum_number(value: Option<&Value>, names: &[&str]) -> u64 {
    match value {
        None => 0,
        Some(Value::String(name)) => names
            .iter()
            .position(|known| known == name)
            .expect("an accepted enum name") as u64,
        Some(number) => number.as_u64().expect("an accepted enum number"),
    }
}

/// Compares the batch with the JSON it came from; returns how many GenAI spans it carried.
fn check_against_input(data: &[u8], batch: &SpanBatch) -> usize {
    let root: Value = serde_json::from_slice(data).expect("accepted, so JSON");
    let root = root.as_object().expect("accepted, so an object");
    let mut n_spans = 0;
    let mut gen_ai = Vec::new();
    for resource_spans in items(root, "resourceSpans") {
        let resource_spans = resource_spans.as_object().expect("an object");
        let service_name = field(resource_spans, "resource").and_then(|resource| {
            let resource = resource.as_object().expect("an object");
            attributes(resource)
                .into_iter()
                .rev()
                .filter(|(key, _)| *key == "service.name")
                .find_map(|(_, value)| value.get("stringValue")?.as_str())
        });
        for scope in items(resource_spans, "scopeSpans") {
            for span in items(scope.as_object().expect("an object"), "spans") {
                n_spans += 1;
                let span = span.as_object().expect("a span is an object");
                let attributes = attributes(span);
                if attributes.iter().any(|(key, _)| GEN_AI_KEYS.contains(key)) {
                    gen_ai.push((span, attributes, service_name));
                }
            }
        }
    }
    assert_eq!(batch.spans_received, n_spans, "spans miscounted");
    assert_eq!(
        batch.spans.len(),
        gen_ai.len(),
        "a GenAI span lost or invented"
    );
    for ((map, attributes, service_name), span) in gen_ai.iter().zip(&batch.spans) {
        check_span(map, attributes, *service_name, span);
    }
    gen_ai.len()
}

fn check_span(
    map: &Map<String, Value>,
    attributes: &[(&str, &Value)],
    service_name: Option<&str>,
    span: &GenAiSpan,
) {
    assert_eq!(span.service_name.as_deref(), service_name);
    assert_eq!(
        map["traceId"]
            .as_str()
            .map(str::to_ascii_lowercase)
            .as_ref(),
        Some(&span.trace_id)
    );
    assert_eq!(
        map["spanId"].as_str().map(str::to_ascii_lowercase).as_ref(),
        Some(&span.span_id)
    );
    let parent = text(map, "parentSpanId").filter(|id| !id.is_empty());
    assert_eq!(parent.map(str::to_ascii_lowercase), span.parent_span_id);
    for (id, n_digits) in [
        (Some(&span.trace_id), 32),
        (Some(&span.span_id), 16),
        (span.parent_span_id.as_ref(), 16),
    ] {
        assert!(
            id.is_none_or(|id| id.len() == n_digits
                && id
                    .bytes()
                    .all(|byte| matches!(byte, b'0'..=b'9' | b'a'..=b'f'))),
            "{id:?}"
        );
    }
    assert_eq!(text(map, "name").unwrap_or_default(), span.name);
    let kinds = [
        "SPAN_KIND_UNSPECIFIED",
        "SPAN_KIND_INTERNAL",
        "SPAN_KIND_SERVER",
        "SPAN_KIND_CLIENT",
        "SPAN_KIND_PRODUCER",
        "SPAN_KIND_CONSUMER",
    ];
    assert_eq!(
        enum_number(field(map, "kind"), &kinds),
        kind_number(span.kind)
    );
    assert_eq!(uint64(&map["startTimeUnixNano"]), span.start_time_unix_nano);
    assert_eq!(uint64(&map["endTimeUnixNano"]), span.end_time_unix_nano);
    assert!(span.start_time_unix_nano <= span.end_time_unix_nano);
    assert!(span.duration_seconds().is_finite() && span.duration_seconds() >= 0.0);
    let status = field(map, "status").map(|status| status.as_object().expect("an object"));
    let codes = ["STATUS_CODE_UNSET", "STATUS_CODE_OK", "STATUS_CODE_ERROR"];
    let code = enum_number(status.and_then(|status| field(status, "code")), &codes);
    assert_eq!(code, status_number(span.status.code));
    let message = status
        .and_then(|status| text(status, "message"))
        .unwrap_or_default();
    assert_eq!(cut(message, MAX_STATUS_MESSAGE_CHARS), span.status.message);

    assert_eq!(
        string_attribute(attributes, "gen_ai.operation.name"),
        span.operation
    );
    let provider = string_attribute(attributes, "gen_ai.provider.name")
        .or_else(|| string_attribute(attributes, "gen_ai.system"));
    assert_eq!(provider, span.provider);
    for (key, kept) in [
        ("gen_ai.request.model", &span.request_model),
        ("gen_ai.response.model", &span.response_model),
        ("error.type", &span.error_type),
        ("gen_ai.agent.name", &span.agent_name),
        ("gen_ai.tool.name", &span.tool_name),
    ] {
        assert_eq!(&string_attribute(attributes, key), kept, "{key}");
    }
    let input = tokens(
        attributes,
        "gen_ai.usage.input_tokens",
        "gen_ai.usage.prompt_tokens",
    );
    assert_eq!(input, span.input_tokens);
    let output = tokens(
        attributes,
        "gen_ai.usage.output_tokens",
        "gen_ai.usage.completion_tokens",
    );
    assert_eq!(output, span.output_tokens);
    assert_eq!(finish_reasons(attributes), span.finish_reasons);
}
