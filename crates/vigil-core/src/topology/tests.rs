use super::discover::{from_labels, from_pushed, node_of_subject};
use super::*;
use crate::exposition::parse_text;
use crate::intake::{parse_agent_runs, parse_alertmanager, parse_evals, parse_otlp_traces};

fn id(text: &str) -> NodeId {
    text.parse().unwrap()
}

fn discovered() -> Origin {
    Origin::Discovered {
        source: "gw".to_owned(),
        at: Timestamp(0),
    }
}

/// Lines as LiteLLM 1.106 writes them (from a real scrape: a request served, a deployment's
/// state, a fallback after a 429).
const LITELLM: &str = r#"litellm_deployment_total_requests_total{api_base="",api_key_alias="batch-ingest",api_provider="openai",client_ip="127.0.0.1",hashed_api_key="88dc28",litellm_model_name="gpt-4o",model_group="gpt-4o",model_id="5561ed",requested_model="gpt-4o",team="team-search",team_alias="None",user_agent="curl/7.88.1"} 4.0
litellm_request_total_latency_metric_bucket{api_key_alias="None",api_provider="anthropic",end_user="None",hashed_api_key="88dc28",le="0.005",model="claude-3-5-sonnet",model_group="claude-fallback",model_id="71ad7a",org_alias="None",org_id="None",requested_model="claude-fallback",service_tier="None",team="None",team_alias="None",user="default_user_id"} 0.0
litellm_deployment_state{api_base="",api_provider="anthropic",litellm_model_name="claude-3-5-sonnet",model_id="71ad7a"} 0.0
litellm_deployment_successful_fallbacks_total{api_key_alias="None",exception_class="Openai.RateLimitError",exception_status="429",fallback_model="claude-fallback",hashed_api_key="88dc28",model_id="None",requested_model="gpt-4o",team="None",team_alias="None"} 1.0
"#;

fn litellm_labels() -> Vec<crate::signal::Labels> {
    let exposition = parse_text(LITELLM);
    assert!(exposition.errors.is_empty(), "{:?}", exposition.errors);
    exposition
        .samples
        .iter()
        .map(|sample| {
            sample
                .labels
                .iter()
                .map(|(name, value)| (name.to_string(), value.to_string()))
                .collect()
        })
        .collect()
}

fn learn_litellm() -> (Topology, Growth) {
    let mut topology = Topology::default();
    let mut growth = Growth::default();
    for labels in litellm_labels() {
        topology.learn(&from_labels(&labels), &discovered(), &mut growth);
    }
    (topology, growth)
}

