//! Deciding one request: vigil's request mapped to Cedar's, evaluated, and mapped back.

use std::collections::{BTreeSet, HashMap, HashSet};

use cedar_policy::{
    Context, Decision, Entities, Entity as CedarEntity, EntityId, EntityUid, Request,
    RestrictedExpression,
};
use vigil_core::authz::{
    AttrValue, AuthzDecision, AuthzRequest, Effect, Entity, EntityRef, HumanAuthzRequest,
};

use crate::context::{cedar_context, human_context};
use crate::load::{Authorizer, CedarNames};
use crate::report::error_chain;

impl Authorizer {
    /// Decides whether `request` is allowed by the loaded policies.
    ///
    /// The principal becomes `Vigil::Runbook::"<id>"`, the action `Vigil::Action::"block"` or
    /// `"unblock"`, the resource `Vigil::ApiKey::"<id>"`, and the context a record of the
    /// [`AuthzContext`](vigil_core::authz::AuthzContext) fields. The entity store holds the principal, the resource (with their
    /// attributes) and their parents (without attributes). Request, context and entities are
    /// all checked against the schema.
    ///
    /// Fails closed: the effect is [`Effect::Allow`] only when Cedar allows and nothing went
    /// wrong. Anything that does not match the schema, and any error while evaluating a
    /// policy, gives [`Effect::Deny`] with the errors described in `errors`. When Cedar would
    /// have allowed but an error occurred, `determining_policies` is empty: no policy decided
    /// the deny, the errors did.
    #[must_use]
    pub fn authorize(&self, request: &AuthzRequest) -> AuthzDecision {
        match self.to_cedar(request) {
            Ok((cedar_request, entities)) => self.evaluate(&cedar_request, &entities),
            Err(errors) => self.decision(Effect::Deny, Vec::new(), errors),
        }
    }

    /// Decides whether a person's instruction is allowed by the loaded policies, as
    /// [`authorize`](Authorizer::authorize) does for a step: the principal becomes
    /// `Vigil::Human::"<name>"` in its groups and roles, the action `Vigil::Action::"approve"`
    /// (and so on), the resource the proposal, kill switch or silence, and the context a
    /// record of the [`HumanContext`](vigil_core::authz::HumanContext) fields. Fails closed the same way; a policy set whose
    /// schema predates people ([`ContextVersion::V3`](crate::ContextVersion::V3)) denies every instruction, saying so.
    #[must_use]
    pub fn authorize_human(&self, request: &HumanAuthzRequest) -> AuthzDecision {
        if !self.context_version.has_people() {
            return self.decision(
                Effect::Deny,
                Vec::new(),
                vec![
                    "this policy set's schema predates people's instructions (no `Vigil::Human`); update vigil.cedarschema"
                        .to_owned(),
                ],
            );
        }
        match self.human_to_cedar(request) {
            Ok((cedar_request, entities)) => self.evaluate(&cedar_request, &entities),
            Err(errors) => self.decision(Effect::Deny, Vec::new(), errors),
        }
    }

    /// Evaluates a request that fits the schema; fails closed on any error.
    fn evaluate(&self, cedar_request: &Request, entities: &Entities) -> AuthzDecision {
        let response = cedar_policy::Authorizer::new().is_authorized(
            cedar_request,
            &self.policy_set,
            entities,
        );
        let mut errors: Vec<String> = response
            .diagnostics()
            .errors()
            .map(|error| error_chain(error))
            .collect();
        errors.sort();
        let mut determining: Vec<String> = response
            .diagnostics()
            .reason()
            .map(ToString::to_string)
            .collect();
        determining.sort();
        match response.decision() {
            Decision::Allow if errors.is_empty() => {
                self.decision(Effect::Allow, determining, errors)
            }
            Decision::Allow => self.decision(Effect::Deny, Vec::new(), errors),
            Decision::Deny => self.decision(Effect::Deny, determining, errors),
        }
    }

    /// A decision stamped with this policy set's hash.
    fn decision(
        &self,
        effect: Effect,
        determining_policies: Vec<String>,
        errors: Vec<String>,
    ) -> AuthzDecision {
        AuthzDecision {
            effect,
            determining_policies,
            errors,
            policy_set_hash: self.policy_set_hash().to_owned(),
        }
    }

    /// The Cedar request and entity store for `request`, or every reason it does not fit the
    /// schema.
    fn to_cedar(&self, request: &AuthzRequest) -> Result<(Request, Entities), Vec<String>> {
        let action = self.names.action(request.action).cloned();
        let context = cedar_context(&request.context, self.context_version);
        self.request_and_entities(&request.principal, action, &request.resource, context)
    }

