//! `vigil serve` and `vigil check`.
//!
//! Both go through `preflight`: the config, runbooks and policies (two stages), then
//! everything the daemon resolves before it starts (secrets, clients, tokens, keys, the
//! ledger's location, the OIDC issuer's keys). `check` stops there and reports; `serve` goes
//! on to bind its listener and only then opens (or creates) the ledger, so a config that
//! cannot start leaves no empty ledger behind. `check --offline` skips what needs the
//! environment (secrets, files outside the repository, the network), for linting in CI.
//!
//! The listener's TLS files (`server.tls`) are read as the daemon will, and their problems
//! are located in the config file like its own.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context as _;
use tokio_util::sync::CancellationToken;
use vigil_ledger::{Ledger, LedgerLocation};

use crate::bundle::{self, Bundle};
use crate::checkpoints::{self, KeyPlace};
use crate::config::LedgerSetting;
use crate::config::admin::JwksSource;
use crate::daemon::{Clock, Daemon, DaemonOptions, Resources};

/// Everything `serve` needs that a config can get wrong, resolved.
struct Preflighted {
    resources: Resources,
    ledger: LedgerLocation,
    /// Said about things that may work later (an identity provider that did not answer).
    warnings: Vec<String>,
}

/// Resolves what `serve` resolves before it starts.
///
/// # Errors
///
/// The first thing that would stop `serve` from starting, with the key it comes from.
async fn preflight(bundle: &Bundle) -> anyhow::Result<Preflighted> {
    let resources = Resources::resolve(&bundle.config)?;
    let ledger = ledger_location(&bundle.config.ledger)?;
    if let Some(checkpoint) = &bundle.config.checkpoint {
        let place = if checkpoint.allow_key_in_git_tree {
            KeyPlace::Anywhere
        } else {
            KeyPlace::OutsideGit
        };
        checkpoints::check_key(&checkpoint.key_file, place)
            .context("ledger.checkpoint.key_file")?;
    }
    let mut warnings = Vec::new();
    let oidc_url = bundle
        .config
        .admin
        .as_ref()
        .and_then(|admin| admin.oidc.as_ref())
        .and_then(|oidc| match &oidc.jwks {
            JwksSource::Url { url, .. } => Some(url.clone()),
            JwksSource::File(_) => None,
        });
    if let Some(url) = oidc_url
        && let Err(why) = check_jwks_url(&url).await?
    {
        warnings.push(why);
    }
    Ok(Preflighted {
        resources,
        ledger,
        warnings,
    })
}

/// Fetches the issuer's keys once: an answer that says the URL is wrong (4xx, not a JWKS) is
/// an error; no answer (the network, a timeout, a 5xx) is a warning, since the daemon keeps
/// trying and personal tokens and certificates work meanwhile.
async fn check_jwks_url(url: &reqwest::Url) -> anyhow::Result<Result<(), String>> {
    let client = vigil_connectors::http::client(std::time::Duration::from_secs(10))?;
    match vigil_connectors::jwks::fetch(&client, url.as_str(), std::time::Duration::from_secs(10))
        .await
    {
        Ok(bytes) => crate::identity::oidc::Jwks::parse(&bytes)
            .map(|_| Ok(()))
            .map_err(|why| anyhow::anyhow!("admin.oidc.jwks_url: {why}")),
        Err(vigil_connectors::ConnectorError::Status { status, .. }) if status < 500 => {
            anyhow::bail!("admin.oidc.jwks_url answered {status}: it is not the issuer's JWKS URL")
        }
        Err(error) => Ok(Err(format!(
            "admin.oidc.jwks_url: {error}; OIDC tokens are refused until the keys can be fetched"
        ))),
    }
}

/// `vigil check --config FILE [--offline]`: exit 0 when `serve` would start, 1 listing every
/// problem (or the first thing that cannot be resolved).
pub async fn check(config: &Path, offline: bool) -> anyhow::Result<ExitCode> {
    let bundle = match bundle::load(config) {
        Ok(bundle) => bundle,
        Err(problems) => {
            eprint!("{problems}");
            return Ok(ExitCode::FAILURE);
        }
    };
    // Runbooks that can never trigger: a warning, not a failure (a detector may come later).
    for warning in vigil_core::runbook::reach::unreachable_runbooks(
        &bundle.engine.detectors,
        &bundle.engine.runbooks,
    ) {
        eprintln!("warning: {warning}");
    }
    let resolved = if offline {
        "secrets not resolved (--offline)".to_owned()
    } else {
        if let Err(problems) = listener_files(&bundle) {
            eprint!("{problems}");
            return Ok(ExitCode::FAILURE);
        }
        match preflight(&bundle).await {
            Ok(preflighted) => {
                for warning in &preflighted.warnings {
                    eprintln!("warning: {warning}");
                }
                "secrets, tokens and keys resolved".to_owned()
            }
            Err(error) => {
                eprintln!(
                    "{}: `vigil serve` would not start: {error:#}",
                    config.display()
                );
                return Ok(ExitCode::FAILURE);
            }
        }
    };
    println!(
        "{}: ok ({} sources, {} detectors, {} runbooks, {} policies, policy set {}; {resolved})",
        config.display(),
        bundle.config.sources.len(),
        bundle.engine.detectors.len(),
        bundle.engine.runbooks.len(),
        bundle.authorizer.policy_ids().len(),
        bundle
            .authorizer
            .policy_set_hash()
            .get(..12)
            .unwrap_or_default(),
    );
    Ok(ExitCode::SUCCESS)
}

