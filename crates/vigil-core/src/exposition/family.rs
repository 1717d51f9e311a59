//! Metric families: what their descriptors declared, which family (and so which type) a
//! sample belongs to, and the structure each type requires of its samples.

use std::borrow::Cow;
use std::collections::BTreeMap;

use super::number::is_value;
use super::{FamilyMeta, Label, MetricType, find_label};

/// A sample name's ending that ties it to a family of some type.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Suffix {
    /// The sample is named as its family.
    Bare,
    Total,
    Created,
    Bucket,
    Sum,
    Count,
    GaugeCount,
    GaugeSum,
    Info,
}

const SUFFIXES: [(&str, Suffix); 8] = [
    ("_total", Suffix::Total),
    ("_created", Suffix::Created),
    ("_bucket", Suffix::Bucket),
    ("_sum", Suffix::Sum),
    ("_count", Suffix::Count),
    ("_gcount", Suffix::GaugeCount),
    ("_gsum", Suffix::GaugeSum),
    ("_info", Suffix::Info),
];

/// Whether a family of type `metric_type` has samples ending in `suffix`. Counters and
/// summaries also take their bare name: text-format counters are declared with their
/// `_total` (`# TYPE x_total counter`, as prometheus_client writes them) and summaries' quantile
/// samples are bare.
fn admits(metric_type: MetricType, suffix: Suffix) -> bool {
    match metric_type {
        MetricType::Counter => matches!(suffix, Suffix::Bare | Suffix::Total | Suffix::Created),
        MetricType::Gauge | MetricType::StateSet | MetricType::Unknown => suffix == Suffix::Bare,
        MetricType::Histogram => matches!(
            suffix,
            Suffix::Bucket | Suffix::Sum | Suffix::Count | Suffix::Created
        ),
        MetricType::GaugeHistogram => matches!(
            suffix,
            Suffix::Bucket | Suffix::GaugeCount | Suffix::GaugeSum
        ),
        MetricType::Summary => matches!(
            suffix,
            Suffix::Bare | Suffix::Sum | Suffix::Count | Suffix::Created
        ),
        MetricType::Info => suffix == Suffix::Info,
    }
}

/// Which family a sample belongs to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct Resolved {
    pub(super) metric_type: MetricType,
    /// The length of the family's name, a prefix of the sample's name.
    pub(super) family_len: usize,
    pub(super) suffix: Suffix,
}

/// The families declared so far.
#[derive(Debug, Default)]
pub(super) struct Families<'a> {
    by_name: BTreeMap<Cow<'a, str>, FamilyMeta<'a>>,
    /// The last sample name resolved and its family: consecutive samples mostly share a name
    /// (a histogram's buckets, a counter's series). Cleared by every `# TYPE`.
    last_resolved: Option<(Cow<'a, str>, Resolved)>,
}

impl<'a> Families<'a> {
    pub(super) fn declare_type(
        &mut self,
        name: Cow<'a, str>,
        metric_type: MetricType,
    ) -> Result<(), String> {
        // One lookup: cloning a borrowed name copies no text.
        let family = self.by_name.entry(name.clone()).or_default();
        if let Some(earlier) = family.metric_type {
            return Err(format!(
                "second `# TYPE` for `{name}` (the first said {})",
                earlier.as_str()
            ));
        }
        family.metric_type = Some(metric_type);
        self.last_resolved = None;
        Ok(())
    }

    pub(super) fn declare_help(
        &mut self,
        name: Cow<'a, str>,
        text: Cow<'a, str>,
    ) -> Result<(), String> {
        let family = self.by_name.entry(name.clone()).or_default();
        if family.help.is_some() {
            return Err(format!("second `# HELP` for `{name}`"));
        }
        family.help = Some(text);
        Ok(())
    }

