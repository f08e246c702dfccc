//! `cradle-node`: the daemon each member institution runs (`run`), and what its operator does
//! with it besides: `check` a home before a start, `backup` it while it runs, `restore` it onto
//! a fresh machine.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context;
use clap::{Parser, Subcommand};
use cradle_genesis::Home;
use cradle_genesis::config::LogFormat;
use cradle_node::custodian::{ArchiveStore, Custodian};
use cradle_node::driver::{self, DriverConfig, DriverParts, INGRESS_CAPACITY, Status};
use cradle_node::http::{self, HttpState, auth::ReplayCache};
use cradle_node::mempool::MempoolConfig;
use cradle_node::metrics::Metrics;
use cradle_node::network::{self, NetworkConfig};
use cradle_node::storage::Store;
use cradle_node::submit::Submitter;
use tokio::sync::{mpsc, watch};
use tracing::{error, info, warn};

#[derive(Parser)]
#[command(name = "cradle-node", version, about = "The Cradle member daemon")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the node whose config, genesis, key and data live in DIR. SIGTERM (or Ctrl-C) stops
    /// it gracefully: no new connections, transfers in flight finish (up to
    /// `shutdown_grace_ms`), the consensus driver stops between blocks.
    Run {
        #[arg(long)]
        home: PathBuf,
    },
    /// Validate DIR's key, genesis and config as a start would, and print the parameters the
    /// node would run with. Exit 0 if it would start, 1 with the reason if not.
    Check {
        #[arg(long)]
        home: PathBuf,
    },
    /// Back up the node of DIR into OUT (a new directory), while it runs (through its operator
    /// address, `api.metrics_listen`) or while it is stopped: a consistent copy of the ledger,
    /// every archive it holds (checked), its staff directory, config, genesis and key (keep the
    /// backup as safe as the key).
    Backup {
        #[arg(long)]
        home: PathBuf,
        #[arg(long)]
        out: PathBuf,
    },
    /// Restore a backup into DIR (a fresh home, or one without a ledger); the node then resumes
    /// from the backup's block and catches up from its peers.
    Restore {
        #[arg(long)]
        from: PathBuf,
        #[arg(long)]
        home: PathBuf,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let home = match cli.command {
        Command::Run { home } => home,
        Command::Check { home } => return check(&home),
        Command::Backup { home, out } => return backup(&home, &out),
        Command::Restore { from, home } => return restore(&from, &home),
    };
    let home = match Home::open(&home) {
        Ok(h) => h,
        Err(e) => {
            eprintln!("cradle-node: {e}");
            return ExitCode::from(1);
        }
    };
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .or_else(|_| tracing_subscriber::EnvFilter::try_new(&home.config.log))
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let logs = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match home.config.log_format {
        LogFormat::Text => logs.init(),
        LogFormat::Json => logs.json().flatten_event(true).init(),
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("cradle-node: cannot start the runtime: {e}");
            return ExitCode::from(1);
        }
    };
    match runtime.block_on(run(home)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            error!("{e:#}");
            eprintln!("cradle-node: {e:#}");
            ExitCode::from(1)
        }
    }
}

