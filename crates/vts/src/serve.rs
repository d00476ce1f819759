//! `vts serve`: opens the store, loads the directory, binds the listeners, and runs the
//! switch with its companions (directory watcher, accounting, control socket, the HTTP
//! server) until SIGINT or SIGTERM; then drains calls (the HTTP server answers until the
//! drain is over, `/readyz` saying so) and writes every CDR before returning. SIGHUP
//! reloads the HTTPS certificate.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use cluster::{BalanceSource, DirectorySource, Period, StatusHandle};
use domain::{CallEvent, SecurityEvent, SwitchEvent};
use proxy::{Guards, Listener, ListenerSpec, ProxyConfig, Shared, Switch};
use store::Store;
use telemetry::latency::Latency;
use tokio::sync::{mpsc, oneshot};
use tracing::info;

use crate::config::Settings;
use crate::{control, http, watcher};

pub(crate) async fn serve(settings: Settings, store: Store) -> Result<(), String> {
    // First: a stop at any moment from here drains and flushes.
    let stop = shutdown_signal()?;
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
    let sip_alive = Arc::new(AtomicBool::new(true));
    let (sip, sip_died) = {
        let (cfg, listen, source) = (proxy_cfg, settings.listen.clone(), source.clone());
        let alive = Alive(sip_alive.clone());
        spawn_guarded("vts-sip", move || {
            let _alive = alive;
            let channels = (events_tx, security_tx);
            sip_thread(cfg, listen, source, channels, shared, ready_tx, stop_rx)
        })
        .map_err(|e| format!("cannot start the SIP thread: {e}"))?
    };
    let (addrs, status, latency, guards, cps) = ready_rx
        .await
        .map_err(|_| "the SIP thread stopped".to_string())??;
    let cdr_state = accounting::CdrState::default();
    let ops = http::SwitchOps {
        store: store.clone(),
        sip_alive,
        status: status.clone(),
        latency: latency.clone(),
        guards: guards.clone(),
        cps,
        cdr: cdr_state.clone(),
        gate: gate.clone(),
    };
    let web = match &settings.http {
        Some(h) => match start_http(h, ops).await {
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
        },
        RETENTION_EVERY,
    ));
    tokio::spawn(record_events(store.clone(), security_rx));
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
    // The HTTP server answered through the drain (`/readyz`: draining); now it stops,
    // letting requests in flight finish.
    if let Some(w) = web
        && let Ok(w) = Arc::try_unwrap(w)
    {
        w.stop(HTTP_GRACE).await;
    }
    watcher.abort();
    retention.abort();
    let written = accounting.await.unwrap_or(0);
    let _ = std::fs::remove_file(&control_path);
    info!(cdrs = written, "stopped");
    match died {
        // A non-zero exit: systemd (Restart=on-failure) starts a working switch.
        Some(why) => Err(format!("the SIP thread panicked ({why}); stopped")),
        None => Ok(()),
    }
}

/// How often retention runs.
const RETENTION_EVERY: std::time::Duration = std::time::Duration::from_secs(3600);

/// Requests in flight get this long to finish when the HTTP server stops.
const HTTP_GRACE: std::time::Duration = std::time::Duration::from_secs(5);

/// Clears the flag when dropped: when the SIP thread returns or unwinds.
struct Alive(Arc<AtomicBool>);

impl Drop for Alive {
    fn drop(&mut self) {
        self.0.store(false, Ordering::Relaxed);
    }
}

/// Starts the HTTP server (health, readiness, metrics).
async fn start_http(
    h: &crate::config::HttpSettings,
    ops: http::SwitchOps,
) -> std::io::Result<web::Running> {
    if h.tls.is_some() {
        // rustls with ring, as sqlx and the rest of the process (a second call is a no-op).
        // rustls 0.23.48 deprecates ring's provider for lacking post-quantum key exchange;
        // the one with it (aws-lc-rs) is a large C build we keep out (reference/crates.md).
        #[allow(deprecated)]
        let _ = rustls::crypto::ring::default_provider().install_default();
    }
    let router = web::router(
        Arc::new(ops),
        h.metrics_token.as_ref().map(|t| t.0.as_str()),
        h.request_timeout,
        h.body_limit,
    );
    let cfg = web::Config {
        listen: h.listen,
        tls: h.tls.clone(),
        header_timeout: h.header_timeout,
    };
    web::serve(cfg, router).await
}

