//! The transports' bounds (issue 12, docs/SECURITY.md "Transport") through real sockets to
//! a real `vts serve` on loopback: connection caps, the send queue bound, timeouts, accept
//! back-off under a small open-file limit, no connection opened for a reply, 513 and bare-LF
//! framing, the outbound connect timeout. Every loop is bounded in count and time.

use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::common::*;
use serde_json::Value;

/// `vts status` guards: `section` is `caps_reached`, `counters` or `in_use`.
fn guard(v: &Vts, section: &str, key: &str) -> u64 {
    let s = v.status();
    s["guards"][section][key]
        .as_u64()
        .unwrap_or_else(|| panic!("no guards.{section}.{key} in {s}"))
}

fn await_guard(v: &Vts, section: &str, key: &str, ok: impl Fn(u64) -> bool) {
    v.await_status(&format!("guards.{section}.{key}"), |s: &Value| {
        s["guards"][section][key].as_u64().is_some_and(&ok)
    });
}

fn with_env(pairs: &[(&str, &str)]) -> Vts {
    let mut v = Vts::new(VTS);
    v.env = pairs
        .iter()
        .map(|(k, val)| (k.to_string(), val.to_string()))
        .collect();
    v
}

/// An OPTIONS over TCP with `vias` Via lines.
fn options(call_id: &str, vias: usize) -> Vec<u8> {
    let mut m = "OPTIONS sip:ping@127.0.0.1 SIP/2.0\r\n".to_string();
    for i in 0..vias.max(1) {
        m += &format!("Via: SIP/2.0/TCP 127.0.0.1:9;branch=z9hG4bK{call_id}x{i}\r\n");
    }
    m += &format!(
        "From: <sip:probe@127.0.0.1>;tag=f{call_id}\r\nTo: <sip:ping@127.0.0.1>\r\n\
         Call-ID: {call_id}\r\nCSeq: 1 OPTIONS\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n"
    );
    m.into_bytes()
}

/// Reads until a whole response head (or `timeout`): its text, or `None`.
fn read_head(s: &mut TcpStream, timeout: Duration) -> Option<String> {
    let deadline = Instant::now() + timeout;
    let mut got = Vec::new();
    let mut chunk = [0u8; 4096];
    while Instant::now() < deadline {
        s.set_read_timeout(Some(Duration::from_millis(100)))
            .unwrap();
        match s.read(&mut chunk) {
            Ok(0) => break,
            Ok(n) => got.extend_from_slice(&chunk[..n]),
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
            Err(_) => break,
        }
        if let Some(end) = got.windows(4).position(|w| w == b"\r\n\r\n") {
            return Some(String::from_utf8_lossy(&got[..end + 4]).into_owned());
        }
    }
    None
}

/// Whether the switch closes `s` within `timeout` (read gives 0 or a reset); what it sent
/// before is discarded.
fn closed_within(s: &mut TcpStream, timeout: Duration) -> bool {
    let deadline = Instant::now() + timeout;
    let mut chunk = [0u8; 16 * 1024];
    while Instant::now() < deadline {
        s.set_read_timeout(Some(Duration::from_millis(50))).unwrap();
        match s.read(&mut chunk) {
            Ok(0) => return true,
            Ok(_) => {}
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
            Err(_) => return true,
        }
    }
    false
}

fn connect(port: u16) -> TcpStream {
    TcpStream::connect_timeout(&at(port), Duration::from_secs(2)).unwrap()
}

fn proc_field(pid: u32, file: &str) -> String {
    std::fs::read_to_string(format!("/proc/{pid}/{file}")).unwrap()
}

/// Resident memory in KiB.
fn rss_kib(pid: u32) -> u64 {
    let status = proc_field(pid, "status");
    let line = status.lines().find(|l| l.starts_with("VmRSS:")).unwrap();
    line.split_whitespace().nth(1).unwrap().parse().unwrap()
}

