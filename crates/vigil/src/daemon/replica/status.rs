//! What a replica tells the world about itself: `/readyz` (who leads), and the admin API's
//! gate (the leader's admin API, or where the leader is).

use std::sync::{Arc, Mutex, RwLock};

use axum::Router;
use axum::extract::{Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use tower::ServiceExt as _;
use vigil_ledger::replication::LeaseHolder;

/// A replica's role and what it last saw of the lease.
#[derive(Debug)]
pub(crate) struct ReplicaStatus {
    replica: String,
    url: String,
    seen: Mutex<Seen>,
}

#[derive(Debug, Default)]
struct Seen {
    /// Whether this replica leads, and in which epoch.
    leading: Option<i64>,
    /// The holder as last read (or as this replica took it).
    holder: Option<LeaseHolder>,
    /// Whether the database answered the last look at the lease.
    database_ok: bool,
    /// What went wrong last, for `/readyz`.
    last_error: Option<String>,
}

impl ReplicaStatus {
    pub(crate) fn new(replica: String, url: String) -> ReplicaStatus {
        ReplicaStatus {
            replica,
            url,
            seen: Mutex::new(Seen::default()),
        }
    }

    fn with<T>(&self, apply: impl FnOnce(&mut Seen) -> T) -> T {
        let mut guard = match self.seen.lock() {
            Ok(guard) => guard,
            Err(poisoned) => poisoned.into_inner(),
        };
        apply(&mut guard)
    }

    /// This replica took the lease of `epoch`.
    pub(crate) fn leading(&self, epoch: i64) {
        let holder = LeaseHolder {
            epoch,
            replica: self.replica.clone(),
            url: self.url.clone(),
            runs_for: std::time::Duration::ZERO,
        };
        self.with(|seen| {
            seen.leading = Some(epoch);
            seen.holder = Some(holder);
            seen.database_ok = true;
        });
    }

    /// This replica no longer leads.
    pub(crate) fn standing_by(&self) {
        self.with(|seen| seen.leading = None);
    }

    /// What a look at the lease found.
    pub(crate) fn observed(&self, holder: Result<Option<LeaseHolder>, String>) {
        self.with(|seen| match holder {
            Ok(holder) => {
                seen.holder = holder;
                seen.database_ok = true;
                seen.last_error = None;
            }
            Err(error) => {
                seen.database_ok = false;
                seen.last_error = Some(error);
            }
        });
    }

    /// The leader's id and URL, when one is known to hold a live lease (or this replica).
    fn leader(&self) -> Option<(String, String)> {
        self.with(|seen| {
            let holder = seen.holder.as_ref()?;
            let live = seen.leading.is_some() || !holder.runs_for.is_zero();
            live.then(|| (holder.replica.clone(), holder.url.clone()))
        })
    }

    /// `/readyz`'s answer: 200 while the database answers (a standby takes pushes too), with
    /// who leads.
    pub(crate) fn readiness(&self) -> (StatusCode, serde_json::Value) {
        let leader = self.leader();
        self.with(|seen| {
            let role = if seen.leading.is_some() { "leader" } else { "standby" };
            let epoch = seen.leading.or(seen.holder.as_ref().map(|holder| holder.epoch));
            let body = serde_json::json!({
                "ready": seen.database_ok,
                "role": role,
                "replica": self.replica,
                "epoch": epoch,
                "leader": leader.map(|(replica, url)| serde_json::json!({"replica": replica, "url": url})),
                "problem": seen.last_error,
            });
            let status = if seen.database_ok {
                StatusCode::OK
            } else {
                StatusCode::SERVICE_UNAVAILABLE
            };
            (status, body)
        })
    }
}

/// The leader's admin API while this replica leads; empty on a standby.
pub(crate) type AdminSlot = Arc<RwLock<Option<Router>>>;

/// What the admin gate needs.
pub(crate) struct Gate {
    pub(crate) slot: AdminSlot,
    pub(crate) status: Arc<ReplicaStatus>,
}

/// Every `/v1/admin/...` request: served by this replica's admin API while it leads, else
/// 503 with where the leader is (`leader` in the body, and the `Vigil-Leader` header), so
/// that a client retries there. Requests are not forwarded: credentials stay between the
/// client and the replica it chose.
/// A standby's answer to a console page: 503, as HTML, with a link to the leader's console.
fn standby_console(leader: Option<(String, String)>) -> Response {
    let e = crate::render::escape_html;
    let where_ = match &leader {
        Some((replica, url)) => format!(
            "The console answers on the leader, {}: <a href=\"{}/console/incidents\">{}</a>.",
            e(replica),
            e(url.trim_end_matches('/')),
            e(url)
        ),
        None => "No replica leads right now; try again in a moment.".to_owned(),
    };
    let body = crate::render::console::page(
        "Standby",
        None,
        None,
        &format!("<h1>This replica is a standby</h1><p role=\"status\">{where_}</p>"),
    );
    let mut response = (
        StatusCode::SERVICE_UNAVAILABLE,
        [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
        body,
    )
        .into_response();
    let headers = response.headers_mut();
    headers.insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(crate::daemon::console::CSP),
    );
    if let Some(url) = leader.and_then(|(_, url)| HeaderValue::from_str(&url).ok()) {
        headers.insert("vigil-leader", url);
    }
    response
}

pub(crate) async fn admin_gate(State(gate): State<Arc<Gate>>, request: Request) -> Response {
    let router = match gate.slot.read() {
        Ok(guard) => guard.clone(),
        Err(poisoned) => poisoned.into_inner().clone(),
    };
    if let Some(router) = router {
        return match router.oneshot(request).await {
            Ok(response) => response,
            Err(infallible) => match infallible {},
        };
    }
    let leader = gate.status.leader();
    let path = request.uri().path();
    if path == "/" || path.starts_with("/console/") {
        return standby_console(leader);
    }
    let body = serde_json::json!({
        "error": "this replica is a standby; the admin API answers on the leader",
        "leader": leader.as_ref().map(|(replica, url)| serde_json::json!({"replica": replica, "url": url})),
    });
    let mut response = (StatusCode::SERVICE_UNAVAILABLE, axum::Json(body)).into_response();
    let headers = response.headers_mut();
    headers.insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
    if let Some(url) = leader.and_then(|(_, url)| HeaderValue::from_str(&url).ok()) {
        headers.insert("vigil-leader", url);
    }
    response
}