/// SIGHUP reloads the HTTPS certificate and key from their files (open connections keep
/// theirs; a pair that does not load leaves the old one in use, logged).
fn reload_on_sighup(web: Arc<web::Running>) -> Result<(), String> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut hup = signal(SignalKind::hangup()).map_err(|e| format!("cannot handle SIGHUP: {e}"))?;
    tokio::spawn(async move {
        while hup.recv().await.is_some() {
            match web.reload_tls().await {
                Ok(()) => info!("SIGHUP: the HTTPS certificate is reloaded"),
                Err(e) => {
                    tracing::error!(error = %e, "SIGHUP: the HTTPS certificate is not reloaded")
                }
            }
        }
    });
    Ok(())
}

/// Runs `f` on a thread of its own; the receiver gets the panic message if it panics
/// (and is dropped without one if it returns).
fn spawn_guarded(
    name: &str,
    f: impl FnOnce() + Send + 'static,
) -> std::io::Result<(std::thread::JoinHandle<()>, oneshot::Receiver<String>)> {
    let (died_tx, died_rx) = oneshot::channel();
    let handle = std::thread::Builder::new()
        .name(name.into())
        .spawn(move || {
            if let Err(panic) = std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)) {
                let why = panic
                    .downcast_ref::<&str>()
                    .map(|s| (*s).to_string())
                    .or_else(|| panic.downcast_ref::<String>().cloned())
                    .unwrap_or_else(|| "a panic".into());
                let _ = died_tx.send(why);
            }
        })?;
    Ok((handle, died_rx))
}

/// Waits for a stop signal, or for the SIP thread to die: `Some(why)` when it panicked.
/// (A SIP thread that returns on its own — it only does after a stop — counts as a stop.)
async fn stop_or_death(
    stop: impl Future<Output = ()>,
    died: oneshot::Receiver<String>,
) -> Option<String> {
    tokio::select! {
        _ = stop => None,
        why = died => why.ok(),
    }
}

/// The per-install secret keying the MAC in the switch's branches (`DATA_DIR/branch.key`,
/// 32 random bytes, mode 0600), made on the first start.
fn branch_key(data_dir: &std::path::Path) -> Result<proxy::BranchKey, String> {
    use std::io::Write as _;
    use std::os::unix::fs::OpenOptionsExt as _;
    let path = data_dir.join("branch.key");
    let read = |bytes: Vec<u8>| {
        <[u8; 32]>::try_from(bytes.as_slice())
            .map(proxy::BranchKey::new)
            .map_err(|_| {
                format!(
                    "{}: not a 32-byte key (remove it to make a new one)",
                    path.display()
                )
            })
    };
    match std::fs::read(&path) {
        Ok(bytes) => return read(bytes),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(format!("{}: {e}", path.display())),
    }
    let key = proxy::BranchKey::random();
    let tmp = data_dir.join("branch.key.tmp");
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&tmp)
        .map_err(|e| format!("{}: {e}", tmp.display()))?;
    f.write_all(key.secret())
        .and_then(|()| f.sync_all())
        .and_then(|()| std::fs::rename(&tmp, &path))
        .map_err(|e| format!("{}: {e}", path.display()))?;
    Ok(key)
}

