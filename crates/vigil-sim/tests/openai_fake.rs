//! Loopback tests of the OpenAI fake: the wire format of each scripted reply, the real API's
//! validation and auth refusals, truncation, streaming, and the script's bookkeeping.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic,
    reason = "tests fail loudly by design"
)]

use serde_json::{Value, json};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use vigil_sim::{OpenAiFake, Reply, Script};

const MODEL: &str = "gpt-4o-mini";
const KEY: &str = "sk-proj-fake-0123456789abcdef";

async fn start(script: Script) -> (OpenAiFake, CancellationToken) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let shutdown = CancellationToken::new();
    let fake = OpenAiFake::start(listener, script, shutdown.clone())
        .await
        .unwrap();
    (fake, shutdown)
}

fn client() -> reqwest::Client {
    let _already_installed = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::builder().build().unwrap()
}

fn ask(text: &str) -> Value {
    json!({"model": MODEL, "messages": [{"role": "user", "content": text}]})
}

async fn post_raw(client: &reqwest::Client, fake: &OpenAiFake, body: Vec<u8>) -> (u16, Value) {
    let response = client
        .post(format!("{}/chat/completions", fake.base_url()))
        .header("content-type", "application/json")
        .body(body)
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap())
}

async fn post(client: &reqwest::Client, fake: &OpenAiFake, body: &Value) -> (u16, Value) {
    post_raw(client, fake, body.to_string().into_bytes()).await
}

/// The `data:` payloads of an event stream, `[DONE]` included.
fn events(text: &str) -> Vec<String> {
    text.split("\n\n")
        .filter(|event| !event.is_empty())
        .map(|event| event.strip_prefix("data: ").unwrap().to_owned())
        .collect()
}

#[tokio::test]
async fn a_tool_call_reply_is_an_assistant_tool_call_in_the_real_shape() {
    // The arguments are invalid JSON on purpose: the fake passes them through untouched.
    let arguments = r#"{"service": "checkout""#;
    let (fake, shutdown) = start(Script::new(vec![Reply::tool_call("query", arguments)])).await;
    let request = ask("what broke?");
    let (status, body) = post(&client(), &fake, &request).await;
    assert_eq!(status, 200, "{body}");
    assert!(body["id"].as_str().unwrap().starts_with("chatcmpl-"));
    assert_eq!(body["object"], "chat.completion");
    assert!(body["created"].as_u64().unwrap() > 1_700_000_000);
    assert_eq!(body["model"], MODEL);
    let choice = &body["choices"][0];
    assert_eq!(choice["index"], 0);
    assert_eq!(choice["finish_reason"], "tool_calls");
    assert_eq!(choice["logprobs"], Value::Null);
    assert_eq!(choice["message"]["role"], "assistant");
    assert_eq!(choice["message"]["content"], Value::Null);
    assert_eq!(
        choice["message"]["tool_calls"],
        json!([{"id": "call_1", "type": "function",
                "function": {"name": "query", "arguments": arguments}}])
    );
    // "what broke?" is 11 characters: 3 tokens; "query" and the arguments are 27: 7.
    assert_eq!(
        (
            &body["usage"]["prompt_tokens"],
            &body["usage"]["completion_tokens"],
            &body["usage"]["total_tokens"]
        ),
        (&json!(3), &json!(7), &json!(10))
    );
    assert_eq!(fake.requests(), vec![request]);
    shutdown.cancel();
    fake.stopped().await;
}

#[tokio::test]
async fn a_content_reply_stops_and_has_no_tool_calls() {
    let (fake, shutdown) = start(Script::new(vec![Reply::content("The cache is cold.")])).await;
    let (status, body) = post(&client(), &fake, &ask("why?")).await;
    assert_eq!(status, 200, "{body}");
    let choice = &body["choices"][0];
    assert_eq!(choice["message"]["content"], "The cache is cold.");
    assert!(choice["message"].get("tool_calls").is_none(), "{body}");
    assert_eq!(choice["finish_reason"], "stop");
    // 18 characters of content: 5 tokens; "why?": 1.
    assert_eq!(body["usage"]["completion_tokens"], 5);
    assert_eq!(body["usage"]["prompt_tokens"], 1);
    shutdown.cancel();
}

