//! Three `vigil serve` replicas on one PostgreSQL ledger, through the real binaries, against
//! the simulated gateway and under continuous pushes from several clients:
//!
//! 1. `kill -9` of the leader while its block of a runaway key is in flight;
//! 2. `SIGSTOP` of the (new) leader past its lease, a standby takes over, then `SIGCONT`;
//! 3. a restart of PostgreSQL under load.
//!
//! After every fault: the ledger verifies, as one chain (its epochs never go back along the
//! seqs); every acknowledged push is in it; the block reached the gateway once (the new
//! leader read the key back); the incident resolves and replays with every command matching.
//! The takeover times and what the paused leader did when it woke are printed.
//!
//! The test runs its own PostgreSQL cluster (the machine's PostgreSQL binaries, `initdb` into
//! a temporary folder, a free loopback port), so that restarting it disturbs no other test.
//! Without PostgreSQL's binaries it says it skipped, except under `CI`, where it fails.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use sqlx::{Connection as _, PgConnection};

use crate::crash::{Stack, block_calls};
use crate::serve::{Served, scrapes_ok};
use crate::support::{
    TempDir, http_get, http_post_json, repo_root, vigil, vigil_command, write_secret,
};

/// Hang guards only: far above what each phase needs.
const PHASE_LIMIT: Duration = Duration::from_secs(120);

/// The lease the replicas hold (short, so that the test is quick).
const LEASE_SECS: u64 = 8;

/// The schema of the shared ledger.
const SCHEMA: &str = "failover";

const INTAKE_TOKEN: &str = "failover-intake-token-0123456789abcdef0123456789abcdef";

/// A PostgreSQL cluster of the test's own, on a free loopback port.
struct OwnPostgres {
    bin: PathBuf,
    data: PathBuf,
    port: u16,
    /// Prefix for commands that must run as the `postgres` user (when the test runs as root).
    run_as: Option<&'static str>,
    _dir: TempDir,
}

impl OwnPostgres {
    /// `None` (after saying so) when PostgreSQL's binaries are not on this machine.
    fn start() -> Option<OwnPostgres> {
        let bin = std::fs::read_dir("/usr/lib/postgresql")
            .ok()
            .and_then(|versions| {
                versions
                    .filter_map(Result::ok)
                    .map(|entry| entry.path().join("bin"))
                    .find(|bin| bin.join("initdb").is_file())
            });
        let Some(bin) = bin else {
            assert!(
                std::env::var_os("CI").is_none(),
                "PostgreSQL's server binaries (initdb, pg_ctl) are missing but CI is set: the failover test must run"
            );
            eprintln!("skipping the failover test: PostgreSQL's server binaries are not installed");
            return None;
        };
        let dir = TempDir::new("failover-pg");
        let data = dir.join("data");
        let root = Command::new("id")
            .arg("-u")
            .output()
            .is_ok_and(|output| String::from_utf8_lossy(&output.stdout).trim() == "0");
        // initdb refuses to run as root: run the cluster as `postgres`.
        let run_as = root.then_some("postgres");
        if root {
            let status = Command::new("chown")
                .args(["-R", "postgres:postgres"])
                .arg(dir.path())
                .status()
                .expect("running chown");
            assert!(status.success(), "chown of the cluster's folder failed");
        }
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|listener| listener.local_addr())
            .expect("a free port")
            .port();
        let cluster = OwnPostgres {
            bin,
            data,
            port,
            run_as,
            _dir: dir,
        };
        let data = cluster.data.to_str().expect("a UTF-8 path").to_owned();
        cluster.run(
            "initdb",
            &["-D", &data, "-A", "trust", "-U", "postgres", "--no-sync"],
        );
        cluster.pg_ctl("start");
        Some(cluster)
    }

    /// `program` of PostgreSQL's, as the cluster's owner.
    fn command(&self, program: &str) -> Command {
        let program = self.bin.join(program);
        let mut command = match self.run_as {
            Some(user) => {
                let mut command = Command::new("runuser");
                command.args(["-u", user, "--"]).arg(&program);
                command
            }
            None => Command::new(&program),
        };
        command.current_dir("/");
        command
    }

    fn run(&self, name: &str, args: &[&str]) {
        let program = self.bin.join(name);
        let output = self
            .command(name)
            .args(args)
            .output()
            .unwrap_or_else(|error| panic!("running {}: {error}", program.display()));
        assert!(
            output.status.success(),
            "{} {args:?} failed:\n{}\n{}",
            program.display(),
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
    }

    /// `pg_ctl start|restart|stop`, waiting for it.
    fn pg_ctl(&self, action: &str) {
        let data = self.data.to_str().expect("a UTF-8 path").to_owned();
        let options = format!(
            "-p {} -c listen_addresses=127.0.0.1 -k {}",
            self.port,
            self.data.display()
        );
        let log = self.data.join("server.log");
        let log = log.to_str().expect("a UTF-8 path").to_owned();
        self.run(
            "pg_ctl",
            &[
                "-D", &data, "-o", &options, "-l", &log, "-m", "fast", "-w", "-t", "60", action,
            ],
        );
    }

    fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/postgres", self.port)
    }
}

