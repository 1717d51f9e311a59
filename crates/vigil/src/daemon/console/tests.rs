//! The console over real HTTP on loopback, with a stand-in for the engine loop (it answers
//! views from a real SQLite ledger and lists, and records instructions): signing in and the
//! cookie, the headers of every page, that every field a person or a source wrote is shown
//! escaped on every page (never as markup), that a form without the session's CSRF token or
//! from another origin changes nothing, who sees which button, and the live stream's bound.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use serde_json::json;
use tokio::net::TcpListener;
use tokio::sync::{broadcast, mpsc};
use vigil_core::engine::{
    Action, Command, Controls, Event, KillScope, KillSwitchView, SilenceView,
};
use vigil_core::people::{InstructionLimits, Role};

use super::*;
use crate::config::console::ConsoleConfig;
use crate::identity::tokens::{TokenDirectory, entry_yaml, new_token};
use crate::identity::{Authenticator, RoleMapping};

/// What every user-supplied field is set to: markup that would run if it were not escaped.
const XSS: &str = "<script>alert(1)</script><img src=x onerror=alert(2)>";
/// A proposal's binding hash.
const HASH: &str = "5f1c0d3a9e7b2c4d6f8a0b1c2d3e4f5a6b7c8d9e0f1a2b3c4d5e6f7a8b9c0d1e";
/// The same, escaped as the pages must show it.
const XSS_SHOWN: &str = "&lt;script&gt;alert(1)&lt;/script&gt;&lt;img src=x onerror=alert(2)&gt;";

struct Console {
    url: String,
    client: reqwest::Client,
    tokens: BTreeMap<&'static str, String>,
    /// Every instruction the console handed to the engine.
    events: Arc<Mutex<Vec<Event>>>,
    notes: broadcast::Sender<Note>,
    _ledger_path: std::path::PathBuf,
}

fn command(value: serde_json::Value) -> Command {
    serde_json::from_value(value.clone()).unwrap_or_else(|error| panic!("{error}: {value:#}"))
}

fn record(mut value: serde_json::Value) -> Command {
    value["type"] = json!("record");
    command(value)
}

/// A ledger with one incident whose every person- or source-written field is [`XSS`].
async fn ledger(name: &str) -> (std::path::PathBuf, Ledger) {
    let (path, mut ledger, started) = crate::journal::test_ledger(name).await;
    // Recorded a minute ago, so that the list's default period holds it.
    let at = crate::clock::wall_now_ms() - 60_000;
    ledger
        .append(&[journal::session_entry(&started, at).unwrap()])
        .await
        .unwrap();
    let human = Event::Human {
        by: XSS.to_owned(),
        reason: XSS.to_owned(),
        command: HumanCommand::Reject {
            proposal_id: "inc-1/proposal-1".to_owned(),
        },
        principal: None,
    };
    let subject = json!({"label": "hashed_api_key", "value": XSS, "alias": XSS, "team": XSS});
    let commands = vec![
        record(json!({"record": "finding_raised", "finding": {
            "fingerprint": "fp-1", "detector": XSS, "source": "gw", "subject": subject,
            "severity": "page", "raised_at": 2_000,
            "evidence": {"kind": "threshold", "describe": XSS,
                "reading": {"kind": "value", "selector": "latency_seconds"}, "value": 3.0,
                "bound": "above", "fire": 2.0, "clear": 1.5, "n_observations": 2,
                "recent": [{"at": 1_000, "value": 1.0}, {"at": 2_000, "value": 3.0}]}}})),
        record(json!({"record": "incident_opened", "incident_id": "inc-1",
            "fingerprint": "fp-1", "subject": subject, "severity": "page"})),
        record(json!({"record": "finding_joined", "incident_id": "inc-1",
            "fingerprint": "fp-2", "subject": subject, "via": XSS})),
        record(
            json!({"record": "diagnosed", "incident_id": "inc-1", "diagnosis": {
            "hypotheses": [{"kind": "runaway_key", "subject": null, "confidence": 0.9,
                "evidence": [XSS]}], "why": XSS}}),
        ),
        record(
            json!({"record": "step_proposed", "incident_id": "inc-1", "step_id": XSS,
            "action": {"kind": "litellm_block_key", "source": "gw", "key": XSS},
            "proposal_id": "inc-1/proposal-1", "action_hash": "h", "requested_by": XSS, "why": XSS}),
        ),
        command(
            json!({"type": "page", "page_id": "inc-1/page-1", "incident_id": "inc-1",
            "page": {"severity": "page", "title": XSS, "why": {"incident_id": "inc-1",
                "summary": XSS, "evidence": [XSS], "actions": [XSS], "reason": XSS, "ask": XSS,
                "cause": XSS, "chain": [XSS]}}}),
        ),
        record(json!({"record": "human_action", "by": XSS, "reason": XSS,
            "command": {"command": "reject", "proposal_id": "inc-1/proposal-1"},
            "accepted": false, "outcome": XSS})),
    ];
    let human_seq = ledger.len();
    let mut entries = vec![journal::event_entry(&human, at, None).unwrap()];
    entries.extend(journal::command_entries(&commands, human_seq, at).unwrap());
    ledger.append(&entries).await.unwrap();
    (path, ledger)
}

