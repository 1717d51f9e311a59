//! `deploy/docker/Dockerfile`: read into stages and instructions (enough of the syntax for
//! what it uses: continuation lines, comments, `FROM ... AS`, `COPY [--from=STAGE]`, exec
//! forms), and checked: a builder stage runs `cargo build --release --locked -p vigil`, the
//! runtime stage runs the binary it copied as a non-root user with its state on a volume,
//! everything it copies is in the build context, and its default config passes `vigil check`.

use std::path::{Component, Path, PathBuf};

use super::image::{Dockerignore, FakeRoot, dummy_secret, env_names};
use super::{deploy_path, listen_port, read, yaml};
use crate::support::repo_root;

/// The Dockerfile, read.
pub(super) struct Dockerfile {
    pub(super) stages: Vec<Stage>,
}

/// One `FROM` and the instructions after it.
pub(super) struct Stage {
    /// `AS name`, if any.
    pub(super) name: Option<String>,
    pub(super) instructions: Vec<Instruction>,
}

/// One instruction: its keyword (upper case) and the rest of its (joined) line.
pub(super) struct Instruction {
    pub(super) keyword: String,
    pub(super) args: String,
}

/// One `COPY`: from the build context, or from another stage.
pub(super) struct Copy {
    pub(super) from_stage: Option<String>,
    pub(super) sources: Vec<String>,
    pub(super) destination: String,
}

impl Dockerfile {
    /// `deploy/docker/Dockerfile`.
    pub(super) fn load() -> Dockerfile {
        Dockerfile::parse(&read(&deploy_path("docker/Dockerfile")))
    }

    fn parse(text: &str) -> Dockerfile {
        let mut logical = Vec::new();
        let mut pending = String::new();
        for line in text.lines() {
            let trimmed = line.trim();
            // Comment lines are dropped, inside a continued instruction too.
            if trimmed.starts_with('#') || (trimmed.is_empty() && pending.is_empty()) {
                continue;
            }
            match trimmed.strip_suffix('\\') {
                Some(continued) => {
                    pending.push_str(continued);
                    pending.push(' ');
                }
                None => {
                    pending.push_str(trimmed);
                    logical.push(std::mem::take(&mut pending));
                }
            }
        }
        assert!(pending.is_empty(), "the Dockerfile ends inside `{pending}`");
        let mut stages: Vec<Stage> = Vec::new();
        for line in logical {
            let (keyword, args) = line.split_once(char::is_whitespace).unwrap_or((&line, ""));
            let keyword = keyword.to_ascii_uppercase();
            let args = args.trim().to_owned();
            if keyword == "FROM" {
                let words: Vec<&str> = args.split_whitespace().collect();
                let name = match words.as_slice() {
                    [_, as_word, name] if as_word.eq_ignore_ascii_case("as") => {
                        Some((*name).to_owned())
                    }
                    _ => None,
                };
                stages.push(Stage {
                    name,
                    instructions: Vec::new(),
                });
            } else if let Some(stage) = stages.last_mut() {
                stage.instructions.push(Instruction { keyword, args });
            } else {
                assert_eq!(keyword, "ARG", "`{line}` comes before any FROM");
            }
        }
        Dockerfile { stages }
    }

    /// The last stage: what the image is.
    pub(super) fn runtime(&self) -> &Stage {
        self.stages.last().expect("the Dockerfile has a FROM")
    }
}

impl Stage {
    /// The arguments of every instruction with this keyword.
    pub(super) fn all(&self, keyword: &str) -> Vec<&str> {
        self.instructions
            .iter()
            .filter(|instruction| instruction.keyword == keyword)
            .map(|instruction| instruction.args.as_str())
            .collect()
    }

    /// The arguments of the last instruction with this keyword (the one in force).
    pub(super) fn last(&self, keyword: &str) -> &str {
        self.all(keyword)
            .last()
            .copied()
            .unwrap_or_else(|| panic!("the stage has no {keyword}"))
    }

    /// An instruction's exec form (`["a", "b"]`).
    pub(super) fn exec_form(&self, keyword: &str) -> Vec<String> {
        exec_form(self.last(keyword))
    }

    /// Every `COPY` of the stage.
    pub(super) fn copies(&self) -> Vec<Copy> {
        self.all("COPY")
            .into_iter()
            .map(|args| {
                let mut words: Vec<&str> = args.split_whitespace().collect();
                let mut from_stage = None;
                words.retain(|word| match word.strip_prefix("--") {
                    Some(flag) => {
                        if let Some(stage) = flag.strip_prefix("from=") {
                            from_stage = Some(stage.to_owned());
                        }
                        false
                    }
                    None => true,
                });
                let (destination, sources) = words.split_last().expect("COPY names its files");
                Copy {
                    from_stage,
                    sources: sources.iter().map(|source| (*source).to_owned()).collect(),
                    destination: (*destination).to_owned(),
                }
            })
            .collect()
    }
}

