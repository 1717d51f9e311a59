//! The module rules of ARCHITECTURE.md, enforced on the sources: which module of a crate may
//! name which other module through `crate::` and `super::` paths.
//!
//! - No crate has an import cycle between its top-level modules (`vigil-core`'s `engine`
//!   naming `authz` while `authz` names `engine`, say). A cycle makes the modules in it one
//!   module in all but name: none can be read, tested or moved alone.
//! - In the binary crate, every CLI command is a leaf: `commands::<name>` never names another
//!   command, and nothing but `cli` (the parser that dispatches to them) names `commands`.
//!
//! `cargo test -p vigil --test architecture module_graph -- --nocapture` prints each crate's
//! counts (modules, layers, imports), the numbers an issue about structure quotes.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use super::source_scan::{code_only, rust_files};
use super::workspace_root;

/// One module naming another: `from` names `to` at `file:line`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct Import {
    from: Vec<String>,
    to: Vec<String>,
    file: String,
    line: usize,
}

/// The module path of a source file relative to its crate's `src`: `engine/incident.rs` is
/// `["engine", "incident"]`, `engine/mod.rs` is `["engine"]`, `lib.rs` is `[]`.
fn module_of(relative: &Path) -> Vec<String> {
    let mut segments: Vec<String> = relative
        .with_extension("")
        .iter()
        .map(|part| part.to_string_lossy().into_owned())
        .collect();
    if segments
        .last()
        .is_some_and(|last| matches!(last.as_str(), "mod" | "lib" | "main"))
    {
        segments.pop();
    }
    segments
}

fn is_ident_char(character: char) -> bool {
    character.is_alphanumeric() || character == '_'
}

/// The paths that `rest` (the text right after `crate::` or the last `super::`) names, each
/// as its segments: `engine::Engine` is one path, `{authz::Mode, engine::{self, X}}` three.
/// `*`, `self` and anything not a plain identifier end a path.
fn paths_after(rest: &str) -> Vec<Vec<String>> {
    let mut out = Vec::new();
    collect_paths(rest.trim_start(), &mut Vec::new(), &mut out);
    out
}

fn collect_paths(text: &str, prefix: &mut Vec<String>, out: &mut Vec<Vec<String>>) {
    if let Some(group) = text.strip_prefix('{') {
        // Split the group at its top-level commas, then read each item after the prefix.
        let mut depth = 0usize;
        let mut start = 0usize;
        for (idx, character) in group.char_indices() {
            match character {
                '{' => depth += 1,
                '}' if depth == 0 => {
                    collect_paths(group[start..idx].trim(), &mut prefix.clone(), out);
                    return;
                }
                '}' => depth -= 1,
                ',' if depth == 0 => {
                    collect_paths(group[start..idx].trim(), &mut prefix.clone(), out);
                    start = idx + 1;
                }
                _ => {}
            }
        }
        return;
    }
    let ident: String = text.chars().take_while(|c| is_ident_char(*c)).collect();
    if ident.is_empty() || ident == "self" {
        if !prefix.is_empty() {
            out.push(prefix.clone());
        }
        return;
    }
    prefix.push(ident.clone());
    match text[ident.len()..].trim_start().strip_prefix("::") {
        Some(after) => collect_paths(after.trim_start(), prefix, out),
        None => out.push(prefix.clone()),
    }
}

/// Every import of another module in one file's code (comments and strings ignored), with
/// `super::` resolved against the file's own module.
fn imports_of(module: &[String], file: &str, text: &str) -> Vec<Import> {
    let mut imports = Vec::new();
    // A `use` item may span lines: read the code as one string, and count newlines for the
    // line numbers.
    let code = code_only(text).join("\n");
    let mut search_from = 0;
    while let Some(offset) = code[search_from..]
        .find("crate::")
        .into_iter()
        .chain(code[search_from..].find("super::"))
        .min()
    {
        let at = search_from + offset;
        let previous = code[..at].chars().next_back();
        let is_crate = code[at..].starts_with("crate::");
        search_from = at
            + if is_crate {
                "crate::".len()
            } else {
                "super::".len()
            };
        if previous.is_some_and(|c| is_ident_char(c) || c == '$' || c == ':') {
            // `$crate::` in a macro, `some_crate::`, or a `super::` inside a longer path.
            continue;
        }
        let (base, rest) = if is_crate {
            (Vec::new(), &code[search_from..])
        } else {
            let mut base = module.to_vec();
            let mut rest = &code[at..];
            while let Some(after) = rest.strip_prefix("super::") {
                base.pop();
                rest = after.trim_start();
            }
            search_from = code.len() - rest.len();
            (base, rest)
        };
        let line = code[..at].matches('\n').count() + 1;
        for path in paths_after(rest) {
            let mut to = base.clone();
            to.extend(path);
            imports.push(Import {
                from: module.to_vec(),
                to,
                file: file.to_owned(),
                line,
            });
        }
    }
    imports
}

