//! OTLP/protobuf traces: the same export in JSON and in protobuf gives the same batch, and
//! malformed protobuf gives named problems, never a panic.

use expect_test::{Expect, expect};
use prost::Message as _;
use serde_json::Value;

use super::otlp::JS_SDK;
use super::*;
use crate::intake::otlp_messages as pb;

fn check(body: &[u8], expect: Expect) {
    expect.assert_eq(&render(parse_otlp_traces_protobuf(body)));
}

/// An OTLP/JSON export written in protobuf, as an SDK's protobuf exporter would send it.
pub(super) fn to_protobuf(json: &str) -> Vec<u8> {
    let root: Value = serde_json::from_str(json).unwrap();
    let request = pb::ExportTraceServiceRequest {
        resource_spans: items(&root, "resourceSpans")
            .iter()
            .map(|resource_spans| pb::ResourceSpans {
                resource: resource_spans.get("resource").map(|resource| pb::Resource {
                    attributes: key_values(resource),
                }),
                scope_spans: items(resource_spans, "scopeSpans")
                    .iter()
                    .map(|scope| pb::ScopeSpans {
                        scope: None,
                        spans: items(scope, "spans").iter().map(span).collect(),
                    })
                    .collect(),
            })
            .collect(),
    };
    request.encode_to_vec()
}

fn items<'v>(value: &'v Value, key: &str) -> &'v [Value] {
    value
        .get(key)
        .and_then(Value::as_array)
        .map_or(&[], Vec::as_slice)
}

fn id(value: &Value, key: &str) -> Vec<u8> {
    value
        .get(key)
        .and_then(Value::as_str)
        .map_or_else(Vec::new, |text| hex::decode(text).unwrap())
}

fn whole(value: Option<&Value>) -> u64 {
    match value {
        Some(Value::String(text)) => text.parse().unwrap(),
        Some(number) => number.as_u64().unwrap(),
        None => 0,
    }
}

fn span(value: &Value) -> pb::Span {
    pb::Span {
        trace_id: id(value, "traceId"),
        span_id: id(value, "spanId"),
        parent_span_id: id(value, "parentSpanId"),
        name: value["name"].as_str().unwrap_or_default().to_owned(),
        kind: whole(value.get("kind")) as i32,
        start_time_unix_nano: whole(value.get("startTimeUnixNano")),
        end_time_unix_nano: whole(value.get("endTimeUnixNano")),
        attributes: key_values(value),
        status: value.get("status").map(|status| pb::Status {
            message: status["message"].as_str().unwrap_or_default().to_owned(),
            code: whole(status.get("code")) as i32,
        }),
    }
}

fn key_values(value: &Value) -> Vec<pb::KeyValue> {
    items(value, "attributes")
        .iter()
        .map(|attribute| pb::KeyValue {
            key: attribute["key"].as_str().unwrap().to_owned(),
            value: attribute.get("value").map(any_value),
        })
        .collect()
}

fn any_value(value: &Value) -> pb::AnyValue {
    let (variant, inner) = value.as_object().unwrap().iter().next().unwrap();
    let value = match variant.as_str() {
        "stringValue" => pb::Value::StringValue(inner.as_str().unwrap().to_owned()),
        "boolValue" => pb::Value::BoolValue(inner.as_bool().unwrap()),
        "intValue" => pb::Value::IntValue(match inner {
            Value::String(text) => text.parse().unwrap(),
            number => number.as_i64().unwrap(),
        }),
        "doubleValue" => pb::Value::DoubleValue(inner.as_f64().unwrap()),
        "arrayValue" => pb::Value::ArrayValue(pb::ArrayValue {
            values: items(inner, "values").iter().map(any_value).collect(),
        }),
        other => panic!("no encoding for {other}"),
    };
    pb::AnyValue { value: Some(value) }
}

