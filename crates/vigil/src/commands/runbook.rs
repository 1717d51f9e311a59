//! `vigil runbook lint`: the runbooks of a folder on their own, without a config.
//!
//! Every `*.yaml` and `*.yml` is parsed and validated as the daemon does (unknown keys,
//! templates, guardrails, compensations, verification, duplicate ids), and every problem is
//! listed with its file, line and key path. What only a config can tell (that a trigger's
//! detector exists, that a LiteLLM action has an admin API) is `vigil check`'s job. Exit
//! status: 0 when every runbook is valid, 1 when one is not, 2 when the folder is unreadable.

use std::path::Path;
use std::process::ExitCode;

use crate::bundle;

/// Exit status when the folder cannot be read.
const UNREADABLE: u8 = 2;

/// `vigil runbook lint --dir DIR`.
#[must_use]
pub fn lint(dir: &Path) -> ExitCode {
    let files = match bundle::read_folder(dir, &["yaml", "yml"]) {
        Ok(files) => files,
        Err(found) => {
            for problem in found.0 {
                eprintln!("{problem}");
            }
            return ExitCode::from(UNREADABLE);
        }
    };
    let mut problems = Vec::new();
    let runbooks = bundle::load_runbooks(&files, &mut problems);
    if problems.is_empty() {
        let ids: Vec<&str> = runbooks
            .iter()
            .map(|(_, runbook)| runbook.id.as_str())
            .collect();
        println!(
            "{}: ok ({} runbooks: {})",
            dir.display(),
            ids.len(),
            ids.join(", ")
        );
        return ExitCode::SUCCESS;
    }
    eprintln!("{}: {} problem(s):", dir.display(), problems.len());
    for problem in problems {
        eprintln!("  {problem}");
    }
    ExitCode::FAILURE
}