async fn run(home: Home) -> anyhow::Result<()> {
    let consortium = Arc::new(home.consortium().context("genesis")?);
    let member = home.member().name.clone();
    let params = home.genesis.consensus.clone();
    let m = &home.config.mempool;
    let mempool = MempoolConfig {
        txs_max: m.txs_max,
        bytes_max: usize::try_from(m.bytes_max).unwrap_or(usize::MAX),
        access_txs_max: m.access_txs_max,
        access_bytes_max: usize::try_from(m.access_bytes_max).unwrap_or(usize::MAX),
    };
    let config = DriverConfig::from_genesis(&params, mempool);
    info!(
        member = %member,
        chain_id = %hex::encode(consortium.chain_id),
        p2p = %home.config.p2p.listen,
        api = %home.config.api.listen,
        ?config,
        limits = ?consortium.limits,
        policy = ?consortium.policy,
        "starting cradle-node"
    );
    let data_dir = home.data_dir();
    std::fs::create_dir_all(&data_dir)
        .with_context(|| format!("creating {}", data_dir.display()))?;
    let store = Arc::new(Store::open(&data_dir.join("ledger")).context("opening the store")?);

    let net_config =
        NetworkConfig::from_genesis(&home.genesis, &home.keypair, &home.config.p2p.listen)
            .context("network configuration")?;
    let (network, net_events) = network::start(net_config)
        .await
        .context("starting the network")?;

    let metrics = Arc::new(Metrics::default());
    let (status_tx, status_rx) = watch::channel(Status::default());
    let (ingress_tx, ingress_rx) = mpsc::channel(INGRESS_CAPACITY);
    let archive_config = &home.config.archives;
    let archives = Arc::new(match &archive_config.s3 {
        None => ArchiveStore::open(
            &data_dir.join("archives"),
            archive_config.archive_bytes_max,
            archive_config.store_bytes_max,
        )
        .context("opening the archive store")?
        .with_disk_reserve(archive_config.disk_reserve_bytes),
        Some(s3) => {
            let backend = cradle_node::custodian::s3::S3Backend::new(
                s3,
                &home.dir,
                tokio::runtime::Handle::current(),
            )
            .context("the archive store's object storage")?;
            let (max, total) = (
                archive_config.archive_bytes_max,
                archive_config.store_bytes_max,
            );
            let store =
                tokio::task::spawn_blocking(move || ArchiveStore::open_s3(backend, max, total))
                    .await
                    .context("opening the archive store")?
                    .with_context(|| {
                        format!(
                            "opening the archive store in bucket {} at {}",
                            s3.bucket, s3.endpoint
                        )
                    })?;
            info!(endpoint = %s3.endpoint, bucket = %s3.bucket, used_bytes = store.used_bytes(), "archives in object storage");
            store
        }
    });
    let submitter = Submitter::new(
        ingress_tx.clone(),
        consortium.chain_id,
        consortium.limits.tx_bytes_max as usize,
    );
    let custodian = Arc::new(Custodian::new(
        cradle_ledger::Keypair::from_secret_parts(
            &home.keypair.ed25519_seed(),
            &home.keypair.x25519_secret(),
        ),
        archives,
        store.clone(),
        consortium.clone(),
        submitter.clone(),
        metrics.clone(),
    ));
    let directory = Arc::new(
        cradle_node::directory::Directory::open(&data_dir.join("staff-directory.json"))
            .context("opening the staff directory")?,
    );
    // Synced: the last block is at most three heartbeats and a proposal's timeout old.
    let ready_lag_ms = params
        .pacing
        .heartbeat_ms
        .saturating_mul(3)
        .saturating_add(params.timeouts.timeout_propose_ms)
        .max(5_000);
    let backups = Arc::new(cradle_node::ops::backup::Checkpoints::new(
        data_dir.clone(),
        store.clone(),
    ));
    let grace = std::time::Duration::from_millis(home.config.shutdown_grace_ms);
    let (api_stop, api_stopping) = watch::channel(false);
    let (driver_stop, driver_stopping) = watch::channel(false);
    let api_state = Arc::new(HttpState {
        consortium: consortium.clone(),
        member,
        store: store.clone(),
        metrics: metrics.clone(),
        status: status_rx,
        submitter,
        custodian,
        replay: std::sync::Mutex::new(ReplayCache::new(2 * archive_config.request_skew_ms)),
        request_skew_ms: archive_config.request_skew_ms,
        node_key: home.keypair.public_key(),
        started_ms: cradle_genesis::clock::now_ms(),
        genesis: serde_json::to_value(&home.genesis).context("genesis as JSON")?,
        rate: http::rate::RateLimiter::new(&home.config.api.rate),
        directory,
        ready_lag_ms,
        backups,
        transfers: http::transfers::Transfers::new(
            home.config.api.transfers_max,
            home.config.api.transfers_per_key_max,
            metrics.clone(),
        ),
    });
    let listen = home.config.api_listen().context("api address")?;
    let limits = http::serve::ServeLimits::from_config(&home.config.api);
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .with_context(|| format!("binding the API to {listen}"))?;
    let tls = if home.config.api.plaintext {
        warn!(%listen, "api serving plain HTTP (api.plaintext): answers are not authenticated");
        None
    } else {
        let names = vec![listen.ip().to_string()];
        let api_config = &home.config.api;
        let (cert_path, key_path) = (
            api_config.tls_cert_file.as_ref().map(|p| home.dir.join(p)),
            api_config.tls_key_file.as_ref().map(|p| home.dir.join(p)),
        );
        let operator = match (&cert_path, &key_path) {
            (Some(cert), Some(key)) => Some(http::tls::OperatorCert {
                cert_file: cert,
                key_file: key,
                names: &api_config.tls_server_names,
            }),
            _ => None,
        };
        let config = http::tls::server_config(
            &home.config.member,
            &home.keypair.ed25519_seed(),
            names,
            operator,
            api_config
                .member_tls
                .then(|| home.genesis.members.iter().map(|m| m.public_key).collect()),
        )
        .context("the API's TLS certificates")?;
        Some(tokio_rustls::TlsAcceptor::from(config))
    };
    info!(%listen, tls = tls.is_some(), "api listening");
    if let Some(metrics_listen) = home.config.metrics_listen().context("metrics address")? {
        let listener = tokio::net::TcpListener::bind(metrics_listen)
            .await
            .with_context(|| format!("binding the metrics endpoint to {metrics_listen}"))?;
        info!(%metrics_listen, "metrics listening");
        let router = http::metrics_router(api_state.clone());
        tokio::spawn(async move {
            http::serve::serve(listener, router, limits, None, None, None).await
        });
    }
    let mut api = tokio::spawn(async move {
        let evicted = api_state.metrics.api_connections_evicted.clone();
        http::serve::serve(
            listener,
            http::router(api_state),
            limits,
            tls,
            Some(evicted),
            Some(http::serve::Graceful {
                stop: api_stopping,
                grace,
            }),
        )
        .await
    });

    let keypair = cradle_ledger::Keypair::from_secret_parts(
        &home.keypair.ed25519_seed(),
        &home.keypair.x25519_secret(),
    );
    let parts = DriverParts {
        config,
        consortium,
        keypair,
        store,
        network: network.clone(),
        net_events,
        metrics,
        status: status_tx,
        ingress_tx,
        ingress_rx,
        shutdown: driver_stopping,
    };
    let mut driver = tokio::spawn(driver::run(parts));
    let result = tokio::select! {
        r = &mut driver => match r {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) => Err(anyhow::Error::new(e).context("consensus driver stopped")),
            Err(e) => Err(anyhow::anyhow!("consensus driver panicked: {e}")),
        },
        r = &mut api => Err(anyhow::anyhow!("api server stopped: {r:?}")),
        _ = shutdown_signal() => {
            info!(grace_ms = grace.as_millis() as u64, "shutting down: no new connections; transfers in flight finish");
            // The API first, with the driver still committing: a fetch in flight may be waiting
            // for its access record's commit. Then the driver, between two blocks.
            let _ = api_stop.send(true);
            if tokio::time::timeout(grace + std::time::Duration::from_secs(1), &mut api)
                .await
                .is_err()
            {
                warn!("the api did not stop within the grace");
            }
            let _ = driver_stop.send(true);
            match tokio::time::timeout(grace, &mut driver).await {
                Ok(Ok(Ok(()))) => {
                    info!("shut down cleanly");
                    Ok(())
                }
                Ok(Ok(Err(e))) => Err(anyhow::Error::new(e).context("consensus driver stopped")),
                Ok(Err(e)) => Err(anyhow::anyhow!("consensus driver panicked: {e}")),
                Err(_) => Err(anyhow::anyhow!("the consensus driver did not stop within the grace")),
            }
        }
    };
    network.shutdown().await;
    result
}

