//! Loading a schema and policy files into an [`Authorizer`]: everything checked, all or nothing.

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

use cedar_policy::{
    EntityId, EntityTypeName, EntityUid, Policy, PolicyId, PolicySet, Request, Schema,
    ValidationMode, Validator,
};
use sha2::{Digest, Sha256};
use vigil_core::authz::Mode;
use vigil_core::authz::{
    ActionName, AuthzContext, EntityType, FailoverFacts, HumanActionName, HumanContext,
};

use crate::context::{ContextVersion, cedar_context, human_context};
use crate::error::{PolicyError, Problem, SourceLocation};
use crate::report::{diagnostic_problems, error_chain, problem, problem_at};
use crate::{ID_ANNOTATION, NAMESPACE};

/// The text of one schema or policy file, as the binary read it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PolicyFile {
    /// Where the text came from, relative to the policy folder. Used only in messages and in
    /// the policy set hash.
    pub path: String,
    /// The file's contents.
    pub text: String,
}

/// A validated Cedar policy set with its schema, ready to decide requests.
///
/// Built only by [`Authorizer::load`], so every `Authorizer` holds a policy set that parsed,
/// has a unique `@id` on every policy, and validated against its schema in strict mode.
pub struct Authorizer {
    pub(crate) schema: Schema,
    /// The schema's action entities (with their groups), computed once: every request's
    /// entity store starts from a copy instead of deriving them from the schema again.
    pub(crate) action_entities: cedar_policy::Entities,
    pub(crate) policy_set: PolicySet,
    pub(crate) names: CedarNames,
    policy_set_hash: String,
    policy_ids: Vec<String>,
    /// The context vocabulary the schema declares; requests send only its attributes.
    pub(crate) context_version: ContextVersion,
}

impl fmt::Debug for Authorizer {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter
            .debug_struct("Authorizer")
            .field("policy_set_hash", &self.policy_set_hash)
            .field("policy_ids", &self.policy_ids)
            .finish_non_exhaustive()
    }
}

impl Authorizer {
    /// Parses `schema` (Cedar schema syntax) and `policies` (Cedar policy syntax), and checks
    /// them as one policy set.
    ///
    /// Every policy must carry an `@id("...")` annotation in kebab-case (`a-z`, `0-9` and
    /// single `-` between words), unique across all files; it becomes the policy's id, which
    /// decisions report. Templates are not supported. The set must validate against the
    /// schema in strict mode, with no validator warnings either, and the schema must accept
    /// a request of vigil's shape for every action.
    ///
    /// # Errors
    ///
    /// [`PolicyError::InvalidPolicySet`] listing every problem found, each with its file and,
    /// where Cedar gives one, line and column. Nothing is loaded: keep the previous
    /// `Authorizer` in force.
    pub fn load(schema: &PolicyFile, policies: &[PolicyFile]) -> Result<Authorizer, PolicyError> {
        Authorizer::load_with(schema, policies, &[ContextVersion::CURRENT])
    }

    /// Loads a policy set recorded in a ledger, which may have been written for an older
    /// [`ContextVersion`] (its schema lacks an attribute added since): the newest version the
    /// schema accepts is used, and its requests carry only that version's attributes. Every
    /// other check of [`load`](Authorizer::load) applies.
    ///
    /// # Errors
    ///
    /// As for [`load`](Authorizer::load), with the problems of the current version when no
    /// version fits.
    pub fn load_recorded(
        schema: &PolicyFile,
        policies: &[PolicyFile],
    ) -> Result<Authorizer, PolicyError> {
        let mut newest_first = ContextVersion::ALL;
        newest_first.reverse();
        Authorizer::load_with(schema, policies, &newest_first)
    }

    /// The context version the schema declares.
    #[must_use]
    pub fn context_version(&self) -> ContextVersion {
        self.context_version
    }

    /// Loads with the first of `versions` the schema accepts; the errors are those of the first.
    fn load_with(
        schema: &PolicyFile,
        policies: &[PolicyFile],
        versions: &[ContextVersion],
    ) -> Result<Authorizer, PolicyError> {
        let mut first_error = None;
        for version in versions {
            match Authorizer::load_version(schema, policies, *version) {
                Ok(authorizer) => return Ok(authorizer),
                Err(error) => {
                    first_error.get_or_insert(error);
                }
            }
        }
        Err(first_error.unwrap_or(PolicyError::InvalidPolicySet {
            problems: Vec::new(),
        }))
    }

