//! The `vigil` command line: run the demo, serve, check a config, verify and replay the ledger.

use crate::commands::demo::Scenario;
use crate::commands::{
    backtest, demo, human, ledger, metrics, policy, replay, report, runbook, serve, simulate, trust,
};

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};

/// vigil watches AI systems (LLM gateways, agents, RAG pipelines), fixes routine incidents
/// within Cedar policies, and pages a human only when its fix did not work.
#[derive(Debug, Parser)]
#[command(name = "vigil", version, about)]
struct Cli {
    #[command(subcommand)]
    command: CliCommand,
}

#[derive(Debug, Subcommand)]
enum CliCommand {
    /// Watch a simulated LiteLLM gateway catch, fix and verify a runaway API key, end to end.
    Demo {
        /// Which story to run.
        #[arg(long, value_enum, default_value_t = Scenario::RunawayKey)]
        scenario: Scenario,
        /// Where to write the demo's ledger (replaced if it exists).
        #[arg(long, default_value = "vigil-demo.db")]
        db: PathBuf,
        /// Turn the assistant on, played by a local fake of the OpenAI API (no model is
        /// contacted): `good`, or a misbehaviour such as `hallucinated` or `rate_limited`.
        #[arg(long, num_args = 0..=1, default_missing_value = "good")]
        assistant: Option<String>,
    },
    /// Run the daemon.
    Serve {
        /// The config file.
        #[arg(long)]
        config: PathBuf,
        /// Where to answer /healthz, /readyz and /metrics (overrides the config's `listen`).
        #[arg(long)]
        listen: Option<std::net::SocketAddr>,
    },
    /// Check a config file, its runbooks and its policies, and resolve everything `serve`
    /// resolves before it starts (secrets, tokens, keys); list every problem. Exit 0 only when
    /// `serve` would start.
    Check {
        /// The config file.
        #[arg(long)]
        config: PathBuf,
        /// Only the config, runbooks and policies: resolve no secret and reach nothing (for
        /// linting in CI, where the secrets are not).
        #[arg(long)]
        offline: bool,
    },
    /// Lint the runbooks of a folder, without a config.
    Runbook {
        #[command(subcommand)]
        command: RunbookCommand,
    },
    /// Check or test the Cedar policies of a folder, without a config.
    Policy {
        #[command(subcommand)]
        command: PolicyCommand,
    },
    /// Stream a `timestamp,value` CSV through a detector; write
    /// `timestamp,value,anomaly_score,alert` to stdout. Exit 0 when every row was used, 1 when
    /// some were skipped (each is reported), 2 when the CSV or the config was unreadable.
    Backtest {
        /// `adaptive`, `spike`, or the name of a detector configured in `--config`.
        #[arg(long)]
        detector: String,
        /// The CSV (`-` for standard input).
        #[arg(long)]
        csv: PathBuf,
        /// A vigil config whose detectors `--detector` may name.
        #[arg(long)]
        config: Option<PathBuf>,
    },
    /// Work with Prometheus expositions.
    Metrics {
        #[command(subcommand)]
        command: MetricsCommand,
    },
    /// Inspect the ledger.
    Ledger {
        #[command(subcommand)]
        command: LedgerCommand,
    },
    /// Have the assistant investigate an incident after the fact, against the state the
    /// ledger recorded while it was open (for incidents that happened with the assistant
    /// off); the checked answer is printed, never written to the ledger.
    Investigate {
        #[command(flatten)]
        db: DbOpts,
        /// The incident, e.g. `inc-3f2a9c0d11b4`.
        #[arg(long)]
        incident: String,
        /// The config whose `diagnosis.assistant` says where the model is (on or off).
        #[arg(long, default_value = "vigil.yaml")]
        config: PathBuf,
        /// Write the conversation's transcript (JSON, readable by its owner only) here.
        #[arg(long)]
        transcript: Option<PathBuf>,
    },
    /// Re-run an incident's recorded events through the engine and compare every command.
    Replay {
        #[command(flatten)]
        db: DbOpts,
        /// The incident, e.g. `inc-3f2a9c0d11b4`.
        #[arg(long, required_unless_present = "all", conflicts_with = "all")]
        incident: Option<String>,
        /// Every session of the ledger, to its end, with every incident in it.
        #[arg(long)]
        all: bool,
        /// Also decide every recorded authorization request with the policies of this folder
        /// (`vigil.cedarschema` and `*.cedar`) and show each decision that would differ.
        #[arg(long, conflicts_with = "with_current_policies")]
        policies: Option<PathBuf>,
        /// As `--policies`, with the policies the config file `--config` names.
        #[arg(long, requires = "config")]
        with_current_policies: bool,
        /// The config file whose policies `--with-current-policies` uses.
        #[arg(long)]
        config: Option<PathBuf>,
        /// The archive folder (`vigil ledger archive --out`): an incident the ledger no longer
        /// holds is replayed from its segment; `--all` replays every segment, then the ledger.
        #[arg(long)]
        archive: Option<PathBuf>,
    },
    /// Show who the daemon's admin API authenticates you as: name, credential, groups, roles.
    Whoami {
        #[command(flatten)]
        admin: AdminOpts,
    },
    /// Make a personal admin token: prints it once and appends its SHA-256 (never the token)
    /// with the person's name, groups and roles to the tokens file (`admin.tokens_file`).
    AdminToken {
        #[command(subcommand)]
        command: AdminTokenCommand,
    },
    /// Ask the daemon's assistant a question (read-only triage against its state now); what
    /// survives vigil's checks is printed. Needs `diagnosis.assistant` on and a viewer token.
    Ask {
        /// The question, e.g. "why is gpt-4o slow?".
        question: String,
        #[command(flatten)]
        admin: AdminOpts,
    },
    /// List the proposals waiting for a person (advisory mode, or held by a guardrail).
    Proposals {
        #[command(flatten)]
        admin: AdminOpts,
    },
    /// Approve a proposal: vigil carries out exactly the step shown. Its requester (the
    /// runbook's owner) cannot approve it.
    Approve {
        /// The proposal's id, as `vigil proposals` lists it.
        id: String,
        #[command(flatten)]
        admin: AdminOpts,
    },
    /// Reject a proposal: vigil does not act, and the incident goes to on-call.
    Reject {
        /// The proposal's id.
        id: String,
        #[command(flatten)]
        admin: AdminOpts,
    },
    /// Turn a kill switch on: no new action runs (globally, for a runbook or a target).
    Kill {
        /// Only this runbook.
        #[arg(long)]
        runbook: Option<String>,
        /// Only this target, as TYPE:ID (for example `ApiKey:4f2a...`, `Prompt:answer`).
        #[arg(long)]
        target: Option<String>,
        #[command(flatten)]
        admin: AdminOpts,
    },
    /// Turn a kill switch off.
    Unkill {
        /// Only this runbook.
        #[arg(long)]
        runbook: Option<String>,
        /// Only this target, as TYPE:ID.
        #[arg(long)]
        target: Option<String>,
        #[command(flatten)]
        admin: AdminOpts,
    },
    /// Mute matching findings for a while: no runbook acts and nobody is paged.
    Silence {
        /// The silence's id (to end it early with `vigil unsilence`).
        #[arg(long)]
        id: String,
        /// Only findings of this detector.
        #[arg(long)]
        detector: Option<String>,
        /// Only findings about this subject (a key hash, a model, a prompt).
        #[arg(long)]
        subject: Option<String>,
        /// How long: 90s, 30m, 2h, 1d.
        #[arg(long = "for", value_parser = crate::duration::parse_duration)]
        duration: std::time::Duration,
        #[command(flatten)]
        admin: AdminOpts,
    },
    /// End a silence early.
    Unsilence {
        /// The silence's id.
        id: String,
        #[command(flatten)]
        admin: AdminOpts,
    },
    /// Trust scores per runbook and action from the ledger's verified outcomes, and which
    /// advisory runbooks have earned promotion (a human still decides).
    Trust {
        #[command(flatten)]
        db: DbOpts,
    },
    /// The period report a team takes to its review, from the ledger: incidents and how they
    /// ended, the auto-resolved share, pages sent and avoided, times to detect, diagnose and
    /// resolve, failed fixes, policy denials, top causes, and engineer-hours returned with
    /// the assumptions shown.
    Report {
        #[command(flatten)]
        db: DbOpts,
        /// The period: a duration back from its end (`90d`, `12h`) or its first instant
        /// (`2026-09-01T00:00:00Z`).
        #[arg(long, default_value = "90d")]
        since: String,
        /// The period's last instant (default: the ledger's latest entry, so that the same
        /// ledger always gives the same report).
        #[arg(long)]
        until: Option<String>,
        /// How to print it.
        #[arg(long, value_enum, default_value_t = report::Format::Text)]
        format: report::Format,
        /// Minutes a person would have spent on each incident that ended without a page.
        #[arg(long, default_value_t = 45.0)]
        minutes_per_incident: f64,
        /// Minutes a person spent on each approval or rejection.
        #[arg(long, default_value_t = 5.0)]
        minutes_per_decision: f64,
    },
    /// Run a game-day scenario on a virtual clock: vigil's engine and Cedar policies against
    /// a simulated AI stack (docs/scenarios.md).
    Simulate {
        /// The scenario file.
        #[arg(required_unless_present = "score")]
        scenario: Option<PathBuf>,
        /// Play every `*.yaml` scenario in this folder and print, per scenario and in total,
        /// whether the best hypothesis, its subject, the actions and the pages were as
        /// expected (exit 0 unless a scenario cannot be played).
        #[arg(long, value_name = "DIR", conflicts_with_all = ["scenario", "json", "check", "ledger", "quiet"])]
        score: Option<PathBuf>,
        /// One JSON object per line.
        #[arg(long)]
        json: bool,
        /// Exit 1 when the outcome differs from the scenario's `expect`.
        #[arg(long)]
        check: bool,
        /// Write the run's ledger, for `vigil replay` and `vigil ledger`: a SQLite file
        /// (replaced if it exists) or a `postgres://` URL (with `--schema`; it must hold no
        /// ledger yet).
        #[arg(long)]
        ledger: Option<String>,
        /// The PostgreSQL schema for `--ledger`.
        #[arg(long, requires = "ledger")]
        schema: Option<String>,
        /// Print nothing but problems and `--check`'s differences.
        #[arg(long, conflicts_with = "json")]
        quiet: bool,
    },
}

