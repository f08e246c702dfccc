//! `cradle-node run`: the member daemon, from an opened home to a clean stop.
//!
//! Here rather than in the binary so that the clock-fault tests can start the very same daemon
//! from a binary of their own (one whose clock reads wrong); see `cradle_genesis::clock`.

use std::sync::Arc;

use anyhow::Context;
use cradle_genesis::Home;
use cradle_genesis::config::LogFormat;
use tokio::sync::{mpsc, watch};
use tracing::{error, info, warn};

use crate::custodian::{ArchiveStore, Custodian};
use crate::driver::{self, DriverConfig, DriverParts, INGRESS_CAPACITY, Status};
use crate::http::{self, HttpState, auth::ReplayCache};
use crate::members::Members;
use crate::mempool::MempoolConfig;
use crate::metrics::Metrics;
use crate::network::{self, NetworkConfig};
use crate::storage::Store;
use crate::submit::Submitter;

/// Sets up logging as the home's config says, then runs the node until SIGTERM or Ctrl-C
/// (graceful, see `shutdown_grace_ms`) or a fatal error, which it logs and returns.
pub fn start(home: Home) -> anyhow::Result<()> {
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
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("cannot start the runtime")?;
    runtime.block_on(run(home)).inspect_err(|e| error!("{e:#}"))
}

async fn run(home: Home) -> anyhow::Result<()> {
    let genesis = home.consortium().context("genesis")?;
    let member = home.member_name().to_string();
    let params = home.genesis.consensus.clone();
    let m = &home.config.mempool;
    let mempool = MempoolConfig {
        txs_max: m.txs_max,
        bytes_max: usize::try_from(m.bytes_max).unwrap_or(usize::MAX),
        access_txs_max: m.access_txs_max,
        access_bytes_max: usize::try_from(m.access_bytes_max).unwrap_or(usize::MAX),
    };
    let config = DriverConfig::from_genesis(&params, mempool);
    let data_dir = home.data_dir();
    std::fs::create_dir_all(&data_dir)
        .with_context(|| format!("creating {}", data_dir.display()))?;
    let store = Arc::new(Store::open(&data_dir.join("ledger")).context("opening the store")?);
    // The member sets since genesis, as governance changed them: the node starts under the one
    // in force at its next height.
    let tip = store.tip().context("reading the chain tip")?;
    let members = Arc::new(
        Members::load(genesis, &*store, tip.map_or(0, |t| t.height))
            .context("loading the member sets")?,
    );
    let consortium = members.current();
    info!(
        member = %member,
        chain_id = %hex::encode(consortium.chain_id),
        p2p = %home.config.p2p.listen,
        api = %home.config.api.listen,
        ?config,
        limits = ?consortium.limits,
        policy = ?consortium.policy,
        epoch = consortium.epoch,
        "starting cradle-node"
    );

    // The peers are the members in force, not genesis's: members come and go by vote, and a
    // joining member is in no genesis at all.
    let net_config = NetworkConfig::for_peers(
        &home.keypair,
        &home.config.p2p.listen,
        crate::members::peers_of(&consortium, &home.keypair.public_key()),
    )
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
            let backend = crate::custodian::s3::S3Backend::new(
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
    )
    .with_disk_reserve(crate::submit::DiskReserve {
        dir: data_dir.join("ledger"),
        bytes: archive_config.disk_reserve_bytes,
    });
    let custodian = Arc::new(
        Custodian::new(
            cradle_ledger::Keypair::from_secret_parts(
                &home.keypair.ed25519_seed(),
                &home.keypair.x25519_secret(),
            ),
            archives,
            store.clone(),
            members.clone(),
            submitter.clone(),
            metrics.clone(),
        )
        .with_block_time_lead(
            params
                .pacing
                .heartbeat_ms
                .saturating_add(config.clock_drift_ms_max),
        )
        .with_earlier_keys(
            home.earlier_keys
                .iter()
                .map(|k| {
                    cradle_ledger::Keypair::from_secret_parts(&k.ed25519_seed(), &k.x25519_secret())
                })
                .collect(),
        ),
    );
    let directory = Arc::new(
        crate::directory::Directory::open(&data_dir.join("staff-directory.json"))
            .context("opening the staff directory")?,
    );
    // Synced: the last block is at most three heartbeats and a proposal's timeout old.
    let ready_lag_ms = params
        .pacing
        .heartbeat_ms
        .saturating_mul(3)
        .saturating_add(params.timeouts.timeout_propose_ms)
        .max(5_000);
    let backups = Arc::new(crate::ops::backup::Checkpoints::new(
        data_dir.clone(),
        store.clone(),
    ));
    let grace = std::time::Duration::from_millis(home.config.shutdown_grace_ms);
    let (api_stop, api_stopping) = watch::channel(false);
    let (driver_stop, driver_stopping) = watch::channel(false);
    let api_state = Arc::new(HttpState {
        members: members.clone(),
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
    // The custodian re-wraps her archive keys when a patient's keys change.
    tokio::spawn(crate::custodian::rewrap::follow(
        api_state.custodian.clone(),
        crate::custodian::rewrap::cursor_path(&data_dir),
        api_state.status.clone(),
        api_stopping.clone(),
    ));
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
            api_config.member_tls.then(|| {
                let members = members.clone();
                Arc::new(move |key: &cradle_ledger::PublicKey| {
                    members.current().signer(key).is_some()
                }) as http::tls::MemberCheck
            }),
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
        members,
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