fn people() -> (BTreeMap<&'static str, String>, TokenDirectory) {
    let mut tokens = BTreeMap::new();
    let mut text = String::new();
    for (name, roles) in [
        ("olga", vec![Role::Operator]),
        ("bob", vec![Role::Approver]),
        ("vic", vec![Role::Viewer]),
        ("nobody", vec![]),
    ] {
        let token = new_token().unwrap();
        text.push_str(&entry_yaml(name, name, &token, &[], &roles, None));
        tokens.insert(name, token);
    }
    (tokens, TokenDirectory::parse(&text, "tokens.yaml").unwrap())
}

async fn start(name: &str, max_live_clients: usize) -> Console {
    start_with(name, max_live_clients, false).await
}

/// `tls`: whether the console believes its listener terminates TLS (the cookie's attributes).
async fn start_with(name: &str, max_live_clients: usize, tls: bool) -> Console {
    vigil_connectors::install_crypto_provider();
    let (path, ledger) = ledger(name).await;
    let (tokens, directory) = people();
    let (views, mut views_rx) = mpsc::channel::<ViewRequest>(16);
    let (instructions, mut instructions_rx) = mpsc::channel::<Instruction>(16);
    let (notes, _) = broadcast::channel(16);
    let events = Arc::new(Mutex::new(Vec::new()));
    tokio::spawn(async move {
        while let Some(reply) = views_rx.recv().await {
            let _ = reply.send(EngineView {
                proposals: vec![PendingProposal {
                    proposal_id: "inc-1/proposal-1".to_owned(),
                    incident_id: "inc-1".to_owned(),
                    step_id: XSS.to_owned(),
                    action: serde_json::from_value::<Action>(
                        json!({"kind": "litellm_block_key", "source": "gw", "key": XSS}),
                    )
                    .unwrap(),
                    action_hash: HASH.to_owned(),
                    requested_by: XSS.to_owned(),
                    why: XSS.to_owned(),
                }],
                controls: Controls {
                    kill_switches: vec![KillSwitchView {
                        scope: KillScope::Runbook { id: XSS.to_owned() },
                        by: XSS.to_owned(),
                        reason: XSS.to_owned(),
                        since: Timestamp(1_000),
                    }],
                    silences: vec![SilenceView {
                        silence_id: XSS.to_owned(),
                        by: XSS.to_owned(),
                        reason: XSS.to_owned(),
                        detector: Some(XSS.to_owned()),
                        subject: Some(XSS.to_owned()),
                        expires_at: Timestamp(i64::MAX / 2),
                    }],
                },
                ledger: ledger.reader(),
                policy_set_hash: "abc".to_owned(),
                runbooks: vec![XSS.to_owned()],
                detectors: vec![XSS.to_owned()],
            });
        }
    });
    let recorded = Arc::clone(&events);
    tokio::spawn(async move {
        while let Some(Instruction { event, reply }) = instructions_rx.recv().await {
            let _ = reply.send(InstructionAnswer {
                accepted: true,
                outcome: XSS.to_owned(),
            });
            recorded.lock().unwrap().push(event);
        }
    });
    let router = router(ConsoleState::new(
        ConsoleConfig {
            max_live_clients,
            ..ConsoleConfig::default()
        },
        Arc::new(Authenticator::with_tokens(
            directory,
            RoleMapping::default(),
        )),
        InstructionLimits {
            max_reason_chars: 1000,
        },
        views,
        instructions,
        notes.clone(),
        Arc::new(Telemetry::default()),
        Arc::new(FailureLog::default()),
        Clock::system(),
        tls,
        CancellationToken::new(),
    ));
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, router).await });
    Console {
        url,
        client: reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap(),
        tokens,
        events,
        notes,
        _ledger_path: path,
    }
}