impl Drop for OwnPostgres {
    fn drop(&mut self) {
        let data = self.data.to_str().unwrap_or_default().to_owned();
        let _ = self
            .command("pg_ctl")
            .args(["-D", &data, "-m", "immediate", "-w", "stop"])
            .output();
    }
}

/// One replica process and its id.
struct Replica {
    id: String,
    served: Served,
    /// Stopped with SIGSTOP: its endpoints do not answer.
    stopped: bool,
}

fn start_replica(config: &Path, dir: &Path, id: &str, database_url: &str) -> Replica {
    let mut command = vigil_command(
        [
            "serve".as_ref(),
            "--config".as_ref(),
            config.as_os_str(),
            "--listen".as_ref(),
            "127.0.0.1:0".as_ref(),
        ],
        dir,
    );
    command
        .env("VIGIL_REPLICA_ID", id)
        .env("VIGIL_FAILOVER_DATABASE_URL", database_url)
        .env("RUST_LOG", "info");
    Replica {
        id: id.to_owned(),
        served: Served::spawn(command),
        stopped: false,
    }
}

/// The addresses of the replicas that answer.
fn live(replicas: &[Replica]) -> Vec<SocketAddr> {
    replicas
        .iter()
        .filter(|replica| !replica.stopped)
        .map(|replica| replica.served.address)
        .collect()
}

/// The push markers a payload names (`fo-client<C>-push<N>`).
fn markers(payload: &str) -> impl Iterator<Item = &str> {
    payload.match_indices("fo-client").map(|(at, _)| {
        let rest = &payload[at..];
        &rest[..rest.find('"').unwrap_or(rest.len())]
    })
}

/// The role `/readyz` of `address` reports, if it answers.
fn role(address: SocketAddr) -> Option<String> {
    let response = http_get(address, "/readyz").ok()?;
    let body: serde_json::Value = serde_json::from_str(&response.body).ok()?;
    body.get("role")?.as_str().map(str::to_owned)
}

