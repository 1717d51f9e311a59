//! The LiteLLM 1.106 families the simulated gateway exposes, with their names, help texts,
//! label names and label order as a real scrape shows them, and the process lines around them.

use super::metrics::{CounterFamily, GaugeFamily};
use crate::prom::{write_header, write_sample};

// Label names and their order are copied from a real LiteLLM 1.106.2 scrape.
const FAILED_LABELS: &[&str] = &[
    "api_key_alias",
    "api_provider",
    "client_ip",
    "end_user",
    "exception_class",
    "exception_status",
    "hashed_api_key",
    "model_id",
    "org_alias",
    "org_id",
    "requested_model",
    "route",
    "team",
    "team_alias",
    "user",
    "user_agent",
    "user_email",
];
const TOTAL_REQUESTS_LABELS: &[&str] = &[
    "api_key_alias",
    "api_provider",
    "client_ip",
    "end_user",
    "hashed_api_key",
    "model_id",
    "org_alias",
    "org_id",
    "requested_model",
    "route",
    "status_code",
    "team",
    "team_alias",
    "user",
    "user_agent",
    "user_email",
];
const SPEND_LABELS: &[&str] = &[
    "api_key_alias",
    "api_provider",
    "client_ip",
    "end_user",
    "hashed_api_key",
    "model",
    "model_id",
    "org_alias",
    "org_id",
    "requested_model",
    "service_tier",
    "team",
    "team_alias",
    "user",
    "user_agent",
    "user_email",
];
const TOKEN_LABELS: &[&str] = &[
    "api_key_alias",
    "api_provider",
    "end_user",
    "hashed_api_key",
    "model",
    "model_id",
    "org_alias",
    "org_id",
    "requested_model",
    "team",
    "team_alias",
    "user",
    "user_email",
];
const KEY_BUDGET_LABELS: &[&str] = &["api_key_alias", "hashed_api_key"];
const KEY_MODEL_LIMIT_LABELS: &[&str] = &["api_key_alias", "hashed_api_key", "model", "model_id"];
const DEPRECATED_REQUESTS_LABELS: &[&str] = &[
    "api_key_alias",
    "api_provider",
    "client_ip",
    "end_user",
    "hashed_api_key",
    "model",
    "model_id",
    "org_alias",
    "org_id",
    "requested_model",
    "team",
    "team_alias",
    "user",
    "user_agent",
    "user_email",
];

/// Every LiteLLM family the simulator keeps, in the order LiteLLM exposes them.
#[derive(Debug)]
pub(crate) struct Metrics {
    pub(crate) proxy_failed_requests: CounterFamily,
    pub(crate) proxy_total_requests: CounterFamily,
    pub(crate) spend: CounterFamily,
    pub(crate) total_tokens: CounterFamily,
    pub(crate) input_tokens: CounterFamily,
    pub(crate) output_tokens: CounterFamily,
    pub(crate) remaining_api_key_budget: GaugeFamily,
    pub(crate) api_key_max_budget: GaugeFamily,
    pub(crate) remaining_api_key_requests_for_model: GaugeFamily,
    pub(crate) remaining_api_key_tokens_for_model: GaugeFamily,
    pub(crate) requests: CounterFamily,
}

impl Metrics {
    pub(crate) fn new() -> Self {
        Self {
            proxy_failed_requests: CounterFamily::new(
                "litellm_proxy_failed_requests_metric",
                "Total number of failed responses from proxy - the client did not get a success response from litellm proxy",
                FAILED_LABELS,
            ),
            proxy_total_requests: CounterFamily::new(
                "litellm_proxy_total_requests_metric",
                "Total number of requests made to the proxy server - track number of client side requests",
                TOTAL_REQUESTS_LABELS,
            ),
            spend: CounterFamily::new(
                "litellm_spend_metric",
                "Total spend on LLM requests",
                SPEND_LABELS,
            ),
            total_tokens: CounterFamily::new(
                "litellm_total_tokens_metric",
                "Total number of input + output tokens from LLM requests",
                TOKEN_LABELS,
            ),
            input_tokens: CounterFamily::new(
                "litellm_input_tokens_metric",
                "Total number of input tokens from LLM requests",
                TOKEN_LABELS,
            ),
            output_tokens: CounterFamily::new(
                "litellm_output_tokens_metric",
                "Total number of output tokens from LLM requests",
                TOKEN_LABELS,
            ),
            remaining_api_key_budget: GaugeFamily::new(
                "litellm_remaining_api_key_budget_metric",
                "Remaining budget for api key",
                KEY_BUDGET_LABELS,
            ),
            api_key_max_budget: GaugeFamily::new(
                "litellm_api_key_max_budget_metric",
                "Maximum budget set for api key",
                KEY_BUDGET_LABELS,
            ),
            remaining_api_key_requests_for_model: GaugeFamily::new(
                "litellm_remaining_api_key_requests_for_model",
                "Remaining Requests API Key can make for model (model based rpm limit on key)",
                KEY_MODEL_LIMIT_LABELS,
            ),
            remaining_api_key_tokens_for_model: GaugeFamily::new(
                "litellm_remaining_api_key_tokens_for_model",
                "Remaining Tokens API Key can make for model (model based tpm limit on key)",
                KEY_MODEL_LIMIT_LABELS,
            ),
            requests: CounterFamily::new(
                "litellm_requests_metric",
                "deprecated - use litellm_proxy_total_requests_metric. Total number of LLM calls to litellm - track total per API Key, team, user",
                DEPRECATED_REQUESTS_LABELS,
            ),
        }
    }