impl Console {
    /// Signs `who` in; the session cookie.
    /// `POST /console/login` with `token`.
    async fn login(&self, token: &str) -> reqwest::Response {
        self.client
            .post(format!("{}/console/login", self.url))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(form_body(&[("token", token)]))
            .send()
            .await
            .unwrap()
    }

    async fn sign_in(&self, who: &str) -> String {
        let response = self.login(&self.tokens[who]).await;
        assert_eq!(response.status(), 303, "{who} signs in");
        let cookie = response
            .headers()
            .get("set-cookie")
            .unwrap()
            .to_str()
            .unwrap()
            .to_owned();
        cookie.split(';').next().unwrap().to_owned()
    }

    async fn get(&self, path: &str, cookie: &str) -> (u16, reqwest::header::HeaderMap, String) {
        let response = self
            .client
            .get(format!("{}{path}", self.url))
            .header("cookie", cookie)
            .send()
            .await
            .unwrap();
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        (status, headers, response.text().await.unwrap())
    }

    async fn post(
        &self,
        path: &str,
        cookie: &str,
        origin: Option<&str>,
        form: &[(&str, &str)],
    ) -> (u16, String) {
        let mut request = self
            .client
            .post(format!("{}{path}", self.url))
            .header("cookie", cookie)
            .header("content-type", "application/x-www-form-urlencoded")
            .body(form_body(form));
        if let Some(origin) = origin {
            request = request.header("origin", origin);
        }
        let response = request.send().await.unwrap();
        (response.status().as_u16(), response.text().await.unwrap())
    }

    /// The CSRF token in a page's forms.
    async fn csrf(&self, cookie: &str) -> String {
        let (_, _, page) = self.get("/console/proposals", cookie).await;
        let marker = "name=\"csrf\" value=\"";
        let start = page.find(marker).expect("a CSRF field") + marker.len();
        page[start..start + 64].to_owned()
    }
}

fn form_body(pairs: &[(&str, &str)]) -> String {
    serde_urlencoded::to_string(pairs).unwrap()
}

const PAGES: &[&str] = &[
    "/console/incidents",
    "/console/incident?id=inc-1",
    "/console/proposals",
    "/console/controls",
    "/console/policies",
    "/console/ledger",
    "/console/ledger/entry?seq=3",
    "/console/trust",
    "/console/report",
];

