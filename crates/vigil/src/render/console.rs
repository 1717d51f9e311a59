//! The console's pages (`vigil serve` with `console:`), rendered on the server from what the
//! handlers in `daemon/console/` read: the ledger (through `journal::incidents`, `report`,
//! `trust`), the engine's proposals and controls. Every text that came from outside (a
//! reason, a name, a label, a prompt's name, an HTTP body) goes through [`escape_html`](super::escape_html);
//! no page carries inline script or style, so the Content-Security-Policy forbids both.
//!
//! The pages work without script: every filter is a GET form and every instruction a POST
//! form with its CSRF token. `console.js` adds the live stream: on news from the engine it
//! fetches the page again and swaps its `<main>`.

use std::fmt::Write as _;

use vigil_core::chart::EvidenceChart;
use vigil_core::engine::{Controls, PendingProposal};
use vigil_core::incidents::{IncidentFilter, IncidentState};
use vigil_core::people::Role;
use vigil_core::time::Timestamp;

use super::escape_html as e;
use crate::journal::incidents::{IncidentDetail, IncidentList};

/// The console's stylesheet, served from `/console/assets/console.css`.
pub const CSS: &str = include_str!("console/console.css");

/// The console's one script, served from `/console/assets/console.js`: live updates.
pub const JS: &str = include_str!("console/console.js");

/// Who is signed in, as every page shows it.
#[derive(Debug, Clone)]
pub struct Who {
    /// Their name, as the ledger records it.
    pub name: String,
    /// Every role held.
    pub roles: Vec<Role>,
    /// The session's CSRF token, put in every form.
    pub csrf: String,
}

impl Who {
    fn has(&self, role: Role) -> bool {
        self.roles.contains(&role) || self.roles.contains(&Role::Admin)
    }
}

/// The sections of the console, in the navigation's order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Section {
    /// The incident list and one incident.
    Incidents,
    /// Proposals waiting for people.
    Proposals,
    /// Kill switches and silences.
    Controls,
    /// The policies and runbooks in force.
    Policies,
    /// The ledger's state and entries.
    Ledger,
    /// Trust per runbook.
    Trust,
    /// The period report.
    Report,
}

impl Section {
    const ALL: [Section; 7] = [
        Section::Incidents,
        Section::Proposals,
        Section::Controls,
        Section::Policies,
        Section::Ledger,
        Section::Trust,
        Section::Report,
    ];

    fn href(self) -> &'static str {
        match self {
            Section::Incidents => "/console/incidents",
            Section::Proposals => "/console/proposals",
            Section::Controls => "/console/controls",
            Section::Policies => "/console/policies",
            Section::Ledger => "/console/ledger",
            Section::Trust => "/console/trust",
            Section::Report => "/console/report",
        }
    }

    fn label(self) -> &'static str {
        match self {
            Section::Incidents => "Incidents",
            Section::Proposals => "Proposals",
            Section::Controls => "Controls",
            Section::Policies => "Policies",
            Section::Ledger => "Ledger",
            Section::Trust => "Trust",
            Section::Report => "Report",
        }
    }
}

/// A whole page: the head (stylesheet and script from `/console/assets/`), the navigation
/// with who is signed in and the sign-out form, and `body` in `<main>`.
#[must_use]
pub fn page(title: &str, section: Option<Section>, who: Option<&Who>, body: &str) -> String {
    let mut out = String::with_capacity(body.len() + 2048);
    let _ = write!(
        out,
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <title>{} · vigil</title>\
         <link rel=\"stylesheet\" href=\"/console/assets/console.css\">\
         <script src=\"/console/assets/console.js\" defer></script></head><body>\
         <a class=\"skip\" href=\"#main\">Skip to the content</a><header>\
         <a class=\"brand\" href=\"/console/incidents\">vigil</a>",
        e(title)
    );
    if let Some(who) = who {
        out.push_str("<nav aria-label=\"Console sections\"><ul>");
        for item in Section::ALL {
            let current = if Some(item) == section {
                " aria-current=\"page\""
            } else {
                ""
            };
            let _ = write!(
                out,
                "<li><a href=\"{}\"{current}>{}</a></li>",
                item.href(),
                item.label()
            );
        }
        let roles: Vec<&str> = who.roles.iter().map(|role| role.as_str()).collect();
        let _ = write!(
            out,
            "</ul></nav><form class=\"who\" method=\"post\" action=\"/console/logout\">{}\
             <span>Signed in as <strong id=\"who\">{}</strong> ({})</span> \
             <button type=\"submit\">Sign out</button></form>",
            csrf_field(who),
            e(&who.name),
            e(&roles.join(", "))
        );
    }
    let _ = writeln!(
        out,
        "</header><main id=\"main\" tabindex=\"-1\">{body}</main><footer>\
         <span>vigil {}</span> · <span id=\"live\" role=\"status\" aria-live=\"polite\">live updates: off</span>\
         </footer></body></html>",
        env!("CARGO_PKG_VERSION")
    );
    out
}

fn csrf_field(who: &Who) -> String {
    format!(
        "<input type=\"hidden\" name=\"csrf\" value=\"{}\">",
        e(&who.csrf)
    )
}

fn time(at: Timestamp) -> String {
    format!("<time datetime=\"{0}\">{0}</time>", e(&at.to_rfc3339()))
}

/// The sign-in page. `problem`: why the last attempt failed. `certificate`: whether the
/// connection presented a client certificate (then signing in needs no token).
#[must_use]
pub fn login(problem: Option<&str>, certificate: bool) -> String {
    let mut body = String::from("<h1>Sign in to vigil</h1>");
    if let Some(problem) = problem {
        let _ = write!(
            body,
            "<p class=\"refused\" role=\"alert\">{}</p>",
            e(problem)
        );
    }
    body.push_str(
        "<form method=\"post\" action=\"/console/login\" class=\"stack\">\
         <label for=\"token\">Your admin token (personal or OIDC)</label>\
         <input id=\"token\" name=\"token\" type=\"password\" autocomplete=\"current-password\" required>\
         <button type=\"submit\">Sign in</button></form>",
    );
    if certificate {
        body.push_str(
            "<form method=\"post\" action=\"/console/login\"><input type=\"hidden\" name=\"certificate\" value=\"1\">\
             <button type=\"submit\">Sign in with your client certificate</button></form>",
        );
    }
    body.push_str(
        "<p>The console uses the admin API's identities and roles: a viewer reads, an approver \
         approves and rejects, an operator sets kill switches and silences.</p>",
    );
    page("Sign in", None, None, &body)
}

/// A page that says what became of an instruction, with a link back.
#[must_use]
pub fn answer(
    who: &Who,
    section: Section,
    accepted: Option<bool>,
    outcome: &str,
    back: &str,
) -> String {
    let (class, word) = match accepted {
        Some(true) => ("accepted", "Done"),
        Some(false) => ("refused", "Refused"),
        None => ("pending", "Recorded, not answered yet"),
    };
    let body = format!(
        "<h1>{word}</h1><p class=\"{class}\" role=\"status\" id=\"outcome\">{word}: {}</p>\
         <p><a href=\"{}\">Back</a></p>",
        e(outcome),
        e(back)
    );
    page(word, Some(section), Some(who), &body)
}