#[test]
fn a_js_sdk_export_in_protobuf_gives_the_batch_it_gives_in_json() {
    let from_json = parse_otlp_traces(JS_SDK.as_bytes()).unwrap();
    let from_protobuf = parse_otlp_traces_protobuf(&to_protobuf(JS_SDK)).unwrap();
    assert_eq!(from_protobuf, from_json);
    assert_eq!(from_protobuf.spans.len(), 4);
    assert_eq!(
        Pushed::Spans(from_protobuf).signals(),
        Pushed::Spans(from_json).signals()
    );
}

/// Small exports in JSON: each must give the same answer in protobuf, problems included
/// (their paths and words), except where protobuf has no way to say what JSON said.
const SAME_IN_BOTH: &[&str] = &[
    // Empty, and without GenAI spans.
    r#"{}"#,
    r#"{"resourceSpans": [{"scopeSpans": [{"spans": [{"name": "GET /", "attributes": [{"key": "http.method", "value": {"stringValue": "GET"}}]}]}]}]}"#,
    // A model call with usage, finish reasons, an error status and a service name.
    r#"{"resourceSpans": [{"resource": {"attributes": [{"key": "service.name", "value": {"stringValue": "bot"}}]},
        "scopeSpans": [{"spans": [{"traceId": "5B8EFFF798038103D269B633813FC60C", "spanId": "eee19b7ec3c1b174",
        "parentSpanId": "eee19b7ec3c1b173", "name": "chat m", "kind": 3,
        "startTimeUnixNano": "1000", "endTimeUnixNano": "2000", "status": {"code": 2, "message": "boom"},
        "attributes": [{"key": "gen_ai.system", "value": {"stringValue": "openai"}},
                       {"key": "gen_ai.request.model", "value": {"stringValue": "gpt-4o"}},
                       {"key": "gen_ai.request.model", "value": {"stringValue": "gpt-4o-mini"}},
                       {"key": "gen_ai.usage.input_tokens", "value": {"intValue": "12"}},
                       {"key": "gen_ai.usage.output_tokens", "value": {"doubleValue": 7.0}},
                       {"key": "gen_ai.response.finish_reasons", "value": {"arrayValue": {"values": [{"stringValue": "stop"}, {"stringValue": "length"}]}}}]}]}]}]}"#,
    // Attribute kinds the reader refuses, and times out of order.
    r#"{"resourceSpans": [{"scopeSpans": [{"spans": [{"traceId": "5b8efff798038103d269b633813fc60c", "spanId": "eee19b7ec3c1b174",
        "startTimeUnixNano": "2000", "endTimeUnixNano": "1000", "kind": 9,
        "attributes": [{"key": "gen_ai.operation.name", "value": {"intValue": "3"}},
                       {"key": "gen_ai.provider.name", "value": {"stringValue": "x"}},
                       {"key": "gen_ai.usage.input_tokens", "value": {"intValue": -4}},
                       {"key": "gen_ai.usage.output_tokens", "value": {"doubleValue": 1.5}},
                       {"key": "gen_ai.response.finish_reasons", "value": {"arrayValue": {"values": [{"intValue": "1"}]}}},
                       {"key": "gen_ai.agent.name", "value": {"boolValue": true}}]}]}]}]}"#,
    // Missing ids and times.
    r#"{"resourceSpans": [{"scopeSpans": [{"spans": [{"attributes": [{"key": "gen_ai.system", "value": {"stringValue": "x"}}]}]}]}]}"#,
];

#[test]
fn small_exports_give_the_same_answer_in_json_and_protobuf() {
    for json in SAME_IN_BOTH {
        let from_json = render(parse_otlp_traces(json.as_bytes()));
        let from_protobuf = render(parse_otlp_traces_protobuf(&to_protobuf(json)));
        assert_eq!(from_protobuf, from_json, "{json}");
    }
}