    /// The same for a person's instruction.
    fn human_to_cedar(
        &self,
        request: &HumanAuthzRequest,
    ) -> Result<(Request, Entities), Vec<String>> {
        let action = self.names.human_action(request.action).cloned();
        let context = human_context(&request.context);
        self.request_and_entities(&request.principal, action, &request.resource, context)
    }

    /// A Cedar request of `principal` doing `action` to `resource` in `context`, and the
    /// entity store of the two; every reason it does not fit the schema, all at once.
    fn request_and_entities(
        &self,
        principal: &Entity,
        action: Result<EntityUid, String>,
        resource: &Entity,
        context: Result<Context, String>,
    ) -> Result<(Request, Entities), Vec<String>> {
        let names = &self.names;
        let mut errors = Vec::new();

        let entities = entity_store(names, principal, resource)
            .and_then(|entities| {
                // The request's entities are validated against the schema as they are added
                // to a copy of the (precomputed) action entities.
                self.action_entities
                    .clone()
                    .add_entities(entities, Some(&self.schema))
                    .map_err(|error| {
                        format!("entities do not match the schema: {}", error_chain(&error))
                    })
            })
            .map_err(|error| errors.push(error))
            .ok();

        let cedar_request = context
            .and_then(|context| {
                Request::new(
                    uid(names, &principal.uid)?,
                    action?,
                    uid(names, &resource.uid)?,
                    context,
                    Some(&self.schema),
                )
                .map_err(|error| {
                    format!("request does not match the schema: {}", error_chain(&error))
                })
            })
            .map_err(|error| errors.push(error))
            .ok();

        match (cedar_request, entities) {
            (Some(cedar_request), Some(entities)) => Ok((cedar_request, entities)),
            _ => Err(errors),
        }
    }
}

/// The principal and resource with their attributes, and each of their parents (that is not
/// itself one of the two) without attributes.
fn entity_store(
    names: &CedarNames,
    principal: &Entity,
    resource: &Entity,
) -> Result<Vec<CedarEntity>, String> {
    let mut entities = vec![cedar_entity(names, principal)?];
    if resource.uid != principal.uid {
        entities.push(cedar_entity(names, resource)?);
    }
    let parents: BTreeSet<&EntityRef> = principal
        .parents
        .iter()
        .chain(&resource.parents)
        .filter(|parent| **parent != principal.uid && **parent != resource.uid)
        .collect();
    for parent in parents {
        entities.push(CedarEntity::new_no_attrs(
            uid(names, parent)?,
            HashSet::new(),
        ));
    }
    Ok(entities)
}

/// One entity with its attributes and parents.
fn cedar_entity(names: &CedarNames, entity: &Entity) -> Result<CedarEntity, String> {
    let attrs: HashMap<String, RestrictedExpression> = entity
        .attrs
        .iter()
        .map(|(name, value)| Ok((name.clone(), attr_value(names, value)?)))
        .collect::<Result<_, String>>()?;
    let parents: HashSet<EntityUid> = entity
        .parents
        .iter()
        .map(|parent| uid(names, parent))
        .collect::<Result<_, String>>()?;
    CedarEntity::new(uid(names, &entity.uid)?, attrs, parents).map_err(|error| {
        format!(
            "invalid attributes on `{}::\"{}\"`: {}",
            entity.uid.entity_type.cedar_name(),
            entity.uid.id,
            error_chain(&error)
        )
    })
}

/// The Cedar uid of an entity, for example `Vigil::ApiKey::"k-123"`.
fn uid(names: &CedarNames, entity: &EntityRef) -> Result<EntityUid, String> {
    Ok(EntityUid::from_type_name_and_id(
        names.entity_type(entity.entity_type)?.clone(),
        EntityId::new(&entity.id),
    ))
}

/// An attribute as a Cedar value.
fn attr_value(names: &CedarNames, value: &AttrValue) -> Result<RestrictedExpression, String> {
    Ok(match value {
        AttrValue::Bool(value) => RestrictedExpression::new_bool(*value),
        AttrValue::Long(value) => RestrictedExpression::new_long(*value),
        AttrValue::String(value) => RestrictedExpression::new_string(value.clone()),
        AttrValue::Entity(entity) => RestrictedExpression::new_entity_uid(uid(names, entity)?),
    })
}