/// A page that says something went wrong (not found, refused, unavailable).
#[must_use]
pub fn problem(who: Option<&Who>, title: &str, detail: &str) -> String {
    let body = format!(
        "<h1>{}</h1><p class=\"refused\" role=\"alert\">{}</p><p><a href=\"/console/incidents\">Incidents</a></p>",
        e(title),
        e(detail)
    );
    page(title, None, who, &body)
}

/// The incident list with its filter form.
#[must_use]
pub fn incidents(
    who: &Who,
    list: &IncidentList,
    filter: &IncidentFilter,
    since_days: u32,
) -> String {
    let mut body = String::from("<h1>Incidents</h1>");
    body.push_str("<form method=\"get\" action=\"/console/incidents\" class=\"filters\" aria-label=\"Filter the incidents\">");
    body.push_str("<span class=\"field\"><label for=\"state\">State</label><select id=\"state\" name=\"state\"><option value=\"\">any</option>");
    for state in IncidentState::ALL {
        let selected = if filter.state == Some(state) {
            " selected"
        } else {
            ""
        };
        let _ = write!(
            body,
            "<option value=\"{}\"{selected}>{}</option>",
            state.as_str(),
            state.label()
        );
    }
    body.push_str("</select></span><span class=\"field\"><label for=\"hypothesis\">Hypothesis</label><select id=\"hypothesis\" name=\"hypothesis\"><option value=\"\">any</option>");
    for kind in &list.hypotheses {
        let selected = if filter.hypothesis.as_deref() == Some(kind) {
            " selected"
        } else {
            ""
        };
        let _ = write!(
            body,
            "<option value=\"{0}\"{selected}>{0}</option>",
            e(kind)
        );
    }
    let _ = write!(
        body,
        "</select></span><span class=\"field\"><label for=\"subject\">Subject</label>\
         <input id=\"subject\" name=\"subject\" value=\"{}\" placeholder=\"alias, key or team\"></span>\
         <span class=\"field\"><label for=\"days\">Opened in the last (days)</label>\
         <input id=\"days\" name=\"days\" type=\"number\" min=\"1\" max=\"3650\" value=\"{since_days}\"></span>\
         <button type=\"submit\">Filter</button></form>",
        e(filter.subject.as_deref().unwrap_or(""))
    );
    if list.n_unreadable > 0 {
        let _ = write!(
            body,
            "<p class=\"refused\" role=\"alert\">{} ledger entries could not be read and are not counted.</p>",
            list.n_unreadable
        );
    }
    let _ = write!(
        body,
        "<p id=\"count\">{} of {} incidents</p>",
        list.n_kept, list.n_incidents
    );
    if list.rows.is_empty() {
        body.push_str("<p id=\"no-incidents\">No incident matches.</p>");
        return page("Incidents", Some(Section::Incidents), Some(who), &body);
    }
    body.push_str(
        "<div class=\"scroll\"><table id=\"incidents\"><caption>Incidents, the latest opened first</caption><thead><tr>\
         <th scope=\"col\">incident</th><th scope=\"col\">state</th><th scope=\"col\">subject</th>\
         <th scope=\"col\">hypothesis</th><th scope=\"col\">runbook</th><th scope=\"col\">opened</th></tr></thead><tbody>",
    );
    for row in &list.rows {
        let _ = write!(
            body,
            "<tr><td class=\"nowrap\"><a href=\"/console/incident?id={}\">{}</a></td><td><span class=\"state {}\">{}</span></td>\
             <td>{}{}</td><td>{}</td><td>{}{}</td><td>{}</td></tr>",
            e(&url_encode(&row.id)),
            e(&row.id),
            row.state.as_str(),
            row.state.label(),
            e(&row.subject),
            row.team
                .as_deref()
                .map(|team| format!(" <small>team {}</small>", e(team)))
                .unwrap_or_default(),
            e(row.hypothesis.unwrap_or("not diagnosed")),
            e(row.runbook.as_deref().unwrap_or("none")),
            row.mode
                .map(|mode| format!(" <small>({})</small>", mode_word(mode)))
                .unwrap_or_default(),
            time(row.opened_at)
        );
    }
    body.push_str("</tbody></table></div>");
    page("Incidents", Some(Section::Incidents), Some(who), &body)
}

fn mode_word(mode: vigil_core::authz::Mode) -> &'static str {
    match mode {
        vigil_core::authz::Mode::Advisory => "advisory",
        vigil_core::authz::Mode::Autonomous => "autonomous",
    }
}

/// What a replay from the incident page found.
#[derive(Debug, Clone)]
pub struct ReplayShown {
    /// Whether every recorded command was reproduced.
    pub matches: bool,
    /// Commands compared.
    pub n_commands: u64,
    /// Decisions re-evaluated.
    pub n_decisions: u64,
    /// The differences, when any.
    pub mismatches: Vec<String>,
}

