//! The period report as text (for a terminal) and as one HTML page with no external assets
//! and no script (to attach to a review, or open air-gapped). JSON is the report's serde
//! form (`vigil report --format json`).

use std::fmt::Write as _;

use vigil_core::human;
use vigil_core::report::{Durations, Report};

use super::escape_html;
use crate::journal::report::ReadReport;

/// One row of the outcome breakdown: its words, its count and its share of the incidents.
struct Row {
    label: &'static str,
    count: u64,
    /// The bar's fill; the label and the count carry the meaning, never the colour alone.
    colour: &'static str,
}

fn outcome_rows(report: &Report) -> [Row; 5] {
    let o = &report.outcomes;
    [
        Row {
            label: "fixed by vigil",
            count: o.fixed_by_vigil,
            colour: "#2e7d32",
        },
        Row {
            label: "fixed with an approval",
            count: o.fixed_with_approval,
            colour: "#66bb6a",
        },
        Row {
            label: "cleared without action",
            count: o.cleared_without_action,
            colour: "#90a4ae",
        },
        Row {
            label: "paged a person",
            count: o.paged,
            colour: "#c62828",
        },
        Row {
            label: "still open",
            count: o.open,
            colour: "#f9a825",
        },
    ]
}

fn period_line(read: &ReadReport) -> String {
    let period = read.report.period;
    let days = period.until.millis_since(period.from) as f64 / 86_400_000.0;
    format!(
        "{} to {} ({} days{})",
        period.from.to_rfc3339(),
        period.until.to_rfc3339(),
        human::number(days),
        if read.until_latest_entry {
            ", ending at the ledger's latest entry"
        } else {
            ""
        }
    )
}

fn durations(d: &Durations) -> String {
    match (d.mean_secs, d.median_secs, d.max_secs) {
        (Some(mean), Some(median), Some(max)) => format!(
            "mean {}, median {}, longest {} (over {})",
            human::duration_secs(mean),
            human::duration_secs(median),
            human::duration_secs(max),
            d.n
        ),
        _ => "none measured".to_owned(),
    }
}

fn auto_resolved(report: &Report) -> String {
    match report.auto_resolved_pct {
        Some(pct) => format!(
            "{} of the {} that ended",
            human::percent(pct / 100.0),
            report.outcomes.ended()
        ),
        None => "none ended".to_owned(),
    }
}

fn hours_formula(report: &Report) -> String {
    let h = &report.hours_returned;
    format!(
        "({} incidents without a page × {} min − {} decisions × {} min) / 60",
        h.incidents_without_page,
        human::number(h.assumptions.minutes_per_incident),
        h.decisions,
        human::number(h.assumptions.minutes_per_decision),
    )
}

fn unreadable_line(read: &ReadReport) -> Option<String> {
    let (seq, why) = read.first_unreadable.as_ref()?;
    // The reason may quote the entry: its control characters are escaped, and it is cut.
    Some(format!(
        "{} command entries could not be read and are not counted (the first: seq {seq}: {})",
        read.n_unreadable,
        crate::logsafe::escaped(why)
    ))
}

/// One line of the report after the outcomes: a label, maybe a count, and what it means.
struct Fact {
    label: &'static str,
    count: Option<u64>,
    detail: String,
}

impl Fact {
    fn counted(label: &'static str, count: u64, detail: String) -> Fact {
        Fact {
            label,
            count: Some(count),
            detail,
        }
    }

    fn said(label: &'static str, detail: String) -> Fact {
        Fact {
            label,
            count: None,
            detail,
        }
    }

    /// For a terminal: the count right-aligned in a column.
    fn text(&self) -> String {
        match self.count {
            Some(count) => format!("{:<24} {count:>6}  ({})", self.label, self.detail),
            None => format!("{:<24} {}", self.label, self.detail),
        }
    }

    /// For a table cell.
    fn value(&self) -> String {
        match self.count {
            Some(count) => format!("{count} ({})", self.detail),
            None => self.detail.clone(),
        }
    }
}

