//! TCP: an accepting task per listener, a task per connection (reading and framing, with its
//! timers) and a writer task per connection fed by a queue bounded in bytes.
//!
//! Bounds, each counted as a [`Cap`] when reached: connections in all
//! (`sip.tcp_max_connections`, held under the open-file limit) and per remote address
//! (`sip.tcp_max_connections_per_address`), refused at accept; bytes queued for writing on
//! one connection (`sip.tcp_send_queue_bytes`), past which the connection is closed; a
//! message must be whole within `sip.tcp_header_timeout_ms` of its first byte (or of an
//! accepted connection's opening); no traffic either way for `sip.tcp_idle_timeout_secs`
//! closes it; outbound connects are bounded in number (`sip.tcp_max_connecting`) and time
//! (`sip.tcp_connect_timeout_ms`). Accept failures back off (10 ms doubling to 1 s).

use std::collections::HashMap;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use bytes::{Buf, Bytes, BytesMut};
use domain::{Cap, Transport};
use sip_message::framing::{self, Frame, FrameError};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::OwnedWriteHalf;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Notify, mpsc};
use tokio::time::Instant;
use tracing::{debug, warn};

use super::{Connect, Inbound, Logs, Peer};
use crate::guard::{Counter, Gauge};

/// After a `513`, how long the connection lingers (reading and discarding) so that the reply
/// is delivered before the close.
const LINGER: Duration = Duration::from_secs(2);

pub(super) struct Settings {
    pub(super) to_engine: mpsc::Sender<Inbound>,
    pub(super) max_message_size: usize,
    /// `limits.tcp_max_connections` held under the open-file limit.
    pub(super) max_connections: usize,
    pub(super) limits: crate::Limits,
    pub(super) guards: crate::Guards,
    pub(super) logs: Arc<Logs>,
}

/// The TCP side: settings and the table of open connections. Cheap to clone.
#[derive(Clone)]
pub(super) struct Tcp(Arc<Shared>);

struct Shared {
    s: Settings,
    table: Mutex<Table>,
}

#[derive(Default)]
struct Table {
    /// Where to send to each remote address.
    by_addr: HashMap<SocketAddr, Conn>,
    /// Accepted connections per remote address.
    per_ip: HashMap<IpAddr, usize>,
    /// Connections open or being opened.
    count: usize,
    next_id: u64,
}

/// The sending side of one connection.
struct Conn {
    id: u64,
    tx: mpsc::UnboundedSender<Bytes>,
    /// Bytes handed to the writer and not yet written.
    queued: Arc<AtomicUsize>,
    /// Tells the connection's task to close at once (its send queue overflowed).
    close: Arc<Notify>,
}

/// The receiving side of one connection, made with its [`Conn`].
struct Ends {
    rx: mpsc::UnboundedReceiver<Bytes>,
    tx: mpsc::UnboundedSender<Bytes>,
    queued: Arc<AtomicUsize>,
    close: Arc<Notify>,
}

/// A connection's place in the table; dropping it takes the connection out of the counts.
struct Registration {
    tcp: Tcp,
    id: u64,
    addr: SocketAddr,
    accepted: bool,
}

impl Registration {
    /// No more messages are queued to this connection (it is closing).
    fn unlist(&self) {
        let mut t = self.tcp.table();
        if t.by_addr.get(&self.addr).is_some_and(|c| c.id == self.id) {
            t.by_addr.remove(&self.addr);
        }
    }
}

impl Drop for Registration {
    fn drop(&mut self) {
        let mut t = self.tcp.table();
        if t.by_addr.get(&self.addr).is_some_and(|c| c.id == self.id) {
            t.by_addr.remove(&self.addr);
        }
        t.count = t.count.saturating_sub(1);
        if self.accepted {
            let ip = self.addr.ip();
            if let Some(n) = t.per_ip.get_mut(&ip) {
                *n -= 1;
                if *n == 0 {
                    t.per_ip.remove(&ip);
                }
            }
        }
        self.tcp
            .0
            .s
            .guards
            .set(Gauge::TcpConnections, t.count as u64);
    }
}

impl Tcp {
    pub(super) fn new(s: Settings) -> Tcp {
        Tcp(Arc::new(Shared {
            s,
            table: Mutex::default(),
        }))
    }

