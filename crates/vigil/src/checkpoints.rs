//! Signed checkpoints of the ledger's tree head, for the daemon and the CLI: the signing key
//! (created mode 0600 on first use), taking a checkpoint, publishing it to a file (replaced
//! atomically), and judging a log against checkpoints. The webhook that also publishes it is
//! `vigil_connectors::CheckpointWebhook`, since only the connectors speak HTTP outward.
//!
//! A checkpoint signs (tree size, RFC 6962 tree head, time). Whoever can rewrite the database
//! can recompute every hash of a log they cut or changed, but cannot sign a checkpoint with
//! vigil's key: the log must still hold each checkpoint's first `tree_size` entries with the
//! same tree head. A checkpoint stored in the database is lost with it; the published copies
//! are not.

use std::collections::BTreeMap;
use std::io::Write as _;
use std::path::Path;

use anyhow::Context as _;
use ed25519_dalek::SigningKey;
use vigil_ledger::Ledger;
use vigil_ledger::checkpoint::Checkpoint;

/// Where a signing key may be created.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KeyPlace {
    /// Anywhere but inside a git work tree.
    OutsideGit,
    /// Anywhere, a git work tree included (the operator said so).
    Anywhere,
}

/// Checks, without creating anything, that the key at `path` can be used: an existing key
/// holds 32 bytes in hex and is not readable by every user; a missing one may be created
/// there.
///
/// # Errors
///
/// Why `load_or_create_key` would fail.
pub fn check_key(path: &Path, place: KeyPlace) -> anyhow::Result<()> {
    if path.exists() {
        read_key(path).map(|_| ())
    } else {
        may_create_here(path, place)
    }
}

/// The git work tree `path` would be inside, if any: the nearest ancestor with a `.git`.
fn git_work_tree(path: &Path) -> Option<std::path::PathBuf> {
    let absolute = if path.is_absolute() {
        path.to_path_buf()
    } else {
        std::env::current_dir().ok()?.join(path)
    };
    absolute
        .ancestors()
        .skip(1)
        .find(|folder| folder.join(".git").exists())
        .map(Path::to_path_buf)
}

/// Whether git ignores `path` in `tree` (so that `git add -A` would not take it); `None`
/// when git cannot say (it is not installed, or fails).
fn git_ignores(tree: &Path, path: &Path) -> Option<bool> {
    let status = std::process::Command::new("git")
        .arg("-C")
        .arg(tree)
        .args(["check-ignore", "--quiet", "--"])
        .arg(path)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()
        .ok()?;
    match status.code() {
        Some(0) => Some(true),
        Some(1) => Some(false),
        _ => None,
    }
}

fn may_create_here(path: &Path, place: KeyPlace) -> anyhow::Result<()> {
    if place == KeyPlace::OutsideGit
        && let Some(tree) = git_work_tree(path)
        && git_ignores(&tree, path) != Some(true)
    {
        anyhow::bail!(
            "refusing to create the private key {} inside the git work tree {}, where git does not ignore it: one `git add -A` would commit it. Keep it with vigil's state (for example /var/lib/vigil), or set `ledger.checkpoint.allow_key_in_git_tree: true`",
            path.display(),
            tree.display()
        );
    }
    let folder = path
        .parent()
        .filter(|parent| !parent.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    anyhow::ensure!(
        folder.is_dir(),
        "cannot create the key {}: the folder {} does not exist",
        path.display(),
        folder.display()
    );
    Ok(())
}

/// Reads an existing key, refusing one every user can read.
fn read_key(path: &Path) -> anyhow::Result<SigningKey> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        let mode = std::fs::metadata(path)
            .with_context(|| format!("reading the key {}", path.display()))?
            .permissions()
            .mode();
        anyhow::ensure!(
            mode & 0o006 == 0,
            "the key {} is readable by every user (mode {:o}); chmod 600 it",
            path.display(),
            mode & 0o7777
        );
    }
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("reading the key {}", path.display()))?;
    let seed: [u8; 32] = hex::decode(text.trim())
        .ok()
        .and_then(|bytes| bytes.try_into().ok())
        .with_context(|| format!("{} does not hold a 32-byte key in hex", path.display()))?;
    Ok(SigningKey::from_bytes(&seed))
}

