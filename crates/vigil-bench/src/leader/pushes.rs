//! Part 2 of `leader`: acknowledged pushes per second.
//!
//! The single daemon's number is the `daemon` benchmark's (`crate::daemon::measure`: eval
//! pushes through the real daemon on SQLite, against `Ledger::append` on the same disk). With
//! PostgreSQL, the replicated path: `Replication::inbox_put` (what any replica's 2xx waits
//! for) against a plain `INSERT` of the same row into a table of the same shape, from one
//! client and from `--clients` at once, then with 50,000 pushes already waiting (a leaderless
//! spell: the inbox's bound is checked in the same statement, on the span of waiting ids
//! and, near the bound only, by counting them); and a replica leading in
//! process (`vigil::daemon::replica::Replica`, the code `vigil serve` runs with
//! `replication:`), pushed to over HTTP: pushes acknowledged per second, and pushes drained
//! into the chain per second (from the first push until the inbox is empty).

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use sqlx::postgres::{PgPool, PgPoolOptions};
use tokio_util::sync::CancellationToken;
use vigil::daemon::replica::{Identity, Prepare, Replica};
use vigil::daemon::{Clock, DaemonOptions, Resources};
use vigil_ledger::Ledger;
use vigil_ledger::replication::Replication;

use super::{Options, Schema};
use crate::daemon::{PushRates, push, wait_ready};

/// The inbox's default bound (`replication.inbox_max_rows`).
const INBOX_MAX_ROWS: u64 = 100_000;

/// Pushes waiting in the inbox for the second `inbox_put` measurement.
const WAITING: i64 = 50_000;

/// The push route of the inbox rows written directly.
const ROUTE: &str = "/v1/push/evals";

pub(super) async fn run(options: &Options, dir: &Path) -> anyhow::Result<()> {
    println!(
        "\n2. pushes per second: eval results, one per request; a 2xx means the push is durable"
    );
    let daemon_dir = dir.join("daemon");
    std::fs::create_dir_all(&daemon_dir)?;
    let PushRates {
        baseline,
        sequential,
        concurrent,
    } = crate::daemon::measure(&daemon_dir, options.pushes, options.clients).await?;
    println!(
        "  SQLite, baseline: Ledger::append, one entry per transaction      {baseline:>8.0} /s"
    );
    println!(
        "  SQLite, the daemon (vigil-bench daemon), one client              {sequential:>8.0} /s ({:.2}x)",
        sequential / baseline
    );
    println!(
        "  SQLite, the daemon, {:>2} clients                                  {concurrent:>8.0} /s ({:.2}x)",
        options.clients,
        concurrent / baseline
    );
    let Some(url) = &options.postgres else {
        println!(
            "  PostgreSQL (the inbox, a replica leading): not measured; set VIGIL_TEST_DATABASE_URL"
        );
        return Ok(());
    };
    inbox_against_insert(url, options).await?;
    through_a_replica(url, dir, options).await
}

fn body(case: &str) -> Vec<u8> {
    serde_json::json!({"results": [{
        "suite": "bench", "case": case, "passed": true, "model": "m",
        "prompt_name": "p", "prompt_version": "v1"
    }]})
    .to_string()
    .into_bytes()
}

/// Runs `one` for `n` pushes from `clients` tasks at once; returns pushes per second.
async fn rate<F, Fut>(n: usize, clients: usize, one: F) -> anyhow::Result<f64>
where
    F: Fn(usize) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = anyhow::Result<()>> + Send,
{
    let one = Arc::new(one);
    let per_client = n.div_ceil(clients);
    let started = Instant::now();
    let mut tasks = Vec::with_capacity(clients);
    for client in 0..clients {
        let one = Arc::clone(&one);
        tasks.push(tokio::spawn(async move {
            for idx in 0..per_client {
                one(client * per_client + idx).await?;
            }
            anyhow::Ok(())
        }));
    }
    for task in tasks {
        task.await??;
    }
    Ok((per_client * clients) as f64 / started.elapsed().as_secs_f64())
}