    fn table(&self) -> MutexGuard<'_, Table> {
        self.0.table.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn s(&self) -> &Settings {
        &self.0.s
    }

    /// Adds a connection to the table (the caller has checked the caps).
    fn register(&self, t: &mut Table, addr: SocketAddr, accepted: bool) -> (Registration, Ends) {
        let (tx, rx) = mpsc::unbounded_channel();
        let queued = Arc::new(AtomicUsize::new(0));
        let close = Arc::new(Notify::new());
        t.next_id += 1;
        let id = t.next_id;
        t.count += 1;
        if accepted {
            *t.per_ip.entry(addr.ip()).or_default() += 1;
        }
        t.by_addr.insert(
            addr,
            Conn {
                id,
                tx: tx.clone(),
                queued: queued.clone(),
                close: close.clone(),
            },
        );
        self.s().guards.set(Gauge::TcpConnections, t.count as u64);
        let reg = Registration {
            tcp: self.clone(),
            id,
            addr,
            accepted,
        };
        (
            reg,
            Ends {
                rx,
                tx,
                queued,
                close,
            },
        )
    }

    /// Queues `data` to `peer`; never waits.
    pub(super) fn send(&self, peer: Peer, data: Bytes, connect: Connect) {
        let s = self.s();
        let mut t = self.table();
        if let Some(c) = t.by_addr.get(&peer.addr) {
            let limit = s.limits.tcp_send_queue_bytes;
            let len = data.len();
            if c.queued.load(Ordering::Relaxed) + len > limit {
                // The peer does not read what it is sent: close the connection rather than
                // hold its replies.
                s.guards.reached(Cap::TcpSendQueue, limit as u64);
                c.close.notify_one();
                t.by_addr.remove(&peer.addr);
                return;
            }
            c.queued.fetch_add(len, Ordering::Relaxed);
            if c.tx.send(data.clone()).is_ok() {
                return;
            }
            // The writer has ended: the connection is closing.
            t.by_addr.remove(&peer.addr);
        }
        if connect == Connect::Never {
            s.guards.count(Counter::TcpNoConnection);
            if let Some(held) = s.logs.no_connection.allow() {
                debug!(to = %peer.addr, held_back = held, "no TCP connection to reply on: dropped");
            }
            return;
        }
        let connecting = s.limits.tcp_max_connecting;
        if s.guards.gauge(Gauge::OutboundConnects) >= connecting as u64 {
            s.guards.reached(Cap::OutboundConnects, connecting as u64);
            drop(t);
            self.failed(peer);
            return;
        }
        if t.count >= s.max_connections {
            s.guards
                .reached(Cap::TcpConnections, s.max_connections as u64);
            drop(t);
            self.failed(peer);
            return;
        }
        let (reg, ends) = self.register(&mut t, peer.addr, false);
        drop(t);
        ends.queued.fetch_add(data.len(), Ordering::Relaxed);
        let _ = ends.tx.send(data);
        s.guards.add(Gauge::OutboundConnects, 1);
        tokio::spawn(connect_to(self.clone(), peer.addr, reg, ends));
    }

    /// Tells the engine that messages to `peer` could not be sent.
    fn failed(&self, peer: Peer) {
        let to_engine = self.s().to_engine.clone();
        tokio::spawn(async move {
            let _ = to_engine.send(Inbound::Failed { peer }).await;
        });
    }

    /// A connection accepted: checked against the caps, then run.
    fn accepted(&self, stream: TcpStream, from: SocketAddr) {
        let s = self.s();
        let mut t = self.table();
        if t.count >= s.max_connections {
            s.guards
                .reached(Cap::TcpConnections, s.max_connections as u64);
            return; // dropping the stream closes it
        }
        let per_address = s.limits.tcp_max_connections_per_address;
        if t.per_ip.get(&from.ip()).copied().unwrap_or(0) >= per_address {
            s.guards
                .reached(Cap::TcpConnectionsPerAddress, per_address as u64);
            return;
        }
        let (reg, ends) = self.register(&mut t, from, true);
        drop(t);
        tokio::spawn(run(self.clone(), stream, reg, ends));
    }
}

/// The pause after an accept failure: 10 ms, doubling to 1 s; back to 10 ms after a success.
#[derive(Debug)]
pub(super) struct Backoff(Duration);

impl Backoff {
    const FIRST: Duration = Duration::from_millis(10);
    const MAX: Duration = Duration::from_secs(1);