/// Waits for one of the running replicas (not `excluded`) to say it leads; its index.
fn wait_for_leader(replicas: &[Replica], excluded: Option<usize>) -> usize {
    let deadline = Instant::now() + PHASE_LIMIT;
    while Instant::now() < deadline {
        for (index, replica) in replicas.iter().enumerate() {
            if replica.stopped || Some(index) == excluded {
                continue;
            }
            if role(replica.served.address).as_deref() == Some("leader") {
                return index;
            }
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!("no replica took the lead");
}

fn signal(replica: &Replica, name: &str) {
    let sent = Command::new("kill")
        .args([format!("-{name}"), replica.served.child.id().to_string()])
        .status()
        .expect("running kill");
    assert!(sent.success(), "kill -{name} failed");
}

/// Clients pushing eval results, each marked with a unique run id, to the running replicas
/// in turn; every push a replica acknowledged is remembered.
struct Pushers {
    stop: Arc<AtomicBool>,
    acked: Arc<Mutex<Vec<String>>>,
    targets: Arc<Mutex<Vec<SocketAddr>>>,
    threads: Vec<std::thread::JoinHandle<()>>,
}

impl Pushers {
    fn start(n_clients: usize, targets: Vec<SocketAddr>) -> Pushers {
        let stop = Arc::new(AtomicBool::new(false));
        let acked = Arc::new(Mutex::new(Vec::new()));
        let targets = Arc::new(Mutex::new(targets));
        let threads = (0..n_clients)
            .map(|client| {
                let (stop, acked, targets) =
                    (Arc::clone(&stop), Arc::clone(&acked), Arc::clone(&targets));
                std::thread::spawn(move || {
                    // Bounded: the flag ends it, and so does the count.
                    for n in 0..100_000_usize {
                        if stop.load(Ordering::Relaxed) {
                            return;
                        }
                        let target = {
                            let targets = targets.lock().unwrap();
                            targets.get((client + n) % targets.len().max(1)).copied()
                        };
                        let Some(target) = target else { return };
                        let marker = format!("fo-client{client}-push{n}");
                        let body = serde_json::json!({"results": [{
                            "suite": "failover", "case": format!("case-{}", n % 5),
                            "passed": n % 7 != 0, "model": "gpt-4o-mini",
                            "prompt_name": "support", "prompt_version": "1",
                            "run_id": marker,
                        }]})
                        .to_string();
                        if let Ok(response) =
                            http_post_json(target, "/v1/push/evals", Some(INTAKE_TOKEN), &body)
                            && (200..300).contains(&response.status)
                        {
                            acked.lock().unwrap().push(marker);
                        }
                        std::thread::sleep(Duration::from_millis(40));
                    }
                })
            })
            .collect();
        Pushers {
            stop,
            acked,
            targets,
            threads,
        }
    }

    fn set_targets(&self, targets: Vec<SocketAddr>) {
        *self.targets.lock().unwrap() = targets;
    }

    fn n_acked(&self) -> usize {
        self.acked.lock().unwrap().len()
    }

    fn finish(self) -> Vec<String> {
        self.stop.store(true, Ordering::Relaxed);
        for thread in self.threads {
            thread.join().expect("a push client");
        }
        std::mem::take(&mut *self.acked.lock().unwrap())
    }
}

fn write_config(dir: &TempDir, stack: &Stack) -> PathBuf {
    let root = repo_root();
    let token_file = dir.join("intake-token");
    write_secret(&token_file, INTAKE_TOKEN);
    let stack_config = std::fs::read_to_string(&stack.config).expect("the stack's config");
    // The stack's sources and detectors, on the shared PostgreSQL ledger, replicated.
    let start = stack_config
        .find("sources:")
        .expect("sources in the stack's config");
    let end = stack_config
        .find("pager:")
        .expect("a pager in the stack's config");
    // Admin calls get 5 s (the gateway answers blocks after 4 s), under the lease.
    let sources_and_detectors =
        stack_config[start..end].replace("timeout_secs: 30", "timeout_secs: 5");
    let config = format!(
        r#"mode: autonomous
environment: test
ledger:
  postgres_url: {{ env: VIGIL_FAILOVER_DATABASE_URL }}
  postgres_schema: {SCHEMA}
policies_dir: "{policies}"
runbooks_dir: "{runbooks}"
replication:
  lease_secs: {LEASE_SECS}
  renew_every_secs: 1
intake:
  bearer_token: {{ file: "{token_file}" }}
{sources_and_detectors}pager:
  kind: log
"#,
        policies = root.join("policies").display(),
        runbooks = root.join("examples/demo/runbooks").display(),
        token_file = token_file.display(),
    );
    let path = dir.join("replicated.yaml");
    std::fs::write(&path, config).expect("writing the config");
    path
}

/// What the shared ledger holds, read with SQL.
struct LedgerRows {
    /// (seq, kind, epoch, payload), in seq order.
    rows: Vec<(i64, String, Option<i64>, String)>,
    inbox: i64,
}

/// Both in one snapshot: read one after the other, a push consumed in between would be in
/// neither (the entries read before its append, the inbox counted after it).
async fn read_ledger(url: &str) -> LedgerRows {
    let mut connection = PgConnection::connect(url).await.expect("connecting");
    sqlx::query("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
        .execute(&mut connection)
        .await
        .expect("beginning a snapshot");
    let rows = sqlx::query_as(
        "SELECT seq, kind, epoch, payload FROM failover.ledger_entries ORDER BY seq",
    )
    .fetch_all(&mut connection)
    .await
    .expect("reading the entries");
    let inbox = sqlx::query_scalar("SELECT count(*) FROM failover.ledger_inbox")
        .fetch_one(&mut connection)
        .await
        .expect("counting the inbox");
    sqlx::query("COMMIT")
        .execute(&mut connection)
        .await
        .expect("ending the snapshot");
    let _ = connection.close().await;
    LedgerRows { rows, inbox }
}

#[test]
fn three_replicas_survive_kill_9_sigstop_and_a_database_restart() {
    let Some(postgres) = OwnPostgres::start() else {
        return;
    };
    let url = postgres.url();
    let dir = TempDir::new("failover");
    let stack = Stack::start(&dir, "autonomous", "");
    // The block changes the key at once and answers seconds later: the leader is killed with
    // the call in flight.
    stack.gateway.set_admin_delay(Duration::from_secs(4));
    let config = write_config(&dir, &stack);
    let read = |url: &str| stack.runtime.block_on(read_ledger(url));

    let mut replicas: Vec<Replica> = ["r1", "r2", "r3"]
        .iter()
        .map(|id| start_replica(&config, dir.path(), id, &url))
        .collect();
    let pushers = Pushers::start(
        3,
        replicas
            .iter()
            .map(|replica| replica.served.address)
            .collect(),
    );
    let mut report = Vec::new();

    // The first leader learns the baselines; then a key runs away.
    let first = wait_for_leader(&replicas, None);
    replicas[first]
        .served
        .poll("/metrics", "eight successful scrapes", |response| {
            response.status == 200 && scrapes_ok(&response.body) >= 8.0
        });
    let runaway = stack.raw_keys[2].clone();
    stack
        .traffic
        .set_rate(&runaway, 20.0, 1500)
        .expect("making the key run away");
    let deadline = Instant::now() + PHASE_LIMIT;
    while block_calls(&stack.gateway) == 0 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(
        block_calls(&stack.gateway),
        1,
        "the block never reached the gateway"
    );

    // Fault 1: kill -9 the leader with the block in flight.
    let killed_at = Instant::now();
    signal(&replicas[first], "KILL");
    replicas[first].stopped = true;
    pushers.set_targets(live(&replicas));
    let second = wait_for_leader(&replicas, None);
    let takeover = killed_at.elapsed();
    report.push(format!(
        "kill -9 of {}: {} leads after {} ms",
        replicas[first].id,
        replicas[second].id,
        takeover.as_millis()
    ));
    // It resumed from the engine it kept warm while standing by, not from the first entry
    // (the warm line comes before the resumption's own).
    let deadline = Instant::now() + PHASE_LIMIT;
    let mut resumed = None;
    while let Some(line) = replicas[second].served.next_line(deadline) {
        if line.contains("engine kept warm") || line.contains("resuming it") {
            resumed = Some(line);
            break;
        }
    }
    let resumed = resumed.expect("the new leader never said that it resumed the last term");
    assert!(
        resumed.contains("engine kept warm"),
        "the new leader rebuilt the last term from scratch: {resumed}"
    );
    let deadline = Instant::now() + PHASE_LIMIT;
    let resolved = loop {
        let ledger = read(&url);
        if ledger
            .rows
            .iter()
            .any(|(_, _, _, payload)| payload.contains("\"record\":\"incident_resolved\""))
        {
            break ledger;
        }
        assert!(Instant::now() < deadline, "the incident never resolved");
        std::thread::sleep(Duration::from_millis(200));
    };
    assert!(
        resolved
            .rows
            .iter()
            .any(|(_, _, _, payload)| payload.contains("reconciled, not repeated")),
        "the new leader did not reconcile the block"
    );
    assert_eq!(
        block_calls(&stack.gateway),
        1,
        "the block was repeated after the takeover"
    );
    assert!(stack.gateway.is_blocked(&runaway));

    // Fault 2: SIGSTOP the leader past its lease; a standby takes over; SIGCONT.
    let acked_before_stop = pushers.n_acked();
    let stopped_at = Instant::now();
    signal(&replicas[second], "STOP");
    replicas[second].stopped = true;
    pushers.set_targets(live(&replicas));
    let third = wait_for_leader(&replicas, None);
    report.push(format!(
        "SIGSTOP of {}: {} leads after {} ms",
        replicas[second].id,
        replicas[third].id,
        stopped_at.elapsed().as_millis()
    ));
    // Past the lease, then wake it.
    std::thread::sleep(Duration::from_secs(LEASE_SECS));
    signal(&replicas[second], "CONT");
    replicas[second].stopped = false;
    let deadline = Instant::now() + PHASE_LIMIT;
    let mut woke = Vec::new();
    while let Some(line) = replicas[second].served.next_line(deadline) {
        if line.contains("stepping down") || line.contains("fenced") || line.contains("term ended")
        {
            woke.push(line.clone());
        }
        if line.contains("term ended") {
            break;
        }
    }
    assert!(
        !woke.is_empty(),
        "the woken leader said nothing of its term ending"
    );
    let deadline = Instant::now() + PHASE_LIMIT;
    while role(replicas[second].served.address).as_deref() != Some("standby") {
        assert!(Instant::now() < deadline, "the woken leader never stood by");
        std::thread::sleep(Duration::from_millis(50));
    }
    report.push(format!(
        "{} woke and: {}",
        replicas[second].id,
        woke.join(" | ")
    ));
    pushers.set_targets(live(&replicas));
    assert!(
        pushers.n_acked() > acked_before_stop,
        "no push was acknowledged meanwhile"
    );

    // Fault 3: restart PostgreSQL under load.
    let restarted_at = Instant::now();
    postgres.pg_ctl("restart");
    let acked_at_restart = pushers.n_acked();
    let deadline = Instant::now() + PHASE_LIMIT;
    while pushers.n_acked() < acked_at_restart + 20 {
        assert!(
            Instant::now() < deadline,
            "pushes were not acknowledged after the restart"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let leader = wait_for_leader(&replicas, None);
    report.push(format!(
        "PostgreSQL restarted: {} leads, pushes acknowledged again, {} ms after the restart began",
        replicas[leader].id,
        restarted_at.elapsed().as_millis()
    ));

    // Every acknowledged push reaches the chain.
    let acked = pushers.finish();
    let deadline = Instant::now() + PHASE_LIMIT;
    let ledger = loop {
        let ledger = read(&url);
        if ledger.inbox == 0 {
            break ledger;
        }
        assert!(Instant::now() < deadline, "the inbox was never drained");
        std::thread::sleep(Duration::from_millis(200));
    };
    // How often each push is in the chain: every acknowledged one, once.
    let mut counts: std::collections::BTreeMap<&str, usize> = std::collections::BTreeMap::new();
    for (_, kind, _, payload) in &ledger.rows {
        if kind == "event" {
            for marker in markers(payload) {
                *counts.entry(marker).or_default() += 1;
            }
        }
    }
    let lost: Vec<&String> = acked
        .iter()
        .filter(|marker| !counts.contains_key(marker.as_str()))
        .collect();
    assert!(
        lost.is_empty(),
        "{} acknowledged pushes lost: {lost:?}",
        lost.len()
    );
    let repeated: Vec<_> = counts.iter().filter(|(_, n)| **n > 1).collect();
    assert!(repeated.is_empty(), "pushes recorded twice: {repeated:?}");
    // One chain: the epochs never go back along the seqs, and every entry of a replicated
    // ledger carries one.
    let epochs: Vec<i64> = ledger
        .rows
        .iter()
        .filter_map(|(_, _, epoch, _)| *epoch)
        .collect();
    assert_eq!(epochs.len(), ledger.rows.len(), "an entry without an epoch");
    assert!(
        epochs.windows(2).all(|pair| pair[0] <= pair[1]),
        "the epochs go back along the chain: {epochs:?}"
    );
    report.push(format!(
        "{} pushes acknowledged, all in the chain once; {} entries, epochs {}..={}",
        acked.len(),
        ledger.rows.len(),
        epochs.first().unwrap_or(&0),
        epochs.last().unwrap_or(&0)
    ));

    // A clean handover: SIGTERM of the leader releases the lease, and a standby carries the
    // session on at once.
    let leader = wait_for_leader(&replicas, None);
    let handed_at = Instant::now();
    signal(&replicas[leader], "TERM");
    replicas[leader].stopped = true;
    let next = wait_for_leader(&replicas, Some(leader));
    report.push(format!(
        "SIGTERM of {}: {} leads after {} ms",
        replicas[leader].id,
        replicas[next].id,
        handed_at.elapsed().as_millis()
    ));
    let deadline = Instant::now() + PHASE_LIMIT;
    while !replicas[next]
        .served
        .next_line(deadline)
        .is_some_and(|line| line.contains("resuming it"))
    {
        assert!(
            Instant::now() < deadline,
            "the new leader did not carry the session on"
        );
    }

    // Stop everything cleanly; the ledger verifies and the incident replays.
    for (index, replica) in replicas.into_iter().enumerate() {
        if index != first {
            let (code, stderr) = replica.served.stop_with("TERM");
            assert_eq!(
                code,
                Some(0),
                "{} did not stop cleanly:\n{stderr}",
                replica.id
            );
        }
    }
    let schema_args = ["--db", url.as_str(), "--schema", SCHEMA];
    let verify = vigil(
        ["ledger", "verify"].iter().chain(&schema_args).copied(),
        dir.path(),
    );
    verify.assert_success("verify of the replicated ledger");
    let show = vigil(
        ["ledger", "show"].iter().chain(&schema_args).copied(),
        dir.path(),
    );
    let incident = crate::support::incident_ids(&show.stdout)
        .into_iter()
        .next()
        .expect("an incident in the ledger");
    let replay = vigil(
        ["replay", "--incident", incident.as_str()]
            .iter()
            .chain(&schema_args)
            .copied(),
        dir.path(),
    );
    replay.assert_success("replay of the incident across the takeovers");
    eprintln!("failover report:\n  {}", report.join("\n  "));
}
