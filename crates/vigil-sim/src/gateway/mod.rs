//! `SimGateway`: a simulated LiteLLM proxy (1.106.x) that serves the same `/metrics/`
//! exposition, chat completions and admin API (keys, teams, fallbacks) as the real one, over
//! HTTP.

mod admin;
mod auth;
mod chat;
mod errors;
mod fallbacks;
mod families;
mod metrics;
mod state;
mod teams;

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use axum::extract::{ConnectInfo, Request, State};
use axum::http::header::{CONTENT_TYPE, HOST, LOCATION};
use axum::http::{HeaderMap, HeaderValue, StatusCode, Uri};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::SimError;
use state::{KeyRecord, ModelEntry, Shared, TeamRecord};

/// The content type of Prometheus text format 0.0.4, as `prometheus_client` sends it.
const PROMETHEUS_TEXT: &str = "text/plain; version=0.0.4; charset=utf-8";

/// How the simulated gateway is set up.
#[derive(Clone)]
pub struct GatewayConfig {
    /// The proxy's master key; it must start with `sk-`, as LiteLLM requires.
    pub master_key: String,
    /// The virtual keys the gateway knows.
    pub keys: Vec<SimKey>,
    /// The models the gateway routes to.
    pub models: Vec<SimModel>,
    /// Accept `/key/block` but keep serving blocked keys: a gateway where the fix fails.
    pub ignore_blocks: bool,
    /// Require the master key on `/metrics/`, like `require_auth_for_metrics_endpoint: true`.
    pub require_auth_for_metrics: bool,
}

impl fmt::Debug for GatewayConfig {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter
            .debug_struct("GatewayConfig")
            .field("master_key", &"<redacted>")
            .field("keys", &self.keys)
            .field("models", &self.models)
            .field("ignore_blocks", &self.ignore_blocks)
            .field("require_auth_for_metrics", &self.require_auth_for_metrics)
            .finish()
    }
}

/// One virtual key of the simulated gateway.
#[derive(Clone)]
pub struct SimKey {
    /// The raw key, `sk-...`, that clients send.
    pub raw_key: String,
    /// The key's alias (`api_key_alias`); empty for none.
    pub alias: String,
    /// The key's team (`team`); empty for none. Every team named by a key exists in the
    /// gateway, unblocked, and can be blocked with `/team/block`.
    pub team: String,
    /// The key's owner (`user`); empty for none.
    pub user_id: String,
    /// The key's budget in USD; `None` for no budget.
    pub max_budget_usd: Option<f64>,
}

impl fmt::Debug for SimKey {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter
            .debug_struct("SimKey")
            .field("raw_key", &crate::abbreviate_key(&self.raw_key))
            .field("alias", &self.alias)
            .field("team", &self.team)
            .field("user_id", &self.user_id)
            .field("max_budget_usd", &self.max_budget_usd)
            .finish()
    }
}

/// One model deployment of the simulated gateway.
#[derive(Debug, Clone, PartialEq)]
pub struct SimModel {
    /// The model name clients request (`requested_model`, `model`).
    pub name: String,
    /// The provider (`api_provider`), e.g. `openai`.
    pub provider: String,
    /// USD per prompt token.
    pub input_cost_per_token: f64,
    /// USD per completion token.
    pub output_cost_per_token: f64,
}

/// One request the admin API received.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AdminCall {
    /// The route, e.g. `/key/block`.
    pub path: String,
    /// The hashed key the call was about, when the request named one.
    pub key: Option<String>,
    /// The team or model the call was about, for the team and fallback routes.
    pub subject: Option<String>,
    /// The status the gateway answered.
    pub status: u16,
    /// When the gateway answered.
    pub at: tokio::time::Instant,
}

/// A running simulated LiteLLM gateway. Cloning shares the same gateway.
#[derive(Debug, Clone)]
pub struct SimGateway {
    shared: Arc<Shared>,
    tracker: TaskTracker,
}