/// Which ledger a command reads.
#[derive(Debug, Args)]
struct DbOpts {
    /// The ledger: a SQLite file, or a `postgres://` URL (never printed with its credentials).
    #[arg(long)]
    db: String,
    /// The PostgreSQL schema that holds the ledger (the server's search path when absent).
    #[arg(long)]
    schema: Option<String>,
}

impl DbOpts {
    fn location(&self) -> anyhow::Result<vigil_ledger::LedgerLocation> {
        ledger::location_of(&self.db, self.schema.as_deref())
    }
}

/// How to reach a running daemon's admin API, and how to authenticate to it.
#[derive(Debug, Args)]
struct AdminOpts {
    /// The daemon's base URL (its `listen` address; https when it terminates TLS).
    #[arg(long, default_value = "http://127.0.0.1:9464")]
    url: String,
    /// The environment variable that holds your token (personal or OIDC).
    #[arg(long, default_value = "VIGIL_ADMIN_TOKEN")]
    token_env: String,
    /// A file that holds your token (instead of the environment).
    #[arg(long)]
    token_file: Option<PathBuf>,
    /// Your TLS client certificate (PEM), to authenticate by certificate.
    #[arg(long, requires = "key")]
    cert: Option<PathBuf>,
    /// The private key of `--cert` (PEM).
    #[arg(long, requires = "cert")]
    key: Option<PathBuf>,
    /// A CA certificate (PEM) to trust for the daemon's certificate.
    #[arg(long)]
    ca: Option<PathBuf>,
    /// Assert who you are: the daemon refuses the instruction if your credential belongs to
    /// someone else. It records the credential's name either way.
    #[arg(long = "as")]
    as_user: Option<String>,
    /// Why, in your words (required by reject and silence).
    #[arg(long, default_value = "")]
    reason: String,
}

