//! UDP: one receiving task per socket; sends with `try_send_to`, a bounded number of
//! background sends when a socket buffer is full.

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;

use bytes::Bytes;
use domain::{Cap, Transport};
use std::io::IoSliceMut;
use std::os::fd::AsRawFd;

use nix::sys::socket::{MsgFlags, MultiHeaders, SockaddrStorage, recvmmsg};
use tokio::io::Interest;
use tokio::net::UdpSocket;
use tokio::sync::mpsc;
use tracing::{debug, warn};

use super::{Inbound, Logs, Peer};
use crate::guard::Gauge;

pub(super) struct Udp {
    sockets: Vec<Arc<UdpSocket>>,
    limits: crate::Limits,
    guards: crate::Guards,
    logs: Arc<Logs>,
}

impl Udp {
    pub(super) fn new(
        sockets: Vec<Arc<UdpSocket>>,
        limits: crate::Limits,
        guards: crate::Guards,
        logs: Arc<Logs>,
    ) -> Udp {
        Udp {
            sockets,
            limits,
            guards,
            logs,
        }
    }

    pub(super) fn local(&self) -> Option<SocketAddr> {
        self.sockets.first().and_then(|s| s.local_addr().ok())
    }

    pub(super) fn send(&self, to: SocketAddr, data: Bytes) {
        let socket = self
            .sockets
            .iter()
            .find(|s| s.local_addr().is_ok_and(|l| l.is_ipv4() == to.is_ipv4()))
            .or_else(|| self.sockets.first());
        let Some(socket) = socket else {
            if let Some(held) = self.logs.udp_send.allow() {
                warn!(%to, held_back = held, "no UDP listener to send from");
            }
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
                let (socket, guards, logs) =
                    (socket.clone(), self.guards.clone(), self.logs.clone());
                tokio::spawn(async move {
                    if let Err(e) = socket.send_to(&data, to).await {
                        log_send_error(&logs, to, &e);
                    }
                    guards.add(Gauge::SendTasks, -1);
                });
            }
            Err(e) => log_send_error(&self.logs, to, &e),
        }
    }
}

fn log_send_error(logs: &Logs, to: SocketAddr, e: &io::Error) {
    if let Some(held) = logs.udp_send.allow() {
        debug!(%to, error = %e, held_back = held, "UDP send failed");
    }
}

/// Datagrams read per system call (`recvmmsg`): under a flood the switch drains its socket
/// several times faster than one `recvfrom` a datagram would.
const BATCH: usize = 32;

pub(super) async fn receive(
    socket: Arc<UdpSocket>,
    to_engine: mpsc::Sender<Inbound>,
    logs: Arc<Logs>,
    (drops, guards): (crate::drops::SharedDrops, crate::Guards),
) {
    // Receive buffers, reused; each datagram is copied out at its exact size. (Splitting
    // datagrams off a shared buffer would let every stored message pin a 64 KiB block.)
    let mut bufs: Vec<Vec<u8>> = (0..BATCH).map(|_| vec![0u8; 64 * 1024]).collect();
    let mut got: Vec<(SocketAddr, usize)> = Vec::with_capacity(BATCH);
    let mut reply_once = crate::drops::ReplyOnce::default();
    loop {
        if let Err(e) = socket.readable().await {
            if let Some(held) = logs.udp_receive.allow() {
                debug!(error = %e, held_back = held, "UDP socket not readable");
            }
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
            continue;
        }
        got.clear();
        let read = socket.try_io(Interest::READABLE, || {
            receive_batch(socket.as_raw_fd(), &mut bufs, &mut got)
        });
        match read {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => continue,
            // ICMP errors from earlier sends surface here on some systems; keep reading
            // (one log line a second at most).
            Err(e) => {
                if let Some(held) = logs.udp_receive.allow() {
                    debug!(error = %e, held_back = held, "UDP receive error");
                }
                if icmp(&e) {
                    tokio::task::yield_now().await;
                } else {
                    // Anything else (out of memory, say) would fail again at once: pause
                    // instead of spinning.
                    tokio::time::sleep(std::time::Duration::from_millis(10)).await;
                }
                continue;
            }
        }
        let at = tokio::time::Instant::now().into_std();
        let current = drops.load();
        let current = current.as_deref().filter(|d| d.usable(at));
        for (i, &(from, n)) in got.iter().enumerate() {
            // A blocked stranger: dropped unread (one datagram per interval goes on, to be
            // answered 403).
            if let Some(d) = current
                && d.drops(from.ip())
                && !reply_once.due(from.ip(), at)
            {
                guards.count(crate::guard::Counter::BlockedDropped);
                continue;
            }
            let data = Bytes::copy_from_slice(&bufs[i][..n]);
            // Time inside the switch counts from here, as with one datagram a read.
            let at = tokio::time::Instant::now().into_std();
            let peer = Peer {
                addr: from,
                transport: Transport::Udp,
            };
            if to_engine
                .send(Inbound::Message { data, peer, at })
                .await
                .is_err()
            {
                return;
            }
            // Let the engine handle this datagram before the next is passed on: the switch
            // runs on one thread, and a message must not wait behind a burst of others.
            tokio::task::yield_now().await;
        }
    }
}

/// One `recvmmsg` into `bufs`: the source and length of each datagram read, in `got`.
fn receive_batch(
    fd: std::os::fd::RawFd,
    bufs: &mut [Vec<u8>],
    got: &mut Vec<(SocketAddr, usize)>,
) -> io::Result<()> {
    // The headers hold raw pointers (not `Send`, so not in the task's state): kept per
    // thread (the SIP runtime has one) and reused, not allocated and zeroed per read.
    thread_local! {
        static HEADERS: std::cell::RefCell<MultiHeaders<SockaddrStorage>> =
            std::cell::RefCell::new(MultiHeaders::preallocate(BATCH, None));
    }
    HEADERS.with(|h| {
        let mut headers = h.borrow_mut();
        read_into(fd, bufs, &mut headers, got)
    })
}

fn read_into(
    fd: std::os::fd::RawFd,
    bufs: &mut [Vec<u8>],
    headers: &mut MultiHeaders<SockaddrStorage>,
    got: &mut Vec<(SocketAddr, usize)>,
) -> io::Result<()> {
    let mut iovs: Vec<[IoSliceMut<'_>; 1]> = bufs
        .iter_mut()
        .map(|b| [IoSliceMut::new(b.as_mut_slice())])
        .collect();
    let msgs = recvmmsg(fd, headers, iovs.iter_mut(), MsgFlags::MSG_DONTWAIT, None)
        .map_err(io::Error::from)?;
    for m in msgs {
        let Some(addr) = m.address.and_then(|a| {
            a.as_sockaddr_in()
                .map(|v4| SocketAddr::V4((*v4).into()))
                .or_else(|| a.as_sockaddr_in6().map(|v6| SocketAddr::V6((*v6).into())))
        }) else {
            continue;
        };
        // A datagram cut to the buffer (over 64 KiB) is dropped whole.
        if m.flags.contains(MsgFlags::MSG_TRUNC) {
            continue;
        }
        got.push((addr, m.bytes));
    }
    Ok(())
}

/// Errors that report an ICMP message for an earlier send: one per datagram, not a state.
fn icmp(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::ConnectionRefused
            | io::ErrorKind::ConnectionReset
            | io::ErrorKind::HostUnreachable
            | io::ErrorKind::NetworkUnreachable
    )
}
