//! OTLP attributes (`KeyValue` with an `AnyValue`) and the GenAI and database attributes vigil
//! reads from them.

use serde_json::{Map, Value};

use super::MAX_NAME_CHARS;
use super::json::{self, Walker};
use super::otlp::{MAX_OTLP_ARRAY, uint64};

/// The most finish reasons one span may list.
pub const MAX_FINISH_REASONS: usize = 128;

/// Stands in for an attribute without a `value` (an empty `AnyValue`).
static EMPTY_VALUE: Value = Value::Null;

/// One attribute: its key and its `AnyValue` object, with the path of that value.
pub(crate) struct Attribute<'v> {
    pub(crate) key: &'v str,
    pub(crate) value: &'v Value,
    pub(crate) path: String,
}

/// The `attributes` of a resource or span. Each must be an object with a string `key`; a
/// missing `value` is an empty one. Values are not inspected here.
pub(crate) fn attributes<'v>(
    walker: &mut Walker,
    map: &'v Map<String, Value>,
    path: &str,
) -> Vec<Attribute<'v>> {
    let items = walker
        .optional_field(map, path, "attributes", |walker, value, path| {
            walker.array(value, path, MAX_OTLP_ARRAY)
        })
        .flatten()
        .unwrap_or_default();
    let list_path = json::join(path, "attributes");
    let mut found = Vec::with_capacity(items.len());
    for (idx, item) in items.iter().enumerate() {
        let item_path = json::index(&list_path, idx);
        let Some(entry) = walker.object(item, &item_path) else {
            continue;
        };
        let key = walker.field(entry, &item_path, "key", Walker::any_text);
        let value = match json::optional(entry, "value") {
            None => Some(&EMPTY_VALUE),
            Some(value) => walker
                .object(value, &json::join(&item_path, "value"))
                .map(|_| value),
        };
        if let (Some(key), Some(value)) = (key, value) {
            found.push(Attribute {
                key,
                value,
                path: json::join(&item_path, "value"),
            });
        }
    }
    found
}

/// The GenAI attributes of one span, found by key (the last one wins when a key repeats).
#[derive(Default)]
pub(crate) struct GenAiAttributes<'a, 'v> {
    operation: Option<&'a Attribute<'v>>,
    provider: Option<&'a Attribute<'v>>,
    system: Option<&'a Attribute<'v>>,
    request_model: Option<&'a Attribute<'v>>,
    response_model: Option<&'a Attribute<'v>>,
    input_tokens: Option<&'a Attribute<'v>>,
    prompt_tokens: Option<&'a Attribute<'v>>,
    output_tokens: Option<&'a Attribute<'v>>,
    completion_tokens: Option<&'a Attribute<'v>>,
    finish_reasons: Option<&'a Attribute<'v>>,
    error_type: Option<&'a Attribute<'v>>,
    agent_name: Option<&'a Attribute<'v>>,
    tool_name: Option<&'a Attribute<'v>>,
    db_system_name: Option<&'a Attribute<'v>>,
    db_system: Option<&'a Attribute<'v>>,
    db_collection: Option<&'a Attribute<'v>>,
    server_address: Option<&'a Attribute<'v>>,
}

/// The decoded values of a span's GenAI attributes.
pub(crate) struct GenAiValues {
    pub(crate) operation: Option<String>,
    pub(crate) provider: Option<String>,
    pub(crate) request_model: Option<String>,
    pub(crate) response_model: Option<String>,
    pub(crate) input_tokens: Option<u64>,
    pub(crate) output_tokens: Option<u64>,
    pub(crate) finish_reasons: Vec<String>,
    pub(crate) error_type: Option<String>,
    pub(crate) agent_name: Option<String>,
    pub(crate) tool_name: Option<String>,
    pub(crate) db_system: Option<String>,
    pub(crate) db_collection: Option<String>,
    pub(crate) server_address: Option<String>,
}

