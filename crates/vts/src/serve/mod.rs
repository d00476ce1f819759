//! `vts serve`: opens the store, loads the directory, binds the listeners, and runs the
//! switch with its companions (directory watcher, accounting, control socket, the HTTP
//! server) until SIGINT or SIGTERM; then drains calls (the HTTP server answers until the
//! drain is over, `/readyz` saying so) and writes every CDR before returning. SIGHUP
//! reloads the HTTPS certificate.
//!
//! Files: `mod.rs` (the start and the stop, in order), `sip.rs` (the SIP thread),
//! `notices.rs` (switch events to the store and the event stream), `watcher.rs` (the
//! directory and balances from the store), `control.rs` (the control socket of `vts
//! status`), `web_server.rs` and `ops.rs` (the HTTP server and what it reads).

use std::sync::Arc;
use std::sync::atomic::AtomicBool;

use cluster::{BalanceSource, DirectorySource};
use store::Store;
use tokio::sync::{mpsc, oneshot};
use tracing::info;

pub(crate) mod control;
mod notices;
mod ops;
mod sip;
mod watcher;
mod web_server;

use crate::config::Settings;
use sip::{Alive, branch_key, shared_state, sip_thread, spawn_guarded, stop_or_death};
use web_server::{HTTP_GRACE, reload_on_sighup, start_http};

