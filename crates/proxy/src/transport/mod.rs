//! UDP and TCP transports. Receiving tasks hand whole messages to the engine over one
//! channel; sending never blocks the engine (UDP `try_send_to`, TCP per-connection writer
//! queues bounded in bytes). TCP connections are shared by remote address: an accepted
//! connection carries responses and in-dialog requests back, and a connection we open to a
//! carrier carries its responses in.
//!
//! Everything a stranger can make the transports hold is bounded (docs/SECURITY.md,
//! "Transport"): connections in all and per address, bytes queued per connection, time to
//! send a message and idle time, connects in progress and their duration; accept backs off
//! when the process runs out of descriptors; only client-transaction requests may open a
//! connection ([`Connect`]); log lines of one cause are rate-limited ([`crate::guard::Throttle`]).

mod tcp;
mod udp;

use std::fmt;
use std::io;
use std::net::SocketAddr;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use domain::Transport;
use tokio::net::{TcpListener, UdpSocket};
use tokio::sync::mpsc;
use tracing::info;

use crate::guard::Throttle;

/// A listen address from the command line or configuration: `udp:ADDR:PORT` or
/// `tcp:ADDR:PORT` (IPv6 as `udp:[::1]:5060`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ListenerSpec {
    pub transport: Transport,
    pub addr: SocketAddr,
}

impl FromStr for ListenerSpec {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let (t, addr) = s
            .split_once(':')
            .ok_or_else(|| format!("{s:?}: expected udp:ADDR:PORT or tcp:ADDR:PORT"))?;
        let transport = t.parse::<Transport>().map_err(|e| format!("{s:?}: {e}"))?;
        let addr = addr
            .parse::<SocketAddr>()
            .map_err(|e| format!("{s:?}: {addr:?} is not ADDR:PORT ({e})"))?;
        Ok(ListenerSpec { transport, addr })
    }
}

impl fmt::Display for ListenerSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.transport, self.addr)
    }
}

/// A bound socket the switch listens on.
#[derive(Debug)]
pub enum Listener {
    Udp(UdpSocket),
    Tcp(TcpListener),
}

/// Socket buffers asked for UDP listeners: bursts of thousands of messages must wait in the
/// kernel, not be dropped, while the engine works. The kernel caps them at
/// `net.core.rmem_max` / `wmem_max` (raise those for high rates; see docs/PERFORMANCE.md).
pub const UDP_BUFFER_BYTES: usize = 8 * 1024 * 1024;

impl Listener {
    /// Binds a listen address (port 0 picks a free port). Must run inside a Tokio runtime.
    pub async fn bind(spec: ListenerSpec) -> io::Result<Listener> {
        Ok(match spec.transport {
            Transport::Udp => Listener::Udp(bind_udp(spec.addr)?),
            Transport::Tcp => Listener::Tcp(TcpListener::bind(spec.addr).await?),
        })
    }

    /// The bound address and transport.
    pub fn local(&self) -> io::Result<ListenerSpec> {
        Ok(match self {
            Listener::Udp(s) => ListenerSpec {
                transport: Transport::Udp,
                addr: s.local_addr()?,
            },
            Listener::Tcp(l) => ListenerSpec {
                transport: Transport::Tcp,
                addr: l.local_addr()?,
            },
        })
    }
}

fn bind_udp(addr: SocketAddr) -> io::Result<UdpSocket> {
    use socket2::{Domain, Protocol, Socket, Type};
    let socket = Socket::new(Domain::for_address(addr), Type::DGRAM, Some(Protocol::UDP))?;
    // Best effort: the kernel may cap (or refuse) the size; the socket works either way.
    let _ = socket.set_recv_buffer_size(UDP_BUFFER_BYTES);
    let _ = socket.set_send_buffer_size(UDP_BUFFER_BYTES);
    socket.set_nonblocking(true)?;
    socket.bind(&addr.into())?;
    UdpSocket::from_std(socket.into())
}

/// The other end of a message: address and transport.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) struct Peer {
    pub(crate) addr: SocketAddr,
    pub(crate) transport: Transport,
}

impl Peer {
    pub(crate) fn reliable(&self) -> bool {
        self.transport == Transport::Tcp
    }
}

/// What the transports hand to the engine.
#[derive(Debug)]
pub(crate) enum Inbound {
    /// One whole message (a datagram, or a message framed from a stream), and when the
    /// transport read it.
    Message {
        data: Bytes,
        peer: Peer,
        at: std::time::Instant,
    },
    /// A TCP connection could not be opened (refused, timed out, or over a cap).
    Failed { peer: Peer },
}

/// Whether a TCP send may open a connection when none is open to the peer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Connect {
    /// Requests of client transactions: the switch chose where they go (a carrier, a
    /// dialog's target).
    Allowed,
    /// Responses and stateless messages: only on a connection that is open; when it is gone
    /// the message is dropped and counted (`Counter::TcpNoConnection`). An address named by
    /// an unauthenticated message never gets a connection from the switch.
    Never,
}

/// Log lines of one cause: at most one a second each, with the count held back.
#[derive(Debug)]
pub(crate) struct Logs {
    pub(crate) udp_send: Throttle,
    pub(crate) udp_receive: Throttle,
    pub(crate) accept: Throttle,
    pub(crate) tcp: Throttle,
    pub(crate) connect: Throttle,
    pub(crate) no_connection: Throttle,
}