    pub(super) fn new() -> Backoff {
        Backoff(Duration::ZERO)
    }

    pub(super) fn reset(&mut self) {
        self.0 = Duration::ZERO;
    }

    pub(super) fn next(&mut self) -> Duration {
        self.0 = if self.0.is_zero() {
            Self::FIRST
        } else {
            (self.0 * 2).min(Self::MAX)
        };
        self.0
    }
}

/// Errors of one connection that went away before it was accepted: try the next at once.
fn transient(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::ConnectionAborted
            | io::ErrorKind::ConnectionReset
            | io::ErrorKind::Interrupted
            | io::ErrorKind::WouldBlock
    )
}

pub(super) async fn accept(listener: TcpListener, tcp: Tcp) {
    let mut backoff = Backoff::new();
    loop {
        match listener.accept().await {
            Ok((stream, from)) => {
                backoff.reset();
                tcp.accepted(stream, from);
            }
            Err(e) if transient(&e) => {
                if let Some(held) = tcp.s().logs.accept.allow() {
                    debug!(error = %e, held_back = held, "TCP accept failed");
                }
            }
            Err(e) => {
                // Out of descriptors (EMFILE, ENFILE) or memory (ENOBUFS, ENOMEM): the
                // pending connection stays in the backlog and accept fails again at once;
                // pause instead of spinning.
                let pause = backoff.next();
                let s = tcp.s();
                s.guards
                    .reached(Cap::AcceptBackoff, s.max_connections as u64);
                if let Some(held) = s.logs.accept.allow() {
                    warn!(
                        error = %e,
                        pause_ms = pause.as_millis() as u64,
                        held_back = held,
                        "TCP accept failed: backing off"
                    );
                }
                tokio::time::sleep(pause).await;
            }
        }
    }
}

async fn connect_to(tcp: Tcp, to: SocketAddr, reg: Registration, ends: Ends) {
    let s = tcp.s();
    let result = tokio::time::timeout(s.limits.tcp_connect_timeout, TcpStream::connect(to)).await;
    s.guards.add(Gauge::OutboundConnects, -1);
    let error = match result {
        Ok(Ok(stream)) => return run(tcp.clone(), stream, reg, ends).await,
        Ok(Err(e)) => e.to_string(),
        Err(_) => {
            s.guards
                .reached(Cap::OutboundConnects, s.limits.tcp_max_connecting as u64);
            format!("timed out after {:?}", s.limits.tcp_connect_timeout)
        }
    };
    if let Some(held) = s.logs.connect.allow() {
        debug!(%to, %error, held_back = held, "TCP connect failed");
    }
    drop(ends);
    drop(reg);
    let peer = Peer {
        addr: to,
        transport: Transport::Tcp,
    };
    let _ = s.to_engine.send(Inbound::Failed { peer }).await;
}

/// Milliseconds since a fixed start: the last time anything was written.
struct LastWrite {
    start: Instant,
    ms: AtomicU64,
}

impl LastWrite {
    fn touch(&self) {
        self.ms
            .store(self.start.elapsed().as_millis() as u64, Ordering::Relaxed);
    }

    fn at(&self) -> Instant {
        self.start + Duration::from_millis(self.ms.load(Ordering::Relaxed))
    }
}

async fn write_all(
    mut writer: OwnedWriteHalf,
    mut rx: mpsc::UnboundedReceiver<Bytes>,
    queued: Arc<AtomicUsize>,
    last: Arc<LastWrite>,
) -> io::Result<()> {
    while let Some(data) = rx.recv().await {
        writer.write_all(&data).await?;
        queued.fetch_sub(data.len(), Ordering::Relaxed);
        last.touch();
    }
    writer.shutdown().await
}

/// Why a connection ended.
#[derive(Debug)]
enum End {
    Closed,
    ReadError(io::Error),
    WriterEnded,
    SendQueueFull,
    HeaderTimeout,
    IdleTimeout,
    TooLarge,
    Unframeable(FrameError),
    EngineGone,
}

impl std::fmt::Display for End {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            End::Closed => f.write_str("closed by the peer"),
            End::ReadError(e) => write!(f, "read failed: {e}"),
            End::WriterEnded => f.write_str("write failed"),
            End::SendQueueFull => f.write_str("send queue full"),
            End::HeaderTimeout => f.write_str("no whole message in time"),
            End::IdleTimeout => f.write_str("idle"),
            End::TooLarge => f.write_str("message too large"),
            End::Unframeable(e) => write!(f, "cannot frame: {e}"),
            End::EngineGone => f.write_str("switch stopping"),
        }
    }
}

