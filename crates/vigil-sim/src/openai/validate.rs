//! The checks the OpenAI fake makes of a chat completion request before it answers from its
//! script, with the real API's messages, `param` and `code` for each refusal.

use serde_json::Value;

use super::wire::messages_chars;

/// The roles Chat Completions accepts.
const ROLES: [&str; 6] = [
    "system",
    "assistant",
    "user",
    "function",
    "tool",
    "developer",
];
/// The `response_format` types Chat Completions accepts.
const RESPONSE_FORMATS: [&str; 3] = ["text", "json_object", "json_schema"];

/// What the fake needs of a valid request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct ChatRequest {
    /// The model named, echoed in the answer.
    pub(super) model: String,
    /// Whether to answer with server-sent events.
    pub(super) stream: bool,
    /// Whether a stream ends with a usage chunk (`stream_options.include_usage`).
    pub(super) include_usage: bool,
    /// `max_completion_tokens`, else `max_tokens`.
    pub(super) max_tokens: Option<u64>,
    /// The characters of text in `messages`.
    pub(super) prompt_chars: usize,
}

/// Why a request is refused with 400 `invalid_request_error`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Invalid {
    /// OpenAI's message.
    pub(super) message: String,
    /// The offending field, as OpenAI names it.
    pub(super) param: Option<String>,
    /// OpenAI's machine-readable code, when it gives one.
    pub(super) code: Option<&'static str>,
}

impl Invalid {
    fn new(message: String, param: Option<String>, code: Option<&'static str>) -> Invalid {
        Invalid {
            message,
            param,
            code,
        }
    }

    fn missing(param: &str) -> Invalid {
        Invalid::new(
            format!("Missing required parameter: '{param}'."),
            Some(param.to_owned()),
            Some("missing_required_parameter"),
        )
    }

    fn invalid_type(param: &str, expected: &str, value: &Value) -> Invalid {
        Invalid::new(
            format!(
                "Invalid type for '{param}': expected {expected}, but got {} instead.",
                described(value)
            ),
            Some(param.to_owned()),
            Some("invalid_type"),
        )
    }

    fn invalid_value(param: &str, value: &str, supported: &[&str]) -> Invalid {
        Invalid::new(
            format!(
                "Invalid value: '{value}'. Supported values are: {}.",
                listed(supported)
            ),
            Some(param.to_owned()),
            Some("invalid_value"),
        )
    }
}

/// The message OpenAI gives for a body that is not JSON.
pub(super) const NOT_JSON: &str = "We could not parse the JSON body of your request. (HINT: This likely means you aren't using your HTTP library correctly. The OpenAI API expects a JSON payload, but what was sent was not valid JSON. If you have trouble figuring out how to fix this, please contact us through our help center at help.openai.com.)";

/// Checks a parsed request body as Chat Completions does.
pub(super) fn chat_request(body: &Value) -> Result<ChatRequest, Invalid> {
    let Some(fields) = body.as_object() else {
        return Err(Invalid::new(NOT_JSON.to_owned(), None, None));
    };
    let present = |key: &str| fields.get(key).filter(|value| !value.is_null());
    let model = match present("model") {
        Some(Value::String(model)) if !model.is_empty() => model.clone(),
        Some(Value::String(_)) | None => {
            return Err(Invalid::new(
                "you must provide a model parameter".to_owned(),
                None,
                None,
            ));
        }
        Some(other) => return Err(Invalid::invalid_type("model", "a string", other)),
    };
    let messages = match present("messages") {
        None => return Err(Invalid::missing("messages")),
        Some(Value::Array(messages)) if messages.is_empty() => {
            return Err(Invalid::new(
                "Invalid 'messages': empty array. Expected an array with minimum length 1, but got an empty array instead.".to_owned(),
                Some("messages".to_owned()),
                Some("empty_array"),
            ));
        }
        Some(Value::Array(messages)) => messages,
        Some(other) => {
            return Err(Invalid::invalid_type(
                "messages",
                "an array of objects",
                other,
            ));
        }
    };
    check_messages(messages)?;
    if let Some(tools) = present("tools") {
        check_tools(tools)?;
    }
    if let Some(format) = present("response_format") {
        check_response_format(format, messages)?;
    }
    let stream = match present("stream") {
        None => false,
        Some(Value::Bool(stream)) => *stream,
        Some(other) => return Err(Invalid::invalid_type("stream", "a boolean", other)),
    };
    let include_usage = match present("stream_options") {
        None => false,
        Some(_) if !stream => {
            return Err(Invalid::new(
                "The 'stream_options' parameter is only allowed when 'stream' is enabled."
                    .to_owned(),
                Some("stream_options".to_owned()),
                None,
            ));
        }
        Some(options) => options
            .get("include_usage")
            .and_then(Value::as_bool)
            .unwrap_or(false),
    };
    let max_tokens = match token_limit(present("max_completion_tokens"), "max_completion_tokens")? {
        Some(limit) => Some(limit),
        None => token_limit(present("max_tokens"), "max_tokens")?,
    };
    Ok(ChatRequest {
        model,
        stream,
        include_usage,
        max_tokens,
        prompt_chars: messages_chars(messages),
    })
}

