//! Where a ledger is and opening it: a SQLite file, or a PostgreSQL schema named by a
//! `postgres://` URL.

use std::path::{Path, PathBuf};

use anyhow::Context as _;
use vigil_ledger::{Ledger, LedgerLocation};

/// Opens an existing SQLite ledger; a missing file is an error, not a new ledger.
pub async fn open_existing(db: &Path) -> anyhow::Result<Ledger> {
    open_location(&LedgerLocation::Sqlite {
        path: db.to_path_buf(),
    })
    .await
}

/// Opens an existing ledger; a missing file or schema is an error, not a new ledger.
pub async fn open_location(location: &LedgerLocation) -> anyhow::Result<Ledger> {
    // Every ledger error names the ledger already.
    Ok(Ledger::open_existing(location).await?)
}

/// The ledger `--db` names: a `postgres://` or `postgresql://` URL (with `--schema`), else a
/// SQLite file.
///
/// # Errors
///
/// When `--schema` is given with a SQLite file.
pub fn location_of(db: &str, schema: Option<&str>) -> anyhow::Result<LedgerLocation> {
    if db.starts_with("postgres://") || db.starts_with("postgresql://") {
        return Ok(LedgerLocation::Postgres {
            url: db.to_owned(),
            schema: schema.map(str::to_owned),
        });
    }
    anyhow::ensure!(
        schema.is_none(),
        "--schema names a PostgreSQL schema, but --db `{db}` is a SQLite file"
    );
    Ok(LedgerLocation::Sqlite {
        path: PathBuf::from(db),
    })
}

/// Removes a SQLite ledger and its `-wal` and `-shm` files, when they exist, so that a demo
/// or a simulation starts a fresh one.
pub fn remove_sqlite_ledger(db: &Path) -> anyhow::Result<()> {
    for suffix in ["", "-wal", "-shm"] {
        let mut name = db.as_os_str().to_owned();
        name.push(suffix);
        let path = PathBuf::from(name);
        if path.exists() {
            std::fs::remove_file(&path)
                .with_context(|| format!("removing the previous ledger {}", path.display()))?;
        }
    }
    Ok(())
}

/// The archive segments in `dir` (`segment-FIRST-LAST.db`, written by `vigil ledger archive`),
/// in the order of their entries.
///
/// # Errors
///
/// When `dir` cannot be read.
pub fn segments_in(dir: &Path) -> anyhow::Result<Vec<PathBuf>> {
    let mut segments: Vec<PathBuf> = std::fs::read_dir(dir)
        .with_context(|| format!("reading the archive {}", dir.display()))?
        .filter_map(Result::ok)
        .map(|entry| entry.path())
        .filter(|path| {
            path.file_name()
                .and_then(|name| name.to_str())
                .is_some_and(|name| name.starts_with("segment-") && name.ends_with(".db"))
        })
        .collect();
    // The seqs in the names are zero-padded: their order is the entries'.
    segments.sort();
    Ok(segments)
}

/// The segment of the archive in `dir` that holds incident `incident_id`, if any.
///
/// # Errors
///
/// When `dir` or a segment cannot be read.
pub async fn segment_of_incident(dir: &Path, incident_id: &str) -> anyhow::Result<Option<PathBuf>> {
    for path in segments_in(dir)? {
        let segment = open_existing(&path).await?;
        let holds = segment.has_incident(incident_id).await;
        segment.close().await;
        if holds? {
            return Ok(Some(path));
        }
    }
    Ok(None)
}