/// Reads the signing key (32 bytes in hex), or creates it (mode 0600) when the file does not
/// exist and `place` allows it there.
///
/// # Errors
///
/// When the file cannot be read or created, does not hold a key, is readable by every user,
/// or would be created inside a git work tree that `place` excludes.
pub fn load_or_create_key(path: &Path, place: KeyPlace) -> anyhow::Result<SigningKey> {
    if path.exists() {
        return read_key(path);
    }
    may_create_here(path, place)?;
    let mut seed = [0_u8; 32];
    getrandom::getrandom(&mut seed).map_err(|error| anyhow::anyhow!("no randomness: {error}"))?;
    crate::private_file::create(path, &format!("{}\n", hex::encode(seed)))
        .context("creating the ledger's checkpoint signing key")?;
    tracing::warn!(
        key = %path.display(),
        public_key = %hex::encode(SigningKey::from_bytes(&seed).verifying_key().to_bytes()),
        "created the ledger's checkpoint signing key (mode 0600); keep its public key where auditors can pin it"
    );
    Ok(SigningKey::from_bytes(&seed))
}

/// Signs the ledger's current tree head and stores the checkpoint in the ledger.
///
/// # Errors
///
/// When the ledger's leaves are damaged (no tree head) or the checkpoint cannot be stored.
pub async fn take(ledger: &Ledger, key: &SigningKey, at_ms: i64) -> anyhow::Result<Checkpoint> {
    let (size, head) = ledger.tree_head().context(
        "the ledger's stored leaf hashes are damaged, so there is no tree head to sign (run `vigil ledger verify`)",
    )?;
    let checkpoint = Checkpoint::sign(key, size, head, at_ms);
    ledger.store_checkpoint(&checkpoint).await?;
    Ok(checkpoint)
}

/// Writes `checkpoint` to `path` as JSON, replacing the file atomically (a temporary file in
/// the same folder, synced, then renamed over it).
///
/// # Errors
///
/// When the file cannot be written.
pub fn publish_file(path: &Path, checkpoint: &Checkpoint) -> anyhow::Result<()> {
    let mut temporary = path.as_os_str().to_owned();
    temporary.push(".tmp");
    let temporary = std::path::PathBuf::from(temporary);
    let text = serde_json::to_string_pretty(checkpoint)? + "\n";
    let mut file = std::fs::File::create(&temporary)
        .with_context(|| format!("writing {}", temporary.display()))?;
    file.write_all(text.as_bytes())
        .and_then(|()| file.sync_all())
        .with_context(|| format!("writing {}", temporary.display()))?;
    std::fs::rename(&temporary, path).with_context(|| format!("replacing {}", path.display()))?;
    Ok(())
}

/// The wall clock, in milliseconds since the Unix epoch.
#[must_use]
pub fn now_ms() -> i64 {
    crate::clock::wall_now_ms()
}

/// What a checkpoint says about a log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// The log holds the checkpoint's entries unchanged.
    Holds,
    /// The signature does not verify: the checkpoint was altered or forged.
    Refused(String),
    /// Signed (validly) by another key than the expected one: it vouches for nothing here.
    OtherKey {
        /// The key that signed it.
        found: String,
        /// The key expected.
        expected: String,
    },
    /// The log holds fewer entries than the checkpoint vouches for.
    Truncated {
        /// Entries the checkpoint vouches for.
        vouched: u64,
        /// Entries the intact log holds.
        held: u64,
    },
    /// The log's first `tree_size` entries no longer form the checkpoint's tree head.
    Rewritten,
}

/// Judges `checkpoint` against a log whose intact prefix holds `n_entries` entries, given
/// the tree heads of that log at the checkpoints' sizes (from
/// [`Ledger::verify_with_heads`]) and the key it must be signed with, if pinned.
#[must_use]
pub fn judge(
    checkpoint: &Checkpoint,
    n_entries: u64,
    heads: &BTreeMap<u64, [u8; 32]>,
    pinned_key: Option<&str>,
) -> Verdict {
    judge_head(
        checkpoint,
        n_entries,
        heads.get(&checkpoint.tree_size),
        pinned_key,
    )
}