/// Reads framed messages in and writes queued messages out until either side closes, a
/// bound is passed or a timer fires.
async fn run(tcp: Tcp, stream: TcpStream, reg: Registration, ends: Ends) {
    let s = tcp.s();
    let _ = stream.set_nodelay(true);
    let (mut reader, writer) = stream.into_split();
    let opened = Instant::now();
    let last_write = Arc::new(LastWrite {
        start: opened,
        ms: AtomicU64::new(0),
    });
    let Ends {
        rx,
        tx,
        queued,
        close,
    } = ends;
    let mut writing = tokio::spawn(write_all(writer, rx, queued, last_write.clone()));
    let peer = Peer {
        addr: reg.addr,
        transport: Transport::Tcp,
    };
    let (header_timeout, idle_timeout) = (s.limits.tcp_header_timeout, s.limits.tcp_idle_timeout);
    let max = s.max_message_size;
    let mut buf = BytesMut::with_capacity(4 * 1024);
    // When the message being read began: its first byte, or for an accepted connection its
    // opening (a connection that never sends a message is closed as well).
    let mut started = reg.accepted.then_some(opened);
    let mut last_read = opened;
    let end = 'conn: loop {
        let idle_at = last_read.max(last_write.at()) + idle_timeout;
        let header_at = started.map(|t| t + header_timeout);
        let deadline = header_at.map_or(idle_at, |h| h.min(idle_at));
        tokio::select! {
            r = reader.read_buf(&mut buf) => match r {
                Ok(0) => break End::Closed,
                Ok(_) => last_read = Instant::now(),
                Err(e) => break End::ReadError(e),
            },
            () = close.notified() => break End::SendQueueFull,
            _ = &mut writing => break End::WriterEnded,
            () = tokio::time::sleep_until(deadline) => {
                let header = header_at.is_some_and(|h| h <= idle_at);
                s.guards.reached(
                    Cap::TcpTimeout,
                    if header { header_timeout } else { idle_timeout }.as_millis() as u64,
                );
                break if header { End::HeaderTimeout } else { End::IdleTimeout };
            }
        }
        loop {
            match framing::frame(&buf, max) {
                Ok(Frame::Message(n)) => {
                    // Copied out at its exact size, so that a stored message does not pin the
                    // connection's buffer.
                    let data = Bytes::copy_from_slice(&buf[..n]);
                    buf.advance(n);
                    started = None;
                    if s.to_engine
                        .send(Inbound::Message {
                            data,
                            peer,
                            at: Instant::now().into_std(),
                        })
                        .await
                        .is_err()
                    {
                        break 'conn End::EngineGone;
                    }
                }
                Ok(Frame::KeepAlive(n)) => buf.advance(n),
                Ok(Frame::Incomplete) => {
                    if !buf.is_empty() && started.is_none() {
                        started = Some(Instant::now());
                    }
                    break;
                }
                Err(FrameError::TooLarge) => break 'conn End::TooLarge,
                Err(e) => break 'conn End::Unframeable(e),
            }
        }
    };
    let refused = match &end {
        End::TooLarge => {
            s.guards.count(Counter::Oversize);
            Some(FrameError::TooLarge)
        }
        End::Unframeable(e) => Some(*e),
        _ => None,
    };
    if let Some(err) = refused {
        // Nothing more goes out on this connection but the 513 (or 400); then it closes,
        // after the reply has had its chance to arrive.
        reg.unlist();
        let tag = format!("{:016x}", fastrand::u64(..));
        if let Some(reply) = framing::refusal(err, &buf, tag.as_bytes()) {
            let _ = tx.send(reply);
        }
        drop(tx);
        linger(&mut reader, &mut writing).await;
    }
    match &end {
        End::Closed | End::EngineGone | End::WriterEnded => {}
        e => {
            if let Some(held) = s.logs.tcp.allow() {
                debug!(remote = %reg.addr, end = %e, held_back = held, "closing TCP connection");
            }
        }
    }
    writing.abort();
    drop(reg);
}