/// The in-process shared state (one node), with the minute counters started from the
/// usage counters of each customer's local day and month.
async fn shared_state(store: &Store, balances: &BalanceSource) -> Result<Shared, String> {
    let now_ms = domain::now_ms();
    let mut shared = Shared::local();
    shared.balances = balances.clone();
    // Every zone's current month starts after the first of the UTC month two days ago.
    let from = domain::Zone::utc().date(now_ms - 2 * 86_400_000);
    let from = format!("{}-01", &from[..7]);
    let used = store
        .usage_seconds_since(&from)
        .await
        .map_err(|e| format!("cannot read the minutes used: {e}"))?;
    let directory = store.load_directory().await.map_err(|e| e.to_string())?;
    for customer in directory.customers() {
        let today = customer.timezone.date(now_ms);
        let local = customer.local_ms(now_ms);
        let (mut day, mut month) = (0, 0);
        for (_, d, seconds) in used.iter().filter(|(c, _, _)| *c == customer.id) {
            if *d == today {
                day += seconds;
            }
            if d.get(..7) == today.get(..7) {
                month += seconds;
            }
        }
        shared
            .minutes
            .seed(customer.id.0, Period::day_of(local), day * 1000);
        shared
            .minutes
            .seed(customer.id.0, Period::month_of(local), month * 1000);
    }
    Ok(shared)
}

type Ready = Result<
    (
        Vec<ListenerSpec>,
        StatusHandle,
        Latency,
        Guards,
        telemetry::CpsMeter,
    ),
    String,
>;

fn sip_thread(
    cfg: ProxyConfig,
    listen: Vec<ListenerSpec>,
    source: DirectorySource,
    (events, security): (
        mpsc::UnboundedSender<CallEvent>,
        mpsc::UnboundedSender<SwitchEvent>,
    ),
    shared: Shared,
    ready: oneshot::Sender<Ready>,
    stop: oneshot::Receiver<()>,
) {
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            let _ = ready.send(Err(format!("cannot start the SIP runtime: {e}")));
            return;
        }
    };
    runtime.block_on(async move {
        let mut listeners = Vec::new();
        for spec in &listen {
            match Listener::bind(*spec).await {
                Ok(l) => listeners.push(l),
                Err(e) => {
                    let _ = ready.send(Err(format!("cannot listen on {spec}: {e}")));
                    return;
                }
            }
        }
        let switch = match Switch::start(cfg, listeners, source, events, security, shared) {
            Ok(s) => s,
            Err(e) => {
                let _ = ready.send(Err(format!("cannot start the transports: {e}")));
                return;
            }
        };
        let _ = ready.send(Ok((
            switch.local_addrs().to_vec(),
            switch.status(),
            switch.latency(),
            switch.guards(),
            switch.cps(),
        )));
        // Debug builds only (tests): `VTS_DEBUG_PANIC_SIP=1` panics the SIP thread once it
        // is ready, to prove the process then exits non-zero. Release builds have no such
        // switch.
        #[cfg(debug_assertions)]
        if std::env::var_os("VTS_DEBUG_PANIC_SIP").is_some_and(|v| v == "1") {
            panic!("VTS_DEBUG_PANIC_SIP=1 (debug builds only)");
        }
        switch
            .run(async {
                let _ = stop.await;
            })
            .await;
    });
}

/// Stores what the switch's events decide and report, each event already logged where it
/// happened: automatic blocks (with their `security.blocked` event) and carrier health
/// (with `carrier.up|suspect|down`), written in one transaction each; refusals of customers'
/// calls, limit warnings and caps reached appended to the event stream in batches. Events
/// the store does not take wait (up to [`EVENTS_HELD`]) and go with the next batch.
async fn record_events(store: Store, mut events: mpsc::UnboundedReceiver<SwitchEvent>) {
    let mut batch = Vec::with_capacity(256);
    let mut held: Vec<store::NewEvent> = Vec::new();
    let mut dropped = 0u64;
    while events.recv_many(&mut batch, 256).await > 0 {
        for event in batch.drain(..) {
            match event {
                SwitchEvent::Security(e) => record_block(&store, e).await,
                SwitchEvent::HealthChanged {
                    carrier, to, at_ms, ..
                } => {
                    if let Err(e) = store.set_carrier_health(carrier, to, at_ms).await {
                        tracing::error!(carrier = carrier.0, error = %e, "cannot record a carrier's health (a restart starts from the previous one)");
                    }
                }
                other => held.extend(stream_event(&other)),
            }
        }
        if held.is_empty() {
            continue;
        }
        match store.append_events(&held).await {
            Ok(()) => held.clear(),
            Err(e) => {
                if held.len() > EVENTS_HELD {
                    let over = held.len() - EVENTS_HELD;
                    held.drain(..over);
                    dropped += over as u64;
                }
                tracing::error!(error = %e, held = held.len(), dropped, "cannot append switch events to the event stream; they wait for the next batch");
            }
        }
    }
    if !held.is_empty()
        && let Err(e) = store.append_events(&held).await
    {
        tracing::error!(error = %e, lost = held.len(), "switch events not appended at shutdown");
    }
}

