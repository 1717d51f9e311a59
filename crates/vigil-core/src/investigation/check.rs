//! Checking an answer against the evidence vigil's tools returned.

use serde::{Deserialize, Serialize};

use super::EvidenceItem;
use crate::diagnosis::HypothesisKind;

/// At most this many hypotheses are read from an answer; the rest are dropped.
pub(crate) const MAX_HYPOTHESES: usize = 5;
/// At most this many citations per hypothesis are read; the rest are dropped.
pub(crate) const MAX_CITATIONS: usize = 8;
/// The longest narrative kept, in characters.
pub(crate) const MAX_NARRATIVE_CHARS: usize = 600;
/// The longest next check kept, in characters.
pub(crate) const MAX_NEXT_CHECK_CHARS: usize = 300;
/// Small whole numbers (counts, ordinals) may appear in words without evidence.
const SMALL_NUMBER: f64 = 10.0;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawAnswer {
    hypotheses: Vec<RawHypothesis>,
    narrative: String,
    #[serde(default)]
    next_check: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawHypothesis {
    kind: String,
    #[serde(default)]
    subject: Option<String>,
    evidence: Vec<RawCitation>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawCitation {
    id: String,
    #[serde(default)]
    about: Option<String>,
    #[serde(default)]
    value: Option<f64>,
}

/// Why a claim was dropped.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DropReason {
    /// The answer is not JSON of the schema (malformed, or another shape).
    SchemaMismatch,
    /// A hypothesis kind outside the closed set (and not `unknown`).
    UnknownKind,
    /// More hypotheses or citations than an answer may hold.
    TooMany,
    /// A cited id that no tool returned.
    UnknownEvidence,
    /// A cited item is about something else than the answer says.
    AboutMismatch,
    /// A claimed number is not within tolerance of the item's.
    NumberMismatch,
    /// A hypothesis's subject appears in none of its valid evidence.
    SubjectMismatch,
    /// A hypothesis left without valid evidence.
    NoValidEvidence,
    /// A narrative or next check that states a number no evidence holds, or is too long.
    UnsupportedText,
}

impl DropReason {
    /// Its name in the ledger and in metrics.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            DropReason::SchemaMismatch => "schema_mismatch",
            DropReason::UnknownKind => "unknown_kind",
            DropReason::TooMany => "too_many",
            DropReason::UnknownEvidence => "unknown_evidence",
            DropReason::AboutMismatch => "about_mismatch",
            DropReason::NumberMismatch => "number_mismatch",
            DropReason::SubjectMismatch => "subject_mismatch",
            DropReason::NoValidEvidence => "no_valid_evidence",
            DropReason::UnsupportedText => "unsupported_text",
        }
    }
}

/// A claim that did not check out.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Dropped {
    /// Which claim (`hypothesis 1`, `hypothesis 1, evidence s-1a2b3c4d`, `narrative`).
    pub claim: String,
    /// Why.
    pub why: DropReason,
    /// The detail, for people.
    pub detail: String,
}

/// A citation that checked out.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CitedEvidence {
    /// The item's id.
    pub id: String,
    /// The item's statement (vigil's words, not the model's).
    pub statement: String,
}

/// A hypothesis that survived.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CheckedHypothesis {
    /// Its kind; `None` is the model's `unknown`.
    pub kind: Option<HypothesisKind>,
    /// What it is about, as the model named it (checked against its evidence).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subject: Option<String>,
    /// Its valid evidence.
    pub evidence: Vec<CitedEvidence>,
}

impl CheckedHypothesis {
    /// Its kind's name (`unknown` for none).
    #[must_use]
    pub fn kind_name(&self) -> &'static str {
        self.kind.map_or("unknown", HypothesisKind::as_str)
    }
}

/// What is left of an answer after the checks.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct CheckedAnswer {
    /// The hypotheses that survived, in the model's order.
    pub hypotheses: Vec<CheckedHypothesis>,
    /// The narrative, if it survived.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub narrative: Option<String>,
    /// The suggested next check for a human, if it survived.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_check: Option<String>,
    /// Claims considered: the answer as a whole when it does not parse, else each
    /// hypothesis, each citation, the narrative and the next check.
    pub claims: u32,
    /// Those dropped, each with why.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub dropped: Vec<Dropped>,
}

