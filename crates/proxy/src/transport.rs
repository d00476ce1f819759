//! UDP and TCP transports. Receiving tasks hand whole messages to the engine over one
//! channel; sending never blocks the engine (UDP `try_send_to`, TCP per-connection writer
//! queues). TCP connections are shared by remote address: an accepted connection carries
//! responses and in-dialog requests back, and a connection we open to a carrier carries its
//! responses in.

use std::collections::HashMap;
use std::fmt;
use std::io;
use std::net::SocketAddr;
use std::str::FromStr;
use std::sync::{Arc, Mutex};

use bytes::{Buf, Bytes, BytesMut};
use domain::{Cap, Transport};
use sip_message::framing::{self, Frame};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream, UdpSocket};
use tokio::sync::mpsc;
use tracing::{debug, warn};

use crate::guard::Gauge;

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
    /// A TCP connection could not be opened or broke with messages queued.
    Failed { peer: Peer },
}

type TcpQueues = Arc<Mutex<HashMap<SocketAddr, mpsc::UnboundedSender<Bytes>>>>;

/// Sending side of every transport, owned by the engine.
pub(crate) struct Transports {
    udp: Vec<Arc<UdpSocket>>,
    tcp: TcpQueues,
    to_engine: mpsc::Sender<Inbound>,
    max_message_size: usize,
    limits: crate::Limits,
    pub(crate) guards: crate::Guards,
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
        let tcp: TcpQueues = Arc::default();
        let mut udp = Vec::new();
        let mut bound = Vec::new();
        for l in listeners {
            bound.push(l.local()?);
            match l {
                Listener::Udp(socket) => {
                    let socket = Arc::new(socket);
                    udp.push(socket.clone());
                    tokio::spawn(udp_receive(socket, to_engine.clone()));
                }
                Listener::Tcp(listener) => {
                    tokio::spawn(tcp_accept(
                        listener,
                        tcp.clone(),
                        to_engine.clone(),
                        max_message_size,
                    ));
                }
            }
        }
        Ok((
            Transports {
                udp,
                tcp,
                to_engine,
                max_message_size,
                limits,
                guards,
            },
            bound,
        ))
    }

    /// Sends a message; never waits. Failures of TCP come back as [`Inbound::Failed`].
    pub(crate) fn send(&self, peer: Peer, data: Bytes) {
        match peer.transport {
            Transport::Udp => self.send_udp(peer.addr, data),
            Transport::Tcp => self.send_tcp(peer, data),
        }
    }

    fn send_udp(&self, to: SocketAddr, data: Bytes) {
        let socket = self
            .udp
            .iter()
            .find(|s| s.local_addr().is_ok_and(|l| l.is_ipv4() == to.is_ipv4()))
            .or_else(|| self.udp.first());
        let Some(socket) = socket else {
            warn!(%to, "no UDP listener to send from");
            return;
        };
        match socket.try_send_to(&data, to) {
            Ok(_) => {}
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                // The socket buffer is full: a task waits for room, up to a bound (past it
                // the datagram is dropped, as the kernel would; SIP retransmits).
                let max = self.limits.max_send_tasks;
                if self.guards.gauge(Gauge::SendTasks) >= max as u64 {
                    self.guards.reached(Cap::SendTasks, max as u64);
                    return;
                }
                self.guards.add(Gauge::SendTasks, 1);
                let (socket, guards) = (socket.clone(), self.guards.clone());
                tokio::spawn(async move {
                    if let Err(e) = socket.send_to(&data, to).await {
                        debug!(%to, error = %e, "UDP send failed");
                    }
                    guards.add(Gauge::SendTasks, -1);
                });
            }
            Err(e) => debug!(%to, error = %e, "UDP send failed"),
        }
    }

    fn send_tcp(&self, peer: Peer, data: Bytes) {
        let mut queues = self.tcp.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(q) = queues.get(&peer.addr) {
            if q.send(data.clone()).is_ok() {
                return;
            }
            queues.remove(&peer.addr);
        }
        let (tx, rx) = mpsc::unbounded_channel();
        let _ = tx.send(data);
        queues.insert(peer.addr, tx);
        drop(queues);
        tokio::spawn(tcp_connect(
            peer.addr,
            rx,
            self.tcp.clone(),
            self.to_engine.clone(),
            self.max_message_size,
        ));
    }

    /// The local address a UDP socket would use towards `to` (for Via and Record-Route when
    /// a listener is bound to the unspecified address).
    pub(crate) fn udp_local(&self) -> Option<SocketAddr> {
        self.udp.first().and_then(|s| s.local_addr().ok())
    }
}