    /// Records a `# UNIT`; a nonempty unit must end the family's name after an underscore.
    pub(super) fn declare_unit(&mut self, name: Cow<'a, str>, unit: &'a str) -> Result<(), String> {
        if !unit.is_empty()
            && !name
                .strip_suffix(unit)
                .is_some_and(|stem| stem.ends_with('_'))
        {
            return Err(format!(
                "unit `{unit}` is not a suffix of the family name `{name}` (expected `{name}` to end in `_{unit}`)"
            ));
        }
        let family = self.by_name.entry(name.clone()).or_default();
        if family.unit.is_some() {
            return Err(format!("second `# UNIT` for `{name}`"));
        }
        family.unit = Some(unit);
        Ok(())
    }

    /// The family `sample_name` belongs to: the family of that exact name if its type takes
    /// bare samples, else the family named by `sample_name` without a suffix its type takes,
    /// else none (the sample's own name, type unknown).
    #[expect(
        clippy::ptr_arg,
        reason = "the cache keeps a clone of the `Cow`, which for a borrowed name copies no text"
    )]
    pub(super) fn resolve(&mut self, sample_name: &Cow<'a, str>) -> Resolved {
        if let Some((last_name, resolved)) = &self.last_resolved
            && last_name == sample_name
        {
            return *resolved;
        }
        let resolved = self.resolve_uncached(sample_name);
        self.last_resolved = Some((sample_name.clone(), resolved));
        resolved
    }

    fn resolve_uncached(&self, sample_name: &str) -> Resolved {
        let declared = |name: &str| self.by_name.get(name).and_then(|family| family.metric_type);
        if let Some(metric_type) = declared(sample_name)
            && admits(metric_type, Suffix::Bare)
        {
            return Resolved {
                metric_type,
                family_len: sample_name.len(),
                suffix: Suffix::Bare,
            };
        }
        for (ending, suffix) in SUFFIXES {
            if let Some(stem) = sample_name.strip_suffix(ending)
                && let Some(metric_type) = declared(stem)
                && admits(metric_type, suffix)
            {
                return Resolved {
                    metric_type,
                    family_len: stem.len(),
                    suffix,
                };
            }
        }
        Resolved {
            metric_type: MetricType::Unknown,
            family_len: sample_name.len(),
            suffix: Suffix::Bare,
        }
    }

    /// The metadata by family name.
    pub(super) fn into_metadata(self) -> BTreeMap<Cow<'a, str>, FamilyMeta<'a>> {
        self.by_name
    }
}

/// Checks that `labels` has `label` and that its value is a number.
#[inline(always)]
fn numeric_label(name: &str, labels: &[Label<'_>], label: &str, what: &str) -> Result<(), String> {
    // `le` and `quantile` come last as a rule, so the search starts from the end (a label
    // set has no duplicates, so the direction changes nothing else).
    let value = labels
        .iter()
        .rev()
        .find(|(label_name, _)| label_name.as_bytes() == label.as_bytes())
        .map(|(_, value)| value.as_ref());
    match value {
        Some(value) if is_value(value) => Ok(()),
        _ => Err(missing_number(name, label, value, what)),
    }
}

#[cold]
#[inline(never)]
fn missing_number(name: &str, label: &str, value: Option<&str>, what: &str) -> String {
    match value {
        None => format!("{what} `{name}` has no `{label}` label"),
        Some(value) => format!("{what} `{name}` has a non-numeric `{label}` label `{value}`"),
    }
}

/// Checks what a sample's type requires of its labels: a histogram bucket a numeric `le`, a
/// summary quantile a numeric `quantile`, a stateset sample the label naming its state.
pub(super) fn check_structure(
    name: &str,
    labels: &[Label<'_>],
    resolved: Resolved,
) -> Result<(), String> {
    match (resolved.metric_type, resolved.suffix) {
        (MetricType::Histogram | MetricType::GaugeHistogram, Suffix::Bucket) => {
            numeric_label(name, labels, "le", "histogram bucket")
        }
        (MetricType::Summary, Suffix::Bare) => {
            numeric_label(name, labels, "quantile", "summary quantile")
        }
        (MetricType::StateSet, _) => {
            let family = name.get(..resolved.family_len).unwrap_or(name);
            if find_label(labels, family).is_some() {
                Ok(())
            } else {
                Err(format!(
                    "stateset sample `{name}` has no `{family}` label naming its state"
                ))
            }
        }
        _ => Ok(()),
    }
}