impl<'a, 'v> GenAiAttributes<'a, 'v> {
    pub(crate) fn collect(attributes: &'a [Attribute<'v>]) -> Self {
        let mut found = GenAiAttributes::default();
        for attribute in attributes {
            if let Some(slot) = found.slot(attribute.key) {
                *slot = Some(attribute);
            }
        }
        found
    }

    /// Whether vigil reads the attribute `key` of a span.
    pub(crate) fn reads(key: &str) -> bool {
        GenAiAttributes::default().slot(key).is_some()
    }

    /// Whether the attribute `key` makes a span one vigil keeps: a GenAI span or a database
    /// (retrieval) span.
    pub(crate) fn marks_kept(key: &str) -> bool {
        matches!(
            key,
            "gen_ai.operation.name"
                | "gen_ai.provider.name"
                | "gen_ai.system"
                | "db.system.name"
                | "db.system"
        )
    }

    /// The slot of the attribute `key`, when vigil reads it.
    fn slot(&mut self, key: &str) -> Option<&mut Option<&'a Attribute<'v>>> {
        Some(match key {
            "gen_ai.operation.name" => &mut self.operation,
            "gen_ai.provider.name" => &mut self.provider,
            "gen_ai.system" => &mut self.system,
            "gen_ai.request.model" => &mut self.request_model,
            "gen_ai.response.model" => &mut self.response_model,
            "gen_ai.usage.input_tokens" => &mut self.input_tokens,
            "gen_ai.usage.prompt_tokens" => &mut self.prompt_tokens,
            "gen_ai.usage.output_tokens" => &mut self.output_tokens,
            "gen_ai.usage.completion_tokens" => &mut self.completion_tokens,
            "gen_ai.response.finish_reasons" => &mut self.finish_reasons,
            "error.type" => &mut self.error_type,
            "gen_ai.agent.name" => &mut self.agent_name,
            "gen_ai.tool.name" => &mut self.tool_name,
            "db.system.name" => &mut self.db_system_name,
            "db.system" => &mut self.db_system,
            "db.collection.name" => &mut self.db_collection,
            "server.address" => &mut self.server_address,
            _ => return None,
        })
    }

    /// Whether the span is kept: it follows the GenAI conventions or the database ones (one
    /// of the [`Self::marks_kept`] keys is present).
    pub(crate) fn is_kept(&self) -> bool {
        self.operation.is_some()
            || self.provider.is_some()
            || self.system.is_some()
            || self.db_system_name.is_some()
            || self.db_system.is_some()
    }

    /// Decodes every value, recording each one of the wrong type; `None` when any was.
    pub(crate) fn decode(&self, walker: &mut Walker) -> Option<GenAiValues> {
        let before = walker.n_problems();
        let mut text = |attribute: Option<&Attribute<'_>>| {
            attribute.and_then(|attribute| string_value(walker, attribute))
        };
        let operation = text(self.operation);
        let provider = text(self.provider).or_else(|| text(self.system));
        let request_model = text(self.request_model);
        let response_model = text(self.response_model);
        let error_type = text(self.error_type);
        let agent_name = text(self.agent_name);
        let tool_name = text(self.tool_name);
        let db_system = text(self.db_system_name).or_else(|| text(self.db_system));
        let db_collection = text(self.db_collection);
        let server_address = text(self.server_address);
        let mut tokens = |current: Option<&Attribute<'_>>, older: Option<&Attribute<'_>>| {
            current
                .or(older)
                .and_then(|attribute| token_count(walker, attribute))
        };
        let input_tokens = tokens(self.input_tokens, self.prompt_tokens);
        let output_tokens = tokens(self.output_tokens, self.completion_tokens);
        let finish_reasons = self
            .finish_reasons
            .map(|attribute| string_array(walker, attribute))
            .unwrap_or_default();
        (walker.n_problems() == before).then_some(GenAiValues {
            operation,
            provider,
            request_model,
            response_model,
            input_tokens,
            output_tokens,
            finish_reasons,
            error_type,
            agent_name,
            tool_name,
            db_system,
            db_collection,
            server_address,
        })
    }
}

/// The longest `AnyValue` key quoted in a message; a longer one is only described.
const MAX_QUOTED_CHARS: usize = 40;