async fn inbox_against_insert(url: &str, options: &Options) -> anyhow::Result<()> {
    let schema = Schema::new(url, "inbox");
    let measured = async {
        let ledger = Ledger::open(&schema.location()).await?;
        let replication = ledger.replication()?;
        let pool = PgPoolOptions::new().max_connections(4).connect(url).await?;
        let plain = format!("\"{}\".bench_plain", schema.name);
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "CREATE TABLE {plain} (id BIGSERIAL PRIMARY KEY, received_at_ms BIGINT NOT NULL, \
             replica TEXT NOT NULL, route TEXT NOT NULL, content_type TEXT, body BYTEA NOT NULL)"
        )))
        .execute(&pool)
        .await?;
        let insert: Arc<str> = format!(
            "INSERT INTO {plain} (received_at_ms, replica, route, content_type, body) \
             VALUES ($1, $2, $3, $4, $5) RETURNING id"
        )
        .into();
        let n = options.pushes;
        let mut rows = Vec::new();
        for clients in [1, options.clients] {
            let (pool_, insert_) = (pool.clone(), Arc::clone(&insert));
            let plain_rate = rate(n, clients, move |idx| {
                plain_insert(pool_.clone(), Arc::clone(&insert_), idx)
            })
            .await?;
            let replication_ = replication.clone();
            let inbox_rate = rate(n, clients, move |idx| put(replication_.clone(), idx)).await?;
            rows.push((
                format!("{clients:>2} client(s), inbox empty at the start"),
                plain_rate,
                inbox_rate,
            ));
            clear(&pool, &schema.name, &plain).await?;
        }
        // A leaderless spell: pushes waiting.
        for table in [plain.clone(), format!("\"{}\".ledger_inbox", schema.name)] {
            sqlx::query(sqlx::AssertSqlSafe(format!(
                "INSERT INTO {table} (received_at_ms, replica, route, content_type, body) \
                 SELECT 0, 'r', '{ROUTE}', 'application/json', '\\x7b7d'::bytea \
                 FROM generate_series(1, {WAITING})"
            )))
            .execute(&pool)
            .await?;
        }
        let (pool_, insert_) = (pool.clone(), Arc::clone(&insert));
        let plain_rate = rate(n, options.clients, move |idx| {
            plain_insert(pool_.clone(), Arc::clone(&insert_), idx)
        })
        .await?;
        let replication_ = replication.clone();
        let inbox_rate = rate(n, options.clients, move |idx| {
            put(replication_.clone(), idx)
        })
        .await?;
        rows.push((
            format!("{:>2} client(s), {WAITING} pushes waiting", options.clients),
            plain_rate,
            inbox_rate,
        ));
        pool.close().await;
        ledger.close().await;
        anyhow::Ok(rows)
    }
    .await;
    schema.drop_now().await;
    println!(
        "  PostgreSQL: Replication::inbox_put (a standby's 2xx) against a plain INSERT of the same row (the baseline)"
    );
    for (what, plain_rate, inbox_rate) in measured? {
        println!(
            "    {what:<40} INSERT {plain_rate:>7.0} /s   inbox_put {inbox_rate:>7.0} /s ({:.2}x)",
            inbox_rate / plain_rate
        );
    }
    Ok(())
}

async fn plain_insert(pool: PgPool, insert: Arc<str>, idx: usize) -> anyhow::Result<()> {
    let _: i64 = sqlx::query_scalar(sqlx::AssertSqlSafe(insert.to_string()))
        .bind(0_i64)
        .bind("bench")
        .bind(ROUTE)
        .bind("application/json")
        .bind(body(&format!("p{idx}")))
        .fetch_one(&pool)
        .await?;
    Ok(())
}

async fn put(replication: Replication, idx: usize) -> anyhow::Result<()> {
    replication
        .inbox_put(
            0,
            "bench",
            ROUTE,
            Some("application/json"),
            &body(&format!("p{idx}")),
            INBOX_MAX_ROWS,
        )
        .await?
        .context("the inbox is full")?;
    Ok(())
}

/// Empties both tables (between measurements).
async fn clear(pool: &PgPool, schema: &str, plain: &str) -> anyhow::Result<()> {
    for table in [plain.to_owned(), format!("\"{schema}\".ledger_inbox")] {
        sqlx::query(sqlx::AssertSqlSafe(format!("DELETE FROM {table}")))
            .execute(pool)
            .await?;
    }
    Ok(())
}

fn replica_config(schema: &str, runbooks: &Path) -> String {
    let policies = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../policies");
    format!(
        r#"mode: autonomous
environment: bench
ledger:
  postgres_url: {{ env: {env} }}
  postgres_schema: {schema}
policies_dir: "{policies}"
runbooks_dir: "{runbooks}"
replication:
  replica_id: bench-leader
sources:
  - name: gateway
    kind: litellm
    url: http://127.0.0.1:9/metrics/
    scrape_interval_secs: 3600
detectors:
  - name: token-spike
    kind: spike
    source: gateway
intake:
  max_concurrent_pushes: 16
pager:
  kind: log
"#,
        env = super::DATABASE_URL_ENV,
        policies = policies.display(),
        runbooks = runbooks.display(),
    )
}