/// CPU time used (user + system) in clock ticks.
fn cpu_ticks(pid: u32) -> u64 {
    let stat = proc_field(pid, "stat");
    // Fields after the command name (which is in parentheses): state is field 3; utime and
    // stime are fields 14 and 15.
    let rest = &stat[stat.rfind(')').unwrap() + 2..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    f[11].parse::<u64>().unwrap() + f[12].parse::<u64>().unwrap()
}

#[test]
fn tcp_connections_are_capped_per_address_and_in_all() {
    // Per address: the 4th connection from 127.0.0.1 is closed at once.
    let v = with_env(&[("VTS_SIP_TCP_MAX_CONNECTIONS_PER_ADDRESS", "3")]);
    let port = free_port();
    let serve = v.serve(&[format!("tcp:127.0.0.1:{port}")]);
    let mut open: Vec<TcpStream> = (0..3).map(|_| connect(port)).collect();
    await_guard(&v, "in_use", "tcp_connections", |n| n == 3);
    let mut refused = connect(port);
    assert!(closed_within(&mut refused, Duration::from_secs(5)));
    assert!(guard(&v, "caps_reached", "tcp_connections_per_address") >= 1);
    assert_eq!(guard(&v, "in_use", "tcp_connections"), 3);
    // The admitted ones work.
    open[0].write_all(&options("cap1", 1)).unwrap();
    let r = read_head(&mut open[0], Duration::from_secs(5)).expect("no reply");
    assert!(r.starts_with("SIP/2.0 200"), "{r}");
    open.clear();
    await_guard(&v, "in_use", "tcp_connections", |n| n == 0);
    serve.stop();

    // In all.
    let v = with_env(&[("VTS_SIP_TCP_MAX_CONNECTIONS", "2")]);
    let port = free_port();
    let serve = v.serve(&[format!("tcp:127.0.0.1:{port}")]);
    assert!(serve.log_text().contains("TCP connections capped at 2"));
    let open: Vec<TcpStream> = (0..2).map(|_| connect(port)).collect();
    await_guard(&v, "in_use", "tcp_connections", |n| n == 2);
    let mut refused = connect(port);
    assert!(closed_within(&mut refused, Duration::from_secs(5)));
    assert!(guard(&v, "caps_reached", "tcp_connections") >= 1);
    drop(open);
    await_guard(&v, "in_use", "tcp_connections", |n| n == 0);
    let mut again = connect(port);
    again.write_all(&options("cap2", 1)).unwrap();
    let r = read_head(&mut again, Duration::from_secs(5)).expect("no reply after the cap");
    assert!(r.starts_with("SIP/2.0 200"), "{r}");
    serve.stop();
}

#[test]
fn a_client_that_never_reads_is_closed_at_the_send_queue_bound() {
    flood_without_reading(&[("VTS_SIP_TCP_SEND_QUEUE_BYTES", "65536")]);
    // The default bound (1 MiB).
    flood_without_reading(&[]);
}

/// Sends 300-Via OPTIONS without ever reading (at most 20,000 or 20 s): the switch must close
/// the connection at its send queue bound, its RSS staying under 100 MiB.
fn flood_without_reading(env: &[(&str, &str)]) {
    let v = with_env(env);
    // From a customer's address: a stranger would be blocked by the per-source bucket after
    // `security.flood_threshold` requests (tests/flood.rs); a customer's OPTIONS are all
    // answered, so only the send queue's bound holds this client.
    v.add_customer("reads-nothing", "127.0.0.1");
    let port = free_port();
    let serve = v.serve(&[format!("tcp:127.0.0.1:{port}")]);
    let pid = serve.child.id();
    let rss_before = rss_kib(pid);
    // 300 Via lines: each request is ~14 KB, and so is each 200 it gets.
    let msg = options("flood", 300);
    assert!(msg.len() < 16 * 1024, "{}", msg.len());
    let mut s = connect(port);
    s.set_write_timeout(Some(Duration::from_secs(2))).unwrap();
    let started = Instant::now();
    let (mut sent, mut closed, mut max_rss) = (0u32, false, rss_before);
    while sent < 20_000 && started.elapsed() < Duration::from_secs(20) {
        match s.write_all(&msg) {
            Ok(()) => sent += 1,
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
            Err(_) => {
                closed = true;
                break;
            }
        }
        if sent % 100 == 0 {
            max_rss = max_rss.max(rss_kib(pid));
            if max_rss > 200 * 1024 {
                break; // unbounded: no need to watch it take the machine
            }
        }
    }
    max_rss = max_rss.max(rss_kib(pid));
    if !closed {
        // The last writes may sit in the socket buffers: the close shows on reading.
        closed = closed_within(&mut s, Duration::from_secs(5));
    }
    eprintln!(
        "sent {sent} requests in {:?}; RSS {rss_before} -> max {max_rss} KiB",
        started.elapsed()
    );
    assert!(closed, "the switch kept a connection that never reads");
    assert!(guard(&v, "caps_reached", "tcp_send_queue") >= 1);
    assert!(max_rss < 100 * 1024, "RSS {max_rss} KiB");
    await_guard(&v, "in_use", "tcp_connections", |n| n == 0);
    serve.stop();
}

#[test]
fn slow_silent_and_idle_connections_are_closed() {
    let v = with_env(&[
        ("VTS_SIP_TCP_HEADER_TIMEOUT_MS", "500"),
        ("VTS_SIP_TCP_IDLE_TIMEOUT_SECS", "2"),
    ]);
    let port = free_port();
    let serve = v.serve(&[format!("tcp:127.0.0.1:{port}")]);

    // Never sends anything.
    let mut silent = connect(port);
    let t = Instant::now();
    assert!(closed_within(&mut silent, Duration::from_secs(5)));
    assert!(
        t.elapsed() >= Duration::from_millis(400),
        "{:?}",
        t.elapsed()
    );

    // Sends a head a line every 100 ms (never finishing it).
    let mut slow = connect(port);
    slow.write_all(b"OPTIONS sip:ping@127.0.0.1 SIP/2.0\r\n")
        .unwrap();
    let t = Instant::now();
    let mut closed = false;
    for i in 0..50 {
        if slow
            .write_all(format!("X-Slow: {i}\r\n").as_bytes())
            .is_err()
            || closed_within(&mut slow, Duration::from_millis(100))
        {
            closed = true;
            break;
        }
    }
    assert!(closed, "a head trickled in forever was never closed");
    assert!(t.elapsed() < Duration::from_secs(3), "{:?}", t.elapsed());

    // A whole message, then nothing: the header timeout no longer applies, the idle one does.
    let mut idle = connect(port);
    idle.write_all(&options("idle", 1)).unwrap();
    let r = read_head(&mut idle, Duration::from_secs(5)).expect("no reply");
    assert!(r.starts_with("SIP/2.0 200"), "{r}");
    let t = Instant::now();
    assert!(
        !closed_within(&mut idle, Duration::from_millis(1000)),
        "closed by the header timeout between messages"
    );
    assert!(closed_within(&mut idle, Duration::from_secs(6)));
    assert!(
        t.elapsed() >= Duration::from_millis(1800),
        "{:?}",
        t.elapsed()
    );

    assert!(guard(&v, "caps_reached", "tcp_timeout") >= 3);
    await_guard(&v, "in_use", "tcp_connections", |n| n == 0);
    serve.stop();
}

/// `vts serve` on TCP under an open-file limit of `nofile` (prlimit execs it: same PID).
/// Every test connection comes from 127.0.0.1 and may send nothing: neither the
/// per-address cap nor the header timeout may end them first.
fn serve_with_nofile(v: &Vts, port: u16, nofile: u32) -> Serve {
    let log = v.dir.path().join("serve.log");
    let mut c = Command::new("prlimit");
    c.arg(format!("--nofile={nofile}:{nofile}"))
        .arg(VTS)
        .arg("--data-dir")
        .arg(v.dir.path())
        .arg("serve")
        .arg("--sip")
        .arg(format!("tcp:127.0.0.1:{port}"))
        .args(["--http", "off"])
        .env_remove("VTS_SIP")
        .env_remove("VTS_DB")
        .env_remove("VTS_DATA_DIR")
        .env("VTS_SIP_TCP_MAX_CONNECTIONS_PER_ADDRESS", "100000")
        .env("VTS_SIP_TCP_HEADER_TIMEOUT_MS", "600000")
        .stdout(Stdio::piped())
        .stderr(std::fs::File::create(&log).unwrap());
    let mut child = c.spawn().unwrap();
    let mut line = String::new();
    std::io::BufRead::read_line(
        &mut std::io::BufReader::new(child.stdout.take().unwrap()),
        &mut line,
    )
    .unwrap();
    let serve = Serve {
        child,
        log,
        ready_after: Duration::ZERO,
    };
    assert!(
        line.starts_with("vts: ready on"),
        "{line}\n{}",
        serve.log_text()
    );
    serve
}

/// Opens up to `n` connections (bounded: 500 ms each) and keeps them.
fn open_many(port: u16, n: usize) -> Vec<TcpStream> {
    (0..n)
        .filter_map(|_| TcpStream::connect_timeout(&at(port), Duration::from_secs(3)).ok())
        .collect()
}

/// CPU ticks (1/100 s) the process uses over 2 s, half a second after the flood ended.
fn cpu_over_two_seconds(pid: u32) -> u64 {
    std::thread::sleep(Duration::from_millis(500));
    let before = cpu_ticks(pid);
    std::thread::sleep(Duration::from_secs(2));
    cpu_ticks(pid) - before
}

fn options_works(port: u16, call_id: &str) {
    let mut s = connect(port);
    s.write_all(&options(call_id, 1)).unwrap();
    let r = read_head(&mut s, Duration::from_secs(5)).expect("no reply after the flood");
    assert!(r.starts_with("SIP/2.0 200"), "{r}");
}

#[test]
fn more_connections_than_descriptors_are_refused_at_the_cap_without_spinning() {
    let v = Vts::new(VTS);
    let port = free_port();
    let serve = serve_with_nofile(&v, port, 256);
    let pid = serve.child.id();
    assert!(
        serve.log_text().contains("TCP connections capped at 192"),
        "{}",
        serve.log_text()
    );
    // 400 connections, more than the process has descriptors for; all kept open.
    let conns = open_many(port, 400);
    let used = cpu_over_two_seconds(pid);
    assert!(used < 50, "{used} ticks of CPU in 2 s with 400 connections");
    assert_eq!(guard(&v, "in_use", "tcp_connections"), 192);
    assert!(guard(&v, "caps_reached", "tcp_connections") >= 1);
    let failures = serve.log_text().matches("TCP accept failed").count();
    assert!(failures <= 5, "{failures} accept-failure lines");

    drop(conns);
    await_guard(&v, "in_use", "tcp_connections", |n| n == 0);
    options_works(port, "after");
    serve.stop();
}

#[test]
fn accept_backs_off_when_descriptors_run_out_under_the_cap() {
    let v = Vts::new(VTS);
    let port = free_port();
    let serve = serve_with_nofile(&v, port, 1024);
    let pid = serve.child.id();
    // The limit lowered under the running switch: its cap (922) no longer keeps accept
    // from failing with EMFILE.
    let ok = Command::new("prlimit")
        .args(["--pid", &pid.to_string(), "--nofile=128:128"])
        .status()
        .unwrap();
    assert!(ok.success());
    // No `vts status` while the process is out of descriptors: the control socket could not
    // accept it either.
    let flood = Instant::now();
    // ~110 accepted before descriptors run out, the rest wait in the listen backlog.
    let conns = open_many(port, 200);
    let lines = || {
        serve
            .log_text()
            .matches("TCP accept failed: backing off")
            .count()
    };
    let before = lines();
    let used = cpu_over_two_seconds(pid);
    assert!(
        used < 50,
        "{used} ticks of CPU in 2 s while out of descriptors"
    );
    let (after, secs) = (lines(), flood.elapsed().as_secs() as usize);
    assert!(
        after >= 1,
        "accept never failed: the test did not exhaust descriptors"
    );
    assert!(
        after - before <= 3 && after <= secs + 2,
        "{after} accept-failure lines in {secs} s ({} in the last 2.5 s)",
        after - before
    );
    assert_eq!(conns.len(), 200, "after {:?}", flood.elapsed());
    drop(conns);
    // Descriptors come back as the switch sees the closes; accept resumes within its back-off
    // (at most 1 s).
    std::thread::sleep(Duration::from_secs(2));
    await_guard(&v, "in_use", "tcp_connections", |n| n == 0);
    assert!(guard(&v, "caps_reached", "accept_backoff") >= 1);
    options_works(port, "after-emfile");
    serve.stop();
}

/// An INVITE from `from` over `transport` (`TCP`/`UDP`).
fn invite(transport: &str, from: SocketAddr, switch: u16, call_id: &str) -> Vec<u8> {
    let sdp = "v=0\r\no=u 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n\
               m=audio 40000 RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\n";
    format!(
        "INVITE sip:34911234567@127.0.0.1:{switch} SIP/2.0\r\n\
         Via: SIP/2.0/{transport} {from};branch=z9hG4bK-{call_id}\r\n\
         From: <sip:912013022@127.0.0.1>;tag=c-{call_id}\r\n\
         To: <sip:34911234567@127.0.0.1:{switch}>\r\n\
         Call-ID: {call_id}\r\nCSeq: 1 INVITE\r\n\
         Contact: <sip:caller@{from};transport={}>\r\nMax-Forwards: 70\r\n\
         Content-Type: application/sdp\r\nContent-Length: {}\r\n\r\n{sdp}",
        transport.to_lowercase(),
        sdp.len()
    )
    .into_bytes()
}

/// Waits (bounded) for a request with `method` on a carrier's UDP socket: the text and sender.
fn carrier_receives(sock: &UdpSocket, method: &str) -> (String, SocketAddr) {
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut buf = vec![0u8; 65536];
    sock.set_read_timeout(Some(Duration::from_millis(100)))
        .unwrap();
    while Instant::now() < deadline {
        if let Ok((n, from)) = sock.recv_from(&mut buf) {
            let text = String::from_utf8_lossy(&buf[..n]).into_owned();
            if text.starts_with(&format!("{method} ")) {
                return (text, from);
            }
        }
    }
    panic!("the carrier never received {method}");
}

/// A response to `req` with `status`: its Via, From, To (tagged), Call-ID and CSeq.
fn respond(req: &str, status: &str) -> Vec<u8> {
    let mut r = format!("SIP/2.0 {status}\r\n");
    for line in req.lines() {
        let name = line.split(':').next().unwrap_or("").to_ascii_lowercase();
        match name.as_str() {
            "via" | "from" | "call-id" | "cseq" => r += &format!("{line}\r\n"),
            "to" => r += &format!("{line};tag=carrier\r\n"),
            _ => {}
        }
    }
    r += "Content-Length: 0\r\n\r\n";
    r.into_bytes()
}

#[test]
fn a_reply_never_opens_a_connection_to_where_the_request_came_from() {
    let v = Vts::new(VTS);
    v.add_customer("acme", "127.0.0.1");
    let carrier = UdpSocket::bind("127.0.0.1:0").unwrap();
    let carrier_port = carrier.local_addr().unwrap().port();
    v.add_carrier("udp-carrier", carrier_port, 10, "udp");
    let port = free_port();
    let serve = v.serve(&[
        format!("udp:127.0.0.1:{port}"),
        format!("tcp:127.0.0.1:{port}"),
    ]);

    // The customer sends an INVITE over TCP and goes away before the answer.
    let mut customer = connect(port);
    let customer_addr = customer.local_addr().unwrap();
    customer
        .write_all(&invite("TCP", customer_addr, port, "noconnect"))
        .unwrap();
    let (req, switch_addr) = carrier_receives(&carrier, "INVITE");
    customer.shutdown(std::net::Shutdown::Both).unwrap();
    drop(customer);
    await_guard(&v, "in_use", "tcp_connections", |n| n == 0);
    // Where the customer was, a listener waits for a connection that must never come.
    let trap = TcpListener::bind(customer_addr).unwrap();
    trap.set_nonblocking(true).unwrap();

    carrier
        .send_to(&respond(&req, "486 Busy Here"), switch_addr)
        .unwrap();
    // The 486 is dropped and counted; nothing connects to the trap, then or a second later.
    let mut dropped_at = None;
    let deadline = Instant::now() + Duration::from_secs(10);
    while dropped_at.is_none_or(|t: Instant| t.elapsed() < Duration::from_secs(1)) {
        assert!(
            Instant::now() < deadline,
            "the 486 was never counted as dropped"
        );
        if let Ok((_, from)) = trap.accept() {
            panic!("the switch connected back to {customer_addr} from {from}");
        }
        let dropped = v.status()["guards"]["counters"]["tcp_no_connection"]
            .as_u64()
            .unwrap_or(0);
        if dropped >= 1 && dropped_at.is_none() {
            dropped_at = Some(Instant::now());
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(guard(&v, "in_use", "outbound_connects"), 0);
    serve.stop();
}

#[test]
fn oversize_messages_get_513_unframeable_ones_400_and_bare_lf_heads_are_answered() {
    let v = Vts::new(VTS);
    let port = free_port();
    let serve = v.serve(&[format!("tcp:127.0.0.1:{port}")]);

    // Content-Length past sip.max_message_size (16 KiB).
    let mut s = connect(port);
    let head = b"INVITE sip:1@127.0.0.1 SIP/2.0\r\n\
        Via: SIP/2.0/TCP 127.0.0.1:9;branch=z9hG4bK-big1\r\n\
        From: <sip:a@127.0.0.1>;tag=1\r\nTo: <sip:1@127.0.0.1>\r\nCall-ID: big1\r\n\
        CSeq: 1 INVITE\r\nMax-Forwards: 70\r\nContent-Length: 100000\r\n\r\n";
    s.write_all(head).unwrap();
    let _ = s.write_all(&[b'x'; 4096]);
    let r = read_head(&mut s, Duration::from_secs(5)).expect("no 513");
    assert!(r.starts_with("SIP/2.0 513 Message Too Large\r\n"), "{r}");
    assert!(r.contains("Call-ID: big1\r\n"), "{r}");
    assert!(closed_within(&mut s, Duration::from_secs(5)));

    // A head that never ends within the limit.
    let mut s = connect(port);
    let mut head = b"OPTIONS sip:1@127.0.0.1 SIP/2.0\r\n\
        Via: SIP/2.0/TCP 127.0.0.1:9;branch=z9hG4bK-big2\r\n\
        From: <sip:a@127.0.0.1>;tag=1\r\nTo: <sip:1@127.0.0.1>\r\nCall-ID: big2\r\n\
        CSeq: 1 OPTIONS\r\n"
        .to_vec();
    while head.len() < 20_000 {
        head.extend_from_slice(b"X-Padding: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\r\n");
    }
    let _ = s.write_all(&head);
    let r = read_head(&mut s, Duration::from_secs(5)).expect("no 513 for a long head");
    assert!(r.starts_with("SIP/2.0 513 "), "{r}");
    assert!(r.contains("Call-ID: big2\r\n"), "{r}");
    assert!(closed_within(&mut s, Duration::from_secs(5)));
    assert!(guard(&v, "counters", "oversize") >= 2);

    // No Content-Length on a stream: 400, then the close.
    let mut s = connect(port);
    s.write_all(
        b"OPTIONS sip:ping@127.0.0.1 SIP/2.0\r\n\
          Via: SIP/2.0/TCP 127.0.0.1:9;branch=z9hG4bK-nocl\r\n\
          From: <sip:a@127.0.0.1>;tag=1\r\nTo: <sip:ping@127.0.0.1>\r\nCall-ID: nocl\r\n\
          CSeq: 1 OPTIONS\r\nMax-Forwards: 70\r\n\r\n",
    )
    .unwrap();
    let r = read_head(&mut s, Duration::from_secs(5)).expect("no 400 without Content-Length");
    assert!(r.starts_with("SIP/2.0 400 Bad Request\r\n"), "{r}");
    assert!(closed_within(&mut s, Duration::from_secs(5)));

    // Bare LF line ends: framed and answered, not left waiting.
    let mut s = connect(port);
    s.write_all(
        b"OPTIONS sip:ping@127.0.0.1 SIP/2.0\n\
          Via: SIP/2.0/TCP 127.0.0.1:9;branch=z9hG4bK-lf1\n\
          From: <sip:a@127.0.0.1>;tag=1\nTo: <sip:ping@127.0.0.1>\nCall-ID: lf1\n\
          CSeq: 1 OPTIONS\nMax-Forwards: 70\nContent-Length: 0\n\n",
    )
    .unwrap();
    let r = read_head(&mut s, Duration::from_secs(5)).expect("a bare-LF OPTIONS went unanswered");
    assert!(r.starts_with("SIP/2.0 200"), "{r}");
    serve.stop();
}

/// A listener that completes no more handshakes: its accept queue is full (SYNs dropped).
fn black_hole() -> (TcpListener, Vec<TcpStream>) {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap();
    let mut fill = Vec::new();
    for _ in 0..5000 {
        match TcpStream::connect_timeout(&addr, Duration::from_millis(200)) {
            Ok(s) => fill.push(s),
            Err(_) => return (l, fill),
        }
    }
    panic!("the accept queue never filled");
}

#[test]
fn a_tcp_carrier_that_never_answers_the_connect_fails_within_the_connect_timeout() {
    let (hole, _fill) = black_hole();
    let v = with_env(&[("VTS_SIP_TCP_CONNECT_TIMEOUT_MS", "300")]);
    v.add_customer("acme", "127.0.0.1");
    v.add_carrier("dead-tcp", hole.local_addr().unwrap().port(), 10, "tcp");
    let port = free_port();
    let serve = v.serve(&[
        format!("udp:127.0.0.1:{port}"),
        format!("tcp:127.0.0.1:{port}"),
    ]);
    let customer = UdpSocket::bind("127.0.0.1:0").unwrap();
    let from = customer.local_addr().unwrap();
    let t = Instant::now();
    customer
        .send_to(&invite("UDP", from, port, "deadconnect"), at(port))
        .unwrap();
    customer
        .set_read_timeout(Some(Duration::from_millis(100)))
        .unwrap();
    let mut buf = vec![0u8; 65536];
    let final_status = loop {
        assert!(
            t.elapsed() < Duration::from_secs(10),
            "no final response\n{}",
            serve.log_text()
        );
        if let Ok((n, _)) = customer.recv_from(&mut buf) {
            let text = String::from_utf8_lossy(&buf[..n]).into_owned();
            let code: u16 = text[8..11].parse().unwrap_or(0);
            if code >= 200 {
                break text;
            }
        }
    };
    // Well before the first-response timeout (5 s) and the kernel's SYN retries (minutes).
    assert!(
        t.elapsed() < Duration::from_secs(3),
        "final response after {:?}: {final_status}",
        t.elapsed()
    );
    assert!(guard(&v, "caps_reached", "outbound_connects") >= 1);
    assert_eq!(guard(&v, "in_use", "outbound_connects"), 0);
    serve.stop();
}