/// One incident: its state, why-packet, charts, decisions, actions, verification, pages,
/// people and timeline, and the replay button.
#[must_use]
pub fn incident(
    who: &Who,
    detail: &IncidentDetail,
    pending: &[PendingProposal],
    replay: Option<&ReplayShown>,
) -> String {
    let mut body = format!("<h1>Incident <code>{}</code></h1>", e(&detail.id));
    if let Some(row) = &detail.row {
        let _ = write!(
            body,
            "<dl class=\"facts\"><dt>State</dt><dd><span class=\"state {}\" id=\"state\">{}</span>{}</dd>\
             <dt>Subject</dt><dd>{} <small>{}</small></dd><dt>Detector</dt><dd>{}</dd>\
             <dt>Severity</dt><dd>{}</dd><dt>Runbook</dt><dd>{}</dd><dt>Opened</dt><dd>{}</dd></dl>",
            row.state.as_str(),
            row.state.label(),
            row.outcome
                .as_deref()
                .map(|outcome| format!(" ({})", e(outcome)))
                .unwrap_or_default(),
            e(&row.subject),
            e(&row.subject_key),
            e(if row.detector.is_empty() {
                "not recorded"
            } else {
                &row.detector
            }),
            e(row.severity),
            e(row.runbook.as_deref().unwrap_or("none")),
            time(row.opened_at),
        );
    }
    // The replay button, and what the last replay found.
    let _ = write!(
        body,
        "<form method=\"post\" action=\"/console/incident/replay?id={}\">{}\
         <button type=\"submit\" id=\"replay\">Replay this incident from the ledger</button></form>",
        e(&url_encode(&detail.id)),
        csrf_field(who)
    );
    if let Some(replay) = replay {
        if replay.matches {
            let _ = write!(
                body,
                "<p class=\"accepted\" role=\"status\" id=\"replay-result\">Replay matches: {} recorded commands reproduced, {} decisions re-evaluated with the recorded policies.</p>",
                replay.n_commands, replay.n_decisions
            );
        } else {
            let _ = write!(
                body,
                "<div class=\"refused\" role=\"alert\" id=\"replay-result\"><p>Replay does NOT match: {} differences.</p><ul>",
                replay.mismatches.len()
            );
            for mismatch in replay.mismatches.iter().take(50) {
                let _ = write!(body, "<li>{}</li>", e(mismatch));
            }
            body.push_str("</ul></div>");
        }
    }
    // Proposals of this incident that wait now.
    let waiting: Vec<&PendingProposal> = pending
        .iter()
        .filter(|proposal| proposal.incident_id == detail.id)
        .collect();
    if !waiting.is_empty() {
        body.push_str("<h2>Waiting for a person</h2>");
        for proposal in waiting {
            body.push_str(&proposal_card(who, proposal));
        }
    }
    if let Some(packet) = &detail.packet {
        body.push_str(
            "<h2>Why (the page's packet)</h2><section class=\"packet\" aria-label=\"Why packet\">",
        );
        if !packet.cause.is_empty() {
            let _ = write!(body, "<p><strong>Cause:</strong> {}</p>", e(&packet.cause));
        }
        let _ = write!(body, "<p>{}</p>", e(&packet.summary));
        list_section(&mut body, "Chain from symptom to cause", &packet.chain);
        list_section(&mut body, "Evidence", &packet.evidence);
        list_section(&mut body, "Against", &packet.against);
        list_section(&mut body, "What vigil did", &packet.actions);
        list_section(&mut body, "Left in place", &packet.left_in_place);
        let _ = write!(
            body,
            "<p><strong>Why a person:</strong> {}</p><p><strong>Do first:</strong> {}</p></section>",
            e(&packet.reason),
            e(&packet.ask)
        );
    } else if let Some(diagnosis) = &detail.diagnosis {
        let _ = write!(body, "<h2>Why</h2><p>{}</p>", e(&diagnosis.why));
    }
    if !detail.joined.is_empty() {
        body.push_str("<h2>Connected through the topology</h2><ul id=\"joined\">");
        for (subject, via) in &detail.joined {
            let _ = write!(body, "<li>{} — via {}</li>", e(subject), e(via));
        }
        body.push_str("</ul>");
    }
    if let Some(diagnosis) = &detail.diagnosis {
        body.push_str("<h2>Hypotheses</h2><ol class=\"hypotheses\">");
        for hypothesis in &diagnosis.hypotheses {
            let _ = write!(
                body,
                "<li><strong>{}</strong> ({:.0} % confidence)",
                e(hypothesis.kind.as_str()),
                hypothesis.confidence * 100.0
            );
            if !hypothesis.evidence.is_empty() {
                body.push_str("<ul>");
                for evidence in &hypothesis.evidence {
                    let _ = write!(body, "<li>{}</li>", e(evidence));
                }
                body.push_str("</ul>");
            }
            body.push_str("</li>");
        }
        body.push_str("</ol>");
    }
    body.push_str("<h2>Evidence</h2>");
    let charts: Vec<EvidenceChart> = detail
        .findings
        .iter()
        .filter_map(vigil_core::chart::evidence_chart)
        .collect();
    if charts.is_empty() {
        body.push_str("<p>No recorded readings to draw for this incident's findings.</p>");
    }
    for chart in &charts {
        body.push_str(&chart_svg(chart));
    }
    body.push_str("<h2>Policy decisions</h2>");
    if detail.decisions.is_empty() {
        body.push_str("<p>None.</p>");
    } else {
        body.push_str(
            "<div class=\"scroll\"><table id=\"decisions\"><thead><tr><th scope=\"col\">entry</th><th scope=\"col\">about</th>\
             <th scope=\"col\">effect</th><th scope=\"col\">policies</th><th scope=\"col\">policy set</th></tr></thead><tbody>",
        );
        for decision in &detail.decisions {
            let effect = match decision.decision.effect {
                vigil_core::authz::Effect::Allow => "allow",
                vigil_core::authz::Effect::Deny => "deny",
            };
            let _ = write!(
                body,
                "<tr><td><a href=\"/console/ledger/entry?seq={0}\">{0}</a></td><td>{1}</td><td><span class=\"effect {effect}\">{effect}</span></td>\
                 <td>{2}</td><td><code title=\"{3}\">{4}</code></td></tr>",
                decision.seq,
                if decision.about_a_person {
                    "a person's instruction"
                } else {
                    "a runbook step"
                },
                e(&if decision.decision.determining_policies.is_empty() {
                    "none applied (default deny)".to_owned()
                } else {
                    decision.decision.determining_policies.join(", ")
                }),
                e(&decision.decision.policy_set_hash),
                e(&decision
                    .decision
                    .policy_set_hash
                    .chars()
                    .take(16)
                    .collect::<String>()),
            );
        }
        body.push_str("</tbody></table></div>");
    }
    body.push_str("<h2>Actions</h2>");
    if detail.actions.is_empty() {
        body.push_str("<p>None.</p>");
    }
    for action in &detail.actions {
        let _ = write!(
            body,
            "<section class=\"action\" aria-label=\"Action {0}\"><h3>{1}</h3><p>",
            e(&action.action_id),
            e(&action.describe)
        );
        match &action.outcome {
            Some(outcome) => {
                let _ = write!(
                    body,
                    "<span class=\"effect {0}\">{0}</span> {1}{2}",
                    if outcome.succeeded {
                        "succeeded"
                    } else {
                        "failed"
                    },
                    outcome
                        .http_status
                        .map(|status| format!("HTTP {status}: "))
                        .unwrap_or_default(),
                    e(&outcome.detail)
                );
            }
            None => body.push_str("no answer recorded yet"),
        }
        body.push_str("</p>");
        if let Some(problem) = &action.exchanges_problem {
            let _ = write!(body, "<p class=\"refused\">{}</p>", e(problem));
        }
        for exchange in &action.exchanges {
            let _ = write!(
                body,
                "<details><summary>{}</summary>",
                e(&exchange.summary())
            );
            if let Some(request) = &exchange.request_body {
                let _ = write!(body, "<p>Request</p><pre>{}</pre>", e(request));
            }
            if let Some(response) = &exchange.response_body {
                let _ = write!(body, "<p>Response</p><pre>{}</pre>", e(response));
            }
            body.push_str("</details>");
        }
        body.push_str("</section>");
    }
    body.push_str("<h2>Verification</h2>");
    if detail.verifications.is_empty() {
        body.push_str("<p>None yet.</p>");
    }
    for verification in &detail.verifications {
        let _ = write!(
            body,
            "<p class=\"verification\"><span class=\"effect {0}\">{0}</span> {1} <small>(entry {2}, {3} readings)</small></p>",
            if verification.passed {
                "passed"
            } else {
                "failed"
            },
            e(&verification.detail),
            verification.seq,
            verification.observed.len()
        );
        if let Some(chart) = vigil_core::chart::observed_chart(
            "readings the verification observed",
            &verification.observed,
        ) {
            body.push_str(&chart_svg(&chart));
        }
    }
    body.push_str("<h2>Pages</h2>");
    if detail.pages.is_empty() {
        body.push_str("<p>No page was sent.</p>");
    }
    for sent in &detail.pages {
        let delivered = match sent.delivered {
            Some(true) => "delivered",
            Some(false) => "NOT delivered",
            None => "no answer yet",
        };
        let _ = write!(
            body,
            "<p>{} <small>({delivered}: {})</small></p>",
            e(&sent.title),
            e(&sent.detail)
        );
    }
    if !detail.people.is_empty() {
        body.push_str("<h2>People</h2><ul>");
        for person in &detail.people {
            let outcome = match &person.outcome {
                Some((true, outcome)) => format!("accepted: {}", e(outcome)),
                Some((false, outcome)) => format!("refused: {}", e(outcome)),
                None => "no answer recorded".to_owned(),
            };
            let _ = write!(
                body,
                "<li><strong>{}</strong>: {} (reason: {}) — {outcome}</li>",
                e(&person.by),
                e(&person.command),
                e(&person.reason)
            );
        }
        body.push_str("</ul>");
    }
    body.push_str("<h2>Timeline</h2><ol class=\"timeline\" id=\"timeline\">");
    for line in &detail.timeline {
        let _ = write!(
            body,
            "<li>{} <a href=\"/console/ledger/entry?seq={1}\">#{1}</a> {2}</li>",
            time(line.at),
            line.seq,
            e(&line.text)
        );
    }
    body.push_str("</ol>");
    if detail.n_left_out > 0 {
        let _ = write!(
            body,
            "<p>{} later entries are not shown; <code>vigil ledger show --incident {}</code> lists them all.</p>",
            detail.n_left_out,
            e(&detail.id)
        );
    }
    if detail.n_unreadable > 0 {
        let _ = write!(
            body,
            "<p class=\"refused\" role=\"alert\">{} entries of this incident could not be read.</p>",
            detail.n_unreadable
        );
    }
    let _ = write!(
        body,
        "<p>From a shell: <code>vigil ledger show --incident {0}</code> · <code>vigil replay --incident {0}</code></p>",
        e(&detail.id)
    );
    page(
        &format!("Incident {}", detail.id),
        Some(Section::Incidents),
        Some(who),
        &body,
    )
}