/// Roles, and the pairing of tool messages with the assistant tool calls they answer.
fn check_messages(messages: &[Value]) -> Result<(), Invalid> {
    /// The latest assistant message with tool calls, while tool messages answer it.
    struct OpenCalls {
        index: usize,
        ids: Vec<String>,
        unanswered: Vec<String>,
    }
    let unanswered_error = |open: &OpenCalls| {
        Invalid::new(
            format!(
                "An assistant message with 'tool_calls' must be followed by tool messages responding to each 'tool_call_id'. The following tool_call_ids did not have response messages: {}",
                open.unanswered.join(", ")
            ),
            Some(format!("messages.[{}].role", open.index)),
            None,
        )
    };
    let mut open: Option<OpenCalls> = None;
    for (index, message) in messages.iter().enumerate() {
        let Some(fields) = message.as_object() else {
            return Err(Invalid::invalid_type(
                &format!("messages[{index}]"),
                "an object",
                message,
            ));
        };
        let role = match fields.get("role") {
            None | Some(Value::Null) => {
                return Err(Invalid::missing(&format!("messages[{index}].role")));
            }
            Some(Value::String(role)) => role.as_str(),
            Some(other) => {
                return Err(Invalid::invalid_type(
                    &format!("messages[{index}].role"),
                    "a string",
                    other,
                ));
            }
        };
        if !ROLES.contains(&role) {
            return Err(Invalid::invalid_value(
                &format!("messages[{index}].role"),
                role,
                &ROLES,
            ));
        }
        if role == "tool" {
            let Some(call_id) = fields.get("tool_call_id").and_then(Value::as_str) else {
                return Err(Invalid::new(
                    "Missing parameter 'tool_call_id': messages with role 'tool' must have a 'tool_call_id'.".to_owned(),
                    Some(format!("messages.[{index}].tool_call_id")),
                    None,
                ));
            };
            let Some(calls) = open.as_mut() else {
                // The real message spells it this way.
                return Err(Invalid::new(
                    "Invalid parameter: messages with role 'tool' must be a response to a preceeding message with 'tool_calls'.".to_owned(),
                    Some(format!("messages.[{index}].role")),
                    None,
                ));
            };
            if !calls.ids.iter().any(|id| id == call_id) {
                return Err(Invalid::new(
                    format!(
                        "Invalid parameter: 'tool_call_id' of '{call_id}' not found in 'tool_calls' of previous message."
                    ),
                    Some(format!("messages.[{index}].tool_call_id")),
                    None,
                ));
            }
            calls.unanswered.retain(|id| id != call_id);
            continue;
        }
        if let Some(calls) = open.take()
            && !calls.unanswered.is_empty()
        {
            return Err(unanswered_error(&calls));
        }
        if role == "assistant" {
            let ids: Vec<String> = fields
                .get("tool_calls")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .filter_map(|call| call.get("id").and_then(Value::as_str))
                .map(str::to_owned)
                .collect();
            if !ids.is_empty() {
                open = Some(OpenCalls {
                    index,
                    unanswered: ids.clone(),
                    ids,
                });
            }
        }
    }
    match open {
        Some(calls) if !calls.unanswered.is_empty() => Err(unanswered_error(&calls)),
        _ => Ok(()),
    }
}

fn check_tools(tools: &Value) -> Result<(), Invalid> {
    let Some(tools) = tools.as_array() else {
        return Err(Invalid::invalid_type("tools", "an array of objects", tools));
    };
    for (index, tool) in tools.iter().enumerate() {
        let param = |suffix: &str| format!("tools[{index}]{suffix}");
        if !tool.is_object() {
            return Err(Invalid::invalid_type(&param(""), "an object", tool));
        }
        match tool.get("type") {
            None | Some(Value::Null) => return Err(Invalid::missing(&param(".type"))),
            Some(Value::String(kind)) if kind == "function" => {}
            Some(Value::String(kind)) => {
                return Err(Invalid::invalid_value(&param(".type"), kind, &["function"]));
            }
            Some(other) => return Err(Invalid::invalid_type(&param(".type"), "a string", other)),
        }
        let Some(function) = tool.get("function").filter(|function| !function.is_null()) else {
            return Err(Invalid::missing(&param(".function")));
        };
        if function.get("name").and_then(Value::as_str).is_none() {
            return Err(Invalid::missing(&param(".function.name")));
        }
    }
    Ok(())
}

