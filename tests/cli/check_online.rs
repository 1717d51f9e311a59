//! `vigil check` fails wherever `vigil serve` would fail to start for a config reason, and a
//! failed start leaves no ledger behind.
//!
//! Each case breaks one thing in an otherwise good config: a missing variable, a missing,
//! empty or world-readable secret file, a weak token, one token for two roles, a broken
//! tokens file, a key that would land in a git work tree, a broken JWKS file. `check` must
//! exit 1 naming it, `serve` must exit 1 naming the same thing, and the SQLite ledger must
//! not exist afterwards. The good config passes `check` and starts.

use std::path::{Path, PathBuf};

use crate::serve::Served;
use crate::support::{Person, TempDir, admin_tokens, strong_token, vigil_command, write_secret};

/// A good config in a fresh folder; `apply` breaks it.
struct Case {
    dir: TempDir,
    config: PathBuf,
    ledger: PathBuf,
    /// Environment variables to set for vigil.
    env: Vec<(String, String)>,
}

const INTAKE_ENV: &str = "VIGIL_TEST_CHECK_INTAKE_TOKEN";

impl Case {
    fn new(label: &str) -> Case {
        let dir = TempDir::new(label);
        let (tokens_file, _) = admin_tokens(
            dir.path(),
            &[Person {
                name: "olga",
                groups: &["sre"],
                roles: &["operator"],
            }],
        );
        write_secret(&dir.join("master-key"), "sk-test-master-key\n");
        let ledger = dir.join("ledger.db");
        let root = crate::support::repo_root();
        let text = format!(
            r#"mode: autonomous
environment: test
listen: 127.0.0.1:0
ledger:
  sqlite_path: "{ledger}"
  checkpoint:
    key_file: keys/ledger.key
policies_dir: "{root}/policies"
runbooks_dir: runbooks
sources:
  - name: gw
    kind: litellm
    url: http://127.0.0.1:9/metrics/
    bearer_token: {{ file: master-key }}
    admin:
      master_key: {{ file: master-key }}
detectors:
  - name: token-spike
    kind: spike
    source: gw
    metric: litellm_total_tokens_metric_total
    group_by: hashed_api_key
intake:
  bearer_token: {{ env: {INTAKE_ENV} }}
admin:
  tokens_file: "{tokens}"
pager:
  kind: log
"#,
            ledger = ledger.display(),
            root = root.display(),
            tokens = tokens_file.display(),
        );
        std::fs::create_dir(dir.join("keys")).expect("creating keys/");
        std::fs::create_dir(dir.join("runbooks")).expect("creating runbooks/");
        let config = dir.join("vigil.yaml");
        std::fs::write(&config, text).expect("writing the config");
        Case {
            dir,
            config,
            ledger,
            env: vec![(INTAKE_ENV.to_owned(), strong_token("intake"))],
        }
    }

    fn edit(&self, from: &str, to: &str) {
        let text = std::fs::read_to_string(&self.config).expect("reading the config");
        assert_eq!(text.matches(from).count(), 1, "`{from}` in the config");
        std::fs::write(&self.config, text.replacen(from, to, 1)).expect("writing the config");
    }

    fn set_env(&mut self, name: &str, value: &str) {
        self.env.retain(|(set, _)| set != name);
        self.env.push((name.to_owned(), value.to_owned()));
    }

    fn run(&self, args: &[&str]) -> crate::support::Finished {
        let config = self.config.display().to_string();
        let mut all: Vec<&str> = args.to_vec();
        all.extend(["--config", &config]);
        let mut command = vigil_command(all, self.dir.path());
        command.env_remove(INTAKE_ENV);
        for (name, value) in &self.env {
            command.env(name, value);
        }
        crate::support::finish(command, std::time::Duration::from_secs(120))
    }

    /// `check` and `serve` both refuse, both saying `says`, and no ledger is left.
    fn assert_refused(&self, says: &str) {
        let check = self.run(&["check"]);
        assert_eq!(check.code(), 1, "check should refuse: {check}");
        assert!(
            check.stderr.contains(says),
            "check should say `{says}`: {check}"
        );
        let serve = self.run(&["serve", "--listen", "127.0.0.1:0"]);
        assert_eq!(serve.code(), 1, "serve should refuse to start: {serve}");
        assert!(
            serve.stderr.contains(says),
            "serve should say `{says}`: {serve}"
        );
        assert!(
            !self.ledger.exists(),
            "a failed start left {} behind",
            self.ledger.display()
        );
        // `check --offline` reads only the config, runbooks and policies.
        if !says.starts_with("admin.token") {
            self.run(&["check", "--offline"])
                .assert_success("check --offline ignores the environment");
        }
    }
}