pub(crate) async fn serve(settings: Settings, store: Store) -> Result<(), String> {
    // First: a stop at any moment from here drains and flushes.
    let stop = shutdown_signal()?;
    // rustls with ring for every TLS of the process (HTTPS, webhooks to https:// receivers).
    // rustls 0.23.48 deprecates ring's provider for lacking post-quantum key exchange; the
    // one with it (aws-lc-rs) is a large C build we keep out (reference/crates.md).
    #[allow(deprecated)]
    let _ = rustls::crypto::ring::default_provider().install_default();
    // The metrics recorder, before the engine registers its counters with it. Without the
    // HTTP server nothing would read them: the counters then stay no-ops.
    if settings.http.is_some() {
        telemetry::exporter();
    }
    let directory = store.load_directory().await.map_err(|e| e.to_string())?;
    let source = DirectorySource::new(directory);
    source.store_blocklist(
        store
            .load_blocklist()
            .await
            .map_err(|e| format!("cannot read the block list: {e}"))?,
    );
    let balances = BalanceSource::new(
        store
            .balances()
            .await
            .map_err(|e| format!("cannot read the balances: {e}"))?,
    );
    let shared = shared_state(&store, &balances).await?;
    let gate = shared.accounting.clone();
    let (events_tx, events_rx) = mpsc::unbounded_channel();
    let (security_tx, security_rx) = mpsc::unbounded_channel();
    let (ready_tx, ready_rx) = oneshot::channel();
    let (stop_tx, stop_rx) = oneshot::channel::<()>();
    // The SIP engine and its sockets get a thread and a single-threaded runtime of their own:
    // no work stealing, no cross-thread wake-ups on the call path, and the database work of
    // this runtime never shares a thread with it.
    let mut proxy_cfg = settings.proxy.clone();
    proxy_cfg.branch_key = branch_key(&settings.data_dir)?;
    // HEP export and stored traces: every message the engine receives or sends, copied off
    // the call path to one consumer.
    let (capture, capture_counts, capture_task) = start_capture(&settings, &store).await?;
    let sip_alive = Arc::new(AtomicBool::new(true));
    let (sip, sip_died) = {
        let (cfg, listen, source) = (proxy_cfg, settings.listen.clone(), source.clone());
        let alive = Alive(sip_alive.clone());
        spawn_guarded("vts-sip", move || {
            let _alive = alive;
            let channels = (events_tx, security_tx);
            sip_thread(
                cfg,
                listen,
                source,
                channels,
                (shared, capture),
                ready_tx,
                stop_rx,
            )
        })
        .map_err(|e| format!("cannot start the SIP thread: {e}"))?
    };
    let (addrs, status, latency, guards, cps) = ready_rx
        .await
        .map_err(|_| "the SIP thread stopped".to_string())??;
    let cdr_state = accounting::CdrState::default();
    let webhook_counts = Arc::new(jobs::webhooks::Counts::default());
    let ops = ops::SwitchOps {
        webhooks: webhook_counts.clone(),
        store: store.clone(),
        sip_alive,
        status: status.clone(),
        latency: latency.clone(),
        guards: guards.clone(),
        cps,
        cdr: cdr_state.clone(),
        gate: gate.clone(),
        capture: capture_counts,
    };
    // The API's live calls are asked of accounting, which holds every open call.
    let (live_calls, calls_rx) = cluster::LiveCalls::channel();
    let api = web::api::Api::new(
        store.clone(),
        Some(web::api::Live {
            status: status.clone(),
            directory: source.clone(),
            calls: live_calls,
            max_attempts: settings.proxy.max_attempts,
        }),
        &settings.api,
    );
    let web = match &settings.http {
        Some(h) => match start_http(h, ops, api).await {
            Ok(running) => Some(Arc::new(running)),
            Err(e) => {
                // Nothing was taken yet: stop the SIP thread and say why.
                let _ = stop_tx.send(());
                let _ = tokio::task::spawn_blocking(move || sip.join()).await;
                return Err(e.to_string());
            }
        },
        None => None,
    };
    if let Some(w) = &web
        && w.is_tls()
    {
        reload_on_sighup(w.clone())?;
    }
    let control_path = settings.control_socket();
    let control =
        control::bind(&control_path).map_err(|e| format!("{}: {e}", control_path.display()))?;
    tokio::spawn(control::serve(
        control,
        status,
        latency,
        (source.clone(), balances.clone()),
        guards,
        cdr_state.clone(),
    ));
    let source_for_rating = source.clone();
    let watcher = tokio::spawn(watcher::run(store.clone(), source, balances.clone()));
    let retention = tokio::spawn(jobs::retention::run(
        store.clone(),
        jobs::retention::Retention {
            events: settings.events_retention,
            traces: settings.traces.and_then(|t| t.retention),
            deliveries: settings.webhooks.log_retention,
        },
        RETENTION_EVERY,
    ));
    // Webhooks: deliveries from the event stream (jobs::webhooks); HTTPS to receivers uses
    // rustls with ring, as the rest of the process.
    let webhooks = tokio::spawn(jobs::webhooks::run(
        store.clone(),
        settings.webhooks.delivery,
        webhook_counts,
    ));
    tokio::spawn(notices::record_events(store.clone(), security_rx));
    let accounting = tokio::spawn(accounting::run(
        accounting::Sink {
            store,
            balances: balances.clone(),
            gate,
            quarantine: accounting::quarantine::dir_in(&settings.data_dir),
            state: cdr_state.clone(),
        },
        source_for_rating,
        events_rx,
        calls_rx,
        accounting::Limits {
            batch: settings.cdr_batch,
            memory_queue: settings.cdr_memory_queue,
            log_max_bytes: settings.cdr_log_max_bytes,
        },
        settings.cdr_flush,
        settings.data_dir.join("wal"),
    ));
    for spec in &addrs {
        info!("listening on {spec}");
    }
    if let Some(w) = &web {
        let scheme = if w.is_tls() { "https" } else { "http" };
        info!("HTTP on {scheme}://{}", w.local_addr);
    }
    // Tests and scripts wait for this line on stdout.
    println!(
        "vts: ready on {}",
        addrs
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join(" ")
    );
    let died = stop_or_death(stop, sip_died).await;
    if let Some(why) = &died {
        tracing::error!(panic = %why, "the SIP thread panicked: no call can be taken; writing the CDRs, then exiting with an error");
    }
    let _ = stop_tx.send(());
    // The engine drains its calls; its end drops the event sender, which ends accounting.
    let _ = tokio::task::spawn_blocking(move || sip.join()).await;
    // The engine's end closed the capture queue: what is left goes to the HEP collector and
    // the stored traces.
    if let Some(task) = capture_task
        && tokio::time::timeout(CAPTURE_DRAIN, task).await.is_err()
    {
        tracing::warn!("capture: messages still queued at shutdown were not exported or stored");
    }
    // The HTTP server answered through the drain (`/readyz`: draining); now it stops,
    // letting requests in flight finish.
    if let Some(w) = web
        && let Ok(w) = Arc::try_unwrap(w)
    {
        w.stop(HTTP_GRACE).await;
    }
    watcher.abort();
    retention.abort();
    // Deliveries in flight are sent again after a restart (receivers dedupe on
    // X-Vts-Delivery).
    webhooks.abort();
    let written = accounting.await.unwrap_or(0);
    let _ = std::fs::remove_file(&control_path);
    info!(cdrs = written, "stopped");
    match died {
        // A non-zero exit: systemd (Restart=on-failure) starts a working switch.
        Some(why) => Err(format!("the SIP thread panicked ({why}); stopped")),
        None => Ok(()),
    }
}