fn list_section(body: &mut String, title: &str, items: &[String]) {
    if items.is_empty() {
        return;
    }
    let _ = write!(body, "<p><strong>{}:</strong></p><ul>", e(title));
    for item in items {
        let _ = write!(body, "<li>{}</li>", e(item));
    }
    body.push_str("</ul>");
}

/// One proposal: exactly what would run, the hash that binds the approval, and the
/// approve and reject forms (only for people who hold the approver role).
fn proposal_card(who: &Who, proposal: &PendingProposal) -> String {
    let parameters = serde_json::to_string_pretty(&proposal.action).unwrap_or_default();
    let mut out = format!(
        "<section class=\"proposal\" aria-label=\"Proposal {0}\"><h3>{1}</h3><dl class=\"facts\">\
         <dt>Proposal</dt><dd><code>{0}</code></dd><dt>Incident</dt><dd><a href=\"/console/incident?id={2}\">{3}</a></dd>\
         <dt>Step</dt><dd>{4}</dd><dt>Requested by</dt><dd>{5}</dd><dt>Why a proposal</dt><dd>{6}</dd>\
         <dt>Binding hash</dt><dd><code class=\"hash\">{7}</code></dd></dl>\
         <details><summary>Exact action and parameters</summary><pre>{8}</pre></details>",
        e(&proposal.proposal_id),
        e(&proposal.action.describe()),
        e(&url_encode(&proposal.incident_id)),
        e(&proposal.incident_id),
        e(&proposal.step_id),
        e(&proposal.requested_by),
        e(&proposal.why),
        e(&proposal.action_hash),
        e(&parameters),
    );
    if who.has(Role::Approver) {
        let id = e(&proposal.proposal_id);
        let field = format!("reason-{}", e(&proposal.action_hash));
        let _ = write!(
            out,
            "<form method=\"post\" action=\"/console/proposals/decide\" class=\"decide\">{}\
             <input type=\"hidden\" name=\"proposal_id\" value=\"{id}\">\
             <input type=\"hidden\" name=\"action_hash\" value=\"{}\">\
             <label for=\"{field}\">Reason</label><input id=\"{field}\" name=\"reason\" required maxlength=\"1000\">\
             <button type=\"submit\" name=\"decision\" value=\"approve\">Approve</button> \
             <button type=\"submit\" name=\"decision\" value=\"reject\" class=\"secondary\">Reject</button></form>",
            csrf_field(who),
            e(&proposal.action_hash),
        );
    } else {
        out.push_str("<p class=\"note\">You do not hold the approver role: you can read this proposal, not decide it.</p>");
    }
    out.push_str("</section>");
    out
}

/// The proposals waiting for people.
#[must_use]
pub fn proposals(who: &Who, pending: &[PendingProposal]) -> String {
    let mut body = String::from("<h1>Proposals</h1>");
    if pending.is_empty() {
        body.push_str("<p id=\"no-proposals\">No proposal is waiting.</p>");
    }
    for proposal in pending {
        body.push_str(&proposal_card(who, proposal));
    }
    page("Proposals", Some(Section::Proposals), Some(who), &body)
}

