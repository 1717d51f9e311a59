//! The OpenAPI 3.1 description of the routes a daemon serves, at `GET /v1/openapi.json`.
//!
//! [`document`] describes exactly the routes it is given: `router` passes the ones it routes
//! (health and metrics and this one always, the intake and the admin API when they are on),
//! so the description a client reads is the API it can call. Every operation is written
//! here by hand, beside the schemas of its bodies; the tests hold the description to the
//! router both ways: every listed route is described and routed, and every `.route(...)`
//! in `daemon/` is listed.

use serde_json::{Value, json};

/// Where the description is served.
pub(crate) const PATH: &str = "/v1/openapi.json";

/// The OpenAPI document for `routes` (`(METHOD, path)`), in the order given. A route with no
/// description here is listed with a summary that says so (the tests forbid it).
pub(crate) fn document(routes: &[(&str, &str)]) -> Value {
    let mut paths = serde_json::Map::new();
    for &(method, path) in routes {
        let operation = operation(method, path).unwrap_or_else(|| {
            json!({"summary": "(not described)", "responses": {"default": {"description": "-"}}})
        });
        let entry = paths
            .entry(path.to_owned())
            .or_insert_with(|| Value::Object(serde_json::Map::new()));
        if let Value::Object(methods) = entry {
            methods.insert(method.to_ascii_lowercase(), operation);
        }
    }
    json!({
        "openapi": "3.1.0",
        "info": {
            "title": "vigil",
            "version": env!("CARGO_PKG_VERSION"),
            "summary": "The agentic SRE daemon for AI systems: health, metrics, pushed events and the admin API.",
            "license": {"name": "Apache-2.0", "identifier": "Apache-2.0"}
        },
        "jsonSchemaDialect": "https://json-schema.org/draft/2020-12/schema",
        "paths": paths,
        "components": components(),
    })
}

fn text(description: &str) -> Value {
    json!({"description": description, "content": {"text/plain": {"schema": {"type": "string"}}}})
}

fn json_body(description: &str, schema: &str) -> Value {
    json!({
        "description": description,
        "content": {"application/json": {"schema": {"$ref": format!("#/components/schemas/{schema}")}}}
    })
}

fn admin_error(description: &str) -> Value {
    json_body(description, "Error")
}

fn push_error(description: &str) -> Value {
    json_body(description, "PushError")
}

/// The responses every admin route shares.
fn admin_responses(mut ok: serde_json::Map<String, Value>) -> Value {
    ok.insert(
        "401".to_owned(),
        admin_error("No credential, or one that does not authenticate."),
    );
    ok.insert(
        "403".to_owned(),
        admin_error("Authenticated, but without the role this route needs."),
    );
    ok.insert(
        "503".to_owned(),
        admin_error("vigil is stopping, or the engine did not answer in time."),
    );
    Value::Object(ok)
}

fn push(summary: &str, description: &str, body_schema: &str) -> Value {
    json!({
        "tags": ["intake"],
        "summary": summary,
        "description": description,
        "security": [{}, {"intakeToken": []}],
        "requestBody": {"required": true, "content": {"application/json": {
            "schema": {"$ref": format!("#/components/schemas/{body_schema}")}
        }}},
        "responses": {
            "202": json_body("Recorded durably in the ledger; what the engine made of it.", "PushAccount"),
            "400": push_error("The body does not parse or validate; every problem is listed with its path."),
            "401": push_error("The intake's bearer token is missing or wrong."),
            "413": push_error("The body is larger than `intake.max_body_bytes`."),
            "415": push_error("Not `application/json`, or compressed."),
            "503": push_error("The engine's queue is full, `intake.max_concurrent_pushes` are in flight, or the append was not confirmed; retry after `Retry-After`.")
        }
    })
}

