//! The gateway's shared state: virtual keys, teams, fallbacks, metrics and the admin call
//! log, behind one mutex that is never held across an `.await`.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::net::SocketAddr;
use std::sync::atomic::AtomicU64;
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use tokio::time::Instant;

use super::AdminCall;
use super::families::Metrics;
use super::metrics::Labels;

/// How many admin calls the log keeps; older ones are dropped first.
pub(crate) const MAX_ADMIN_CALLS: usize = 10_000;

/// LiteLLM's key-level rate limits count over a one-minute window.
const RATE_WINDOW: Duration = Duration::from_secs(60);

/// A model deployment the gateway routes to, with its stable `model_id`.
#[derive(Debug, Clone)]
pub(crate) struct ModelEntry {
    pub(crate) name: String,
    pub(crate) provider: String,
    pub(crate) input_cost_per_token: f64,
    pub(crate) output_cost_per_token: f64,
    pub(crate) model_id: String,
}

/// Requests and tokens a key used in the current rate window.
#[derive(Debug, Clone, Copy)]
pub(crate) struct UsageWindow {
    started: Instant,
    pub(crate) requests: u64,
    pub(crate) tokens: u64,
}

impl UsageWindow {
    fn new(now: Instant) -> Self {
        Self {
            started: now,
            requests: 0,
            tokens: 0,
        }
    }

    /// Starts a new window when the current one is over.
    pub(crate) fn roll(&mut self, now: Instant) {
        if now.duration_since(self.started) >= RATE_WINDOW {
            *self = Self::new(now);
        }
    }
}

/// One virtual key, shaped after LiteLLM's `LiteLLM_VerificationToken` row.
#[derive(Debug, Clone)]
pub(crate) struct KeyRecord {
    pub(crate) token: String,
    pub(crate) key_name: String,
    pub(crate) key_alias: Option<String>,
    pub(crate) team_id: Option<String>,
    pub(crate) user_id: Option<String>,
    pub(crate) spend: f64,
    pub(crate) max_budget: Option<f64>,
    pub(crate) rpm_limit: Option<u64>,
    pub(crate) tpm_limit: Option<u64>,
    /// LiteLLM stores `null` until a key is first blocked or unblocked.
    pub(crate) blocked: Option<bool>,
    pub(crate) metadata: serde_json::Map<String, serde_json::Value>,
    pub(crate) created_at: String,
    pub(crate) updated_at: String,
    pub(crate) window: UsageWindow,
}

impl KeyRecord {
    pub(crate) fn new(
        raw_key: &str,
        alias: &str,
        team: &str,
        user_id: &str,
        max_budget: Option<f64>,
        now: Instant,
    ) -> Self {
        let created_at = iso8601_utc(now_unix());
        Self {
            token: crate::sha256_hex(raw_key),
            key_name: crate::abbreviate_key(raw_key),
            key_alias: non_empty(alias),
            team_id: non_empty(team),
            user_id: non_empty(user_id),
            spend: 0.0,
            max_budget,
            rpm_limit: None,
            tpm_limit: None,
            blocked: None,
            metadata: serde_json::Map::new(),
            updated_at: created_at.clone(),
            created_at,
            window: UsageWindow::new(now),
        }
    }

    pub(crate) fn is_blocked(&self) -> bool {
        self.blocked == Some(true)
    }
}

/// One team, shaped after LiteLLM's `LiteLLM_TeamTable` row. Its keys are the keys whose
/// `team_id` names it.
#[derive(Debug, Clone)]
pub(crate) struct TeamRecord {
    pub(crate) team_id: String,
    pub(crate) blocked: bool,
    pub(crate) created_at: String,
    pub(crate) updated_at: String,
}

impl TeamRecord {
    pub(crate) fn new(team_id: &str) -> Self {
        let created_at = iso8601_utc(now_unix());
        Self {
            team_id: team_id.to_owned(),
            blocked: false,
            updated_at: created_at.clone(),
            created_at,
        }
    }
}

fn non_empty(value: &str) -> Option<String> {
    (!value.is_empty()).then(|| value.to_owned())
}

/// Who made a request, once authenticated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Caller {
    /// The proxy's master key.
    Master,
    /// A virtual key, by its hashed token.
    Key(String),
}

/// Everything the mutex guards.
#[derive(Debug)]
pub(crate) struct Inner {
    pub(crate) keys: HashMap<String, KeyRecord>,
    pub(crate) teams: BTreeMap<String, TeamRecord>,
    /// Each model's fallbacks by type (`general`, `context_window`, `content_policy`), as
    /// `router_settings` holds them.
    pub(crate) fallbacks: BTreeMap<String, BTreeMap<String, Vec<String>>>,
    pub(crate) metrics: Metrics,
    pub(crate) admin_calls: VecDeque<AdminCall>,
    pub(crate) next_request_id: u64,
}