impl SimGateway {
    /// Serves a gateway on `listener` until `shutdown` is cancelled.
    pub async fn start(
        listener: tokio::net::TcpListener,
        config: GatewayConfig,
        shutdown: CancellationToken,
    ) -> Result<SimGateway, SimError> {
        let local_addr = listener.local_addr().map_err(SimError::LocalAddr)?;
        let (models, keys) = validate(&config)?;
        // The teams are the ones the keys name, as if created with `/team/new` beforehand.
        let teams: BTreeMap<String, TeamRecord> = keys
            .values()
            .filter_map(|record| record.team_id.clone())
            .map(|team_id| (team_id.clone(), TeamRecord::new(&team_id)))
            .collect();
        let shared = Arc::new(Shared::new(
            config.master_key,
            config.ignore_blocks,
            config.require_auth_for_metrics,
            models,
            keys,
            teams,
            local_addr,
        ));
        let app = router(Arc::clone(&shared));
        let tracker = TaskTracker::new();
        tracker.spawn(async move {
            let service = app.into_make_service_with_connect_info::<SocketAddr>();
            let served = axum::serve(listener, service)
                .with_graceful_shutdown(shutdown.cancelled_owned())
                .await;
            if let Err(source) = served {
                tracing::warn!(error = %SimError::Serve { addr: local_addr, source }, "simulated gateway stopped");
            }
        });
        tracker.close();
        Ok(SimGateway { shared, tracker })
    }

    /// The gateway's base URL, `http://127.0.0.1:PORT`.
    pub fn base_url(&self) -> String {
        format!("http://{}", self.shared.local_addr)
    }

    /// Makes `/key/block` and `/key/unblock` answer `delay` after they changed the key, as a
    /// slow admin API would: a client that dies meanwhile has changed the key without
    /// hearing so.
    pub fn set_admin_delay(&self, delay: std::time::Duration) {
        let millis = u64::try_from(delay.as_millis()).unwrap_or(u64::MAX);
        self.shared
            .admin_delay_ms
            .store(millis, std::sync::atomic::Ordering::Relaxed);
    }

    /// Every admin request received so far (the most recent 10 000), oldest first.
    pub fn admin_calls(&self) -> Vec<AdminCall> {
        self.shared.lock().admin_calls.iter().cloned().collect()
    }

    /// Whether the gateway holds the key as blocked; takes a raw `sk-` key or its hash.
    pub fn is_blocked(&self, raw_or_hashed_key: &str) -> bool {
        let hashed = Self::hashed_if_raw(raw_or_hashed_key);
        self.shared
            .lock()
            .keys
            .get(&hashed)
            .is_some_and(KeyRecord::is_blocked)
    }

    /// Whether the team is blocked; `None` for a team the gateway does not know.
    pub fn is_team_blocked(&self, team_id: &str) -> Option<bool> {
        self.shared
            .lock()
            .teams
            .get(team_id)
            .map(|team| team.blocked)
    }

    /// The hashed keys (`token`s) of a team's members, sorted.
    pub fn team_keys(&self, team_id: &str) -> Vec<String> {
        let mut tokens: Vec<String> = self
            .shared
            .lock()
            .keys
            .values()
            .filter(|record| record.team_id.as_deref() == Some(team_id))
            .map(|record| record.token.clone())
            .collect();
        tokens.sort();
        tokens
    }

    /// A model's general fallbacks as the router holds them; `None` when it has none.
    pub fn fallbacks(&self, model: &str) -> Option<Vec<String>> {
        self.fallbacks_of_type("general", model)
    }

    /// A model's fallbacks of one type (`general`, `context_window` or `content_policy`).
    pub fn fallbacks_of_type(&self, fallback_type: &str, model: &str) -> Option<Vec<String>> {
        self.shared
            .lock()
            .fallbacks
            .get(fallback_type)
            .and_then(|by_model| by_model.get(model))
            .cloned()
    }