impl Copy {
    /// Where `source` lands in the image: in the destination folder when it ends with `/`
    /// or several files are copied, else at the destination itself.
    pub(super) fn target_of(&self, source: &str) -> String {
        if self.destination.ends_with('/') || self.sources.len() > 1 {
            let name = Path::new(source)
                .file_name()
                .expect("a copied file has a name")
                .to_string_lossy();
            format!("{}/{name}", self.destination.trim_end_matches('/'))
        } else {
            self.destination.clone()
        }
    }
}

/// A JSON exec form (`["a", "b"]`).
pub(super) fn exec_form(args: &str) -> Vec<String> {
    serde_json::from_str(args)
        .unwrap_or_else(|error| panic!("`{args}` is not an exec form (a JSON list): {error}"))
}

/// `HEALTHCHECK [--option=value ...] CMD [...]`: the command, in exec form.
pub(super) fn healthcheck_command(stage: &Stage) -> Vec<String> {
    let args = stage.last("HEALTHCHECK");
    let command = args
        .split_once("CMD ")
        .unwrap_or_else(|| panic!("HEALTHCHECK `{args}` has no CMD"))
        .1;
    exec_form(command)
}

/// The config file the image's `CMD` (or a container's arguments) serves: `--config PATH`.
pub(super) fn config_argument(arguments: &[String]) -> String {
    assert_eq!(
        arguments.first().map(String::as_str),
        Some("serve"),
        "the command runs `vigil serve`: {arguments:?}"
    );
    let at = arguments
        .iter()
        .position(|argument| argument == "--config")
        .unwrap_or_else(|| panic!("no --config in {arguments:?}"));
    arguments
        .get(at + 1)
        .unwrap_or_else(|| panic!("--config without a path in {arguments:?}"))
        .clone()
}

#[test]
fn dockerfile_builds_vigil_and_runs_it_as_a_non_root_user_with_state_on_a_volume() {
    let dockerfile = Dockerfile::load();
    let runtime = dockerfile.runtime();
    assert!(dockerfile.stages.len() >= 2, "a multi-stage build");

    // A builder stage compiles the binary, exactly as locked.
    let builder = dockerfile
        .stages
        .iter()
        .find(|stage| {
            stage
                .all("RUN")
                .iter()
                .any(|run| run.contains("cargo build --release --locked -p vigil"))
        })
        .expect("a stage runs `cargo build --release --locked -p vigil`");
    let builder_name = builder.name.clone().expect("the builder stage is named");

    // The runtime stage runs the binary it copied from the builder, as a fixed non-root uid.
    let entrypoint = runtime.exec_form("ENTRYPOINT");
    assert_eq!(entrypoint, ["/usr/local/bin/vigil"]);
    assert!(
        runtime.copies().iter().any(|copy| {
            copy.from_stage.as_deref() == Some(builder_name.as_str())
                && copy
                    .sources
                    .iter()
                    .any(|source| copy.target_of(source) == entrypoint[0])
        }),
        "the runtime stage copies {} from `{builder_name}`",
        entrypoint[0]
    );
    let user = runtime.last("USER");
    let uid = user.split(':').next().expect("a uid");
    assert!(
        uid.parse::<u32>().is_ok_and(|uid| uid >= 1000),
        "USER `{user}` is a fixed non-root uid (Kubernetes' runAsNonRoot needs a number)"
    );
    assert!(
        runtime
            .all("RUN")
            .iter()
            .any(|run| run.contains(&format!("--uid {uid}"))),
        "the runtime stage creates the user {uid}"
    );

    // The state lives on a volume; the default config writes nowhere else.
    let volumes = runtime.all("VOLUME").join(" ");
    assert!(volumes.contains("\"/var/lib/vigil\""), "VOLUME {volumes}");
    let config_path = config_argument(&runtime.exec_form("CMD"));
    let config = default_config(runtime, &config_path);
    for key in [
        "sqlite_path",
        "checkpoint.key_file",
        "checkpoint.publish_file",
    ] {
        let written = super::str_at(&config, &format!("ledger.{key}"));
        assert!(
            written.starts_with("/var/lib/vigil/"),
            "ledger.{key} `{written}` is on the state volume"
        );
    }
    assert_eq!(
        runtime.last("EXPOSE"),
        listen_port(&config).to_string(),
        "EXPOSE is the port the default config listens on"
    );
    let health = healthcheck_command(runtime);
    assert_eq!(
        health.first(),
        entrypoint.first(),
        "the healthcheck runs vigil"
    );
}

