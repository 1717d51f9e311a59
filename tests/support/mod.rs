//! Helpers for the end-to-end tests: temporary folders, the `vigil` binary run with every wait
//! bounded, a child process that is killed if the test fails, and a tiny HTTP/1.1 client.

use std::ffi::OsStr;
use std::io::{Read as _, Write as _};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// The `vigil` binary built for these tests.
pub const VIGIL: &str = env!("CARGO_BIN_EXE_vigil");

/// How often a bounded wait looks again.
pub const POLL: Duration = Duration::from_millis(50);

/// The repository's root folder.
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// A fresh folder under cargo's per-target temporary folder, removed on drop (kept when
/// `VIGIL_TEST_KEEP` is set).
pub struct TempDir {
    path: PathBuf,
}

impl TempDir {
    /// A new empty folder whose name starts with `label`.
    pub fn new(label: &str) -> TempDir {
        static COUNTER: AtomicUsize = AtomicUsize::new(0);
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        let path = Path::new(env!("CARGO_TARGET_TMPDIR"))
            .join(format!("{label}-{}-{n}", std::process::id()));
        // A folder left by an earlier run that reused this process id.
        let _ = std::fs::remove_dir_all(&path);
        std::fs::create_dir_all(&path)
            .unwrap_or_else(|error| panic!("cannot create {}: {error}", path.display()));
        TempDir { path }
    }

    /// The folder.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// A path inside the folder.
    pub fn join(&self, name: &str) -> PathBuf {
        self.path.join(name)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        // `VIGIL_TEST_KEEP=1` keeps every folder, to look at what a failing test left.
        if std::env::var_os("VIGIL_TEST_KEEP").is_some() {
            eprintln!("kept {}", self.path.display());
            return;
        }
        let _ = std::fs::remove_dir_all(&self.path);
    }
}

/// A child process that is killed and reaped when dropped, so that a failing test leaves
/// nothing running.
pub struct ChildGuard {
    child: Child,
}

impl ChildGuard {
    /// Wraps a spawned child.
    pub fn new(child: Child) -> ChildGuard {
        ChildGuard { child }
    }

    /// The process id.
    pub fn id(&self) -> u32 {
        self.child.id()
    }

    /// The child, for taking its pipes.
    pub fn child_mut(&mut self) -> &mut Child {
        &mut self.child
    }

    /// Waits at most `limit` for the child to exit; panics (and so kills it) if it does not.
    pub fn wait_at_most(&mut self, limit: Duration, what: &str) -> ExitStatus {
        let deadline = Instant::now() + limit;
        loop {
            if let Some(status) = self.child.try_wait().expect("polling a child process") {
                return status;
            }
            assert!(
                Instant::now() < deadline,
                "{what} still runs after {}s: killed",
                limit.as_secs()
            );
            std::thread::sleep(POLL);
        }
    }
}

impl Drop for ChildGuard {
    fn drop(&mut self) {
        if matches!(self.child.try_wait(), Ok(None)) {
            let _ = self.child.kill();
        }
        let _ = self.child.wait();
    }
}

/// What a finished `vigil` run printed.
#[derive(Debug)]
pub struct Finished {
    /// How it exited.
    pub status: ExitStatus,
    /// Its standard output.
    pub stdout: String,
    /// Its standard error.
    pub stderr: String,
}

impl Finished {
    /// The exit code; panics if a signal ended the process.
    pub fn code(&self) -> i32 {
        self.status
            .code()
            .unwrap_or_else(|| panic!("vigil was killed by a signal: {self}"))
    }

    /// Panics unless the run exited 0.
    pub fn assert_success(&self, what: &str) {
        assert!(self.status.success(), "{what} failed: {self}");
    }
}

impl std::fmt::Display for Finished {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            formatter,
            "{}\n--- stdout ---\n{}\n--- stderr ---\n{}",
            self.status, self.stdout, self.stderr
        )
    }
}

/// A thread reading a pipe to its end.
fn read_to_end(mut pipe: impl std::io::Read + Send + 'static) -> JoinHandle<String> {
    std::thread::spawn(move || {
        let mut bytes = Vec::new();
        let _ = pipe.read_to_end(&mut bytes);
        String::from_utf8_lossy(&bytes).into_owned()
    })
}

/// A `vigil` command with a clean environment for logging, run in `cwd`.
pub fn vigil_command<I, S>(args: I, cwd: &Path) -> Command
where
    I: IntoIterator<Item = S>,
    S: AsRef<OsStr>,
{
    let mut command = Command::new(VIGIL);
    command
        .args(args)
        .current_dir(cwd)
        .env_remove("VIGIL_LOG")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    command
}

