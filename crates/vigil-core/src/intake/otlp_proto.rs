//! OTLP/HTTP traces in the protobuf encoding (`POST /v1/traces` with
//! `Content-Type: application/x-protobuf`, what OpenTelemetry SDKs send by default): the
//! same `ExportTraceServiceRequest` as [`otlp`], read into the same
//! [`SpanBatch`] by the same rules.
//!
//! The body is walked, not decoded whole: protobuf in memory costs many times its bytes (a
//! two-byte attribute becomes a `KeyValue` of about 80 bytes), so the request, each
//! `ResourceSpans`, `ScopeSpans` and span are opened one level at a time, borrowing from the
//! body, and only what vigil reads is decoded: a span's scalar fields and status (a
//! `prost` message without its repeated fields, which it skips) and, of its attributes, the
//! keys, then the values of the last attribute of each key vigil reads. Such a span is then
//! handed, in its OTLP/JSON form, to the JSON path's own span reader
//! ([`otlp::read_span_fields`](super::otlp)), so that every rule (ids of the right length,
//! times in order, kinds and codes in range, attribute kinds, string and array bounds) is
//! written once and every problem is named by the same field path (`resourceSpans[0].
//! scopeSpans[0].spans[3].attributes[2].value`).
//!
//! What protobuf decides differently from JSON: an absent field is its default, so an empty
//! id and a zero time count as missing; ids are bytes (16 for a trace, 8 for a span); a
//! repeated occurrence of a singular field counts once, the last (a `resource` given twice
//! has both attribute lists). The framing of every field of the levels walked is checked
//! (tags, wire types, lengths within their parent; groups, which OTLP never uses, are
//! skipped as protobuf skips unknown fields, up to 100 deep); the contents of fields vigil does not read (events, links, the values of other
//! attributes, spans that are not GenAI spans) are skipped, not decoded. Nothing recurses
//! beyond the fixed levels of the schema, and no nested message is decoded past one level,
//! so a deeply nested value costs nothing.

use serde_json::{Map, Number, Value};

use super::IntakeError;
use super::json::{self, Walker};
use super::otlp::{self, Encoding, GenAiSpan, MAX_OTLP_ARRAY, SpanBatch};
use super::otlp_messages::SpanHead;
use super::otlp_values::{Attribute, GenAiAttributes, MAX_FINISH_REASONS, too_many_values};

/// Parses an OTLP/protobuf trace export request and keeps its GenAI spans, reporting every
/// problem with its path, as [`parse_otlp_traces`](super::parse_otlp_traces) does for JSON.
pub fn parse_otlp_traces_protobuf(body: &[u8]) -> Result<SpanBatch, IntakeError> {
    let mut walker = Walker::default();
    // Sized once: grown by doubling, the batch of a body of tiny GenAI spans peaked at 11.5
    // times the body (the old and the new buffer both live); sized, at 6 times.
    let mut batch = SpanBatch {
        spans: Vec::with_capacity(count_gen_ai_spans(body)),
        spans_received: 0,
    };
    let resource_spans = repeated(&mut walker, body, "", "resourceSpans", 1, MAX_OTLP_ARRAY);
    for (idx, item) in resource_spans.into_iter().enumerate() {
        let path = json::index("resourceSpans", idx);
        read_resource_spans(&mut walker, item, &path, &mut batch);
    }
    walker.finish(batch)
}

/// How many spans of the request carry an attribute that marks a GenAI span, at most: a
/// quick walk that reports nothing (the real one does) and allocates nothing.
fn count_gen_ai_spans(body: &[u8]) -> usize {
    fn children(message: &[u8], number: u64) -> impl Iterator<Item = &[u8]> {
        fields(message)
            .map_while(Result::ok)
            .filter_map(move |(found, wire)| match wire {
                Wire::Bytes(bytes) if found == number => Some(bytes),
                _ => None,
            })
    }
    let mut n_gen_ai = 0_usize;
    for resource_spans in children(body, 1) {
        for scope_spans in children(resource_spans, 2) {
            for span in children(scope_spans, 2) {
                let marked = children(span, 9).any(|attribute| {
                    children(attribute, 1).last().is_some_and(|key| {
                        std::str::from_utf8(key).is_ok_and(GenAiAttributes::marks_kept)
                    })
                });
                n_gen_ai += usize::from(marked);
            }
        }
    }
    n_gen_ai
}