/// [`judge`], given the log's tree head at the checkpoint's size (`None` when the log does
/// not reach it), as [`Ledger::verify_with_checkpoints`] hands it over.
#[must_use]
pub fn judge_head(
    checkpoint: &Checkpoint,
    n_entries: u64,
    head_at_size: Option<&[u8; 32]>,
    pinned_key: Option<&str>,
) -> Verdict {
    match checkpoint.verify_signature(pinned_key) {
        Ok(()) => {}
        Err(vigil_ledger::checkpoint::CheckpointError::UnexpectedKey { found, expected }) => {
            // Checked first, so a validly signed checkpoint by another key is told apart
            // from an altered one.
            return match checkpoint.verify_signature(None) {
                Ok(()) => Verdict::OtherKey { found, expected },
                Err(error) => Verdict::Refused(error.to_string()),
            };
        }
        Err(error) => return Verdict::Refused(error.to_string()),
    }
    if checkpoint.tree_size > n_entries {
        return Verdict::Truncated {
            vouched: checkpoint.tree_size,
            held: n_entries,
        };
    }
    match (checkpoint.head_bytes(), head_at_size) {
        (Ok(head), Some(actual)) if &head == actual => Verdict::Holds,
        _ => Verdict::Rewritten,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_checkpoint_holds_only_for_the_same_head_signed_by_the_pinned_key() {
        let key = SigningKey::from_bytes(&[5; 32]);
        let checkpoint = Checkpoint::sign(&key, 3, [1; 32], 10);
        let heads: BTreeMap<u64, [u8; 32]> = [(3, [1; 32])].into_iter().collect();
        let public = checkpoint.public_key.clone();
        assert_eq!(judge(&checkpoint, 5, &heads, Some(&public)), Verdict::Holds);
        assert_eq!(
            judge(&checkpoint, 2, &heads, None),
            Verdict::Truncated {
                vouched: 3,
                held: 2
            }
        );
        let other: BTreeMap<u64, [u8; 32]> = [(3, [2; 32])].into_iter().collect();
        assert_eq!(judge(&checkpoint, 5, &other, None), Verdict::Rewritten);
        let other_key = Checkpoint::sign(&SigningKey::from_bytes(&[6; 32]), 3, [1; 32], 10);
        assert!(matches!(
            judge(&other_key, 5, &heads, Some(&public)),
            Verdict::OtherKey { .. }
        ));
        let mut altered = checkpoint.clone();
        altered.at_ms += 1;
        assert!(matches!(
            judge(&altered, 5, &heads, Some(&public)),
            Verdict::Refused(_)
        ));
    }

    #[test]
    fn a_key_is_created_private_once_and_read_back() {
        let dir = std::env::temp_dir().join(format!("vigil-key-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("ledger.key");
        let created = load_or_create_key(&path, KeyPlace::OutsideGit).unwrap();
        let read = load_or_create_key(&path, KeyPlace::OutsideGit).unwrap();
        assert_eq!(created.to_bytes(), read.to_bytes());
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        std::fs::write(&path, "not a key").unwrap();
        assert!(load_or_create_key(&path, KeyPlace::OutsideGit).is_err());
        std::fs::remove_dir_all(&dir).unwrap();
    }

    // `vigil serve --config examples/vigil.yaml` from a checkout wrote the private key into
    // the repository root, which git did not ignore.
    #[test]
    fn a_key_is_not_created_inside_a_git_work_tree_unless_allowed() {
        let tree = std::env::temp_dir().join(format!("vigil-git-tree-{}", std::process::id()));
        let nested = tree.join("state/deeper");
        std::fs::create_dir_all(tree.join(".git")).unwrap();
        std::fs::create_dir_all(&nested).unwrap();
        let path = nested.join("ledger.key");
        let refused = load_or_create_key(&path, KeyPlace::OutsideGit).unwrap_err();
        assert!(
            refused.to_string().contains("inside the git work tree"),
            "{refused}"
        );
        assert!(check_key(&path, KeyPlace::OutsideGit).is_err());
        assert!(!path.exists(), "nothing was created");
        assert!(check_key(&path, KeyPlace::Anywhere).is_ok());
        load_or_create_key(&path, KeyPlace::Anywhere).unwrap();
        // An existing key every user can read is refused, wherever it is.
        use std::os::unix::fs::PermissionsExt as _;
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        let exposed = check_key(&path, KeyPlace::Anywhere).unwrap_err();
        assert!(
            exposed.to_string().contains("readable by every user"),
            "{exposed}"
        );
        assert!(check_key(&tree.join("missing/x.key"), KeyPlace::Anywhere).is_err());
        std::fs::remove_dir_all(&tree).unwrap();

        // In a real repository, a path git ignores is no risk; one it would add is refused.
        let repository =
            std::env::temp_dir().join(format!("vigil-git-repo-{}", std::process::id()));
        std::fs::create_dir_all(&repository).unwrap();
        let initialised = std::process::Command::new("git")
            .arg("-C")
            .arg(&repository)
            .args(["init", "--quiet"])
            .status();
        if initialised.is_ok_and(|status| status.success()) {
            std::fs::write(repository.join(".gitignore"), "/state/\n").unwrap();
            std::fs::create_dir_all(repository.join("state")).unwrap();
            assert!(check_key(&repository.join("state/ledger.key"), KeyPlace::OutsideGit).is_ok());
            assert!(check_key(&repository.join("ledger.key"), KeyPlace::OutsideGit).is_err());
        } else {
            eprintln!("git is not installed: the ignored-path case is not checked");
        }
        std::fs::remove_dir_all(&repository).unwrap();
    }
}
