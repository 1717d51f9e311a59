//! `vigil whoami`, `proposals`, `approve`, `reject`, `kill`, `unkill`, `silence`,
//! `unsilence`: a person's instructions to a running daemon through its admin API
//! (`daemon/admin.rs`).
//!
//! The person authenticates as themselves: with their personal or OIDC token, from the
//! environment variable `--token-env` names (`VIGIL_ADMIN_TOKEN` by default) or the file
//! `--token-file` names, or with a TLS client certificate (`--cert` and `--key`, and `--ca`
//! for the daemon's own certificate). The daemon records the name its credential proves;
//! `--as NAME` only asserts it (the daemon refuses the instruction when the credential
//! belongs to someone else). `approve` first fetches the proposal, prints it, and sends back
//! the hash of what it printed, so an approval is bound to exactly the step and parameters
//! the person saw.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, bail};
use reqwest::StatusCode;
use vigil_core::Timestamp;
use vigil_core::authz::EntityType;
use vigil_core::people::{HumanCommand, KillScope};

use crate::daemon::admin::{HumanAnswer, ProposalView, WhoAmI};
use crate::duration::parse_duration;
use crate::logsafe::Escaped;

/// Where the daemon is and how to authenticate to it.
#[derive(Debug, Clone)]
pub struct AdminArgs {
    /// The daemon's base URL, for example `http://127.0.0.1:9464`.
    pub url: String,
    /// The environment variable holding the person's token.
    pub token_env: String,
    /// A file holding the person's token (wins over the environment).
    pub token_file: Option<PathBuf>,
    /// A client certificate (PEM) and its key, for mutual TLS.
    pub cert: Option<(PathBuf, PathBuf)>,
    /// A CA (PEM) to trust for the daemon's certificate.
    pub ca: Option<PathBuf>,
    /// The name the person asserts; the daemon checks it against the credential.
    pub as_user: Option<String>,
    /// Why.
    pub reason: String,
}

impl AdminArgs {
    /// The bearer token, if the person has one; `None` when they authenticate by certificate.
    fn token(&self) -> anyhow::Result<Option<String>> {
        if let Some(path) = &self.token_file {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("reading the token file {}", path.display()))?;
            let token = text.trim();
            anyhow::ensure!(
                !token.is_empty(),
                "the token file {} is empty",
                path.display()
            );
            return Ok(Some(token.to_owned()));
        }
        match std::env::var(&self.token_env) {
            Ok(token) if !token.trim().is_empty() => Ok(Some(token.trim().to_owned())),
            _ if self.cert.is_some() => Ok(None),
            _ => bail!(
                "say who you are: put your token in the environment variable `{}` (or `--token-file FILE`), or use a client certificate (`--cert FILE --key FILE`)",
                self.token_env
            ),
        }
    }

    fn endpoint(&self, path: &str) -> String {
        format!("{}{path}", self.url.trim_end_matches('/'))
    }

    fn client(&self) -> anyhow::Result<reqwest::Client> {
        let tls = vigil_connectors::http::TlsOptions {
            ca_file: self.ca.clone(),
            client_cert: self.cert.as_ref().map(|(cert_file, key_file)| {
                vigil_connectors::http::ClientCert {
                    cert_file: cert_file.clone(),
                    key_file: key_file.clone(),
                }
            }),
            insecure_skip_verify: false,
        };
        vigil_connectors::http::client_with_tls(Duration::from_secs(30), &tls)
            .context("building the HTTP client")
    }

    /// A request with the person's token, when they have one.
    fn request(
        &self,
        method: reqwest::Method,
        path: &str,
    ) -> anyhow::Result<reqwest::RequestBuilder> {
        let request = self.client()?.request(method, self.endpoint(path));
        Ok(match self.token()? {
            Some(token) => request.bearer_auth(token),
            None => request,
        })
    }
}

/// `vigil whoami`: who the daemon says you are, with your groups and roles.
pub async fn whoami(args: &AdminArgs) -> anyhow::Result<ExitCode> {
    let response = args
        .request(reqwest::Method::GET, "/v1/admin/whoami")?
        .send()
        .await
        .with_context(|| format!("asking {} who you are", args.url))?;
    let status = response.status();
    let body = response.text().await.unwrap_or_default();
    if status != StatusCode::OK {
        bail!("{} answered {status}: {}", args.url, body.trim());
    }
    let who: WhoAmI = serde_json::from_str(&body).context("reading the answer")?;
    println!("{}", who.name);
    println!("  credential: {} ({})", who.credential_id, who.via);
    println!("  groups:     {}", who.groups.join(", "));
    println!("  roles:      {}", who.roles.join(", "));
    Ok(ExitCode::SUCCESS)
}

