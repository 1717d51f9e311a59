//! OTLP/HTTP traces in the JSON encoding (`POST /v1/traces`), of which vigil keeps the spans
//! that follow the OpenTelemetry GenAI semantic conventions.
//!
//! The request is an `ExportTraceServiceRequest` in OTLP's JSON mapping: keys in
//! lowerCamelCase, `traceId`/`spanId` in hex, enums as integers (their proto names are also
//! accepted), and 64-bit integers (`intValue`, `startTimeUnixNano`) as decimal strings or
//! numbers:
//!
//! ```json
//! { "resourceSpans": [ {
//!     "resource": { "attributes": [ { "key": "service.name", "value": { "stringValue": "support-bot" } } ] },
//!     "scopeSpans": [ {
//!       "scope": { "name": "opentelemetry.instrumentation.openai_v2", "version": "2.1b0" },
//!       "spans": [ {
//!         "traceId": "5b8efff798038103d269b633813fc60c",
//!         "spanId": "eee19b7ec3c1b174",
//!         "parentSpanId": "eee19b7ec3c1b173",
//!         "name": "chat gpt-4o",
//!         "kind": 3,
//!         "startTimeUnixNano": "1772366400000000000",
//!         "endTimeUnixNano": "1772366401250000000",
//!         "attributes": [
//!           { "key": "gen_ai.operation.name", "value": { "stringValue": "chat" } },
//!           { "key": "gen_ai.provider.name", "value": { "stringValue": "openai" } },
//!           { "key": "gen_ai.request.model", "value": { "stringValue": "gpt-4o" } },
//!           { "key": "gen_ai.usage.input_tokens", "value": { "intValue": "812" } },
//!           { "key": "gen_ai.usage.output_tokens", "value": { "intValue": "64" } },
//!           { "key": "gen_ai.response.finish_reasons",
//!             "value": { "arrayValue": { "values": [ { "stringValue": "length" } ] } } }
//!         ],
//!         "status": { "code": 0 }
//!       } ]
//!     } ]
//! } ] }
//! ```
//!
//! A span is a *GenAI span* when it carries `gen_ai.operation.name`, `gen_ai.provider.name` or
//! the older `gen_ai.system`, and a *database span* when it carries `db.system.name` or the
//! older `db.system` (a retrieval store's calls: the vector database behind a RAG app); every
//! other span is counted and dropped unread. Of a kept span vigil reads `traceId`, `spanId`,
//! `parentSpanId`, `name`, `kind`, the two times, `status` and these attributes:
//!
//! | attribute | value | kept as |
//! | --- | --- | --- |
//! | `gen_ai.operation.name` | string (`chat`, `text_completion`, `embeddings`, `generate_content`, `invoke_agent`, `create_agent`, `execute_tool`, ...) | [`GenAiSpan::operation`] |
//! | `gen_ai.provider.name`, else `gen_ai.system` | string | [`GenAiSpan::provider`] |
//! | `gen_ai.request.model`, `gen_ai.response.model` | string | |
//! | `gen_ai.usage.input_tokens` (else `gen_ai.usage.prompt_tokens`) | int | |
//! | `gen_ai.usage.output_tokens` (else `gen_ai.usage.completion_tokens`) | int | |
//! | `gen_ai.response.finish_reasons` | string array (a lone string is accepted) | |
//! | `error.type` | string | |
//! | `gen_ai.agent.name`, `gen_ai.tool.name` | string | |
//! | `db.system.name`, else `db.system` | string | [`GenAiSpan::db_system`] |
//! | `db.collection.name` | string | [`GenAiSpan::db_collection`] |
//! | `server.address` | string | [`GenAiSpan::server_address`] |
//!
//! Token counts may also arrive as a whole `doubleValue`. Unknown fields are ignored, as the
//! OTLP specification requires; the resource's `service.name` is kept when it is a string.
//! A request without `resourceSpans` is empty, not wrong.
//!
//! The same request in protobuf ([`otlp_proto`](super::otlp_proto)) is read into the same
//! batch by this module's span reader.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use serde_json::{Map, Value};

use super::IntakeError;
use super::json::{self, Walker};
use super::otlp_values::{Attribute, GenAiAttributes, attributes};

/// The most `resourceSpans`, `scopeSpans` (per resource) or `spans` (per scope) accepted.
pub const MAX_OTLP_ARRAY: usize = 10_000;

/// Status messages are kept up to this many characters.
pub const MAX_STATUS_MESSAGE_CHARS: usize = 512;

/// The GenAI spans of one OTLP export request.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SpanBatch {
    /// The GenAI spans, in the order they were sent.
    pub spans: Vec<GenAiSpan>,
    /// How many spans the request carried, GenAI or not.
    pub spans_received: u64,
}