/// The facts both renderings show, in the groups the text separates with a blank line.
fn facts(report: &Report) -> [Vec<Fact>; 3] {
    let detect = &report.time_to_detect;
    let runs = &report.scheduled;
    [
        vec![
            Fact::counted(
                "pages sent",
                report.pages_sent,
                format!("{} delivered", report.pages_delivered),
            ),
            Fact::counted(
                "pages avoided",
                report.pages_avoided,
                "incidents that ended without a page; each is assumed to have paged under a plain alert rule".to_owned(),
            ),
        ],
        vec![
            Fact::said(
                "time to detect",
                format!(
                    "{}; {} without an onset in their evidence",
                    durations(&detect.dated),
                    detect.undated
                ),
            ),
            Fact::said("time to diagnose", durations(&report.time_to_diagnose)),
            Fact::said(
                "time to resolve",
                format!(
                    "{} (incidents that ended without a page)",
                    durations(&report.time_to_resolve)
                ),
            ),
            Fact::said(
                "time to clear, paged",
                durations(&report.time_to_clear_paged),
            ),
        ],
        vec![
            Fact::counted(
                "failed fixes",
                report.failed_fixes,
                format!(
                    "in {} incidents; {} compensations",
                    report.incidents_with_failed_fix, report.compensations
                ),
            ),
            Fact::counted(
                "policy denials",
                report.policy_denials,
                "steps Cedar refused".to_owned(),
            ),
            Fact::counted(
                "proposals",
                report.proposals,
                format!("{} approved, {} rejected", report.approvals, report.rejections),
            ),
            Fact::counted(
                "scheduled runs",
                runs.runs,
                format!(
                    "{} ended without a page, {} paged with {} pages; runbooks run on their schedule, not incidents",
                    runs.ended_without_page, runs.paged, runs.pages_sent
                ),
            ),
        ],
    ]
}

/// The report as text.
#[must_use]
pub fn text(read: &ReadReport) -> String {
    let report = &read.report;
    let mut out = String::new();
    let mut line = |text: String| {
        out.push_str(&text);
        out.push('\n');
    };
    line(format!("vigil report: {}", period_line(read)));
    if let Some(warning) = unreadable_line(read) {
        line(format!("WARNING: {warning}"));
    }
    line(String::new());
    line(format!("incidents opened         {:>6}", report.incidents));
    for row in outcome_rows(report) {
        line(format!("  {:<22} {:>6}", row.label, row.count));
    }
    line(format!(
        "auto-resolved            {}",
        auto_resolved(report)
    ));
    for group in facts(report) {
        for fact in group {
            line(fact.text());
        }
        line(String::new());
    }
    line("top causes (best hypothesis per incident)".to_owned());
    if report.top_causes.is_empty() {
        line("  none".to_owned());
    }
    for cause in &report.top_causes {
        line(format!(
            "  {:<24} {:>5} incidents  {:>5} fixed  {:>5} paged",
            cause.kind, cause.incidents, cause.fixed, cause.paged
        ));
    }
    line(String::new());
    let h = &report.hours_returned;
    line(format!(
        "engineer-hours returned  {} h = {}",
        human::number(h.hours),
        hours_formula(report)
    ));
    line(format!(
        "  assumptions: {} min a person would have spent on each incident that ended without a page (--minutes-per-incident), {} min per approval or rejection (--minutes-per-decision)",
        human::number(h.assumptions.minutes_per_incident),
        human::number(h.assumptions.minutes_per_decision),
    ));
    out
}

pub(crate) const STYLE: &str = "body{font:16px/1.45 system-ui,sans-serif;margin:0 auto;max-width:60rem;padding:1rem;color:#1b1b1b}\
h1{font-size:1.4rem}h2{font-size:1.1rem;margin-top:1.5rem}\
table{border-collapse:collapse;width:100%}th,td{text-align:left;padding:.3rem .5rem;border-bottom:1px solid #ddd}\
td.n{text-align:right;font-variant-numeric:tabular-nums}\
.warn{background:#fff3cd;border:1px solid #b58100;padding:.5rem}\
svg{max-width:100%;height:auto}\
@media (prefers-color-scheme:dark){body{background:#121212;color:#eee}th,td{border-color:#444}}";