/// `vigil ask "question"`: read-only triage by the daemon's assistant, against its state
/// now; prints what survived vigil's checks (the model's words escaped). Exit 1 when the
/// assistant gave no answer.
pub async fn ask(args: &AdminArgs, question: &str) -> anyhow::Result<ExitCode> {
    let response = args
        .request(reqwest::Method::POST, "/v1/admin/ask")?
        // An investigation may take the assistant's whole deadline (60 s by default).
        .timeout(Duration::from_secs(600))
        .json(&serde_json::json!({ "question": question }))
        .send()
        .await
        .with_context(|| format!("asking {}'s assistant", args.url))?;
    let status = response.status();
    let body = response.text().await.unwrap_or_default();
    if status != StatusCode::OK {
        bail!("{} answered {status}: {}", args.url, body.trim());
    }
    let answer: crate::daemon::assistant::AskAnswer =
        serde_json::from_str(&body).context("reading the answer")?;
    let usage = &answer.usage;
    let cost = format!(
        "{} requests, {} tool calls, {} tokens, {} ms",
        usage.requests, usage.tool_calls, usage.tokens, usage.latency_ms
    );
    if !answer.answered {
        println!(
            "the assistant gave no answer ({}): {}; {cost}",
            answer.failure.as_deref().unwrap_or("?"),
            Escaped(answer.detail.as_deref().unwrap_or_default())
        );
        return Ok(ExitCode::FAILURE);
    }
    println!("{}; {cost}", answer.checked);
    for hypothesis in &answer.hypotheses {
        println!("  hypothesis: {}", Escaped(hypothesis));
    }
    if let Some(narrative) = &answer.narrative {
        println!("  narrative: {}", Escaped(narrative));
    }
    if let Some(next) = &answer.next_check {
        println!("  next check: {}", Escaped(next));
    }
    for dropped in &answer.dropped {
        println!("  dropped {}", Escaped(dropped));
    }
    Ok(ExitCode::SUCCESS)
}