#[tokio::test]
async fn a_status_reply_is_openai_s_error_with_retry_after() {
    let script = Script::new(vec![Reply::Status {
        status: 429,
        retry_after: Some("2".to_owned()),
        message: "Rate limit reached for gpt-4o-mini".to_owned(),
    }]);
    let (fake, shutdown) = start(script).await;
    let response = client()
        .post(format!("{}/chat/completions", fake.base_url()))
        .json(&ask("hi"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 429);
    assert_eq!(response.headers()["retry-after"], "2");
    let body: Value = response.json().await.unwrap();
    assert_eq!(
        body,
        json!({"error": {"message": "Rate limit reached for gpt-4o-mini", "type": "requests",
                         "param": null, "code": "rate_limit_exceeded"}})
    );
    shutdown.cancel();
}

#[tokio::test]
async fn a_delayed_reply_arrives() {
    let script = Script::new(vec![Reply::Delay {
        ms: 20,
        then: Box::new(Reply::content("late")),
    }]);
    let (fake, shutdown) = start(script).await;
    let (status, body) = post(&client(), &fake, &ask("hi")).await;
    assert_eq!(status, 200);
    assert_eq!(body["choices"][0]["message"]["content"], "late");
    shutdown.cancel();
}

#[tokio::test]
async fn close_drops_the_connection_without_an_answer() {
    let script = Script::new(vec![Reply::Close, Reply::content("back")]);
    let (fake, shutdown) = start(script).await;
    let client = client();
    let sent = client
        .post(format!("{}/chat/completions", fake.base_url()))
        .json(&ask("hi"))
        .send()
        .await;
    let error = sent.expect_err("a closed connection is an error, not a status");
    assert!(error.status().is_none(), "{error:?}");
    // The fake keeps serving: the next request gets the next reply.
    let (status, body) = post(&client, &fake, &ask("again")).await;
    assert_eq!(status, 200);
    assert_eq!(body["choices"][0]["message"]["content"], "back");
    shutdown.cancel();
}

#[tokio::test]
async fn respond_reads_the_tool_output_in_the_request() {
    let reply = Reply::respond(|request| {
        let output = request["messages"]
            .as_array()
            .and_then(|messages| messages.iter().rev().find(|m| m["role"] == "tool"))
            .and_then(|message| message["content"].as_str())
            .unwrap_or("nothing")
            .to_owned();
        Reply::Content(format!("The tool said: {output}"))
    });
    let (fake, shutdown) = start(Script::new(vec![Reply::tool_call("query", "{}"), reply])).await;
    let client = client();
    let (_, first) = post(&client, &fake, &ask("look")).await;
    let assistant = first["choices"][0]["message"].clone();
    let call_id = assistant["tool_calls"][0]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let follow_up = json!({"model": MODEL, "messages": [
        {"role": "user", "content": "look"},
        assistant,
        {"role": "tool", "tool_call_id": call_id, "content": "p99 is 2.3s"},
    ]});
    let (status, body) = post(&client, &fake, &follow_up).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        body["choices"][0]["message"]["content"],
        "The tool said: p99 is 2.3s"
    );
    shutdown.cancel();
}

