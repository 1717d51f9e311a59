//! Files embedded in the binary so that `vigil demo` runs from a fresh clone with no setup:
//! the shipped policies, and the demo's config and runbook.
//!
//! A test checks that these lists match the folders, so a policy added to `policies/` cannot
//! be forgotten here.

use crate::bundle::{PolicyTexts, TextFile};

/// The shipped Cedar schema.
pub const POLICY_SCHEMA: (&str, &str) = (
    "policies/vigil.cedarschema",
    include_str!("../../../policies/vigil.cedarschema"),
);

/// The shipped Cedar policies.
pub const POLICIES: &[(&str, &str)] = &[
    (
        "policies/ai-incidents.cedar",
        include_str!("../../../policies/ai-incidents.cedar"),
    ),
    (
        "policies/failover-compatibility.cedar",
        include_str!("../../../policies/failover-compatibility.cedar"),
    ),
    (
        "policies/guardrails.cedar",
        include_str!("../../../policies/guardrails.cedar"),
    ),
    (
        "policies/people.cedar",
        include_str!("../../../policies/people.cedar"),
    ),
    (
        "policies/runaway-keys.cedar",
        include_str!("../../../policies/runaway-keys.cedar"),
    ),
];

/// The demo's config, with `@...@` placeholders the demo fills in.
pub const DEMO_CONFIG: (&str, &str) = (
    "examples/demo/vigil.yaml",
    include_str!("../../../examples/demo/vigil.yaml"),
);

/// The demo's runbooks.
pub const DEMO_RUNBOOKS: &[(&str, &str)] = &[(
    "examples/demo/runbooks/block-runaway-key.yaml",
    include_str!("../../../examples/demo/runbooks/block-runaway-key.yaml"),
)];

fn text_file((name, text): (&str, &str)) -> TextFile {
    TextFile {
        name: name.to_owned(),
        text: text.to_owned(),
    }
}

/// The shipped policies as texts.
pub fn policy_texts() -> PolicyTexts {
    PolicyTexts {
        schema: text_file(POLICY_SCHEMA),
        policies: POLICIES.iter().copied().map(text_file).collect(),
    }
}

/// The demo's runbooks as texts.
pub fn demo_runbooks() -> Vec<TextFile> {
    DEMO_RUNBOOKS.iter().copied().map(text_file).collect()
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;

    fn listed(folder: &str, extension: &str) -> Vec<String> {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
        let mut names: Vec<String> = std::fs::read_dir(root.join(folder))
            .unwrap()
            .map(|entry| entry.unwrap().path())
            .filter(|path| path.extension().is_some_and(|ext| ext == extension))
            .map(|path| format!("{folder}/{}", path.file_name().unwrap().to_string_lossy()))
            .collect();
        names.sort();
        names
    }

    // Guards against shipping a policy or runbook that the embedded demo silently lacks.
    #[test]
    fn embedded_files_match_the_folders() {
        let policies: Vec<String> = POLICIES
            .iter()
            .map(|(name, _)| (*name).to_owned())
            .collect();
        assert_eq!(policies, listed("policies", "cedar"));
        let demo_runbooks: Vec<String> = DEMO_RUNBOOKS
            .iter()
            .map(|(name, _)| (*name).to_owned())
            .collect();
        assert_eq!(demo_runbooks, listed("examples/demo/runbooks", "yaml"));
    }

    #[test]
    fn shipped_runbooks_and_policies_load() {
        let policies = policy_texts();
        let schema = vigil_policy::PolicyFile {
            path: policies.schema.name,
            text: policies.schema.text,
        };
        let files: Vec<vigil_policy::PolicyFile> = policies
            .policies
            .into_iter()
            .map(|file| vigil_policy::PolicyFile {
                path: file.name,
                text: file.text,
            })
            .collect();
        let authorizer = vigil_policy::Authorizer::load(&schema, &files).unwrap();
        assert!(
            authorizer
                .policy_ids()
                .contains(&"block-single-runaway-key".to_owned())
        );
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
        let mut runbooks: Vec<(String, String)> = listed("runbooks", "yaml")
            .into_iter()
            .map(|name| {
                let text = std::fs::read_to_string(root.join(&name)).unwrap();
                (name, text)
            })
            .collect();
        runbooks.extend(
            DEMO_RUNBOOKS
                .iter()
                .map(|(name, text)| ((*name).to_owned(), (*text).to_owned())),
        );
        for (name, text) in &runbooks {
            let spec: vigil_core::runbook::RunbookSpec =
                crate::config::parse_yaml(text, name).unwrap();
            spec.validate().unwrap();
        }
    }
}