/// How deep groups may nest: prost's recursion limit.
const MAX_GROUP_DEPTH: usize = 100;

/// One field of a protobuf message on the wire.
#[derive(Clone, Copy, Debug)]
enum Wire<'a> {
    Varint(u64),
    Fixed64(u64),
    Fixed32,
    Bytes(&'a [u8]),
    /// A group (deprecated; OTLP never uses one), skipped whole as protobuf skips it.
    Group,
}

impl Wire<'_> {
    fn describe(&self) -> &'static str {
        match self {
            Wire::Varint(_) => "a varint (wire type 0)",
            Wire::Fixed64(_) => "a 64-bit value (wire type 1)",
            Wire::Fixed32 => "a 32-bit value (wire type 5)",
            Wire::Bytes(_) => "a length-delimited value (wire type 2)",
            Wire::Group => "a group (wire type 3)",
        }
    }
}

/// The fields of a message in order, or why its framing breaks.
struct Fields<'a> {
    rest: &'a [u8],
}

impl<'a> Iterator for Fields<'a> {
    type Item = Result<(u64, Wire<'a>), String>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.rest.is_empty() {
            return None;
        }
        let item = self.field();
        if item.is_err() {
            // Nothing after a broken frame can be read.
            self.rest = &[];
        }
        Some(item)
    }
}

impl<'a> Fields<'a> {
    fn field(&mut self) -> Result<(u64, Wire<'a>), String> {
        let key = self.varint()?;
        let number = key >> 3;
        if number == 0 || number > u64::from(u32::MAX >> 3) {
            return Err(format!("has a field number out of range ({number})"));
        }
        let wire = match key & 7 {
            0 => Wire::Varint(self.varint()?),
            1 => {
                let bytes = self.take(8)?;
                let mut word = [0_u8; 8];
                word.copy_from_slice(bytes);
                Wire::Fixed64(u64::from_le_bytes(word))
            }
            2 => {
                let length = usize::try_from(self.varint()?).unwrap_or(usize::MAX);
                Wire::Bytes(self.take(length)?)
            }
            5 => {
                self.take(4)?;
                Wire::Fixed32
            }
            3 => {
                self.skip_group(number, 1)?;
                Wire::Group
            }
            4 => return Err(format!("closes group {number}, which was never opened")),
            other => return Err(format!("field {number} has an invalid wire type ({other})")),
        };
        Ok((number, wire))
    }

    /// Skips the rest of group `number`, up to its end, as protobuf does with an unknown
    /// group; groups nest at most [`MAX_GROUP_DEPTH`] deep (prost's recursion limit).
    fn skip_group(&mut self, number: u64, depth: usize) -> Result<(), String> {
        if depth > MAX_GROUP_DEPTH {
            return Err(format!("nests groups more than {MAX_GROUP_DEPTH} deep"));
        }
        loop {
            if self.rest.is_empty() {
                return Err(format!("never closes group {number}"));
            }
            let key = self.varint()?;
            let inner = key >> 3;
            match key & 7 {
                0 => {
                    self.varint()?;
                }
                1 => {
                    self.take(8)?;
                }
                2 => {
                    let length = usize::try_from(self.varint()?).unwrap_or(usize::MAX);
                    self.take(length)?;
                }
                5 => {
                    self.take(4)?;
                }
                3 => self.skip_group(inner, depth + 1)?,
                4 if inner == number => return Ok(()),
                4 => return Err(format!("closes group {inner} inside group {number}")),
                other => return Err(format!("field {inner} has an invalid wire type ({other})")),
            }
        }
    }