/// What breaks a good config.
type Breaks = Box<dyn Fn(&mut Case)>;

fn chmod(path: &Path, mode: u32) {
    use std::os::unix::fs::PermissionsExt as _;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).expect("chmod");
}

#[test]
fn the_good_config_passes_check_and_starts() {
    let case = Case::new("check-good");
    let check = case.run(&["check"]);
    check.assert_success("check of the good config");
    assert!(
        check.stdout.contains("secrets, tokens and keys resolved"),
        "{check}"
    );
    let mut command = vigil_command(
        [
            "serve",
            "--config",
            &case.config.display().to_string(),
            "--listen",
            "127.0.0.1:0",
        ],
        case.dir.path(),
    );
    for (name, value) in &case.env {
        command.env(name, value);
    }
    let served = Served::spawn(command);
    assert!(case.ledger.exists());
    let (code, stderr) = served.stop_with("TERM");
    assert_eq!(code, Some(0), "{stderr}");
}

#[test]
fn check_fails_wherever_serve_would_not_start() {
    let unset = format!("environment variable `{INTAKE_ENV}` is not set");
    // (what breaks it, what both must say)
    let cases: Vec<(&str, Breaks, &str)> = vec![
        (
            "missing-env",
            Box::new(|case: &mut Case| case.env.clear()),
            &unset,
        ),
        (
            "missing-file",
            Box::new(|case: &mut Case| {
                std::fs::remove_file(case.dir.join("master-key")).expect("removing")
            }),
            "cannot read secret file",
        ),
        (
            "empty-file",
            Box::new(|case: &mut Case| write_secret(&case.dir.join("master-key"), "\n")),
            "is empty",
        ),
        (
            "exposed-file",
            Box::new(|case: &mut Case| chmod(&case.dir.join("master-key"), 0o644)),
            "is readable by every user (mode 644)",
        ),
        (
            "weak-token",
            Box::new(|case: &mut Case| case.set_env(INTAKE_ENV, "x")),
            "intake: bearer token: the token is too weak",
        ),
        (
            "shared-token",
            Box::new(|case: &mut Case| {
                let (_, tokens) = admin_tokens(
                    case.dir.path(),
                    &[Person {
                        name: "bob",
                        groups: &[],
                        roles: &["approver"],
                    }],
                );
                case.set_env(INTAKE_ENV, &tokens["bob"]);
            }),
            "intake.bearer_token is also a person's admin token",
        ),
        (
            "missing-tokens-file",
            Box::new(|case: &mut Case| {
                std::fs::remove_file(case.dir.join("admin-tokens.yaml")).expect("removing")
            }),
            "reading the admin tokens file",
        ),
        (
            "broken-tokens-file",
            Box::new(|case: &mut Case| {
                let file = case.dir.join("admin-tokens.yaml");
                let text = std::fs::read_to_string(&file).expect("reading");
                std::fs::write(&file, text.replace("roles: [operator]", "roles: [root]"))
                    .expect("writing");
            }),
            "`root` is not a role",
        ),
        (
            "key-in-git-tree",
            Box::new(|case: &mut Case| {
                // A real repository whose .gitignore does not cover the key.
                let status = std::process::Command::new("git")
                    .arg("-C")
                    .arg(case.dir.path())
                    .args(["init", "--quiet"])
                    .status()
                    .expect("git is installed");
                assert!(status.success(), "git init");
            }),
            "inside the git work tree",
        ),
        (
            "jwks-file",
            Box::new(|case: &mut Case| {
                std::fs::write(case.dir.join("jwks.json"), "{\"keys\": []}").expect("writing");
                case.edit(
                    "\nadmin:\n",
                    "\nadmin:\n  oidc: { issuer: https://idp.example.com, audience: vigil, jwks_file: jwks.json }\n",
                );
            }),
            "admin.oidc.jwks_file",
        ),
        (
            "shared-admin-token",
            Box::new(|case: &mut Case| {
                case.edit(
                    "\nadmin:\n",
                    "\nadmin:\n  token: { env: VIGIL_ADMIN_TOKEN }\n",
                );
            }),
            "admin.token",
        ),
    ];
    for (label, breaks, says) in cases {
        let mut case = Case::new(&format!("check-{label}"));
        case.run(&["check"])
            .assert_success(&format!("{label}: the config before it is broken"));
        breaks(&mut case);
        case.assert_refused(says);
    }
}
