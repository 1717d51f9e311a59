//! OTLP/JSON traces: GenAI spans kept, others dropped, every problem with its path, signals.

use expect_test::{Expect, expect};

use super::*;

fn check(body: &str, expect: Expect) {
    expect.assert_eq(&render(parse_otlp_traces(body.as_bytes())));
}

/// Shaped like what the OpenTelemetry JS SDK's OTLP/HTTP JSON exporter sends (numbers for
/// `intValue`, strings for times, every optional field present): an agent span, a tool span
/// that timed out, two model calls (one truncated, one rate-limited) and an HTTP span.
pub(super) const JS_SDK: &str = include_str!("data/otlp_js_sdk.json");

#[test]
fn a_js_sdk_export_keeps_its_gen_ai_spans() {
    check(
        JS_SDK,
        expect![[r#"
            {
              "spans": [
                {
                  "service_name": "support-bot",
                  "trace_id": "4bf92f3577b34da6a3ce929d0e0e4736",
                  "span_id": "00f067aa0ba902b7",
                  "name": "invoke_agent triage",
                  "kind": "internal",
                  "start_time_unix_nano": 1772366400000000000,
                  "end_time_unix_nano": 1772366409500000000,
                  "operation": "invoke_agent",
                  "provider": "openai",
                  "input_tokens": 1900,
                  "agent_name": "triage",
                  "status": {
                    "code": "error",
                    "message": "tool budget exhausted"
                  }
                },
                {
                  "service_name": "support-bot",
                  "trace_id": "4bf92f3577b34da6a3ce929d0e0e4736",
                  "span_id": "5fb397be34d26b51",
                  "parent_span_id": "00f067aa0ba902b7",
                  "name": "execute_tool search_tickets",
                  "kind": "internal",
                  "start_time_unix_nano": 1772366401300000000,
                  "end_time_unix_nano": 1772366401420000000,
                  "operation": "execute_tool",
                  "error_type": "timeout",
                  "tool_name": "search_tickets",
                  "status": {
                    "code": "error",
                    "message": "deadline exceeded"
                  }
                },
                {
                  "service_name": "support-bot",
                  "trace_id": "4bf92f3577b34da6a3ce929d0e0e4736",
                  "span_id": "a3ce929d0e0e4736",
                  "parent_span_id": "00f067aa0ba902b7",
                  "name": "chat gpt-4o-mini",
                  "kind": "client",
                  "start_time_unix_nano": 1772366400100000000,
                  "end_time_unix_nano": 1772366401250000000,
                  "operation": "chat",
                  "provider": "openai",
                  "request_model": "gpt-4o-mini",
                  "response_model": "gpt-4o-mini-2024-07-18",
                  "input_tokens": 812,
                  "output_tokens": 256,
                  "finish_reasons": [
                    "length"
                  ],
                  "server_address": "api.openai.com",
                  "status": {
                    "code": "unset"
                  }
                },
                {
                  "service_name": "support-bot",
                  "trace_id": "4bf92f3577b34da6a3ce929d0e0e4736",
                  "span_id": "b7ad6b7169203331",
                  "parent_span_id": "00f067aa0ba902b7",
                  "name": "chat gpt-4o-mini",
                  "kind": "client",
                  "start_time_unix_nano": 1772366402000000000,
                  "end_time_unix_nano": 1772366402040000000,
                  "operation": "chat",
                  "provider": "openai",
                  "request_model": "gpt-4o-mini",
                  "error_type": "429",
                  "status": {
                    "code": "error",
                    "message": "429 Too Many Requests"
                  }
                }
              ],
              "spans_received": 5
            }
        "#]],
    );
}

#[test]
fn collector_style_json_and_older_attributes_are_read() {
    // Integers as strings, enums by name, an empty parent, and the pre-1.37 attribute names
    // `gen_ai.system` and `gen_ai.usage.prompt_tokens`.
    check(
        r#"{"resourceSpans": [{"scopeSpans": [{"spans": [{
            "traceId": "5b8efff798038103d269b633813fc60c", "spanId": "eee19b7ec3c1b174",
            "parentSpanId": "", "name": "anthropic.chat", "kind": "SPAN_KIND_CLIENT",
            "startTimeUnixNano": 1544712660000000000, "endTimeUnixNano": "1544712661000000000",
            "attributes": [
              {"key": "gen_ai.system", "value": {"stringValue": "anthropic"}},
              {"key": "gen_ai.request.model", "value": {"stringValue": "claude-sonnet-4"}},
              {"key": "gen_ai.usage.prompt_tokens", "value": {"intValue": "1200"}},
              {"key": "gen_ai.usage.output_tokens", "value": {"doubleValue": 30.0}},
              {"key": "gen_ai.response.finish_reasons", "value": {"stringValue": "end_turn"}},
              {"key": "empty"}
            ],
            "status": {"code": "STATUS_CODE_OK"}
        }]}]}]}"#,
        expect![[r#"
            {
              "spans": [
                {
                  "trace_id": "5b8efff798038103d269b633813fc60c",
                  "span_id": "eee19b7ec3c1b174",
                  "name": "anthropic.chat",
                  "kind": "client",
                  "start_time_unix_nano": 1544712660000000000,
                  "end_time_unix_nano": 1544712661000000000,
                  "provider": "anthropic",
                  "request_model": "claude-sonnet-4",
                  "input_tokens": 1200,
                  "output_tokens": 30,
                  "finish_reasons": [
                    "end_turn"
                  ],
                  "status": {
                    "code": "ok"
                  }
                }
              ],
              "spans_received": 1
            }
        "#]],
    );
}