/// The crate's top-level modules: the first segment of every file's module path.
fn top_level_modules(src: &Path) -> BTreeSet<String> {
    rust_files(src)
        .iter()
        .filter_map(|(path, _)| {
            let relative = path.strip_prefix(src).ok()?;
            module_of(relative).into_iter().next()
        })
        .collect()
}

/// Every import in the crate whose sources are under `src`.
fn crate_imports(src: &Path) -> Vec<Import> {
    let files = rust_files(src);
    assert!(
        files.len() > 3,
        "found only {} files in {}",
        files.len(),
        src.display()
    );
    files
        .iter()
        .flat_map(|(path, text)| {
            let relative = path.strip_prefix(src).expect("a file under src");
            let file = path
                .strip_prefix(workspace_root())
                .unwrap_or(path)
                .display()
                .to_string();
            imports_of(&module_of(relative), &file, text)
        })
        .collect()
}

/// The edges between top-level modules: for each pair, the imports that make it.
fn top_level_edges(imports: &[Import]) -> BTreeMap<(String, String), Vec<&Import>> {
    let mut edges: BTreeMap<(String, String), Vec<&Import>> = BTreeMap::new();
    for import in imports {
        let (Some(from), Some(to)) = (import.from.first(), import.to.first()) else {
            continue;
        };
        if from != to {
            edges
                .entry((from.clone(), to.clone()))
                .or_default()
                .push(import);
        }
    }
    edges
}

/// The strongly connected groups of more than one module, each sorted.
fn cycles(edges: &BTreeMap<(String, String), Vec<&Import>>) -> Vec<Vec<String>> {
    let nodes: BTreeSet<&String> = edges.keys().flat_map(|(a, b)| [a, b]).collect();
    let reaches = |start: &String| -> BTreeSet<String> {
        let mut seen = BTreeSet::new();
        let mut pending = vec![start.clone()];
        while let Some(node) = pending.pop() {
            for (from, to) in edges.keys() {
                if *from == node && seen.insert(to.clone()) {
                    pending.push(to.clone());
                }
            }
        }
        seen
    };
    let reach: BTreeMap<&String, BTreeSet<String>> =
        nodes.iter().map(|node| (*node, reaches(node))).collect();
    let mut groups: BTreeSet<Vec<String>> = BTreeSet::new();
    for node in &nodes {
        let group: Vec<String> = nodes
            .iter()
            .filter(|other| reach[node].contains(**other) && reach[**other].contains(*node))
            .map(|other| (*other).clone())
            .collect();
        if group.len() > 1 {
            groups.insert(group);
        }
    }
    groups.into_iter().collect()
}

/// Modules, layers (the longest chain of imports, counting modules) and imports between
/// top-level modules; layers is `None` when there is a cycle.
fn counts(
    edges: &BTreeMap<(String, String), Vec<&Import>>,
    modules: usize,
) -> (usize, Option<usize>, usize) {
    if !cycles(edges).is_empty() {
        return (modules, None, edges.len());
    }
    let mut depth: BTreeMap<&String, usize> = BTreeMap::new();
    // Relax edges until stable: bounded by the number of modules, as the graph is acyclic.
    for _ in 0..=modules {
        let mut changed = false;
        for (from, to) in edges.keys() {
            let below = depth.get(to).copied().unwrap_or(1);
            if depth.get(from).copied().unwrap_or(1) < below + 1 {
                depth.insert(from, below + 1);
                changed = true;
            }
        }
        if !changed {
            break;
        }
    }
    let layers = depth.values().copied().max().unwrap_or(1);
    (modules, Some(layers), edges.len())
}

