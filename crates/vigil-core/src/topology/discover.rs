//! Discovering the topology from what the signals already carry.
//!
//! | where | what it shows |
//! | --- | --- |
//! | LiteLLM labels | `hashed_api_key` (a key, its `api_key_alias`) calls `model_group` (or `requested_model`); the key is owned by `team`; the model group routes to the deployment `model_id`, hosted by `api_provider` and served by `litellm_model_name` (or `model` beside a `model_group`); `fallback_model` is the fallback of `requested_model` (`litellm_deployment_successful_fallbacks_total`) |
//! | eval results | the suite uses the prompt and calls the model (group) |
//! | agent runs | the agent calls its key (`api_key`) |
//! | OpenTelemetry GenAI spans | the service (`service.name`) calls `gen_ai.request.model`, which is hosted by `gen_ai.provider.name` (or `gen_ai.system`) and served by `gen_ai.response.model`; the agent (`gen_ai.agent.name`) calls the model too |
//! | OpenTelemetry database spans | the service (`service.name`) reads the retrieval store named by `db.system.name` (or `db.system`) |
//! | Alertmanager alerts | their labels, read like scraped labels, plus `service`, `app` or `job` for an app and `vector_store`, `retrieval` or `db_system` for a retrieval store; the node an alert is about ([`alert_node`]) is the most specific one its labels name |
//!
//! LiteLLM writes `None` for a label it has no value for; `None` and empty values name no
//! node. Every name is cut to [`MAX_LABEL_CHARS`](crate::intake::MAX_LABEL_CHARS)
//! characters, as the signals' labels are.

use crate::intake::alertmanager::{ALERT_SUBJECT_LABEL, Alert};
use crate::intake::{Pushed, label_value};
use crate::signal::Labels;

use super::{Edge, NodeFacts, NodeId, NodeKind, Relation};

/// Facts found in one place: nodes (with what is known of them) and edges.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Facts {
    /// Nodes and their facts.
    pub nodes: Vec<(NodeId, NodeFacts)>,
    /// Edges between them.
    pub edges: Vec<Edge>,
}

impl Facts {
    fn node(&mut self, id: &NodeId, facts: NodeFacts) {
        self.nodes.push((id.clone(), facts));
    }

    fn edge(&mut self, from: &NodeId, relation: Relation, to: &NodeId) {
        self.edges.push(Edge {
            from: from.clone(),
            relation,
            to: to.clone(),
        });
    }

    /// Whether nothing was found.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.nodes.is_empty() && self.edges.is_empty()
    }
}

/// A label value that names something: not empty, not LiteLLM's `None`.
fn named(value: Option<&str>) -> Option<String> {
    value
        .map(str::trim)
        .filter(|value| !value.is_empty() && *value != "None")
        .map(label_value)
}

fn first(labels: &Labels, names: &[&str]) -> Option<String> {
    names.iter().find_map(|name| named(labels.get(name)))
}

/// The node a finding's subject (a detector's group label and its value) is about, when its
/// label names a kind of node: `hashed_api_key=…` is a key, `model_group=…` a model group.
/// A subject without a value (a detector over the whole source) is about no node.
#[must_use]
pub fn node_of_subject(label: &str, value: &str) -> Option<NodeId> {
    let value = named(Some(value))?;
    // The alerts' gauge names the label and value an alert is about (`vector_store=qdrant`).
    if label == ALERT_SUBJECT_LABEL {
        let (label, value) = value.split_once('=')?;
        return node_of_subject(label, value);
    }
    Some(NodeId::new(kind_of_label(label)?, value))
}