/// The kill switches and silences in force; operators get the buttons.
#[must_use]
pub fn controls(
    who: &Who,
    controls: &Controls,
    runbooks: &[String],
    detectors: &[String],
) -> String {
    let operator = who.has(Role::Operator);
    let mut body = String::from("<h1>Controls</h1><h2>Kill switches</h2>");
    if controls.kill_switches.is_empty() {
        body.push_str(
            "<p id=\"no-kill-switches\">No kill switch is on: runbooks act within policy.</p>",
        );
    } else {
        body.push_str("<ul id=\"kill-switches\">");
        for switch in &controls.kill_switches {
            let _ = write!(
                body,
                "<li><strong>ON</strong> for {} — set by {} at {} (reason: {})",
                e(&switch.scope.describe()),
                e(&switch.by),
                time(switch.since),
                e(&switch.reason)
            );
            if operator {
                let scope = serde_json::to_string(&switch.scope).unwrap_or_default();
                let field = format!("unkill-reason-{}", e(&url_encode(&scope)));
                let _ = write!(
                    body,
                    "<form method=\"post\" action=\"/console/controls\">{}\
                     <input type=\"hidden\" name=\"op\" value=\"unkill\"><input type=\"hidden\" name=\"scope\" value=\"{}\">\
                     <label for=\"{field}\">Reason</label><input id=\"{field}\" name=\"reason\" required maxlength=\"1000\">\
                     <button type=\"submit\">Lift the kill switch</button></form>",
                    csrf_field(who),
                    e(&scope)
                );
            }
            body.push_str("</li>");
        }
        body.push_str("</ul>");
    }
    if operator {
        let _ = write!(
            body,
            "<form method=\"post\" action=\"/console/controls\" class=\"stack\" aria-label=\"Turn a kill switch on\">{}\
             <input type=\"hidden\" name=\"op\" value=\"kill\">\
             <label for=\"kill-scope\">Stop new actions of</label><select id=\"kill-scope\" name=\"runbook\">\
             <option value=\"\">every runbook (global)</option>",
            csrf_field(who)
        );
        for runbook in runbooks {
            let _ = write!(
                body,
                "<option value=\"{0}\">runbook {0}</option>",
                e(runbook)
            );
        }
        body.push_str(
            "</select><label for=\"kill-reason\">Reason</label><input id=\"kill-reason\" name=\"reason\" required maxlength=\"1000\">\
             <button type=\"submit\" class=\"danger\">Turn the kill switch on</button></form>",
        );
    } else {
        body.push_str("<p class=\"note\">Kill switches are set by operators.</p>");
    }
    body.push_str("<h2>Silences</h2>");
    if controls.silences.is_empty() {
        body.push_str("<p id=\"no-silences\">No silence is in force.</p>");
    } else {
        body.push_str(
            "<div class=\"scroll\"><table id=\"silences\"><thead><tr><th scope=\"col\">silence</th><th scope=\"col\">detector</th>\
             <th scope=\"col\">subject</th><th scope=\"col\">set by</th><th scope=\"col\">why</th><th scope=\"col\">until</th>",
        );
        if operator {
            body.push_str("<th scope=\"col\">end</th>");
        }
        body.push_str("</tr></thead><tbody>");
        for silence in &controls.silences {
            let _ = write!(
                body,
                "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td>",
                e(&silence.silence_id),
                e(silence.detector.as_deref().unwrap_or("any")),
                e(silence.subject.as_deref().unwrap_or("any")),
                e(&silence.by),
                e(&silence.reason),
                time(silence.expires_at)
            );
            if operator {
                let field = format!("unsilence-reason-{}", e(&url_encode(&silence.silence_id)));
                let _ = write!(
                    body,
                    "<td><form method=\"post\" action=\"/console/controls\">{}\
                     <input type=\"hidden\" name=\"op\" value=\"unsilence\"><input type=\"hidden\" name=\"silence_id\" value=\"{}\">\
                     <label for=\"{field}\">Reason</label><input id=\"{field}\" name=\"reason\" required maxlength=\"1000\">\
                     <button type=\"submit\">End it</button></form></td>",
                    csrf_field(who),
                    e(&silence.silence_id)
                );
            }
            body.push_str("</tr>");
        }
        body.push_str("</tbody></table></div>");
    }
    if operator {
        let _ = write!(
            body,
            "<form method=\"post\" action=\"/console/controls\" class=\"stack\" aria-label=\"Set a silence\">{}\
             <input type=\"hidden\" name=\"op\" value=\"silence\">\
             <label for=\"silence-detector\">Mute findings of</label><select id=\"silence-detector\" name=\"detector\">\
             <option value=\"\">any detector</option>",
            csrf_field(who)
        );
        for detector in detectors {
            let _ = write!(body, "<option value=\"{0}\">{0}</option>", e(detector));
        }
        body.push_str(
            "</select><label for=\"silence-subject\">About (a key hash, a model, a prompt; empty: any)</label>\
             <input id=\"silence-subject\" name=\"subject\" maxlength=\"200\">\
             <label for=\"silence-minutes\">For (minutes)</label><input id=\"silence-minutes\" name=\"minutes\" type=\"number\" min=\"1\" max=\"43200\" value=\"60\" required>\
             <label for=\"silence-reason\">Reason</label><input id=\"silence-reason\" name=\"reason\" required maxlength=\"1000\">\
             <button type=\"submit\">Set the silence</button></form>",
        );
    } else {
        body.push_str("<p class=\"note\">Silences are set by operators.</p>");
    }
    page("Controls", Some(Section::Controls), Some(who), &body)
}

/// The policy set and runbooks in force, from the session's recorded inputs.
#[derive(Debug, Clone, Default)]
pub struct InForce {
    /// The policy set's hash.
    pub policy_set_hash: String,
    /// When it was loaded (the session's start or the latest reload) and the entry.
    pub loaded: Option<(Timestamp, u64)>,
    /// Each policy file: name and SHA-256.
    pub policies: Vec<(String, String)>,
    /// Each runbook file: name and SHA-256.
    pub runbooks: Vec<(String, String)>,
    /// The policy texts in force, when the ledger has them (the what-if form starts from them).
    pub texts: Option<crate::bundle::PolicyTexts>,
}

/// The what-if form's values.
#[derive(Debug, Clone)]
pub struct WhatIfForm {
    /// The window, in days before now.
    pub days: u32,
    /// The policies given (`None`: start from those in force).
    pub policies: Option<String>,
}

impl Default for WhatIfForm {
    fn default() -> Self {
        WhatIfForm {
            days: 7,
            policies: None,
        }
    }
}

/// What a what-if replay found.
#[derive(Debug, Clone)]
pub struct WhatIfShown {
    /// The hash of the policies given.
    pub policy_set_hash: String,
    /// Where the window starts.
    pub from: Timestamp,
    /// Decisions decided again (the whole ledger's; the window's changes are listed).
    pub n_decisions: u64,
    /// The decisions in the window that would change.
    pub diffs: Vec<crate::journal::replay::DecisionDiff>,
    /// Why the policies did not load, each with its line.
    pub problems: Vec<String>,
    /// Differences between the replay and the ledger itself (should be none).
    pub mismatches: usize,
}

impl Default for WhatIfShown {
    fn default() -> Self {
        WhatIfShown {
            policy_set_hash: String::new(),
            from: Timestamp(0),
            n_decisions: 0,
            diffs: Vec::new(),
            problems: Vec::new(),
            mismatches: 0,
        }
    }
}

