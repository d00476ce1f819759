//! A fixed loop over the benchmark INVITE for instruction-level profiling:
//! `valgrind --tool=callgrind target/release/examples/profile parse|forward|sanity [N]`.

use bytes::Bytes;
use sip_message::parse_datagram;
use sip_message::sanity::{SanityConfig, check_request};

#[path = "../benches/data/invite.rs"]
mod invite;

fn main() {
    let mut args = std::env::args().skip(1);
    let what = args.next().unwrap_or_else(|| "parse".into());
    let n: usize = args.next().and_then(|s| s.parse().ok()).unwrap_or(10_000);
    let raw = Bytes::from_static(invite::INVITE.as_bytes());
    let cfg = SanityConfig::default();
    let mut sink = 0usize;
    for _ in 0..n {
        let m = parse_datagram(raw.clone()).unwrap();
        let h = m.headers();
        match what.as_str() {
            "parse" => {
                let via = h.top_via().unwrap();
                sink += via.branch().unwrap().len() + h.call_id().unwrap().len();
                sink += h.cseq().unwrap().seq as usize;
                sink += h.from().unwrap().tag().map_or(0, <[u8]>::len);
                sink += h.to().unwrap().tag().map_or(0, <[u8]>::len);
                sink += usize::from(h.max_forwards().unwrap().unwrap_or(0));
                sink += h.routes().next().map_or(0, |r| r.unwrap().uri_raw.len());
            }
            "sanity" => sink += usize::from(check_request(&m, &cfg).is_ok()),
            _ => {
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
                sink += e.finish().len();
            }
        }
    }
    println!("{sink}");
}