    fn varint(&mut self) -> Result<u64, String> {
        prost::encoding::decode_varint(&mut self.rest)
            .map_err(|_| "has a malformed varint".to_owned())
    }

    fn take(&mut self, length: usize) -> Result<&'a [u8], String> {
        let (taken, rest) = self
            .rest
            .split_at_checked(length)
            .ok_or_else(|| "has a field that runs past the end of its message".to_owned())?;
        self.rest = rest;
        Ok(taken)
    }
}

fn fields(message: &[u8]) -> Fields<'_> {
    Fields { rest: message }
}

/// Reports the first framing fault of the message at `path`; whether it has none.
fn framed(walker: &mut Walker, message: &[u8], path: &str) -> bool {
    match fields(message).find_map(Result::err) {
        None => true,
        Some(reason) => {
            // The body as a whole has no path, as a JSON syntax error has none.
            let subject = if path.is_empty() { "the body " } else { "" };
            walker.report(
                path,
                format!("{subject}is not a valid protobuf message: {reason}"),
            );
            false
        }
    }
}

/// The occurrences of the length-delimited field `number` (named `key`), when the message at
/// `path` is well framed, that field is never of another wire type, and it occurs at most
/// `max_len` times (else the problem, worded as the JSON path words it).
fn repeated<'a>(
    walker: &mut Walker,
    message: &'a [u8],
    path: &str,
    key: &str,
    number: u64,
    max_len: usize,
) -> Vec<&'a [u8]> {
    if !framed(walker, message, path) {
        return Vec::new();
    }
    let field_path = json::join(path, key);
    let mut n_found = 0_usize;
    for (found, wire) in fields(message).flatten() {
        if found != number {
            continue;
        }
        if !matches!(wire, Wire::Bytes(_)) {
            walker.report(
                &field_path,
                format!(
                    "must be a length-delimited message, found {}",
                    wire.describe()
                ),
            );
            return Vec::new();
        }
        n_found += 1;
    }
    if n_found > max_len {
        walker.report(
            &field_path,
            format!("has {n_found} elements; at most {max_len} are accepted in one request"),
        );
        return Vec::new();
    }
    let mut found = Vec::with_capacity(n_found);
    for (field, wire) in fields(message).flatten() {
        if let (true, Wire::Bytes(bytes)) = (field == number, wire) {
            found.push(bytes);
        }
    }
    found
}

fn read_resource_spans(walker: &mut Walker, message: &[u8], path: &str, batch: &mut SpanBatch) {
    let resources = repeated(walker, message, path, "resource", 1, usize::MAX);
    let scope_spans = repeated(walker, message, path, "scopeSpans", 2, MAX_OTLP_ARRAY);
    let resource_path = json::join(path, "resource");
    let mut service_name = None;
    for resource in resources {
        for (idx, attribute) in repeated(
            walker,
            resource,
            &resource_path,
            "attributes",
            1,
            MAX_OTLP_ARRAY,
        )
        .into_iter()
        .enumerate()
        {
            let item_path = json::index(&json::join(&resource_path, "attributes"), idx);
            let Some((key, value)) = key_value(walker, attribute, &item_path) else {
                continue;
            };
            if key != "service.name" {
                continue;
            }
            let value_path = json::join(&item_path, "value");
            if let Some(AnyValue::String(name)) = any_value(walker, value, &value_path) {
                service_name = Some(name.to_owned());
            }
        }
    }
    for (scope_idx, scope) in scope_spans.into_iter().enumerate() {
        let scope_path = json::index(&json::join(path, "scopeSpans"), scope_idx);
        let spans = repeated(walker, scope, &scope_path, "spans", 2, MAX_OTLP_ARRAY);
        for (span_idx, span) in spans.into_iter().enumerate() {
            batch.spans_received += 1;
            let span_path = json::index(&json::join(&scope_path, "spans"), span_idx);
            if let Some(span) = read_span(walker, span, &span_path, service_name.as_deref()) {
                batch.spans.push(span);
            }
        }
    }
}