/// Runs `vigil ARGS` in `cwd` and waits at most `limit` for it (a hang guard, not a timing
/// expectation: it is far above what any of these commands needs).
pub fn run_vigil<I, S>(args: I, cwd: &Path, limit: Duration) -> Finished
where
    I: IntoIterator<Item = S>,
    S: AsRef<OsStr>,
{
    finish(vigil_command(args, cwd), limit)
}

/// Runs a prepared command and waits at most `limit` for it (a hang guard).
pub fn finish(mut command: Command, limit: Duration) -> Finished {
    let shown = format!("{command:?}");
    let mut child = ChildGuard::new(command.spawn().expect("spawning vigil"));
    let stdout = read_to_end(child.child_mut().stdout.take().expect("piped stdout"));
    let stderr = read_to_end(child.child_mut().stderr.take().expect("piped stderr"));
    let status = child.wait_at_most(limit, &shown);
    Finished {
        status,
        stdout: stdout.join().expect("the stdout reader"),
        stderr: stderr.join().expect("the stderr reader"),
    }
}

/// Runs a quick `vigil` command (check, ledger, replay).
pub fn vigil<I, S>(args: I, cwd: &Path) -> Finished
where
    I: IntoIterator<Item = S>,
    S: AsRef<OsStr>,
{
    run_vigil(args, cwd, Duration::from_secs(120))
}

/// Plays the shipped game day `tests/scenarios/NAME.yaml` and writes its ledger to `db`.
pub fn simulate_scenario(name: &str, db: &Path) {
    let scenario = repo_root().join(format!("tests/scenarios/{name}.yaml"));
    vigil(
        [
            "simulate",
            scenario.to_str().expect("UTF-8"),
            "--quiet",
            "--ledger",
            db.to_str().expect("UTF-8"),
        ],
        &repo_root(),
    )
    .assert_success("simulate --ledger");
}

/// The distinct incident ids (`inc-` and 12 lowercase hex digits) in `text`, in order.
pub fn incident_ids(text: &str) -> Vec<String> {
    let mut ids: Vec<String> = Vec::new();
    for (start, _) in text.match_indices("inc-") {
        let rest = &text[start + 4..];
        let hex: String = rest
            .chars()
            .take_while(|c| c.is_ascii_hexdigit() && !c.is_ascii_uppercase())
            .collect();
        let before_ok = text[..start]
            .chars()
            .next_back()
            .is_none_or(|c| !c.is_ascii_alphanumeric());
        if hex.len() == 12 && before_ok {
            let id = format!("inc-{hex}");
            if !ids.contains(&id) {
                ids.push(id);
            }
        }
    }
    ids
}

/// The lines of `text` that contain `needle`.
pub fn lines_with<'a>(text: &'a str, needle: &str) -> Vec<&'a str> {
    text.lines().filter(|line| line.contains(needle)).collect()
}

/// An HTTP response.
#[derive(Debug)]
pub struct Response {
    /// The status code.
    pub status: u16,
    /// The body.
    pub body: String,
}

/// `GET path` over a fresh loopback connection, with every read and write bounded.
pub fn http_get(address: SocketAddr, path: &str) -> std::io::Result<Response> {
    request(
        address,
        &format!("GET {path} HTTP/1.1\r\nHost: {address}\r\nConnection: close\r\n\r\n"),
    )
}

/// `GET path` with a bearer token.
pub fn http_get_with_bearer(
    address: SocketAddr,
    path: &str,
    bearer: &str,
) -> std::io::Result<Response> {
    request(
        address,
        &format!(
            "GET {path} HTTP/1.1\r\nHost: {address}\r\nAuthorization: Bearer {bearer}\r\nConnection: close\r\n\r\n"
        ),
    )
}