/// Checks `answer` (the model's text) against the evidence the tools returned. `known` is
/// vigil's own text the model was given (the task): numbers in it may appear in the
/// narrative. `tolerance` is relative.
#[must_use]
pub fn check(
    answer: &str,
    evidence: &[EvidenceItem],
    known: &str,
    tolerance: f64,
) -> CheckedAnswer {
    let mut out = CheckedAnswer::default();
    let raw: RawAnswer = match serde_json::from_str(strip_fence(answer)) {
        Ok(raw) => raw,
        Err(error) => {
            out.claims = 1;
            out.dropped.push(Dropped {
                claim: "answer".to_owned(),
                why: DropReason::SchemaMismatch,
                detail: clip(&error.to_string(), 200),
            });
            return out;
        }
    };
    for (n, hypothesis) in raw.hypotheses.into_iter().enumerate() {
        let claim = format!("hypothesis {}", n + 1);
        out.claims += 1;
        if n >= MAX_HYPOTHESES {
            out.claims += u32::try_from(hypothesis.evidence.len()).unwrap_or(u32::MAX);
            drop_claim(
                &mut out,
                claim,
                DropReason::TooMany,
                "past the fifth hypothesis",
            );
            continue;
        }
        if let Some(kept) = check_hypothesis(&mut out, &claim, hypothesis, evidence, tolerance) {
            out.hypotheses.push(kept);
        }
    }
    let numbers = known_numbers(evidence, known);
    out.claims += 1;
    match check_text(&raw.narrative, MAX_NARRATIVE_CHARS, &numbers, tolerance) {
        Ok(text) => out.narrative = text,
        Err(detail) => drop_claim(
            &mut out,
            "narrative".to_owned(),
            DropReason::UnsupportedText,
            &detail,
        ),
    }
    if let Some(next_check) = raw.next_check {
        out.claims += 1;
        match check_text(&next_check, MAX_NEXT_CHECK_CHARS, &numbers, tolerance) {
            Ok(text) => out.next_check = text,
            Err(detail) => drop_claim(
                &mut out,
                "next check".to_owned(),
                DropReason::UnsupportedText,
                &detail,
            ),
        }
    }
    out
}

fn check_hypothesis(
    out: &mut CheckedAnswer,
    claim: &str,
    hypothesis: RawHypothesis,
    evidence: &[EvidenceItem],
    tolerance: f64,
) -> Option<CheckedHypothesis> {
    let kind = if hypothesis.kind == "unknown" {
        None
    } else if let Some(kind) = HypothesisKind::parse(&hypothesis.kind) {
        Some(kind)
    } else {
        out.claims += u32::try_from(hypothesis.evidence.len()).unwrap_or(u32::MAX);
        drop_claim(
            out,
            claim.to_owned(),
            DropReason::UnknownKind,
            &format!(
                "kind `{}` is not one vigil knows",
                clip(&hypothesis.kind, 60)
            ),
        );
        return None;
    };
    let mut valid: Vec<(&EvidenceItem, CitedEvidence)> = Vec::new();
    for (n, citation) in hypothesis.evidence.into_iter().enumerate() {
        out.claims += 1;
        let what = format!("{claim}, evidence {}", clip(&citation.id, 40));
        if n >= MAX_CITATIONS {
            drop_claim(out, what, DropReason::TooMany, "past the eighth citation");
            continue;
        }
        let Some(item) = evidence.iter().find(|item| item.id == citation.id) else {
            drop_claim(
                out,
                what,
                DropReason::UnknownEvidence,
                "no tool returned this id",
            );
            continue;
        };
        if let Some(about) = &citation.about
            && !mentions(item, about)
        {
            drop_claim(
                out,
                what,
                DropReason::AboutMismatch,
                &format!(
                    "the item is about {}, not {}",
                    clip(&item.about, 80),
                    clip(about, 80)
                ),
            );
            continue;
        }
        if let Some(value) = citation.value
            && !item
                .values
                .iter()
                .any(|known| near(value, *known, tolerance))
        {
            drop_claim(
                out,
                what,
                DropReason::NumberMismatch,
                &format!(
                    "{value} is not within tolerance of the store's {:?}",
                    item.values
                ),
            );
            continue;
        }
        if !valid.iter().any(|(kept, _)| kept.id == item.id) {
            valid.push((
                item,
                CitedEvidence {
                    id: item.id.clone(),
                    statement: item.statement.clone(),
                },
            ));
        }
    }
    if valid.is_empty() {
        drop_claim(
            out,
            claim.to_owned(),
            DropReason::NoValidEvidence,
            "none of its evidence checked out",
        );
        return None;
    }
    let subject = hypothesis.subject.map(|subject| clean(&subject, 120));
    if let Some(subject) = &subject
        && !subject.is_empty()
        && !valid.iter().any(|(item, _)| mentions(item, subject))
    {
        drop_claim(
            out,
            claim.to_owned(),
            DropReason::SubjectMismatch,
            &format!("none of its evidence is about {subject}"),
        );
        return None;
    }
    Some(CheckedHypothesis {
        kind,
        subject: subject.filter(|subject| !subject.is_empty()),
        evidence: valid.into_iter().map(|(_, cited)| cited).collect(),
    })
}