async fn shutdown_signal() {
    let mut term = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
        Ok(s) => s,
        Err(_) => return std::future::pending().await,
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
}

/// `cradle-node check`: the report, or the reason the node would not start.
fn check(dir: &std::path::Path) -> ExitCode {
    match Home::open(dir) {
        Ok(home) => {
            print!("{}", cradle_node::ops::check::report(&home));
            println!("ok: the node would start");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("cradle-node: {e}");
            ExitCode::from(1)
        }
    }
}

/// `cradle-node backup`.
fn backup(dir: &std::path::Path, out: &std::path::Path) -> ExitCode {
    let result = Home::open(dir)
        .map_err(|e| e.to_string())
        .and_then(|home| cradle_node::ops::backup::backup(&home, out).map_err(|e| e.to_string()));
    match result {
        Ok(m) => {
            println!(
                "backed up {} at height {} ({} archive objects) into {}",
                m.member,
                m.height,
                m.archives.len(),
                out.display()
            );
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("cradle-node: backup: {e}");
            ExitCode::from(1)
        }
    }
}

/// `cradle-node restore`.
fn restore(from: &std::path::Path, dir: &std::path::Path) -> ExitCode {
    match cradle_node::ops::backup::restore(from, dir) {
        Ok(m) => {
            println!(
                "restored {} at height {} ({} archive objects) into {}: start it with \
                 `cradle-node run --home {}`",
                m.member,
                m.height,
                m.archives.len(),
                dir.display(),
                dir.display()
            );
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("cradle-node: restore: {e}");
            ExitCode::from(1)
        }
    }
}
