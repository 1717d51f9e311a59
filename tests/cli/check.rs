//! `vigil check`: the shipped example passes; broken configs, runbooks and policies fail
//! with exit code 1 and every problem located by file and line.

use std::path::{Path, PathBuf};

use crate::support::{Finished, TempDir, repo_root, vigil};

/// A copy of `examples/vigil.yaml` with the shipped `policies/` and `runbooks/` beside it.
struct ConfigDir {
    dir: TempDir,
}

impl ConfigDir {
    fn new(label: &str) -> ConfigDir {
        let dir = TempDir::new(label);
        for folder in ["policies", "runbooks"] {
            let to = dir.join(folder);
            std::fs::create_dir(&to).expect("creating a folder");
            for entry in std::fs::read_dir(repo_root().join(folder)).expect("listing") {
                let path = entry.expect("an entry").path();
                if path.is_file() {
                    std::fs::copy(&path, to.join(path.file_name().expect("a name")))
                        .expect("copying");
                }
            }
        }
        let config_dir = ConfigDir { dir };
        std::fs::copy(repo_root().join("examples/vigil.yaml"), config_dir.config())
            .expect("copying the example config");
        config_dir.edit(
            "vigil.yaml",
            "policies_dir: ../policies",
            "policies_dir: policies",
        );
        config_dir.edit(
            "vigil.yaml",
            "runbooks_dir: ../runbooks",
            "runbooks_dir: runbooks",
        );
        config_dir.edit(
            "vigil.yaml",
            "sqlite_path: /var/lib/vigil/vigil.db",
            "sqlite_path: vigil.db",
        );
        config_dir.edit(
            "vigil.yaml",
            "key_file: /var/lib/vigil/ledger.key",
            "key_file: ledger.key",
        );
        config_dir.edit(
            "vigil.yaml",
            "publish_file: /var/lib/vigil/checkpoint.json",
            "publish_file: checkpoint.json",
        );
        config_dir
    }

    fn config(&self) -> PathBuf {
        self.dir.join("vigil.yaml")
    }

    fn path(&self, file: &str) -> PathBuf {
        self.dir.join(file)
    }

    /// Replaces the one occurrence of `from` in `file` with `to`; returns the 1-based line
    /// where `to` now starts.
    fn edit(&self, file: &str, from: &str, to: &str) -> usize {
        let path = self.path(file);
        let text = std::fs::read_to_string(&path).expect("reading");
        assert_eq!(
            text.matches(from).count(),
            1,
            "`{from}` must occur once in {file}"
        );
        let at = text.find(from).expect("found");
        std::fs::write(&path, text.replacen(from, to, 1)).expect("writing");
        text[..at].matches('\n').count() + 1
    }

    /// `vigil check --offline`: the config, runbooks and policies (the example's secrets are
    /// not in this environment; `check_online.rs` resolves them).
    fn check(&self) -> Finished {
        vigil(
            [
                "check".as_ref(),
                "--offline".as_ref(),
                "--config".as_ref(),
                self.config().as_os_str(),
            ],
            self.dir.path(),
        )
    }

    /// `vigil check` without `--offline`: it also reads what `serve` reads before it starts.
    fn check_online(&self) -> Finished {
        vigil(
            [
                "check".as_ref(),
                "--config".as_ref(),
                self.config().as_os_str(),
            ],
            self.dir.path(),
        )
    }

    /// The copied config passes before a test breaks it, so its failure is the test's doing.
    fn assert_valid(&self) {
        self.check()
            .assert_success("vigil check of the unmodified copy");
    }
}

fn show(path: &Path) -> String {
    path.display().to_string()
}

/// Asserts exit code 1, the problem count, and one stderr line per expected problem.
fn assert_problems(run: &Finished, expected: &[String]) {
    assert_eq!(run.code(), 1, "vigil check should fail: {run}");
    let count = expected.len();
    let header = format!("{count} problem{}:", if count == 1 { "" } else { "s" });
    assert!(
        run.stderr.starts_with(&header),
        "expected `{header}`: {run}"
    );
    for problem in expected {
        assert!(
            run.stderr
                .lines()
                .any(|line| line.trim_start().starts_with(problem.as_str())),
            "no problem reported as `{problem}`: {run}"
        );
    }
}

#[test]
fn check_accepts_the_example_config() {
    let config = repo_root().join("examples/vigil.yaml");
    let run = vigil(
        [
            "check".as_ref(),
            "--offline".as_ref(),
            "--config".as_ref(),
            config.as_os_str(),
        ],
        &repo_root(),
    );
    run.assert_success("vigil check --offline examples/vigil.yaml");
    assert!(
        run.stdout.starts_with(&format!("{}: ok (", show(&config))),
        "{run}"
    );
    // Every shipped runbook triggers on a kind the example's detectors can produce.
    assert!(!run.stderr.contains("will never run"), "{run}");
}

/// A runbook whose hypothesis no configured detector can produce is a warning: the config
/// still passes, but the operator learns the runbook will never run.
#[test]
fn check_warns_about_a_runbook_no_detector_can_trigger() {
    let dir = ConfigDir::new("check-unreachable-runbook");
    // Without the prompt-versions detector nothing reports a prompt's version change.
    dir.edit(
        "vigil.yaml",
        "kind: version_change            # the diagnoser blames a change that precedes a",
        "kind: threshold                 # no longer a version change",
    );
    dir.edit(
        "vigil.yaml",
        "    selector: vigil_eval_cases_total\n    version_label: prompt_version\n    group_by: prompt\n    max_versions: 32",
        "    value: vigil_eval_cases_total\n    describe: eval cases\n    group_by: prompt\n    above: 1000000\n    clear: 10",
    );
    let run = dir.check();
    run.assert_success("vigil check --offline with an unreachable runbook");
    for runbook in [
        "rollback-prompt-after-eval-regression",
        "rollback-prompt-after-size-growth",
    ] {
        assert!(
            run.stderr.contains(&format!(
                "warning: runbook `{runbook}` triggers on `recent_change`, which none of its detectors"
            )),
            "{runbook}: {run}"
        );
    }
    assert_eq!(run.stderr.matches("will never run").count(), 2, "{run}");
}