/// The report as one HTML page: inline style, no script, no external asset; every text
/// escaped. The outcome breakdown is also drawn as a bar, labelled in words.
#[must_use]
pub fn html(read: &ReadReport) -> String {
    format!(
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <title>vigil report</title><style>{STYLE}</style></head><body>\
         <h1>vigil report</h1>{}</body></html>\n",
        body(read)
    )
}

/// The report's sections, for a page that has its own head and title (the console's).
#[must_use]
pub fn body(read: &ReadReport) -> String {
    let report = &read.report;
    let mut out = String::new();
    let e = escape_html;
    let _ = write!(out, "<p>{}</p>", e(&period_line(read)));
    if let Some(warning) = unreadable_line(read) {
        let _ = write!(out, "<p class=\"warn\" role=\"alert\">{}</p>", e(&warning));
    }
    let _ = write!(
        out,
        "<h2>Incidents</h2>{}<table><caption>{} incidents opened; auto-resolved: {}</caption>\
         <thead><tr><th scope=\"col\">outcome</th><th scope=\"col\">incidents</th></tr></thead><tbody>",
        outcome_bar(report),
        report.incidents,
        e(&auto_resolved(report))
    );
    for row in outcome_rows(report) {
        let _ = write!(
            out,
            "<tr><td>{}</td><td class=\"n\">{}</td></tr>",
            e(row.label),
            row.count
        );
    }
    let _ = write!(out, "</tbody></table>");
    let _ = write!(out, "<h2>Pages and times</h2><table><tbody>");
    for fact in facts(report).iter().flatten() {
        let _ = write!(
            out,
            "<tr><th scope=\"row\">{}</th><td>{}</td></tr>",
            e(fact.label),
            e(&fact.value())
        );
    }
    let _ = write!(
        out,
        "</tbody></table><h2>Top causes</h2><table><thead><tr><th scope=\"col\">best hypothesis</th>\
         <th scope=\"col\">incidents</th><th scope=\"col\">fixed</th><th scope=\"col\">paged</th></tr></thead><tbody>"
    );
    for cause in &report.top_causes {
        let _ = write!(
            out,
            "<tr><td>{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td></tr>",
            e(&cause.kind),
            cause.incidents,
            cause.fixed,
            cause.paged
        );
    }
    let h = &report.hours_returned;
    let _ = write!(
        out,
        "</tbody></table><h2>Engineer-hours returned</h2><p><strong>{} h</strong> = {}</p>\
         <p>Assumptions: {} min a person would have spent on each incident that ended without a page \
         (<code>--minutes-per-incident</code>); {} min per approval or rejection \
         (<code>--minutes-per-decision</code>).</p>",
        e(&human::number(h.hours)),
        e(&hours_formula(report)),
        e(&human::number(h.assumptions.minutes_per_incident)),
        e(&human::number(h.assumptions.minutes_per_decision)),
    );
    out
}

/// The outcomes as one stacked bar, each part titled with its label and count (and listed
/// in the table after it, so the colours are never the only signal).
fn outcome_bar(report: &Report) -> String {
    const WIDTH: f64 = 600.0;
    let total = report.incidents;
    let mut out = format!(
        "<svg role=\"img\" aria-label=\"incidents by outcome\" viewBox=\"0 0 {WIDTH} 24\" width=\"{WIDTH}\" height=\"24\">"
    );
    if total == 0 {
        let _ = write!(
            out,
            "<rect x=\"0\" y=\"0\" width=\"{WIDTH}\" height=\"24\" fill=\"#eee\"><title>no incidents</title></rect>"
        );
    }
    let mut x = 0.0;
    for row in outcome_rows(report) {
        if row.count == 0 || total == 0 {
            continue;
        }
        let width = WIDTH * row.count as f64 / total as f64;
        let _ = write!(
            out,
            "<rect x=\"{x:.1}\" y=\"0\" width=\"{width:.1}\" height=\"24\" fill=\"{}\"><title>{}: {}</title></rect>",
            row.colour,
            escape_html(row.label),
            row.count
        );
        x += width;
    }
    out.push_str("</svg>");
    out
}

#[cfg(test)]
mod tests;
