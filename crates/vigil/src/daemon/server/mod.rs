//! vigil's own HTTP server under `vigil serve`'s endpoints: the accept loop with the bounds
//! that `axum::serve` lacks.
//!
//! - **Connections:** at most `server.max_connections` open at once; one past it is closed
//!   as soon as it is accepted and counted (`vigil_http_refused_total{reason="connection_limit"}`).
//!   Unset, the limit is [`DEFAULT_MAX_CONNECTIONS`], or less so that it stays
//!   [`RESERVED_FILES`] under the open-file limit (`vigil serve` first raises the soft limit
//!   to the hard one, [`raise_open_file_limit`]).
//! - **Time:** a request head must arrive within `header_read_timeout` of its first byte, a
//!   body within `body_read_timeout` of its head (408), a TLS handshake within
//!   `tls_handshake_timeout`; a connection with nothing under way is closed after
//!   `idle_timeout` (`connection.rs` says why hyper's own timer is not used).
//! - **TLS:** optional, with optional client certificates; each request carries a
//!   [`PeerInfo`] (`tls.rs`).
//! - **Refusals** are counted by route and reason and summed up in one log line per interval
//!   (`refusals.rs`); pushes are limited by a layer on the intake routes (`push_limit.rs`).
//! - **Shutdown:** on `cancel` the listener closes; connections finish the request under way
//!   (idle ones close at once) within `shutdown_grace`, after which the rest are dropped.
//!
//! **Memory.** What the listener holds is bounded by these limits. A connection costs a few
//! KiB (hyper's 8 KiB read buffer to start with, the task): 2,000 connections holding half a
//! head raised the peak RSS by about 40 MiB, so [`CONNECTION_COST_BYTES`] is a safe figure.
//! The pushes dominate: at its peak a push holds its body, the tree of the one item being
//! parsed (payloads are checked whole, then parsed item by item: `vigil_core::intake`), the
//! typed payload, the event's JSON tree and canonical text for the ledger and SQLite's copy,
//! and the allocator keeps some of what was freed. Measured on a debug build with glibc, one
//! push raised the peak RSS by 7.4 times its body for an 11.2 MB eval batch (10,000
//! results), 4.2 times for an 11.9 MB OTLP export (10,000 GenAI spans of 17 attributes) and
//! 1.6 times for a 20.9 MB OTLP export of tiny attribute objects. An item's tree grows with
//! its objects (about 630 bytes each), and an item of more than 100,000 objects and arrays is
//! refused unparsed, so one tree stays under [`PUSH_COST_FIXED_BYTES`]. A push is counted at
//! `PUSH_COST_PER_BODY_BYTE x max_body_bytes + PUSH_COST_FIXED_BYTES`. At most
//! `intake.max_concurrent_pushes` are handled at once, and the engine's queue holds no more
//! than that, so the daemon's resident memory stays under
//!
//! `base + max_connections x CONNECTION_COST_BYTES
//!   + max_concurrent_pushes x (PUSH_COST_PER_BODY_BYTE x max_body_bytes + PUSH_COST_FIXED_BYTES)`
//!
//! where `base` is the daemon without pushes (about 45 MiB plus the series store): 1.4 GiB
//! with the defaults (4,096 connections, 4 pushes of 20 MiB); lower `max_body_bytes` or
//! `max_concurrent_pushes` for less. The bounded-edge test (`tests/cli/edge.rs`) checks it
//! with 2,000 slow connections and 16 maximum-size pushes at once
//! (`cargo test -p vigil --test cli edge:: -- --nocapture` prints the peak), and
//! `cargo run -p vigil-bench -- edge --vigil PATH` measures any build.

mod connection;
mod push_limit;
pub(crate) mod refusals;
mod request;
pub(crate) mod tls;

use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tokio_rustls::TlsAcceptor;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

pub(crate) use push_limit::{PushLimit, limit_pushes};
pub use refusals::EdgeStats;
pub use tls::PeerInfo;

use super::Telemetry;
use crate::config::ServerConfig;
use connection::ConnectionTask;
use refusals::{CONNECTION_ROUTE, Reason};

/// The connection limit when none is configured and the open-file limit allows it.
pub const DEFAULT_MAX_CONNECTIONS: usize = 4096;

/// File descriptors kept for everything but the listener's connections (the ledger, scrapes,
/// actions, pages, logs) when the connection limit is sized from the open-file limit.
pub const RESERVED_FILES: u64 = 256;

/// A push's peak memory grows by this many times its body (measured: see the module doc).
pub const PUSH_COST_PER_BODY_BYTE: u64 = 12;

/// And by the largest tree one item may become: `vigil_core::intake` refuses items of more
/// than 100,000 objects and arrays unparsed, at about 630 bytes each.
pub const PUSH_COST_FIXED_BYTES: u64 = 64 * 1024 * 1024;

/// A connection's memory at most, in bytes (measured: see the module doc).
pub const CONNECTION_COST_BYTES: u64 = 32 * 1024;

/// How long a failing `accept` waits before the next (out of file descriptors, say), so that
/// the loop does not spin.
const ACCEPT_PAUSE: Duration = Duration::from_millis(100);