/// The default config the image's `CMD` names, read from the file its `COPY` puts there.
fn default_config(runtime: &Stage, config_path: &str) -> serde_json::Value {
    let source = runtime
        .copies()
        .into_iter()
        .filter(|copy| copy.from_stage.is_none())
        .find_map(|copy| {
            copy.sources
                .iter()
                .find(|source| copy.target_of(source) == config_path)
                .cloned()
        })
        .unwrap_or_else(|| panic!("no COPY puts the CMD's config at {config_path}"));
    yaml(&read(&repo_root().join(&source)), &source)
}

#[test]
fn dockerfile_copies_only_what_the_build_context_holds_and_everything_the_build_embeds() {
    let dockerfile = Dockerfile::load();
    let ignore = Dockerignore::load();
    for excluded in ["target", ".git"] {
        assert!(
            ignore.excludes(excluded),
            ".dockerignore keeps {excluded} out"
        );
    }
    let mut builder_sources = Vec::new();
    for stage in &dockerfile.stages {
        for copy in stage.copies() {
            if copy.from_stage.is_some() {
                continue;
            }
            for source in &copy.sources {
                let path = repo_root().join(source);
                assert!(path.exists(), "COPY {source}: not in the repository");
                assert!(
                    !ignore.excludes(source),
                    "COPY {source}: .dockerignore drops it"
                );
                if stage.name.is_some() && !std::ptr::eq(stage, dockerfile.runtime()) {
                    builder_sources.push(source.trim_end_matches('/').to_owned());
                }
            }
        }
    }
    // What the compiler reads outside crates/ (include_str!, sqlx::migrate!) is copied in.
    for folder in embedded_folders() {
        assert!(
            builder_sources.contains(&folder),
            "the build embeds files of `{folder}/`, which the builder stage does not copy (it copies {builder_sources:?})"
        );
    }
}

/// The top-level folders, other than `crates`, that the crates' sources embed at compile time.
fn embedded_folders() -> Vec<String> {
    let root = repo_root();
    let mut folders = Vec::new();
    let mut pending = vec![root.join("crates")];
    while let Some(folder) = pending.pop() {
        for entry in std::fs::read_dir(&folder).expect("listing a folder") {
            let path = entry.expect("an entry").path();
            if path.is_dir() {
                pending.push(path);
                continue;
            }
            if path.extension().is_none_or(|extension| extension != "rs") {
                continue;
            }
            let text = read(&path);
            for (macro_name, base) in [
                (
                    "include_str!(\"",
                    path.parent().expect("a folder").to_path_buf(),
                ),
                (
                    "include_bytes!(\"",
                    path.parent().expect("a folder").to_path_buf(),
                ),
                ("migrate!(\"", crate_folder(&path)),
            ] {
                for (at, _) in text.match_indices(macro_name) {
                    let rest = &text[at + macro_name.len()..];
                    let relative = rest.split('"').next().expect("a quoted path");
                    let resolved = normalize(&base.join(relative));
                    let Ok(inside) = resolved.strip_prefix(normalize(&root)) else {
                        continue;
                    };
                    let top = inside
                        .components()
                        .next()
                        .expect("a path inside the repository")
                        .as_os_str()
                        .to_string_lossy()
                        .into_owned();
                    if top != "crates" && !folders.contains(&top) {
                        folders.push(top);
                    }
                }
            }
        }
    }
    assert!(
        folders.iter().any(|folder| folder == "migrations"),
        "the scan finds the ledger's migrations: {folders:?}"
    );
    folders
}

/// The crate a source file belongs to (`sqlx::migrate!` paths are relative to it).
fn crate_folder(file: &Path) -> PathBuf {
    file.ancestors()
        .find(|folder| folder.join("Cargo.toml").is_file())
        .expect("a source file inside a crate")
        .to_path_buf()
}

/// `a/b/../c` as `a/c`, without touching the filesystem.
fn normalize(path: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for component in path.components() {
        match component {
            Component::ParentDir => {
                out.pop();
            }
            Component::CurDir => {}
            other => out.push(other),
        }
    }
    out
}

#[test]
fn docker_default_config_passes_vigil_check_with_the_documented_environment() {
    let dockerfile = Dockerfile::load();
    let runtime = dockerfile.runtime();
    let config_path = config_argument(&runtime.exec_form("CMD"));
    let root = FakeRoot::from_image("deploy-docker");
    let config = root.config(&config_path);
    // The Dockerfile's `docker run` passes every secret the default config reads.
    let text = read(&deploy_path("docker/Dockerfile"));
    let mut env = std::collections::BTreeMap::new();
    for name in env_names(&config) {
        assert!(
            text.contains(&format!("-e {name}")),
            "the Dockerfile's `docker run` does not pass {name}, which its config reads"
        );
        env.insert(name.clone(), dummy_secret(&name));
    }
    root.check(&config_path, &env)
        .assert_success("vigil check of the image's default config");
}
