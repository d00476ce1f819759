//! What the switch's events leave behind: automatic blocks and carrier health written to
//! the store (each with its event, in one transaction), and the rest of the events appended
//! to the durable event stream in batches.

use domain::{SecurityEvent, SwitchEvent};
use store::Store;
use tokio::sync::mpsc;

/// Stores what the switch's events decide and report, each event already logged where it
/// happened: automatic blocks (with their `security.blocked` event) and carrier health
/// (with `carrier.up|suspect|down`), written in one transaction each; refusals of customers'
/// calls, limit warnings and caps reached appended to the event stream in batches. Events
/// the store does not take wait (up to [`EVENTS_HELD`]) and go with the next batch.
pub(super) async fn record_events(store: Store, mut events: mpsc::UnboundedReceiver<SwitchEvent>) {
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