/// A `KeyValue`: its key, and where its value is ([`ValueSource::KeyValue`]).
fn key_value<'a>(
    walker: &mut Walker,
    message: &'a [u8],
    path: &str,
) -> Option<(&'a str, ValueSource<'a>)> {
    if !framed(walker, message, path) {
        return None;
    }
    let mut key: &[u8] = &[];
    for (number, wire) in fields(message).flatten() {
        match (number, wire) {
            (1, Wire::Bytes(bytes)) => key = bytes,
            (2, Wire::Bytes(_)) => {}
            (1 | 2, other) => {
                let name = if number == 1 { "key" } else { "value" };
                walker.report(
                    &json::join(path, name),
                    format!("must be length-delimited, found {}", other.describe()),
                );
                return None;
            }
            _ => {}
        }
    }
    match std::str::from_utf8(key) {
        Ok(key) => Some((key, ValueSource::KeyValue(message))),
        Err(_) => {
            walker.report(&json::join(path, "key"), "is not valid UTF-8");
            None
        }
    }
}

/// Where an `AnyValue` is: the `value` fields of a `KeyValue` (protobuf merges a singular
/// message field that occurs more than once, so all of them count), or one message.
#[derive(Clone, Copy)]
enum ValueSource<'a> {
    KeyValue(&'a [u8]),
    Message(&'a [u8]),
}

impl<'a> ValueSource<'a> {
    /// The `AnyValue` messages, in order: read one after the other, they are their merge.
    fn messages(self) -> impl Iterator<Item = &'a [u8]> {
        let (whole, key_value) = match self {
            ValueSource::Message(message) => (Some(message), &[][..]),
            ValueSource::KeyValue(message) => (None, message),
        };
        let values = fields(key_value)
            .map_while(Result::ok)
            .filter_map(|(number, wire)| match (number, wire) {
                (2, Wire::Bytes(value)) => Some(value),
                _ => None,
            });
        whole.into_iter().chain(values)
    }

    /// The fields of the merged `AnyValue`, numbered in order.
    fn fields(self) -> impl Iterator<Item = (usize, (u64, Wire<'a>))> {
        self.messages()
            .flat_map(|message| fields(message).map_while(Result::ok))
            .enumerate()
    }
}

/// An `AnyValue`, one level deep (arrays and lists are not opened).
enum AnyValue<'a> {
    Empty,
    String(&'a str),
    Bool(bool),
    Int(i64),
    Double(f64),
    /// The `arrayValue` fields of `source` after its field number `after`: merged, as
    /// protobuf merges them, into one array.
    Array {
        source: ValueSource<'a>,
        after: Option<usize>,
    },
    KeyValueList,
    Bytes,
}

/// Reads an `AnyValue`: the last of its `oneof` fields wins, and consecutive `arrayValue`s
/// merge, as in protobuf.
fn any_value<'a>(walker: &mut Walker, source: ValueSource<'a>, path: &str) -> Option<AnyValue<'a>> {
    for message in source.messages() {
        if !framed(walker, message, path) {
            return None;
        }
    }
    let mut found = AnyValue::Empty;
    let mut last_other: Option<usize> = None;
    for (ordinal, (number, wire)) in source.fields() {
        if (1..=7).contains(&number) && number != 5 {
            last_other = Some(ordinal);
        }
        found = match (number, wire) {
            (1, Wire::Bytes(bytes)) => match std::str::from_utf8(bytes) {
                Ok(text) => AnyValue::String(text),
                Err(_) => {
                    walker.report(&json::join(path, "stringValue"), "is not valid UTF-8");
                    return None;
                }
            },
            (2, Wire::Varint(flag)) => AnyValue::Bool(flag != 0),
            // int64 is two's complement on the wire.
            (3, Wire::Varint(int)) => AnyValue::Int(int as i64),
            (4, Wire::Fixed64(bits)) => AnyValue::Double(f64::from_bits(bits)),
            (5, Wire::Bytes(_)) => AnyValue::Array {
                source,
                after: last_other,
            },
            (6, Wire::Bytes(_)) => AnyValue::KeyValueList,
            (7, Wire::Bytes(_)) => AnyValue::Bytes,
            (1..=7, other) => {
                walker.report(
                    path,
                    format!(
                        "field {number} has the wrong wire type: {}",
                        other.describe()
                    ),
                );
                return None;
            }
            _ => continue,
        };
    }
    Some(found)
}