impl AdminOpts {
    fn args(self) -> human::AdminArgs {
        human::AdminArgs {
            url: self.url,
            token_env: self.token_env,
            token_file: self.token_file,
            cert: self.cert.zip(self.key),
            ca: self.ca,
            as_user: self.as_user,
            reason: self.reason,
        }
    }
}

#[derive(Debug, Subcommand)]
enum AdminTokenCommand {
    /// Make a token for one person (or system) and record its hash.
    Add {
        /// The tokens file (created, mode 0600, if missing).
        #[arg(long)]
        tokens_file: PathBuf,
        /// The person's name, as the ledger will record it (an email works well).
        #[arg(long)]
        name: String,
        /// The token's id, recorded with every instruction it authenticates (default: the
        /// name and today's date).
        #[arg(long)]
        id: Option<String>,
        /// A group they are in (repeatable), for example `search-oncall`.
        #[arg(long = "group")]
        groups: Vec<String>,
        /// A role they hold (repeatable): viewer, approver, operator, admin.
        #[arg(long = "role")]
        roles: Vec<String>,
        /// When the token stops working: a duration from now (`90d`) or an RFC 3339 time.
        #[arg(long)]
        expires: Option<String>,
    },
}

#[derive(Debug, Subcommand)]
enum MetricsCommand {
    /// Parse an exposition (text 0.0.4 or OpenMetrics) as vigil's scraper does: one JSON line
    /// per sample on stdout; families, samples, malformed lines and lints on stderr. Exit 0
    /// when every line parsed, 1 when some were malformed, 2 when the input was unreadable.
    Parse {
        /// A file, `-` for standard input, or an `http(s)://` URL to scrape.
        input: String,
        /// Parse as this format instead of detecting it (from the Content-Type, or `# EOF`).
        #[arg(long, value_enum)]
        format: Option<metrics::FormatArg>,
        /// Send the bearer token in this environment variable (URLs only).
        #[arg(long)]
        bearer_token_env: Option<String>,
        /// Send the bearer token in this file (URLs only).
        #[arg(long)]
        bearer_token_file: Option<PathBuf>,
        /// Give up on a URL after this many seconds.
        #[arg(long, default_value_t = 10)]
        timeout_secs: u64,
    },
}

