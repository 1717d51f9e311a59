//! The OpenAI fake's script: the replies a test lines up, and how one reply resolves once
//! its delays have passed and its closures have run.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use serde_json::Value;
use tokio_util::sync::CancellationToken;

use super::wire::Message;

/// How deep `Delay` and `Respond` may nest before the fake gives up on a reply.
const MAX_NESTING: usize = 32;

/// One scripted answer to a chat completion request.
#[derive(Clone)]
pub enum Reply {
    /// An assistant message with one tool call (id `call_<n>`), finish_reason `tool_calls`.
    ToolCall {
        /// The function's name.
        name: String,
        /// The raw JSON text the model "wrote"; it may be invalid JSON on purpose.
        arguments: String,
    },
    /// An assistant message whose content is this text, finish_reason `stop`.
    Content(String),
    /// An HTTP error with OpenAI's error body.
    Status {
        /// The HTTP status, 100 to 999.
        status: u16,
        /// The `Retry-After` header's value, if any.
        retry_after: Option<String>,
        /// The error's `message`.
        message: String,
    },
    /// Waits this long (in `tokio::time`, so paused time skips it), then gives `then`.
    Delay {
        /// How long to wait, in milliseconds.
        ms: u64,
        /// The reply after the wait.
        then: Box<Reply>,
    },
    /// Closes the connection without answering.
    Close,
    /// Computes the reply from the request body (to read the tool outputs in `messages`, say).
    Respond(Arc<dyn Fn(&Value) -> Reply + Send + Sync>),
}

impl Reply {
    /// A [`Reply::ToolCall`] of `name` with `arguments`.
    pub fn tool_call(name: impl Into<String>, arguments: impl Into<String>) -> Reply {
        Reply::ToolCall {
            name: name.into(),
            arguments: arguments.into(),
        }
    }

    /// A [`Reply::Content`] with `text`.
    pub fn content(text: impl Into<String>) -> Reply {
        Reply::Content(text.into())
    }

    /// A [`Reply::Status`] without `Retry-After`.
    pub fn status(status: u16, message: impl Into<String>) -> Reply {
        Reply::Status {
            status,
            retry_after: None,
            message: message.into(),
        }
    }

    /// A [`Reply::Respond`] computed by `respond`.
    pub fn respond(respond: impl Fn(&Value) -> Reply + Send + Sync + 'static) -> Reply {
        Reply::Respond(Arc::new(respond))
    }
}

impl fmt::Debug for Reply {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Reply::ToolCall { name, arguments } => formatter
                .debug_struct("ToolCall")
                .field("name", name)
                .field("arguments", arguments)
                .finish(),
            Reply::Content(text) => formatter.debug_tuple("Content").field(text).finish(),
            Reply::Status {
                status,
                retry_after,
                message,
            } => formatter
                .debug_struct("Status")
                .field("status", status)
                .field("retry_after", retry_after)
                .field("message", message)
                .finish(),
            Reply::Delay { ms, then } => formatter
                .debug_struct("Delay")
                .field("ms", ms)
                .field("then", then)
                .finish(),
            Reply::Close => formatter.write_str("Close"),
            Reply::Respond(_) => formatter.write_str("Respond(..)"),
        }
    }
}

/// What the fake answers: `replies` in order, one per valid request; once they are used up,
/// `then` for every later request (`None`: a 500 saying that the script ran out).
#[derive(Debug, Clone, Default)]
pub struct Script {
    /// The replies, in order.
    pub replies: Vec<Reply>,
    /// The reply to every request after `replies` are used up.
    pub then: Option<Reply>,
}

impl Script {
    /// `replies` in order, then 500s.
    pub fn new(replies: Vec<Reply>) -> Script {
        Script {
            replies,
            then: None,
        }
    }

    /// `reply` to every request.
    pub fn always(reply: Reply) -> Script {
        Script {
            replies: Vec::new(),
            then: Some(reply),
        }
    }
}

/// A reply once its delays have passed and its closures have run.
pub(super) enum Outcome {
    /// A message to answer with.
    Message(Message),
    /// An error to answer with.
    Status {
        status: u16,
        retry_after: Option<String>,
        message: String,
    },
    /// No answer: the connection is dropped.
    Close,
}

/// Resolves `reply` for the request `body`; a shutdown cuts a delay short and closes.
pub(super) async fn resolve(
    mut reply: Reply,
    body: &Value,
    shutdown: &CancellationToken,
) -> Outcome {
    for _ in 0..MAX_NESTING {
        reply = match reply {
            Reply::ToolCall { name, arguments } => {
                return Outcome::Message(Message::ToolCall { name, arguments });
            }
            Reply::Content(text) => return Outcome::Message(Message::Content(text)),
            Reply::Status {
                status,
                retry_after,
                message,
            } => {
                return Outcome::Status {
                    status,
                    retry_after,
                    message,
                };
            }
            Reply::Close => return Outcome::Close,
            Reply::Delay { ms, then } => {
                tokio::select! {
                    () = tokio::time::sleep(Duration::from_millis(ms)) => *then,
                    // A shutdown does not wait for a scripted stall.
                    () = shutdown.cancelled() => return Outcome::Close,
                }
            }
            Reply::Respond(respond) => respond(body),
        };
    }
    Outcome::Status {
        status: 500,
        retry_after: None,
        message: format!("The fake's script nests Delay and Respond more than {MAX_NESTING} deep."),
    }
}
