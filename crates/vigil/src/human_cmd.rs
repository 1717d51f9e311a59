//! `vigil proposals`, `approve`, `reject`, `kill`, `unkill`, `silence`, `unsilence`: a
//! person's instructions to a running daemon through its admin API (`daemon/admin.rs`).
//!
//! The admin token comes from an environment variable (`VIGIL_ADMIN_TOKEN` unless
//! `--token-env` names another); the person's name from `--as`, else `VIGIL_USER`, else
//! `USER`. `approve` first fetches the proposal, prints it, and sends back the hash of what it
//! printed, so an approval is bound to exactly the step and parameters the person saw.

use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, bail};
use reqwest::StatusCode;
use vigil_core::Timestamp;
use vigil_core::authz::EntityType;
use vigil_core::engine::{HumanCommand, KillScope};

use crate::daemon::admin::{HumanAnswer, HumanRequest, ProposalView};

/// Where the daemon is and who is asking.
#[derive(Debug, Clone)]
pub struct AdminArgs {
    /// The daemon's base URL, for example `http://127.0.0.1:9464`.
    pub url: String,
    /// The environment variable holding the admin token.
    pub token_env: String,
    /// The person's name, when given on the command line.
    pub as_user: Option<String>,
    /// Why.
    pub reason: String,
}

impl AdminArgs {
    fn token(&self) -> anyhow::Result<String> {
        match std::env::var(&self.token_env) {
            Ok(token) if !token.trim().is_empty() => Ok(token.trim().to_owned()),
            _ => bail!(
                "set the admin token in the environment variable `{}` (the daemon's `admin.token`)",
                self.token_env
            ),
        }
    }

    fn user(&self) -> anyhow::Result<String> {
        self.as_user
            .clone()
            .or_else(|| std::env::var("VIGIL_USER").ok())
            .or_else(|| std::env::var("USER").ok())
            .filter(|name| !name.trim().is_empty())
            .context("say who you are with `--as NAME` (or set VIGIL_USER)")
    }

    fn endpoint(&self, path: &str) -> String {
        format!("{}{path}", self.url.trim_end_matches('/'))
    }
}

fn client() -> anyhow::Result<reqwest::Client> {
    reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()
        .context("building the HTTP client")
}

async fn fetch_proposals(args: &AdminArgs) -> anyhow::Result<Vec<ProposalView>> {
    let response = client()?
        .get(args.endpoint("/v1/admin/proposals"))
        .bearer_auth(args.token()?)
        .send()
        .await
        .with_context(|| format!("asking {} for its proposals", args.url))?;
    let status = response.status();
    let body = response.text().await.unwrap_or_default();
    if status != StatusCode::OK {
        bail!("{} answered {status}: {}", args.url, body.trim());
    }
    serde_json::from_str(&body).context("reading the proposals")
}

/// `vigil proposals`: lists what waits for a person.
pub async fn list(args: &AdminArgs) -> anyhow::Result<ExitCode> {
    let proposals = fetch_proposals(args).await?;
    if proposals.is_empty() {
        println!("no proposals are waiting");
    }
    for proposal in &proposals {
        print_proposal(proposal);
    }
    Ok(ExitCode::SUCCESS)
}

fn print_proposal(proposal: &ProposalView) {
    println!("{}", proposal.proposal_id);
    println!("  incident:     {}", proposal.incident_id);
    println!(
        "  step:         {}: {}",
        proposal.step_id, proposal.describe
    );
    println!("  why proposed: {}", proposal.why);
    println!("  requested by: {}", proposal.requested_by);
    println!("  hash:         {}", proposal.action_hash);
}

/// `vigil approve ID`: shows the proposal and approves exactly what it showed.
pub async fn approve(args: &AdminArgs, proposal_id: &str) -> anyhow::Result<ExitCode> {
    let proposals = fetch_proposals(args).await?;
    let Some(proposal) = proposals
        .iter()
        .find(|proposal| proposal.proposal_id == proposal_id)
    else {
        bail!("no proposal `{proposal_id}` is waiting (see `vigil proposals`)");
    };
    print_proposal(proposal);
    send(
        args,
        HumanCommand::Approve {
            proposal_id: proposal_id.to_owned(),
            action_hash: proposal.action_hash.clone(),
        },
    )
    .await
}

/// `vigil reject ID`.
pub async fn reject(args: &AdminArgs, proposal_id: &str) -> anyhow::Result<ExitCode> {
    if args.reason.trim().is_empty() {
        bail!("say why with `--reason`; the on-call engineer who gets the incident reads it");
    }
    send(
        args,
        HumanCommand::Reject {
            proposal_id: proposal_id.to_owned(),
        },
    )
    .await
}