/// The kind of node a group label names (`model_id` a deployment, `api_provider` a
/// provider), if any. The alerts' `subject` label names none by itself: its values do.
#[must_use]
pub fn kind_of_label(label: &str) -> Option<NodeKind> {
    let kind = match label {
        "hashed_api_key" | "api_key" | "key" => NodeKind::Key,
        "team" | "team_id" => NodeKind::Team,
        "model_group" | "requested_model" | "model" | "model_name" => NodeKind::ModelGroup,
        "model_id" | "deployment" => NodeKind::Deployment,
        "api_provider" | "provider" | "gen_ai_system" => NodeKind::Provider,
        "litellm_model_name" | "response_model" | "snapshot" => NodeKind::Model,
        "prompt" => NodeKind::Prompt,
        "suite" => NodeKind::EvalSuite,
        "agent" => NodeKind::Agent,
        "app" | "service" | "application" => NodeKind::App,
        "vector_store" | "retrieval" | "index" | "db_system" => NodeKind::Retrieval,
        "cache" => NodeKind::Cache,
        _ => return None,
    };
    Some(kind)
}

/// The node an alert is about (the first label of
/// [`ALERT_SUBJECT_LABELS`](crate::intake::alertmanager::ALERT_SUBJECT_LABELS) it carries),
/// if it names one.
#[must_use]
pub fn alert_node(alert: &Alert) -> Option<NodeId> {
    let (label, value) = alert.subject()?;
    node_of_subject(label, value)
}

/// What a label set shows: a scraped series' labels, or an alert's.
#[must_use]
pub fn from_labels(labels: &Labels) -> Facts {
    let mut facts = Facts::default();
    let key = named(labels.get("hashed_api_key")).map(|hash| NodeId::new(NodeKind::Key, hash));
    let team = first(labels, &["team", "team_id"]).map(|team| NodeId::new(NodeKind::Team, team));
    let group = first(labels, &["model_group", "requested_model"])
        .map(|group| NodeId::new(NodeKind::ModelGroup, group));
    let deployment = named(labels.get("model_id")).map(|id| NodeId::new(NodeKind::Deployment, id));
    let provider =
        first(labels, &["api_provider"]).map(|name| NodeId::new(NodeKind::Provider, name));
    // `model` is the provider's model beside a model group (LiteLLM's latency metrics), and
    // the model group itself where there is none (eval-style labels).
    let snapshot = match named(labels.get("litellm_model_name")) {
        Some(name) => Some(NodeId::new(NodeKind::Model, name)),
        None if group.is_some() => {
            named(labels.get("model")).map(|name| NodeId::new(NodeKind::Model, name))
        }
        None => None,
    };
    // vLLM and TGI name the model they serve `model_name`.
    let group = group.or_else(|| {
        first(labels, &["model", "model_name"]).map(|name| NodeId::new(NodeKind::ModelGroup, name))
    });
    let fallback =
        named(labels.get("fallback_model")).map(|name| NodeId::new(NodeKind::ModelGroup, name));
    let app = first(labels, &["app", "service", "application"])
        .map(|name| NodeId::new(NodeKind::App, name));
    let retrieval = first(labels, &["vector_store", "retrieval", "db_system"])
        .map(|name| NodeId::new(NodeKind::Retrieval, name));

    if let Some(key) = &key {
        facts.node(
            key,
            NodeFacts {
                alias: named(labels.get("api_key_alias")),
                ..NodeFacts::default()
            },
        );
        if let Some(team) = &team {
            facts.edge(key, Relation::OwnedBy, team);
        }
        if let Some(group) = &group {
            facts.edge(key, Relation::Calls, group);
        }
    }
    for node in [
        &team,
        &group,
        &deployment,
        &provider,
        &snapshot,
        &app,
        &retrieval,
    ]
    .into_iter()
    .flatten()
    {
        facts.node(node, NodeFacts::default());
    }
    if let (Some(group), Some(fallback)) = (&group, &fallback) {
        facts.edge(group, Relation::FallsBackTo, fallback);
    }
    // The most specific serving node: the deployment, else the model group.
    let serving = deployment.as_ref().or(group.as_ref());
    if let (Some(group), Some(deployment)) = (&group, &deployment) {
        facts.edge(group, Relation::RoutesTo, deployment);
    }
    if let Some(serving) = serving {
        if let Some(provider) = &provider {
            facts.edge(serving, Relation::HostedBy, provider);
        }
        if let Some(snapshot) = &snapshot {
            facts.edge(serving, Relation::ServedBy, snapshot);
        }
    }
    if let Some(app) = &app {
        if let Some(group) = &group {
            facts.edge(app, Relation::Calls, group);
        }
        if let Some(retrieval) = &retrieval {
            facts.edge(app, Relation::Reads, retrieval);
        }
    }
    facts
}