#[derive(Debug, Subcommand)]
enum RunbookCommand {
    /// Parse and validate every runbook; list every problem with its file, line and key.
    /// Exit 0 when all are valid, 1 when one is not, 2 when the folder is unreadable.
    Lint {
        /// The folder with the runbooks (`*.yaml`, `*.yml`).
        #[arg(long, default_value = "runbooks")]
        dir: PathBuf,
    },
}

#[derive(Debug, Subcommand)]
enum PolicyCommand {
    /// Validate the schema and every policy (strict mode, unique `@id`s); list every
    /// problem with its file and line. Exit 0 when valid, 2 when not.
    Check {
        /// The folder with `vigil.cedarschema` and `*.cedar`.
        #[arg(long, default_value = "policies")]
        dir: PathBuf,
    },
    /// Run the cases in `DIR/tests/*.json` (request, expected effect and determining
    /// policies). Exit 0 when all pass, 1 when one fails, 2 when something cannot be loaded.
    Test {
        /// The folder with `vigil.cedarschema`, `*.cedar` and `tests/`.
        #[arg(long, default_value = "policies")]
        dir: PathBuf,
    },
}

#[derive(Debug, Subcommand)]
enum LedgerCommand {
    /// Recompute every hash, link and the tree head, and check the log against every
    /// checkpoint stored in it; exit non-zero at the first bad entry or checkpoint. With
    /// `--export`, check an exported file offline instead, with no database.
    Verify {
        /// The ledger: a SQLite file, or a `postgres://` URL (never printed with its
        /// credentials).
        #[arg(
            long,
            required_unless_present_any = ["export", "proof"],
            conflicts_with_all = ["export", "proof"]
        )]
        db: Option<String>,
        /// A proof printed by `vigil ledger prove` (inclusion or consistency): check it
        /// offline, with no database, and print the tree heads it binds.
        #[arg(long, conflicts_with = "export")]
        proof: Option<PathBuf>,
        /// The PostgreSQL schema that holds the ledger.
        #[arg(long, requires = "db")]
        schema: Option<String>,
        /// A file written by `vigil ledger export`.
        #[arg(long)]
        export: Option<PathBuf>,
        /// Also a checkpoint kept outside the database (written by `vigil ledger checkpoint`
        /// or published by the daemon): the ledger must still hold its entries unchanged, so
        /// a truncation or a rewrite is caught even if the stored checkpoints were deleted.
        #[arg(long, requires = "db")]
        checkpoint: Option<PathBuf>,
        /// The public key (hex) every checkpoint must be signed with (the stored ones, and
        /// `--checkpoint`'s).
        #[arg(long, requires = "db")]
        public_key: Option<String>,
        /// Also the archive segments in this folder (`vigil ledger archive --out`): each must
        /// verify and carry on where the one before it ends, and the last end where the
        /// ledger carries on.
        #[arg(long, requires = "db")]
        archive: Option<PathBuf>,
    },
    /// Move the session chains that ended before a time to a segment file in `--out` (a
    /// SQLite ledger of its own, with the blobs and checkpoints they need and a consistency
    /// proof to the live ledger), and remove them from the ledger, which keeps their leaf
    /// hashes: verify, checkpoints and proofs carry on. `docs/archive.md` says how to replay
    /// from a segment.
    Archive {
        #[command(flatten)]
        db: DbOpts,
        /// Archive what ended before this: an RFC 3339 time, or a time ago (`90d`).
        #[arg(long)]
        before: String,
        /// The archive folder (created if missing); segments are never overwritten.
        #[arg(long)]
        out: PathBuf,
        /// Also remove from the ledger the blobs that only archived entries name (the segment
        /// keeps them). Only while no daemon writes to the ledger: one may be about to name
        /// the same blob again (a session's unchanged config).
        #[arg(long)]
        release_blobs: bool,
    },
    /// Sign a checkpoint of the ledger's current tree head with an Ed25519 key (created, mode
    /// 0600, when the file does not exist), and write it to `--out`.
    Checkpoint {
        #[command(flatten)]
        db: DbOpts,
        /// The signing key file.
        #[arg(long)]
        key: PathBuf,
        /// Create the key even inside a git work tree (refused otherwise: one `git add -A`
        /// would commit it).
        #[arg(long)]
        allow_key_in_git_tree: bool,
        /// Where to write the checkpoint (JSON).
        #[arg(long)]
        out: PathBuf,
    },
    /// Write the whole ledger as JSON lines with every entry's inclusion proof and the tree
    /// head, for an auditor to check offline (`vigil ledger verify --export FILE`).
    Export {
        #[command(flatten)]
        db: DbOpts,
        /// Where to write it.
        #[arg(long)]
        out: PathBuf,
    },
    /// Print the RFC 6962 inclusion proof of one entry against the ledger's current tree
    /// head, or (`--consistency SIZE`) the consistency proof from the tree of SIZE entries (a
    /// checkpoint's) to the current one (or `--to`'s); JSON, hashes in hex, checked before it
    /// is printed. `vigil ledger verify --proof FILE` checks one offline.
    Prove {
        #[command(flatten)]
        db: DbOpts,
        /// The entry's seq.
        #[arg(
            required_unless_present = "consistency",
            conflicts_with = "consistency"
        )]
        seq: Option<u64>,
        /// Prove that the tree of this many entries is a prefix of the current tree.
        #[arg(long)]
        consistency: Option<u64>,
        /// The size of the later tree (default: the whole ledger).
        #[arg(long, requires = "consistency")]
        to: Option<u64>,
    },
    /// Print a content-addressed blob (recorded config, runbooks, policies, an action's HTTP
    /// exchanges) after checking its hash; pretty JSON when it is JSON.
    Blob {
        #[command(flatten)]
        db: DbOpts,
        /// The blob's hash (64 hex digits), as an entry names it.
        hash: String,
    },
    /// Print entries, one per line (an action's or page's HTTP exchanges summarized).
    Show {
        #[command(flatten)]
        db: DbOpts,
        /// Only this incident's entries.
        #[arg(long)]
        incident: Option<String>,
        /// Only entries from this time on: RFC 3339 (`2026-11-24T08:00:00Z`) or a time ago
        /// (`90s`, `30m`, `2h`, `7d`).
        #[arg(long)]
        since: Option<String>,
        /// Include scrape events (many).
        #[arg(long)]
        all: bool,
        /// Print each entry's whole payload (canonical JSON, as stored and hashed) after its
        /// summary, still one entry per line; without it a command is cut at 160 characters.
        #[arg(long)]
        full: bool,
    },
}

