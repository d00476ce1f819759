//! The SIP thread: its own single-threaded runtime running the `Switch`, started with the
//! state it shares (directory, balances, minutes seeded from usage, the branch key), with
//! its death (a panic) reported to the waiting task.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use cluster::{BalanceSource, DirectorySource, Period, StatusHandle};
use domain::{CallEvent, SwitchEvent};
use proxy::{Guards, Listener, ListenerSpec, ProxyConfig, Shared, Switch};
use store::Store;
use telemetry::latency::Latency;
use tokio::sync::{mpsc, oneshot};

/// Clears the flag when dropped: when the SIP thread returns or unwinds.
pub(super) struct Alive(pub(super) Arc<AtomicBool>);

impl Drop for Alive {
    fn drop(&mut self) {
        self.0.store(false, Ordering::Relaxed);
    }
}

/// Runs `f` on a thread of its own; the receiver gets the panic message if it panics
/// (and is dropped without one if it returns).
pub(super) fn spawn_guarded(
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
pub(super) async fn stop_or_death(
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
pub(super) fn branch_key(data_dir: &std::path::Path) -> Result<proxy::BranchKey, String> {
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
pub(super) async fn shared_state(
    store: &Store,
    balances: &BalanceSource,
) -> Result<Shared, String> {
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

pub(super) type Ready = Result<
    (
        Vec<ListenerSpec>,
        StatusHandle,
        Latency,
        Guards,
        telemetry::CpsMeter,
    ),
    String,
>;

pub(super) fn sip_thread(
    cfg: ProxyConfig,
    listen: Vec<ListenerSpec>,
    source: DirectorySource,
    (events, security): (
        mpsc::UnboundedSender<CallEvent>,
        mpsc::UnboundedSender<SwitchEvent>,
    ),
    (shared, capture): (Shared, Option<telemetry::capture::Tap>),
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
        let mut switch = match Switch::start(cfg, listeners, source, events, security, shared) {
            Ok(s) => s,
            Err(e) => {
                let _ = ready.send(Err(format!("cannot start the transports: {e}")));
                return;
            }
        };
        if let Some(tap) = capture {
            switch.capture(tap);
        }
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
