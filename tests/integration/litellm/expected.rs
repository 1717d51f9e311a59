//! What LiteLLM 1.106.2's Prometheus callback must report for the traffic the test sent, as
//! observed on that version, and the helpers that read an exposition with vigil's parser.
//!
//! For a call to a deployment whose mock answers `litellm.RateLimitError`, LiteLLM answers 429
//! and counts the failure under `exception_class="Openai.RateLimitError"`,
//! `exception_status="429"`, at the proxy and at the deployment. A call that asks for a mock
//! rate limit itself (`mock_testing_rate_limit_error`) fails before any deployment is chosen:
//! `exception_class="RateLimitError"`, `api_provider="None"`, `model_id="None"`, and no
//! deployment counter moves. A scrape of `/metrics/` without the key counts as a failed
//! proxy request, `exception_class="Exception"`, `status_code="None"`.

use std::collections::BTreeMap;

use crate::proxy::{MODEL_LIMITED, MODEL_LIMITED_DEPLOYMENT, MODEL_OK, MODEL_OK_DEPLOYMENT};

/// How LiteLLM names the master key in `hashed_api_key`.
const MASTER_KEY_LABEL: &str = "litellm_proxy_master_key";
/// The `User-Agent` of vigil's HTTP client, which sent every call.
const USER_AGENT: &str = concat!("vigil/", env!("CARGO_PKG_VERSION"));

/// Series of one metric, keyed by the values of some labels, values summed per key.
type Projection = BTreeMap<Vec<String>, f64>;

/// Every `(labels, value)` sample named `name` in `text`, parsed by vigil's exposition parser.
pub fn series(text: &str, name: &str) -> Vec<(BTreeMap<String, String>, f64)> {
    let exposition = vigil_core::exposition::parse_text(text);
    exposition
        .samples
        .iter()
        .filter(|sample| AsRef::<str>::as_ref(&sample.name) == name)
        .map(|sample| {
            let labels = sample
                .labels
                .iter()
                .map(|(label, value)| {
                    (
                        AsRef::<str>::as_ref(label).to_owned(),
                        AsRef::<str>::as_ref(value).to_owned(),
                    )
                })
                .collect();
            (labels, sample.value)
        })
        .collect()
}

/// `name`'s samples keyed by the values of `keys` (a missing label is `<absent>`), summed.
fn project(text: &str, name: &str, keys: &[&str]) -> Projection {
    let mut projection = Projection::new();
    for (labels, value) in series(text, name) {
        let key = keys
            .iter()
            .map(|key| {
                labels
                    .get(*key)
                    .cloned()
                    .unwrap_or_else(|| "<absent>".to_owned())
            })
            .collect();
        *projection.entry(key).or_default() += value;
    }
    projection
}

fn entry(key: &[&str], value: f64) -> (Vec<String>, f64) {
    (key.iter().map(|part| (*part).to_owned()).collect(), value)
}

/// What the test sent.
#[derive(Debug, Default)]
pub struct Traffic {
    pub n_ok: u32,
    pub n_limited: u32,
    pub n_request_limited: u32,
    pub n_refused_scrapes: u32,
    pub prompt_tokens: u32,
    pub completion_tokens: u32,
    pub total_tokens: u32,
    /// The sum of `x-litellm-response-cost`, in USD.
    pub cost_usd: f64,
}

impl Traffic {
    /// Counts a successful call with its `usage` object and reported cost.
    pub fn add_success(&mut self, usage: &serde_json::Value, cost_usd: f64) {
        let tokens = |field: &str| {
            u32::try_from(
                usage[field]
                    .as_u64()
                    .unwrap_or_else(|| panic!("usage.{field}: {usage}")),
            )
            .unwrap()
        };
        self.n_ok += 1;
        self.prompt_tokens += tokens("prompt_tokens");
        self.completion_tokens += tokens("completion_tokens");
        self.total_tokens += tokens("total_tokens");
        assert!(self.total_tokens > 0, "{usage}");
        self.cost_usd += cost_usd;
    }
}

/// One metric's expected projection.
struct Check {
    metric: &'static str,
    keys: &'static [&'static str],
    expected: Projection,
}

/// Every check for one traffic.
pub struct Expected {
    checks: Vec<Check>,
    cost_usd: f64,
}

