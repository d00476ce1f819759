//! The switch started in process: the engine and a UDP listener on a free loopback port,
//! run as a task of the caller's runtime (so paused time drives its timers).

use std::net::SocketAddr;
use std::time::Duration;

use cluster::DirectorySource;
use domain::{CallEvent, SwitchEvent, Transport};
use proxy::{Listener, ListenerSpec, ProxyConfig, Shared, Switch};
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;

use crate::World;

/// A switch running inside the test.
pub struct TestSwitch {
    /// Where it listens (UDP).
    pub addr: SocketAddr,
    events: mpsc::UnboundedReceiver<CallEvent>,
    _notices: mpsc::UnboundedReceiver<SwitchEvent>,
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<()>>,
}

impl TestSwitch {
    /// Starts a switch over `world` with `cfg` on `udp:127.0.0.1:0`.
    pub async fn start(world: &World, cfg: ProxyConfig) -> TestSwitch {
        let spec = ListenerSpec {
            transport: Transport::Udp,
            addr: "127.0.0.1:0".parse().expect("an address"),
        };
        let listener = Listener::bind(spec).await.expect("a free loopback port");
        let (events_tx, events) = mpsc::unbounded_channel();
        let (notices_tx, notices) = mpsc::unbounded_channel();
        let switch = Switch::start(
            cfg,
            vec![listener],
            DirectorySource::new(world.directory()),
            events_tx,
            notices_tx,
            Shared::local(),
        )
        .expect("the switch starts");
        let addr = switch.local_addrs()[0].addr;
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(switch.run(async {
            let _ = stopped.await;
        }));
        TestSwitch {
            addr,
            events,
            _notices: notices,
            stop: Some(stop),
            task: Some(task),
        }
    }

    /// The next call event (bounded: 600 s of virtual time, so a test on paused time never
    /// hangs; panics past it).
    pub async fn next_event(&mut self) -> CallEvent {
        tokio::time::timeout(Duration::from_secs(600), self.events.recv())
            .await
            .expect("a call event within 600 s")
            .expect("the switch is running")
    }

    /// Waits for the next `Ended` event (skipping the others) and returns it.
    pub async fn ended(&mut self) -> CallEvent {
        loop {
            let e = self.next_event().await;
            if matches!(e, CallEvent::Ended { .. }) {
                return e;
            }
        }
    }

    /// Stops the switch (it drains, then returns).
    pub async fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
    }
}