    /// Loads for one context version.
    fn load_version(
        schema: &PolicyFile,
        policies: &[PolicyFile],
        context_version: ContextVersion,
    ) -> Result<Authorizer, PolicyError> {
        let mut problems = Vec::new();
        let names = CedarNames::new(schema, &mut problems);
        let cedar_schema = parse_schema(schema, &mut problems);

        let mut files: Vec<&PolicyFile> = policies.iter().collect();
        files.sort_by(|left, right| left.path.cmp(&right.path));
        for pair in files.windows(2) {
            if let [first, second] = pair
                && first.path == second.path
            {
                problems.push(problem(&second.path, "policy file given twice".to_owned()));
            }
        }

        let mut policy_set = PolicySet::new();
        let mut origins = BTreeMap::new();
        for file in &files {
            collect_policies(file, &mut policy_set, &mut origins, &mut problems);
        }

        if let Some(cedar_schema) = &cedar_schema {
            validate_policies(cedar_schema, &policy_set, &origins, &mut problems);
            if let Some(names) = &names {
                check_schema_fits_requests(
                    schema,
                    cedar_schema,
                    names,
                    context_version,
                    &mut problems,
                );
            }
        }

        let action_entities = cedar_schema.as_ref().and_then(|cedar_schema| {
            match cedar_policy::Entities::from_entities([], Some(cedar_schema)) {
                Ok(entities) => Some(entities),
                Err(error) => {
                    problems.push(problem(
                        &schema.path,
                        format!("the schema's actions do not form entities: {error}"),
                    ));
                    None
                }
            }
        });
        match (cedar_schema, names, action_entities) {
            (Some(cedar_schema), Some(names), Some(action_entities)) if problems.is_empty() => {
                Ok(Authorizer {
                    schema: cedar_schema,
                    action_entities,
                    policy_set,
                    names,
                    policy_set_hash: policy_set_hash(&schema.text, &files),
                    policy_ids: origins.into_keys().collect(),
                    context_version,
                })
            }
            _ => {
                problems.sort();
                problems.dedup();
                Err(PolicyError::InvalidPolicySet { problems })
            }
        }
    }

    /// The lowercase hex SHA-256 that identifies this policy set; every decision records it.
    ///
    /// It covers the schema text and each policy file's path and text, and nothing else, in
    /// this canonical encoding: the ASCII bytes `vigil-policy-set-v1`, then the schema text as
    /// a field, then the number of policy files as a big-endian `u64`, then for each file in
    /// byte order of its path, the path as a field and the text as a field; a field is its
    /// length in bytes as a big-endian `u64` followed by its UTF-8 bytes. So the hash does not
    /// depend on the order the files were given in, and renaming a policy file changes it.
    /// Callers should name files relative to the policy folder (`runaway-keys.cedar`), so that
    /// the same policies hash the same wherever they are installed.
    #[must_use]
    pub fn policy_set_hash(&self) -> &str {
        &self.policy_set_hash
    }

    /// The `@id` of every policy in the set, sorted.
    #[must_use]
    pub fn policy_ids(&self) -> Vec<String> {
        self.policy_ids.clone()
    }
}

/// Where a policy came from, to locate the problems the validator finds in it.
struct Origin<'a> {
    file: &'a PolicyFile,
    offset: Option<usize>,
}

/// The Cedar names vigil's requests use, parsed once: every [`EntityType`] and every
/// [`ActionName`] (their `ALL` lists).
pub(crate) struct CedarNames {
    entity_types: BTreeMap<EntityType, EntityTypeName>,
    actions: BTreeMap<ActionName, EntityUid>,
    human_actions: BTreeMap<HumanActionName, EntityUid>,
}

impl CedarNames {
    /// Parses the names; a failure is a problem reported against the schema file.
    fn new(schema: &PolicyFile, problems: &mut Vec<Problem>) -> Option<CedarNames> {
        let names = (|| {
            let action_type = type_name("Action")?;
            let entity_types = EntityType::ALL
                .into_iter()
                .map(|entity_type| Ok((entity_type, type_name(entity_type.cedar_name())?)))
                .collect::<Result<_, String>>()?;
            let actions = ActionName::ALL
                .into_iter()
                .map(|action| {
                    let uid = EntityUid::from_type_name_and_id(
                        action_type.clone(),
                        EntityId::new(action.cedar_id()),
                    );
                    (action, uid)
                })
                .collect();
            let human_actions = HumanActionName::ALL
                .into_iter()
                .map(|action| {
                    let uid = EntityUid::from_type_name_and_id(
                        action_type.clone(),
                        EntityId::new(action.cedar_id()),
                    );
                    (action, uid)
                })
                .collect();
            Ok::<_, String>(CedarNames {
                entity_types,
                actions,
                human_actions,
            })
        })();
        match names {
            Ok(names) => Some(names),
            Err(error) => {
                let message = format!("vigil's own Cedar names do not parse: {error}");
                problems.push(problem(&schema.path, message));
                None
            }
        }
    }