/// Lets the writer finish (it shuts the write side down when its queue is empty) while
/// reading and discarding what the peer still sends, for at most [`LINGER`]: closing with
/// unread bytes would reset the connection and could destroy the reply on its way.
async fn linger(
    reader: &mut tokio::net::tcp::OwnedReadHalf,
    writing: &mut tokio::task::JoinHandle<io::Result<()>>,
) {
    let deadline = Instant::now() + LINGER;
    let mut scratch = vec![0u8; 16 * 1024];
    let mut written = false;
    loop {
        tokio::select! {
            _ = &mut *writing, if !written => written = true,
            r = reader.read(&mut scratch) => {
                if !matches!(r, Ok(n) if n > 0) {
                    return;
                }
            }
            () = tokio::time::sleep_until(deadline) => return,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::transport::{Connect, Transports};

    /// A listener whose accept queue is full: connects to it neither succeed nor fail (the
    /// kernel drops their SYNs). Bounded: 2,000 connections at most.
    fn black_hole() -> (std::net::TcpListener, Vec<std::net::TcpStream>) {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = l.local_addr().unwrap();
        let mut fill = Vec::new();
        for _ in 0..2000 {
            match std::net::TcpStream::connect_timeout(&addr, Duration::from_millis(200)) {
                Ok(s) => fill.push(s),
                Err(_) => return (l, fill),
            }
        }
        panic!("the accept queue never filled");
    }

    #[tokio::test]
    async fn outbound_connects_are_bounded_in_number_and_time() {
        let (a, _fill_a) = black_hole();
        let (b, _fill_b) = black_hole();
        let limits = crate::Limits {
            tcp_max_connecting: 1,
            tcp_connect_timeout: Duration::from_millis(300),
            ..crate::Limits::default()
        };
        let guards = crate::Guards::detached();
        let (tx, mut inbound) = mpsc::channel(16);
        let (t, _) = Transports::start(Vec::new(), tx, 16384, limits, guards.clone()).unwrap();
        let peer = |l: &std::net::TcpListener| Peer {
            addr: l.local_addr().unwrap(),
            transport: Transport::Tcp,
        };
        let started = Instant::now();
        t.send(peer(&a), Bytes::from_static(b"x"), Connect::Allowed);
        assert_eq!(guards.gauge(Gauge::OutboundConnects), 1);
        // A second message to the same peer waits on the same connect.
        t.send(peer(&a), Bytes::from_static(b"y"), Connect::Allowed);
        assert_eq!(guards.gauge(Gauge::OutboundConnects), 1);
        // Another peer: over the cap, failed at once.
        t.send(peer(&b), Bytes::from_static(b"z"), Connect::Allowed);
        assert_eq!(guards.hits(Cap::OutboundConnects), 1);
        let first = tokio::time::timeout(Duration::from_secs(5), inbound.recv()).await;
        assert!(
            matches!(first, Ok(Some(Inbound::Failed { peer: p })) if p == peer(&b)),
            "{first:?}"
        );
        assert!(started.elapsed() < Duration::from_millis(250));
        // The first one times out.
        let second = tokio::time::timeout(Duration::from_secs(5), inbound.recv()).await;
        assert!(
            matches!(second, Ok(Some(Inbound::Failed { peer: p })) if p == peer(&a)),
            "{second:?}"
        );
        let took = started.elapsed();
        assert!(
            took >= Duration::from_millis(290) && took < Duration::from_secs(2),
            "{took:?}"
        );
        assert_eq!(guards.hits(Cap::OutboundConnects), 2);
        assert_eq!(guards.gauge(Gauge::OutboundConnects), 0);
        assert_eq!(guards.gauge(Gauge::TcpConnections), 0);
        // Never: nothing is opened, the message is counted as dropped.
        t.send(peer(&a), Bytes::from_static(b"r"), Connect::Never);
        assert_eq!(guards.counter(Counter::TcpNoConnection), 1);
        assert_eq!(guards.gauge(Gauge::OutboundConnects), 0);
    }

    #[test]
    fn backoff_doubles_to_a_second_and_resets() {
        let mut b = Backoff::new();
        let ms: Vec<u128> = (0..9).map(|_| b.next().as_millis()).collect();
        assert_eq!(ms, [10, 20, 40, 80, 160, 320, 640, 1000, 1000]);
        b.reset();
        assert_eq!(b.next(), Duration::from_millis(10));
    }
}