/// Parses the arguments and runs the command; the process exits with the returned code.
#[must_use]
pub fn main() -> ExitCode {
    vigil_connectors::install_crypto_provider();
    let cli = Cli::parse();
    // The daemon logs what it does; the other commands print their own results.
    init_tracing(if matches!(cli.command, CliCommand::Serve { .. }) {
        "info"
    } else {
        "warn"
    });
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("error: cannot start the async runtime: {error}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(async move {
        match cli.command {
            CliCommand::Demo {
                scenario,
                db,
                assistant,
            } => demo::run(scenario, &db, assistant.as_deref()).await,
            CliCommand::Serve { config, listen } => serve::run(&config, listen).await,
            CliCommand::Check { config, offline } => serve::check(&config, offline).await,
            CliCommand::Runbook {
                command: RunbookCommand::Lint { dir },
            } => Ok(runbook::lint(&dir)),
            CliCommand::Policy {
                command: PolicyCommand::Check { dir },
            } => Ok(policy::check(&dir)),
            CliCommand::Policy {
                command: PolicyCommand::Test { dir },
            } => Ok(policy::test(&dir)),
            CliCommand::Ledger {
                command:
                    LedgerCommand::Verify {
                        db,
                        schema,
                        proof,
                        export,
                        checkpoint,
                        public_key,
                        archive,
                    },
            } => match (db, export, checkpoint, proof) {
                (_, _, _, Some(proof)) => ledger::verify_proof(&proof),
                (_, Some(export), _, None) => ledger::verify_export(&export),
                (Some(db), None, checkpoint, None) => {
                    let db = ledger::location_of(&db, schema.as_deref())?;
                    if let Some(dir) = archive
                        && !ledger::verify_segments(&dir, &db).await?
                    {
                        return Ok(ExitCode::FAILURE);
                    }
                    ledger::verify(&db, public_key.as_deref(), checkpoint.as_deref()).await
                }
                (None, None, _, None) => Ok(ExitCode::from(2)),
            },
            CliCommand::Ledger {
                command:
                    LedgerCommand::Checkpoint {
                        db,
                        key,
                        allow_key_in_git_tree,
                        out,
                    },
            } => {
                let place = if allow_key_in_git_tree {
                    crate::checkpoints::KeyPlace::Anywhere
                } else {
                    crate::checkpoints::KeyPlace::OutsideGit
                };
                ledger::checkpoint(&db.location()?, &key, place, &out).await
            }
            CliCommand::Ledger {
                command: LedgerCommand::Export { db, out },
            } => ledger::export(&db.location()?, &out).await,
            CliCommand::Ledger {
                command:
                    LedgerCommand::Archive {
                        db,
                        before,
                        out,
                        release_blobs,
                    },
            } => {
                let before_ms = ledger::parse_since(&before).map_err(|_| {
                    anyhow::anyhow!(
                        "--before `{before}`: neither a time ago (90d) nor an RFC 3339 time"
                    )
                })?;
                ledger::archive(&db.location()?, before_ms, &out, release_blobs).await
            }
            CliCommand::Ledger {
                command:
                    LedgerCommand::Prove {
                        db,
                        seq,
                        consistency,
                        to,
                    },
            } => match (seq, consistency) {
                (_, Some(from)) => ledger::prove_consistency(&db.location()?, from, to).await,
                (Some(seq), None) => ledger::prove(&db.location()?, seq).await,
                (None, None) => Ok(ExitCode::from(2)),
            },
            CliCommand::Ledger {
                command: LedgerCommand::Blob { db, hash },
            } => ledger::blob(&db.location()?, &hash).await,
            CliCommand::Ledger {
                command:
                    LedgerCommand::Show {
                        db,
                        incident,
                        since,
                        all,
                        full,
                    },
            } => {
                let options = ledger::ShowOptions {
                    incident: incident.as_deref(),
                    since_ms: since.as_deref().map(ledger::parse_since).transpose()?,
                    all,
                    full,
                };
                ledger::show(&db.location()?, options).await
            }
            CliCommand::Investigate {
                db,
                incident,
                config,
                transcript,
            } => {
                crate::commands::investigate::run(&crate::commands::investigate::InvestigateArgs {
                    db: db.location()?,
                    incident,
                    config,
                    transcript,
                })
                .await
            }
            CliCommand::Replay {
                db,
                incident,
                all: _,
                policies,
                with_current_policies,
                config,
                archive,
            } => {
                let scope = incident.map_or(replay::Scope::All, replay::Scope::Incident);
                let alternative = match (policies, config.filter(|_| with_current_policies)) {
                    (Some(dir), _) => Some(replay::policies_of_folder(&dir)?),
                    (None, Some(config)) => Some(replay::policies_of_config(&config)?),
                    (None, None) => None,
                };
                replay::run(
                    &db.location()?,
                    &scope,
                    alternative.as_ref(),
                    archive.as_deref(),
                )
                .await
            }
            CliCommand::Whoami { admin } => human::whoami(&admin.args()).await,
            CliCommand::AdminToken {
                command:
                    AdminTokenCommand::Add {
                        tokens_file,
                        name,
                        id,
                        groups,
                        roles,
                        expires,
                    },
            } => human::add_token(&human::NewToken {
                tokens_file,
                name,
                id,
                groups,
                roles,
                expires,
            }),
            CliCommand::Proposals { admin } => human::list(&admin.args()).await,
            CliCommand::Ask { question, admin } => human::ask(&admin.args(), &question).await,
            CliCommand::Approve { id, admin } => human::approve(&admin.args(), &id).await,
            CliCommand::Reject { id, admin } => human::reject(&admin.args(), &id).await,
            CliCommand::Kill {
                runbook,
                target,
                admin,
            } => human::kill(&admin.args(), human::kill_scope(runbook, target)?, true).await,
            CliCommand::Unkill {
                runbook,
                target,
                admin,
            } => human::kill(&admin.args(), human::kill_scope(runbook, target)?, false).await,
            CliCommand::Silence {
                id,
                detector,
                subject,
                duration,
                admin,
            } => human::silence(&admin.args(), id, detector, subject, duration).await,
            CliCommand::Unsilence { id, admin } => human::unsilence(&admin.args(), id).await,
            CliCommand::Trust { db } => trust::run(&db.location()?).await,
            CliCommand::Report {
                db,
                since,
                until,
                format,
                minutes_per_incident,
                minutes_per_decision,
            } => {
                let args = report::ReportArgs {
                    since,
                    until,
                    format,
                    assumptions: vigil_core::report::Assumptions {
                        minutes_per_incident,
                        minutes_per_decision,
                    },
                };
                report::run(&db.location()?, &args).await
            }
            CliCommand::Simulate {
                scenario,
                score,
                json,
                check,
                ledger,
                schema,
                quiet,
            } => {
                let scenario = match (score, scenario) {
                    (Some(dir), _) => return simulate::score(&dir).await,
                    (None, Some(scenario)) => scenario,
                    (None, None) => anyhow::bail!("give a scenario file, or `--score DIR`"),
                };
                let ledger = ledger
                    .map(|db| ledger::location_of(&db, schema.as_deref()))
                    .transpose()?;
                simulate::run(&simulate::SimulateArgs {
                    scenario,
                    json,
                    check,
                    ledger,
                    quiet,
                })
                .await
            }
            CliCommand::Backtest {
                detector,
                csv,
                config,
            } => Ok(backtest::run(&backtest::BacktestArgs {
                detector,
                csv,
                config,
            })),
            CliCommand::Metrics {
                command:
                    MetricsCommand::Parse {
                        input,
                        format,
                        bearer_token_env,
                        bearer_token_file,
                        timeout_secs,
                    },
            } => Ok(metrics::run(&metrics::ParseArgs {
                input,
                format,
                bearer_token_env,
                bearer_token_file,
                timeout_secs,
            })
            .await),
        }
    });
    match result {
        Ok(code) => code,
        Err(error) => {
            eprintln!("error: {error:#}");
            ExitCode::FAILURE
        }
    }
}

/// Logs go to stderr; `VIGIL_LOG` (e.g. `debug`, `vigil=debug,sqlx=warn`) overrides the level.
fn init_tracing(default_level: &str) {
    let filter = tracing_subscriber::EnvFilter::try_from_env("VIGIL_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default_level));
    // Colour codes only for a person at a terminal: a log file or a journal gets plain text.
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(ansi)
        .with_target(false)
        // A log line that cannot be written (stderr is a closed pipe) is lost; reporting that
        // on stderr would panic the thread that logged, and with it the daemon.
        .log_internal_errors(false)
        .init();
}
