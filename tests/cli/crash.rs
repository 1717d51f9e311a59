//! `kill -9` in the middle of a remediation, then a restart: the step is neither lost nor
//! repeated.
//!
//! A simulated LiteLLM gateway whose `/key/block` changes the key at once but answers only
//! seconds later (a slow admin API). vigil detects a runaway key and sends the block; it is
//! killed with SIGKILL while the call is in flight, so the ledger holds the intent (`Execute`)
//! and not the outcome. The restarted daemon rebuilds the interrupted session from the
//! ledger, reads the key back, finds it blocked, records the step as done without calling
//! `/key/block` again, verifies that the burn stopped and resolves the incident. The ledger
//! verifies and the incident replays with every command matching.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use tokio_util::sync::CancellationToken;
use vigil_sim::{SimGateway, TrafficDriver};

use crate::ledger::read_rows;
use crate::serve::{Served, scrapes_ok};
use crate::support::{TempDir, incident_ids, repo_root, vigil};

/// Hang guards only: far above what each phase needs.
const PHASE_LIMIT: Duration = Duration::from_secs(120);

/// The slow admin API: long enough to kill vigil while the block is in flight.
const ADMIN_DELAY: Duration = Duration::from_secs(8);

/// Reads stderr until a line contains `needle`; panics with everything read at the limit.
pub(crate) fn wait_for_line(served: &mut Served, needle: &str) -> String {
    let deadline = Instant::now() + PHASE_LIMIT;
    while let Some(line) = served.next_line(deadline) {
        if line.contains(needle) {
            return line;
        }
    }
    panic!("vigil never logged `{needle}`:\n{}", served.stderr_text());
}

pub(crate) fn block_calls(gateway: &SimGateway) -> usize {
    gateway
        .admin_calls()
        .iter()
        .filter(|call| call.path == "/key/block")
        .count()
}

/// A simulated gateway with organic traffic on three keys, and a config for vigil.
pub(crate) struct Stack {
    pub(crate) runtime: tokio::runtime::Runtime,
    pub(crate) gateway: SimGateway,
    pub(crate) traffic: TrafficDriver,
    pub(crate) stop: CancellationToken,
    pub(crate) raw_keys: Vec<String>,
    pub(crate) config: PathBuf,
    pub(crate) ledger: PathBuf,
}

impl Stack {
    /// Starts the gateway and the traffic; vigil's config runs in `mode`, with `extra`
    /// appended to it.
    pub(crate) fn start(dir: &TempDir, mode: &str, extra: &str) -> Stack {
        Stack::start_with_policies(dir, mode, extra, &repo_root().join("policies"))
    }

    /// The same, with the policies of another folder.
    pub(crate) fn start_with_policies(
        dir: &TempDir,
        mode: &str,
        extra: &str,
        policies: &Path,
    ) -> Stack {
        let sim = crate::support::start_sim_stack(
            dir.path(),
            &["support-bot", "search-rag", "checkout-agent"],
        );
        let ledger = dir.join("ledger.db");
        let config = dir.join("vigil.yaml");
        let text = crate::support::sim_stack_config(&sim, &ledger, policies, mode, extra);
        std::fs::write(&config, text).expect("writing the config");
        Stack {
            runtime: sim.runtime,
            gateway: sim.gateway,
            traffic: sim.traffic,
            stop: sim.stop,
            raw_keys: sim.raw_keys,
            config,
            ledger,
        }
    }

    /// Waits until vigil has scraped eight times, then makes the third key run away.
    pub(crate) fn runaway_after_warmup(&self, served: &Served) -> String {
        served.poll("/metrics", "eight successful scrapes", |response| {
            response.status == 200 && scrapes_ok(&response.body) >= 8.0
        });
        let runaway = self.raw_keys[2].clone();
        self.traffic
            .set_rate(&runaway, 20.0, 1500)
            .expect("making the key run away");
        runaway
    }
}

impl Drop for Stack {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

#[test]
fn a_kill_9_in_the_middle_of_a_remediation_neither_loses_nor_repeats_the_step() {
    let dir = TempDir::new("crash");
    let stack = Stack::start(&dir, "autonomous", "");
    stack.gateway.set_admin_delay(ADMIN_DELAY);
    let (gateway, config, ledger, runtime) =
        (&stack.gateway, &stack.config, &stack.ledger, &stack.runtime);

    // First run: learn the baselines, then one key runs away; kill -9 mid-block.
    let mut first = Served::start(config, dir.path());
    let runaway = stack.runaway_after_warmup(&first);
    wait_for_line(&mut first, "carrying out action");
    // The gateway has the block (it changes the key first); its answer is seconds away.
    let deadline = Instant::now() + PHASE_LIMIT;
    while block_calls(gateway) == 0 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    let (code, first_stderr) = first.stop_with("KILL");
    assert_eq!(code, None, "vigil was killed by a signal:\n{first_stderr}");
    assert!(gateway.is_blocked(&runaway), "{first_stderr}");
    assert_eq!(block_calls(gateway), 1);

    // The ledger holds the intent and not the outcome, and still verifies.
    let shown = ledger.to_str().expect("a UTF-8 path");
    vigil(["ledger", "verify", "--db", shown], dir.path()).assert_success("verify after kill -9");
    let show = vigil(["ledger", "show", "--db", shown], dir.path());
    let rows = runtime.block_on(read_rows(ledger));
    let executes = |rows: &[crate::ledger::Row]| {
        rows.iter()
            .filter(|row| row.kind == "command" && row.payload.contains("\"type\":\"execute\""))
            .count()
    };
    assert_eq!(executes(&rows), 1, "{show}");
    assert!(
        !rows
            .iter()
            .any(|row| row.payload.contains("\"type\":\"action_finished\"")),
        "{show}"
    );
    let incident = incident_ids(&show.stdout)
        .into_iter()
        .next()
        .expect("an incident in the ledger");

    // Second run: resume, reconcile, verify, resolve.
    let mut second = Served::start(config, dir.path());
    wait_for_line(&mut second, "resuming it");
    wait_for_line(&mut second, "incident resolved");
    let (code, second_stderr) = second.stop_with("TERM");
    assert_eq!(code, Some(0), "{second_stderr}");
    assert_eq!(
        block_calls(gateway),
        1,
        "the block was repeated after the restart:\n{second_stderr}"
    );
    assert!(
        !gateway
            .admin_calls()
            .iter()
            .any(|call| call.path == "/key/unblock"),
        "{second_stderr}"
    );

    vigil(["ledger", "verify", "--db", shown], dir.path()).assert_success("verify after restart");
    let story = vigil(
        ["ledger", "show", "--db", shown, "--incident", &incident],
        dir.path(),
    );
    story.assert_success("ledger show of the incident");
    let rows = runtime.block_on(read_rows(ledger));
    assert_eq!(executes(&rows), 1, "{story}");
    let finished: Vec<&str> = rows
        .iter()
        .filter(|row| row.payload.contains("\"type\":\"action_finished\""))
        .map(|row| row.payload.as_str())
        .collect();
    assert_eq!(finished.len(), 1, "{story}");
    assert!(
        finished[0].contains("reconciled, not repeated"),
        "{}",
        finished[0]
    );
    assert!(
        rows.iter()
            .any(|row| row.kind == "session" && row.payload.contains("\"resumes\":")),
        "{story}"
    );
    assert!(
        rows.iter()
            .any(|row| row.payload.contains("\"record\":\"incident_resolved\"")),
        "{story}"
    );
    let replay = vigil(
        ["replay", "--db", shown, "--incident", &incident],
        dir.path(),
    );
    replay.assert_success("replay of the resumed incident");
}