/// An `AnyValue` in its OTLP/JSON form, as far as the span reader looks: the elements of an
/// array only when `open_array` (they are read only for `gen_ai.response.finish_reasons`),
/// and never what is nested deeper.
fn json_value(walker: &mut Walker, any: AnyValue<'_>, path: &str, open_array: bool) -> Value {
    let (variant, inner) = match any {
        AnyValue::Empty => return Value::Null,
        AnyValue::String(text) => ("stringValue", Value::String(text.to_owned())),
        AnyValue::Bool(flag) => ("boolValue", Value::Bool(flag)),
        AnyValue::Int(int) => ("intValue", Value::Number(Number::from(int))),
        AnyValue::Double(double) => (
            "doubleValue",
            Number::from_f64(double).map_or(Value::Null, Value::Number),
        ),
        AnyValue::Array { source, after } if open_array => {
            ("arrayValue", json_array(walker, source, after, path))
        }
        AnyValue::Array { .. } => ("arrayValue", Value::Object(Map::new())),
        AnyValue::KeyValueList => ("kvlistValue", Value::Object(Map::new())),
        AnyValue::Bytes => ("bytesValue", Value::String(String::new())),
    };
    let mut map = Map::new();
    map.insert(variant.to_owned(), inner);
    Value::Object(map)
}

/// An `ArrayValue` as `{"values": [...]}`, its elements one level deep; a too long one is
/// refused here, as the span reader would refuse it, before any element is decoded.
fn json_array(
    walker: &mut Walker,
    source: ValueSource<'_>,
    after: Option<usize>,
    path: &str,
) -> Value {
    let array_path = json::join(path, "arrayValue");
    let parts = || {
        source
            .fields()
            .filter_map(move |(ordinal, field)| match field {
                (5, Wire::Bytes(array)) if after.is_none_or(|after| ordinal > after) => Some(array),
                _ => None,
            })
    };
    // Counted before any element is kept, so that a long array costs nothing.
    let mut n_elements = 0_usize;
    for array in parts() {
        if !framed(walker, array, &array_path) {
            return Value::Object(Map::new());
        }
        n_elements += fields(array)
            .map_while(Result::ok)
            .filter(|(number, _)| *number == 1)
            .count();
    }
    let mut values = Vec::new();
    if n_elements > MAX_FINISH_REASONS {
        walker.report(
            path,
            too_many_values("gen_ai.response.finish_reasons", n_elements),
        );
    } else {
        let values_path = json::join(&array_path, "values");
        let elements: Vec<&[u8]> = parts()
            .flat_map(|array| repeated(walker, array, &array_path, "values", 1, usize::MAX))
            .collect();
        for (idx, element) in elements.into_iter().enumerate() {
            let element_path = json::index(&values_path, idx);
            if let Some(any) = any_value(walker, ValueSource::Message(element), &element_path) {
                values.push(json_value(walker, any, &element_path, false));
            }
        }
    }
    let mut map = Map::new();
    map.insert("values".to_owned(), Value::Array(values));
    Value::Object(map)
}