/// The policies and runbooks page, with the what-if form and what it found.
#[must_use]
pub fn policies(
    who: &Who,
    in_force: &InForce,
    form: &WhatIfForm,
    result: Option<&WhatIfShown>,
) -> String {
    let mut body = format!(
        "<h1>Policies and runbooks in force</h1><dl class=\"facts\"><dt>Policy set hash</dt><dd><code class=\"hash\" id=\"policy-set-hash\">{}</code></dd>",
        e(&in_force.policy_set_hash)
    );
    if let Some((at, seq)) = in_force.loaded {
        let _ = write!(
            body,
            "<dt>Loaded</dt><dd>{} (<a href=\"/console/ledger/entry?seq={seq}\">entry {seq}</a>)</dd>",
            time(at)
        );
    }
    body.push_str("</dl>");
    for (title, files) in [
        ("Policies", &in_force.policies),
        ("Runbooks", &in_force.runbooks),
    ] {
        let _ = write!(
            body,
            "<h2>{title}</h2><div class=\"scroll\"><table><thead><tr><th scope=\"col\">file</th><th scope=\"col\">SHA-256</th></tr></thead><tbody>"
        );
        for (name, hash) in files {
            let _ = write!(
                body,
                "<tr><td>{}</td><td><code class=\"hash\">{}</code></td></tr>",
                e(name),
                e(hash)
            );
        }
        body.push_str("</tbody></table></div>");
    }
    let prefilled = form.policies.clone().unwrap_or_else(|| {
        in_force
            .texts
            .as_ref()
            .map(|texts| {
                texts
                    .policies
                    .iter()
                    .map(|file| format!("// {}\n{}", file.name, file.text))
                    .collect::<Vec<_>>()
                    .join("\n")
            })
            .unwrap_or_default()
    });
    let _ = write!(
        body,
        "<h2 id=\"what-if\">What if</h2><p>Edit the policies and replay the recorded decisions against them: every decision of the window that would change is listed. \
         The schema in force is used; nothing is changed. The same from a shell: <code>vigil replay --db LEDGER --all --policies DIR</code>.</p>\
         <form method=\"post\" action=\"/console/policies/what-if#what-if\" class=\"stack wide\">{}\
         <label for=\"what-if-policies\">Policies (Cedar)</label><textarea id=\"what-if-policies\" name=\"policies\" rows=\"16\" spellcheck=\"false\">{}</textarea>\
         <label for=\"what-if-days\">Window (days before now)</label><input id=\"what-if-days\" name=\"days\" type=\"number\" min=\"1\" max=\"3650\" value=\"{}\">\
         <button type=\"submit\">Replay with these policies</button></form>",
        csrf_field(who),
        e(&prefilled),
        form.days
    );
    if let Some(result) = result {
        if !result.problems.is_empty() {
            body.push_str("<div class=\"refused\" role=\"alert\" id=\"what-if-result\"><p>These policies do not load:</p><ul>");
            for problem in &result.problems {
                let _ = write!(body, "<li>{}</li>", e(problem));
            }
            body.push_str("</ul></div>");
        } else {
            let _ = write!(
                body,
                "<div id=\"what-if-result\" role=\"status\"><p><strong>{}</strong> of the decisions since {} would change under policy set <code class=\"hash\">{}</code> ({} decisions decided again).</p>",
                result.diffs.len(),
                time(result.from),
                e(&result.policy_set_hash),
                result.n_decisions
            );
            if result.mismatches > 0 {
                let _ = write!(
                    body,
                    "<p class=\"refused\">The replay also differs from the ledger in {} places: run <code>vigil replay --all</code>.</p>",
                    result.mismatches
                );
            }
            if !result.diffs.is_empty() {
                body.push_str("<div class=\"scroll\"><table><thead><tr><th scope=\"col\">entry</th><th scope=\"col\">incident</th><th scope=\"col\">request</th>\
                    <th scope=\"col\">recorded</th><th scope=\"col\">would be</th></tr></thead><tbody>");
                for diff in result.diffs.iter().take(500) {
                    let _ = write!(
                        body,
                        "<tr><td><a href=\"/console/ledger/entry?seq={0}\">{0}</a></td><td><a href=\"/console/incident?id={1}\">{2}</a></td><td>{3}</td><td>{4}</td><td>{5}</td></tr>",
                        diff.seq,
                        e(&url_encode(&diff.incident_id)),
                        e(&diff.incident_id),
                        e(&diff.request),
                        e(&decision_words(&diff.recorded)),
                        e(&decision_words(&diff.alternative)),
                    );
                }
                body.push_str("</tbody></table></div>");
            }
            body.push_str("</div>");
        }
    }
    page("Policies", Some(Section::Policies), Some(who), &body)
}

fn decision_words(decision: &vigil_core::authz::AuthzDecision) -> String {
    let effect = match decision.effect {
        vigil_core::authz::Effect::Allow => "allow",
        vigil_core::authz::Effect::Deny => "deny",
    };
    if decision.determining_policies.is_empty() {
        format!("{effect} (no policy applied)")
    } else {
        format!("{effect} ({})", decision.determining_policies.join(", "))
    }
}

/// The ledger's state.
#[derive(Debug, Clone, Default)]
pub struct LedgerShown {
    /// Entries.
    pub n_entries: u64,
    /// The tree head (hex), when the stored leaves allow one.
    pub tree_head: Option<String>,
    /// The chain hash of the last entry (hex).
    pub head_chain_hash: Option<String>,
    /// The latest signed checkpoints: tree size, root (hex), signed at.
    pub checkpoints: Vec<(u64, String, Timestamp)>,
    /// The latest entries: seq, time, kind, incident.
    pub latest: Vec<(u64, Timestamp, String, Option<String>)>,
}

/// What verifying the ledger from the console found.
#[derive(Debug, Clone)]
pub struct Verified {
    /// Entries found intact.
    pub n_entries: u64,
    /// The tree head over them (hex).
    pub tree_head: String,
    /// The first problem, if any.
    pub problem: Option<String>,
}

/// The ledger page, with what a verification found.
#[must_use]
pub fn ledger(who: &Who, shown: &LedgerShown, verified: Option<&Verified>) -> String {
    let mut body = format!(
        "<h1>Ledger</h1><dl class=\"facts\"><dt>Entries</dt><dd id=\"n-entries\">{}</dd>\
         <dt>Tree head (RFC 6962)</dt><dd><code class=\"hash\">{}</code></dd>\
         <dt>Last chain hash</dt><dd><code class=\"hash\">{}</code></dd></dl>\
         <p>Verify the whole log with <code>vigil ledger verify</code>; every entry below has its inclusion proof in this tree.</p>",
        shown.n_entries,
        e(shown
            .tree_head
            .as_deref()
            .unwrap_or("none: the stored leaves have a gap (run vigil ledger verify)")),
        e(shown.head_chain_hash.as_deref().unwrap_or("none")),
    );
    let _ = write!(
        body,
        "<form method=\"post\" action=\"/console/ledger/verify\">{}<button type=\"submit\" id=\"verify\">Verify the whole ledger now</button></form>\
         <p><a href=\"/console/ledger/export\" download>Download the export</a> (every entry with its inclusion proof, and the tree head; check it offline with <code>vigil ledger verify --export FILE</code>).</p>",
        csrf_field(who)
    );
    match verified {
        Some(Verified {
            n_entries,
            tree_head,
            problem: None,
        }) => {
            let _ = write!(
                body,
                "<p class=\"accepted\" role=\"status\" id=\"verified\">Verified: all {n_entries} entries intact; every hash, link and blob recomputed; tree head <code class=\"hash\">{}</code>.</p>",
                e(tree_head)
            );
        }
        Some(Verified {
            n_entries,
            problem: Some(problem),
            ..
        }) => {
            let _ = write!(
                body,
                "<p class=\"refused\" role=\"alert\" id=\"verified\">NOT intact: {} ({n_entries} entries intact before it).</p>",
                e(problem)
            );
        }
        None => {}
    }
    body.push_str("<h2>Signed checkpoints</h2>");
    if shown.checkpoints.is_empty() {
        body.push_str("<p>None stored (checkpoints are off, or none was signed yet).</p>");
    } else {
        body.push_str("<ul>");
        for (size, root, at) in &shown.checkpoints {
            let _ = write!(
                body,
                "<li>tree size {size}, root <code class=\"hash\">{}</code>, signed {}</li>",
                e(root),
                time(*at)
            );
        }
        body.push_str("</ul>");
    }
    body.push_str(
        "<h2>Latest entries</h2><form method=\"get\" action=\"/console/ledger/entry\" class=\"filters\">\
         <span class=\"field\"><label for=\"seq\">Entry</label><input id=\"seq\" name=\"seq\" type=\"number\" min=\"0\" required></span>\
         <button type=\"submit\">Show</button></form><div class=\"scroll\"><table><thead><tr><th scope=\"col\">entry</th>\
         <th scope=\"col\">recorded</th><th scope=\"col\">kind</th><th scope=\"col\">incident</th></tr></thead><tbody>",
    );
    for (seq, at, kind, incident) in &shown.latest {
        let _ = write!(
            body,
            "<tr><td><a href=\"/console/ledger/entry?seq={seq}\">{seq}</a></td><td>{}</td><td>{}</td><td>{}</td></tr>",
            time(*at),
            e(kind),
            incident
                .as_deref()
                .map(|id| format!(
                    "<a href=\"/console/incident?id={}\">{}</a>",
                    e(&url_encode(id)),
                    e(id)
                ))
                .unwrap_or_default()
        );
    }
    body.push_str("</tbody></table></div>");
    page("Ledger", Some(Section::Ledger), Some(who), &body)
}