/// What a pushed batch shows.
#[must_use]
pub fn from_pushed(pushed: &Pushed) -> Facts {
    let mut facts = Facts::default();
    match pushed {
        Pushed::Evals(batch) => {
            for result in &batch.results {
                let Some(suite) = named(Some(&result.suite)) else {
                    continue;
                };
                let suite = NodeId::new(NodeKind::EvalSuite, suite);
                facts.node(&suite, NodeFacts::default());
                if let Some(model) = named(Some(&result.model)) {
                    let model = NodeId::new(NodeKind::ModelGroup, model);
                    facts.edge(&suite, Relation::Calls, &model);
                    if let Some(prompt) = named(Some(&result.prompt_name)) {
                        let prompt = NodeId::new(NodeKind::Prompt, prompt);
                        facts.edge(&prompt, Relation::Calls, &model);
                    }
                }
                if let Some(prompt) = named(Some(&result.prompt_name)) {
                    facts.edge(
                        &suite,
                        Relation::Uses,
                        &NodeId::new(NodeKind::Prompt, prompt),
                    );
                }
            }
        }
        Pushed::AgentRuns(batch) => {
            for run in &batch.runs {
                let Some(agent) = named(Some(&run.agent)) else {
                    continue;
                };
                let agent = NodeId::new(NodeKind::Agent, agent);
                facts.node(&agent, NodeFacts::default());
                if let Some(key) = named(run.api_key.as_deref()) {
                    facts.edge(&agent, Relation::Calls, &NodeId::new(NodeKind::Key, key));
                }
            }
        }
        Pushed::Alerts(batch) => {
            for alert in &batch.alerts {
                let found = from_labels(&alert.labels);
                facts.nodes.extend(found.nodes);
                facts.edges.extend(found.edges);
            }
        }
        Pushed::Spans(batch) => {
            for span in &batch.spans {
                let service = named(span.service_name.as_deref())
                    .map(|name| NodeId::new(NodeKind::App, name));
                let agent = named(span.agent_name.as_deref())
                    .map(|name| NodeId::new(NodeKind::Agent, name));
                let group = named(span.request_model.as_deref())
                    .map(|name| NodeId::new(NodeKind::ModelGroup, name));
                let snapshot = named(span.response_model.as_deref())
                    .map(|name| NodeId::new(NodeKind::Model, name));
                let provider = named(span.provider.as_deref())
                    .map(|name| NodeId::new(NodeKind::Provider, name));
                for node in [&service, &agent, &group, &snapshot, &provider]
                    .into_iter()
                    .flatten()
                {
                    facts.node(node, NodeFacts::default());
                }
                // A database span: the service reads the store (named by its system).
                let store = named(span.db_system.as_deref())
                    .map(|name| NodeId::new(NodeKind::Retrieval, name));
                if let Some(store) = &store {
                    facts.node(store, NodeFacts::default());
                    if let Some(service) = &service {
                        facts.edge(service, Relation::Reads, store);
                    }
                }
                let Some(group) = &group else {
                    continue;
                };
                for caller in [&service, &agent].into_iter().flatten() {
                    facts.edge(caller, Relation::Calls, group);
                }
                if let Some(provider) = &provider {
                    facts.edge(group, Relation::HostedBy, provider);
                }
                if let Some(snapshot) = &snapshot {
                    facts.edge(group, Relation::ServedBy, snapshot);
                }
            }
        }
    }
    facts
}