/// Messages in flight to the HEP sender; past it copies are dropped (counted), never waited
/// for.
const CAPTURE_QUEUE: usize = 65_536;

/// How long the capture consumer gets at shutdown for the messages still queued.
const CAPTURE_DRAIN: std::time::Duration = std::time::Duration::from_secs(5);

/// Starts the consumer of the engine's copies of every message, when HEP or stored traces
/// are on: the engine's end of the queue, the counters `/metrics` reads, the task.
async fn start_capture(
    settings: &Settings,
    store: &Store,
) -> Result<
    (
        Option<telemetry::capture::Tap>,
        Option<ops::CaptureCounts>,
        Option<tokio::task::JoinHandle<()>>,
    ),
    String,
> {
    if settings.hep.is_none() && settings.traces.is_none() {
        return Ok((None, None, None));
    }
    let (tap, taken) = telemetry::capture::Tap::channel(CAPTURE_QUEUE);
    let counts = ops::CaptureCounts {
        dropped: taken.dropped.clone(),
        hep: None,
        traces: None,
    };
    let mut counts = counts;
    let hep = match &settings.hep {
        Some(target) => {
            let sent = Arc::new(telemetry::hep::Sent::default());
            counts.hep = Some(sent.clone());
            let sender = telemetry::hep::Sender::new(target.clone(), sent)
                .await
                .map_err(|e| format!("HEP export: no socket to send from: {e}"))?;
            Some(sender)
        }
        None => None,
    };
    let traces = settings.traces.map(|t| {
        let c = Arc::new(jobs::capture::TraceCounts::default());
        counts.traces = Some(c.clone());
        jobs::capture::Traces {
            store: store.clone(),
            recorder: telemetry::trace::Recorder::new(t.policy),
            max_bytes: t.max_bytes,
            counts: c,
        }
    });
    let task = tokio::spawn(jobs::capture::run(taken, hep, traces));
    Ok((Some(tap), Some(counts), Some(task)))
}

/// How often retention runs.
const RETENTION_EVERY: std::time::Duration = std::time::Duration::from_secs(3600);

/// SIGINT or SIGTERM.
/// Installs the SIGINT and SIGTERM handlers now and returns the future that completes on
/// either. Installed before the ready line: a stop that follows it at once must drain and
/// flush, not meet the default action (an immediate exit).
fn shutdown_signal() -> Result<impl Future<Output = ()>, String> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term =
        signal(SignalKind::terminate()).map_err(|e| format!("cannot handle SIGTERM: {e}"))?;
    let mut int =
        signal(SignalKind::interrupt()).map_err(|e| format!("cannot handle SIGINT: {e}"))?;
    Ok(async move {
        tokio::select! {
            _ = term.recv() => {}
            _ = int.recv() => {}
        }
    })
}