/// Reads one span; `None` when it is not a GenAI span or has problems (then recorded).
fn read_span(
    walker: &mut Walker,
    message: &[u8],
    path: &str,
    service_name: Option<&str>,
) -> Option<GenAiSpan> {
    // The last attribute of each key vigil reads, with its index: at most one per key, so
    // that a span of many repeated attributes costs no more than one of each.
    let mut read: Vec<(usize, &str, ValueSource<'_>)> = Vec::new();
    let attributes = repeated(walker, message, path, "attributes", 9, MAX_OTLP_ARRAY);
    let list_path = json::join(path, "attributes");
    for (idx, attribute) in attributes.into_iter().enumerate() {
        let item_path = json::index(&list_path, idx);
        let Some((key, value)) = key_value(walker, attribute, &item_path) else {
            continue;
        };
        if GenAiAttributes::reads(key) {
            read.retain(|(_, known, _)| *known != key);
            read.push((idx, key, value));
        }
    }
    if !read
        .iter()
        .any(|(_, key, _)| GenAiAttributes::marks_kept(key))
    {
        return None;
    }
    let head = match <SpanHead as prost::Message>::decode(message) {
        Ok(head) => head,
        Err(error) => {
            walker.report(path, format!("is not a valid protobuf span: {error}"));
            return None;
        }
    };
    let map = span_fields(head);
    let mut values = Vec::with_capacity(read.len());
    for (idx, key, value) in read {
        let value_path = json::join(&json::index(&list_path, idx), "value");
        let Some(any) = any_value(walker, value, &value_path) else {
            continue;
        };
        let open_array = key == "gen_ai.response.finish_reasons";
        values.push((
            key,
            json_value(walker, any, &value_path, open_array),
            value_path,
        ));
    }
    let attributes: Vec<Attribute<'_>> = values
        .iter()
        .map(|(key, value, path)| Attribute {
            key,
            value,
            path: path.clone(),
        })
        .collect();
    otlp::read_span_fields(
        walker,
        &map,
        &attributes,
        path,
        service_name,
        Encoding::Protobuf,
    )
}

/// A span's scalar fields in their OTLP/JSON form; a default (empty id, zero time) is left
/// out, so that the span reader finds it missing.
fn span_fields(head: SpanHead) -> Map<String, Value> {
    let mut map = Map::new();
    for (key, id) in [
        ("traceId", &head.trace_id),
        ("spanId", &head.span_id),
        ("parentSpanId", &head.parent_span_id),
    ] {
        if !id.is_empty() {
            map.insert(key.to_owned(), Value::String(hex::encode(id)));
        }
    }
    map.insert("name".to_owned(), Value::String(head.name));
    map.insert("kind".to_owned(), Value::Number(Number::from(head.kind)));
    for (key, time) in [
        ("startTimeUnixNano", head.start_time_unix_nano),
        ("endTimeUnixNano", head.end_time_unix_nano),
    ] {
        if time != 0 {
            map.insert(key.to_owned(), Value::Number(Number::from(time)));
        }
    }
    if let Some(status) = head.status {
        let mut status_map = Map::new();
        status_map.insert("code".to_owned(), Value::Number(Number::from(status.code)));
        status_map.insert("message".to_owned(), Value::String(status.message));
        map.insert("status".to_owned(), Value::Object(status_map));
    }
    map
}

/// An `ExportTraceServiceResponse`: empty for full success, else with its
/// `partial_success`.
#[must_use]
pub fn export_response(partial_success: Option<(u64, String)>) -> Vec<u8> {
    let response = super::otlp_messages::ExportTraceServiceResponse {
        partial_success: partial_success.map(|(rejected_spans, error_message)| {
            super::otlp_messages::ExportTracePartialSuccess {
                rejected_spans: i64::try_from(rejected_spans).unwrap_or(i64::MAX),
                error_message,
            }
        }),
    };
    prost::Message::encode_to_vec(&response)
}

/// A `google.rpc.Status`: the body of an OTLP/HTTP error answer to a protobuf request, with
/// its gRPC `code` (3 for invalid input, 14 for unavailable, ...) and `message`.
#[must_use]
pub fn rpc_status(code: i32, message: String) -> Vec<u8> {
    prost::Message::encode_to_vec(&super::otlp_messages::RpcStatus { code, message })
}
