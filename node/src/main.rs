//! `cradle-node run --home DIR`: the daemon each member institution runs.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context;
use clap::{Parser, Subcommand};
use cradle_genesis::Home;
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
    /// Run the node whose config, genesis, key and data live in DIR.
    Run {
        #[arg(long)]
        home: PathBuf,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let Command::Run { home } = cli.command;
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
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .init();
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
    let archives = Arc::new(
        ArchiveStore::open(
            &data_dir.join("archives"),
            archive_config.archive_bytes_max,
            archive_config.store_bytes_max,
        )
        .context("opening the archive store")?,
    );
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
        tokio::spawn(async move { http::serve::serve(listener, router, limits, None, None).await });
    }
    let api = tokio::spawn(async move {
        let evicted = api_state.metrics.api_connections_evicted.clone();
        http::serve::serve(
            listener,
            http::router(api_state),
            limits,
            tls,
            Some(evicted),
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
    };
    let mut driver = tokio::spawn(driver::run(parts));
    let result = tokio::select! {
        r = &mut driver => match r {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) => Err(anyhow::Error::new(e).context("consensus driver stopped")),
            Err(e) => Err(anyhow::anyhow!("consensus driver panicked: {e}")),
        },
        r = api => Err(anyhow::anyhow!("api server stopped: {r:?}")),
        _ = shutdown_signal() => {
            info!("shutting down");
            Ok(())
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
