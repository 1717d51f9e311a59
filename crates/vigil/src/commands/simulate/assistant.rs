//! A scenario's assistant: the OpenAI fake on loopback playing the investigator (well or
//! badly, `assistant.play`), the real investigator talking to it over HTTP, and its tool calls
//! served from the simulated engine, as the daemon serves them. The answer comes back
//! [`ANSWER_MS`] of virtual time later.

use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use vigil_core::Timestamp;
use vigil_core::engine::Engine;
use vigil_core::investigation::tools::{ToolCall, ToolOutput};
use vigil_core::investigation::{AssistantConfig, InvestigationRequest};
use vigil_sim::{OpenAiFake, Play};

use super::scenario::RawAssistantPlay;
use crate::config::assistant::{AssistantSettings, StructuredOutput};
use crate::investigator::{Investigator, ToolServer};

/// When an investigation's answer reaches the engine, after it was asked for, in virtual
/// time: about what a real model takes (HolmesGPT's evaluation: a median of 25 to 82 s).
pub(super) const ANSWER_MS: i64 = 30_000;

/// The fake model and the investigator that talks to it.
pub(super) struct SimAssistant {
    fake: OpenAiFake,
    stop: CancellationToken,
    investigator: Arc<Investigator>,
}

impl Drop for SimAssistant {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

/// The bounds of a simulated investigation: short deadlines, so that the misbehaving plays
/// (a day's `Retry-After`, a minute-late answer) cost seconds of real time.
fn limits(play: &RawAssistantPlay) -> AssistantConfig {
    AssistantConfig {
        on: play.on,
        max_tool_calls: 4,
        max_turns: 6,
        max_tool_output_bytes: 8192,
        max_tokens_per_incident: 50_000,
        deadline_ms: 3_000,
        tolerance: 0.02,
    }
}

impl SimAssistant {
    /// Starts the fake playing `play` and turns the assistant on in `engine` (so that the
    /// session, and a `--ledger` run's ledger, records it).
    pub(super) async fn start(
        play: &RawAssistantPlay,
        engine: &mut vigil_core::engine::EngineConfig,
    ) -> anyhow::Result<SimAssistant> {
        let script = Play::parse(&play.play)
            .ok_or_else(|| anyhow::anyhow!("assistant.play `{}` is unknown", play.play))?
            .script();
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let stop = CancellationToken::new();
        let fake = OpenAiFake::start(listener, script, stop.clone()).await?;
        let settings = AssistantSettings {
            enabled: true,
            engine: limits(play),
            base_url: reqwest::Url::parse(&fake.base_url())?,
            model: "vigil-fake".to_owned(),
            api_key: None,
            structured_output: StructuredOutput::JsonSchema,
            tokens_per_day: 10_000_000,
            request_timeout: Duration::from_millis(1_500),
            max_completion_tokens: 800,
            concurrency: 2,
            breaker_failures: 3,
            breaker_cool_off: Duration::from_secs(300),
        };
        let investigator = Arc::new(crate::investigator::build(&settings)?);
        engine.assistant = Some(settings.engine);
        Ok(SimAssistant {
            fake,
            stop,
            investigator,
        })
    }

    /// Requests the fake answered, for the summary.
    pub(super) fn n_requests(&self) -> usize {
        self.fake.requests().len()
    }

    /// Runs one investigation to its end against the simulated engine's state at `now`.
    pub(super) async fn investigate(
        &self,
        engine: &Engine,
        request: &InvestigationRequest,
        now: Timestamp,
    ) -> crate::investigator::Finished {
        let tools = EngineTools { engine, now };
        self.investigator.investigate(request, &tools, now.0).await
    }
}

/// The tools, served from the simulated engine (no ledger: the simulator has none open).
struct EngineTools<'a> {
    engine: &'a Engine,
    now: Timestamp,
}

impl ToolServer for EngineTools<'_> {
    async fn serve(&self, call: ToolCall, max_bytes: usize) -> ToolOutput {
        self.engine.investigation_tool(&call, self.now, max_bytes)
    }
}