/// Switch events held in memory while the store refuses them; past it the oldest go.
const EVENTS_HELD: usize = 100_000;

/// The event-stream entry of a switch event with no write of its own (`None`: not one for
/// the stream: a stranger's refusal is a security log line, and floods end in a block).
fn stream_event(event: &SwitchEvent) -> Option<store::NewEvent> {
    use serde_json::json;
    use store::NewEvent;
    Some(match *event {
        SwitchEvent::Refused {
            customer: Some(customer),
            source,
            code,
            reason,
        } => NewEvent::new(
            "call.refused",
            json!({ "customer_id": customer.0, "source": source.to_string(), "code": code, "reason": reason }),
        )
        .customer(customer.0),
        SwitchEvent::LimitWarning {
            customer,
            limit,
            used,
            max,
        } => NewEvent::new(
            "limit.warning",
            json!({ "customer_id": customer.0, "limit": limit.as_str(), "used": used, "max": max }),
        )
        .customer(customer.0),
        SwitchEvent::CapReached { cap, limit, hits } => NewEvent::new(
            "cap.reached",
            json!({ "cap": cap.as_str(), "limit": limit, "hits": hits }),
        ),
        _ => return None,
    })
}

/// Writes a block the switch decided on its own to the store, where it shows in `vts block
/// list`, reaches every node, and can be lifted with `vts block remove`. Until the entry is
/// back in the directory the engine holds the block itself.
async fn record_block(store: &Store, event: SecurityEvent) {
    let (source, kind, reason, until) = match event {
        SecurityEvent::FloodDetected {
            source,
            threshold,
            blocked_until_ms,
        } => (
            source,
            "flood",
            format!("flood: more than {threshold} INVITEs a second"),
            blocked_until_ms,
        ),
        SecurityEvent::AuthFailures {
            source,
            threshold,
            window_s,
            blocked_until_ms,
        } => (
            source,
            "auth_fail",
            format!("auth_fail: more than {threshold} refused INVITEs in {window_s} s"),
            blocked_until_ms,
        ),
    };
    let net = auto_block_network(source);
    if let Err(e) = store.add_auto_block(net, kind, &reason, until).await {
        tracing::error!(%source, error = %e, "cannot record an automatic block (it holds on this node only)");
    }
}

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

/// The network an automatic block covers: the address, or an IPv6 source's /64 (the engine
/// counts IPv6 sources per /64).
fn auto_block_network(source: std::net::IpAddr) -> ipnet::IpNet {
    match source {
        std::net::IpAddr::V6(_) => ipnet::IpNet::new(source, 64)
            .map(|n| n.trunc())
            .unwrap_or_else(|_| ipnet::IpNet::from(source)),
        v4 => ipnet::IpNet::from(v4),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A panic on the guarded thread reaches the waiting task (which then stops the switch
    /// with an error) instead of leaving a process that answers nothing.
    #[tokio::test]
    async fn a_panic_on_the_sip_thread_ends_the_wait_with_its_message() {
        let (handle, died) = spawn_guarded("t", || panic!("boom")).unwrap();
        let why = stop_or_death(std::future::pending(), died).await;
        assert_eq!(why.as_deref(), Some("boom"));
        handle.join().unwrap();

        let (handle, died) = spawn_guarded("t", || {}).unwrap();
        assert_eq!(stop_or_death(std::future::pending(), died).await, None);
        handle.join().unwrap();

        let (handle, died) = spawn_guarded("t", std::thread::park).unwrap();
        let why = stop_or_death(std::future::ready(()), died).await;
        assert_eq!(why, None, "a stop is a stop");
        handle.thread().unpark();
        handle.join().unwrap();
    }
}