#[tokio::test]
async fn signing_in_sets_a_strict_http_only_cookie_and_every_page_carries_the_policy() {
    let console = start("console-cookie", 4).await;
    // A wrong token: 401, the sign-in page again, no cookie.
    let refused = console.login("vigil_adm_guessed").await;
    assert_eq!(refused.status(), 401);
    assert!(refused.headers().get("set-cookie").is_none());
    // The right one: a session cookie only scripts cannot read and other sites never send.
    let response = console.login(&console.tokens["vic"]).await;
    assert_eq!(response.status(), 303);
    let set_cookie = response.headers()["set-cookie"]
        .to_str()
        .unwrap()
        .to_owned();
    for attribute in [
        "vigil_session=",
        "HttpOnly",
        "SameSite=Strict",
        "Path=/",
        "Max-Age=28800",
    ] {
        assert!(set_cookie.contains(attribute), "{set_cookie}");
    }
    assert!(!set_cookie.contains("Secure"), "no TLS here: {set_cookie}");
    let cookie = set_cookie.split(';').next().unwrap().to_owned();
    for page in PAGES {
        let (status, headers, body) = console.get(page, &cookie).await;
        assert_eq!(status, 200, "{page}: {body}");
        assert_eq!(headers["content-security-policy"], CSP, "{page}");
        assert_eq!(headers["x-content-type-options"], "nosniff");
        assert_eq!(headers["x-frame-options"], "DENY");
        assert_eq!(headers["cache-control"], "no-store");
        // The one script is the console's own file; no inline script, no inline style.
        assert_eq!(body.matches("<script").count(), 1, "{page}");
        assert!(body.contains("<script src=\"/console/assets/console.js\" defer></script>"));
        assert!(
            !body.contains("<style") && !body.contains(" style="),
            "{page}"
        );
        assert!(
            body.contains("Signed in as <strong id=\"who\">vic</strong>"),
            "{page}"
        );
    }
    // The proof downloads as JSON.
    let (status, headers, body) = console.get("/console/ledger/proof?seq=3", &cookie).await;
    assert_eq!(status, 200, "{body}");
    assert!(
        headers["content-disposition"]
            .to_str()
            .unwrap()
            .contains("attachment")
    );
    let proof: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(proof["seq"], 3);
    // The file `vigil ledger verify --proof` reads: it proves entry 3 in the tree it names.
    let bytes = |value: &serde_json::Value| -> [u8; 32] {
        hex::decode(value.as_str().unwrap())
            .unwrap()
            .try_into()
            .unwrap()
    };
    let components: Vec<[u8; 32]> = proof["proof"]
        .as_array()
        .unwrap()
        .iter()
        .map(bytes)
        .collect();
    let components: Vec<&[u8]> = components.iter().map(<[u8; 32]>::as_slice).collect();
    vigil_ledger::merkle::verify_inclusion(
        3,
        proof["tree_size"].as_u64().unwrap(),
        &bytes(&proof["leaf_hash"]),
        &components,
        &bytes(&proof["tree_head"]),
    )
    .unwrap();
    // Without a session, or with one that is not, every page sends people to sign in.
    for cookie in ["", "vigil_session=forged"] {
        let (status, headers, _) = console.get("/console/incidents", cookie).await;
        assert_eq!(status, 303);
        assert_eq!(headers["location"], "/console/login");
    }
    // Someone with no role signs in but sees nothing.
    let nobody = console.sign_in("nobody").await;
    let (status, _, _) = console.get("/console/incidents", &nobody).await;
    assert_eq!(status, 403);
}