    /// The spend in USD the gateway has recorded for a key; takes a raw key or its hash.
    pub fn key_spend_usd(&self, raw_or_hashed_key: &str) -> Option<f64> {
        let hashed = Self::hashed_if_raw(raw_or_hashed_key);
        self.shared
            .lock()
            .keys
            .get(&hashed)
            .map(|record| record.spend)
    }

    /// LiteLLM's `hashed_api_key` of a raw key: its lowercase SHA-256 hex.
    pub fn hashed(raw_key: &str) -> String {
        crate::sha256_hex(raw_key)
    }

    /// Waits until the server has stopped after `shutdown` was cancelled.
    pub async fn stopped(&self) {
        self.tracker.wait().await;
    }

    fn hashed_if_raw(key: &str) -> String {
        if key.starts_with("sk-") {
            Self::hashed(key)
        } else {
            key.to_owned()
        }
    }
}

/// The wall-clock time as pydantic writes a UTC datetime, for the other fakes.
pub(crate) fn iso8601_now() -> String {
    state::iso8601_utc(state::now_unix())
}

type Validated = (HashMap<String, ModelEntry>, HashMap<String, KeyRecord>);

fn validate(config: &GatewayConfig) -> Result<Validated, SimError> {
    let invalid = |message: String| Err(SimError::InvalidConfig(message));
    if !config.master_key.starts_with("sk-") || config.master_key.len() < 8 {
        return invalid(
            "the master key must start with `sk-` and be at least 8 characters".to_owned(),
        );
    }
    let mut models = HashMap::new();
    for model in &config.models {
        let prices = [model.input_cost_per_token, model.output_cost_per_token];
        if model.name.is_empty()
            || prices
                .iter()
                .any(|price| !price.is_finite() || *price < 0.0)
        {
            return invalid(format!(
                "model `{}` needs a name and finite, non-negative prices",
                model.name
            ));
        }
        let entry = ModelEntry {
            name: model.name.clone(),
            provider: model.provider.clone(),
            input_cost_per_token: model.input_cost_per_token,
            output_cost_per_token: model.output_cost_per_token,
            model_id: crate::sha256_hex(&model.name),
        };
        if models.insert(model.name.clone(), entry).is_some() {
            return invalid(format!("model `{}` is listed twice", model.name));
        }
    }
    let now = tokio::time::Instant::now();
    let mut keys = HashMap::new();
    for key in &config.keys {
        let shown = crate::abbreviate_key(&key.raw_key);
        if !key.raw_key.starts_with("sk-") || key.raw_key == config.master_key {
            return invalid(format!(
                "key `{shown}` must start with `sk-` and differ from the master key"
            ));
        }
        if key
            .max_budget_usd
            .is_some_and(|budget| !budget.is_finite() || budget < 0.0)
        {
            return invalid(format!("key `{shown}` has an invalid budget"));
        }
        let record = KeyRecord::new(
            &key.raw_key,
            &key.alias,
            &key.team,
            &key.user_id,
            key.max_budget_usd,
            now,
        );
        if keys.insert(record.token.clone(), record).is_some() {
            return invalid(format!("key `{shown}` is listed twice"));
        }
    }
    Ok((models, keys))
}

fn router(shared: Arc<Shared>) -> Router {
    Router::new()
        .route("/metrics", get(metrics_redirect))
        .route("/metrics/", get(metrics_exposition))
        .route("/chat/completions", post(chat::chat_completions))
        .route("/v1/chat/completions", post(chat::chat_completions))
        .route("/key/block", post(admin::block))
        .route("/key/unblock", post(admin::unblock))
        .route("/key/update", post(admin::update))
        .route("/key/info", get(admin::info))
        .route("/team/block", post(teams::block))
        .route("/team/unblock", post(teams::unblock))
        .route("/fallback", post(fallbacks::create))
        .route(
            "/fallback/{model}",
            get(fallbacks::get).delete(fallbacks::delete),
        )
        .fallback(errors::not_found)
        .method_not_allowed_fallback(errors::method_not_allowed)
        .layer(middleware::from_fn_with_state(
            Arc::clone(&shared),
            count_in_flight,
        ))
        .with_state(shared)
}