/// `vigil serve`: runs until SIGTERM or SIGINT, then stops gracefully and exits 0.
pub async fn run(config: &Path, listen: Option<SocketAddr>) -> anyhow::Result<ExitCode> {
    // First, so that the default connection limit is sized under the raised limit.
    match crate::daemon::server::raise_open_file_limit() {
        Ok(open_files) => tracing::debug!(open_files, "open-file limit"),
        Err(error) => tracing::warn!(%error, "cannot raise the open-file limit"),
    }
    let mut bundle =
        match bundle::load(config).and_then(|bundle| listener_files(&bundle).map(|()| bundle)) {
            Ok(bundle) => bundle,
            Err(problems) => {
                eprint!("{problems}");
                return Ok(ExitCode::FAILURE);
            }
        };
    let Preflighted {
        resources,
        ledger: location,
        warnings,
    } = preflight(&bundle).await?;
    for warning in warnings {
        tracing::warn!("{warning}");
    }
    for warning in vigil_core::runbook::reach::unreachable_runbooks(
        &bundle.engine.detectors,
        &bundle.engine.runbooks,
    ) {
        tracing::warn!("{}", crate::logsafe::Escaped(&warning));
    }
    let address = listen.unwrap_or(bundle.config.listen);
    let listener = tokio::net::TcpListener::bind(address)
        .await
        .with_context(|| format!("listening on {address}"))?;
    if let Some(replication) = bundle.config.replication.clone() {
        return serve_replica(config, bundle, resources, location, listener, replication).await;
    }
    let created = NewLedgerFile::before_opening(&location);
    let ledger = match Ledger::open(&location).await {
        Ok(ledger) => ledger,
        Err(error) => {
            created.remove_if_created();
            return Err(error)
                .with_context(|| format!("opening the ledger {}", location.describe()));
        }
    };
    // The trust earned in earlier sessions; recorded with this session's config.
    bundle.engine.trust = match crate::journal::trust::tally(&ledger).await {
        Ok(tally) => tally.tallies,
        Err(error) => {
            ledger.close().await;
            created.remove_if_created();
            return Err(error).context("reading the runbooks' verified outcomes from the ledger");
        }
    };
    let daemon = Daemon::with_resources(
        bundle,
        resources,
        ledger,
        Some(listener),
        Clock::system(),
        DaemonOptions {
            reload_on_sighup: true,
            ..DaemonOptions::default()
        },
    );
    // SIGTERM is taken over before the startup line says vigil is up, so that a stop asked
    // for as soon as it is up does not meet the default action (an abrupt end).
    let signals = termination_signals();
    if let Some(address) = daemon.local_addr() {
        // The address stays last on the line: scripts and tests read it from there.
        say(&format!(
            "vigil serving {} on {}://{address}",
            daemon.routes().join(", "),
            daemon.scheme()
        ));
    }
    let cancel = CancellationToken::new();
    // The signal task ends with the runtime if the daemon stops for another reason.
    drop(tokio::spawn(shutdown_on_signal(signals, cancel.clone())));
    let ledger = daemon.run(cancel.clone()).await?;
    ledger.close().await;
    say("vigil stopped");
    Ok(ExitCode::SUCCESS)
}

