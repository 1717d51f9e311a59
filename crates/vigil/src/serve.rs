//! `vigil serve` and `vigil check`.
//!
//! Both load the config, the runbooks and the policies together (`bundle.rs`), then read the
//! listener's TLS files (`server.tls`) as the daemon will, so that `vigil check` refuses what
//! `vigil serve` would.

use std::net::SocketAddr;
use std::path::Path;
use std::process::ExitCode;

use anyhow::Context as _;
use tokio_util::sync::CancellationToken;
use vigil_ledger::{Ledger, LedgerLocation};

use crate::bundle;
use crate::config::LedgerSetting;
use crate::daemon::{Clock, Daemon, DaemonOptions};

/// `vigil check --config FILE`: exit 0 when everything is valid, 1 listing every problem.
pub fn check(config: &Path) -> anyhow::Result<ExitCode> {
    match bundle::load(config).and_then(|bundle| listener_files(&bundle).map(|()| bundle)) {
        Ok(bundle) => {
            println!(
                "{}: ok ({} sources, {} detectors, {} runbooks, {} policies, policy set {})",
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
        Err(problems) => {
            eprint!("{problems}");
            Ok(ExitCode::FAILURE)
        }
    }
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
    let location = ledger_location(&bundle.config.ledger)?;
    let ledger = Ledger::open(&location)
        .await
        .with_context(|| format!("opening the ledger {}", location.describe()))?;
    // The trust earned in earlier sessions; recorded with this session's config.
    bundle.engine.trust = crate::trust_cmd::tally(&ledger)
        .await
        .context("reading the runbooks' verified outcomes from the ledger")?
        .tallies;
    let address = listen.unwrap_or(bundle.config.listen);
    let listener = tokio::net::TcpListener::bind(address)
        .await
        .with_context(|| format!("listening on {address}"))?;
    let daemon = Daemon::build(
        bundle,
        ledger,
        Some(listener),
        Clock::system(),
        DaemonOptions {
            reload_on_sighup: true,
            ..DaemonOptions::default()
        },
    )?;
    if let Some(address) = daemon.local_addr() {
        // The address stays last on the line: scripts and tests read it from there.
        eprintln!(
            "vigil serving {} on {}://{address}",
            daemon.routes().join(", "),
            daemon.scheme()
        );
    }
    let cancel = CancellationToken::new();
    // The signal task ends with the runtime if the daemon stops for another reason.
    drop(tokio::spawn(shutdown_on_signal(cancel.clone())));
    let ledger = daemon.run(cancel.clone()).await?;
    ledger.close().await;
    eprintln!("vigil stopped");
    Ok(ExitCode::SUCCESS)
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

async fn shutdown_on_signal(cancel: CancellationToken) {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut terminate =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(signal) => signal,
                Err(error) => {
                    tracing::error!(%error, "cannot listen for SIGTERM");
                    let _ = ctrl_c.await;
                    cancel.cancel();
                    return;
                }
            };
        tokio::select! {
            _ = ctrl_c => eprintln!("SIGINT: stopping"),
            _ = terminate.recv() => eprintln!("SIGTERM: stopping"),
        }
    }
    #[cfg(not(unix))]
    {
        let _ = ctrl_c.await;
    }
    cancel.cancel();
}