    /// The Cedar type of an entity type, for example `Vigil::ApiKey`.
    ///
    /// # Errors
    /// Only if `EntityType::ALL` missed a variant: the request is then denied.
    pub(crate) fn entity_type(&self, entity_type: EntityType) -> Result<&EntityTypeName, String> {
        self.entity_types
            .get(&entity_type)
            .ok_or_else(|| format!("vigil has no Cedar name for `{}`", entity_type.cedar_name()))
    }

    /// The Cedar action entity of an action, for example `Vigil::Action::"block"`.
    ///
    /// # Errors
    /// Only if `ActionName::ALL` missed a variant: the request is then denied.
    pub(crate) fn action(&self, action: ActionName) -> Result<&EntityUid, String> {
        self.actions
            .get(&action)
            .ok_or_else(|| format!("vigil has no Cedar name for action `{}`", action.cedar_id()))
    }

    /// The Cedar action entity of a person's instruction, for example
    /// `Vigil::Action::"approve"`.
    ///
    /// # Errors
    /// Only if `HumanActionName::ALL` missed a variant: the request is then denied.
    pub(crate) fn human_action(&self, action: HumanActionName) -> Result<&EntityUid, String> {
        self.human_actions
            .get(&action)
            .ok_or_else(|| format!("vigil has no Cedar name for action `{}`", action.cedar_id()))
    }
}

/// The Cedar type `Vigil::<name>`.
fn type_name(name: &str) -> Result<EntityTypeName, String> {
    let qualified = format!("{NAMESPACE}::{name}");
    EntityTypeName::from_str(&qualified).map_err(|error| format!("`{qualified}`: {error}"))
}

/// Parses the schema; its errors and warnings both become problems.
fn parse_schema(schema: &PolicyFile, problems: &mut Vec<Problem>) -> Option<Schema> {
    match Schema::from_cedarschema_str(&schema.text) {
        Ok((cedar_schema, warnings)) => {
            // Warnings fail the load through `problems`; the schema is still returned so that
            // the policies are validated against it and all problems are reported together.
            for warning in warnings {
                problems.extend(diagnostic_problems(&schema.path, &schema.text, &warning));
            }
            Some(cedar_schema)
        }
        Err(error) => {
            problems.extend(diagnostic_problems(&schema.path, &schema.text, &error));
            None
        }
    }
}

/// Parses one policy file, checks each policy's `@id`, and adds the policies to `policy_set`
/// under their `@id`s.
fn collect_policies<'a>(
    file: &'a PolicyFile,
    policy_set: &mut PolicySet,
    origins: &mut BTreeMap<String, Origin<'a>>,
    problems: &mut Vec<Problem>,
) {
    let parsed = match PolicySet::from_str(&file.text) {
        Ok(parsed) => parsed,
        Err(error) => {
            problems.extend(diagnostic_problems(&file.path, &file.text, &error));
            return;
        }
    };
    for template in parsed.templates() {
        let offset = template.as_ref().loc().map(|loc| loc.span.offset());
        let message =
            "templates (policies with `?principal` or `?resource`) are not supported".to_owned();
        problems.push(problem_at(&file.path, &file.text, offset, message));
    }
    // Visit policies in file order so that, of two with the same `@id`, the later one is blamed.
    let mut policies: Vec<(Option<usize>, &Policy)> = parsed
        .policies()
        .map(|policy| (policy.as_ref().loc().map(|loc| loc.span.offset()), policy))
        .collect();
    policies.sort_by_key(|(offset, _)| *offset);
    for (offset, policy) in policies {
        let Some(id) = policy.annotation(ID_ANNOTATION) else {
            let message = "policy has no `@id(\"...\")` annotation".to_owned();
            problems.push(problem_at(&file.path, &file.text, offset, message));
            continue;
        };
        if !is_kebab_case(id) {
            let message =
                format!("policy id `{id}` is not kebab-case (like `block-single-runaway-key`)");
            problems.push(problem_at(&file.path, &file.text, offset, message));
            continue;
        }
        if let Some(first) = origins.get(id) {
            let first_at = match first.offset {
                Some(offset) => format!(
                    "{}:{}",
                    first.file.path,
                    SourceLocation::of_offset(&first.file.text, offset)
                ),
                None => first.file.path.clone(),
            };
            let message = format!("duplicate policy id `{id}`, first used at `{first_at}`");
            problems.push(problem_at(&file.path, &file.text, offset, message));
            continue;
        }
        if let Err(error) = policy_set.add(policy.new_id(PolicyId::new(id))) {
            problems.extend(diagnostic_problems(&file.path, &file.text, &error));
            continue;
        }
        origins.insert(id.to_owned(), Origin { file, offset });
    }
}

