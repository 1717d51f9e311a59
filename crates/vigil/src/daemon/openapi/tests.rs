//! The description against the router, both ways, and against itself.

use std::collections::BTreeSet;
use std::path::Path;

use serde_json::Value;

use super::document;
use crate::daemon::http::served_routes;

fn described(document: &Value) -> BTreeSet<(String, String)> {
    let mut out = BTreeSet::new();
    for (path, methods) in document["paths"].as_object().expect("paths") {
        for (method, operation) in methods.as_object().expect("methods") {
            assert_ne!(
                operation["summary"], "(not described)",
                "{method} {path} is served but not described in daemon/openapi.rs"
            );
            assert!(
                operation["responses"]
                    .as_object()
                    .is_some_and(|r| !r.is_empty()),
                "{method} {path} has no responses"
            );
            out.insert((method.to_ascii_uppercase(), path.clone()));
        }
    }
    out
}

#[test]
fn the_description_lists_exactly_the_routes_served_in_every_configuration() {
    for (intake, admin, console) in [
        (false, false, false),
        (false, true, false),
        (true, false, false),
        (true, true, false),
        (false, true, true),
        (true, true, true),
    ] {
        {
            let routes = served_routes(intake, admin, console);
            let served: BTreeSet<(String, String)> = routes
                .iter()
                .map(|(method, path)| ((*method).to_owned(), (*path).to_owned()))
                .collect();
            let document = document(&routes);
            assert_eq!(document["openapi"], "3.1.0");
            assert_eq!(
                described(&document),
                served,
                "intake {intake}, admin {admin}, console {console}"
            );
        }
    }
}

/// Every `$ref` in `value`.
fn refs<'a>(value: &'a Value, out: &mut Vec<&'a str>) {
    match value {
        Value::Object(map) => {
            for (key, value) in map {
                match (key.as_str(), value) {
                    ("$ref", Value::String(target)) => out.push(target),
                    _ => refs(value, out),
                }
            }
        }
        Value::Array(items) => items.iter().for_each(|item| refs(item, out)),
        _ => {}
    }
}

#[test]
fn every_reference_resolves_and_every_schema_is_used() {
    let document = document(&served_routes(true, true, true));
    let mut found = Vec::new();
    refs(&document, &mut found);
    assert!(!found.is_empty());
    let schemas = document["components"]["schemas"]
        .as_object()
        .expect("schemas");
    for target in &found {
        let name = target
            .strip_prefix("#/components/schemas/")
            .unwrap_or_else(|| panic!("{target} is not a local schema"));
        assert!(schemas.contains_key(name), "{target} does not resolve");
    }
    for name in schemas.keys() {
        let target = format!("#/components/schemas/{name}");
        assert!(found.contains(&target.as_str()), "{name} is never used");
    }
    // Every security requirement names a declared scheme.
    let schemes = document["components"]["securitySchemes"]
        .as_object()
        .expect("schemes");
    let mut named = BTreeSet::new();
    for methods in document["paths"].as_object().expect("paths").values() {
        for operation in methods.as_object().expect("methods").values() {
            for requirement in operation["security"].as_array().into_iter().flatten() {
                named.extend(
                    requirement
                        .as_object()
                        .expect("a requirement")
                        .keys()
                        .cloned(),
                );
            }
        }
    }
    for name in &named {
        assert!(
            schemes.contains_key(name),
            "{name} is not a declared scheme"
        );
    }
}

/// The first argument of every `.route(` call in the daemon's sources (tests excluded), as
/// written: a string literal, or a constant's name.
fn routed_paths(dir: &Path, out: &mut Vec<(String, String)>) {
    let mut entries: Vec<_> = std::fs::read_dir(dir)
        .expect("the daemon's sources")
        .map(|entry| entry.expect("an entry").path())
        .collect();
    entries.sort();
    for path in entries {
        let name = path
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or_default();
        if path.is_dir() {
            routed_paths(&path, out);
            continue;
        }
        if !name.ends_with(".rs") || name == "tests.rs" || name.ends_with("_tests.rs") {
            continue;
        }
        let text = std::fs::read_to_string(&path).expect("a source file");
        // Code after `#[cfg(test)]` is a test module; comments are not code.
        let code = text.split("#[cfg(test)]").next().unwrap_or_default();
        let text: String = code
            .lines()
            .filter(|line| !line.trim_start().starts_with("//"))
            .collect::<Vec<_>>()
            .join("\n");
        for call in text.split(".route(").skip(1) {
            let argument = call.trim_start();
            let written = match argument.strip_prefix('"') {
                Some(rest) => rest.split('"').next().unwrap_or_default().to_owned(),
                None => argument
                    .split(|c: char| c == ',' || c.is_whitespace())
                    .next()
                    .unwrap_or_default()
                    .to_owned(),
            };
            out.push((name.to_owned(), written));
        }
    }
}

#[test]
fn every_route_the_daemons_routers_add_is_listed_and_so_described() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("src/daemon");
    let mut routed = Vec::new();
    routed_paths(&dir, &mut routed);
    let listed: BTreeSet<&str> = served_routes(true, true, true)
        .into_iter()
        .map(|(_, path)| path)
        .collect();
    let constants = [
        ("super::openapi::PATH", super::PATH),
        ("OTLP_TRACES_PATH", crate::daemon::intake::OTLP_TRACES_PATH),
    ];
    let mut checked = 0;
    for (file, written) in &routed {
        // The admin API's catch-all answers 404 in JSON: not a route of its own.
        if written.ends_with("{*rest}") {
            continue;
        }
        let path = match constants.iter().find(|(name, _)| name == written) {
            Some((_, value)) => *value,
            None => {
                assert!(
                    written.starts_with('/'),
                    "{file}: `.route({written}, ...)`: add the constant to this test"
                );
                written.as_str()
            }
        };
        assert!(
            listed.contains(path),
            "{file} routes {path}, which no route list (http.rs, intake.rs, admin.rs, console/mod.rs) has: \
             list it there and describe it in openapi.rs"
        );
        checked += 1;
    }
    // The scan found the routers (health twice, the intake, the admin API, this one twice).
    assert!(checked >= 14, "only {checked} routes found: {routed:?}");
}
