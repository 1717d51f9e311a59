//! Everything the daemon runs with, loaded and cross-checked together: the config, the
//! runbooks and the policies. Every problem in any of them is reported at once.

use std::collections::BTreeSet;
use std::path::Path;

use vigil_core::action::{ActionKind, Target};
use vigil_core::detector::DetectorConfig;
use vigil_core::engine::{EngineConfig, SourceLimits};
use vigil_core::runbook::{Runbook, RunbookSpec};
use vigil_policy::{Authorizer, PolicyError, PolicyFile};

use crate::config::raw::{RawConfig, SourceKind};
use crate::config::{self, Config, LocatedProblem, Problems};

/// One input text with the name it is reported under.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TextFile {
    /// The file name or path shown in messages.
    pub name: String,
    /// Its content.
    pub text: String,
}

/// The policy texts: the schema and the policy files.
#[derive(Debug, Clone)]
pub struct PolicyTexts {
    /// `vigil.cedarschema`.
    pub schema: TextFile,
    /// `*.cedar`, sorted by name.
    pub policies: Vec<TextFile>,
}

/// A loaded, cross-checked configuration ready to run.
#[derive(Debug)]
pub struct Bundle {
    /// The validated config.
    pub config: Config,
    /// The config file as written.
    pub config_file: TextFile,
    /// The engine's configuration (detectors, runbooks, inventory).
    pub engine: EngineConfig,
    /// The runbook files as written.
    pub runbook_files: Vec<TextFile>,
    /// The policy texts as written.
    pub policy_texts: PolicyTexts,
    /// The loaded policies.
    pub authorizer: Authorizer,
}

/// Builds a bundle from texts; the config's folders are not read.
pub fn assemble(
    config_file: TextFile,
    base_dir: &Path,
    runbook_files: Vec<TextFile>,
    policy_texts: PolicyTexts,
) -> Result<Bundle, Problems> {
    let mut problems = Vec::new();
    let config = match config::parse(&config_file.text, &config_file.name, base_dir) {
        Ok(config) => Some(config),
        Err(Problems(found)) => {
            problems.extend(found);
            None
        }
    };
    let runbooks = load_runbooks(&runbook_files, &mut problems);
    let authorizer = match load_policies(&policy_texts) {
        Ok(authorizer) => Some(authorizer),
        Err(found) => {
            problems.extend(found);
            None
        }
    };
    if let Some(config) = &config {
        check_runbooks_against_config(config, &runbooks, &runbook_files, &mut problems);
    }
    match (config, authorizer) {
        (Some(config), Some(authorizer)) if problems.is_empty() => {
            let engine = EngineConfig {
                mode: config.mode,
                environment: config.environment.clone(),
                sources: config
                    .sources
                    .iter()
                    .map(|source| SourceLimits {
                        name: source.name.clone(),
                        max_series: source.max_series,
                    })
                    .chain(config.queries.iter().map(|query| SourceLimits {
                        name: query.name.clone(),
                        max_series: query.max_series,
                    }))
                    .collect(),
                detectors: config.detectors.clone(),
                diagnosis: config.diagnosis.clone(),
                runbooks: runbooks.into_iter().map(|(_, runbook)| runbook).collect(),
                api_keys: config.api_keys.clone(),
                store: config.store.clone(),
                flapping: vigil_core::engine::FlapLimits::default(),
                resources: config.resources.clone(),
                limits: config.limits.clone(),
                trust: Vec::new(),
                people: Some(config.people.clone()),
                topology: Some(config.topology.clone()),
                // New sessions write numbers for people; older ones replay as recorded.
                numbers: vigil_core::human::NumberStyle::Readable,
                assistant: config
                    .assistant
                    .as_ref()
                    .filter(|assistant| assistant.enabled)
                    .map(|assistant| assistant.engine.clone()),
            };
            Ok(Bundle {
                config,
                config_file,
                engine,
                runbook_files,
                policy_texts,
                authorizer,
            })
        }
        _ => Err(Problems(problems)),
    }
}