#[tokio::test]
async fn invalid_requests_get_openai_s_400_and_keep_the_script_s_place() {
    let (fake, shutdown) = start(Script::new(vec![Reply::content("first")])).await;
    let client = client();
    let user = json!({"role": "user", "content": "hi"});
    let call = json!({"role": "assistant", "content": null, "tool_calls": [
        {"id": "call_a", "type": "function", "function": {"name": "f", "arguments": "{}"}}]});
    let cases = [
        (
            json!({"messages": [user]}),
            Value::Null,
            "you must provide a model parameter",
        ),
        (
            json!({"model": MODEL}),
            json!("messages"),
            "Missing required parameter: 'messages'.",
        ),
        (
            json!({"model": MODEL, "messages": []}),
            json!("messages"),
            "Invalid 'messages': empty array.",
        ),
        (
            json!({"model": MODEL, "messages": [{"role": "robot", "content": "x"}]}),
            json!("messages[0].role"),
            "Invalid value: 'robot'. Supported values are: 'system', 'assistant', 'user', 'function', 'tool', and 'developer'.",
        ),
        (
            json!({"model": MODEL, "messages": [user, {"role": "tool", "tool_call_id": "call_a", "content": "x"}]}),
            json!("messages.[1].role"),
            "Invalid parameter: messages with role 'tool' must be a response to a preceeding message with 'tool_calls'.",
        ),
        (
            json!({"model": MODEL, "messages": [user, call, {"role": "tool", "tool_call_id": "call_b", "content": "x"}]}),
            json!("messages.[2].tool_call_id"),
            "Invalid parameter: 'tool_call_id' of 'call_b' not found in 'tool_calls' of previous message.",
        ),
        (
            json!({"model": MODEL, "messages": [user, call]}),
            json!("messages.[1].role"),
            "An assistant message with 'tool_calls' must be followed by tool messages",
        ),
        (
            json!({"model": MODEL, "messages": [user], "tools": [{"type": "retrieval"}]}),
            json!("tools[0].type"),
            "Invalid value: 'retrieval'. Supported values are: 'function'.",
        ),
        (
            json!({"model": MODEL, "messages": [user], "response_format": {"type": "xml"}}),
            json!("response_format.type"),
            "Invalid value: 'xml'. Supported values are: 'text', 'json_object', and 'json_schema'.",
        ),
        (
            json!({"model": MODEL, "messages": [user], "response_format": {"type": "json_object"}}),
            json!("messages"),
            "'messages' must contain the word 'json'",
        ),
        (
            json!({"model": MODEL, "messages": [user], "max_tokens": 0}),
            json!("max_tokens"),
            "Invalid 'max_tokens': integer below minimum value.",
        ),
    ];
    let n_cases = cases.len();
    for (request, param, message) in cases {
        let (status, body) = post(&client, &fake, &request).await;
        assert_eq!(status, 400, "{request} → {body}");
        let error = &body["error"];
        assert_eq!(error["type"], "invalid_request_error", "{body}");
        assert_eq!(error["param"], param, "{body}");
        let said = error["message"].as_str().unwrap();
        assert!(said.starts_with(message), "{said:?} for {request}");
    }
    let (status, body) = post_raw(&client, &fake, b"{not json".to_vec()).await;
    assert_eq!(status, 400);
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .starts_with("We could not parse the JSON body of your request."),
        "{body}"
    );
    // No 400 used up the script's reply.
    let (status, body) = post(&client, &fake, &ask("now")).await;
    assert_eq!(status, 200);
    assert_eq!(body["choices"][0]["message"]["content"], "first");
    let requests = fake.requests();
    assert_eq!(requests.len(), n_cases + 2);
    assert_eq!(requests[n_cases], json!("{not json"));
    shutdown.cancel();
}