#[test]
fn check_names_the_file_and_line_of_an_unknown_key() {
    let dir = ConfigDir::new("check-unknown-key");
    dir.assert_valid();
    let line = dir.edit(
        "vigil.yaml",
        "max_concurrent_scrapes: 8",
        "max_concurrent_scrapes: 8\nmax_concurent_scrapes: 8",
    ) + 1;
    let run = dir.check();
    assert_problems(
        &run,
        &[format!(
            "{}:{line}: unknown field `max_concurent_scrapes`",
            show(&dir.config())
        )],
    );
}

#[test]
fn check_names_a_detector_whose_source_does_not_exist() {
    let dir = ConfigDir::new("check-missing-source");
    dir.assert_valid();
    let line = dir.edit(
        "vigil.yaml",
        "    source: litellm-gateway\n",
        "    source: litellm-gatewy\n",
    );
    assert_problems(
        &dir.check(),
        &[format!(
            "{}:{line}: `detectors[0].source`: no source is named `litellm-gatewy`",
            show(&dir.config())
        )],
    );
}

/// Misspells the runbook's template variable; returns the expected problem.
fn break_runbook(dir: &ConfigDir) -> String {
    let file = "runbooks/block-runaway-key.yaml";
    let line = dir.edit(
        file,
        "key: \"{{ incident.key }}\"   #",
        "key: \"{{ incident.kee }}\"   #",
    );
    format!(
        "{}:{line}: `steps[0].params.key`: unknown variable `incident.kee`",
        show(&dir.path(file))
    )
}

/// Breaks a Cedar policy's syntax; returns the expected problem (Cedar names the file only).
fn break_policy(dir: &ConfigDir) -> String {
    let line = dir.edit(
        "policies/runaway-keys.cedar",
        "when { context.is_compensation };",
        "when { context.is_compensation ;",
    );
    format!("runaway-keys.cedar:{line}: unexpected token `;`")
}

#[test]
fn check_lists_runbook_and_policy_problems_together() {
    let dir = ConfigDir::new("check-runbook-policy");
    dir.assert_valid();
    let expected = [break_runbook(&dir), break_policy(&dir)];
    assert_problems(&dir.check(), &expected);
}

#[test]
fn check_lists_every_problem_of_config_runbooks_and_policies_at_once() {
    let dir = ConfigDir::new("check-all-three");
    dir.assert_valid();
    let line = dir.edit(
        "vigil.yaml",
        "    source: litellm-gateway\n",
        "    source: litellm-gatewy\n",
    );
    let expected = [
        format!(
            "{}:{line}: `detectors[0].source`: no source is named `litellm-gatewy`",
            show(&dir.config())
        ),
        break_runbook(&dir),
        break_policy(&dir),
    ];
    assert_problems(&dir.check(), &expected);
}

#[test]
fn check_reads_the_listener_tls_files_as_serve_would() {
    let dir = ConfigDir::new("check-tls");
    dir.assert_valid();
    let line = dir.edit(
        "vigil.yaml",
        "  # tls:\n  #   cert_file: tls/vigil.crt ",
        "  tls:\n    cert_file: tls/vigil.crt ",
    ) + 1;
    dir.edit(
        "vigil.yaml",
        "  #   key_file: tls/vigil.key ",
        "    key_file: tls/vigil.key ",
    );
    std::fs::create_dir(dir.path("tls")).expect("creating tls/");
    // A certificate file that is not PEM, and no key file at all.
    std::fs::write(dir.path("tls/vigil.crt"), "not a certificate\n").expect("writing");
    let config = show(&dir.config());
    let run = dir.check_online();
    assert_problems(
        &run,
        &[
            format!(
                "{config}:{line}: `server.tls.cert_file`: `{}` holds no PEM certificate",
                show(&dir.path("tls/vigil.crt"))
            ),
            format!(
                "{config}:{}: `server.tls.key_file`: cannot read `{}`",
                line + 1,
                show(&dir.path("tls/vigil.key"))
            ),
        ],
    );
}

/// Each action kind says what it goes through (`vigil_core::action::Target`), and `check`
/// finds a step with nowhere to go: here the Langfuse project the prompt rollbacks name.
#[test]
fn check_names_a_step_whose_target_is_not_configured() {
    let dir = ConfigDir::new("check-missing-target");
    dir.assert_valid();
    dir.edit(
        "vigil.yaml",
        "    - name: langfuse                #",
        "    - name: langfuze                #",
    );
    let run = dir.check();
    assert_eq!(run.code(), 1, "vigil check should fail: {run}");
    assert!(run.stderr.starts_with("4 problems:"), "{run}");
    for runbook in [
        "rollback-prompt-after-eval-regression.yaml",
        "rollback-prompt-after-size-growth.yaml",
    ] {
        for key in [
            "steps[0].params.target",
            "steps[0].compensation.params.target",
        ] {
            assert!(
                run.stderr.lines().any(|line| line.contains(runbook)
                    && line.contains(&format!(
                        "`{key}`: the config has no Langfuse project `langfuse` under `actions.langfuse`"
                    ))),
                "no problem for `{key}` of {runbook}: {run}"
            );
        }
    }
}