/// A span that follows the GenAI semantic conventions.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct GenAiSpan {
    /// The resource's `service.name`, when it has one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service_name: Option<String>,
    /// The trace id, 32 lowercase hex digits.
    pub trace_id: String,
    /// The span id, 16 lowercase hex digits.
    pub span_id: String,
    /// The parent's span id, absent for a root span.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parent_span_id: Option<String>,
    /// The span's name, such as `chat gpt-4o`.
    pub name: String,
    /// The span's kind.
    pub kind: SpanKind,
    /// When it started, nanoseconds since the Unix epoch.
    pub start_time_unix_nano: u64,
    /// When it ended (never before it started).
    pub end_time_unix_nano: u64,
    /// `gen_ai.operation.name`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub operation: Option<String>,
    /// `gen_ai.provider.name`, else `gen_ai.system`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub provider: Option<String>,
    /// `gen_ai.request.model`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request_model: Option<String>,
    /// `gen_ai.response.model`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub response_model: Option<String>,
    /// `gen_ai.usage.input_tokens`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub input_tokens: Option<u64>,
    /// `gen_ai.usage.output_tokens`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub output_tokens: Option<u64>,
    /// `gen_ai.response.finish_reasons`, one per generation.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub finish_reasons: Vec<String>,
    /// `error.type`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error_type: Option<String>,
    /// `gen_ai.agent.name`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub agent_name: Option<String>,
    /// `gen_ai.tool.name`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tool_name: Option<String>,
    /// `db.system.name`, else the older `db.system`: a database (retrieval) span.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub db_system: Option<String>,
    /// `db.collection.name`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub db_collection: Option<String>,
    /// `server.address`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub server_address: Option<String>,
    /// The span's status.
    pub status: SpanStatus,
}

impl GenAiSpan {
    /// Whether the span is a call to a model (not an agent, tool or database span). Spans
    /// without an operation come from instrumentations older than `gen_ai.operation.name`,
    /// which instrumented only model calls.
    #[must_use]
    pub fn is_model_call(&self) -> bool {
        self.db_system.is_none()
            && !matches!(
                self.operation.as_deref(),
                Some("invoke_agent" | "create_agent" | "execute_tool")
            )
    }

    /// The model: the requested one, else the one that answered, else `""`.
    #[must_use]
    pub fn model(&self) -> &str {
        self.request_model
            .as_deref()
            .or(self.response_model.as_deref())
            .unwrap_or_default()
    }

    /// The error class: `error.type`, else `_OTHER` when the status is an error (the
    /// conventions' fallback), else `""` for success.
    #[must_use]
    pub fn error_class(&self) -> &str {
        match (&self.error_type, self.status.code) {
            (Some(error_type), _) => error_type,
            (None, StatusCode::Error) => "_OTHER",
            (None, StatusCode::Unset | StatusCode::Ok) => "",
        }
    }

    /// How long the span took, in seconds.
    #[must_use]
    pub fn duration_seconds(&self) -> f64 {
        let nanos = self
            .end_time_unix_nano
            .saturating_sub(self.start_time_unix_nano);
        nanos as f64 / 1e9
    }
}

/// A span's kind (OTLP `Span.SpanKind`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SpanKind {
    /// 0: not specified.
    Unspecified,
    /// 1: an internal operation.
    Internal,
    /// 2: the server side of a call.
    Server,
    /// 3: the client side of a call (model calls).
    Client,
    /// 4: a message producer.
    Producer,
    /// 5: a message consumer.
    Consumer,
}

/// A span's status code (OTLP `Status.StatusCode`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StatusCode {
    /// 0: not set (the default).
    Unset,
    /// 1: marked successful.
    Ok,
    /// 2: failed.
    Error,
}

/// A span's status.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SpanStatus {
    /// The code.
    pub code: StatusCode,
    /// The message, cut to [`MAX_STATUS_MESSAGE_CHARS`] characters.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub message: String,
}

const SPAN_KINDS: [(SpanKind, &str); 6] = [
    (SpanKind::Unspecified, "SPAN_KIND_UNSPECIFIED"),
    (SpanKind::Internal, "SPAN_KIND_INTERNAL"),
    (SpanKind::Server, "SPAN_KIND_SERVER"),
    (SpanKind::Client, "SPAN_KIND_CLIENT"),
    (SpanKind::Producer, "SPAN_KIND_PRODUCER"),
    (SpanKind::Consumer, "SPAN_KIND_CONSUMER"),
];

const STATUS_CODES: [(StatusCode, &str); 3] = [
    (StatusCode::Unset, "STATUS_CODE_UNSET"),
    (StatusCode::Ok, "STATUS_CODE_OK"),
    (StatusCode::Error, "STATUS_CODE_ERROR"),
];