#[test]
fn an_empty_export_is_accepted() {
    check(
        "{}",
        expect![[r#"
            {
              "spans": [],
              "spans_received": 0
            }
        "#]],
    );
    check(
        r#"{"resourceSpans": [{"resource": {}, "scopeSpans": [{"spans": []}]}]}"#,
        expect![[r#"
            {
              "spans": [],
              "spans_received": 0
            }
        "#]],
    );
}

#[test]
fn every_problem_is_reported_with_its_path() {
    check(
        r#"{"resourceSpans": [
            {"scopeSpans": [{"spans": [
              {"traceId": "W47/95gDgQPSabYzgT/GDA==", "spanId": "eee19b7e",
               "parentSpanId": 7, "kind": 9,
               "startTimeUnixNano": "-5", "endTimeUnixNano": "abc",
               "attributes": [
                 {"key": "gen_ai.operation.name", "value": {"stringValue": "chat"}},
                 {"key": "gen_ai.request.model", "value": {"intValue": "4"}},
                 {"key": "gen_ai.usage.input_tokens", "value": {"stringValue": "12"}},
                 {"key": "gen_ai.usage.output_tokens", "value": {"intValue": "-3"}},
                 {"key": "gen_ai.response.finish_reasons",
                  "value": {"arrayValue": {"values": [{"stringValue": "stop"}, {"intValue": 1}]}}},
                 {"value": {"stringValue": "no key"}},
                 "not an attribute"
               ],
               "status": {"code": 3}},
              {"traceId": "5b8efff798038103d269b633813fc60c", "spanId": "eee19b7ec3c1b174",
               "startTimeUnixNano": "200", "endTimeUnixNano": "100",
               "attributes": [{"key": "gen_ai.provider.name", "value": {"stringValue": "openai"}}]},
              {"name": "not gen_ai, so its missing ids are not checked"}
            ]}]},
            {"scopeSpans": {"spans": []}},
            "junk"
        ]}"#,
        expect![[r#"
            the payload has 16 problems
            resourceSpans[0].scopeSpans[0].spans[0].attributes[5].key: required field is missing
            resourceSpans[0].scopeSpans[0].spans[0].attributes[6]: must be an object, found a string
            resourceSpans[0].scopeSpans[0].spans[0].traceId: must be 32 hex digits (OTLP/JSON encodes ids in hex, not base64)
            resourceSpans[0].scopeSpans[0].spans[0].spanId: must be 16 hex digits (OTLP/JSON encodes ids in hex, not base64)
            resourceSpans[0].scopeSpans[0].spans[0].parentSpanId: must be a string, found a number (write it quoted: `"7"`)
            resourceSpans[0].scopeSpans[0].spans[0].kind: must be an integer from 0 to 5
            resourceSpans[0].scopeSpans[0].spans[0].startTimeUnixNano: must be a whole number from 0 to 2^64-1, as a decimal string or a number, found `"-5"`
            resourceSpans[0].scopeSpans[0].spans[0].endTimeUnixNano: must be a whole number from 0 to 2^64-1, as a decimal string or a number, found `"abc"`
            resourceSpans[0].scopeSpans[0].spans[0].status.code: must be an integer from 0 to 2
            resourceSpans[0].scopeSpans[0].spans[0].attributes[1].value: `gen_ai.request.model` must be a `stringValue`, found `intValue`
            resourceSpans[0].scopeSpans[0].spans[0].attributes[2].value: `gen_ai.usage.input_tokens` must be an `intValue`, found `stringValue`
            resourceSpans[0].scopeSpans[0].spans[0].attributes[3].value: `gen_ai.usage.output_tokens` must be a whole number, 0 or more, found `"-3"`
            resourceSpans[0].scopeSpans[0].spans[0].attributes[4].value.arrayValue.values[1]: must be a `stringValue`, found `intValue`
            resourceSpans[0].scopeSpans[0].spans[1].endTimeUnixNano: must not be before `startTimeUnixNano`
            resourceSpans[1].scopeSpans: must be an array, found an object
            resourceSpans[2]: must be an object, found a string
        "#]],
    );
}

// Regression (found by fuzz/intake_otlp): the kind of a wrongly typed value was quoted raw
// from the client's JSON, control characters and any length included.
#[test]
fn the_kind_of_a_wrong_value_is_quoted_escaped_and_short() {
    let long = "x".repeat(41);
    let body = format!(
        r#"{{"resourceSpans": [{{"scopeSpans": [{{"spans": [{{
            "traceId": "5b8efff798038103d269b633813fc60c", "spanId": "eee19b7ec3c1b174",
            "startTimeUnixNano": "1", "endTimeUnixNano": "2",
            "attributes": [
              {{"key": "gen_ai.system", "value": {{"\nringValue": "openai"}}}},
              {{"key": "gen_ai.request.model", "value": {{"{long}": "m"}}}}
            ]}}]}}]}}]}}"#
    );
    check(
        &body,
        expect![[r#"
            the payload has 2 problems
            resourceSpans[0].scopeSpans[0].spans[0].attributes[0].value: `gen_ai.system` must be a `stringValue`, found `\nringValue`
            resourceSpans[0].scopeSpans[0].spans[0].attributes[1].value: `gen_ai.request.model` must be a `stringValue`, found a value of an unknown kind
        "#]],
    );
}

#[test]
fn signals_of_a_js_sdk_export() {
    let pushed = Pushed::Spans(parse_otlp_traces(JS_SDK.as_bytes()).unwrap());
    check_signals(
        &pushed,
        expect![[r#"
            vigil_genai_agent_invocations_total{agent="triage",error_type="_OTHER"} counter +1
            vigil_genai_finish_reasons_total{model="gpt-4o-mini",provider="openai",reason="length"} counter +1
            vigil_genai_request_duration_seconds_bucket{le="+Inf",model="gpt-4o-mini",provider="openai"} counter +2
            vigil_genai_request_duration_seconds_bucket{le="0.01",model="gpt-4o-mini",provider="openai"} counter +0
            vigil_genai_request_duration_seconds_bucket{le="0.02",model="gpt-4o-mini",provider="openai"} counter +0
            vigil_genai_request_duration_seconds_bucket{le="0.04",model="gpt-4o-mini",provider="openai"} counter +1
            vigil_genai_request_duration_seconds_bucket{le="0.08",model="gpt-4o-mini",provider="openai"} counter +1
            vigil_genai_request_duration_seconds_bucket{le="0.16",model="gpt-4o-mini",provider="openai"} counter +1
            vigil_genai_request_duration_seconds_bucket{le="0.32",model="gpt-4o-mini",provider="openai"} counter +1
            vigil_genai_request_duration_seconds_bucket{le="0.64",model="gpt-4o-mini",provider="openai"} counter +1
            vigil_genai_request_duration_seconds_bucket{le="1.28",model="gpt-4o-mini",provider="openai"} counter +2
            vigil_genai_request_duration_seconds_bucket{le="10.24",model="gpt-4o-mini",provider="openai"} counter +2
            vigil_genai_request_duration_seconds_bucket{le="2.56",model="gpt-4o-mini",provider="openai"} counter +2
            vigil_genai_request_duration_seconds_bucket{le="20.48",model="gpt-4o-mini",provider="openai"} counter +2
            vigil_genai_request_duration_seconds_bucket{le="40.96",model="gpt-4o-mini",provider="openai"} counter +2
            vigil_genai_request_duration_seconds_bucket{le="5.12",model="gpt-4o-mini",provider="openai"} counter +2
            vigil_genai_request_duration_seconds_bucket{le="81.92",model="gpt-4o-mini",provider="openai"} counter +2
            vigil_genai_request_duration_seconds_count{model="gpt-4o-mini",provider="openai"} counter +2
            vigil_genai_request_duration_seconds_sum{model="gpt-4o-mini",provider="openai"} counter +1.19
            vigil_genai_requests_total{error_type="",model="gpt-4o-mini",operation="chat",provider="openai",response_model="gpt-4o-mini-2024-07-18"} counter +1
            vigil_genai_requests_total{error_type="429",model="gpt-4o-mini",operation="chat",provider="openai",response_model=""} counter +1
            vigil_genai_tokens_total{direction="input",model="gpt-4o-mini",provider="openai"} counter +812
            vigil_genai_tokens_total{direction="output",model="gpt-4o-mini",provider="openai"} counter +256
            vigil_genai_tool_calls_total{error_type="timeout",tool="search_tickets"} counter +1
        "#]],
    );
    assert_round_trip(&pushed);
}

/// A RAG app's export: a retrieval call to qdrant that timed out after 6 s, beside a chat.
pub(super) const DB_SPANS: &str = r#"{"resourceSpans": [{
  "resource": {"attributes": [{"key": "service.name", "value": {"stringValue": "support-bot"}}]},
  "scopeSpans": [{"spans": [
    {"traceId": "5b8efff798038103d269b633813fc60c", "spanId": "eee19b7ec3c1b171",
     "name": "query docs", "kind": 3, "startTimeUnixNano": "1000000000", "endTimeUnixNano": "7000000000",
     "attributes": [
       {"key": "db.system.name", "value": {"stringValue": "qdrant"}},
       {"key": "db.collection.name", "value": {"stringValue": "docs"}},
       {"key": "db.operation.name", "value": {"stringValue": "query"}},
       {"key": "server.address", "value": {"stringValue": "qdrant:6333"}},
       {"key": "error.type", "value": {"stringValue": "timeout"}}],
     "status": {"code": 2}},
    {"traceId": "5b8efff798038103d269b633813fc60c", "spanId": "eee19b7ec3c1b172",
     "name": "search", "startTimeUnixNano": "1000000000", "endTimeUnixNano": "1050000000",
     "attributes": [{"key": "db.system", "value": {"stringValue": "pgvector"}}]},
    {"traceId": "5b8efff798038103d269b633813fc60c", "spanId": "eee19b7ec3c1b173",
     "name": "GET /", "startTimeUnixNano": "1", "endTimeUnixNano": "2",
     "attributes": [{"key": "server.address", "value": {"stringValue": "example.com"}}]}
  ]}]}]}"#;