#[tokio::test]
async fn every_user_supplied_field_is_shown_escaped_never_as_markup() {
    let console = start("console-xss", 4).await;
    let cookie = console.sign_in("olga").await;
    for page in PAGES {
        let (status, _, body) = console.get(page, &cookie).await;
        assert_eq!(status, 200, "{page}: {body}");
        assert!(
            !body.contains("<script>alert"),
            "{page} runs the payload:\n{body}"
        );
        assert!(
            !body.contains("<img src=x"),
            "{page} runs the payload:\n{body}"
        );
        if !matches!(
            *page,
            "/console/policies" | "/console/trust" | "/console/report" | "/console/ledger"
        ) {
            assert!(
                body.contains(XSS_SHOWN),
                "{page} does not show the text:\n{body}"
            );
        }
    }
    // Every field of the incident page, one by one: the names, reasons, labels and texts.
    let (_, _, incident) = console.get("/console/incident?id=inc-1", &cookie).await;
    let shown = incident.matches(XSS_SHOWN).count();
    assert!(shown >= 15, "only {shown} fields shown:\n{incident}");
    // The finding that joined through the topology, with the dependency that connects it.
    assert!(incident.contains(&format!("<h2>Connected through the topology</h2><ul id=\"joined\"><li>{XSS_SHOWN} — via {XSS_SHOWN}</li>")), "{incident}");
    // What the engine answers is a text too.
    let csrf = console.csrf(&cookie).await;
    let (_, answer) = console
        .post(
            "/console/controls",
            &cookie,
            None,
            &[
                ("csrf", &csrf),
                ("op", "kill"),
                ("runbook", XSS),
                ("reason", XSS),
            ],
        )
        .await;
    assert!(
        answer.contains(XSS_SHOWN) && !answer.contains("<script>alert"),
        "{answer}"
    );
}

#[tokio::test]
async fn a_form_without_the_sessions_csrf_token_or_from_another_site_changes_nothing() {
    let console = start("console-csrf", 4).await;
    let cookie = console.sign_in("bob").await;
    let csrf = console.csrf(&cookie).await;
    let approve = |token: &'static str| {
        vec![
            ("proposal_id", "inc-1/proposal-1"),
            ("action_hash", HASH),
            ("reason", "looks right"),
            ("decision", "approve"),
            ("csrf", token),
        ]
    };
    let other = console.csrf(&console.sign_in("olga").await).await;
    for (form, origin) in [
        (approve(""), None),
        (
            approve("0000000000000000000000000000000000000000000000000000000000000000"),
            None,
        ),
        // Another session's token is not this session's.
        (approve(Box::leak(other.clone().into_boxed_str())), None),
        // The right token, from another site.
        (
            approve(Box::leak(csrf.clone().into_boxed_str())),
            Some("http://evil.example"),
        ),
    ] {
        let (status, body) = console
            .post("/console/proposals/decide", &cookie, origin, &form)
            .await;
        assert_eq!(status, 403, "{body}");
        assert!(body.contains("CSRF"), "{body}");
    }
    let (status, _) = console.post("/console/logout", &cookie, None, &[]).await;
    assert_eq!(status, 403, "signing out needs the token too");
    assert!(
        console.events.lock().unwrap().is_empty(),
        "nothing reached the engine"
    );
    // With it, from this site: the instruction reaches the engine as bob's, Cedar's to judge.
    let origin = console.url.clone();
    let (status, body) = console
        .post(
            "/console/proposals/decide",
            &cookie,
            Some(&origin),
            &approve(Box::leak(csrf.clone().into_boxed_str())),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let events = console.events.lock().unwrap().clone();
    assert_eq!(events.len(), 1);
    match &events[0] {
        Event::Human {
            by,
            reason,
            command:
                HumanCommand::Approve {
                    proposal_id,
                    action_hash,
                },
            principal: Some(principal),
        } => {
            assert_eq!((by.as_str(), reason.as_str()), ("bob", "looks right"));
            assert_eq!(
                (proposal_id.as_str(), action_hash.as_str()),
                ("inc-1/proposal-1", HASH)
            );
            assert_eq!(principal.name, "bob");
        }
        other => panic!("{other:?}"),
    }
    // Signing out with the token ends the session.
    let (status, _) = console
        .post("/console/logout", &cookie, None, &[("csrf", &csrf)])
        .await;
    assert_eq!(status, 303);
    let (status, _, _) = console.get("/console/incidents", &cookie).await;
    assert_eq!(status, 303);
}

