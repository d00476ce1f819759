//! The two checks the fuzz targets run, shared with the regression tests that replay what
//! the fuzzer found (`tests/fixtures/fuzz/`). Included by path from `fuzz/fuzz_targets/`.

#![allow(dead_code)] // each includer uses one of the two checks

use bytes::Bytes;
use sip_message::sanity::{self, SanityConfig};
use sip_message::{HeaderName, framing, parse_datagram, parse_stream_message, uri::Uri};

/// Any bytes: framing, parse, sanity, every typed view, a forwarding edit and response
/// building must return without panicking.
pub(crate) fn exercise_any(data: &[u8]) {
    if let Ok(framing::Frame::Message(n)) = framing::frame(data, 16 * 1024) {
        // A framed stream message must parse with the stream rules or fail cleanly.
        let _ = parse_stream_message(Bytes::copy_from_slice(&data[..n]));
    }
    let msg = match parse_datagram(Bytes::copy_from_slice(data)) {
        Ok(m) => m,
        Err(e) => {
            let _ = sanity::reject_unparseable(&e);
            if let Some(h) = e.request_headers() {
                let _ = sip_message::build::response(h, 400, "Bad Request", Some(b"t"), &[]);
            }
            return;
        }
    };
    let cfg = SanityConfig::default();
    let _ = sanity::check_request(&msg, &cfg);
    let _ = sanity::check_response(&msg, &cfg);
    let h = msg.headers();
    for v in h.vias().flatten() {
        let _ = (
            v.branch(),
            v.rport(),
            v.received(),
            v.maddr(),
            v.ttl(),
            v.has_rfc3261_branch(),
        );
    }
    let _ = (
        h.from(),
        h.to(),
        h.call_id(),
        h.cseq(),
        h.max_forwards(),
        h.content_type(),
    );
    let _ = (
        h.retry_after(),
        h.session_expires(),
        h.expires(),
        h.q850_cause(),
        h.user_agent(),
    );
    let _ = h.routes().count() + h.record_routes().count() + h.contacts().count();
    for name in [
        HeaderName::Supported,
        HeaderName::Require,
        HeaderName::ProxyRequire,
        HeaderName::Allow,
    ] {
        let _ = h.tokens(name).count();
    }
    if let Some(u) = msg.request_uri_bytes() {
        if let Ok(uri) = Uri::parse(u) {
            let _ = uri.user().map(sip_message::uri::unescape);
        }
        let _ = sip_message::build::response(h, 200, "OK", Some(b"t"), &[]);
        let _ = sip_message::build::cancel(&msg, None);
    }
    let mut e = msg.edit();
    let _ = e.prepend_via(b"SIP/2.0/UDP 10.0.0.1;branch=z9hG4bKx");
    let _ = e.set_via_received(Some(b"192.0.2.1"), 5060);
    let _ = e.decrement_max_forwards();
    let _ = e.remove_first_route();
    let _ = e.remove_top_via();
    let _ = e.set_to_user(b"123");
    let _ = e.set_from_user(b"456");
    let _ = e.set_request_uri_user(b"789");
    let _ = e.prepend_record_route(b"<sip:10.0.0.1;lr>");
    let _ = e.finish();
}

/// Parse → forwarding edits → re-parse. A request that passed sanity still parses and passes
/// sanity after every edit a proxy makes, the edits are visible, and the headers nobody
/// touched are byte-identical.
pub(crate) fn edit_invariant(data: &[u8]) {
    let Ok(msg) = parse_datagram(Bytes::copy_from_slice(data)) else {
        return;
    };
    let cfg = SanityConfig::default();
    if !msg.is_request() || sanity::check_request(&msg, &cfg).is_err() {
        return;
    }
    let h = msg.headers();
    response_via_invariant(&msg);
    let mf = h.max_forwards().unwrap().unwrap_or(70);
    let mut e = msg.edit();
    e.prepend_via(b"SIP/2.0/UDP 203.0.113.10:5060;branch=z9hG4bKfuzz")
        .unwrap();
    e.set_via_received(Some(b"192.0.2.1"), 5062).unwrap();
    e.prepend_record_route(b"<sip:203.0.113.10;lr>").unwrap();
    if h.get(HeaderName::Route).is_some() {
        e.remove_first_route().unwrap();
    }
    if mf > 1 {
        e.decrement_max_forwards().unwrap();
    }
    let _ = e.set_request_uri_user(b"34911234567");
    let _ = e.set_to_user(b"34911234567");
    let _ = e.set_from_user(b"34912013022");
    e.set_body(None, b"v=0\r\n").unwrap();
    let out = e.finish();
    let again = parse_datagram(out.clone()).unwrap_or_else(|err| {
        panic!(
            "edited message does not parse ({err}):\n{}",
            String::from_utf8_lossy(&out)
        )
    });
    if let Err(r) = sanity::check_request(&again, &cfg) {
        panic!(
            "edited message fails sanity ({r:?}):\n{}",
            String::from_utf8_lossy(&out)
        );
    }
    let h2 = again.headers();
    assert_eq!(h2.top_via().unwrap().branch(), Some(&b"z9hG4bKfuzz"[..]));
    assert_eq!(h2.vias().count(), h.vias().count() + 1);
    assert_eq!(h2.call_id().unwrap(), h.call_id().unwrap());
    assert_eq!(h2.cseq().unwrap().seq, h.cseq().unwrap().seq);
    assert_eq!(again.body(), b"v=0\r\n");
    for line in h.iter().filter(|l| l.name == HeaderName::Other) {
        let bytes = line.line.of(msg.raw());
        assert!(
            out.windows(bytes.len()).any(|w| w == bytes),
            "unknown header changed"
        );
    }
}

/// A response built for a request that passed sanity, with its top Via filled from a
/// source address, parses, keeps the branch and carries the source (RFC 3581 §4).
fn response_via_invariant(msg: &sip_message::Message) {
    let h = msg.headers();
    let source: std::net::SocketAddr = "192.0.2.1:5062".parse().unwrap();
    let out = sip_message::build::response_from(h, Some(source.into()), 200, "OK", None, &[]);
    let resp = parse_datagram(out.clone()).unwrap_or_else(|err| {
        panic!(
            "response does not parse ({err}):\n{}",
            String::from_utf8_lossy(&out)
        )
    });
    let (asked, got) = (h.top_via().unwrap(), resp.headers().top_via().unwrap());
    assert_eq!(got.branch(), asked.branch());
    assert_eq!(resp.headers().vias().count(), h.vias().count());
    if asked.rport() == Some(None) {
        assert_eq!(got.rport(), Some(Some(5062)));
        assert_eq!(got.received(), Some(&b"192.0.2.1"[..]));
    }
}