#[test]
fn database_spans_are_kept_and_become_per_store_signals_not_model_calls() {
    let batch = parse_otlp_traces(DB_SPANS.as_bytes()).unwrap();
    // The plain HTTP span is counted and dropped; the two database spans are kept.
    assert_eq!(batch.spans_received, 3);
    assert_eq!(batch.spans.len(), 2);
    let qdrant = &batch.spans[0];
    assert_eq!(qdrant.db_system.as_deref(), Some("qdrant"));
    assert_eq!(qdrant.db_collection.as_deref(), Some("docs"));
    assert_eq!(qdrant.server_address.as_deref(), Some("qdrant:6333"));
    assert!(!qdrant.is_model_call());
    // The older `db.system` names the store too.
    assert_eq!(batch.spans[1].db_system.as_deref(), Some("pgvector"));
    let pushed = Pushed::Spans(batch);
    check_signals(
        &pushed,
        expect![[r#"
            vigil_db_request_duration_seconds_bucket{collection="",db_system="pgvector",le="+Inf"} counter +1
            vigil_db_request_duration_seconds_bucket{collection="",db_system="pgvector",le="0.01"} counter +0
            vigil_db_request_duration_seconds_bucket{collection="",db_system="pgvector",le="0.02"} counter +0
            vigil_db_request_duration_seconds_bucket{collection="",db_system="pgvector",le="0.04"} counter +0
            vigil_db_request_duration_seconds_bucket{collection="",db_system="pgvector",le="0.08"} counter +1
            vigil_db_request_duration_seconds_bucket{collection="",db_system="pgvector",le="0.16"} counter +1
            vigil_db_request_duration_seconds_bucket{collection="",db_system="pgvector",le="0.32"} counter +1
            vigil_db_request_duration_seconds_bucket{collection="",db_system="pgvector",le="0.64"} counter +1
            vigil_db_request_duration_seconds_bucket{collection="",db_system="pgvector",le="1.28"} counter +1
            vigil_db_request_duration_seconds_bucket{collection="",db_system="pgvector",le="10.24"} counter +1
            vigil_db_request_duration_seconds_bucket{collection="",db_system="pgvector",le="2.56"} counter +1
            vigil_db_request_duration_seconds_bucket{collection="",db_system="pgvector",le="20.48"} counter +1
            vigil_db_request_duration_seconds_bucket{collection="",db_system="pgvector",le="40.96"} counter +1
            vigil_db_request_duration_seconds_bucket{collection="",db_system="pgvector",le="5.12"} counter +1
            vigil_db_request_duration_seconds_bucket{collection="",db_system="pgvector",le="81.92"} counter +1
            vigil_db_request_duration_seconds_bucket{collection="docs",db_system="qdrant",le="+Inf"} counter +1
            vigil_db_request_duration_seconds_bucket{collection="docs",db_system="qdrant",le="0.01"} counter +0
            vigil_db_request_duration_seconds_bucket{collection="docs",db_system="qdrant",le="0.02"} counter +0
            vigil_db_request_duration_seconds_bucket{collection="docs",db_system="qdrant",le="0.04"} counter +0
            vigil_db_request_duration_seconds_bucket{collection="docs",db_system="qdrant",le="0.08"} counter +0
            vigil_db_request_duration_seconds_bucket{collection="docs",db_system="qdrant",le="0.16"} counter +0
            vigil_db_request_duration_seconds_bucket{collection="docs",db_system="qdrant",le="0.32"} counter +0
            vigil_db_request_duration_seconds_bucket{collection="docs",db_system="qdrant",le="0.64"} counter +0
            vigil_db_request_duration_seconds_bucket{collection="docs",db_system="qdrant",le="1.28"} counter +0
            vigil_db_request_duration_seconds_bucket{collection="docs",db_system="qdrant",le="10.24"} counter +1
            vigil_db_request_duration_seconds_bucket{collection="docs",db_system="qdrant",le="2.56"} counter +0
            vigil_db_request_duration_seconds_bucket{collection="docs",db_system="qdrant",le="20.48"} counter +1
            vigil_db_request_duration_seconds_bucket{collection="docs",db_system="qdrant",le="40.96"} counter +1
            vigil_db_request_duration_seconds_bucket{collection="docs",db_system="qdrant",le="5.12"} counter +0
            vigil_db_request_duration_seconds_bucket{collection="docs",db_system="qdrant",le="81.92"} counter +1
            vigil_db_request_duration_seconds_count{collection="",db_system="pgvector"} counter +1
            vigil_db_request_duration_seconds_count{collection="docs",db_system="qdrant"} counter +1
            vigil_db_request_duration_seconds_sum{collection="",db_system="pgvector"} counter +0.05
            vigil_db_request_duration_seconds_sum{collection="docs",db_system="qdrant"} counter +6
            vigil_db_requests_total{collection="",db_system="pgvector",error_type=""} counter +1
            vigil_db_requests_total{collection="docs",db_system="qdrant",error_type="timeout"} counter +1
        "#]],
    );
    assert_round_trip(&pushed);
}