#[tokio::test]
async fn a_required_key_is_checked_with_openai_s_401s() {
    let (fake, shutdown) = start(Script::always(Reply::content("ok"))).await;
    let fake = fake.require_api_key(KEY);
    let client = client();
    let url = format!("{}/chat/completions", fake.base_url());
    let send = |key: Option<&str>| {
        let mut request = client.post(&url).json(&ask("hi"));
        if let Some(key) = key {
            request = request.bearer_auth(key);
        }
        async move {
            let response = request.send().await.unwrap();
            (
                response.status().as_u16(),
                response.json::<Value>().await.unwrap(),
            )
        }
    };

    let wrong_key = "sk-proj-wrong-9999999999zzzz";
    let (status, body) = send(Some(wrong_key)).await;
    assert_eq!(status, 401);
    let error = &body["error"];
    assert_eq!(
        (&error["type"], &error["param"], &error["code"]),
        (
            &json!("invalid_request_error"),
            &Value::Null,
            &json!("invalid_api_key")
        )
    );
    let message = error["message"].as_str().unwrap();
    assert!(
        message.starts_with("Incorrect API key provided: sk-"),
        "{message}"
    );
    assert!(
        message.contains("zzzz") && !message.contains(wrong_key),
        "{message}"
    );

    let (status, body) = send(None).await;
    assert_eq!(status, 401);
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .starts_with("You didn't provide an API key."),
        "{body}"
    );

    let (status, body) = send(Some(KEY)).await;
    assert_eq!(
        (status, &body["choices"][0]["message"]["content"]),
        (200, &json!("ok"))
    );

    let models = client
        .get(format!("{}/models", fake.base_url()))
        .bearer_auth(KEY)
        .send()
        .await
        .unwrap();
    assert_eq!(models.status().as_u16(), 200);
    let models: Value = models.json().await.unwrap();
    assert_eq!(models["object"], "list");
    assert!(
        models["data"]
            .as_array()
            .unwrap()
            .iter()
            .any(|model| model["id"] == MODEL)
    );
    let unauthenticated = client
        .get(format!("{}/models", fake.base_url()))
        .send()
        .await
        .unwrap();
    assert_eq!(unauthenticated.status().as_u16(), 401);
    shutdown.cancel();
}

#[tokio::test]
async fn a_script_that_runs_out_answers_500_until_replaced() {
    let (fake, shutdown) = start(Script::new(vec![Reply::content("one")])).await;
    let client = client();
    assert_eq!(post(&client, &fake, &ask("a")).await.0, 200);
    let (status, body) = post(&client, &fake, &ask("b")).await;
    assert_eq!(status, 500);
    assert_eq!(body["error"]["type"], "server_error");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("ran out"),
        "{body}"
    );

    fake.set_script(Script {
        replies: vec![Reply::content("fresh")],
        then: Some(Reply::content("again")),
    });
    let mut answers = Vec::new();
    for _ in 0..3 {
        let (_, body) = post(&client, &fake, &ask("c")).await;
        answers.push(body["choices"][0]["message"]["content"].clone());
    }
    assert_eq!(
        answers,
        vec![json!("fresh"), json!("again"), json!("again")]
    );
    shutdown.cancel();
}

#[tokio::test]
async fn a_token_limit_truncates_the_reply_with_finish_reason_length() {
    let text = "0123456789".repeat(4);
    let (fake, shutdown) = start(Script::always(Reply::content(text.clone()))).await;
    let client = client();
    for limit_field in ["max_tokens", "max_completion_tokens"] {
        let mut request = ask("hi");
        request[limit_field] = json!(3);
        let (status, body) = post(&client, &fake, &request).await;
        assert_eq!(status, 200, "{body}");
        let choice = &body["choices"][0];
        assert_eq!(choice["message"]["content"], text[..12], "{limit_field}");
        assert_eq!(choice["finish_reason"], "length");
        assert_eq!(body["usage"]["completion_tokens"], 3);
    }
    // A limit the reply fits in changes nothing.
    let mut request = ask("hi");
    request["max_tokens"] = json!(10);
    let (_, body) = post(&client, &fake, &request).await;
    assert_eq!(body["choices"][0]["message"]["content"], text);
    assert_eq!(body["choices"][0]["finish_reason"], "stop");
    shutdown.cancel();
}