async fn through_a_replica(url: &str, dir: &Path, options: &Options) -> anyhow::Result<()> {
    let schema = Schema::new(url, "replica");
    let replica_dir = dir.join("replica");
    std::fs::create_dir_all(replica_dir.join("runbooks"))?;
    let config_path = replica_dir.join("vigil.yaml");
    std::fs::write(
        &config_path,
        replica_config(&schema.name, &replica_dir.join("runbooks")),
    )?;
    let measured = lead_and_push(&config_path, &schema, options).await;
    schema.drop_now().await;
    let (sequential, concurrent, drained, n_recorded) = measured?;
    println!(
        "  PostgreSQL: one replica leading in process (lease, fence, inbox); {n_recorded} pushes in the chain"
    );
    println!(
        "    one client: acknowledged {sequential:>7.0} /s; {:>2} clients: acknowledged {concurrent:>7.0} /s, drained into the chain {drained:>7.0} /s",
        options.clients
    );
    Ok(())
}

/// Runs a replica on `schema`, waits until it leads, pushes from one client and then from
/// several; returns the rates and the pushes found in the chain.
async fn lead_and_push(
    config_path: &Path,
    schema: &Schema,
    options: &Options,
) -> anyhow::Result<(f64, f64, f64, i64)> {
    let load = |path: &Path| {
        vigil::bundle::load(path)
            .map_err(|problems| anyhow::anyhow!("the benchmark config is invalid:\n{problems}"))
    };
    let bundle = load(config_path)?;
    let resources = Resources::resolve(&bundle.config)?;
    let replication_config = bundle
        .config
        .replication
        .clone()
        .context("the config replicates")?;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let address = listener.local_addr()?;
    let identity = Identity::resolve(&replication_config, address, "http")?;
    let path = config_path.to_path_buf();
    let prepare: Prepare = Box::new(move || {
        let bundle = load(&path)?;
        let resources = Resources::resolve(&bundle.config)?;
        Ok((bundle, resources))
    });
    let replica = Replica {
        identity,
        config: replication_config,
        location: schema.location(),
        listener,
        clock: Clock::system(),
        options: DaemonOptions::default(),
        resources,
        bundle,
    };
    let cancel = CancellationToken::new();
    let running = tokio::spawn(replica.run(prepare, cancel.clone()));
    let measured = push_to(address, schema, options).await;
    cancel.cancel();
    running.await??;
    measured
}

async fn push_to(
    address: std::net::SocketAddr,
    schema: &Schema,
    options: &Options,
) -> anyhow::Result<(f64, f64, f64, i64)> {
    let client = reqwest::Client::new();
    wait_ready(&client, &format!("http://{address}/healthz")).await?;
    // A second connection to the same ledger, to watch the lease and the inbox.
    let watcher = Ledger::open(&schema.location()).await?;
    let replication = watcher.replication()?;
    let mut leading = false;
    for _ in 0..400 {
        if let Some(holder) = replication.holder().await?
            && holder.replica == "bench-leader"
            && !holder.runs_for.is_zero()
        {
            leading = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    anyhow::ensure!(leading, "the replica never took the lease");
    let url = format!("http://{address}/v1/push/evals");
    let n = options.pushes;
    let started = Instant::now();
    for idx in 0..n {
        push(&client, &url, &format!("s{idx}")).await?;
    }
    let sequential = n as f64 / started.elapsed().as_secs_f64();
    drain(&replication).await?;
    let client = Arc::new(client);
    let started = Instant::now();
    let (client_, url_) = (Arc::clone(&client), url.clone());
    let concurrent = rate(n, options.clients, move |idx| {
        let (client, url) = (Arc::clone(&client_), url_.clone());
        async move { push(&client, &url, &format!("c{idx}")).await }
    })
    .await?;
    drain(&replication).await?;
    let n_concurrent = n.div_ceil(options.clients) * options.clients;
    let drained = n_concurrent as f64 / started.elapsed().as_secs_f64();
    let pool = PgPoolOptions::new()
        .max_connections(1)
        .connect(&schema.url)
        .await?;
    let n_recorded: i64 = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
        "SELECT count(*) FROM \"{}\".ledger_entries WHERE kind = 'event' \
         AND payload LIKE '%\"suite\":\"bench\"%'",
        schema.name
    )))
    .fetch_one(&pool)
    .await?;
    pool.close().await;
    watcher.close().await;
    anyhow::ensure!(
        n_recorded == (n + n_concurrent) as i64,
        "{n_recorded} pushes in the chain, {} acknowledged",
        n + n_concurrent
    );
    Ok((sequential, concurrent, drained, n_recorded))
}

/// Waits (bounded: two minutes) until the inbox is empty.
async fn drain(replication: &Replication) -> anyhow::Result<()> {
    for _ in 0..6_000 {
        if replication.inbox_len().await? == 0 {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    anyhow::bail!("the leader did not drain the inbox within two minutes")
}