/// `vigil serve` as one of several replicas of one PostgreSQL ledger (`daemon/replica/`).
async fn serve_replica(
    config: &Path,
    bundle: bundle::Bundle,
    resources: Resources,
    location: LedgerLocation,
    listener: tokio::net::TcpListener,
    replication: crate::config::replication::ReplicationConfig,
) -> anyhow::Result<ExitCode> {
    let scheme = if resources.terminates_tls() {
        "https"
    } else {
        "http"
    };
    let address = listener
        .local_addr()
        .context("reading the listener's address")?;
    let identity = crate::daemon::replica::Identity::resolve(&replication, address, scheme)?;
    let signals = termination_signals();
    // The address stays last on the line: scripts and tests read it from there.
    say(&format!(
        "vigil serving as replica {} on {scheme}://{address}",
        crate::logsafe::Escaped(&identity.id)
    ));
    let cancel = CancellationToken::new();
    drop(tokio::spawn(shutdown_on_signal(signals, cancel.clone())));
    let config_path = config.to_path_buf();
    let prepare: crate::daemon::replica::Prepare = Box::new(move || {
        let bundle = bundle::load(&config_path)
            .map_err(|problems| anyhow::anyhow!("the config no longer loads:\n{problems}"))?;
        let resources = Resources::resolve(&bundle.config)?;
        Ok((bundle, resources))
    });
    let replica = crate::daemon::replica::Replica {
        identity,
        config: replication,
        location,
        listener,
        clock: Clock::system(),
        options: DaemonOptions {
            reload_on_sighup: true,
            ..DaemonOptions::default()
        },
        resources,
        bundle,
    };
    replica.run(prepare, cancel).await?;
    say("vigil stopped");
    Ok(ExitCode::SUCCESS)
}

/// SIGTERM and SIGINT, taken over (before the startup line says vigil is up, so that a stop
/// asked for as soon as it is up does not meet the default action, an abrupt end).
#[cfg(unix)]
fn termination_signals()
-> std::io::Result<(tokio::signal::unix::Signal, tokio::signal::unix::Signal)> {
    use tokio::signal::unix::{SignalKind, signal};
    signal(SignalKind::terminate()).and_then(|terminate| {
        signal(SignalKind::interrupt()).map(|interrupt| (terminate, interrupt))
    })
}

#[cfg(not(unix))]
fn termination_signals() {}

/// A SQLite ledger file that `serve` is about to create: removed again if the start fails
/// before the daemon records anything, so a failed start leaves no empty ledger.
struct NewLedgerFile {
    path: Option<PathBuf>,
}

impl NewLedgerFile {
    fn before_opening(location: &LedgerLocation) -> NewLedgerFile {
        let path = match location {
            LedgerLocation::Sqlite { path } if !path.exists() => Some(path.clone()),
            LedgerLocation::Sqlite { .. } | LedgerLocation::Postgres { .. } => None,
        };
        NewLedgerFile { path }
    }

    fn remove_if_created(&self) {
        let Some(path) = &self.path else {
            return;
        };
        for suffix in ["", "-wal", "-shm"] {
            let mut name = path.as_os_str().to_owned();
            name.push(suffix);
            let _ = std::fs::remove_file(PathBuf::from(name));
        }
    }
}

/// Reads and checks the listener's TLS files, as `Daemon::build` will; problems are located
/// in the config file like its own.
fn listener_files(bundle: &bundle::Bundle) -> Result<(), crate::config::Problems> {
    let Some(tls) = &bundle.config.server.tls else {
        return Ok(());
    };
    crate::daemon::server::tls::load(tls)
        .map(|_| ())
        .map_err(|problems| {
            crate::config::locate(&bundle.config_file.name, &bundle.config_file.text, problems)
        })
}

/// Where the config says the ledger is.
pub fn ledger_location(setting: &LedgerSetting) -> anyhow::Result<LedgerLocation> {
    Ok(match setting {
        LedgerSetting::Sqlite(path) => LedgerLocation::Sqlite { path: path.clone() },
        LedgerSetting::Postgres { url, schema } => LedgerLocation::Postgres {
            url: url
                .resolve()
                .context("ledger: postgres_url")?
                .expose()
                .to_owned(),
            schema: schema.clone(),
        },
    })
}

async fn shutdown_on_signal(
    #[cfg(unix)] signals: std::io::Result<(
        tokio::signal::unix::Signal,
        tokio::signal::unix::Signal,
    )>,
    #[cfg(not(unix))] _signals: (),
    cancel: CancellationToken,
) {
    #[cfg(unix)]
    {
        let (mut terminate, mut interrupt) = match signals {
            Ok(signals) => signals,
            Err(error) => {
                tracing::error!(%error, "cannot listen for SIGTERM and SIGINT");
                let _ = tokio::signal::ctrl_c().await;
                cancel.cancel();
                return;
            }
        };
        let signal = tokio::select! {
            _ = interrupt.recv() => "SIGINT",
            _ = terminate.recv() => "SIGTERM",
        };
        // Stop first: a failed write must not keep the daemon from stopping.
        cancel.cancel();
        say(&format!("{signal}: stopping"));
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
        cancel.cancel();
    }
}

/// Writes a line to stderr, ignoring a closed pipe (the daemon must not panic because nobody
/// reads it any more).
fn say(line: &str) {
    use std::io::Write as _;
    let _ = writeln!(std::io::stderr(), "{line}");
}