/// Parses an OTLP/JSON trace export request and keeps its GenAI spans, reporting every
/// problem with its path.
pub fn parse_otlp_traces(body: &[u8]) -> Result<SpanBatch, IntakeError> {
    // Checked whole, then opened level by level: only one span at a time is a parsed tree, so
    // a large export costs little more than its text (a tree of it all would cost up to 26
    // times as much: OTLP/JSON is made of small objects).
    let root = json::parse_raw(body)?;
    let mut walker = Walker::default();
    let mut batch = SpanBatch::default();
    if let Some(map) = walker.raw_object(root, "") {
        let resource_spans = optional_array(&mut walker, &map, "", "resourceSpans");
        for (idx, item) in resource_spans.into_iter().enumerate() {
            let path = json::index("resourceSpans", idx);
            read_resource_spans(&mut walker, item, &path, &mut batch);
        }
    }
    walker.finish(batch)
}

/// The elements of the optional array `key` (absent or `null`: none), unparsed.
fn optional_array<'a>(
    walker: &mut Walker,
    map: &BTreeMap<String, &'a RawValue>,
    path: &str,
    key: &str,
) -> Vec<&'a RawValue> {
    match map.get(key) {
        Some(raw) if !json::is_null(raw) => walker
            .raw_array(raw, &json::join(path, key), MAX_OTLP_ARRAY)
            .unwrap_or_default(),
        _ => Vec::new(),
    }
}

fn read_resource_spans(walker: &mut Walker, raw: &RawValue, path: &str, batch: &mut SpanBatch) {
    let Some(map) = walker.raw_object(raw, path) else {
        return;
    };
    let service_name = match map.get("resource") {
        Some(raw) if !json::is_null(raw) => {
            let resource_path = json::join(path, "resource");
            walker.tree(raw, &resource_path).and_then(|value| {
                let resource = walker.object(&value, &resource_path)?;
                attributes(walker, resource, &resource_path)
                    .into_iter()
                    .rev()
                    .filter(|attribute| attribute.key == "service.name")
                    .find_map(|attribute| attribute.value.get("stringValue")?.as_str())
                    .map(str::to_owned)
            })
        }
        _ => None,
    };
    for (scope_idx, scope) in optional_array(walker, &map, path, "scopeSpans")
        .into_iter()
        .enumerate()
    {
        let scope_path = json::index(&json::join(path, "scopeSpans"), scope_idx);
        let Some(scope_map) = walker.raw_object(scope, &scope_path) else {
            continue;
        };
        let spans = optional_array(walker, &scope_map, &scope_path, "spans");
        for (span_idx, span) in spans.into_iter().enumerate() {
            batch.spans_received += 1;
            let span_path = json::index(&json::join(&scope_path, "spans"), span_idx);
            let Some(span) = walker.tree(span, &span_path) else {
                continue;
            };
            if let Some(span) = read_span(walker, &span, &span_path, service_name.as_deref()) {
                batch.spans.push(span);
            }
        }
    }
}

/// Reads one span; `None` when it is not a GenAI span or has problems (then recorded).
fn read_span(
    walker: &mut Walker,
    value: &Value,
    path: &str,
    service_name: Option<&str>,
) -> Option<GenAiSpan> {
    let map = walker.object(value, path)?;
    let attributes: Vec<Attribute<'_>> = attributes(walker, map, path);
    read_span_fields(walker, map, &attributes, path, service_name, Encoding::Json)
}

/// How the request was encoded: the two differ only in how ids are written, and so in how a
/// wrong one is described.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Encoding {
    /// OTLP/JSON: ids in hex.
    Json,
    /// OTLP/protobuf: ids as bytes, handed here in hex.
    Protobuf,
}

