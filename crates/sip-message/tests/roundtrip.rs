//! Property tests: messages rendered from a model (random case, compact names, white space,
//! folds, comma-joined values, unknown headers) parse back to the model; the header index
//! covers every byte; no-edit encoding is the identity and re-parses to the same message;
//! forwarding edits keep the message valid and change only what they name.

use bytes::Bytes;
use proptest::prelude::*;
use sip_message::sanity::{self, SanityConfig};
use sip_message::{HeaderName, Message, parse_datagram};

#[derive(Debug, Clone)]
struct Model {
    method: &'static str,
    ruri_user: String,
    vias: Vec<(String, Option<u16>, String, bool)>,
    via_lines: Vec<usize>,
    from_user: String,
    from_tag: String,
    to_user: String,
    call_id: String,
    cseq: u32,
    max_forwards: u8,
    routes: Vec<String>,
    unknown: Vec<(String, String)>,
    body: String,
    style: Style,
}

#[derive(Debug, Clone)]
struct Style {
    compact: bool,
    upper: bool,
    colon_ws: &'static str,
    fold_via: bool,
}

fn token() -> impl Strategy<Value = String> {
    "[a-zA-Z0-9][a-zA-Z0-9.!%*_+`'~-]{0,11}"
}

fn host() -> impl Strategy<Value = String> {
    prop_oneof![
        "[a-z][a-z0-9-]{0,8}(\\.[a-z]{2,4}){0,2}",
        (1u8..=254, 0u8..=255, 0u8..=255, 1u8..=254)
            .prop_map(|(a, b, c, d)| format!("{a}.{b}.{c}.{d}")),
        Just("[2001:db8::1]".to_string()),
    ]
}

fn model() -> impl Strategy<Value = Model> {
    let via = (host(), proptest::option::of(1u16..), token(), any::<bool>());
    let head = (
        prop_oneof![Just("INVITE"), Just("OPTIONS"), Just("BYE"), Just("UPDATE")],
        "[0-9]{1,15}",
        proptest::collection::vec(via, 1..5),
        proptest::collection::vec(1usize..3, 4),
        "[0-9]{1,12}",
        token(),
        "[0-9]{1,12}",
        "[a-zA-Z0-9.-]{1,20}(@[a-z0-9.]{1,10})?",
    );
    let tail = (
        0u32..(1 << 31),
        1u8..=255,
        proptest::collection::vec(host(), 0..3),
        proptest::collection::vec(("X-[A-Za-z0-9-]{1,10}", "[ -~]{0,40}"), 0..5),
        "[ -~]{0,80}",
        (
            any::<bool>(),
            any::<bool>(),
            prop_oneof![Just(""), Just(" "), Just("   ")],
            any::<bool>(),
        ),
    );
    (head, tail).prop_map(
        |(
            (method, ruri_user, vias, via_lines, from_user, from_tag, to_user, call_id),
            (cseq, max_forwards, routes, unknown, body, (compact, upper, colon_ws, fold_via)),
        )| Model {
            method,
            ruri_user,
            vias,
            via_lines,
            from_user,
            from_tag,
            to_user,
            call_id,
            cseq,
            max_forwards,
            routes,
            unknown,
            body: body.trim_end().to_string(),
            style: Style {
                compact,
                upper,
                colon_ws,
                fold_via,
            },
        },
    )
}

fn name(m: &Model, full: &str, compact: Option<&str>) -> String {
    let n = match (m.style.compact, compact) {
        (true, Some(c)) => c.to_string(),
        _ => full.to_string(),
    };
    if m.style.upper { n.to_uppercase() } else { n }
}

fn render(m: &Model) -> String {
    let mut s = format!(
        "{} sip:{}@switch.example.com SIP/2.0\r\n",
        m.method, m.ruri_user
    );
    let ws = m.style.colon_ws;
    // Vias spread over lines: `via_lines` says how many values each line takes.
    let mut i = 0;
    let mut sizes = m.via_lines.iter().cycle();
    while i < m.vias.len() {
        let n = (*sizes.next().unwrap()).min(m.vias.len() - i);
        let values: Vec<String> = m.vias[i..i + n]
            .iter()
            .map(|(h, p, b, rport)| {
                let port = p.map(|p| format!(":{p}")).unwrap_or_default();
                let rport = if *rport { ";rport" } else { "" };
                format!("SIP/2.0/UDP {h}{port};branch=z9hG4bK{b}{rport}")
            })
            .collect();
        let sep = if m.style.fold_via { " ,\r\n  " } else { ", " };
        s += &format!(
            "{}{ws}: {}\r\n",
            name(m, "Via", Some("v")),
            values.join(sep)
        );
        i += n;
    }
    s += &format!(
        "{}{ws}: {}\r\n",
        name(m, "Max-Forwards", None),
        m.max_forwards
    );
    for r in &m.routes {
        s += &format!("{}{ws}: <sip:{r};lr>\r\n", name(m, "Route", None));
    }
    s += &format!(
        "{}{ws}: <sip:{}@a.example>;tag={}\r\n",
        name(m, "From", Some("f")),
        m.from_user,
        m.from_tag
    );
    s += &format!(
        "{}{ws}:\r\n sip:{}@b.example\r\n",
        name(m, "To", Some("t")),
        m.to_user
    );
    s += &format!("{}{ws}: {}\r\n", name(m, "Call-ID", Some("i")), m.call_id);
    s += &format!("{}{ws}: {} {}\r\n", name(m, "CSeq", None), m.cseq, m.method);
    for (n, v) in &m.unknown {
        s += &format!("{n}{ws}: {v}\r\n");
    }
    s += &format!(
        "{}{ws}: {}\r\n\r\n{}",
        name(m, "Content-Length", Some("l")),
        m.body.len(),
        m.body
    );
    s
}