/// One entry with its payload and the link to its inclusion proof.
#[must_use]
pub fn entry(who: &Who, entry: &vigil_ledger::Entry, tree_size: u64) -> String {
    let pretty = serde_json::from_str::<serde_json::Value>(&entry.payload)
        .and_then(|value| serde_json::to_string_pretty(&value))
        .unwrap_or_else(|_| entry.payload.clone());
    let body = format!(
        "<h1>Entry {0}</h1><dl class=\"facts\"><dt>Recorded</dt><dd>{1}</dd><dt>Kind</dt><dd>{2}</dd>\
         <dt>Incident</dt><dd>{3}</dd><dt>Leaf hash</dt><dd><code class=\"hash\">{4}</code></dd>\
         <dt>Chain hash</dt><dd><code class=\"hash\">{5}</code></dd></dl>\
         <p><a href=\"/console/ledger/proof?seq={0}&amp;tree_size={6}\" download=\"vigil-entry-{0}-proof.json\">Download its inclusion proof in the tree of {6} entries</a></p>\
         <pre class=\"payload\">{7}</pre>",
        entry.seq,
        time(Timestamp(entry.at_ms)),
        e(entry.kind.as_str()),
        entry
            .incident_id
            .as_deref()
            .map(|id| format!(
                "<a href=\"/console/incident?id={}\">{}</a>",
                e(&url_encode(id)),
                e(id)
            ))
            .unwrap_or_else(|| "none".to_owned()),
        hex::encode(entry.leaf_hash),
        hex::encode(entry.chain_hash),
        tree_size,
        e(&pretty),
    );
    page(
        &format!("Entry {}", entry.seq),
        Some(Section::Ledger),
        Some(who),
        &body,
    )
}

/// Trust per runbook: verified outcomes and promotion.
#[must_use]
pub fn trust(who: &Who, report: &crate::journal::trust::TrustReport) -> String {
    let mut body = String::from("<h1>Trust</h1><h2>Verified outcomes per runbook and action</h2>");
    if report.tallies.is_empty() {
        body.push_str("<p>No runbook has acted yet.</p>");
    } else {
        body.push_str("<div class=\"scroll\"><table><thead><tr><th scope=\"col\">runbook</th><th scope=\"col\">action</th>\
             <th scope=\"col\">verified</th><th scope=\"col\">failed</th><th scope=\"col\">trust</th></tr></thead><tbody>");
        for tally in &report.tallies {
            let _ = write!(
                body,
                "<tr><td>{}</td><td>{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td><td class=\"n\">{} %</td></tr>",
                e(&tally.runbook),
                e(tally.action.cedar_id()),
                tally.verified,
                tally.failed,
                vigil_core::authz::TrustTally::score_pct(tally.verified, tally.failed)
            );
        }
        body.push_str("</tbody></table></div>");
    }
    let _ = write!(
        body,
        "<h2>Advisory runbooks and promotion</h2><p>A runbook earns promotion to autonomous with at least {} proposals, {} % of them approved, and no failed verification. A person still decides.</p>",
        crate::journal::trust::PROMOTION_MIN_PROPOSALS,
        crate::journal::trust::PROMOTION_MIN_APPROVED_PCT
    );
    if report.proposals.is_empty() {
        body.push_str("<p>No runbook has proposed anything yet.</p>");
    } else {
        body.push_str("<div class=\"scroll\"><table><thead><tr><th scope=\"col\">runbook</th><th scope=\"col\">proposed</th>\
             <th scope=\"col\">approved</th><th scope=\"col\">rejected</th><th scope=\"col\">failed verifications</th><th scope=\"col\">promotion</th></tr></thead><tbody>");
        for (runbook, stats) in &report.proposals {
            let _ = write!(
                body,
                "<tr><td>{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td><td>{}</td></tr>",
                e(runbook),
                stats.proposed,
                stats.approved,
                stats.rejected,
                stats.failed_verifications,
                if stats.earned_promotion() {
                    "earned"
                } else {
                    "not yet"
                }
            );
        }
        body.push_str("</tbody></table></div>");
    }
    page("Trust", Some(Section::Trust), Some(who), &body)
}

/// The report form's values.
#[derive(Debug, Clone, Copy)]
pub struct ReportForm {
    /// The period, in days before the ledger's latest entry.
    pub days: u32,
    /// Minutes a person would have spent per incident.
    pub minutes_per_incident: f64,
    /// Minutes per decision.
    pub minutes_per_decision: f64,
}

