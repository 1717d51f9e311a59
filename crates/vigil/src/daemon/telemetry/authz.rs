//! The daemon's answerer for [`journal::step_with`]: Cedar, as [`journal::CedarAnswers`]
//! answers, with each decision timed into `vigil_authorization_seconds`.
//!
//! The answer is [`journal::answer`]'s, handed back at the step's `now`, so the daemon's
//! steps are the ones the simulator, replay and the conformance test take; only the clock
//! read around Cedar is added, and it never reaches the engine.

use vigil_core::Timestamp;
use vigil_core::engine::{Command, Event};
use vigil_policy::Authorizer;

use super::Telemetry;
use crate::journal;

/// Cedar answering every authorization request inline, timed.
pub(crate) struct TimedCedar<'step> {
    authorizer: &'step Authorizer,
    telemetry: &'step Telemetry,
}

impl<'step> TimedCedar<'step> {
    pub(crate) fn new(authorizer: &'step Authorizer, telemetry: &'step Telemetry) -> Self {
        TimedCedar {
            authorizer,
            telemetry,
        }
    }
}

impl journal::Answerer for TimedCedar<'_> {
    fn answer(&mut self, command: &Command, now: Timestamp) -> Option<(Event, Timestamp)> {
        let started = tokio::time::Instant::now();
        let answer = journal::answer(self.authorizer, command)?;
        self.telemetry.authorization_took(started.elapsed());
        Some((answer, now))
    }
}
