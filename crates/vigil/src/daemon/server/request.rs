//! One request through the listener: the [`PeerInfo`] and [`BodyTimer`] extensions, the body
//! read deadline, and the in-flight mark that keeps the connection's idle timer stopped until
//! the response has been written.

use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::http::{Request, Response};
use http_body::{Frame, SizeHint};
use hyper::body::Incoming;
use tower::ServiceExt as _;

use super::connection::Activity;
use super::tls::PeerInfo;

/// A request extension: set when the request's body did not arrive within the body read
/// timeout, so that the answer becomes 408 (see `refusals::account`).
#[derive(Clone, Debug, Default)]
pub(crate) struct BodyTimer(Arc<AtomicBool>);

impl BodyTimer {
    pub(crate) fn expired(&self) -> bool {
        self.0.load(Ordering::Relaxed)
    }

    fn expire(&self) {
        self.0.store(true, Ordering::Relaxed);
    }
}

/// The hyper service of one connection: hands each request to the router with its
/// extensions and deadline.
#[derive(Clone)]
pub(super) struct RequestService {
    pub(super) router: Router,
    pub(super) peer: PeerInfo,
    pub(super) activity: Arc<Activity>,
    pub(super) body_read_timeout: Duration,
}

impl hyper::service::Service<Request<Incoming>> for RequestService {
    type Response = Response<GuardedBody>;
    type Error = Infallible;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, Infallible>> + Send>>;

    fn call(&self, request: Request<Incoming>) -> Self::Future {
        // From here until the response body is dropped (written or abandoned), the
        // connection is busy, not idle.
        let in_flight = InFlight::start(Arc::clone(&self.activity));
        let timer = BodyTimer::default();
        let (mut parts, body) = request.into_parts();
        parts.extensions.insert(self.peer.clone());
        parts.extensions.insert(timer.clone());
        let deadline = tokio::time::Instant::now() + self.body_read_timeout;
        let body = TimedBody {
            inner: body,
            deadline: Box::pin(tokio::time::sleep_until(deadline)),
            timer,
        };
        let request = Request::from_parts(parts, Body::new(body));
        let router = self.router.clone();
        Box::pin(async move {
            let response = match router.oneshot(request).await {
                Ok(response) => response,
                Err(never) => match never {},
            };
            let mut in_flight = in_flight;
            in_flight.answered();
            Ok(response.map(|inner| GuardedBody {
                inner,
                _in_flight: in_flight,
            }))
        })
    }
}

/// A request body that fails once its deadline passes, marking its [`BodyTimer`].
struct TimedBody {
    inner: Incoming,
    deadline: Pin<Box<tokio::time::Sleep>>,
    timer: BodyTimer,
}

impl http_body::Body for TimedBody {
    type Data = Bytes;
    type Error = Box<dyn std::error::Error + Send + Sync>;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        let this = self.get_mut();
        if let Poll::Ready(frame) = Pin::new(&mut this.inner).poll_frame(cx) {
            return Poll::Ready(frame.map(|result| result.map_err(Into::into)));
        }
        if this.deadline.as_mut().poll(cx).is_ready() {
            this.timer.expire();
            return Poll::Ready(Some(Err("the request body did not arrive in time".into())));
        }
        Poll::Pending
    }

    fn is_end_stream(&self) -> bool {
        http_body::Body::is_end_stream(&self.inner)
    }

    fn size_hint(&self) -> SizeHint {
        http_body::Body::size_hint(&self.inner)
    }
}

/// A response body that keeps its request marked in flight until it is dropped.
pub(super) struct GuardedBody {
    inner: Body,
    _in_flight: InFlight,
}

impl http_body::Body for GuardedBody {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        Pin::new(&mut self.get_mut().inner).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        http_body::Body::is_end_stream(&self.inner)
    }

    fn size_hint(&self) -> SizeHint {
        http_body::Body::size_hint(&self.inner)
    }
}

/// Marks a request in flight on its connection while it lives.
struct InFlight {
    activity: Arc<Activity>,
    answered: bool,
}

impl InFlight {
    fn start(activity: Arc<Activity>) -> InFlight {
        activity.request_started();
        InFlight {
            activity,
            answered: false,
        }
    }

    /// The answer is ready; only its writing is left.
    fn answered(&mut self) {
        self.answered = true;
        self.activity.answer_ready();
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.activity.request_finished(self.answered);
    }
}