fn drop_claim(out: &mut CheckedAnswer, claim: String, why: DropReason, detail: &str) {
    out.dropped.push(Dropped {
        claim,
        why,
        detail: clean(detail, 240),
    });
}

/// Whether the item is about `name` (case-insensitively, in either direction, or named in
/// its statement).
fn mentions(item: &EvidenceItem, name: &str) -> bool {
    let name = name.trim().to_lowercase();
    if name.is_empty() {
        return true;
    }
    let about = item.about.to_lowercase();
    about.contains(&name) || name.contains(&about) || item.statement.to_lowercase().contains(&name)
}

/// Whether `claimed` is within `tolerance` (relative) of `known`.
fn near(claimed: f64, known: f64, tolerance: f64) -> bool {
    let diff = (claimed - known).abs();
    diff <= 1e-9 || diff <= tolerance.abs() * known.abs()
}

/// A narrative or next check: cleaned and cut, kept only if every number it states is one
/// vigil knows (or a small whole number). `Ok(None)` for an empty text.
fn check_text(
    text: &str,
    max_chars: usize,
    known: &[f64],
    tolerance: f64,
) -> Result<Option<String>, String> {
    if text.chars().count() > max_chars {
        return Err(format!("longer than {max_chars} characters"));
    }
    let text = clean(text, max_chars);
    for number in numbers_in(&text) {
        let small = number.abs() <= SMALL_NUMBER && number.fract() == 0.0;
        if !small && !known.iter().any(|known| near(number, *known, tolerance)) {
            return Err(format!("it states {number}, which no evidence holds"));
        }
    }
    Ok((!text.is_empty()).then_some(text))
}

/// Every number vigil gave the model: the items' values and the numbers in their statements
/// and in the task.
fn known_numbers(evidence: &[EvidenceItem], known: &str) -> Vec<f64> {
    let mut numbers: Vec<f64> = evidence
        .iter()
        .flat_map(|item| {
            item.values
                .iter()
                .copied()
                .chain(numbers_in(&item.statement))
        })
        .collect();
    numbers.extend(numbers_in(known));
    numbers
}

/// The numbers a text states as words of their own: `1,200`, `94.8 %`, `$3.50`, `-50%`,
/// `4x`. Numbers inside names (`gpt-4o`, `team-a1`, `claude-3-5`) are not read.
pub(crate) fn numbers_in(text: &str) -> Vec<f64> {
    text.split(|c: char| c.is_whitespace() || matches!(c, '(' | ')' | '[' | ']' | '/' | '='))
        .filter_map(|word| {
            let word = word.trim_matches(|c: char| {
                matches!(c, ',' | '.' | ';' | ':' | '"' | '\'' | '!' | '?')
            });
            let word = word.strip_prefix('$').unwrap_or(word);
            let word = word
                .strip_suffix('%')
                .or_else(|| word.strip_suffix('x'))
                .or_else(|| word.strip_suffix('×'))
                .unwrap_or(word);
            let plain: String = word.chars().filter(|c| *c != ',').collect();
            if plain.is_empty() || !plain.chars().any(|c| c.is_ascii_digit()) {
                return None;
            }
            if !plain
                .chars()
                .all(|c| c.is_ascii_digit() || matches!(c, '.' | '-' | '+' | 'e' | 'E'))
            {
                return None;
            }
            plain.parse::<f64>().ok().filter(|value| value.is_finite())
        })
        .collect()
}

/// A text from the model made safe to show: control characters become spaces, runs of
/// whitespace one space, cut to `max_chars`.
fn clean(text: &str, max_chars: usize) -> String {
    let spaced: String = text
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    let joined = spaced.split_whitespace().collect::<Vec<_>>().join(" ");
    clip(&joined, max_chars)
}

fn clip(text: &str, max_chars: usize) -> String {
    if text.chars().count() <= max_chars {
        text.to_owned()
    } else {
        let mut cut: String = text.chars().take(max_chars.saturating_sub(1)).collect();
        cut.push('…');
        cut
    }
}

/// The JSON inside a single Markdown code fence, or the text itself.
fn strip_fence(answer: &str) -> &str {
    let trimmed = answer.trim();
    let Some(inner) = trimmed.strip_prefix("```") else {
        return trimmed;
    };
    let inner = inner.strip_prefix("json").unwrap_or(inner);
    inner.strip_suffix("```").map_or(trimmed, str::trim)
}

#[cfg(test)]
mod tests;