#[tokio::test]
async fn only_approvers_get_the_approve_form_and_only_operators_the_kill_switch() {
    let console = start("console-roles", 4).await;
    for (who, approve, kill) in [
        ("vic", false, false),
        ("bob", true, false),
        ("olga", false, true),
    ] {
        let cookie = console.sign_in(who).await;
        let (_, _, proposals) = console.get("/console/proposals", &cookie).await;
        assert_eq!(proposals.contains("value=\"approve\""), approve, "{who}");
        let (_, _, controls) = console.get("/console/controls", &cookie).await;
        assert_eq!(controls.contains("Turn the kill switch on"), kill, "{who}");
        assert_eq!(controls.contains("Lift the kill switch"), kill, "{who}");
        assert_eq!(controls.contains("Set the silence"), kill, "{who}");
        assert_eq!(controls.contains(">End it</button>"), kill, "{who}");
        // Every control has a label.
        for page in [&proposals, &controls] {
            for (at, _) in page.match_indices("<input id=\"") {
                let id = &page[at + 11..];
                let id = &id[..id.find('"').unwrap()];
                assert!(
                    page.contains(&format!("<label for=\"{id}\"")),
                    "{who}: #{id} has no label"
                );
            }
        }
    }
}

#[tokio::test]
async fn the_live_stream_sends_what_the_daemon_records_and_is_bounded() {
    let console = start("console-live", 1).await;
    let cookie = console.sign_in("vic").await;
    let mut stream = console
        .client
        .get(format!("{}/console/events", console.url))
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(stream.status(), 200);
    assert_eq!(stream.headers()["content-type"], "text/event-stream");
    // A second stream is past the bound: refused, loudly, with when to retry.
    let (status, headers, _) = console.get("/console/events", &cookie).await;
    assert_eq!(status, 503);
    assert_eq!(headers["retry-after"], "30");
    let first = stream.chunk().await.unwrap().unwrap();
    assert!(first.starts_with(b"retry:"), "{first:?}");
    // A scrape is not news for any page; the command after it is.
    console
        .notes
        .send(Note {
            seq: 40,
            at: Timestamp(4_000),
            body: NoteBody::Event(Event::Tick),
        })
        .unwrap();
    console
        .notes
        .send(Note {
            seq: 41,
            at: Timestamp(5_000),
            body: NoteBody::Command(Box::new(record(json!({"record": "incident_resolved",
                "incident_id": "inc-1", "outcome": "verified", "duration_ms": 1})))),
        })
        .unwrap();
    let frame = stream.chunk().await.unwrap().unwrap();
    let frame = String::from_utf8(frame.to_vec()).unwrap();
    assert!(frame.starts_with("event: entry\ndata: "), "{frame}");
    assert!(
        frame.contains("\"seq\":41") && frame.contains("\"incident_id\":\"inc-1\""),
        "{frame}"
    );
    // Without a session there is no stream.
    let (status, _, _) = console.get("/console/events", "").await;
    assert_eq!(status, 303);
    // Signing out ends the open stream at its next frame.
    let csrf = console.csrf(&cookie).await;
    let (status, _) = console
        .post("/console/logout", &cookie, None, &[("csrf", &csrf)])
        .await;
    assert_eq!(status, 303);
    console
        .notes
        .send(Note {
            seq: 42,
            at: Timestamp(6_000),
            body: NoteBody::Command(Box::new(record(json!({"record": "incident_resolved",
                "incident_id": "inc-1", "outcome": "verified", "duration_ms": 1})))),
        })
        .unwrap();
    assert!(stream.chunk().await.unwrap().is_none(), "the stream ended");
}