fn check_response_format(format: &Value, messages: &[Value]) -> Result<(), Invalid> {
    if !format.is_object() {
        return Err(Invalid::invalid_type(
            "response_format",
            "an object",
            format,
        ));
    }
    let kind = match format.get("type") {
        None | Some(Value::Null) => return Err(Invalid::missing("response_format.type")),
        Some(Value::String(kind)) => kind.as_str(),
        Some(other) => {
            return Err(Invalid::invalid_type(
                "response_format.type",
                "a string",
                other,
            ));
        }
    };
    if !RESPONSE_FORMATS.contains(&kind) {
        return Err(Invalid::invalid_value(
            "response_format.type",
            kind,
            &RESPONSE_FORMATS,
        ));
    }
    if kind == "json_schema" && format.get("json_schema").is_none_or(Value::is_null) {
        return Err(Invalid::missing("response_format.json_schema"));
    }
    if kind == "json_object" && !mentions_json(messages) {
        return Err(Invalid::new(
            "'messages' must contain the word 'json' in some form, to use 'response_format' of type 'json_object'.".to_owned(),
            Some("messages".to_owned()),
            None,
        ));
    }
    Ok(())
}

/// Whether any message's text says "json", in any case.
fn mentions_json(messages: &[Value]) -> bool {
    let says_json = |text: &str| text.to_lowercase().contains("json");
    messages.iter().any(|message| match message.get("content") {
        Some(Value::String(text)) => says_json(text),
        Some(Value::Array(parts)) => parts
            .iter()
            .filter_map(|part| part.get("text").and_then(Value::as_str))
            .any(says_json),
        _ => false,
    })
}

/// A token limit: an integer of at least 1.
fn token_limit(value: Option<&Value>, param: &str) -> Result<Option<u64>, Invalid> {
    let Some(value) = value else {
        return Ok(None);
    };
    match (value.as_u64(), value.as_i64()) {
        (Some(limit), _) if limit >= 1 => Ok(Some(limit)),
        (Some(limit), _) => Err(below_minimum(param, &limit.to_string())),
        (None, Some(limit)) => Err(below_minimum(param, &limit.to_string())),
        (None, None) => Err(Invalid::invalid_type(param, "an integer", value)),
    }
}

fn below_minimum(param: &str, got: &str) -> Invalid {
    Invalid::new(
        format!(
            "Invalid '{param}': integer below minimum value. Expected a value >= 1, but got {got} instead."
        ),
        Some(param.to_owned()),
        Some("integer_below_min_value"),
    )
}

/// A JSON value's type as OpenAI's messages name it.
fn described(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(number) if number.is_f64() => "a decimal",
        Value::Number(_) => "an integer",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// `'a', 'b', and 'c'`, as OpenAI lists supported values.
fn listed(values: &[&str]) -> String {
    let quoted: Vec<String> = values.iter().map(|value| format!("'{value}'")).collect();
    match quoted.as_slice() {
        [] => String::new(),
        [only] => only.clone(),
        [first, second] => format!("{first} and {second}"),
        [init @ .., last] => format!("{}, and {last}", init.join(", ")),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn supported_values_are_listed_as_openai_lists_them() {
        assert_eq!(listed(&["function"]), "'function'");
        assert_eq!(listed(&["a", "b"]), "'a' and 'b'");
        assert_eq!(listed(&["a", "b", "c"]), "'a', 'b', and 'c'");
    }

    #[test]
    fn an_assistant_tool_call_left_unanswered_is_refused() {
        let messages = json!([
            {"role": "user", "content": "hi"},
            {"role": "assistant", "content": null, "tool_calls": [
                {"id": "call_1", "type": "function", "function": {"name": "f", "arguments": "{}"}},
                {"id": "call_2", "type": "function", "function": {"name": "f", "arguments": "{}"}},
            ]},
            {"role": "tool", "tool_call_id": "call_1", "content": "one"},
            {"role": "user", "content": "and?"},
        ]);
        let refused = check_messages(messages.as_array().map(Vec::as_slice).unwrap_or(&[]));
        let Err(invalid) = refused else {
            unreachable!("the unanswered call_2 is refused")
        };
        assert!(invalid.message.ends_with("call_2"), "{invalid:?}");
        assert_eq!(invalid.param.as_deref(), Some("messages.[1].role"));
    }

    #[test]
    fn token_limits_must_be_positive_integers() {
        assert_eq!(token_limit(Some(&json!(5)), "max_tokens"), Ok(Some(5)));
        assert!(token_limit(Some(&json!(0)), "max_tokens").is_err());
        assert!(token_limit(Some(&json!(-3)), "max_tokens").is_err());
        assert!(token_limit(Some(&json!("5")), "max_tokens").is_err());
    }
}