/// How long connections still open after the grace get to notice they are dropped.
const HARD_STOP_WAIT: Duration = Duration::from_secs(1);

/// The listener's limits in force.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Limits {
    pub(crate) max_connections: usize,
    pub(crate) header_read_timeout: Duration,
    pub(crate) body_read_timeout: Duration,
    pub(crate) idle_timeout: Duration,
    pub(crate) tls_handshake_timeout: Duration,
    pub(crate) shutdown_grace: Duration,
}

impl Limits {
    /// The limits of `config`, with the connection limit sized from the open-file limit
    /// when the config does not set one.
    pub(crate) fn new(config: &ServerConfig, shutdown_grace: Duration) -> Limits {
        Limits {
            max_connections: config
                .max_connections
                .unwrap_or_else(|| default_max_connections(open_file_limit())),
            header_read_timeout: config.header_read_timeout,
            body_read_timeout: config.body_read_timeout,
            idle_timeout: config.idle_timeout,
            tls_handshake_timeout: config.tls_handshake_timeout,
            shutdown_grace,
        }
    }
}

/// The default connection limit under an open-file limit of `open_files` (`None`: unknown).
pub(crate) fn default_max_connections(open_files: Option<u64>) -> usize {
    match open_files {
        Some(limit) => {
            let room = limit.saturating_sub(RESERVED_FILES).max(1);
            usize::try_from(room).map_or(DEFAULT_MAX_CONNECTIONS, |room| {
                room.min(DEFAULT_MAX_CONNECTIONS)
            })
        }
        None => DEFAULT_MAX_CONNECTIONS,
    }
}

/// The process's soft open-file limit, when it can be read.
pub(crate) fn open_file_limit() -> Option<u64> {
    #[cfg(unix)]
    {
        rlimit::Resource::NOFILE
            .get()
            .ok()
            .map(|(soft, _hard)| soft)
    }
    #[cfg(not(unix))]
    {
        None
    }
}

/// Raises the soft open-file limit to the hard one (`vigil serve` calls it first thing), so
/// that the default connection limit has room; returns the soft limit in force after.
pub fn raise_open_file_limit() -> std::io::Result<u64> {
    #[cfg(unix)]
    {
        rlimit::increase_nofile_limit(u64::MAX)
    }
    #[cfg(not(unix))]
    {
        Err(std::io::Error::other("not supported on this platform"))
    }
}

/// Everything the listener serves with.
pub(crate) struct Server {
    pub(crate) listener: TcpListener,
    pub(crate) router: axum::Router,
    pub(crate) tls: Option<TlsAcceptor>,
    pub(crate) limits: Limits,
    pub(crate) telemetry: Arc<Telemetry>,
}

impl Server {
    /// Accepts connections until `cancel` fires, then stops as the module doc says.
    pub(crate) async fn run(self, cancel: CancellationToken) {
        let Server {
            listener,
            router,
            tls,
            limits,
            telemetry,
        } = self;
        let edge = telemetry.edge();
        edge.set_max_connections(limits.max_connections);
        let open = Arc::new(Semaphore::new(limits.max_connections));
        let connections = TaskTracker::new();
        let hard_stop = CancellationToken::new();
        loop {
            let accepted = tokio::select! {
                () = cancel.cancelled() => break,
                accepted = listener.accept() => accepted,
            };
            let (stream, addr) = match accepted {
                Ok(accepted) => accepted,
                Err(error) => {
                    // A connection that was reset before it was accepted is no one's concern;
                    // anything else (out of file descriptors) is counted and waited out.
                    if !matches!(
                        error.kind(),
                        std::io::ErrorKind::ConnectionAborted | std::io::ErrorKind::ConnectionReset
                    ) {
                        edge.refused(
                            CONNECTION_ROUTE,
                            Reason::AcceptFailed,
                            Some(&error.to_string()),
                        );
                        tokio::select! {
                            () = cancel.cancelled() => break,
                            () = tokio::time::sleep(ACCEPT_PAUSE) => {}
                        }
                    }
                    continue;
                }
            };
            let Ok(permit) = Arc::clone(&open).try_acquire_owned() else {
                edge.refused(CONNECTION_ROUTE, Reason::ConnectionLimit, None);
                // Dropping the stream closes it.
                drop(stream);
                continue;
            };
            edge.connection_opened();
            let task = ConnectionTask {
                router: router.clone(),
                tls: tls.clone(),
                limits,
                telemetry: Arc::clone(&telemetry),
            };
            let (graceful, hard_stop, telemetry) =
                (cancel.clone(), hard_stop.clone(), Arc::clone(&telemetry));
            connections.spawn(async move {
                task.run(stream, addr, graceful, hard_stop).await;
                telemetry.edge().connection_closed();
                drop(permit);
            });
        }
        // No more connections: the port closes now, not when the daemon exits.
        drop(listener);
        connections.close();
        if tokio::time::timeout(limits.shutdown_grace, connections.wait())
            .await
            .is_err()
        {
            tracing::warn!(
                n_connections = connections.len(),
                "HTTP connections still busy after the grace period; closing them"
            );
            hard_stop.cancel();
            let _ = tokio::time::timeout(HARD_STOP_WAIT, connections.wait()).await;
        }
    }
}

#[cfg(test)]
mod tests;