/// Reads the config file and the folders it names, then assembles.
///
/// Only a config that does not parse at all stops here; otherwise the config's own problems,
/// the runbooks' and the policies' are all reported together.
pub fn load(config_path: &Path) -> Result<Bundle, Problems> {
    let name = config_path.display().to_string();
    let text = std::fs::read_to_string(config_path)
        .map_err(|error| single(&name, format!("cannot read the config file: {error}")))?;
    let raw: RawConfig =
        config::parse_yaml(&text, &name).map_err(|problem| Problems(vec![problem]))?;
    let base_dir = config_path
        .parent()
        .filter(|dir| !dir.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let policies_dir = base_dir.join(&raw.policies_dir);
    let runbooks_dir = base_dir.join(&raw.runbooks_dir);
    let mut problems = Vec::new();
    let runbook_files = read_folder(&runbooks_dir, &["yaml", "yml"]).unwrap_or_else(|found| {
        problems.extend(found.0);
        Vec::new()
    });
    let policies = read_folder(&policies_dir, &["cedar"]).unwrap_or_else(|found| {
        problems.extend(found.0);
        Vec::new()
    });
    let schema = read_text(&policies_dir.join("vigil.cedarschema")).unwrap_or_else(|found| {
        problems.extend(found.0);
        TextFile {
            name: String::new(),
            text: String::new(),
        }
    });
    if !problems.is_empty() {
        return Err(Problems(problems));
    }
    let config_file = TextFile { name, text };
    assemble(
        config_file,
        base_dir,
        runbook_files,
        PolicyTexts { schema, policies },
    )
}

/// Reads and loads the policies of `dir` (its `vigil.cedarschema` and `*.cedar`), as
/// `vigil serve` does at start and on SIGHUP; every problem of the folder, located.
pub fn reload_policies(dir: &Path) -> Result<(PolicyTexts, Authorizer), Problems> {
    let mut problems = Vec::new();
    let policies = read_folder(dir, &["cedar"]).unwrap_or_else(|found| {
        problems.extend(found.0);
        Vec::new()
    });
    let schema = read_text(&dir.join("vigil.cedarschema")).unwrap_or_else(|found| {
        problems.extend(found.0);
        TextFile {
            name: String::new(),
            text: String::new(),
        }
    });
    if !problems.is_empty() {
        return Err(Problems(problems));
    }
    let texts = PolicyTexts { schema, policies };
    let authorizer = load_policies(&texts).map_err(Problems)?;
    Ok((texts, authorizer))
}

/// Reads every file with one of `extensions` in `dir`, sorted by name.
pub fn read_folder(dir: &Path, extensions: &[&str]) -> Result<Vec<TextFile>, Problems> {
    let entries = std::fs::read_dir(dir).map_err(|error| {
        single(
            &dir.display().to_string(),
            format!("cannot read the folder: {error}"),
        )
    })?;
    let mut paths = Vec::new();
    for entry in entries {
        let entry = entry.map_err(|error| {
            single(
                &dir.display().to_string(),
                format!("cannot list the folder: {error}"),
            )
        })?;
        let path = entry.path();
        let wanted = path
            .extension()
            .and_then(|ext| ext.to_str())
            .is_some_and(|ext| extensions.contains(&ext));
        if wanted && path.is_file() {
            paths.push(path);
        }
    }
    paths.sort();
    paths.iter().map(|path| read_text(path)).collect()
}

pub(crate) fn read_text(path: &Path) -> Result<TextFile, Problems> {
    let name = path.display().to_string();
    match std::fs::read_to_string(path) {
        Ok(text) => Ok(TextFile { name, text }),
        Err(error) => Err(single(&name, format!("cannot read the file: {error}"))),
    }
}

fn single(file: &str, message: String) -> Problems {
    Problems(vec![LocatedProblem {
        file: file.to_owned(),
        line: None,
        path: String::new(),
        message,
    }])
}

/// Parses and validates every runbook; returns the good ones with their file index.
pub(crate) fn load_runbooks(
    files: &[TextFile],
    problems: &mut Vec<LocatedProblem>,
) -> Vec<(usize, Runbook)> {
    let mut runbooks: Vec<(usize, Runbook)> = Vec::new();
    let mut ids = BTreeSet::new();
    for (file_idx, file) in files.iter().enumerate() {
        let spec: RunbookSpec = match config::parse_yaml(&file.text, &file.name) {
            Ok(spec) => spec,
            Err(problem) => {
                problems.push(problem);
                continue;
            }
        };
        match spec.validate() {
            Ok(runbook) => {
                if !ids.insert(runbook.id.clone()) {
                    problems.extend(
                        config::locate(
                            &file.name,
                            &file.text,
                            vec![vigil_core::problem::Problem::new(
                                "id",
                                format!("another runbook already has the id `{}`", runbook.id),
                            )],
                        )
                        .0,
                    );
                    continue;
                }
                if let Some(expression) = &runbook.schedule
                    && let Err(message) = crate::schedule::Schedule::parse(expression)
                {
                    problems.extend(
                        config::locate(
                            &file.name,
                            &file.text,
                            vec![vigil_core::problem::Problem::new("schedule", message)],
                        )
                        .0,
                    );
                    continue;
                }
                runbooks.push((file_idx, runbook));
            }
            Err(found) => problems.extend(config::locate(&file.name, &file.text, found).0),
        }
    }
    runbooks
}

/// Loads the policies; problems keep Cedar's file and line.
pub(crate) fn load_policies(texts: &PolicyTexts) -> Result<Authorizer, Vec<LocatedProblem>> {
    let schema = PolicyFile {
        path: file_name(&texts.schema.name),
        text: texts.schema.text.clone(),
    };
    let policies: Vec<PolicyFile> = texts
        .policies
        .iter()
        .map(|file| PolicyFile {
            path: file_name(&file.name),
            text: file.text.clone(),
        })
        .collect();
    Authorizer::load(&schema, &policies).map_err(|error| match error {
        PolicyError::InvalidPolicySet { problems } => problems
            .into_iter()
            .map(|problem| LocatedProblem {
                file: problem.path,
                line: problem.location.map(|location| location.line),
                path: String::new(),
                message: problem.message,
            })
            .collect(),
        PolicyError::InvalidTestCases { problem } => vec![LocatedProblem {
            file: problem.path,
            line: None,
            path: String::new(),
            message: problem.message,
        }],
    })
}

/// The policy hash covers file names, not folders, so the same policies hash the same
/// wherever they are installed.
fn file_name(path: &str) -> String {
    Path::new(path).file_name().map_or_else(
        || path.to_owned(),
        |name| name.to_string_lossy().into_owned(),
    )
}

/// Checks what only the config and the runbooks together can tell.
fn check_runbooks_against_config(
    config: &Config,
    runbooks: &[(usize, Runbook)],
    files: &[TextFile],
    problems: &mut Vec<LocatedProblem>,
) {
    for (file_idx, runbook) in runbooks {
        let Some(file) = files.get(*file_idx) else {
            continue;
        };
        let mut found = Vec::new();
        for (idx, name) in runbook.detectors.iter().enumerate() {
            if !config
                .detectors
                .iter()
                .any(|detector| detector.name() == name)
            {
                found.push(vigil_core::problem::Problem::new(
                    format!("trigger.detectors[{idx}]"),
                    format!("the config has no detector `{name}`"),
                ));
            }
        }
        if let Some(name) = &runbook.verification.users_detector
            && !config
                .detectors
                .iter()
                .any(|detector| detector.name() == name)
        {
            found.push(vigil_core::problem::Problem::new(
                "verification.users_detector",
                format!("the config has no detector `{name}`"),
            ));
        }
        let listened: Vec<&DetectorConfig> = config
            .detectors
            .iter()
            .filter(|detector| {
                runbook.detectors.is_empty()
                    || runbook.detectors.iter().any(|name| name == detector.name())
            })
            // Markers raise no findings, so no runbook runs on them.
            .filter(|detector| !matches!(detector, DetectorConfig::VersionChange(_)))
            .collect();
        for (idx, step) in runbook.steps.iter().enumerate() {
            let parts = std::iter::once((format!("steps[{idx}]"), step.action, &step.params))
                .chain(step.compensation.as_ref().map(|compensation| {
                    (
                        format!("steps[{idx}].compensation"),
                        compensation.action,
                        &compensation.params,
                    )
                }));
            for (path, action, params) in parts {
                check_target(config, &listened, &path, action, params, &mut found);
            }
        }
        problems.extend(config::locate(&file.name, &file.text, found).0);
    }
}

/// Checks that a step's action has somewhere to go: a LiteLLM admin API, a Langfuse project,
/// an HTTP allow-list that holds its host.
fn check_target(
    config: &Config,
    listened: &[&DetectorConfig],
    path: &str,
    action: ActionKind,
    params: &std::collections::BTreeMap<String, vigil_core::template::Template>,
    found: &mut Vec<vigil_core::problem::Problem>,
) {
    let literal = |name: &str| {
        params
            .get(name)
            .filter(|template| template.is_literal())
            .map(|template| template.source().trim().to_owned())
    };
    let has_admin = |source_name: &str| {
        config.sources.iter().any(|source| {
            source.name == source_name
                && source.kind == SourceKind::Litellm
                && source.admin.is_some()
        })
    };
    let mut problem = |key: String, message: String| {
        found.push(vigil_core::problem::Problem::new(key, message));
    };
    match action.spec().target {
        Target::LitellmAdmin => match literal("target") {
            Some(target) if !has_admin(&target) => problem(
                format!("{path}.params.target"),
                format!("source `{target}` is not a LiteLLM source with an `admin` section"),
            ),
            Some(_) => {}
            None => {
                // The gateway is the source of the finding: every detector the runbook
                // answers must read one with an admin API.
                for detector in listened {
                    if !has_admin(detector.source()) {
                        problem(
                            path.to_owned(),
                            format!(
                                "`{}` goes to the gateway the finding came from, but detector `{}` reads source `{}`, which has no LiteLLM `admin` section; set `target` or list other detectors",
                                action.as_str(),
                                detector.name(),
                                detector.source()
                            ),
                        );
                    }
                }
            }
        },
        Target::LangfuseProject => {
            let target = literal("target").unwrap_or_else(|| "langfuse".to_owned());
            if !config
                .actions
                .langfuse
                .iter()
                .any(|project| project.name == target)
            {
                problem(
                    format!("{path}.params.target"),
                    format!(
                        "the config has no Langfuse project `{target}` under `actions.langfuse`"
                    ),
                );
            }
        }
        Target::HttpAllowList => match &config.actions.http {
            None => problem(
                path.to_owned(),
                "`http.call` needs `actions.http.allow_hosts` in the config".to_owned(),
            ),
            Some(http) => {
                if let Some(url) = literal("url")
                    && let Ok(url) = reqwest::Url::parse(&url)
                {
                    let host = url.host_str().unwrap_or_default().to_ascii_lowercase();
                    let with_port = url
                        .port_or_known_default()
                        .map(|port| format!("{host}:{port}"));
                    let allowed = http
                        .allow_hosts
                        .iter()
                        .any(|allowed| *allowed == host || Some(allowed) == with_port.as_ref());
                    if !allowed {
                        problem(
                            format!("{path}.params.url"),
                            format!("host `{host}` is not on `actions.http.allow_hosts`"),
                        );
                    }
                }
            }
        },
    }
}