fn operation(method: &str, path: &str) -> Option<Value> {
    let described = match (method, path) {
        ("GET", "/healthz") => json!({
            "tags": ["health"],
            "summary": "Liveness: the process answers.",
            "responses": {"200": text("`ok`")}
        }),
        ("GET", "/readyz") => json!({
            "tags": ["health"],
            "summary": "Readiness: the ledger is writable and the sources are scraped (a replica: who leads).",
            "responses": {
                "200": {"description": "Ready.", "content": {
                    "text/plain": {"schema": {"type": "string"}},
                    "application/json": {"schema": {"type": "object"}}
                }},
                "503": {"description": "Not ready, with the reasons.", "content": {
                    "text/plain": {"schema": {"type": "string"}},
                    "application/json": {"schema": {"type": "object"}}
                }}
            }
        }),
        ("GET", "/metrics") => json!({
            "tags": ["health"],
            "summary": "vigil's own metrics in the Prometheus text format 0.0.4.",
            "responses": {"200": {"description": "The exposition.", "content": {
                "text/plain; version=0.0.4": {"schema": {"type": "string"}}
            }}}
        }),
        ("GET", PATH) => json!({
            "tags": ["health"],
            "summary": "This description of the routes this daemon serves.",
            "responses": {"200": {"description": "OpenAPI 3.1.", "content": {
                "application/json": {"schema": {"type": "object"}}
            }}}
        }),
        ("POST", "/v1/push/evals") => push(
            "Push eval results (pass or fail per case, by suite, model and prompt version).",
            "Each result becomes bounded-cardinality series of `push:evals` (the fields: `vigil_core::intake::evals`).",
            "Evals",
        ),
        ("POST", "/v1/push/agent-runs") => push(
            "Push finished agent runs (iterations, tool calls, tokens, outcome).",
            "Each run becomes series of `push:agent_runs` (the fields: `vigil_core::intake::agent_runs`).",
            "AgentRuns",
        ),
        ("POST", "/v1/push/alertmanager") => push(
            "Receive an Alertmanager webhook (version 4).",
            "Firing and resolved alerts become series of `push:alerts`.",
            "AlertmanagerWebhook",
        ),
        ("POST", "/v1/traces") => json!({
            "tags": ["intake"],
            "summary": "OTLP/HTTP traces export; the spans with OpenTelemetry GenAI attributes feed series.",
            "security": [{}, {"intakeToken": []}],
            "requestBody": {"required": true, "content": {
                "application/x-protobuf": {"schema": {"type": "string", "contentMediaType": "application/x-protobuf",
                    "description": "An opentelemetry.proto.collector.trace.v1.ExportTraceServiceRequest."}},
                "application/json": {"schema": {"type": "object",
                    "description": "The same request in OTLP/JSON (`resourceSpans`)."}}
            }},
            "responses": {
                "200": {"description": "An ExportTraceServiceResponse in the request's encoding: empty, or with `partialSuccess` when series were refused.",
                    "content": {"application/x-protobuf": {"schema": {"type": "string"}}, "application/json": {"schema": {"type": "object"}}}},
                "400": {"description": "A google.rpc.Status naming the problems."},
                "401": {"description": "A google.rpc.Status: the bearer token is missing or wrong."},
                "413": {"description": "A google.rpc.Status: the body is too large."},
                "415": {"description": "Neither protobuf nor JSON, or compressed."},
                "503": {"description": "A google.rpc.Status: retry after `Retry-After`."}
            }
        }),
        ("GET", "/v1/admin/whoami") => json!({
            "tags": ["admin"],
            "summary": "Who the credential authenticates as: the name the ledger records, groups and roles.",
            "security": admin_security(),
            "responses": admin_responses(responses([("200", json_body("The principal.", "WhoAmI"))]))
        }),
        ("GET", "/v1/admin/proposals") => json!({
            "tags": ["admin"],
            "summary": "The proposals waiting for a person, each with the hash an approval must carry (viewers).",
            "security": admin_security(),
            "responses": admin_responses(responses([("200", json!({
                "description": "Pending proposals, oldest first.",
                "content": {"application/json": {"schema": {
                    "type": "array", "items": {"$ref": "#/components/schemas/ProposalView"}
                }}}
            }))]))
        }),
        ("POST", "/v1/admin/human") => json!({
            "tags": ["admin"],
            "summary": "A person's instruction (approve, reject, kill, unkill, silence, unsilence); Cedar decides.",
            "description": "Recorded in the ledger with the authenticated principal before anything acts. The requester of a proposal may not approve it.",
            "security": admin_security(),
            "requestBody": {"required": true, "content": {"application/json": {"schema": {"$ref": "#/components/schemas/HumanRequest"}}}},
            "responses": admin_responses(responses([
                ("200", json_body("Carried out.", "HumanAnswer")),
                ("202", json_body("Recorded; the engine did not answer within the wait.", "HumanAnswer")),
                ("400", admin_error("The body does not parse or validate; the problems are listed.")),
                ("409", json_body("Refused by vigil or Cedar; the outcome says why.", "HumanAnswer")),
                ("413", admin_error("The body is larger than 64 KiB."))
            ]))
        }),
        ("POST", "/v1/admin/checkpoint") => json!({
            "tags": ["admin"],
            "summary": "Sign a checkpoint of the ledger's tree head now (operators).",
            "security": admin_security(),
            "responses": admin_responses(responses([("200", json_body("The signed checkpoint.", "Checkpoint"))]))
        }),
        ("POST", "/v1/admin/ask") => json!({
            "tags": ["admin"],
            "summary": "Ask the assistant a question about the current state; its answer is checked against the evidence its tools returned.",
            "security": admin_security(),
            "requestBody": {"required": true, "content": {"application/json": {"schema": {
                "type": "object", "required": ["question"], "additionalProperties": false,
                "properties": {"question": {"type": "string", "minLength": 1, "maxLength": 2000}}
            }}}},
            "responses": admin_responses(responses([
                ("200", json_body("The checked answer.", "AskAnswer")),
                ("400", admin_error("Not `{\"question\": ...}`, or an empty or too long question.")),
                ("404", admin_error("The assistant is off (`diagnosis.assistant.enabled`)."))
            ]))
        }),
        (method, path) => return console_operation(method, path),
    };
    Some(described)
}