fn describe_cycles(edges: &BTreeMap<(String, String), Vec<&Import>>) -> String {
    cycles(edges)
        .iter()
        .map(|group| {
            let inside: Vec<String> = edges
                .iter()
                .filter(|((from, to), _)| group.contains(from) && group.contains(to))
                .map(|((from, to), why)| {
                    format!("    {from} -> {to} ({}:{})", why[0].file, why[0].line)
                })
                .collect();
            format!("  {}:\n{}", group.join(", "), inside.join("\n"))
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// The imports by which one command names another, and by which anything but `cli` names a
/// command.
fn command_violations(imports: &[Import]) -> Vec<String> {
    let command_of = |path: &[String]| -> Option<String> {
        match path {
            [room, name, ..] if room == "commands" => Some(name.clone()),
            _ => None,
        }
    };
    let mut found = Vec::new();
    for import in imports {
        if import.to.first().map(String::as_str) != Some("commands") {
            continue;
        }
        let to = command_of(&import.to);
        let from = command_of(&import.from);
        let from_room = import.from.first().map(String::as_str);
        let allowed = match from_room {
            // The parser dispatches to every command; `lib.rs` declares the room.
            Some("cli") | None => true,
            Some("commands") => to.is_none() || from.is_none() || from == to,
            Some(_) => false,
        };
        if !allowed {
            found.push(format!(
                "{}:{}: {} names {}",
                import.file,
                import.line,
                import.from.join("::"),
                import.to.join("::")
            ));
        }
    }
    found
}

fn crate_src(crate_name: &str) -> PathBuf {
    workspace_root().join("crates").join(crate_name).join("src")
}

#[test]
fn no_crate_has_an_import_cycle_between_its_top_level_modules() {
    let mut report = Vec::new();
    for crate_name in [
        "vigil-core",
        "vigil-policy",
        "vigil-ledger",
        "vigil-connectors",
        "vigil",
    ] {
        let imports = crate_imports(&crate_src(crate_name));
        let edges = top_level_edges(&imports);
        let modules = top_level_modules(&crate_src(crate_name));
        let (modules, layers, count) = counts(&edges, modules.len());
        eprintln!(
            "{crate_name}: {modules} top-level modules, {} layers, {count} imports between them",
            layers.map_or("(cyclic)".to_owned(), |layers| layers.to_string())
        );
        if layers.is_none() {
            report.push(format!("{crate_name}:\n{}", describe_cycles(&edges)));
        }
    }
    assert!(
        report.is_empty(),
        "import cycles between top-level modules (move the shared name down to where both \
         sides can import it):\n{}",
        report.join("\n")
    );
}

#[test]
fn every_command_is_a_leaf() {
    let imports = crate_imports(&crate_src("vigil"));
    let commands: BTreeSet<&String> = imports
        .iter()
        .filter(|import| import.from.first().map(String::as_str) == Some("commands"))
        .filter_map(|import| import.from.get(1))
        .collect();
    assert!(
        commands.len() >= 8,
        "found only {} command modules under crates/vigil/src/commands: {commands:?}",
        commands.len()
    );
    let violations = command_violations(&imports);
    assert!(
        violations.is_empty(),
        "a command names another command, or something below the commands names one; move \
         what they share down to journal, daemon, config or bundle:\n  {}",
        violations.join("\n  ")
    );
}

#[test]
fn the_module_rules_catch_sources_that_break_them() {
    let import = |module: &[&str], text: &str| -> Vec<Import> {
        let module: Vec<String> = module.iter().map(|s| (*s).to_owned()).collect();
        imports_of(&module, "x.rs", text)
    };
    // Paths: plain, grouped and nested groups, `self`, globs, `super::`, and what is not an
    // import at all (comments, strings, `$crate::`, another crate's `crate::`-less path).
    let found: Vec<(Vec<String>, usize)> = import(
        &["commands", "demo", "timeline"],
        "use crate::{journal::{self, step}, config::Config};\n\
         // crate::commands::simulate in a comment\n\
         let s = \"crate::commands::replay\";\n\
         macro_rules! m { () => { $crate::daemon::x() } }\n\
         use super::super::simulate::World;\n\
         use super::Scenario;\n\
         fn f() { crate::bundle::load(); other_crate::x(); }\n",
    )
    .into_iter()
    .map(|import| (import.to, import.line))
    .collect();
    let expected: Vec<(Vec<String>, usize)> = [
        (vec!["journal"], 1),
        (vec!["journal", "step"], 1),
        (vec!["config", "Config"], 1),
        (vec!["commands", "simulate", "World"], 5),
        (vec!["commands", "demo", "Scenario"], 6),
        (vec!["bundle", "load"], 7),
    ]
    .into_iter()
    .map(|(path, line)| (path.into_iter().map(str::to_owned).collect(), line))
    .collect();
    assert_eq!(found, expected);

    // A command naming another, and a room below naming a command, are both reported; the
    // parser and a command's own submodules are not.
    let mut imports = import(&["commands", "demo"], "use crate::commands::replay::run;");
    imports.extend(import(&["journal"], "use crate::commands::trust::tally;"));
    imports.extend(import(&["cli"], "use crate::commands::{demo, replay};"));
    imports.extend(import(
        &["commands", "ledger", "show"],
        "use super::verify::Report;",
    ));
    let violations = command_violations(&imports);
    assert_eq!(violations.len(), 2, "{violations:?}");
    assert!(violations[0].contains("commands::demo names commands::replay::run"));
    assert!(violations[1].contains("journal names commands::trust::tally"));

    // A cycle through three modules is found and named; a chain is counted in layers.
    let mut imports = import(&["authz"], "use crate::engine::TrustTally;");
    imports.extend(import(&["engine", "mod"], "use crate::runbook::Mode;"));
    imports.extend(import(&["runbook"], "use crate::authz::ActionName;"));
    imports.extend(import(&["runbook"], "use crate::json::Value;"));
    let edges = top_level_edges(&imports);
    assert_eq!(cycles(&edges), [vec!["authz", "engine", "runbook"]]);
    assert!(describe_cycles(&edges).contains("authz -> engine (x.rs:1)"));
    assert_eq!(counts(&edges, 4), (4, None, 4));
    let chain = import(&["authz"], "use crate::runbook::Mode;");
    let mut chain_imports = chain;
    chain_imports.extend(import(&["runbook"], "use crate::json::Value;"));
    let chain_edges = top_level_edges(&chain_imports);
    assert_eq!(counts(&chain_edges, 3), (3, Some(3), 2));
}