/// Which kill switch: `--runbook ID`, `--target TYPE:ID`, or neither for all.
pub fn kill_scope(runbook: Option<String>, target: Option<String>) -> anyhow::Result<KillScope> {
    match (runbook, target) {
        (None, None) => Ok(KillScope::Global),
        (Some(id), None) => Ok(KillScope::Runbook { id }),
        (None, Some(target)) => {
            let (kind, id) = target
                .split_once(':')
                .context("`--target` is TYPE:ID, for example ApiKey:4f2a... or Prompt:answer")?;
            let entity_type = EntityType::ALL
                .into_iter()
                .find(|entity_type| entity_type.cedar_name().eq_ignore_ascii_case(kind))
                .with_context(|| {
                    let names: Vec<&str> = EntityType::ALL.iter().map(|t| t.cedar_name()).collect();
                    format!("`{kind}` is not one of {}", names.join(", "))
                })?;
            Ok(KillScope::Target {
                entity_type,
                id: id.to_owned(),
            })
        }
        (Some(_), Some(_)) => bail!("give `--runbook` or `--target`, not both"),
    }
}

/// `vigil kill` and `vigil unkill`.
pub async fn kill(args: &AdminArgs, scope: KillScope, on: bool) -> anyhow::Result<ExitCode> {
    let command = if on {
        HumanCommand::Kill { scope }
    } else {
        HumanCommand::Unkill { scope }
    };
    send(args, command).await
}

/// `vigil silence`: mutes matching findings for `duration`.
pub async fn silence(
    args: &AdminArgs,
    silence_id: String,
    detector: Option<String>,
    subject: Option<String>,
    duration: Duration,
) -> anyhow::Result<ExitCode> {
    if args.reason.trim().is_empty() {
        bail!("a silence needs `--reason`");
    }
    let now_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .context("the clock is before 1970")?
        .as_millis();
    let until =
        i64::try_from(now_ms + duration.as_millis()).context("the silence ends too late")?;
    send(
        args,
        HumanCommand::Silence {
            silence_id,
            detector,
            subject,
            expires_at: Timestamp(until),
        },
    )
    .await
}

/// `vigil unsilence ID`.
pub async fn unsilence(args: &AdminArgs, silence_id: String) -> anyhow::Result<ExitCode> {
    send(args, HumanCommand::Unsilence { silence_id }).await
}

/// Parses `90s`, `30m`, `2h` or `1d`.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let (number, unit) = text.split_at(text.len().saturating_sub(1));
    let factor = match unit {
        "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86_400,
        _ => {
            return Err(format!(
                "`{text}` needs a unit: s, m, h or d (for example 2h)"
            ));
        }
    };
    let number: u64 = number
        .parse()
        .map_err(|_| format!("`{text}` is not a whole number followed by s, m, h or d"))?;
    if number == 0 {
        return Err("must be longer than zero".to_owned());
    }
    Ok(Duration::from_secs(number.saturating_mul(factor)))
}

async fn send(args: &AdminArgs, command: HumanCommand) -> anyhow::Result<ExitCode> {
    let request = HumanRequest {
        by: args.user()?,
        reason: args.reason.clone(),
        command,
    };
    let response = client()?
        .post(args.endpoint("/v1/admin/human"))
        .bearer_auth(args.token()?)
        .json(&request)
        .send()
        .await
        .with_context(|| format!("sending the instruction to {}", args.url))?;
    let status = response.status();
    let body = response.text().await.unwrap_or_default();
    let answer: Option<HumanAnswer> = serde_json::from_str(&body).ok();
    match (status, answer) {
        (StatusCode::OK, Some(answer)) => {
            println!("accepted: {}", answer.outcome);
            Ok(ExitCode::SUCCESS)
        }
        (StatusCode::CONFLICT, Some(answer)) => {
            eprintln!("refused: {}", answer.outcome);
            Ok(ExitCode::FAILURE)
        }
        (StatusCode::ACCEPTED, Some(answer)) => {
            println!("{}", answer.outcome);
            Ok(ExitCode::SUCCESS)
        }
        _ => bail!("{} answered {status}: {}", args.url, body.trim()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_and_scopes_parse_with_clear_errors() {
        assert_eq!(parse_duration("2h"), Ok(Duration::from_secs(7200)));
        assert_eq!(parse_duration("90s"), Ok(Duration::from_secs(90)));
        assert!(parse_duration("2").unwrap_err().contains("needs a unit"));
        assert!(parse_duration("xh").unwrap_err().contains("whole number"));
        assert_eq!(
            kill_scope(None, Some("prompt:answer".to_owned())).unwrap(),
            KillScope::Target {
                entity_type: EntityType::Prompt,
                id: "answer".to_owned()
            }
        );
        assert!(
            kill_scope(None, Some("Widget:x".to_owned()))
                .unwrap_err()
                .to_string()
                .contains("`Widget` is not one of Runbook, ApiKey")
        );
        assert_eq!(kill_scope(None, None).unwrap(), KillScope::Global);
    }
}