#[tokio::test]
async fn streamed_replies_reassemble_into_the_message() {
    let text = "Checkout's p99 rose after the deploy at 12:04.";
    let arguments = r#"{"query": "histogram_quantile(0.99, rate(x[5m]))"}"#;
    let script = Script::new(vec![
        Reply::content(text),
        Reply::tool_call("prometheus", arguments),
    ]);
    let (fake, shutdown) = start(script).await;
    let client = client();
    let mut request = ask("why?");
    request["stream"] = json!(true);
    request["stream_options"] = json!({"include_usage": true});

    let stream = |request: Value| {
        let client = client.clone();
        let url = format!("{}/chat/completions", fake.base_url());
        async move {
            let response = client.post(url).json(&request).send().await.unwrap();
            assert_eq!(response.status().as_u16(), 200);
            let content_type = response.headers()["content-type"]
                .to_str()
                .unwrap()
                .to_owned();
            assert!(
                content_type.starts_with("text/event-stream"),
                "{content_type}"
            );
            events(&response.text().await.unwrap())
        }
    };

    let events_of_content = stream(request.clone()).await;
    assert_eq!(events_of_content.last().unwrap(), "[DONE]");
    let chunks: Vec<Value> = events_of_content[..events_of_content.len() - 1]
        .iter()
        .map(|event| serde_json::from_str(event).unwrap())
        .collect();
    assert!(chunks.len() > 3, "content arrives in several chunks");
    assert!(
        chunks
            .iter()
            .all(|chunk| chunk["object"] == "chat.completion.chunk")
    );
    assert_eq!(chunks[0]["choices"][0]["delta"]["role"], "assistant");
    let content: String = chunks
        .iter()
        .filter_map(|chunk| chunk["choices"][0]["delta"]["content"].as_str())
        .collect();
    assert_eq!(content, text);
    let finishes: Vec<&Value> = chunks
        .iter()
        .map(|chunk| &chunk["choices"][0]["finish_reason"])
        .filter(|finish| !finish.is_null())
        .collect();
    assert_eq!(finishes, vec![&json!("stop")]);
    let usage_chunk = chunks.last().unwrap();
    assert_eq!(usage_chunk["choices"], json!([]));
    assert_eq!(usage_chunk["usage"]["completion_tokens"], 12);

    let events_of_call = stream(request).await;
    let chunks: Vec<Value> = events_of_call[..events_of_call.len() - 1]
        .iter()
        .map(|event| serde_json::from_str(event).unwrap())
        .collect();
    let calls: Vec<&Value> = chunks
        .iter()
        .filter_map(|chunk| chunk["choices"][0]["delta"]["tool_calls"].as_array())
        .flatten()
        .collect();
    assert!(calls.iter().all(|call| call["index"] == 0));
    assert_eq!(calls[0]["id"], "call_1");
    assert_eq!(calls[0]["function"]["name"], "prometheus");
    let streamed_arguments: String = calls
        .iter()
        .filter_map(|call| call["function"]["arguments"].as_str())
        .collect();
    assert_eq!(streamed_arguments, arguments);
    assert!(
        chunks
            .iter()
            .any(|chunk| chunk["choices"][0]["finish_reason"] == "tool_calls")
    );
    shutdown.cancel();
}

#[tokio::test]
async fn unknown_urls_get_404_and_oversized_bodies_413() {
    let (fake, shutdown) = start(Script::always(Reply::content("ok"))).await;
    let client = client();
    let response = client
        .post(format!("{}/completions", fake.base_url()))
        .json(&ask("hi"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 404);
    let body: Value = response.json().await.unwrap();
    assert_eq!(
        body["error"]["message"],
        "Invalid URL (POST /v1/completions)"
    );

    let huge = ask(&"x".repeat(OpenAiFake::MAX_BODY_BYTES));
    let (status, body) = post(&client, &fake, &huge).await;
    assert_eq!(status, 413, "{body}");
    assert_eq!(body["error"]["type"], "invalid_request_error");
    assert!(fake.requests().is_empty(), "an oversized body is not kept");
    shutdown.cancel();
}