/// A console route: an HTML page (or its asset, its live stream, a proof to download),
/// signed in by the session cookie; its forms carry the session's CSRF token.
fn console_operation(method: &str, path: &str) -> Option<Value> {
    let (_, _, summary) = super::console::ROUTES
        .iter()
        .find(|(m, p, _)| *m == method && *p == path)?;
    let open = matches!(path, "/console/login" | "/") || path.starts_with("/console/assets/");
    let (media, body) = match path {
        "/console/events" => ("text/event-stream", "Server-sent events (`event: entry`)."),
        "/console/ledger/proof" => ("application/json", "The inclusion proof."),
        "/console/ledger/export" => (
            "application/jsonl",
            "The export, one JSON line per entry, then the tree head.",
        ),
        "/console/assets/console.css" => ("text/css", "The stylesheet."),
        "/console/assets/console.js" => ("text/javascript", "The script."),
        _ => ("text/html", "The page."),
    };
    let mut responses = serde_json::Map::new();
    responses.insert(
        "200".to_owned(),
        json!({"description": body, "content": {media: {"schema": {"type": "string"}}}}),
    );
    responses.insert(
        "303".to_owned(),
        json!({"description": "To the sign-in page without a session; after signing in or out, to the next page."}),
    );
    let mut operation = serde_json::Map::new();
    operation.insert("tags".to_owned(), json!(["console"]));
    operation.insert("summary".to_owned(), json!(summary));
    if method == "POST" {
        operation.insert(
            "requestBody".to_owned(),
            json!({"content": {"application/x-www-form-urlencoded": {
                "schema": {"type": "object", "properties": {"csrf": {"type": "string",
                    "description": "The session's CSRF token (not needed to sign in)."}}}}}}),
        );
        responses.insert(
            "403".to_owned(),
            json!({"description": "Without this session's CSRF token, or from another origin.",
                "content": {"text/html": {"schema": {"type": "string"}}}}),
        );
    }
    operation.insert("responses".to_owned(), Value::Object(responses));
    if !open {
        operation.insert("security".to_owned(), json!([{"consoleSession": []}]));
    }
    let operation = Value::Object(operation);
    Some(operation)
}

fn responses<const N: usize>(list: [(&str, Value); N]) -> serde_json::Map<String, Value> {
    list.into_iter()
        .map(|(code, response)| (code.to_owned(), response))
        .collect()
}

fn admin_security() -> Value {
    json!([{"adminToken": []}, {"oidc": []}, {"clientCertificate": []}])
}

