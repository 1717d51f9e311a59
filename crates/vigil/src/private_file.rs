//! Creating a file only its owner can read (mode 0600): a key, a tokens file, a demo secret.

use std::io::Write as _;
use std::path::Path;

use anyhow::Context as _;

/// Creates `path` (which must not exist yet) readable by its owner only, writes `text` and
/// syncs it to disk.
///
/// # Errors
///
/// When the file exists already or cannot be created or written.
pub fn create(path: &Path, text: &str) -> anyhow::Result<()> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt as _;
        options.mode(0o600);
    }
    let mut file = options
        .open(path)
        .with_context(|| format!("creating {}", path.display()))?;
    file.write_all(text.as_bytes())
        .and_then(|()| file.sync_all())
        .with_context(|| format!("writing {}", path.display()))
}
