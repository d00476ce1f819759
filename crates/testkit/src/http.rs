//! A plain HTTP/1.1 client for tests against the switch's HTTP server: one request per
//! connection (`Connection: close`), read to the end, bounded in time. HTTPS goes through
//! curl in the tests that need it.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

/// A response: status, headers (names lower-cased), body.
#[derive(Debug)]
pub struct Response {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl Response {
    /// The first header `name` (lower-case).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

/// `GET path` with extra header lines (`"Authorization: Bearer x"`); panics when the server
/// does not answer within 10 s.
pub fn get(addr: SocketAddr, path: &str, headers: &[&str]) -> Response {
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(5)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let mut req = format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n");
    for h in headers {
        req.push_str(h);
        req.push_str("\r\n");
    }
    req.push_str("\r\n");
    s.write_all(req.as_bytes()).unwrap();
    let mut raw = Vec::new();
    s.read_to_end(&mut raw).unwrap();
    parse(&String::from_utf8_lossy(&raw))
}

/// Sends `bytes` as they are (a malformed request, say) and reads what comes back until the
/// server closes (bounded: 10 s); `None` when it closed without a response.
pub fn raw(addr: SocketAddr, bytes: &[u8]) -> Option<Response> {
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(5)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    // The server may answer and close before it has read everything sent.
    let _ = s.write_all(bytes);
    let mut raw = Vec::new();
    let _ = s.read_to_end(&mut raw);
    let text = String::from_utf8_lossy(&raw);
    text.contains("\r\n\r\n").then(|| parse(&text))
}

fn parse(raw: &str) -> Response {
    let (head, body) = raw
        .split_once("\r\n\r\n")
        .unwrap_or_else(|| panic!("no end of head in {raw:?}"));
    let mut lines = head.lines();
    let status = lines
        .next()
        .and_then(|l| l.split(' ').nth(1))
        .and_then(|c| c.parse().ok())
        .unwrap_or_else(|| panic!("no status line in {raw:?}"));
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    let chunked = headers
        .iter()
        .any(|(n, v)| n == "transfer-encoding" && v.eq_ignore_ascii_case("chunked"));
    let body = if chunked {
        unchunk(body)
    } else {
        body.to_string()
    };
    Response {
        status,
        headers,
        body,
    }
}

/// A chunked body, joined.
fn unchunk(mut body: &str) -> String {
    let mut out = String::new();
    while let Some((size, rest)) = body.split_once("\r\n") {
        let n = usize::from_str_radix(size.trim(), 16).unwrap_or(0);
        if n == 0 || rest.len() < n {
            break;
        }
        out.push_str(&rest[..n]);
        body = rest[n..].trim_start_matches("\r\n");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_and_chunked_bodies() {
        let r = parse("HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok");
        assert_eq!((r.status, r.body.as_str()), (200, "ok"));
        let r = parse(
            "HTTP/1.1 503 Service Unavailable\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n",
        );
        assert_eq!((r.status, r.body.as_str()), (503, "abcde"));
        assert_eq!(r.header("transfer-encoding"), Some("chunked"));
    }
}

/// What a [`Receiver`] does with a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reply {
    /// Answers with this status (and an empty body).
    Status(u16),
    /// Reads the request and never answers (the connection stays open until the test ends).
    Hang,
}

/// One request a [`Receiver`] got.
#[derive(Debug, Clone)]
pub struct Received {
    pub method: String,
    pub path: String,
    /// Header names lower-cased.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Received {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

/// A webhook receiver on loopback: answers requests by its script (the last entry for every
/// request past the end) and keeps each request it read, in order. A thread per connection.
pub struct Receiver {
    pub addr: SocketAddr,
    got: std::sync::Arc<(std::sync::Mutex<Vec<Received>>, std::sync::Condvar)>,
}

impl Receiver {
    pub fn start(script: Vec<Reply>) -> Receiver {
        use std::io::BufRead;
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let got: std::sync::Arc<(std::sync::Mutex<Vec<Received>>, std::sync::Condvar)> =
            Default::default();
        let shared = got.clone();
        let script = std::sync::Arc::new(script);
        std::thread::spawn(move || {
            for conn in listener.incoming() {
                let Ok(conn) = conn else { continue };
                let (shared, script) = (shared.clone(), script.clone());
                std::thread::spawn(move || {
                    let mut reader = std::io::BufReader::new(conn);
                    loop {
                        let mut line = String::new();
                        if reader.read_line(&mut line).unwrap_or(0) == 0 {
                            return;
                        }
                        let mut parts = line.split_whitespace();
                        let method = parts.next().unwrap_or("").to_string();
                        let path = parts.next().unwrap_or("").to_string();
                        let mut headers = Vec::new();
                        loop {
                            let mut h = String::new();
                            if reader.read_line(&mut h).unwrap_or(0) == 0 {
                                return;
                            }
                            let h = h.trim_end();
                            if h.is_empty() {
                                break;
                            }
                            if let Some((n, v)) = h.split_once(':') {
                                headers.push((n.trim().to_ascii_lowercase(), v.trim().to_string()));
                            }
                        }
                        let len: usize = headers
                            .iter()
                            .find(|(n, _)| n == "content-length")
                            .and_then(|(_, v)| v.parse().ok())
                            .unwrap_or(0);
                        let mut body = vec![0; len];
                        if reader.read_exact(&mut body).is_err() {
                            return;
                        }
                        let reply = {
                            let (lock, cv) = &*shared;
                            let mut got = lock.lock().unwrap();
                            got.push(Received {
                                method,
                                path,
                                headers,
                                body,
                            });
                            cv.notify_all();
                            let n = got.len() - 1;
                            *script
                                .get(n)
                                .or(script.last())
                                .unwrap_or(&Reply::Status(200))
                        };
                        match reply {
                            Reply::Hang => loop {
                                std::thread::park();
                            },
                            Reply::Status(code) => {
                                let out = format!(
                                    "HTTP/1.1 {code} X\r\nContent-Length: 0\r\nConnection: keep-alive\r\n\r\n"
                                );
                                if reader.get_mut().write_all(out.as_bytes()).is_err() {
                                    return;
                                }
                            }
                        }
                    }
                });
            }
        });
        Receiver { addr, got }
    }

    /// The requests so far.
    pub fn received(&self) -> Vec<Received> {
        self.got.0.lock().unwrap().clone()
    }

    /// The requests received once there are `n`, or when `timeout` has passed (then fewer):
    /// for a test showing that something does not arrive.
    pub fn requests_within(&self, n: usize, timeout: Duration) -> Vec<Received> {
        let (lock, cv) = &*self.got;
        let deadline = std::time::Instant::now() + timeout;
        let mut got = lock.lock().unwrap();
        while got.len() < n {
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            if left.is_zero() {
                break;
            }
            got = cv.wait_timeout(got, left).unwrap().0;
        }
        got.clone()
    }

    /// Waits (bounded) until `n` requests came, and returns them.
    pub fn await_requests(&self, n: usize, timeout: Duration) -> Vec<Received> {
        let (lock, cv) = &*self.got;
        let deadline = std::time::Instant::now() + timeout;
        let mut got = lock.lock().unwrap();
        while got.len() < n {
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            assert!(
                !left.is_zero(),
                "{} requests of {n} within {timeout:?}",
                got.len()
            );
            got = cv.wait_timeout(got, left).unwrap().0;
        }
        got.clone()
    }
}
