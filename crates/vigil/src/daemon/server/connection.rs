//! One accepted connection: the TLS handshake (bounded), then HTTP/1.1 through hyper, watched
//! by a timer that closes it when a request head is slow or the connection sits idle.
//!
//! hyper's own `header_read_timeout` is off: in hyper 1.x its timer also runs while a
//! keep-alive connection waits for its next request, so it cannot tell a slow head from an
//! idle connection. The watch here does: bytes read while no request is under way start the
//! head's timer (`header_read_timeout`); with no bytes and no request under way the idle
//! timer runs (`idle_timeout`, from the accept or from the end of the last response); while a
//! request is being handled neither runs (its body has its own deadline, see `request.rs`,
//! and handlers bound their own waits). The idle timer also counts from the last byte
//! written, so an answer still being written keeps its connection, while a client that stops
//! reading it is cut off after `idle_timeout` without progress: slow readers cannot hold
//! connections forever.

use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio::sync::Notify;
use tokio::time::Instant;
use tokio_rustls::TlsAcceptor;
use tokio_util::sync::CancellationToken;

use super::Limits;
use super::refusals::{CONNECTION_ROUTE, Reason};
use super::request::RequestService;
use super::tls::PeerInfo;
use crate::daemon::Telemetry;

/// What one connection's task needs.
pub(super) struct ConnectionTask {
    pub(super) router: axum::Router,
    pub(super) tls: Option<TlsAcceptor>,
    pub(super) limits: Limits,
    pub(super) telemetry: Arc<Telemetry>,
}

impl ConnectionTask {
    /// Serves the connection until it ends, times out, or the server stops: `graceful` lets
    /// a request under way finish, `hard_stop` drops the connection.
    pub(super) async fn run(
        self,
        stream: TcpStream,
        addr: SocketAddr,
        graceful: CancellationToken,
        hard_stop: CancellationToken,
    ) {
        // Answers go out as soon as they are written; they are small.
        let _ = stream.set_nodelay(true);
        let Some(acceptor) = self.tls.clone() else {
            let peer = PeerInfo {
                addr,
                client_certs: None,
            };
            self.serve(stream, peer, graceful, hard_stop).await;
            return;
        };
        let handshake = tokio::select! {
            () = graceful.cancelled() => return,
            handshake = tokio::time::timeout(
                self.limits.tls_handshake_timeout,
                acceptor.accept(stream),
            ) => handshake,
        };
        let edge = self.telemetry.edge();
        let stream = match handshake {
            Ok(Ok(stream)) => stream,
            Ok(Err(error)) => {
                edge.refused(
                    CONNECTION_ROUTE,
                    Reason::TlsHandshakeFailed,
                    Some(&error.to_string()),
                );
                return;
            }
            Err(_elapsed) => {
                edge.refused(CONNECTION_ROUTE, Reason::TlsHandshakeTimeout, None);
                return;
            }
        };
        let client_certs =
            stream.get_ref().1.peer_certificates().map(|chain| {
                Arc::new(chain.iter().map(|cert| cert.clone().into_owned()).collect())
            });
        let peer = PeerInfo { addr, client_certs };
        self.serve(stream, peer, graceful, hard_stop).await;
    }

    async fn serve<IO>(
        self,
        io: IO,
        peer: PeerInfo,
        graceful: CancellationToken,
        hard_stop: CancellationToken,
    ) where
        IO: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    {
        let activity = Arc::new(Activity::new());
        let io = TokioIo::new(WatchedIo {
            inner: io,
            activity: Arc::clone(&activity),
        });
        let service = RequestService {
            router: self.router,
            peer,
            activity: Arc::clone(&activity),
            body_read_timeout: self.limits.body_read_timeout,
        };
        let mut builder = hyper::server::conn::http1::Builder::new();
        builder.keep_alive(true).header_read_timeout(None);
        let connection = builder.serve_connection(io, service);
        tokio::pin!(connection);
        let edge = self.telemetry.edge();
        let mut stopping = false;
        loop {
            tokio::select! {
                served = connection.as_mut() => {
                    if let Err(error) = served
                        && (error.is_parse() || error.is_parse_too_large())
                    {
                        edge.refused(CONNECTION_ROUTE, Reason::BadRequestHead, None);
                    }
                    return;
                }
                () = graceful.cancelled(), if !stopping => {
                    // Idle connections close now; one with a request under way after its answer.
                    connection.as_mut().graceful_shutdown();
                    stopping = true;
                }
                () = hard_stop.cancelled() => return,
                expired = activity.expired(self.limits.header_read_timeout, self.limits.idle_timeout) => {
                    match expired {
                        Expired::Head => edge.refused(CONNECTION_ROUTE, Reason::HeaderTimeout, None),
                        Expired::Idle => edge.idle_connection_closed(),
                        Expired::Write => edge.refused(CONNECTION_ROUTE, Reason::SlowReader, None),
                    }
                    // Dropping the connection closes the socket.
                    return;
                }
            }
        }
    }
}

/// Which timer closed a connection.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Expired {
    /// A request head did not arrive whole in time.
    Head,
    /// Nothing happened for the idle timeout.
    Idle,
    /// An answer whose body was still being produced could not be written for the idle
    /// timeout (the client stopped reading).
    Write,
}

