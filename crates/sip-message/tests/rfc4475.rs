//! RFC 4475 torture messages: each of the 49 files gets the outcome that
//! `fixtures/rfc4475/README.md` gives for a proxy (parse + sanity), and no input may panic.

use bytes::Bytes;

#[path = "support/checks.rs"]
mod checks;
use sip_message::framing::{self, Frame};
use sip_message::headers::ContactValue;
use sip_message::sanity::{self, DropReason, Reject, SanityConfig};
use sip_message::uri::{Host, Uri, unescape};
use sip_message::{HeaderName, Message, Method, parse_datagram};

#[derive(Debug, PartialEq, Eq)]
enum Outcome {
    /// Parsed and passed sanity.
    Pass,
    /// Answered with this status.
    Reply(u16),
    /// Dropped silently.
    Drop,
}

fn fixture(name: &str) -> Bytes {
    let path = format!(
        "{}/tests/fixtures/rfc4475/{name}.dat",
        env!("CARGO_MANIFEST_DIR")
    );
    Bytes::from(std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e}")))
}

fn outcome(raw: Bytes) -> Outcome {
    let cfg = SanityConfig::default();
    let verdict = match parse_datagram(raw) {
        Err(e) => Err(sanity::reject_unparseable(&e)),
        Ok(m) if m.is_request() => sanity::check_request(&m, &cfg),
        Ok(m) => sanity::check_response(&m, &cfg),
    };
    match verdict {
        Ok(()) => Outcome::Pass,
        Err(Reject::Reply { status, .. }) => Outcome::Reply(status),
        Err(Reject::Drop(_)) => Outcome::Drop,
    }
}

const EXPECTED: &[(&str, Outcome)] = &[
    // §3.1.1 valid messages: parse and pass sanity.
    ("wsinv", Outcome::Pass),
    ("intmeth", Outcome::Pass),
    ("esc01", Outcome::Pass),
    ("escnull", Outcome::Pass),
    ("esc02", Outcome::Pass),
    ("lwsdisp", Outcome::Pass),
    ("longreq", Outcome::Pass),
    ("dblreq", Outcome::Pass),
    ("semiuri", Outcome::Pass),
    ("transports", Outcome::Pass),
    ("mpart01", Outcome::Pass),
    ("unreason", Outcome::Pass),
    ("noreason", Outcome::Pass),
    // §3.1.2 invalid messages.
    ("badinv01", Outcome::Reply(400)),
    ("clerr", Outcome::Reply(400)),
    ("ncl", Outcome::Reply(400)),
    ("scalar02", Outcome::Reply(400)),
    ("scalarlg", Outcome::Drop),
    ("quotbal", Outcome::Reply(400)),
    ("ltgtruri", Outcome::Reply(400)),
    ("lwsruri", Outcome::Reply(400)),
    ("lwsstart", Outcome::Reply(400)),
    ("trws", Outcome::Pass), // trailing SP after the version: accepting is allowed
    ("escruri", Outcome::Reply(400)),
    ("baddate", Outcome::Pass), // Date is not read by a proxy: forwarded unchanged
    ("regbadct", Outcome::Reply(400)),
    ("badaspec", Outcome::Reply(400)),
    ("baddn", Outcome::Reply(400)),
    ("badvers", Outcome::Reply(505)),
    ("mismatch01", Outcome::Reply(400)),
    ("mismatch02", Outcome::Reply(400)),
    ("bigcode", Outcome::Drop),
    // §3.2 transaction layer.
    ("badbranch", Outcome::Pass),
    // §3.3 application layer.
    ("insuf", Outcome::Reply(400)),
    ("unkscm", Outcome::Reply(416)),
    ("novelsc", Outcome::Reply(416)),
    ("unksm2", Outcome::Pass),
    ("bext01", Outcome::Reply(420)),
    ("invut", Outcome::Pass),
    ("regaut01", Outcome::Pass),
    ("multi01", Outcome::Reply(400)),
    ("mcl01", Outcome::Reply(400)),
    ("bcast", Outcome::Drop),
    ("zeromf", Outcome::Reply(483)),
    ("cparam01", Outcome::Pass),
    ("cparam02", Outcome::Pass),
    ("regescrt", Outcome::Pass),
    ("sdp01", Outcome::Pass),
    // §3.4 backward compatibility.
    ("inv2543", Outcome::Pass),
];