/// Reads one span from its fields in OTLP/JSON form and its attributes: the one place where
/// a span is validated, whichever encoding it arrived in (`otlp_proto.rs` hands its spans
/// here in this form). `None` when it is neither a GenAI nor a database span, or has
/// problems (then recorded).
pub(crate) fn read_span_fields(
    walker: &mut Walker,
    map: &Map<String, Value>,
    attributes: &[Attribute<'_>],
    path: &str,
    service_name: Option<&str>,
    encoding: Encoding,
) -> Option<GenAiSpan> {
    let gen_ai = GenAiAttributes::collect(attributes);
    if !gen_ai.is_kept() {
        return None;
    }
    let trace_id = walker.field(map, path, "traceId", |walker, value, path| {
        hex_id(walker, value, path, 32, encoding)
    });
    let span_id = walker.field(map, path, "spanId", |walker, value, path| {
        hex_id(walker, value, path, 16, encoding)
    });
    let parent_span_id =
        walker.optional_field(
            map,
            path,
            "parentSpanId",
            |walker, value, path| match value.as_str() {
                Some("") => Some(None),
                _ => hex_id(walker, value, path, 16, encoding).map(Some),
            },
        );
    let name = walker.optional_field(map, path, "name", Walker::any_text);
    let kind = walker.optional_field(map, path, "kind", |walker, value, path| {
        enumeration(walker, value, path, &SPAN_KINDS)
    });
    let start = walker.field(map, path, "startTimeUnixNano", uint64);
    let end = walker.field(map, path, "endTimeUnixNano", uint64);
    if let (Some(start), Some(end)) = (start, end)
        && end < start
    {
        walker.report(
            &json::join(path, "endTimeUnixNano"),
            "must not be before `startTimeUnixNano`",
        );
    }
    let status = walker.optional_field(map, path, "status", status);
    let values = gen_ai.decode(walker)?;
    Some(GenAiSpan {
        service_name: service_name.map(str::to_owned),
        trace_id: trace_id?,
        span_id: span_id?,
        parent_span_id: parent_span_id?.flatten(),
        name: name?.unwrap_or_default().to_owned(),
        kind: kind?.unwrap_or(SpanKind::Unspecified),
        start_time_unix_nano: start?,
        end_time_unix_nano: end.filter(|end| start.is_some_and(|start| *end >= start))?,
        operation: values.operation,
        provider: values.provider,
        request_model: values.request_model,
        response_model: values.response_model,
        input_tokens: values.input_tokens,
        output_tokens: values.output_tokens,
        finish_reasons: values.finish_reasons,
        error_type: values.error_type,
        agent_name: values.agent_name,
        tool_name: values.tool_name,
        db_system: values.db_system,
        db_collection: values.db_collection,
        server_address: values.server_address,
        status: status?.unwrap_or(SpanStatus {
            code: StatusCode::Unset,
            message: String::new(),
        }),
    })
}

/// A trace or span id: `n_digits` hex digits, returned in lowercase.
fn hex_id(
    walker: &mut Walker,
    value: &Value,
    path: &str,
    n_digits: usize,
    encoding: Encoding,
) -> Option<String> {
    let text = walker.any_text(value, path)?;
    if text.len() == n_digits && text.bytes().all(|byte| byte.is_ascii_hexdigit()) {
        return Some(text.to_ascii_lowercase());
    }
    let message = match encoding {
        Encoding::Json => {
            format!("must be {n_digits} hex digits (OTLP/JSON encodes ids in hex, not base64)")
        }
        Encoding::Protobuf => format!("must be {} bytes, found {}", n_digits / 2, text.len() / 2),
    };
    walker.report(path, message);
    None
}

/// A 64-bit unsigned integer, as a decimal string (OTLP/JSON's usual form) or a number.
pub(crate) fn uint64(walker: &mut Walker, value: &Value, path: &str) -> Option<u64> {
    let parsed = match value {
        Value::String(text) if text.bytes().all(|byte| byte.is_ascii_digit()) => {
            text.parse::<u64>().ok()
        }
        Value::Number(number) => number.as_u64(),
        _ => None,
    };
    if parsed.is_none() {
        walker.report(
            path,
            format!(
                "must be a whole number from 0 to 2^64-1, as a decimal string or a number, found {}",
                json::show(value)
            ),
        );
    }
    parsed
}

/// An OTLP enum: its integer value, or its proto name.
fn enumeration<T: Copy>(
    walker: &mut Walker,
    value: &Value,
    path: &str,
    variants: &[(T, &str)],
) -> Option<T> {
    let found = match value {
        Value::Number(number) => number
            .as_u64()
            .and_then(|idx| usize::try_from(idx).ok())
            .and_then(|idx| variants.get(idx)),
        Value::String(text) => variants.iter().find(|(_, name)| name == text),
        _ => None,
    };
    if found.is_none() {
        walker.report(
            path,
            format!(
                "must be an integer from 0 to {}",
                variants.len().saturating_sub(1)
            ),
        );
    }
    found.map(|(variant, _)| *variant)
}

fn status(walker: &mut Walker, value: &Value, path: &str) -> Option<SpanStatus> {
    let map = walker.object(value, path)?;
    let code = walker.optional_field(map, path, "code", |walker, value, path| {
        enumeration(walker, value, path, &STATUS_CODES)
    });
    let message = walker.optional_field(map, path, "message", Walker::any_text);
    Some(SpanStatus {
        code: code?.unwrap_or(StatusCode::Unset),
        message: message?
            .unwrap_or_default()
            .chars()
            .take(MAX_STATUS_MESSAGE_CHARS)
            .collect(),
    })
}
