//! Hot-path benchmarks (docs/PERFORMANCE.md): (a) parse a typical ~1 KB carrier INVITE to the
//! point where a proxy has what it routes on; (b) build the forwarded INVITE. divan's
//! allocation profiler counts allocations per iteration.

use bytes::Bytes;
use divan::{AllocProfiler, Bencher, black_box};
use sip_message::parse_datagram;

#[global_allocator]
static ALLOC: AllocProfiler = AllocProfiler::system();

#[path = "data/invite.rs"]
mod invite;
use invite::INVITE;

fn main() {
    assert!((1000..1300).contains(&INVITE.len()), "{}", INVITE.len());
    divan::main();
}

/// What a proxy reads from an INVITE before routing it.
#[derive(Debug)]
struct Routing<'a> {
    branch: &'a [u8],
    call_id: &'a [u8],
    cseq: u32,
    from_tag: Option<&'a [u8]>,
    to_tag: Option<&'a [u8]>,
    max_forwards: Option<u8>,
    route: Option<&'a [u8]>,
}

impl Routing<'_> {
    /// Uses every field, so none of the reads can be optimised away.
    fn weight(&self) -> usize {
        self.branch.len()
            + self.call_id.len()
            + self.cseq as usize
            + self.from_tag.map_or(0, <[u8]>::len)
            + self.to_tag.map_or(0, <[u8]>::len)
            + usize::from(self.max_forwards.unwrap_or(0))
            + self.route.map_or(0, <[u8]>::len)
    }
}

fn read_routing(m: &sip_message::Message) -> Routing<'_> {
    let h = m.headers();
    let via = h.top_via().unwrap();
    Routing {
        branch: via.branch().unwrap(),
        call_id: h.call_id().unwrap(),
        cseq: h.cseq().unwrap().seq,
        from_tag: h.from().unwrap().tag(),
        to_tag: h.to().unwrap().tag(),
        max_forwards: h.max_forwards().unwrap(),
        route: h.routes().next().map(|r| r.unwrap().uri_raw),
    }
}

/// (a) Index the message and read top Via, Call-ID, CSeq, From/To tags, Max-Forwards, Route.
#[divan::bench]
fn parse_to_routing(b: Bencher) {
    let raw = Bytes::from_static(INVITE.as_bytes());
    b.bench(|| {
        let m = parse_datagram(black_box(raw.clone())).unwrap();
        black_box(read_routing(&m).weight());
    });
}

/// Index only (framing, start line, header index).
#[divan::bench]
fn index_only(b: Bencher) {
    let raw = Bytes::from_static(INVITE.as_bytes());
    b.bench(|| black_box(parse_datagram(black_box(raw.clone())).unwrap()));
}

/// (b) Build the forwarded INVITE from a parsed one: our Via on top, received/rport on the
/// customer's Via, Record-Route, first Route removed, Max-Forwards decremented, Request-URI,
/// To user and From user rewritten for the carrier.
#[divan::bench]
fn build_forwarded(b: Bencher) {
    let m = parse_datagram(Bytes::from_static(INVITE.as_bytes())).unwrap();
    b.bench(|| {
        let m = black_box(&m);
        let mut e = m.edit();
        e.prepend_via(b"SIP/2.0/UDP 203.0.113.10:5060;branch=z9hG4bK-vts-0000000001")
            .unwrap();
        e.set_via_received(Some(b"198.51.100.20"), 5060).unwrap();
        e.prepend_record_route(b"<sip:203.0.113.10:5060;lr>")
            .unwrap();
        e.remove_first_route().unwrap();
        e.decrement_max_forwards().unwrap();
        e.set_request_uri(b"sip:1558434911234567@192.0.2.50:5060")
            .unwrap();
        e.set_to_user(b"1558434911234567").unwrap();
        e.set_from_user(b"34912013022").unwrap();
        black_box(e.finish())
    });
}

/// (a) + (b): what the proxy does per INVITE before the socket write.
#[divan::bench]
fn parse_and_forward(b: Bencher) {
    let raw = Bytes::from_static(INVITE.as_bytes());
    b.bench(|| {
        let m = parse_datagram(black_box(raw.clone())).unwrap();
        black_box(read_routing(&m).weight());
        let mut e = m.edit();
        e.prepend_via(b"SIP/2.0/UDP 203.0.113.10:5060;branch=z9hG4bK-vts-0000000001")
            .unwrap();
        e.set_via_received(Some(b"198.51.100.20"), 5060).unwrap();
        e.prepend_record_route(b"<sip:203.0.113.10:5060;lr>")
            .unwrap();
        e.remove_first_route().unwrap();
        e.decrement_max_forwards().unwrap();
        e.set_request_uri(b"sip:1558434911234567@192.0.2.50:5060")
            .unwrap();
        e.set_to_user(b"1558434911234567").unwrap();
        e.set_from_user(b"34912013022").unwrap();
        black_box(e.finish())
    });
}

/// The proxy's sanity checks on a parsed INVITE (every header it reads, URIs included).
#[divan::bench]
fn sanity_check(b: Bencher) {
    let m = parse_datagram(Bytes::from_static(INVITE.as_bytes())).unwrap();
    let cfg = sip_message::sanity::SanityConfig::default();
    b.bench(|| sip_message::sanity::check_request(black_box(&m), &cfg).unwrap());
}