fn components() -> Value {
    let id = json!({"type": "string", "minLength": 1, "maxLength": 200});
    json!({
        "securitySchemes": {
            "intakeToken": {"type": "http", "scheme": "bearer",
                "description": "The intake's token (`intake.bearer_token`), when one is configured."},
            "adminToken": {"type": "http", "scheme": "bearer",
                "description": "A personal token from the admin token file (`vigil admin-token add`)."},
            "oidc": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT",
                "description": "An OIDC ID token from the configured issuer, checked against its JWKS."},
            "clientCertificate": {"type": "mutualTLS",
                "description": "A client certificate signed by the configured CA (TLS on)."},
            "consoleSession": {"type": "apiKey", "in": "cookie", "name": "vigil_session",
                "description": "The console's session cookie (`__Host-vigil_session` under TLS), set by `POST /console/login`."}
        },
        "schemas": {
            "Error": {"type": "object", "required": ["error"],
                "properties": {"error": {"type": "string"}}},
            "PushError": {"type": "object", "required": ["error"], "properties": {
                "error": {"type": "string"},
                "problems": {"type": "array", "items": {"type": "object", "required": ["path", "message"],
                    "properties": {"path": {"type": "string"}, "message": {"type": "string"}}}}
            }},
            "PushAccount": {"type": "object", "required": ["accepted"], "properties": {
                "accepted": {"type": "integer", "minimum": 0, "description": "Items recorded."},
                "series": {"type": "object", "properties": {
                    "accepted": {"type": "integer", "minimum": 0}, "refused": {"type": "integer", "minimum": 0}}},
                "refused": {"type": "array", "items": {"type": "object",
                    "properties": {"series": {"type": "string"}, "reason": {"type": "string"}}}},
                "refused_not_listed": {"type": "integer", "minimum": 0}
            }},
            "Evals": {"type": "object", "description": "Eval results: the fields and limits of `vigil_core::intake::evals`."},
            "AgentRuns": {"type": "object", "description": "Agent runs: the fields and limits of `vigil_core::intake::agent_runs`."},
            "AlertmanagerWebhook": {"type": "object", "required": ["version", "alerts"],
                "description": "Alertmanager's webhook body, version 4.",
                "properties": {"version": {"const": "4"}, "alerts": {"type": "array", "items": {"type": "object"}}}},
            "WhoAmI": {"type": "object", "required": ["name", "credential_id", "via", "groups", "roles"], "properties": {
                "name": {"type": "string"}, "credential_id": {"type": "string"}, "via": {"type": "string"},
                "groups": {"type": "array", "items": {"type": "string"}},
                "roles": {"type": "array", "items": {"enum": ["viewer", "approver", "operator", "admin"]}}
            }},
            "ProposalView": {"type": "object",
                "required": ["proposal_id", "incident_id", "step_id", "describe", "action", "action_hash", "requested_by", "why"],
                "properties": {
                    "proposal_id": {"type": "string"}, "incident_id": {"type": "string"},
                    "step_id": {"type": "string"}, "describe": {"type": "string"},
                    "action": {"type": "object", "required": ["kind"],
                        "description": "The action, tagged by `kind`, exactly as it will run (docs/autonomy.md lists the kinds).",
                        "properties": {"kind": {"type": "string"}}},
                    "action_hash": {"type": "string", "description": "What an approval must carry: the hash of the incident, the step and the action."},
                    "requested_by": {"type": "string", "description": "The runbook's owner, who may not approve it."},
                    "why": {"type": "string"}
                }},
            "HumanRequest": {"type": "object", "required": ["command"], "additionalProperties": false, "properties": {
                "by": {"type": "string", "description": "If given, must be the authenticated name."},
                "reason": {"type": "string", "description": "Why, in the person's words (`admin.max_reason_chars`)."},
                "command": {"oneOf": [
                    {"type": "object", "required": ["command", "proposal_id", "action_hash"],
                        "properties": {"command": {"const": "approve"}, "proposal_id": id, "action_hash": {"type": "string"}}},
                    {"type": "object", "required": ["command", "proposal_id"],
                        "properties": {"command": {"const": "reject"}, "proposal_id": id}},
                    {"type": "object", "required": ["command", "scope"],
                        "properties": {"command": {"enum": ["kill", "unkill"]}, "scope": {"$ref": "#/components/schemas/KillScope"}}},
                    {"type": "object", "required": ["command", "silence_id", "expires_at"],
                        "properties": {"command": {"const": "silence"}, "silence_id": id,
                            "detector": {"type": ["string", "null"]}, "subject": {"type": ["string", "null"]},
                            "expires_at": {"type": "integer", "description": "Milliseconds since the Unix epoch."}}},
                    {"type": "object", "required": ["command", "silence_id"],
                        "properties": {"command": {"const": "unsilence"}, "silence_id": id}}
                ]}
            }},
            "KillScope": {"oneOf": [
                {"type": "object", "required": ["scope"], "properties": {"scope": {"const": "global"}}},
                {"type": "object", "required": ["scope", "id"], "properties": {"scope": {"const": "runbook"}, "id": id}},
                {"type": "object", "required": ["scope", "entity_type", "id"], "properties": {
                    "scope": {"const": "target"}, "entity_type": {"type": "string"}, "id": id}}
            ]},
            "HumanAnswer": {"type": "object", "required": ["accepted", "outcome"], "properties": {
                "accepted": {"type": ["boolean", "null"], "description": "null: no answer within the wait."},
                "outcome": {"type": "string"}, "by": {"type": "string"}
            }},
            "Checkpoint": {"type": "object", "required": ["tree_size", "tree_head", "at_ms", "public_key", "signature"], "properties": {
                "tree_size": {"type": "integer", "minimum": 0}, "tree_head": {"type": "string"},
                "at_ms": {"type": "integer"}, "public_key": {"type": "string"}, "signature": {"type": "string"}
            }},
            "AskAnswer": {"type": "object", "required": ["answered"], "properties": {
                "answered": {"type": "boolean"},
                "hypotheses": {"type": "array", "items": {"type": "string"}},
                "narrative": {"type": ["string", "null"]}, "next_check": {"type": ["string", "null"]},
                "checked": {"type": "string"}, "dropped": {"type": "array", "items": {"type": "string"}},
                "failure": {"type": ["string", "null"]}
            }}
        }
    })
}

#[cfg(test)]
mod tests;