/// POSTs a JSON body with an optional bearer token over a plain HTTP/1.1 connection.
pub fn http_post_json(
    address: SocketAddr,
    path: &str,
    bearer: Option<&str>,
    body: &str,
) -> std::io::Result<Response> {
    let auth = bearer.map_or_else(String::new, |token| {
        format!("Authorization: Bearer {token}\r\n")
    });
    request(
        address,
        &format!(
            "POST {path} HTTP/1.1\r\nHost: {address}\r\nConnection: close\r\n{auth}Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        ),
    )
}

/// A request with any method, headers and body, over a fresh loopback connection (the
/// request asks the server to close); for tests that send what clients should not.
pub fn http_request(
    address: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> std::io::Result<Response> {
    let mut head = format!("{method} {path} HTTP/1.1\r\nHost: {address}\r\nConnection: close\r\n");
    for (name, value) in headers {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    head.push_str(&format!("Content-Length: {}\r\n\r\n{body}", body.len()));
    request(address, &head)
}

/// Sends `raw` over a fresh loopback connection, every read and write bounded, and reads the
/// whole response (the request asks the server to close).
fn request(address: SocketAddr, raw: &str) -> std::io::Result<Response> {
    let limit = Duration::from_secs(10);
    let mut stream = TcpStream::connect_timeout(&address, limit)?;
    stream.set_read_timeout(Some(limit))?;
    stream.set_write_timeout(Some(limit))?;
    stream.write_all(raw.as_bytes())?;
    let mut bytes = Vec::new();
    stream.read_to_end(&mut bytes)?;
    let text = String::from_utf8_lossy(&bytes).into_owned();
    let invalid = |why: &str| {
        std::io::Error::new(std::io::ErrorKind::InvalidData, format!("{why}: {text:?}"))
    };
    let (head, body) = text
        .split_once("\r\n\r\n")
        .ok_or_else(|| invalid("no end of headers"))?;
    let status = head
        .lines()
        .next()
        .and_then(|line| line.split(' ').nth(1))
        .and_then(|code| code.parse().ok())
        .ok_or_else(|| invalid("no status line"))?;
    let chunked = head.lines().any(|line| {
        let line = line.to_ascii_lowercase();
        line.starts_with("transfer-encoding:") && line.contains("chunked")
    });
    let body = if chunked {
        dechunk(body).ok_or_else(|| invalid("bad chunked body"))?
    } else {
        body.to_owned()
    };
    Ok(Response { status, body })
}

/// Decodes a chunked body.
fn dechunk(mut body: &str) -> Option<String> {
    let mut out = String::new();
    loop {
        let (size, rest) = body.split_once("\r\n")?;
        let size = usize::from_str_radix(size.split(';').next()?.trim(), 16).ok()?;
        if size == 0 {
            return Some(out);
        }
        out.push_str(rest.get(..size)?);
        body = rest.get(size + 2..)?;
    }
}

/// Writes a secret (a token, a key) to `path`, readable by its owner only, as vigil requires
/// of secret files.
pub fn write_secret(path: &Path, text: &str) {
    std::fs::write(path, text)
        .unwrap_or_else(|error| panic!("cannot write {}: {error}", path.display()));
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))
            .unwrap_or_else(|error| panic!("cannot chmod {}: {error}", path.display()));
    }
}

/// A token strong enough for vigil's checks (64 hex digits), derived from `seed` so that a
/// test can name it again.
pub fn strong_token(seed: &str) -> String {
    use sha2::Digest as _;
    hex::encode(sha2::Sha256::digest(seed.as_bytes()))
}

/// One person of a test's admin tokens file: name, groups and roles.
pub struct Person<'a> {
    /// The name.
    pub name: &'a str,
    /// Their groups.
    pub groups: &'a [&'a str],
    /// Their roles.
    pub roles: &'a [&'a str],
}