    /// Renders the LiteLLM families, without the process lines and the in-flight gauge.
    pub(crate) fn render(&self, out: &mut String) {
        self.proxy_failed_requests.render(out);
        self.proxy_total_requests.render(out);
        self.spend.render(out);
        self.total_tokens.render(out);
        self.input_tokens.render(out);
        self.output_tokens.render(out);
        self.remaining_api_key_budget.render(out);
        self.api_key_max_budget.render(out);
        self.remaining_api_key_requests_for_model.render(out);
        self.remaining_api_key_tokens_for_model.render(out);
        self.requests.render(out);
    }
}

/// The Python runtime and process lines every `prometheus_client` scrape starts with.
pub(crate) fn render_process(out: &mut String, start_unix: f64, uptime_secs: f64) {
    let generations = ["0", "1", "2"];
    let gc_families: [(&str, &str, [f64; 3]); 3] = [
        (
            "python_gc_objects_collected_total",
            "Objects collected during gc",
            [1470.0, 840.0, 255.0],
        ),
        (
            "python_gc_objects_uncollectable_total",
            "Uncollectable objects found during GC",
            [0.0; 3],
        ),
        (
            "python_gc_collections_total",
            "Number of times this generation was collected",
            [1712.0, 155.0, 10.0],
        ),
    ];
    for (name, help, values) in gc_families {
        write_header(out, name, help, "counter");
        for (generation, value) in generations.iter().zip(values) {
            write_sample(
                out,
                name,
                &["generation"],
                &[(*generation).to_owned()],
                value,
            );
        }
    }
    write_header(out, "python_info", "Python platform information", "gauge");
    let info_names = ["implementation", "major", "minor", "patchlevel", "version"];
    let info_values = ["CPython", "3", "11", "7", "3.11.7"].map(str::to_owned);
    write_sample(out, "python_info", &info_names, &info_values, 1.0);
    let gauges: [(&str, &str, &str, f64); 6] = [
        (
            "process_virtual_memory_bytes",
            "Virtual memory size in bytes.",
            "gauge",
            741_351_424.0,
        ),
        (
            "process_resident_memory_bytes",
            "Resident memory size in bytes.",
            "gauge",
            356_679_680.0,
        ),
        (
            "process_start_time_seconds",
            "Start time of the process since unix epoch in seconds.",
            "gauge",
            (start_unix * 100.0).round() / 100.0,
        ),
        (
            "process_cpu_seconds_total",
            "Total user and system CPU time spent in seconds.",
            "counter",
            // A proxy idles at a few percent of one core.
            15.0 + (uptime_secs * 0.03 * 100.0).round() / 100.0,
        ),
        (
            "process_open_fds",
            "Number of open file descriptors.",
            "gauge",
            18.0,
        ),
        (
            "process_max_fds",
            "Maximum number of open file descriptors.",
            "gauge",
            20000.0,
        ),
    ];
    for (name, help, kind, value) in gauges {
        write_header(out, name, help, kind);
        write_sample(out, name, &[], &[], value);
    }
}

/// The in-flight gauge LiteLLM writes last.
pub(crate) fn render_in_flight(out: &mut String, in_flight: u64) {
    let name = "litellm_in_flight_requests";
    write_header(
        out,
        name,
        "Number of HTTP requests currently in-flight on this uvicorn worker",
        "gauge",
    );
    #[expect(
        clippy::cast_precision_loss,
        reason = "an in-flight count stays far below 2^52"
    )]
    let value = in_flight as f64;
    write_sample(out, name, &[], &[], value);
}