#[tokio::test]
async fn behind_tls_the_cookie_is_secure_and_host_only() {
    let console = start_with("console-tls", 4, true).await;
    let response = console.login(&console.tokens["vic"]).await;
    assert_eq!(response.status(), 303);
    let set_cookie = response.headers()["set-cookie"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(
        set_cookie.starts_with("__Host-vigil_session="),
        "{set_cookie}"
    );
    for attribute in ["; Secure", "HttpOnly", "SameSite=Strict", "Path=/"] {
        assert!(set_cookie.contains(attribute), "{set_cookie}");
    }
    assert!(!set_cookie.contains("Domain"), "host-only: {set_cookie}");
    let value = set_cookie.split(';').next().unwrap();
    let (status, _, _) = console.get("/console/incidents", value).await;
    assert_eq!(status, 200);
    // The same value under the plain name is not this console's session.
    let plain = value.replace("__Host-", "");
    let (status, _, _) = console.get("/console/incidents", &plain).await;
    assert_eq!(status, 303);
}

#[tokio::test]
async fn an_operator_sets_a_silence_for_some_minutes_and_ends_one() {
    let console = start("console-silence", 4).await;
    let cookie = console.sign_in("olga").await;
    let csrf = console.csrf(&cookie).await;
    let before = crate::clock::wall_now_ms();
    let (status, body) = console
        .post(
            "/console/controls",
            &cookie,
            None,
            &[
                ("csrf", &csrf),
                ("op", "silence"),
                ("detector", "token-spike"),
                ("subject", ""),
                ("minutes", "90"),
                ("reason", "load test"),
            ],
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let (status, body) = console
        .post(
            "/console/controls",
            &cookie,
            None,
            &[
                ("csrf", &csrf),
                ("op", "silence"),
                ("minutes", "0"),
                ("reason", "x"),
            ],
        )
        .await;
    assert_eq!(status, 400, "no minutes, no silence: {body}");
    let (status, _) = console
        .post(
            "/console/controls",
            &cookie,
            None,
            &[
                ("csrf", &csrf),
                ("op", "unsilence"),
                ("silence_id", "console-1"),
                ("reason", "done"),
            ],
        )
        .await;
    assert_eq!(status, 200);
    let events = console.events.lock().unwrap().clone();
    assert_eq!(events.len(), 2, "{events:?}");
    match &events[0] {
        Event::Human {
            by,
            command:
                HumanCommand::Silence {
                    silence_id,
                    detector,
                    subject,
                    expires_at,
                },
            ..
        } => {
            assert_eq!(by, "olga");
            assert!(
                silence_id.starts_with("console-") && silence_id.len() == 20,
                "{silence_id}"
            );
            assert_eq!(detector.as_deref(), Some("token-spike"));
            assert_eq!(subject, &None);
            let minutes = (expires_at.0 - before) / 60_000;
            assert!((89..=90).contains(&minutes), "{minutes}");
        }
        other => panic!("{other:?}"),
    }
    assert!(matches!(
        &events[1],
        Event::Human { command: HumanCommand::Unsilence { silence_id }, .. } if silence_id == "console-1"
    ));
}

#[tokio::test]
async fn the_ledger_verifies_and_exports_from_the_console() {
    let console = start("console-verify", 4).await;
    let cookie = console.sign_in("vic").await;
    let csrf = console.csrf(&cookie).await;
    let (status, _) = console
        .post("/console/ledger/verify", &cookie, None, &[])
        .await;
    assert_eq!(
        status, 403,
        "verification is asked with the session's token"
    );
    let (status, page) = console
        .post("/console/ledger/verify", &cookie, None, &[("csrf", &csrf)])
        .await;
    assert_eq!(status, 200, "{page}");
    assert!(page.contains("Verified: all 9 entries intact"), "{page}");
    let (status, headers, export) = console.get("/console/ledger/export", &cookie).await;
    assert_eq!(status, 200, "{export}");
    assert!(
        headers["content-disposition"]
            .to_str()
            .unwrap()
            .contains("vigil-export-9.jsonl")
    );
    let report = vigil_ledger::export::verify_export(&export).unwrap();
    assert_eq!(report.n_entries, 9);
}