#[derive(Debug)]
struct ActivityState {
    /// Requests whose responses are not finished yet.
    in_flight: usize,
    /// Of those, the ones whose answer is ready and being written.
    answered: usize,
    /// When bytes were last written, or an answer last became ready.
    last_write: Instant,
    /// When the first byte of the next request head arrived, if one did.
    head_started: Option<Instant>,
    /// Since when the connection has had no request under way.
    idle_since: Instant,
}

/// What a connection is doing, shared by its I/O, its service and its watch.
#[derive(Debug)]
pub(super) struct Activity {
    state: Mutex<ActivityState>,
    changed: Notify,
}

impl Activity {
    fn new() -> Activity {
        Activity {
            state: Mutex::new(ActivityState {
                in_flight: 0,
                answered: 0,
                last_write: Instant::now(),
                head_started: None,
                idle_since: Instant::now(),
            }),
            changed: Notify::new(),
        }
    }

    fn with<T>(&self, apply: impl FnOnce(&mut ActivityState) -> T) -> T {
        let mut guard = match self.state.lock() {
            Ok(guard) => guard,
            Err(poisoned) => poisoned.into_inner(),
        };
        apply(&mut guard)
    }

    fn bytes_read(&self) {
        let started = self.with(|state| {
            let starts = state.in_flight == 0 && state.head_started.is_none();
            if starts {
                state.head_started = Some(Instant::now());
            }
            starts
        });
        if started {
            self.changed.notify_one();
        }
    }

    pub(super) fn request_started(&self) {
        self.with(|state| {
            state.in_flight += 1;
            state.head_started = None;
        });
        self.changed.notify_one();
    }

    /// A request's answer is ready: from now on only its writing is left.
    pub(super) fn answer_ready(&self) {
        self.with(|state| {
            state.answered += 1;
            state.last_write = Instant::now();
        });
        self.changed.notify_one();
    }

    fn bytes_written(&self) {
        self.with(|state| state.last_write = Instant::now());
    }

    /// A request is done with (`answered`: after [`Activity::answer_ready`]).
    pub(super) fn request_finished(&self, answered: bool) {
        self.with(|state| {
            state.in_flight = state.in_flight.saturating_sub(1);
            if answered {
                state.answered = state.answered.saturating_sub(1);
            }
            if state.in_flight == 0 {
                state.idle_since = Instant::now();
                state.head_started = None;
            }
        });
        self.changed.notify_one();
    }

    /// The running timer's deadline, if one runs.
    fn deadline(
        &self,
        header_read_timeout: std::time::Duration,
        idle_timeout: std::time::Duration,
    ) -> Option<(Instant, Expired)> {
        self.with(|state| {
            if state.in_flight > state.answered {
                // A handler is at work; it bounds its own waits.
                None
            } else if let (0, Some(started)) = (state.in_flight, state.head_started) {
                Some((started + header_read_timeout, Expired::Head))
            } else {
                // Nothing to do but write what is answered (hyper may still be flushing an
                // answer whose body it has taken), or wait for the next request.
                let since = state.idle_since.max(state.last_write);
                let expired = if state.in_flight > 0 {
                    Expired::Write
                } else {
                    Expired::Idle
                };
                Some((since + idle_timeout, expired))
            }
        })
    }

    /// Resolves when the running timer expires; the state is read afresh after every change,
    /// so a timer that expires as a request arrives does not close it.
    pub(super) async fn expired(
        &self,
        header_read_timeout: std::time::Duration,
        idle_timeout: std::time::Duration,
    ) -> Expired {
        loop {
            // Created before the state is read: a change after the read wakes it (a change
            // with nobody waiting leaves a permit), so none is missed.
            let changed = self.changed.notified();
            match self.deadline(header_read_timeout, idle_timeout) {
                None => changed.await,
                Some((deadline, expired)) => {
                    if deadline <= Instant::now() {
                        return expired;
                    }
                    tokio::select! {
                        () = changed => {}
                        () = tokio::time::sleep_until(deadline) => {}
                    }
                }
            }
        }
    }
}

/// The connection's byte stream, telling its [`Activity`] when bytes arrive.
struct WatchedIo<IO> {
    inner: IO,
    activity: Arc<Activity>,
}

impl<IO: AsyncRead + Unpin> AsyncRead for WatchedIo<IO> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let before = buf.filled().len();
        let polled = Pin::new(&mut this.inner).poll_read(cx, buf);
        if matches!(polled, Poll::Ready(Ok(()))) && buf.filled().len() > before {
            this.activity.bytes_read();
        }
        polled
    }
}

impl<IO: AsyncWrite + Unpin> AsyncWrite for WatchedIo<IO> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let polled = Pin::new(&mut this.inner).poll_write(cx, buf);
        if matches!(polled, Poll::Ready(Ok(n)) if n > 0) {
            this.activity.bytes_written();
        }
        polled
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let polled = Pin::new(&mut this.inner).poll_write_vectored(cx, bufs);
        if matches!(polled, Poll::Ready(Ok(n)) if n > 0) {
            this.activity.bytes_written();
        }
        polled
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }
}