impl Default for Logs {
    fn default() -> Self {
        let t = || Throttle::new(Duration::from_secs(1));
        Logs {
            udp_send: t(),
            udp_receive: t(),
            accept: t(),
            tcp: t(),
            connect: t(),
            no_connection: t(),
        }
    }
}

/// Sending side of every transport, owned by the engine.
pub(crate) struct Transports {
    udp: udp::Udp,
    tcp: tcp::Tcp,
    pub(crate) guards: crate::Guards,
    /// Sources the UDP receiving tasks drop unread (the engine keeps it current).
    pub(crate) drops: crate::drops::SharedDrops,
}

impl Transports {
    /// Starts a receiving task per listener; returns the sending side and the bound addresses.
    pub(crate) fn start(
        listeners: Vec<Listener>,
        to_engine: mpsc::Sender<Inbound>,
        max_message_size: usize,
        limits: crate::Limits,
        guards: crate::Guards,
    ) -> io::Result<(Transports, Vec<ListenerSpec>)> {
        let logs = Arc::new(Logs::default());
        let nofile = open_file_limit();
        let max_connections = effective_max_connections(limits.tcp_max_connections, nofile);
        if listeners.iter().any(|l| matches!(l, Listener::Tcp(_))) {
            info!(
                effective = max_connections,
                configured = limits.tcp_max_connections,
                open_file_limit = ?nofile,
                "TCP connections capped at {max_connections}"
            );
        }
        let tcp = tcp::Tcp::new(tcp::Settings {
            to_engine: to_engine.clone(),
            max_message_size,
            max_connections,
            limits: limits.clone(),
            guards: guards.clone(),
            logs: logs.clone(),
        });
        let drops = crate::drops::SharedDrops::default();
        let mut udp = Vec::new();
        let mut bound = Vec::new();
        for l in listeners {
            bound.push(l.local()?);
            match l {
                Listener::Udp(socket) => {
                    let socket = Arc::new(socket);
                    udp.push(socket.clone());
                    tokio::spawn(udp::receive(
                        socket,
                        to_engine.clone(),
                        logs.clone(),
                        (drops.clone(), guards.clone()),
                    ));
                }
                Listener::Tcp(listener) => {
                    tokio::spawn(tcp::accept(listener, tcp.clone()));
                }
            }
        }
        Ok((
            Transports {
                udp: udp::Udp::new(udp, limits, guards.clone(), logs),
                tcp,
                guards,
                drops,
            },
            bound,
        ))
    }

    /// Sends a message; never waits. Over TCP, `connect` says whether a connection may be
    /// opened when none is open to the peer; failures to open one come back as
    /// [`Inbound::Failed`].
    pub(crate) fn send(&self, peer: Peer, data: Bytes, connect: Connect) {
        match peer.transport {
            Transport::Udp => self.udp.send(peer.addr, data),
            Transport::Tcp => self.tcp.send(peer, data, connect),
        }
    }

    /// The local address a UDP socket would use towards `to` (for Via and Record-Route when
    /// a listener is bound to the unspecified address).
    pub(crate) fn udp_local(&self) -> Option<SocketAddr> {
        self.udp.local()
    }
}

/// The process's soft limit on open files (`RLIMIT_NOFILE`), from `/proc/self/limits`.
fn open_file_limit() -> Option<u64> {
    let limits = std::fs::read_to_string("/proc/self/limits").ok()?;
    let line = limits.lines().find(|l| l.starts_with("Max open files"))?;
    line["Max open files".len()..]
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

/// `sip.tcp_max_connections` held under the open-file limit, keeping a tenth of it (at least
/// 64 descriptors) for the store, logs, sockets and the control socket: reaching the cap
/// refuses a connection cleanly instead of running out of descriptors.
fn effective_max_connections(configured: usize, nofile: Option<u64>) -> usize {
    match nofile {
        Some(soft) => {
            let reserve = (soft / 10).max(64);
            let room = usize::try_from(soft.saturating_sub(reserve)).unwrap_or(usize::MAX);
            configured.min(room.max(1))
        }
        None => configured,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn listener_specs() {
        let s: ListenerSpec = "udp:127.0.0.1:5060".parse().unwrap();
        assert_eq!((s.transport, s.addr.port()), (Transport::Udp, 5060));
        let s: ListenerSpec = "tcp:[::1]:5070".parse().unwrap();
        assert!(s.addr.is_ipv6());
        assert!("sctp:1.2.3.4:5060".parse::<ListenerSpec>().is_err());
        assert!("udp:1.2.3.4".parse::<ListenerSpec>().is_err());
        assert!("udp".parse::<ListenerSpec>().is_err());
    }

    #[test]
    fn connections_stay_under_the_open_file_limit() {
        assert_eq!(effective_max_connections(4096, None), 4096);
        assert_eq!(effective_max_connections(4096, Some(256)), 192);
        assert_eq!(effective_max_connections(4096, Some(1024)), 922);
        assert_eq!(effective_max_connections(4096, Some(1 << 20)), 4096);
        assert_eq!(effective_max_connections(4096, Some(10)), 1);
        assert!(open_file_limit().is_some_and(|n| n > 0));
    }
}