/// The `AnyValue` variant an attribute holds, for messages. The key comes from the client,
/// so it is quoted only when short, with control characters escaped.
fn variant(value: &Value) -> String {
    match value.as_object().and_then(|map| map.keys().next()) {
        Some(key) if key.chars().count() <= MAX_QUOTED_CHARS => {
            format!("`{}`", key.escape_debug())
        }
        Some(_) => "a value of an unknown kind".to_owned(),
        None => "an empty value".to_owned(),
    }
}

/// A string attribute, cut to [`MAX_NAME_CHARS`] characters; `None` when empty.
fn string_value(walker: &mut Walker, attribute: &Attribute<'_>) -> Option<String> {
    match attribute.value.get("stringValue").and_then(Value::as_str) {
        Some(text) => Some(text.chars().take(MAX_NAME_CHARS).collect::<String>())
            .filter(|text| !text.is_empty()),
        None => {
            walker.report(
                &attribute.path,
                format!(
                    "`{}` must be a `stringValue`, found {}",
                    attribute.key,
                    variant(attribute.value)
                ),
            );
            None
        }
    }
}

/// A token count: an `intValue` of 0 or more, or a whole `doubleValue`.
fn token_count(walker: &mut Walker, attribute: &Attribute<'_>) -> Option<u64> {
    let value = attribute.value;
    let (count, raw) = if let Some(int) = value.get("intValue") {
        let mut scratch = Walker::default();
        (uint64(&mut scratch, int, ""), int)
    } else if let Some(double) = value.get("doubleValue") {
        // Whole, non-negative and below 2^53, where every integer is exact in an f64.
        let count = double
            .as_f64()
            .filter(|double| *double >= 0.0 && double.fract() == 0.0)
            .filter(|double| *double < 9_007_199_254_740_992.0)
            .map(|double| double as u64);
        (count, double)
    } else {
        walker.report(
            &attribute.path,
            format!(
                "`{}` must be an `intValue`, found {}",
                attribute.key,
                variant(value)
            ),
        );
        return None;
    };
    if count.is_none() {
        walker.report(
            &attribute.path,
            format!(
                "`{}` must be a whole number, 0 or more, found {}",
                attribute.key,
                json::show(raw)
            ),
        );
    }
    count
}

/// Why a string-array attribute of `n_values` values is refused.
pub(crate) fn too_many_values(key: &str, n_values: usize) -> String {
    format!("`{key}` has {n_values} values; at most {MAX_FINISH_REASONS} are accepted")
}

/// A string-array attribute (a lone `stringValue` counts as an array of one).
fn string_array(walker: &mut Walker, attribute: &Attribute<'_>) -> Vec<String> {
    if let Some(text) = attribute.value.get("stringValue").and_then(Value::as_str) {
        return vec![text.chars().take(MAX_NAME_CHARS).collect()];
    }
    let values = attribute
        .value
        .get("arrayValue")
        .map(|array| array.get("values").unwrap_or(&EMPTY_VALUE))
        .map(|values| values.as_array().map(Vec::as_slice).unwrap_or_default());
    let Some(values) = values else {
        walker.report(
            &attribute.path,
            format!(
                "`{}` must be an `arrayValue` of strings, found {}",
                attribute.key,
                variant(attribute.value)
            ),
        );
        return Vec::new();
    };
    if values.len() > MAX_FINISH_REASONS {
        walker.report(
            &attribute.path,
            too_many_values(attribute.key, values.len()),
        );
        return Vec::new();
    }
    let values_path = json::join(&json::join(&attribute.path, "arrayValue"), "values");
    let mut strings = Vec::with_capacity(values.len());
    for (idx, item) in values.iter().enumerate() {
        match item.get("stringValue").and_then(Value::as_str) {
            Some(text) => strings.push(text.chars().take(MAX_NAME_CHARS).collect()),
            None => walker.report(
                &json::index(&values_path, idx),
                format!("must be a `stringValue`, found {}", variant(item)),
            ),
        }
    }
    strings
}