/// Makes each person's token with the real `vigil admin-token add` in `dir/admin-tokens.yaml`;
/// returns the file and each person's token, by name.
pub fn admin_tokens(
    dir: &Path,
    people: &[Person<'_>],
) -> (PathBuf, std::collections::BTreeMap<String, String>) {
    let file = dir.join("admin-tokens.yaml");
    let mut tokens = std::collections::BTreeMap::new();
    for person in people {
        let shown = file.display().to_string();
        let mut args = vec![
            "admin-token".to_owned(),
            "add".to_owned(),
            "--tokens-file".to_owned(),
            shown,
            "--name".to_owned(),
            person.name.to_owned(),
        ];
        for group in person.groups {
            args.extend(["--group".to_owned(), (*group).to_owned()]);
        }
        for role in person.roles {
            args.extend(["--role".to_owned(), (*role).to_owned()]);
        }
        let made = vigil(&args, dir);
        made.assert_success("vigil admin-token add");
        let token = made.stdout.trim().to_owned();
        assert!(token.starts_with("vigil_adm_"), "{made}");
        tokens.insert(person.name.to_owned(), token);
    }
    (file, tokens)
}

/// A simulated LiteLLM gateway on loopback with organic traffic (3 requests a second) on one
/// key per alias, all of team `apps`; its master key in a file. Dropping it stops nothing:
/// cancel `stop` (the owners do, in their `Drop`).
pub struct SimStack {
    /// Runs the gateway and the traffic.
    pub runtime: tokio::runtime::Runtime,
    /// The gateway.
    pub gateway: vigil_sim::SimGateway,
    /// The traffic, whose rates a test changes.
    pub traffic: vigil_sim::TrafficDriver,
    /// Stops both.
    pub stop: tokio_util::sync::CancellationToken,
    /// The raw keys, in the aliases' order.
    pub raw_keys: Vec<String>,
    /// The file holding the master key (vigil's scrape token and admin key).
    pub key_file: PathBuf,
}

/// Starts a [`SimStack`] whose master key is written in `dir`.
pub fn start_sim_stack(dir: &Path, aliases: &[&str]) -> SimStack {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a runtime");
    let stop = tokio_util::sync::CancellationToken::new();
    let seed = format!("{}/{}", dir.display(), std::process::id());
    let master_key = format!("sk-test-{}", &strong_token(&seed)[..32]);
    let key_file = dir.join("master-key");
    write_secret(&key_file, &format!("{master_key}\n"));
    let raw_keys: Vec<String> = aliases
        .iter()
        .enumerate()
        .map(|(i, _)| format!("sk-key-{i}-{}", &strong_token(&format!("{seed}/{i}"))[..16]))
        .collect();
    let gateway = runtime.block_on(async {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("binding a loopback port");
        vigil_sim::SimGateway::start(
            listener,
            vigil_sim::GatewayConfig {
                master_key,
                keys: raw_keys
                    .iter()
                    .zip(aliases)
                    .map(|(raw_key, alias)| vigil_sim::SimKey {
                        raw_key: raw_key.clone(),
                        alias: (*alias).to_owned(),
                        team: "apps".to_owned(),
                        user_id: "apps-owner".to_owned(),
                        max_budget_usd: None,
                    })
                    .collect(),
                models: vec![vigil_sim::SimModel {
                    name: "gpt-4o-mini".to_owned(),
                    provider: "openai".to_owned(),
                    input_cost_per_token: 1.5e-7,
                    output_cost_per_token: 6e-7,
                }],
                ignore_blocks: false,
                require_auth_for_metrics: true,
            },
            stop.child_token(),
        )
        .await
        .expect("starting the simulated gateway")
    });
    let traffic = {
        let _entered = runtime.enter();
        vigil_sim::TrafficDriver::start(
            &gateway.base_url(),
            raw_keys
                .iter()
                .map(|raw_key| vigil_sim::KeyTraffic {
                    raw_key: raw_key.clone(),
                    model: "gpt-4o-mini".to_owned(),
                    requests_per_sec: 3.0,
                    prompt_chars: 1000,
                    max_tokens: 200,
                })
                .collect(),
            11,
            stop.child_token(),
        )
        .expect("starting the traffic")
    };
    SimStack {
        runtime,
        gateway,
        traffic,
        stop,
        raw_keys,
        key_file,
    }
}

/// A config of `vigil serve` against a [`SimStack`]'s gateway: a ledger at `ledger`, the
/// demo's runbook, the policies of `policies`, the token-spike detector tuned for a 1 s
/// scrape, a log pager, in `mode`, with `extra` appended.
pub fn sim_stack_config(
    stack: &SimStack,
    ledger: &Path,
    policies: &Path,
    mode: &str,
    extra: &str,
) -> String {
    format!(
        r#"mode: {mode}
environment: test
ledger:
  sqlite_path: "{ledger}"
policies_dir: "{policies}"
runbooks_dir: "{runbooks}"
sources:
  - name: sim-gateway
    kind: litellm
    url: "{gateway_url}/metrics/"
    scrape_interval_secs: 1
    scrape_timeout_secs: 1
    bearer_token: {{ file: "{key_file}" }}
    admin:
      master_key: {{ file: "{key_file}" }}
      timeout_secs: 30
detectors:
  - name: token-spike
    kind: spike
    source: sim-gateway
    metric: litellm_total_tokens_metric_total
    group_by: hashed_api_key
    alias_label: api_key_alias
    team_label: team
    warmup_samples: 6
    baseline_half_life_secs: 30
    fire_z: 6
    fire_ratio: 4
    min_rate_per_sec: 500
    fire_after_samples: 2
    clear_ratio: 2
    clear_after_samples: 3
    noise_floor_ratio: 0.25
    page_ratio: 10
pager:
  kind: log
{extra}"#,
        ledger = ledger.display(),
        policies = policies.display(),
        runbooks = repo_root().join("examples/demo/runbooks").display(),
        gateway_url = stack.gateway.base_url(),
        key_file = stack.key_file.display(),
    )
}
