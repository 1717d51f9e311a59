//! `vigil policy check` and `vigil policy test`: the Cedar policies of a folder on their own,
//! without a config.
//!
//! `check` loads `vigil.cedarschema` and every `*.cedar` the way the daemon does (strict
//! validation, unique `@id`s, all or nothing) and lists every problem with its file and line.
//! `test` then runs every `tests/*.json` case file against the set and prints one line per
//! case, and for a failing case what differed. Exit status: 0 when the set is valid (and every
//! case passed), 1 when a case failed, 2 when the set or a test file could not be loaded.

use std::path::Path;
use std::process::ExitCode;

use vigil_policy::{Authorizer, PolicyFile, run_policy_tests};

use crate::bundle::{self, PolicyTexts};
use crate::config::LocatedProblem;

/// Exit status when the policies or the tests could not be loaded.
const UNLOADABLE: u8 = 2;

/// Loads the folder's policy set, printing every problem when it is invalid.
fn load(dir: &Path) -> Result<(Authorizer, usize), ExitCode> {
    let report = |problems: Vec<LocatedProblem>| {
        eprintln!("{}: {} problem(s):", dir.display(), problems.len());
        for problem in problems {
            eprintln!("  {problem}");
        }
        ExitCode::from(UNLOADABLE)
    };
    let schema =
        bundle::read_text(&dir.join("vigil.cedarschema")).map_err(|found| report(found.0))?;
    let policies = bundle::read_folder(dir, &["cedar"]).map_err(|found| report(found.0))?;
    let n_files = policies.len();
    let authorizer = bundle::load_policies(&PolicyTexts { schema, policies }).map_err(report)?;
    Ok((authorizer, n_files))
}

/// `vigil policy check --dir DIR`.
#[must_use]
pub fn check(dir: &Path) -> ExitCode {
    match load(dir) {
        Ok((authorizer, n_files)) => {
            println!(
                "{}: ok ({n_files} policy files, {} policies, policy set {})",
                dir.display(),
                authorizer.policy_ids().len(),
                short(authorizer.policy_set_hash())
            );
            ExitCode::SUCCESS
        }
        Err(code) => code,
    }
}

/// `vigil policy test --dir DIR`: the cases in `DIR/tests/*.json`.
#[must_use]
pub fn test(dir: &Path) -> ExitCode {
    let (authorizer, _) = match load(dir) {
        Ok(loaded) => loaded,
        Err(code) => return code,
    };
    let tests_dir = dir.join("tests");
    let files = match bundle::read_folder(&tests_dir, &["json"]) {
        Ok(files) => files,
        Err(found) => {
            for problem in found.0 {
                eprintln!("{problem}");
            }
            return ExitCode::from(UNLOADABLE);
        }
    };
    let (mut n_passed, mut n_failed) = (0_usize, 0_usize);
    for file in &files {
        let cases = PolicyFile {
            path: file.name.clone(),
            text: file.text.clone(),
        };
        let results = match run_policy_tests(&authorizer, &cases) {
            Ok(results) => results,
            Err(error) => {
                eprintln!("{error}");
                return ExitCode::from(UNLOADABLE);
            }
        };
        for result in results {
            let mismatches = result.mismatches();
            if mismatches.is_empty() {
                n_passed += 1;
                println!("ok      {}: {}", file.name, result.name);
            } else {
                n_failed += 1;
                println!("FAILED  {}: {}", file.name, result.name);
                for mismatch in mismatches {
                    println!("          {mismatch}");
                }
            }
        }
    }
    println!(
        "{n_passed} passed, {n_failed} failed ({} test files, policy set {})",
        files.len(),
        short(authorizer.policy_set_hash())
    );
    if n_failed == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

fn short(hash: &str) -> &str {
    hash.get(..12).unwrap_or(hash)
}