#[test]
fn too_many_finish_reasons_are_refused_as_in_json() {
    let reasons: Vec<String> = (0..129)
        .map(|_| r#"{"stringValue": "stop"}"#.to_owned())
        .collect();
    let json = format!(
        r#"{{"resourceSpans": [{{"scopeSpans": [{{"spans": [{{"traceId": "5b8efff798038103d269b633813fc60c", "spanId": "eee19b7ec3c1b174",
        "startTimeUnixNano": "1", "endTimeUnixNano": "2",
        "attributes": [{{"key": "gen_ai.system", "value": {{"stringValue": "x"}}}},
        {{"key": "gen_ai.response.finish_reasons", "value": {{"arrayValue": {{"values": [{}]}}}}}}]}}]}}]}}]}}"#,
        reasons.join(",")
    );
    let from_json = render(parse_otlp_traces(json.as_bytes()));
    assert!(from_json.contains("has 129 values"), "{from_json}");
    assert_eq!(
        render(parse_otlp_traces_protobuf(&to_protobuf(&json))),
        from_json
    );
}

/// A GenAI span as protobuf bytes, with `mutate` applied to it first.
fn gen_ai_span(mutate: impl FnOnce(&mut pb::Span)) -> Vec<u8> {
    let json = r#"{"resourceSpans": [{"scopeSpans": [{"spans": [{"traceId": "5b8efff798038103d269b633813fc60c",
        "spanId": "eee19b7ec3c1b174", "startTimeUnixNano": "1", "endTimeUnixNano": "2",
        "attributes": [{"key": "gen_ai.system", "value": {"stringValue": "openai"}}]}]}]}]}"#;
    let mut request = pb::ExportTraceServiceRequest::decode(to_protobuf(json).as_slice()).unwrap();
    mutate(&mut request.resource_spans[0].scope_spans[0].spans[0]);
    request.encode_to_vec()
}