async fn fetch_proposals(args: &AdminArgs) -> anyhow::Result<Vec<ProposalView>> {
    let response = args
        .request(reqwest::Method::GET, "/v1/admin/proposals")?
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
            let entity_type = EntityType::TARGETS
                .into_iter()
                .find(|entity_type| entity_type.cedar_name().eq_ignore_ascii_case(kind))
                .with_context(|| {
                    let names: Vec<&str> =
                        EntityType::TARGETS.iter().map(|t| t.cedar_name()).collect();
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
    let now_ms = crate::clock::since_epoch()
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

async fn send(args: &AdminArgs, command: HumanCommand) -> anyhow::Result<ExitCode> {
    let mut request = serde_json::Map::new();
    request.insert("reason".to_owned(), serde_json::json!(args.reason));
    request.insert("command".to_owned(), serde_json::to_value(&command)?);
    if let Some(name) = &args.as_user {
        request.insert("by".to_owned(), serde_json::json!(name));
    }
    let response = args
        .request(reqwest::Method::POST, "/v1/admin/human")?
        .json(&request)
        .send()
        .await
        .with_context(|| format!("sending the instruction to {}", args.url))?;
    let status = response.status();
    let body = response.text().await.unwrap_or_default();
    let answer: Option<HumanAnswer> = serde_json::from_str(&body).ok();
    match (status, answer) {
        (StatusCode::OK, Some(answer)) => {
            println!("accepted ({}): {}", answer.by, answer.outcome);
            Ok(ExitCode::SUCCESS)
        }
        (StatusCode::CONFLICT, Some(answer)) => {
            eprintln!("refused ({}): {}", answer.by, answer.outcome);
            Ok(ExitCode::FAILURE)
        }
        (StatusCode::ACCEPTED, Some(answer)) => {
            println!("{}", answer.outcome);
            Ok(ExitCode::SUCCESS)
        }
        _ => bail!("{} answered {status}: {}", args.url, body.trim()),
    }
}

/// What `vigil admin-token add` was asked for.
#[derive(Debug, Clone)]
pub struct NewToken {
    /// The tokens file.
    pub tokens_file: PathBuf,
    /// The person's name.
    pub name: String,
    /// The token's id.
    pub id: Option<String>,
    /// Their groups.
    pub groups: Vec<String>,
    /// Their roles.
    pub roles: Vec<String>,
    /// When it expires: a duration from now or an RFC 3339 time.
    pub expires: Option<String>,
}

/// `vigil admin-token add`: makes a token, appends its hash to the tokens file (checking the
/// whole file still reads back before replacing it) and prints the token once.
pub fn add_token(new: &NewToken) -> anyhow::Result<ExitCode> {
    use crate::identity::tokens::{TokenDirectory, entry_yaml, new_token};
    use vigil_core::people::{Role, name_problem, normalize_name};

    if let Some(problem) = name_problem(&new.name) {
        bail!("--name: {problem}");
    }
    let roles = new
        .roles
        .iter()
        .map(|role| {
            Role::parse(role).with_context(|| {
                format!("--role `{role}` is not a role: use viewer, approver, operator or admin")
            })
        })
        .collect::<anyhow::Result<Vec<Role>>>()?;
    let now_ms = i64::try_from(
        crate::clock::since_epoch()
            .context("the clock is before 1970")?
            .as_millis(),
    )
    .unwrap_or(i64::MAX);
    let expires_at = match &new.expires {
        None => None,
        Some(text) => Some(match parse_duration(text) {
            Ok(duration) => Timestamp(
                now_ms.saturating_add(i64::try_from(duration.as_millis()).unwrap_or(i64::MAX)),
            )
            .to_rfc3339(),
            Err(_) => {
                vigil_core::datetime::parse_timestamp_ms(text).map_err(|error| {
                    anyhow::anyhow!(
                        "--expires `{text}`: neither a duration (90d) nor a time ({error})"
                    )
                })?;
                text.clone()
            }
        }),
    };
    let default_id = new.id.is_none();
    let mut id = new.id.clone().unwrap_or_else(|| {
        let day: String = Timestamp(now_ms)
            .to_rfc3339()
            .chars()
            .take(10)
            .filter(char::is_ascii_digit)
            .collect();
        let name: String = normalize_name(&new.name)
            .chars()
            .map(|c| if c.is_whitespace() { '-' } else { c })
            .collect();
        format!("{name}-{day}")
    });
    let existing = match std::fs::read_to_string(&new.tokens_file) {
        Ok(text) => Some(text),
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => None,
        Err(error) => {
            return Err(error).with_context(|| format!("reading {}", new.tokens_file.display()));
        }
    };
    // A default id already taken (a second token for the same person on the same day) gets
    // a number; an id given on the command line is used as given, and refused if taken.
    if default_id && let Some(text) = &existing {
        let existing = TokenDirectory::parse(text, &new.tokens_file.display().to_string())
            .map_err(|problems| anyhow::anyhow!("the tokens file does not read:\n{problems}"))?;
        let base = id.clone();
        let mut n = 2;
        while existing.has_id(&id) && n < 10_000 {
            id = format!("{base}-{n}");
            n += 1;
        }
    }
    let token = new_token()?;
    let entry = entry_yaml(
        &id,
        &new.name,
        &token,
        &new.groups,
        &roles,
        expires_at.as_deref(),
    );
    let mut text = existing.clone().unwrap_or_else(|| {
        "# vigil's personal admin tokens (admin.tokens_file). Each token is stored only as its\n# SHA-256; `vigil admin-token add` prints a new token once. Remove an entry to revoke it.\n".to_owned()
    });
    if !text.is_empty() && !text.ends_with('\n') {
        text.push('\n');
    }
    text.push_str(&entry);
    let shown = new.tokens_file.display().to_string();
    TokenDirectory::parse(&text, &shown)
        .map_err(|problems| anyhow::anyhow!("the tokens file would not read back:\n{problems}"))?;
    let folder = new
        .tokens_file
        .parent()
        .filter(|parent| !parent.as_os_str().is_empty())
        .unwrap_or(std::path::Path::new("."));
    let temporary = folder.join(format!(".vigil-tokens-{}.tmp", std::process::id()));
    crate::private_file::create(&temporary, &text)?;
    std::fs::rename(&temporary, &new.tokens_file).with_context(|| format!("replacing {shown}"))?;
    println!("{token}");
    eprintln!(
        "token `{id}` for {} added to {shown} (only its SHA-256 is stored; this is the only time the token is shown).\nGive it to them over a private channel; they set it in VIGIL_ADMIN_TOKEN. A running `vigil serve` picks it up on SIGHUP.",
        normalize_name(&new.name)
    );
    Ok(ExitCode::SUCCESS)
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
                .contains("`Widget` is not one of ApiKey, Team, Deployment, Prompt, Service")
        );
        assert_eq!(kill_scope(None, None).unwrap(), KillScope::Global);
    }
}