/// Whether `id` is lowercase words of `a-z` and `0-9` joined by single hyphens.
fn is_kebab_case(id: &str) -> bool {
    !id.is_empty()
        && id.split('-').all(|word| {
            !word.is_empty()
                && word
                    .chars()
                    .all(|character| character.is_ascii_lowercase() || character.is_ascii_digit())
        })
}

/// Validates the set in strict mode; errors and warnings both become problems, located in the
/// file of the policy they concern.
fn validate_policies(
    schema: &Schema,
    policy_set: &PolicySet,
    origins: &BTreeMap<String, Origin<'_>>,
    problems: &mut Vec<Problem>,
) {
    let result = Validator::new(schema.clone()).validate(policy_set, ValidationMode::Strict);
    let mut add = |policy_id: &PolicyId, diagnostic: &dyn miette::Diagnostic, prefix: &str| {
        let found = diagnostic_problems_of_policy(policy_id, diagnostic, origins);
        problems.extend(found.into_iter().map(|mut problem| {
            problem.message.insert_str(0, prefix);
            problem
        }));
    };
    for error in result.validation_errors() {
        add(error.policy_id(), error, "");
    }
    for warning in result.validation_warnings() {
        add(warning.policy_id(), warning, "warning: ");
    }
    // A policy written for steps that leaves its action open now also meets people's
    // instructions, whose context differs: say how to scope it.
    let human_actions: Vec<String> = HumanActionName::ALL
        .iter()
        .map(|action| format!("Vigil::Action::\"{}\"", action.cedar_id()))
        .collect();
    for problem in problems.iter_mut() {
        if human_actions
            .iter()
            .any(|action| problem.message.contains(action.as_str()))
        {
            problem.message.push_str(
                " (this policy also applies to people's instructions, which have their own context: scope it with `action in Vigil::Action::\"remediate\"` or `principal is Vigil::Runbook`)",
            );
        }
    }
}

/// Problems for a validator diagnostic about `policy_id`, located in that policy's file.
fn diagnostic_problems_of_policy(
    policy_id: &PolicyId,
    diagnostic: &dyn miette::Diagnostic,
    origins: &BTreeMap<String, Origin<'_>>,
) -> Vec<Problem> {
    match origins.get(policy_id.to_string().as_str()) {
        Some(origin) => diagnostic_problems(&origin.file.path, &origin.file.text, diagnostic),
        None => diagnostic_problems(&format!("policy `{policy_id}`"), "", diagnostic),
    }
}

/// Checks that the schema declares vigil's entity types and accepts a request of vigil's shape
/// for every action, so that a schema edit cannot silently make every request an error.
fn check_schema_fits_requests(
    schema_file: &PolicyFile,
    schema: &Schema,
    names: &CedarNames,
    context_version: ContextVersion,
    problems: &mut Vec<Problem>,
) {
    for &entity_type in context_version.entity_types() {
        match names.entity_type(entity_type) {
            Ok(name) if schema.entity_types().any(|declared| declared == name) => {}
            Ok(name) => {
                let message = format!("the schema does not declare entity type `{name}`");
                problems.push(problem(&schema_file.path, message));
            }
            Err(error) => problems.push(problem(&schema_file.path, error)),
        }
    }
    let sample_context = AuthzContext {
        mode: Mode::Autonomous,
        severity: "page".to_owned(),
        blast_radius: 1,
        attempt: 1,
        incident_age_secs: 0,
        hour_utc: 0,
        detector: "token-spike".to_owned(),
        confidence_pct: 100,
        is_compensation: false,
        trust_pct: 50,
        failover: None,
        assistant_agrees: context_version
            .has_attribute("assistant_agrees")
            .then_some(true),
    };
    // A failover step carries its facts: a schema of this version must accept them there.
    let failover_context = AuthzContext {
        failover: Some(FailoverFacts {
            source: "sample".to_owned(),
            source_modality: "chat".to_owned(),
            source_context_window: 128_000,
            target: "sample-fallback".to_owned(),
            target_modality: "chat".to_owned(),
            target_context_window: 128_000,
        }),
        ..sample_context.clone()
    };
    for action in ActionName::ALL {
        let sample_context =
            if action == ActionName::Failover && context_version.has_attribute("failover") {
                &failover_context
            } else {
                &sample_context
            };
        let resource_type = action.resource_type();
        let request = names
            .entity_type(EntityType::Runbook)
            .and_then(|runbook| {
                let resource = names.entity_type(resource_type)?;
                let action_uid = names.action(action)?;
                Ok((runbook, resource, action_uid))
            })
            .and_then(|(runbook, resource, action_uid)| {
                let context = cedar_context(sample_context, context_version)?;
                Request::new(
                    EntityUid::from_type_name_and_id(runbook.clone(), EntityId::new("sample")),
                    action_uid.clone(),
                    EntityUid::from_type_name_and_id(resource.clone(), EntityId::new("sample")),
                    context,
                    Some(schema),
                )
                .map_err(|error| error_chain(&error))
            });
        if let Err(error) = request {
            let message = format!(
                "the schema does not accept vigil's `{}` requests (a `Runbook` acting on a resource of type `{}` with vigil's context): {error}",
                action.cedar_id(),
                resource_type.cedar_name()
            );
            problems.push(problem(&schema_file.path, message));
        }
    }
    if context_version.has_people() {
        check_schema_fits_people(schema_file, schema, names, problems);
    }
}