#[test]
fn every_torture_message_has_its_outcome() {
    assert_eq!(EXPECTED.len(), 49);
    let dir = format!("{}/tests/fixtures/rfc4475", env!("CARGO_MANIFEST_DIR"));
    let files = std::fs::read_dir(&dir).unwrap().filter(|e| {
        e.as_ref()
            .unwrap()
            .path()
            .extension()
            .is_some_and(|x| x == "dat")
    });
    assert_eq!(files.count(), 49, "every fixture file is in the table");
    let mut wrong = Vec::new();
    for (name, expected) in EXPECTED {
        let got = outcome(fixture(name));
        if &got != expected {
            wrong.push(format!("{name}: expected {expected:?}, got {got:?}"));
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

fn parse(name: &str) -> Message {
    parse_datagram(fixture(name)).unwrap()
}

#[test]
fn wsinv_reads_through_whitespace_and_folds() {
    let m = parse("wsinv");
    let h = m.headers();
    let vias: Vec<_> = h.vias().map(Result::unwrap).collect();
    assert_eq!(vias.len(), 3);
    assert_eq!(vias[0].branch(), Some(&b"390skdjuw"[..]));
    assert_eq!(vias[1].transport, b"TCP");
    assert_eq!(vias[1].branch(), Some(&b"z9hG4bK9ikj8"[..]));
    assert_eq!(
        vias[2].host(),
        Some(Host::V4("192.168.255.111".parse().unwrap()))
    );
    assert_eq!(vias[2].branch(), Some(&b"z9hG4bK30239"[..]));
    assert_eq!(h.max_forwards().unwrap(), Some(68));
    let cseq = h.cseq().unwrap();
    assert_eq!((cseq.seq, cseq.method), (9, Method::Invite));
    assert_eq!(h.to().unwrap().tag(), Some(&b"1918181833n"[..]));
    assert_eq!(h.from().unwrap().tag(), Some(&b"98asjd8"[..]));
    assert_eq!(h.content_length().unwrap(), Some(150));
    assert_eq!(m.body().len(), 150);
    assert_eq!(
        h.get_other("newfangledheader"),
        Some(&b"newfangled value\r\n continued newfangled value"[..])
    );
    let routes: Vec<_> = h.routes().map(Result::unwrap).collect();
    assert!(
        routes[0]
            .uri()
            .unwrap()
            .as_sip()
            .unwrap()
            .params
            .contains("lr")
    );
    let contact = h.contacts().next().unwrap().unwrap();
    let ContactValue::Addr(c) = contact else {
        panic!()
    };
    assert_eq!(c.params.get("q"), Some(Some(&b"0.33"[..])));
}

#[test]
fn intmeth_keeps_extension_method() {
    let m = parse("intmeth");
    assert_eq!(m.method(), Some(Method::Extension));
    assert_eq!(
        m.method_bytes(),
        Some(&b"!interesting-Method0123456789_*+`.%indeed'~"[..])
    );
    assert_eq!(
        m.headers().cseq().unwrap().method_raw,
        m.method_bytes().unwrap()
    );
}

#[test]
fn escapes_are_kept_and_decodable() {
    let m = parse("esc01");
    let uri = Uri::parse(m.request_uri_bytes().unwrap()).unwrap();
    assert_eq!(
        unescape(uri.user().unwrap()).as_ref(),
        b"sips:user@example.com"
    );
    assert_eq!(
        unescape(m.headers().to().unwrap().uri().unwrap().user().unwrap()).as_ref(),
        b"user"
    );
    let m = parse("escnull");
    assert_eq!(
        unescape(m.headers().to().unwrap().uri().unwrap().user().unwrap()).as_ref(),
        b"null-\0-null"
    );
    assert_eq!(m.headers().contacts().count(), 2);
}

#[test]
fn dblreq_takes_only_the_first_message() {
    let m = parse("dblreq");
    assert_eq!(m.method(), Some(Method::Register));
    assert!(m.body().is_empty());
    assert!(m.raw().ends_with(b"Content-Length: 0\r\n\r\n"));
    assert!(!m.raw().windows(6).any(|w| w == b"INVITE"));
}

#[test]
fn bext01_lists_the_unsupported_extensions() {
    let m = parse("bext01");
    let Err(Reject::Reply {
        status,
        unsupported,
        ..
    }) = sanity::check_request(&m, &SanityConfig::default())
    else {
        panic!("expected a reply")
    };
    assert_eq!(status, 420);
    assert_eq!(
        unsupported.as_deref(),
        Some(&b"noProxiesSupportThis, norDoAnyProxiesSupportThis"[..])
    );
    let cfg = SanityConfig {
        supported_proxy_extensions: vec![
            "noproxiessupportthis".into(),
            "nordoanyproxiessupportthis".into(),
        ],
        ..SanityConfig::default()
    };
    assert_eq!(
        sanity::check_request(&m, &cfg),
        Ok(()),
        "Require is for the UAS, not the proxy"
    );
}

#[test]
fn bcast_is_dropped_for_its_next_hop() {
    let m = parse("bcast");
    assert_eq!(
        sanity::check_response(&m, &SanityConfig::default()),
        Err(Reject::Drop(DropReason::BroadcastNextHop))
    );
}

#[test]
fn badbranch_and_inv2543_have_no_rfc3261_branch() {
    let m = parse("badbranch");
    assert!(!m.headers().top_via().unwrap().has_rfc3261_branch());
    let m = parse("inv2543");
    let via = m.headers().top_via().unwrap();
    assert_eq!(via.branch(), None);
    assert_eq!(m.headers().max_forwards().unwrap(), None);
    assert_eq!(m.body().len(), m.raw().len() - m.body_span().start as usize);
}

#[test]
fn clerr_over_a_stream_waits_for_more_bytes() {
    let raw = fixture("clerr");
    assert_eq!(framing::frame(&raw, 16 * 1024), Ok(Frame::Incomplete));
}

#[test]
fn responses_with_odd_reason_phrases() {
    let m = parse("unreason");
    assert_eq!(m.status(), Some(200));
    assert!(
        std::str::from_utf8(m.reason_phrase().unwrap())
            .unwrap()
            .starts_with("= 2**3 * 5**2")
    );
    let m = parse("noreason");
    assert_eq!((m.status(), m.reason_phrase()), (Some(100), Some(&b""[..])));
}

#[test]
fn a_400_can_be_built_for_readable_malformed_requests() {
    for name in ["badinv01", "clerr", "ncl", "lwsstart", "ltgtruri"] {
        let reply = match parse_datagram(fixture(name)) {
            Err(e) => sip_message::build::response(
                e.request_headers().unwrap(),
                400,
                "Bad Request",
                Some(b"x"),
                &[],
            ),
            Ok(m) => sip_message::build::response(m.headers(), 400, "Bad Request", Some(b"x"), &[]),
        };
        let r = parse_datagram(reply).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(r.status(), Some(400), "{name}");
        assert!(r.headers().get(HeaderName::Via).is_some(), "{name}");
        assert!(r.headers().get(HeaderName::CallId).is_some(), "{name}");
    }
}

/// Every prefix of every fixture and every single-byte corruption: parse, sanity, every view
/// and a forwarding edit must return, never panic.
#[test]
fn no_input_panics() {
    for (name, _) in EXPECTED {
        let raw = fixture(name);
        for cut in 0..=raw.len() {
            checks::exercise_any(&raw[..cut]);
        }
        for i in 0..raw.len() {
            for b in [b'\r', b'\n', b' ', b',', b';', b'<', b'"', b':', 0xff] {
                let mut v = raw.to_vec();
                v[i] = b;
                checks::exercise_any(&v);
            }
        }
    }
}
