//! Everything `vigil serve` resolves before it starts: secrets, HTTP clients, the action
//! targets, the pager, the intake's token and the people who may use the admin API. `vigil
//! check` resolves the same ([`Resources::resolve`]), so that a config `serve` would refuse to
//! start with fails `check` too, and `serve` resolves it before it opens (or creates) the
//! ledger, so that a failed start leaves nothing behind.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use vigil_connectors::http::TlsOptions;
use vigil_connectors::http_action::HttpCaller;
use vigil_connectors::langfuse::LangfuseClient;
use vigil_connectors::litellm::AdminClient;
use vigil_connectors::pager::{PagerDutyPager, SlackPager, WebhookPager};
use vigil_connectors::prometheus::QueryClient;
use vigil_connectors::scrape::ScrapeTarget;

use super::effects::Pager;
use super::{IntakeRuntime, MAX_SCRAPE_BYTES, QueryRuntime, SourceRuntime, actions};
use crate::config::admin::JwksSource;
use crate::config::{Config, PagerConfig};
use crate::identity::Authenticator;
use crate::identity::oidc::Jwks;
use crate::identity::strength;

/// What the daemon needs from the world, resolved.
pub struct Resources {
    pub(super) targets: Vec<SourceRuntime>,
    pub(super) queries: Vec<QueryRuntime>,
    pub(super) action_targets: actions::Targets,
    pub(super) pager: Pager,
    pub(super) intake: Option<IntakeRuntime>,
    pub(super) admin: Option<AdminResources>,
    /// The listener's TLS, when it terminates TLS itself.
    pub(super) tls: Option<tokio_rustls::TlsAcceptor>,
    /// The assistant, when enabled.
    pub(super) investigator: Option<Arc<crate::investigator::Investigator>>,
    /// The dead man's switch and its interval, when configured.
    pub(super) heartbeat: Option<(vigil_connectors::Heartbeat, Duration)>,
}

/// The admin API's authenticator, and where its OIDC keys are refreshed from.
pub(super) struct AdminResources {
    pub(super) authenticator: Arc<Authenticator>,
    pub(super) jwks_url: Option<(reqwest::Url, Duration)>,
}

impl Resources {
    /// Whether the listener terminates TLS itself.
    #[must_use]
    pub fn terminates_tls(&self) -> bool {
        self.tls.is_some()
    }