impl Expected {
    pub fn new(traffic: &Traffic) -> Expected {
        let n = f64::from;
        let chat = "/chat/completions";
        let tokens_keys: &'static [&'static str] =
            &["hashed_api_key", "requested_model", "model", "api_provider"];
        let tokens = |value: u32| {
            Projection::from([entry(
                &[MASTER_KEY_LABEL, MODEL_OK, MODEL_OK_DEPLOYMENT, "openai"],
                n(value),
            )])
        };
        let checks = vec![
            Check {
                metric: "litellm_total_tokens_metric_total",
                keys: tokens_keys,
                expected: tokens(traffic.total_tokens),
            },
            Check {
                metric: "litellm_input_tokens_metric_total",
                keys: tokens_keys,
                expected: tokens(traffic.prompt_tokens),
            },
            Check {
                metric: "litellm_output_tokens_metric_total",
                keys: tokens_keys,
                expected: tokens(traffic.completion_tokens),
            },
            Check {
                metric: "litellm_proxy_total_requests_metric_total",
                keys: &[
                    "route",
                    "requested_model",
                    "status_code",
                    "hashed_api_key",
                    "user_agent",
                ],
                expected: Projection::from([
                    entry(
                        &[chat, MODEL_OK, "200", MASTER_KEY_LABEL, USER_AGENT],
                        n(traffic.n_ok),
                    ),
                    entry(
                        &[chat, MODEL_LIMITED, "429", MASTER_KEY_LABEL, USER_AGENT],
                        n(traffic.n_limited),
                    ),
                    entry(
                        &[chat, MODEL_OK, "429", MASTER_KEY_LABEL, USER_AGENT],
                        n(traffic.n_request_limited),
                    ),
                    entry(
                        &["/metrics/", "", "None", "", USER_AGENT],
                        n(traffic.n_refused_scrapes),
                    ),
                ]),
            },
            Check {
                metric: "litellm_proxy_failed_requests_metric_total",
                keys: &[
                    "route",
                    "requested_model",
                    "exception_class",
                    "exception_status",
                    "api_provider",
                    "hashed_api_key",
                ],
                expected: Projection::from([
                    entry(
                        &[
                            chat,
                            MODEL_LIMITED,
                            "Openai.RateLimitError",
                            "429",
                            "openai",
                            MASTER_KEY_LABEL,
                        ],
                        n(traffic.n_limited),
                    ),
                    entry(
                        &[
                            chat,
                            MODEL_OK,
                            "RateLimitError",
                            "429",
                            "None",
                            MASTER_KEY_LABEL,
                        ],
                        n(traffic.n_request_limited),
                    ),
                    entry(
                        &["/metrics/", "", "Exception", "None", "None", ""],
                        n(traffic.n_refused_scrapes),
                    ),
                ]),
            },
            Check {
                metric: "litellm_deployment_failure_responses_total",
                keys: &[
                    "model_group",
                    "litellm_model_name",
                    "exception_class",
                    "exception_status",
                ],
                expected: Projection::from([entry(
                    &[
                        MODEL_LIMITED,
                        MODEL_LIMITED_DEPLOYMENT,
                        "Openai.RateLimitError",
                        "429",
                    ],
                    n(traffic.n_limited),
                )]),
            },
            Check {
                metric: "litellm_deployment_success_responses_total",
                keys: &["model_group", "litellm_model_name"],
                expected: Projection::from([entry(
                    &[MODEL_OK, MODEL_OK_DEPLOYMENT],
                    n(traffic.n_ok),
                )]),
            },
            Check {
                metric: "litellm_deployment_total_requests_total",
                keys: &["model_group", "litellm_model_name"],
                expected: Projection::from([
                    entry(&[MODEL_OK, MODEL_OK_DEPLOYMENT], n(traffic.n_ok)),
                    entry(
                        &[MODEL_LIMITED, MODEL_LIMITED_DEPLOYMENT],
                        n(traffic.n_limited),
                    ),
                ]),
            },
            Check {
                metric: "litellm_llm_api_failed_requests_metric_total",
                keys: &["model"],
                expected: Projection::from([entry(
                    &[MODEL_LIMITED_DEPLOYMENT],
                    n(traffic.n_limited),
                )]),
            },
            // 0 healthy, 1 partial outage: the limited deployment failed, the other did not.
            Check {
                metric: "litellm_deployment_state",
                keys: &["litellm_model_name"],
                expected: Projection::from([
                    entry(&[MODEL_OK_DEPLOYMENT], 0.0),
                    entry(&[MODEL_LIMITED_DEPLOYMENT], 1.0),
                ]),
            },
        ];
        Expected {
            checks,
            cost_usd: traffic.cost_usd,
        }
    }

    /// Whether every check holds on `text` (the callbacks have all landed).
    pub fn settled(&self, text: &str) -> bool {
        self.checks
            .iter()
            .all(|check| project(text, check.metric, check.keys) == check.expected)
            && self
                .spend(text)
                .is_some_and(|spend| self.spend_matches(spend))
    }

    /// Asserts every check on `text`, naming the first metric that differs.
    pub fn assert_matches(&self, text: &str) {
        let exposition = vigil_core::exposition::parse_text(text);
        assert!(
            exposition.errors.is_empty(),
            "vigil's parser rejected lines of LiteLLM's exposition: {:?}",
            exposition.errors
        );
        for check in &self.checks {
            let actual = project(text, check.metric, check.keys);
            assert_eq!(
                actual,
                check.expected,
                "{} by {:?}\n--- all of it ---\n{}",
                check.metric,
                check.keys,
                text.lines()
                    .filter(|line| line.starts_with(check.metric))
                    .collect::<Vec<_>>()
                    .join("\n")
            );
        }
        let spend = self
            .spend(text)
            .expect("litellm_spend_metric_total for the master key");
        assert!(
            self.spend_matches(spend),
            "litellm_spend_metric_total is {spend}, the calls reported {} USD",
            self.cost_usd
        );
    }

    /// The master key's spend on the healthy model, if there is exactly one such series.
    fn spend(&self, text: &str) -> Option<f64> {
        let projection = project(
            text,
            "litellm_spend_metric_total",
            &["hashed_api_key", "requested_model"],
        );
        match projection.into_iter().collect::<Vec<_>>().as_slice() {
            [(key, value)] if *key == [MASTER_KEY_LABEL, MODEL_OK] => Some(*value),
            _ => None,
        }
    }

    /// Equal up to float summation order: LiteLLM adds the same costs one by one.
    fn spend_matches(&self, spend: f64) -> bool {
        self.cost_usd > 0.0 && (spend - self.cost_usd).abs() <= self.cost_usd * 1e-9
    }
}