async fn udp_receive(socket: Arc<UdpSocket>, to_engine: mpsc::Sender<Inbound>) {
    // One receive buffer, reused; each datagram is copied out at its exact size. (Splitting
    // datagrams off a shared buffer would let every stored message pin a 64 KiB block.)
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        match socket.recv_from(&mut buf).await {
            Ok((n, from)) => {
                let data = Bytes::copy_from_slice(&buf[..n]);
                let peer = Peer {
                    addr: from,
                    transport: Transport::Udp,
                };
                if to_engine
                    .send(Inbound::Message {
                        data,
                        peer,
                        at: tokio::time::Instant::now().into_std(),
                    })
                    .await
                    .is_err()
                {
                    return;
                }
                // Let the engine handle this datagram before the next is read: the switch
                // runs on one thread, and a message must not wait behind a burst of reads.
                tokio::task::yield_now().await;
            }
            // ICMP errors from earlier sends surface here on some systems; keep reading.
            Err(e) => debug!(error = %e, "UDP receive error"),
        }
    }
}

async fn tcp_accept(
    listener: TcpListener,
    queues: TcpQueues,
    to_engine: mpsc::Sender<Inbound>,
    max: usize,
) {
    loop {
        match listener.accept().await {
            Ok((stream, from)) => {
                let (tx, rx) = mpsc::unbounded_channel();
                queues
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .insert(from, tx);
                tokio::spawn(tcp_connection(
                    stream,
                    from,
                    rx,
                    queues.clone(),
                    to_engine.clone(),
                    max,
                ));
            }
            Err(e) => warn!(error = %e, "TCP accept failed"),
        }
    }
}

async fn tcp_connect(
    to: SocketAddr,
    rx: mpsc::UnboundedReceiver<Bytes>,
    queues: TcpQueues,
    to_engine: mpsc::Sender<Inbound>,
    max: usize,
) {
    match TcpStream::connect(to).await {
        Ok(stream) => tcp_connection(stream, to, rx, queues, to_engine, max).await,
        Err(e) => {
            debug!(%to, error = %e, "TCP connect failed");
            queues.lock().unwrap_or_else(|p| p.into_inner()).remove(&to);
            let peer = Peer {
                addr: to,
                transport: Transport::Tcp,
            };
            let _ = to_engine.send(Inbound::Failed { peer }).await;
        }
    }
}

/// Reads framed messages in and writes queued messages out until either side closes.
async fn tcp_connection(
    stream: TcpStream,
    remote: SocketAddr,
    mut rx: mpsc::UnboundedReceiver<Bytes>,
    queues: TcpQueues,
    to_engine: mpsc::Sender<Inbound>,
    max: usize,
) {
    let _ = stream.set_nodelay(true);
    let (mut reader, mut writer) = stream.into_split();
    let peer = Peer {
        addr: remote,
        transport: Transport::Tcp,
    };
    let writing = tokio::spawn(async move {
        while let Some(data) = rx.recv().await {
            if writer.write_all(&data).await.is_err() {
                return false;
            }
        }
        true
    });
    let mut buf = BytesMut::with_capacity(16 * 1024);
    'read: loop {
        match reader.read_buf(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(_) => {}
        }
        loop {
            match framing::frame(&buf, max) {
                Ok(Frame::Message(n)) => {
                    // Copied out at its exact size, so that a stored message does not pin the
                    // connection's buffer.
                    let data = Bytes::copy_from_slice(&buf[..n]);
                    buf.advance(n);
                    if to_engine
                        .send(Inbound::Message {
                            data,
                            peer,
                            at: tokio::time::Instant::now().into_std(),
                        })
                        .await
                        .is_err()
                    {
                        break 'read;
                    }
                }
                Ok(Frame::KeepAlive(n)) => buf.advance(n),
                Ok(Frame::Incomplete) => break,
                Err(e) => {
                    debug!(%remote, error = %e, "closing TCP connection");
                    break 'read;
                }
            }
        }
    }
    queues
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .remove(&remote);
    writing.abort();
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
}