#[test]
fn litellm_labels_show_keys_teams_groups_deployments_providers_snapshots_and_fallbacks() {
    let (topology, growth) = learn_litellm();
    let edges: Vec<String> = topology.edges().map(|edge| edge.to_string()).collect();
    expect_test::expect![[r#"
        [
            "key:88dc28 calls model_group:claude-fallback",
            "key:88dc28 calls model_group:gpt-4o",
            "key:88dc28 owned_by team:team-search",
            "model_group:claude-fallback routes_to deployment:71ad7a",
            "model_group:gpt-4o routes_to deployment:5561ed",
            "model_group:gpt-4o falls_back_to model_group:claude-fallback",
            "deployment:5561ed hosted_by provider:openai",
            "deployment:5561ed served_by model:gpt-4o",
            "deployment:71ad7a hosted_by provider:anthropic",
            "deployment:71ad7a served_by model:claude-3-5-sonnet",
        ]
    "#]]
    .assert_debug_eq(&edges);
    assert_eq!(growth.edges.len(), edges.len(), "each edge is new once");
    assert_eq!(
        topology.node(&id("key:88dc28")).unwrap().alias.as_deref(),
        Some("batch-ingest"),
        "the key's alias is kept"
    );
    // `None` names nothing: no team `None`, no deployment `None`.
    assert!(topology.node(&id("team:None")).is_none());
    assert!(topology.node(&id("deployment:None")).is_none());
}

#[test]
fn learning_the_same_labels_again_adds_nothing() {
    let (mut topology, _) = learn_litellm();
    let mut growth = Growth::default();
    for labels in litellm_labels() {
        topology.learn(&from_labels(&labels), &discovered(), &mut growth);
    }
    assert!(growth.is_empty(), "{growth:?}");
}

#[test]
fn findings_connect_through_a_shared_dependency_within_the_hops() {
    let (topology, _) = learn_litellm();
    let key = id("key:88dc28");
    let provider = id("provider:anthropic");
    // key → claude-fallback → 71ad7a → anthropic: three hops.
    assert_eq!(
        topology.common_dependency(&key, &provider, 3),
        Some((provider.clone(), 3, 0))
    );
    assert_eq!(topology.common_dependency(&key, &provider, 2), None);
    // Two deployments of different providers share nothing; a team is an owner, not a
    // dependency, so it connects nothing.
    assert_eq!(
        topology.common_dependency(&id("deployment:5561ed"), &id("deployment:71ad7a"), 3),
        None
    );
    assert_eq!(
        topology.common_dependency(&id("team:team-search"), &key, 3),
        None
    );
    // The fallback is a dependency of the primary: gpt-4o's deployment and the fallback's
    // provider meet at the fallback's provider.
    assert!(topology.depends_on(&id("model_group:gpt-4o"), &provider, 3));
    assert!(!topology.depends_on(&provider, &id("model_group:gpt-4o"), 3));
}

#[test]
fn a_full_graph_refuses_new_nodes_and_edges_and_keeps_what_it_knows() {
    let mut topology = Topology::declared(&TopologyConfig {
        limits: TopologyLimits {
            max_nodes: 3,
            max_edges: 1,
        },
        ..TopologyConfig::default()
    });
    let mut growth = Growth::default();
    let edge = |from: &str, to: &str| Edge {
        from: id(from),
        relation: Relation::Calls,
        to: id(to),
    };
    topology.learn_edge(&edge("key:a", "model_group:m"), &discovered(), &mut growth);
    topology.learn_edge(&edge("key:b", "model_group:m"), &discovered(), &mut growth);
    topology.learn_edge(&edge("key:c", "model_group:m"), &discovered(), &mut growth);
    assert_eq!(topology.n_nodes(), 3);
    assert_eq!(topology.n_edges(), 1);
    assert_eq!(growth.nodes.len(), 3);
    assert_eq!(growth.edges.len(), 1);
    assert_eq!(growth.n_refused_edges, 2);
    assert_eq!(growth.n_refused_nodes, 1);
    assert!(topology.depends_on(&id("key:a"), &id("model_group:m"), 1));
}

#[test]
fn a_discovery_never_overrides_what_the_config_declared() {
    let declared = DeclaredNode {
        id: id("model_group:text-embedding-3"),
        facts: NodeFacts {
            alias: None,
            owner: Some("team-search".to_owned()),
            model: Some(ModelInfo {
                modality: Modality::Embedding,
                context_window: Some(8192),
            }),
        },
    };
    let mut topology = Topology::declared(&TopologyConfig {
        nodes: vec![declared],
        ..TopologyConfig::default()
    });
    let mut growth = Growth::default();
    topology.learn_node(
        &id("model_group:text-embedding-3"),
        &NodeFacts {
            alias: Some("embed".to_owned()),
            owner: Some("someone-else".to_owned()),
            model: Some(ModelInfo {
                modality: Modality::Chat,
                context_window: None,
            }),
        },
        &discovered(),
        &mut growth,
    );
    let node = topology.node(&id("model_group:text-embedding-3")).unwrap();
    assert_eq!(node.origin, Origin::Declared);
    assert_eq!(node.owner.as_deref(), Some("team-search"));
    assert_eq!(node.model.unwrap().modality, Modality::Embedding);
    assert_eq!(
        node.alias.as_deref(),
        Some("embed"),
        "a missing fact is filled"
    );
    assert!(growth.nodes.is_empty());
}

#[test]
fn node_ids_read_and_print_as_kind_and_name() {
    let cases = [
        ("model_group:gpt-4o", Ok("model_group:gpt-4o")),
        ("key:88:dc", Ok("key:88:dc")),
        (
            "gpt-4o",
            Err("`gpt-4o` is not a node; write it as kind:name, for example model_group:gpt-4o"),
        ),
        ("key:", Err("`key:` names no node after the `:`")),
    ];
    for (text, expected) in cases {
        let parsed = text.parse::<NodeId>().map(|id| id.to_string());
        assert_eq!(
            parsed.as_deref().map_err(String::as_str),
            expected,
            "{text}"
        );
    }
    let unknown = "modelgroup:x".parse::<NodeId>().unwrap_err();
    assert!(
        unknown.starts_with("unknown node kind `modelgroup`"),
        "{unknown}"
    );
}

#[test]
fn subjects_map_to_nodes_by_their_label() {
    let cases = [
        ("hashed_api_key", "88dc28", Some("key:88dc28")),
        ("model_group", "gpt-4o", Some("model_group:gpt-4o")),
        ("model", "gpt-4o", Some("model_group:gpt-4o")),
        ("api_provider", "openai", Some("provider:openai")),
        ("suite", "support-qa", Some("eval_suite:support-qa")),
        ("agent", "triage", Some("agent:triage")),
        ("model_id", "None", None),
        ("", "", None),
        ("alertname", "HighLatency", None),
    ];
    for (label, value, expected) in cases {
        assert_eq!(
            node_of_subject(label, value).map(|node| node.to_string()),
            expected.map(str::to_owned),
            "{label}={value}"
        );
    }
}

#[test]
fn pushed_batches_show_suites_prompts_agents_services_and_response_models() {
    let mut topology = Topology::default();
    let mut growth = Growth::default();
    let evals = parse_evals(
        br#"{"results": [{"suite": "support-qa", "case": "c1", "passed": true, "model": "gpt-4o", "prompt_name": "support", "prompt_version": "7"}]}"#,
    )
    .unwrap();
    let runs = parse_agent_runs(
        br#"{"runs": [{"run_id": "r1", "agent": "triage", "iterations": 3, "outcome": "success", "api_key": "8254c329a92850f6d539dd376f4816ee2764517da5e0235514af433164480d7a"}]}"#,
    )
    .unwrap();
    let alerts = parse_alertmanager(
        br#"{"version": "4", "status": "firing", "receiver": "vigil", "groupKey": "g", "groupLabels": {}, "commonLabels": {}, "commonAnnotations": {}, "externalURL": "http://am", "alerts": [{"status": "firing", "labels": {"alertname": "VectorDBSlow", "service": "support-bot", "vector_store": "pgvector-main"}, "annotations": {}, "startsAt": "2026-12-01T00:00:00Z", "endsAt": "0001-01-01T00:00:00Z", "generatorURL": "", "fingerprint": "f"}]}"#,
    )
    .unwrap();
    let spans = parse_otlp_traces(
        br#"{"resourceSpans": [{"resource": {"attributes": [{"key": "service.name", "value": {"stringValue": "support-bot"}}]}, "scopeSpans": [{"spans": [{"traceId": "5b8efff798038103d269b633813fc60c", "spanId": "eee19b7ec3c1b174", "name": "chat gpt-4o", "kind": 3, "startTimeUnixNano": "1000000000", "endTimeUnixNano": "2000000000", "attributes": [{"key": "gen_ai.operation.name", "value": {"stringValue": "chat"}}, {"key": "gen_ai.system", "value": {"stringValue": "openai"}}, {"key": "gen_ai.request.model", "value": {"stringValue": "gpt-4o"}}, {"key": "gen_ai.response.model", "value": {"stringValue": "gpt-4o-2024-08-06"}}]}]}]}]}"#,
    )
    .unwrap();
    for pushed in [
        Pushed::Evals(evals),
        Pushed::AgentRuns(runs),
        Pushed::Alerts(alerts),
        Pushed::Spans(spans),
    ] {
        topology.learn(&from_pushed(&pushed), &discovered(), &mut growth);
    }
    let edges: Vec<String> = topology.edges().map(|edge| edge.to_string()).collect();
    expect_test::expect![[r#"
        [
            "app:support-bot calls model_group:gpt-4o",
            "app:support-bot reads retrieval:pgvector-main",
            "prompt:support calls model_group:gpt-4o",
            "agent:triage calls key:8254c329a92850f6d539dd376f4816ee2764517da5e0235514af433164480d7a",
            "eval_suite:support-qa calls model_group:gpt-4o",
            "eval_suite:support-qa uses prompt:support",
            "model_group:gpt-4o hosted_by provider:openai",
            "model_group:gpt-4o served_by model:gpt-4o-2024-08-06",
        ]
    "#]]
    .assert_debug_eq(&edges);
}

use crate::intake::Pushed;

#[test]
fn an_alerts_subject_and_a_database_span_name_the_store() {
    // The alerts' gauge names `label=value`; the store is what the alert is about.
    assert_eq!(
        node_of_subject("subject", "vector_store=qdrant"),
        Some(NodeId::new(NodeKind::Retrieval, "qdrant"))
    );
    assert_eq!(node_of_subject("subject", "no-equals-sign"), None);
    assert_eq!(
        node_of_subject("db_system", "pgvector"),
        Some(NodeId::new(NodeKind::Retrieval, "pgvector"))
    );
    // A database span: its service reads the store.
    let body = r#"{"resourceSpans": [{
      "resource": {"attributes": [{"key": "service.name", "value": {"stringValue": "support-bot"}}]},
      "scopeSpans": [{"spans": [{"traceId": "5b8efff798038103d269b633813fc60c",
        "spanId": "eee19b7ec3c1b171", "startTimeUnixNano": "1", "endTimeUnixNano": "2",
        "attributes": [{"key": "db.system.name", "value": {"stringValue": "qdrant"}}]}]}]}]}"#;
    let facts = from_pushed(&Pushed::Spans(parse_otlp_traces(body.as_bytes()).unwrap()));
    assert_eq!(
        facts.edges,
        [Edge {
            from: NodeId::new(NodeKind::App, "support-bot"),
            relation: Relation::Reads,
            to: NodeId::new(NodeKind::Retrieval, "qdrant"),
        }]
    );
}