#[test]
fn ids_of_the_wrong_length_are_named_in_bytes() {
    check(
        &gen_ai_span(|span| {
            span.trace_id.pop();
            span.parent_span_id = vec![1; 9];
        }),
        expect![[r#"
            the payload has 2 problems
            resourceSpans[0].scopeSpans[0].spans[0].traceId: must be 16 bytes, found 15
            resourceSpans[0].scopeSpans[0].spans[0].parentSpanId: must be 8 bytes, found 9
        "#]],
    );
}

#[test]
fn malformed_protobuf_is_named_where_it_breaks() {
    let good = gen_ai_span(|_| {});
    // Cut off: the outer length runs past the end.
    check(
        &good[..good.len() - 1],
        expect![[r#"
            the payload has 1 problem
            the body is not a valid protobuf message: has a field that runs past the end of its message
        "#]],
    );
    // Not protobuf at all: JSON sent as protobuf.
    check(
        JS_SDK.as_bytes(),
        expect![[r#"
            the payload has 1 problem
            the body is not a valid protobuf message: closes group 5 inside group 15
        "#]],
    );
    // Regression (found by fuzz/intake_otlp_proto): groups were refused where protobuf, and
    // so prost, skips them as unknown fields. An unknown group at the top, then one never closed.
    check(
        &[0x73, 0x08, 0x01, 0x74],
        expect![[r#"
        {
          "spans": [],
          "spans_received": 0
        }
    "#]],
    );
    check(
        &[0x73, 0x08, 0x01],
        expect![[r#"
            the payload has 1 problem
            the body is not a valid protobuf message: never closes group 14
        "#]],
    );
    // resourceSpans as a varint.
    check(
        &[0x08, 0x01],
        expect![[r#"
            the payload has 1 problem
            resourceSpans: must be a length-delimited message, found a varint (wire type 0)
        "#]],
    );
    // A span whose name is not UTF-8 (field 5), after its attributes.
    let mut bad_name = gen_ai_span(|span| span.name = "ab".to_owned());
    let at = bad_name.windows(2).position(|pair| pair == b"ab").unwrap();
    bad_name[at] = 0xff;
    check(
        &bad_name,
        expect![[r#"
            the payload has 1 problem
            resourceSpans[0].scopeSpans[0].spans[0]: is not a valid protobuf span: failed to decode Protobuf message: SpanHead.name: invalid string value: data is not UTF-8 encoded
        "#]],
    );
    // An attribute key that is not UTF-8.
    let mut bad_key = gen_ai_span(|span| {
        span.attributes.push(pb::KeyValue {
            key: "zz".to_owned(),
            value: None,
        });
    });
    let at = bad_key.windows(2).position(|pair| pair == b"zz").unwrap();
    bad_key[at] = 0xc3;
    check(
        &bad_key,
        expect![[r#"
            the payload has 1 problem
            resourceSpans[0].scopeSpans[0].spans[0].attributes[1].key: is not valid UTF-8
        "#]],
    );
}

#[test]
fn arbitrary_bytes_never_panic() {
    // Every prefix and every single-byte change of a real export.
    let good = to_protobuf(JS_SDK);
    for end in 0..good.len() {
        let _ = parse_otlp_traces_protobuf(&good[..end]);
    }
    for idx in 0..good.len() {
        for byte in [0x00, 0x7f, 0x80, 0xff] {
            let mut changed = good.clone();
            changed[idx] = byte;
            let _ = parse_otlp_traces_protobuf(&changed);
        }
    }
}

#[test]
fn deep_nesting_in_values_costs_nothing() {
    // An attribute value nested 10,000 arrays deep: never decoded past one level.
    let nested = pb::AnyValue {
        value: Some(pb::Value::StringValue("x".to_owned())),
    };
    let mut bytes = nested.encode_to_vec();
    for _ in 0..10_000 {
        // ArrayValue { values: [previous] } inside AnyValue field 5, by hand: prost's own
        // encoder recurses.
        let mut array = vec![0x0a];
        prost::encoding::encode_varint(bytes.len() as u64, &mut array);
        array.extend_from_slice(&bytes);
        bytes = vec![0x2a];
        prost::encoding::encode_varint(array.len() as u64, &mut bytes);
        bytes.extend_from_slice(&array);
    }
    let body = gen_ai_span(|span| {
        span.attributes.push(pb::KeyValue {
            key: "deep".to_owned(),
            value: None,
        });
    });
    // Splice the nested value in as the `value` of the `deep` attribute.
    let mut request = pb::ExportTraceServiceRequest::decode(body.as_slice()).unwrap();
    let span = &mut request.resource_spans[0].scope_spans[0].spans[0];
    let mut attribute = vec![0x0a, 4];
    attribute.extend_from_slice(b"deep");
    attribute.push(0x12);
    prost::encoding::encode_varint(bytes.len() as u64, &mut attribute);
    attribute.extend_from_slice(&bytes);
    span.attributes.pop();
    let mut span_bytes = span.encode_to_vec();
    span_bytes.push(0x4a);
    prost::encoding::encode_varint(attribute.len() as u64, &mut span_bytes);
    span_bytes.extend_from_slice(&attribute);
    let wrap = |field: u8, inner: &[u8]| {
        let mut out = vec![field];
        prost::encoding::encode_varint(inner.len() as u64, &mut out);
        out.extend_from_slice(inner);
        out
    };
    let whole = wrap(0x0a, &wrap(0x12, &wrap(0x12, &span_bytes)));
    let batch = parse_otlp_traces_protobuf(&whole).unwrap();
    assert_eq!(batch.spans.len(), 1);
    assert_eq!(batch.spans[0].provider.as_deref(), Some("openai"));
}

#[test]
fn answers_encode_as_otlp_messages() {
    let full = crate::intake::otlp_proto::export_response(None);
    assert!(full.is_empty(), "full success is an empty message");
    let partial = crate::intake::otlp_proto::export_response(Some((3, "refused".to_owned())));
    let decoded = pb::ExportTraceServiceResponse::decode(partial.as_slice()).unwrap();
    let partial_success = decoded.partial_success.unwrap();
    assert_eq!(partial_success.rejected_spans, 3);
    assert_eq!(partial_success.error_message, "refused");
    let status = pb::RpcStatus::decode(
        crate::intake::otlp_proto::rpc_status(3, "bad".to_owned()).as_slice(),
    )
    .unwrap();
    assert_eq!((status.code, status.message.as_str()), (3, "bad"));
}

/// Splits `body` around the attribute `gen_ai.response.finish_reasons` of a one-span export
/// and appends `extra` inside it, fixing every enclosing length.
fn with_finish_reasons_extra(extra: &[u8]) -> Vec<u8> {
    let json = r#"{"resourceSpans": [{"scopeSpans": [{"spans": [{"traceId": "5b8efff798038103d269b633813fc60c",
        "spanId": "eee19b7ec3c1b174", "startTimeUnixNano": "1", "endTimeUnixNano": "2",
        "attributes": [{"key": "gen_ai.system", "value": {"stringValue": "openai"}},
                       {"key": "gen_ai.response.finish_reasons", "value": {"arrayValue": {"values": [{"stringValue": "stop"}]}}}]}]}]}]}"#;
    let request = pb::ExportTraceServiceRequest::decode(to_protobuf(json).as_slice()).unwrap();
    let mut span = request.resource_spans[0].scope_spans[0].spans[0].clone();
    let mut attribute = span.attributes.pop().unwrap().encode_to_vec();
    attribute.extend_from_slice(extra);
    let mut span_bytes = span.encode_to_vec();
    span_bytes.push(0x4a);
    prost::encoding::encode_varint(attribute.len() as u64, &mut span_bytes);
    span_bytes.extend_from_slice(&attribute);
    let wrap = |field: u8, inner: &[u8]| {
        let mut out = vec![field];
        prost::encoding::encode_varint(inner.len() as u64, &mut out);
        out.extend_from_slice(inner);
        out
    };
    wrap(0x0a, &wrap(0x12, &wrap(0x12, &span_bytes)))
}

// Regression (found by hand, checking fuzz/intake_otlp_proto's oracle): the last `value`
// was read alone. A singular message field that occurs twice is merged in protobuf: two `value`s of one
// attribute, or two `arrayValue`s of one value, make one array of both.
#[test]
fn repeated_values_merge_as_protobuf_merges_them() {
    let length = |inner: &[u8]| {
        let mut out = Vec::new();
        prost::encoding::encode_varint(inner.len() as u64, &mut out);
        out.extend_from_slice(inner);
        out
    };
    let element = pb::AnyValue {
        value: Some(pb::Value::StringValue("length".to_owned())),
    }
    .encode_to_vec();
    let array = [&[0x0a][..], &length(&element)].concat();
    let value = [&[0x2a][..], &length(&array)].concat();
    let text = [&[0x0a, 1][..], b"x"].concat();
    for (extra, expected) in [
        // A second `value` holding an array.
        (
            [&[0x12][..], &length(&value)].concat(),
            &["stop", "length"][..],
        ),
        // ... twice, in one second `value`.
        (
            [&[0x12][..], &length(&[&value[..], &value].concat())].concat(),
            &["stop", "length", "length"],
        ),
        // A string between them: the array starts again after it.
        (
            [&[0x12][..], &length(&[&text[..], &value].concat())].concat(),
            &["length"],
        ),
    ] {
        let body = with_finish_reasons_extra(&extra);
        let whole = pb::ExportTraceServiceRequest::decode(body.as_slice()).unwrap();
        let reasons = &whole.resource_spans[0].scope_spans[0].spans[0].attributes[1];
        let batch = parse_otlp_traces_protobuf(&body).unwrap();
        assert_eq!(batch.spans[0].finish_reasons, expected, "{reasons:?}");
        let Some(pb::AnyValue {
            value: Some(pb::Value::ArrayValue(array)),
        }) = &reasons.value
        else {
            panic!("{reasons:?}");
        };
        assert_eq!(array.values.len(), expected.len(), "prost agrees");
    }
}

#[test]
fn database_spans_give_the_same_batch_in_protobuf() {
    // Regression: the protobuf path's pre-count and attribute filter knew only GenAI keys.
    let json = super::otlp::DB_SPANS;
    let from_json = parse_otlp_traces(json.as_bytes()).unwrap();
    let from_protobuf = parse_otlp_traces_protobuf(&to_protobuf(json)).unwrap();
    assert_eq!(from_protobuf, from_json);
    assert_eq!(from_protobuf.spans.len(), 2);
}