    /// Resolves every secret and builds every client the config names; fails with a clear
    /// message, naming the key, when one cannot be had. Does no network I/O.
    ///
    /// # Errors
    ///
    /// The first thing that cannot be resolved: a secret missing, empty, unreadable or
    /// readable by everyone, a token too weak or shared by two roles, a tokens or JWKS file
    /// with problems, a client that cannot be built.
    pub fn resolve(config: &Config) -> anyhow::Result<Resources> {
        let longest_timeout = config
            .sources
            .iter()
            .map(|source| source.timeout)
            .chain(
                config
                    .sources
                    .iter()
                    .filter_map(|source| source.admin.as_ref().map(|admin| admin.timeout)),
            )
            .max()
            .unwrap_or(Duration::from_secs(10));
        let client =
            vigil_connectors::http::client(longest_timeout).context("building the HTTP client")?;
        let mut targets = Vec::new();
        let mut admins = BTreeMap::new();
        for source in &config.sources {
            // A source with its own TLS settings gets its own client, for scrapes and admin calls.
            let source_client = if source.tls == TlsOptions::default() {
                client.clone()
            } else {
                vigil_connectors::http::client_with_tls(longest_timeout, &source.tls)
                    .with_context(|| format!("source `{}`: TLS", source.name))?
            };
            let bearer = match &source.bearer {
                Some(secret) => Some(
                    secret
                        .resolve()
                        .with_context(|| format!("source `{}`: bearer token", source.name))?,
                ),
                None => None,
            };
            targets.push(SourceRuntime {
                target: ScrapeTarget {
                    name: source.name.clone(),
                    url: source.url.to_string(),
                    timeout: source.timeout,
                    bearer,
                    max_body_bytes: MAX_SCRAPE_BYTES,
                },
                interval: source.interval,
                client: source_client.clone(),
                extra_labels: source.labels.clone(),
            });
            if let Some(admin) = &source.admin {
                let master_key = admin
                    .master_key
                    .resolve()
                    .with_context(|| format!("source `{}`: admin master key", source.name))?;
                let base_url = admin.base_url.as_str().trim_end_matches('/').to_owned();
                admins.insert(
                    source.name.clone(),
                    AdminClient::new(base_url, master_key, source_client),
                );
            }
        }
        let mut langfuse = BTreeMap::new();
        for project in &config.actions.langfuse {
            let secret_key = project
                .secret_key
                .resolve()
                .with_context(|| format!("Langfuse project `{}`: secret key", project.name))?;
            langfuse.insert(
                project.name.clone(),
                LangfuseClient::new(
                    project.url.as_str().trim_end_matches('/'),
                    project.public_key.clone(),
                    secret_key,
                    client.clone(),
                )
                .with_timeout(project.timeout),
            );
        }
        let http_caller = config.actions.http.as_ref().map(|http| {
            HttpCaller::new(http.allow_hosts.clone(), client.clone()).with_timeout(http.timeout)
        });
        let action_targets = actions::Targets {
            litellm: admins,
            langfuse,
            http: http_caller,
        };
        let mut queries = Vec::new();
        for query in &config.queries {
            let http = vigil_connectors::http::client_with_tls(query.timeout, &query.tls)
                .with_context(|| format!("query `{}`: HTTP client", query.name))?;
            let bearer = match &query.bearer {
                Some(secret) => Some(
                    secret
                        .resolve()
                        .with_context(|| format!("query `{}`: bearer token", query.name))?,
                ),
                None => None,
            };
            let client =
                QueryClient::new(query.url.as_str(), bearer, http).with_timeout(query.timeout);
            queries.push(QueryRuntime {
                config: query.clone(),
                client,
            });
        }
        let pager = match &config.pager {
            PagerConfig::Webhook { url, bearer } => {
                let bearer = match bearer {
                    Some(secret) => Some(secret.resolve().context("pager: bearer token")?),
                    None => None,
                };
                Pager::Webhook(WebhookPager::new(url.as_str(), bearer, client.clone()))
            }
            PagerConfig::PagerDuty {
                routing_key,
                events_url,
            } => {
                let routing_key = routing_key
                    .resolve()
                    .context("pager: PagerDuty routing key")?;
                // PagerDuty would refuse every event; say so at start rather than at 3 a.m.
                if routing_key.expose().chars().count() != 32 {
                    anyhow::bail!(
                        "pager: the PagerDuty routing key must be the 32-character integration key of an Events API v2 integration"
                    );
                }
                Pager::PagerDuty(PagerDutyPager::new(
                    routing_key,
                    events_url.as_str(),
                    client.clone(),
                ))
            }
            PagerConfig::Slack { webhook_url } => {
                let webhook_url = webhook_url.resolve().context("pager: Slack webhook URL")?;
                // The URL is a secret: the error must not repeat it.
                let usable = reqwest::Url::parse(webhook_url.expose()).is_ok_and(|url| {
                    matches!(url.scheme(), "http" | "https") && url.host().is_some()
                });
                if !usable {
                    anyhow::bail!("pager: the Slack webhook URL is not an http or https URL");
                }
                Pager::Slack(SlackPager::new(webhook_url, client.clone()))
            }
            PagerConfig::Log => Pager::Log,
        };
        let intake = match &config.intake {
            Some(intake) => {
                let bearer = match &intake.bearer {
                    Some(secret) => Some(secret.resolve().context("intake: bearer token")?),
                    None => None,
                };
                Some(IntakeRuntime {
                    bearer,
                    max_body_bytes: intake.max_body_bytes,
                    max_concurrent_pushes: intake.max_concurrent_pushes,
                })
            }
            None => None,
        };
        let tls = match &config.server.tls {
            Some(tls) => {
                let server_config = super::server::tls::load(tls).map_err(|problems| {
                    let listed: Vec<String> = problems.iter().map(ToString::to_string).collect();
                    anyhow::anyhow!("TLS: {}", listed.join("; "))
                })?;
                Some(tokio_rustls::TlsAcceptor::from(server_config))
            }
            None => None,
        };
        let intake_bearer = intake.as_ref().and_then(|intake| intake.bearer.as_ref());
        if let Some(bearer) = intake_bearer {
            strength::check_token(bearer.expose())
                .map_err(|why| anyhow::anyhow!("intake: bearer token: {why}"))?;
        }
        let admin = match &config.admin {
            Some(admin) => {
                let jwks = match admin.oidc.as_ref().map(|oidc| &oidc.jwks) {
                    Some(JwksSource::File(path)) => {
                        let bytes = std::fs::read(path).with_context(|| {
                            format!("admin.oidc.jwks_file: reading {}", path.display())
                        })?;
                        Some(Jwks::parse(&bytes).map_err(|why| {
                            anyhow::anyhow!("admin.oidc.jwks_file {}: {why}", path.display())
                        })?)
                    }
                    Some(JwksSource::Url { .. }) | None => None,
                };
                let jwks_url = match admin.oidc.as_ref().map(|oidc| &oidc.jwks) {
                    Some(JwksSource::Url { url, refresh }) => Some((url.clone(), *refresh)),
                    Some(JwksSource::File(_)) | None => None,
                };
                let authenticator = Authenticator::load(admin, jwks).context("admin")?;
                if let (Some(bearer), Some(tokens)) = (intake_bearer, authenticator.tokens())
                    && tokens.holds_digest(&crate::identity::tokens::digest(bearer.expose()))
                {
                    anyhow::bail!(
                        "intake.bearer_token is also a person's admin token in admin.tokens_file: give each role its own token"
                    );
                }
                Some(AdminResources {
                    authenticator: Arc::new(authenticator),
                    jwks_url,
                })
            }
            None => None,
        };
        let investigator = match config
            .assistant
            .as_ref()
            .filter(|assistant| assistant.enabled)
        {
            Some(assistant) => Some(Arc::new(
                crate::investigator::build(assistant).context("diagnosis.assistant")?,
            )),
            None => None,
        };
        let heartbeat = match &config.heartbeat {
            Some(heartbeat) => {
                let bearer = match &heartbeat.bearer {
                    Some(secret) => Some(secret.resolve().context("heartbeat: bearer token")?),
                    None => None,
                };
                let client = vigil_connectors::Heartbeat::new(
                    heartbeat.url.clone(),
                    bearer,
                    heartbeat.timeout,
                )
                .context("heartbeat")?;
                Some((client, heartbeat.interval))
            }
            None => None,
        };
        Ok(Resources {
            targets,
            queries,
            action_targets,
            pager,
            intake,
            admin,
            tls,
            investigator,
            heartbeat,
        })
    }
}
