//! Property tests: whatever order responses and their retransmissions arrive in, and however
//! time advances between them, the TU sees each distinct response at most once (2xx aside,
//! which RFC 6026 passes up in Accepted) and at most one final response.

mod common;

use std::collections::HashMap;

use common::*;
use proptest::prelude::*;
use sip_transaction::{Config, Event, Transactions};

proptest! {
    #[test]
    fn no_response_reaches_the_tu_twice(
        invite in any::<bool>(),
        steps in proptest::collection::vec((0usize..6, 0u64..3000), 1..40),
    ) {
        let origin = t0();
        let mut now = origin;
        let mut t: Transactions<Addr> = Transactions::new(Config::default());
        let req = if invite { request("INVITE", "z9hG4bKp") } else { request("OPTIONS", "z9hG4bKp") };
        t.send_request(now, req.clone(), "server", false).unwrap();
        let catalogue = [
            response(&req, 100, None),
            response(&req, 180, Some("a")),
            response(&req, 183, Some("a")),
            response(&req, 180, Some("b")),
            response(&req, 486, Some("a")),
            response(&req, 603, Some("b")),
        ];
        let mut seen: HashMap<Vec<u8>, usize> = HashMap::new();
        let mut finals = 0;
        for (pick, wait) in steps {
            now += ms(wait);
            if t.poll_timeout().is_some_and(|at| at <= now) {
                t.handle_timeout(now);
            }
            t.receive_response(now, catalogue[pick].clone());
            while let Some(e) = t.poll_event() {
                if let Event::Response { msg, .. } = e {
                    *seen.entry(msg.raw().to_vec()).or_default() += 1;
                    if msg.status().unwrap() >= 200 {
                        finals += 1;
                    }
                }
            }
            transmits(&mut t);
        }
        prop_assert!(seen.values().all(|&n| n == 1), "{seen:?}");
        prop_assert!(finals <= 1);
    }
}