fn check_views(msg: &Message, m: &Model) {
    let h = msg.headers();
    let vias: Vec<_> = h.vias().map(Result::unwrap).collect();
    assert_eq!(vias.len(), m.vias.len());
    for (v, (_, port, branch, rport)) in vias.iter().zip(&m.vias) {
        assert_eq!(v.branch().unwrap(), format!("z9hG4bK{branch}").as_bytes());
        assert_eq!(v.port, *port);
        assert_eq!(v.rport().is_some(), *rport);
    }
    assert_eq!(h.from().unwrap().tag().unwrap(), m.from_tag.as_bytes());
    assert_eq!(
        h.to().unwrap().uri().unwrap().user().unwrap(),
        m.to_user.as_bytes()
    );
    assert_eq!(h.call_id().unwrap(), m.call_id.as_bytes());
    assert_eq!(h.cseq().unwrap().seq, m.cseq);
    assert_eq!(h.max_forwards().unwrap(), Some(m.max_forwards));
    assert_eq!(h.routes().count(), m.routes.len());
    for (n, v) in &m.unknown {
        assert!(h.iter().any(|x| h.name_bytes(x) == n.as_bytes() && h.value(x) == v.trim_start().as_bytes()));
    }
    assert_eq!(msg.body(), m.body.as_bytes());
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn parse_encode_parse(m in model()) {
        let text = render(&m);
        let msg = parse_datagram(Bytes::from(text.clone())).unwrap();
        sanity::check_request(&msg, &SanityConfig::default()).unwrap();
        check_views(&msg, &m);

        // The index covers the message exactly: start line, header lines, blank line, body.
        let raw = msg.raw();
        let mut rebuilt = Vec::new();
        let first = msg.headers().iter().next().unwrap().line.start as usize;
        rebuilt.extend_from_slice(&raw[..first]);
        for h in msg.headers().iter() {
            rebuilt.extend_from_slice(h.line.of(raw));
        }
        rebuilt.extend_from_slice(b"\r\n");
        rebuilt.extend_from_slice(msg.body());
        prop_assert_eq!(&rebuilt[..], text.as_bytes());

        let encoded = msg.edit().finish();
        prop_assert_eq!(&encoded[..], text.as_bytes());
        let again = parse_datagram(encoded).unwrap();
        check_views(&again, &m);
        prop_assert_eq!(again.headers().len(), msg.headers().len());
    }

    #[test]
    fn edits_keep_the_message_valid(m in model(), which in proptest::collection::vec(any::<bool>(), 8), n in "[0-9]{1,15}") {
        let msg = parse_datagram(Bytes::from(render(&m))).unwrap();
        let mut e = msg.edit();
        if which[0] { e.prepend_via(b"SIP/2.0/UDP 203.0.113.10:5060;branch=z9hG4bKvts").unwrap(); }
        if which[1] { e.set_via_received(Some(b"192.0.2.99"), 5099).unwrap(); }
        if which[2] { e.prepend_record_route(b"<sip:203.0.113.10;lr>").unwrap(); }
        if which[3] && !m.routes.is_empty() { e.remove_first_route().unwrap(); }
        if which[4] { e.decrement_max_forwards().unwrap(); }
        if which[5] { e.set_request_uri_user(n.as_bytes()).unwrap(); }
        if which[6] { e.set_to_user(n.as_bytes()).unwrap(); e.set_from_user(n.as_bytes()).unwrap(); }
        if which[7] { e.set_body(Some(b"application/sdp"), b"v=0\r\n").unwrap(); }
        let out = parse_datagram(e.finish()).unwrap();
        let h = out.headers();
        let check = sanity::check_request(&out, &SanityConfig::default());
        prop_assert!(check.is_ok() || (which[4] && m.max_forwards == 1), "{:?}", check);

        let vias: Vec<_> = h.vias().map(Result::unwrap).collect();
        prop_assert_eq!(vias.len(), m.vias.len() + usize::from(which[0]));
        let orig_top = &vias[usize::from(which[0])];
        if which[1] {
            prop_assert_eq!(orig_top.received(), Some(&b"192.0.2.99"[..]));
            if m.vias[0].3 { prop_assert_eq!(orig_top.rport(), Some(Some(5099))); }
        }
        prop_assert_eq!(h.count(HeaderName::RecordRoute), usize::from(which[2]));
        let routes_left = m.routes.len() - usize::from(which[3] && !m.routes.is_empty());
        prop_assert_eq!(h.routes().count(), routes_left);
        let mf = if which[4] { m.max_forwards - 1 } else { m.max_forwards };
        prop_assert_eq!(h.max_forwards().unwrap(), Some(mf));
        if which[6] {
            prop_assert_eq!(h.to().unwrap().uri().unwrap().user().unwrap(), n.as_bytes());
            prop_assert_eq!(h.from().unwrap().tag().unwrap(), m.from_tag.as_bytes());
        }
        if which[7] { prop_assert_eq!(out.body(), b"v=0\r\n"); } else { prop_assert_eq!(out.body(), m.body.as_bytes()); }
        prop_assert_eq!(h.call_id().unwrap(), m.call_id.as_bytes());
        for (name, v) in &m.unknown {
            let line = format!("{name}{}: {v}\r\n", m.style.colon_ws);
            prop_assert!(out.raw().windows(line.len()).any(|w| w == line.as_bytes()));
        }
    }
}