impl Inner {
    /// The labels that describe a caller, as LiteLLM fills them from `UserAPIKeyAuth`.
    pub(crate) fn caller_labels(&self, caller: &Caller, labels: &mut Labels) {
        match caller {
            Caller::Master => {
                labels
                    .set("hashed_api_key", "litellm_proxy_master_key")
                    .set("user", "default_user_id");
            }
            Caller::Key(token) => {
                labels.set("hashed_api_key", token.clone());
                if let Some(record) = self.keys.get(token) {
                    let or_none =
                        |value: &Option<String>| value.clone().unwrap_or_else(|| "None".to_owned());
                    labels
                        .set("api_key_alias", or_none(&record.key_alias))
                        .set("team", or_none(&record.team_id))
                        .set("team_alias", or_none(&record.team_id))
                        .set("user", or_none(&record.user_id));
                }
            }
        }
    }

    /// Counts a request the client did not get a success for, as LiteLLM's failure hook does.
    pub(crate) fn record_failure(
        &mut self,
        labels: &Labels,
        exception_class: &str,
        exception_status: &str,
    ) {
        let now = now_unix();
        let mut failed = labels.clone();
        failed
            .set("exception_class", exception_class)
            .set("exception_status", exception_status);
        self.metrics.proxy_failed_requests.inc(&failed, 1.0, now);
        let mut total = labels.clone();
        total.set("status_code", exception_status);
        self.metrics.proxy_total_requests.inc(&total, 1.0, now);
    }

    /// Appends to the admin call log, dropping the oldest entry when it is full.
    pub(crate) fn record_admin_call(&mut self, call: AdminCall) {
        if self.admin_calls.len() >= MAX_ADMIN_CALLS {
            self.admin_calls.pop_front();
        }
        self.admin_calls.push_back(call);
    }
}

/// State shared by every handler of one gateway.
#[derive(Debug)]
pub(crate) struct Shared {
    pub(crate) master_key: String,
    pub(crate) ignore_blocks: bool,
    pub(crate) require_auth_for_metrics: bool,
    pub(crate) models: HashMap<String, ModelEntry>,
    pub(crate) local_addr: SocketAddr,
    pub(crate) started_unix: f64,
    pub(crate) started: Instant,
    pub(crate) in_flight: AtomicU64,
    /// How long `/key/block` and `/key/unblock` wait, after changing the key, before they
    /// answer: a slow admin API, for crash tests.
    pub(crate) admin_delay_ms: AtomicU64,
    inner: Mutex<Inner>,
}

impl Shared {
    pub(crate) fn new(
        master_key: String,
        ignore_blocks: bool,
        require_auth_for_metrics: bool,
        models: HashMap<String, ModelEntry>,
        keys: HashMap<String, KeyRecord>,
        teams: BTreeMap<String, TeamRecord>,
        local_addr: SocketAddr,
    ) -> Self {
        Self {
            master_key,
            ignore_blocks,
            require_auth_for_metrics,
            models,
            local_addr,
            started_unix: now_unix(),
            started: Instant::now(),
            in_flight: AtomicU64::new(0),
            admin_delay_ms: AtomicU64::new(0),
            inner: Mutex::new(Inner {
                keys,
                teams,
                fallbacks: BTreeMap::new(),
                metrics: Metrics::new(),
                admin_calls: VecDeque::new(),
                next_request_id: 0,
            }),
        }
    }

    /// Locks the state. A handler that panicked cannot leave it half-written in a way that
    /// matters to a simulator, so a poisoned lock is simply taken over.
    pub(crate) fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// The wall-clock time in Unix seconds, as `_created` samples and timestamps carry it.
#[allow(
    clippy::disallowed_types,
    reason = "the simulator stands in for LiteLLM, which stamps its answers with the system's wall clock; those stamps are data vigil reads from outside, not time vigil keeps"
)]
pub(crate) fn now_unix() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|elapsed| elapsed.as_secs_f64())
        .unwrap_or(0.0)
}

/// Formats Unix seconds as pydantic writes a UTC datetime: `2026-11-23T13:17:02.123456Z`.
pub(crate) fn iso8601_utc(unix_secs: f64) -> String {
    #[expect(
        clippy::cast_possible_truncation,
        reason = "microseconds since 1970 fit in i64 until year 294247"
    )]
    let micros = (unix_secs * 1_000_000.0).round() as i64;
    let secs = micros.div_euclid(1_000_000);
    let micro_part = micros.rem_euclid(1_000_000);
    let days = secs.div_euclid(86_400);
    let second_of_day = secs.rem_euclid(86_400);
    let (year, month, day) = vigil_core::time::civil_from_days(days);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{micro_part:06}Z",
        second_of_day / 3600,
        (second_of_day % 3600) / 60,
        second_of_day % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_format_like_pydantic() {
        assert_eq!(iso8601_utc(0.0), "1970-01-01T00:00:00.000000Z");
        assert_eq!(
            iso8601_utc(1_795_435_617.884_853),
            "2026-11-23T12:06:57.884853Z"
        );
        assert_eq!(iso8601_utc(951_782_400.5), "2000-02-29T00:00:00.500000Z");
    }
}
