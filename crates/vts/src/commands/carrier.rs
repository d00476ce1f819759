//! `vts carrier`: add (never at the switch's own address), prefix lists, list; the routing
//! subcommands (profile, limits, rates…) are in `routing.rs`.

use std::fmt::Write as _;

use domain::CarrierId;
use store::{NewCarrier, Store};

use super::routing;
use crate::cli::CarrierCmd;
use crate::config::Settings;

pub(super) async fn run(
    store: &Store,
    settings: &Settings,
    cmd: CarrierCmd,
) -> crate::error::Result {
    match cmd {
        CarrierCmd::Add {
            name,
            host,
            port,
            transport,
            priority,
            weight,
            limits:
                crate::cli::NewLimits {
                    max_channels,
                    max_cps,
                },
            first_response_ms,
            ring_timeout,
        } => {
            if host
                .trim_start_matches('[')
                .trim_end_matches(']')
                .parse::<std::net::IpAddr>()
                .is_err()
            {
                return Err(format!(
                    "--host {host:?}: an IP address is expected (DNS names come later)"
                )
                .into());
            }
            if port == 0 {
                return Err("--port must be between 1 and 65535".into());
            }
            if let Some(listen) = own_address(&settings.listen, &host, port) {
                return Err(format!(
                    "--host {host} --port {port}: that is the switch's own listen address \
                     ({listen}); every call to it would loop"
                )
                .into());
            }
            let id = store
                .add_carrier(&NewCarrier {
                    name,
                    host,
                    port,
                    transport,
                    priority,
                    weight,
                    max_channels,
                    max_cps,
                    first_response_ms,
                    ring_timeout_s: ring_timeout,
                })
                .await?;
            println!("{id}");
            Ok(())
        }
        CarrierCmd::Allow { id, prefixes } => {
            store
                .add_carrier_prefixes(CarrierId(id), true, &prefixes)
                .await?;
            println!("carrier {id}: allowed {}", prefixes.join(" "));
            Ok(())
        }
        CarrierCmd::Deny { id, prefixes } => {
            store
                .add_carrier_prefixes(CarrierId(id), false, &prefixes)
                .await?;
            println!("carrier {id}: denied {}", prefixes.join(" "));
            Ok(())
        }
        CarrierCmd::List => {
            let carriers = store.list_carriers().await?;
            let health = store.carrier_health().await?;
            let mut out = format!(
                "{:<6} {:<20} {:<24} {:<5} {:>8} {:>6} {:<6} {:<8} {:>8} {:>5} {:<13}  PREFIXES\n",
                "ID",
                "NAME",
                "ADDRESS",
                "PROTO",
                "PRIORITY",
                "WEIGHT",
                "ACTIVE",
                "HEALTH",
                "CHANNELS",
                "CPS",
                "HEADERS"
            );
            let opt = |v: Option<u32>| v.map_or("-".to_string(), |n| n.to_string());
            for c in carriers {
                let mut prefixes = Vec::new();
                if !c.allow.is_empty() {
                    prefixes.push(format!("allow {}", c.allow.join(",")));
                }
                if !c.deny.is_empty() {
                    prefixes.push(format!("deny {}", c.deny.join(",")));
                }
                let state = health
                    .get(&c.id)
                    .map_or("up".to_string(), |(h, _)| h.to_string());
                let _ = writeln!(
                    out,
                    "{:<6} {:<20} {:<24} {:<5} {:>8} {:>6} {:<6} {:<8} {:>8} {:>5} {:<13}  {}",
                    c.id,
                    c.name,
                    format!("{}:{}", c.host, c.port),
                    c.transport,
                    c.priority,
                    c.weight,
                    c.active,
                    state,
                    opt(c.max_channels),
                    opt(c.max_cps),
                    if c.hide_topology {
                        "hide-topology"
                    } else {
                        "-"
                    },
                    prefixes.join("; ")
                );
            }
            print!("{out}");
            Ok(())
        }
        cmd => routing::carrier(store, cmd).await,
    }
}

/// The listen address a carrier at `host`:`port` would be, if it is the switch itself: the
/// same address and port, or a loopback or this host's outbound address on the port of a
/// listener bound to every interface.
fn own_address(
    listen: &[proxy::ListenerSpec],
    host: &str,
    port: u16,
) -> Option<proxy::ListenerSpec> {
    let ip: std::net::IpAddr = host
        .trim_start_matches('[')
        .trim_end_matches(']')
        .parse()
        .ok()?;
    let outbound = std::net::UdpSocket::bind(("0.0.0.0", 0))
        .and_then(|s| s.connect(("192.0.2.1", 9)).and_then(|()| s.local_addr()))
        .ok()
        .map(|a| a.ip());
    listen.iter().copied().find(|l| {
        l.addr.port() == port
            && (l.addr.ip() == ip
                || (l.addr.ip().is_unspecified()
                    && (ip.is_loopback() || ip.is_unspecified() || Some(ip) == outbound)))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_carrier_at_the_switchs_own_address_is_recognised() {
        let any: Vec<proxy::ListenerSpec> = vec!["udp:0.0.0.0:5060".parse().unwrap()];
        assert!(own_address(&any, "127.0.0.1", 5060).is_some());
        assert!(own_address(&any, "127.0.0.1", 5090).is_none());
        assert!(
            own_address(&any, "192.0.2.77", 5060).is_none(),
            "another host"
        );
        let one: Vec<proxy::ListenerSpec> = vec!["udp:127.0.0.1:5080".parse().unwrap()];
        assert!(own_address(&one, "127.0.0.1", 5080).is_some());
        assert!(own_address(&one, "127.0.0.2", 5080).is_none());
    }
}
