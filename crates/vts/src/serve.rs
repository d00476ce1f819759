//! `vts serve`: opens the store, loads the directory, binds the listeners, and runs the
//! switch with its companions (directory watcher, accounting, control socket) until SIGINT
//! or SIGTERM; then drains calls and writes every CDR before returning.

use proxy::{DirectorySource, Listener, Switch};
use store::Store;
use tokio::sync::mpsc;
use tracing::info;

use crate::config::Settings;
use crate::{accounting, control, watcher};

pub(crate) async fn serve(settings: Settings, store: Store) -> Result<(), String> {
    let directory = store.load_directory().await.map_err(|e| e.to_string())?;
    let source = DirectorySource::new(directory);
    let mut listeners = Vec::new();
    for spec in &settings.listen {
        let l = Listener::bind(*spec)
            .await
            .map_err(|e| format!("cannot listen on {spec}: {e}"))?;
        listeners.push(l);
    }
    let (events_tx, events_rx) = mpsc::unbounded_channel();
    let switch = Switch::start(settings.proxy.clone(), listeners, source.clone(), events_tx)
        .map_err(|e| format!("cannot start the transports: {e}"))?;
    let control_path = settings.control_socket();
    let control =
        control::bind(&control_path).map_err(|e| format!("{}: {e}", control_path.display()))?;
    tokio::spawn(control::serve(control, switch.status()));
    let watcher = tokio::spawn(watcher::run(store.clone(), source));
    let accounting = tokio::spawn(accounting::run(
        store,
        events_rx,
        settings.cdr_batch,
        settings.cdr_flush,
    ));
    for spec in switch.local_addrs() {
        info!("listening on {spec}");
    }
    // Tests and scripts wait for this line on stdout.
    println!(
        "vts: ready on {}",
        switch
            .local_addrs()
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join(" ")
    );
    switch.run(shutdown_signal()).await;
    watcher.abort();
    let written = accounting.await.unwrap_or(0);
    let _ = std::fs::remove_file(&control_path);
    info!(cdrs = written, "stopped");
    Ok(())
}

/// SIGINT or SIGTERM.
async fn shutdown_signal() {
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending().await,
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        () = term => {}
    }
}