/// Checks that the schema accepts a request of vigil's shape for every person's
/// instruction: a `Human` doing it to its resource with vigil's `HumanContext`.
fn check_schema_fits_people(
    schema_file: &PolicyFile,
    schema: &Schema,
    names: &CedarNames,
    problems: &mut Vec<Problem>,
) {
    let sample_context = HumanContext {
        hour_utc: 0,
        duration_secs: 0,
        has_reason: true,
    };
    for action in HumanActionName::ALL {
        let resource_type = action.resource_type();
        let request = names
            .entity_type(EntityType::Human)
            .and_then(|human| {
                let resource = names.entity_type(resource_type)?;
                let action_uid = names.human_action(action)?;
                Ok((human, resource, action_uid))
            })
            .and_then(|(human, resource, action_uid)| {
                Request::new(
                    EntityUid::from_type_name_and_id(human.clone(), EntityId::new("sample")),
                    action_uid.clone(),
                    EntityUid::from_type_name_and_id(resource.clone(), EntityId::new("sample")),
                    human_context(&sample_context)?,
                    Some(schema),
                )
                .map_err(|error| error_chain(&error))
            });
        if let Err(error) = request {
            let message = format!(
                "the schema does not accept vigil's `{}` requests (a `Human` acting on a resource of type `{}` with vigil's `HumanContext`): {error}",
                action.cedar_id(),
                resource_type.cedar_name()
            );
            problems.push(problem(&schema_file.path, message));
        }
    }
}

/// The hash documented on [`Authorizer::policy_set_hash`]; `files` must be sorted by path.
fn policy_set_hash(schema_text: &str, files: &[&PolicyFile]) -> String {
    debug_assert!(
        files
            .windows(2)
            .all(|pair| matches!(pair, [first, second] if first.path <= second.path))
    );
    let mut hasher = Sha256::new();
    hasher.update(b"vigil-policy-set-v1");
    hash_field(&mut hasher, schema_text);
    hasher.update(encoded_length(files.len()));
    for file in files {
        hash_field(&mut hasher, &file.path);
        hash_field(&mut hasher, &file.text);
    }
    hex::encode(hasher.finalize())
}

/// Adds one length-prefixed field to the hash.
fn hash_field(hasher: &mut Sha256, field: &str) {
    hasher.update(encoded_length(field.len()));
    hasher.update(field.as_bytes());
}

/// A length as a big-endian `u64`.
fn encoded_length(length: usize) -> [u8; 8] {
    u64::try_from(length).unwrap_or(u64::MAX).to_be_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hash_fields_are_length_prefixed_so_moved_text_changes_the_hash() {
        let file = |path: &str, text: &str| PolicyFile {
            path: path.to_owned(),
            text: text.to_owned(),
        };
        let (a_long, b_short) = (file("a", "xy"), file("b", "z"));
        let (a_short, b_long) = (file("a", "x"), file("b", "yz"));
        assert_ne!(
            policy_set_hash("", &[&a_long, &b_short]),
            policy_set_hash("", &[&a_short, &b_long])
        );
        assert_ne!(
            policy_set_hash("s", &[]),
            policy_set_hash("", &[&file("s", "")])
        );
    }
}
