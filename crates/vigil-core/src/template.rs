//! Runbook parameter templates: `{{ incident.key }}` and friends, checked at load time.

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A variable a template may use. The set is closed so that a typo fails at load time.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Var {
    /// `incident.id`
    IncidentId,
    /// `incident.key`: the subject's value (for a key: its hash as the gateway reports it).
    IncidentKey,
    /// `incident.key_alias`: the subject's human name, or its value when it has none.
    IncidentKeyAlias,
    /// `incident.team`: the subject's team, or an empty string.
    IncidentTeam,
    /// `incident.source`: the source the finding came from.
    IncidentSource,
    /// `incident.subject`: the same as `incident.key`, for subjects that are not keys (a
    /// model, a prompt, a team).
    IncidentSubject,
    /// `incident.change.from`: the version before the change the diagnoser blames (empty
    /// when it blames none): what a rollback goes back to.
    ChangeFrom,
    /// `incident.change.to`: the version the blamed change introduced.
    ChangeTo,
    /// `incident.cause`: the value of the subject the best hypothesis blames (the key that
    /// uses up a provider's shared quota, the fallback model that answers badly), or
    /// `incident.key` when it blames none.
    IncidentCause,
}

impl Var {
    const ALL: [(&'static str, Var); 9] = [
        ("incident.id", Var::IncidentId),
        ("incident.key", Var::IncidentKey),
        ("incident.key_alias", Var::IncidentKeyAlias),
        ("incident.team", Var::IncidentTeam),
        ("incident.source", Var::IncidentSource),
        ("incident.subject", Var::IncidentSubject),
        ("incident.change.from", Var::ChangeFrom),
        ("incident.change.to", Var::ChangeTo),
        ("incident.cause", Var::IncidentCause),
    ];

    fn parse(name: &str) -> Option<Var> {
        Var::ALL
            .iter()
            .find(|(known, _)| *known == name)
            .map(|(_, var)| *var)
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum Part {
    Literal(String),
    Var(Var),
}

/// The values templates are rendered with.
#[derive(Clone, Debug, Default)]
pub struct TemplateContext {
    /// `incident.id`
    pub incident_id: String,
    /// `incident.key`
    pub key: String,
    /// `incident.key_alias`
    pub key_alias: String,
    /// `incident.team`
    pub team: String,
    /// `incident.source`
    pub source: String,
    /// `incident.change.from`
    pub change_from: String,
    /// `incident.change.to`
    pub change_to: String,
    /// `incident.cause`
    pub cause: String,
}

/// A parsed template.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Template {
    source: String,
    parts: Vec<Part>,
}

impl Template {
    /// Parses `source`; the error names the first unknown variable or unclosed `{{`.
    pub fn parse(source: &str) -> Result<Template, String> {
        let mut parts = Vec::new();
        let mut rest = source;
        while let Some(open) = rest.find("{{") {
            let (literal, after_open) = rest.split_at(open);
            if !literal.is_empty() {
                parts.push(Part::Literal(literal.to_owned()));
            }
            let inner_and_rest = after_open.get(2..).unwrap_or("");
            let Some(close) = inner_and_rest.find("}}") else {
                return Err(format!("unclosed `{{{{` in `{source}`"));
            };
            let (inner, after_inner) = inner_and_rest.split_at(close);
            let name = inner.trim();
            let Some(var) = Var::parse(name) else {
                let known: Vec<&str> = Var::ALL.iter().map(|(known, _)| *known).collect();
                return Err(format!(
                    "unknown variable `{name}`; known variables: {}",
                    known.join(", ")
                ));
            };
            parts.push(Part::Var(var));
            rest = after_inner.get(2..).unwrap_or("");
        }
        if !rest.is_empty() {
            parts.push(Part::Literal(rest.to_owned()));
        }
        Ok(Template {
            source: source.to_owned(),
            parts,
        })
    }

    /// Renders the template.
    #[must_use]
    pub fn render(&self, context: &TemplateContext) -> String {
        let mut out = String::new();
        for part in &self.parts {
            match part {
                Part::Literal(text) => out.push_str(text),
                Part::Var(Var::IncidentId) => out.push_str(&context.incident_id),
                Part::Var(Var::IncidentKey | Var::IncidentSubject) => out.push_str(&context.key),
                Part::Var(Var::IncidentKeyAlias) => out.push_str(&context.key_alias),
                Part::Var(Var::IncidentTeam) => out.push_str(&context.team),
                Part::Var(Var::IncidentSource) => out.push_str(&context.source),
                Part::Var(Var::ChangeFrom) => out.push_str(&context.change_from),
                Part::Var(Var::ChangeTo) => out.push_str(&context.change_to),
                Part::Var(Var::IncidentCause) => out.push_str(&context.cause),
            }
        }
        out
    }

    /// Whether it has no variables (so it can be checked when loaded).
    #[must_use]
    pub fn is_literal(&self) -> bool {
        self.parts
            .iter()
            .all(|part| matches!(part, Part::Literal(_)))
    }

    /// The text it was parsed from.
    #[must_use]
    pub fn source(&self) -> &str {
        &self.source
    }
}

impl fmt::Display for Template {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.source)
    }
}

impl Serialize for Template {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.source)
    }
}

impl<'de> Deserialize<'de> for Template {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Template, D::Error> {
        let source = String::deserialize(deserializer)?;
        Template::parse(&source).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_variables_and_literals() {
        let template = Template::parse("key {{ incident.key }} of {{incident.team}}!").unwrap();
        let context = TemplateContext {
            key: "abc".to_owned(),
            team: "search".to_owned(),
            ..TemplateContext::default()
        };
        assert_eq!(template.render(&context), "key abc of search!");
    }

    #[test]
    fn rejects_unknown_variables_and_unclosed_braces() {
        let error = Template::parse("{{ incident.kye }}").unwrap_err();
        assert!(
            error.starts_with("unknown variable `incident.kye`"),
            "{error}"
        );
        assert_eq!(
            Template::parse("{{ incident.key").unwrap_err(),
            "unclosed `{{` in `{{ incident.key`"
        );
    }
}