/// The report page: the period and assumptions as a form, then the report.
#[must_use]
pub fn report(
    who: &Who,
    form: ReportForm,
    read: Option<&crate::journal::report::ReadReport>,
    problem: Option<&str>,
) -> String {
    let mut body = format!(
        "<h1>Report</h1><form method=\"get\" action=\"/console/report\" class=\"filters\" aria-label=\"Period and assumptions\">\
         <span class=\"field\"><label for=\"days\">Days</label><input id=\"days\" name=\"days\" type=\"number\" min=\"1\" max=\"3650\" value=\"{}\"></span>\
         <span class=\"field\"><label for=\"mpi\">Minutes a person spends per incident</label><input id=\"mpi\" name=\"minutes_per_incident\" type=\"number\" min=\"0\" max=\"1440\" step=\"any\" value=\"{}\"></span>\
         <span class=\"field\"><label for=\"mpd\">Minutes per approval or rejection</label><input id=\"mpd\" name=\"minutes_per_decision\" type=\"number\" min=\"0\" max=\"1440\" step=\"any\" value=\"{}\"></span>\
         <button type=\"submit\">Update</button></form><p>The same report from a shell: <code>vigil report --db LEDGER --since {}d</code>.</p>",
        form.days, form.minutes_per_incident, form.minutes_per_decision, form.days
    );
    if let Some(problem) = problem {
        let _ = write!(
            body,
            "<p class=\"refused\" role=\"alert\">{}</p>",
            e(problem)
        );
    }
    if let Some(read) = read {
        body.push_str("<div id=\"report\">");
        body.push_str(&super::report::body(read));
        body.push_str("</div>");
    }
    page("Report", Some(Section::Report), Some(who), &body)
}

/// A chart as SVG: the readings as a line with a dot per reading, each level as a dashed
/// line labelled in words (never colour alone), axes with the range, and a title and a
/// description for screen readers.
#[must_use]
pub fn chart_svg(chart: &EvidenceChart) -> String {
    const W: f64 = 640.0;
    const H: f64 = 220.0;
    const LEFT: f64 = 64.0;
    const RIGHT: f64 = 120.0;
    const TOP: f64 = 12.0;
    const BOTTOM: f64 = 28.0;
    let points: Vec<(i64, f64)> = chart
        .points
        .iter()
        .filter(|point| point.value.is_finite())
        .map(|point| (point.at.0, point.value))
        .collect();
    let (Some(first), Some(last)) = (points.first(), points.last()) else {
        return String::new();
    };
    let levels: Vec<(&str, f64)> = chart
        .levels
        .iter()
        .filter(|level| level.value.is_finite())
        .map(|level| (level.name, level.value))
        .collect();
    let values = points.iter().map(|p| p.1).chain(levels.iter().map(|l| l.1));
    let (mut low, mut high) = values.fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), v| {
        (lo.min(v), hi.max(v))
    });
    low = low.min(0.0);
    if high <= low {
        high = low + 1.0;
    }
    let span_ms = (last.0 - first.0).max(1) as f64;
    let x = |at: i64| LEFT + (W - LEFT - RIGHT) * ((at - first.0) as f64 / span_ms);
    let y = |value: f64| TOP + (H - TOP - BOTTOM) * (1.0 - (value - low) / (high - low));
    let mut path = String::new();
    for (i, (at, value)) in points.iter().enumerate() {
        let _ = write!(
            path,
            "{}{:.1},{:.1}",
            if i == 0 { "M" } else { " L" },
            x(*at),
            y(*value)
        );
    }
    let description = format!(
        "{} readings from {} to {}, between {} and {} {}",
        points.len(),
        Timestamp(first.0).to_rfc3339(),
        Timestamp(last.0).to_rfc3339(),
        short_number(points.iter().map(|p| p.1).fold(f64::INFINITY, f64::min)),
        short_number(points.iter().map(|p| p.1).fold(f64::NEG_INFINITY, f64::max)),
        chart.unit
    );
    let axis_y = H - BOTTOM;
    let axis_x = W - RIGHT;
    let label_x = LEFT - 4.0;
    let top_label_y = TOP + 8.0;
    let title = e(&chart.title);
    let desc = e(&description);
    let high_label = e(&short_number(high));
    let low_label = e(&short_number(low));
    let mut out = format!(
        "<figure class=\"chart\"><svg role=\"img\" aria-label=\"{title}\" viewBox=\"0 0 {W} {H}\" \
         width=\"{W}\" height=\"{H}\" xmlns=\"http://www.w3.org/2000/svg\"><title>{title}</title><desc>{desc}</desc>\
         <line class=\"axis\" x1=\"{LEFT}\" y1=\"{TOP}\" x2=\"{LEFT}\" y2=\"{axis_y:.1}\" stroke=\"currentColor\"/>\
         <line class=\"axis\" x1=\"{LEFT}\" y1=\"{axis_y:.1}\" x2=\"{axis_x:.1}\" y2=\"{axis_y:.1}\" stroke=\"currentColor\"/>\
         <text x=\"{label_x:.1}\" y=\"{top_label_y:.1}\" text-anchor=\"end\" font-size=\"11\" fill=\"currentColor\">{high_label}</text>\
         <text x=\"{label_x:.1}\" y=\"{axis_y:.1}\" text-anchor=\"end\" font-size=\"11\" fill=\"currentColor\">{low_label}</text>"
    );
    // Each level's label sits by its line, pushed apart when levels are close (12 px).
    let mut label_ys: Vec<(usize, f64)> = levels
        .iter()
        .enumerate()
        .map(|(i, (_, value))| (i, y(*value) + 4.0))
        .collect();
    label_ys.sort_by(|a, b| a.1.total_cmp(&b.1));
    let mut previous = f64::NEG_INFINITY;
    for (_, label_y) in &mut label_ys {
        *label_y = label_y.max(previous + 12.0);
        previous = *label_y;
    }
    label_ys.sort_by_key(|(i, _)| *i);
    for ((name, value), (_, label_y)) in levels.iter().zip(&label_ys) {
        let level_y = y(*value);
        let _ = write!(
            out,
            "<g class=\"level\"><line x1=\"{LEFT}\" y1=\"{level_y:.1}\" x2=\"{:.1}\" y2=\"{level_y:.1}\" stroke=\"currentColor\" \
             stroke-dasharray=\"6 4\" stroke-opacity=\"0.6\"/><text x=\"{:.1}\" y=\"{label_y:.1}\" font-size=\"11\" fill=\"currentColor\">{} {}</text></g>",
            W - RIGHT,
            W - RIGHT + 4.0,
            e(name),
            e(&short_number(*value))
        );
    }
    let _ = write!(
        out,
        "<path class=\"series\" d=\"{path}\" fill=\"none\" stroke=\"#1f5fbf\" stroke-width=\"2\"/>"
    );
    for (at, value) in &points {
        let _ = write!(
            out,
            "<circle cx=\"{:.1}\" cy=\"{:.1}\" r=\"2.5\" fill=\"#1f5fbf\"><title>{} at {}</title></circle>",
            x(*at),
            y(*value),
            e(&short_number(*value)),
            e(&Timestamp(*at).to_rfc3339())
        );
    }
    let _ = write!(
        out,
        "</svg><figcaption>{} — {} ({})</figcaption></figure>",
        e(&chart.title),
        e(&description),
        e(&chart.unit)
    );
    out
}

fn short_number(value: f64) -> String {
    vigil_core::human::number(value)
}

/// `text` percent-encoded for a URL's query value (everything but unreserved characters).
#[must_use]
pub fn url_encode(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'_' | b'.' | b'~') {
            out.push(char::from(byte));
        } else {
            let _ = write!(out, "%{byte:02X}");
        }
    }
    out
}

#[cfg(test)]
#[path = "console/tests.rs"]
mod tests;