/// Keeps `litellm_in_flight_requests` up to date, the scrape itself included.
async fn count_in_flight(
    State(shared): State<Arc<Shared>>,
    request: Request,
    next: Next,
) -> Response {
    struct Guard(Arc<Shared>);
    impl Drop for Guard {
        fn drop(&mut self) {
            self.0.in_flight.fetch_sub(1, Ordering::Relaxed);
        }
    }
    shared.in_flight.fetch_add(1, Ordering::Relaxed);
    let _guard = Guard(shared);
    next.run(request).await
}

/// `GET /metrics`: LiteLLM mounts the exporter at `/metrics/`, so Starlette redirects.
async fn metrics_redirect(
    State(shared): State<Arc<Shared>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    uri: Uri,
    headers: HeaderMap,
) -> Response {
    if let Err(response) = authorize_metrics(&shared, peer, &uri, &headers) {
        return *response;
    }
    let host = headers
        .get(HOST)
        .and_then(|value| value.to_str().ok())
        .map_or_else(|| shared.local_addr.to_string(), str::to_owned);
    let location = format!("http://{host}/metrics/");
    match HeaderValue::from_str(&location) {
        Ok(location) => (StatusCode::TEMPORARY_REDIRECT, [(LOCATION, location)]).into_response(),
        Err(_) => (
            StatusCode::TEMPORARY_REDIRECT,
            [(LOCATION, HeaderValue::from_static("/metrics/"))],
        )
            .into_response(),
    }
}

/// `GET /metrics/`: the Prometheus exposition.
async fn metrics_exposition(
    State(shared): State<Arc<Shared>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    uri: Uri,
    headers: HeaderMap,
) -> Response {
    if let Err(response) = authorize_metrics(&shared, peer, &uri, &headers) {
        return *response;
    }
    let mut text = String::with_capacity(16 * 1024);
    let uptime_secs = shared.started.elapsed().as_secs_f64();
    families::render_process(&mut text, shared.started_unix, uptime_secs);
    shared.lock().metrics.render(&mut text);
    families::render_in_flight(&mut text, shared.in_flight.load(Ordering::Relaxed));
    (
        StatusCode::OK,
        [(CONTENT_TYPE, HeaderValue::from_static(PROMETHEUS_TEXT))],
        text,
    )
        .into_response()
}

/// LiteLLM's metrics auth middleware: the master key, unless auth is turned off.
fn authorize_metrics(
    shared: &Shared,
    peer: SocketAddr,
    uri: &Uri,
    headers: &HeaderMap,
) -> Result<(), Box<Response>> {
    if !shared.require_auth_for_metrics {
        return Ok(());
    }
    let mut inner = shared.lock();
    let (message, exception_class, hashed_api_key) =
        match auth::authenticate(shared, &inner, headers) {
            Ok(state::Caller::Master) => return Ok(()),
            Ok(state::Caller::Key(token)) => (
                "Authentication Error, Only proxy admin can read metrics.".to_owned(),
                "Exception",
                token,
            ),
            Err(failure) => (
                failure.message,
                failure.exception_class,
                failure.hashed_api_key,
            ),
        };
    let mut labels = chat::request_labels(peer, headers, uri.path());
    labels.set("hashed_api_key", hashed_api_key);
    inner.record_failure(&labels, exception_class, "None");
    let body = format!("Unauthorized access to metrics endpoint: {message}");
    Err(Box::new(
        (StatusCode::UNAUTHORIZED, Json(body)).into_response(),
    ))
}
