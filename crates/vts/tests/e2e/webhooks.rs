//! Webhooks (issue 15) through a real `vts serve`, real sipp calls and local HTTP receivers
//! (`testkit::http::Receiver`): a receiver that fails twice gets the event once, signed; a
//! kill -9 between attempts still delivers after the restart; a receiver that hangs slows
//! neither calls nor another subscription; a customer's own subscription gets its own events
//! at an allowed host only; a run of refusals disables a subscription with an event.

use std::time::{Duration, Instant};

use hmac::{Hmac, KeyInit, Mac};
use reqwest::blocking::Client;
use serde_json::{Value, json};
use sha2::Sha256;
use testkit::http::{Receiver, Reply};

use crate::common::*;

const SECRET: &str = "s3cret-0123456789abcdef";

struct World {
    vts: Vts,
    serve: Option<Serve>,
    base: String,
    client: Client,
    acme: i64,
    carrier_port: u16,
    switch: u16,
    admin: String,
}

impl World {
    fn new(env: &[(&str, &str)]) -> World {
        World::on(Vts::new(VTS), env)
    }

    fn on(mut vts: Vts, env: &[(&str, &str)]) -> World {
        let web = at(free_port());
        vts.http = Some(web.to_string());
        vts.env
            .extend(env.iter().map(|(k, v)| (k.to_string(), v.to_string())));
        let acme = vts.add_customer("acme", "127.0.0.1");
        vts.add_customer("beta", "127.0.0.2");
        let carrier_port = free_port();
        vts.add_carrier("up", carrier_port, 1, "udp");
        let admin = vts
            .cli(&["token", "create", "--name", "ops", "--scope", "admin"])
            .lines()
            .last()
            .unwrap()
            .to_string();
        let switch = free_port();
        let serve = vts.serve(&[format!("udp:127.0.0.1:{switch}")]);
        World {
            vts,
            serve: Some(serve),
            base: format!("http://{web}"),
            client: http_client(),
            acme,
            carrier_port,
            switch,
            admin,
        }
    }

    fn restart(&mut self) {
        self.serve = Some(self.vts.serve(&[format!("udp:127.0.0.1:{}", self.switch)]));
    }

    fn post(&self, path: &str, token: &str, body: Value) -> (u16, Value) {
        let res = self
            .client
            .post(format!("{}{path}", self.base))
            .bearer_auth(token)
            .json(&body)
            .send()
            .unwrap();
        let status = res.status().as_u16();
        (status, res.json().unwrap_or(Value::Null))
    }

    fn get(&self, path: &str, token: &str) -> Value {
        let res = self
            .client
            .get(format!("{}{path}", self.base))
            .bearer_auth(token)
            .send()
            .unwrap();
        assert!(res.status().is_success(), "GET {path}: {}", res.status());
        res.json().unwrap()
    }

    /// Subscribes `url` to `events` with the test's secret; the subscription's id.
    fn subscribe(&self, url: &str, events: &[&str]) -> i64 {
        let (status, v) = self.post(
            "/api/v1/webhooks",
            &self.admin,
            json!({ "url": url, "events": events, "secret": SECRET }),
        );
        assert_eq!(status, 201, "{v}");
        assert_eq!(v["secret"], SECRET, "shown at creation");
        v["webhook"]["id"].as_i64().unwrap()
    }

    fn calls(&self, ip: &str, n: u32) {
        let uas = Uas::new("uas_answer.xml", self.carrier_port)
            .calls(n)
            .spawn();
        let (ok, err) = Uac::new("uac_call.xml", at(self.switch))
            .ip(ip)
            .calls(n)
            .rate(10)
            .source_port(free_port())
            .run();
        assert!(ok, "{err}");
        assert!(uas.wait(Duration::from_secs(30)).0);
    }

    /// Waits (bounded) until the delivery log of `hook` satisfies `done`; the log.
    fn await_deliveries(
        &self,
        hook: i64,
        what: &str,
        done: impl Fn(&[Value]) -> bool,
    ) -> Vec<Value> {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let log = self.get(&format!("/api/v1/webhooks/{hook}/deliveries"), &self.admin);
            let items = log["items"].as_array().unwrap().clone();
            if done(&items) {
                return items;
            }
            assert!(Instant::now() < deadline, "{what}: {items:#?}");
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

/// Whether `r` carries a valid signature of its body.
fn signed(r: &testkit::http::Received) -> bool {
    let sig = r.header("x-vts-signature").unwrap();
    let (t, v1) = sig
        .strip_prefix("t=")
        .and_then(|s| s.split_once(",v1="))
        .unwrap();
    let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(SECRET.as_bytes()).unwrap();
    mac.update(t.as_bytes());
    mac.update(b".");
    mac.update(&r.body);
    let want: String = mac
        .finalize()
        .into_bytes()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    let age = domain::now_ms() / 1000 - t.parse::<i64>().unwrap();
    want == v1 && (0..300).contains(&age)
}

#[test]
fn a_receiver_that_fails_twice_gets_the_event_once_signed() {
    fails_twice(World::new(&[("VTS_WEBHOOKS_RETRY_BASE_MS", "100")]));
}

#[test]
fn a_receiver_that_fails_twice_gets_the_event_once_signed_on_postgres() {
    let Some(vts) = postgres_vts("webhooks_fails_twice") else {
        return;
    };
    fails_twice(World::on(vts, &[("VTS_WEBHOOKS_RETRY_BASE_MS", "100")]));
}

fn fails_twice(w: World) {
    let rx = Receiver::start(vec![
        Reply::Status(500),
        Reply::Status(503),
        Reply::Status(200),
    ]);
    let hook = w.subscribe(
        &format!("http://{}/hooks/vts", rx.addr),
        &["call.completed"],
    );
    w.calls("127.0.0.1", 1);
    let log = w.await_deliveries(hook, "delivered", |d| {
        d.len() == 1 && d[0]["state"] == "delivered"
    });
    assert_eq!(log[0]["attempts"], 3);
    assert_eq!(log[0]["last_code"], 200);
    let got = rx.received();
    assert_eq!(got.len(), 3, "two failures, then once accepted");
    let ids: Vec<&str> = got
        .iter()
        .map(|r| r.header("x-vts-delivery").unwrap())
        .collect();
    assert!(ids.iter().all(|i| *i == ids[0]), "one delivery id: {ids:?}");
    assert_eq!(log[0]["delivery"], ids[0]);
    let last = &got[2];
    assert_eq!(
        (last.method.as_str(), last.path.as_str()),
        ("POST", "/hooks/vts")
    );
    assert_eq!(last.header("x-vts-event"), Some("call.completed"));
    assert_eq!(last.header("content-type"), Some("application/json"));
    assert!(signed(last), "signature verifies");
    let body: Value = serde_json::from_slice(&last.body).unwrap();
    assert_eq!(body["event"], "call.completed");
    assert_eq!(body["id"], ids[0]);
    assert_eq!(body["data"]["final_code"], 200, "the CDR");
    assert_eq!(body["customer_id"], w.acme);
    // A forged body does not verify.
    let mut forged = last.clone();
    forged.body[2] ^= 1;
    assert!(!signed(&forged));
    // The metric counts it.
    let metrics = w
        .client
        .get(format!("{}/metrics", w.base))
        .send()
        .unwrap()
        .text()
        .unwrap();
    assert!(
        metrics.contains("vts_webhook_deliveries_total{result=\"delivered\"} 1"),
        "{metrics}"
    );
    assert!(metrics.contains("vts_webhook_deliveries_total{result=\"retried\"} 2"));
    assert!(w.serve.unwrap().stop().success());
}

#[test]
fn a_kill_9_between_attempts_still_delivers_after_the_restart() {
    kill_9_between_attempts(World::new(&[("VTS_WEBHOOKS_RETRY_BASE_MS", "1500")]));
}

#[test]
fn a_kill_9_between_attempts_still_delivers_after_the_restart_on_postgres() {
    let Some(vts) = postgres_vts("webhooks_kill_9") else {
        return;
    };
    kill_9_between_attempts(World::on(vts, &[("VTS_WEBHOOKS_RETRY_BASE_MS", "1500")]));
}

fn kill_9_between_attempts(mut w: World) {
    let rx = Receiver::start(vec![Reply::Status(500), Reply::Status(200)]);
    let hook = w.subscribe(&format!("http://{}/in", rx.addr), &["call.completed"]);
    w.calls("127.0.0.1", 1);
    // The first attempt failed and is recorded as such: then the kill.
    w.await_deliveries(hook, "first attempt recorded", |d| {
        d.len() == 1 && d[0]["attempts"] == 1 && d[0]["state"] == "pending"
    });
    w.serve.take().unwrap().kill9();
    w.restart();
    let got = rx.await_requests(2, Duration::from_secs(30));
    assert_eq!(
        got[0].header("x-vts-delivery"),
        got[1].header("x-vts-delivery")
    );
    let log = w.await_deliveries(hook, "delivered after the restart", |d| {
        d.len() == 1 && d[0]["state"] == "delivered"
    });
    assert_eq!(log[0]["attempts"], 2);
    assert_eq!(rx.received().len(), 2, "once accepted");
    assert!(w.serve.take().unwrap().stop().success());
}

#[test]
fn a_hanging_receiver_slows_neither_calls_nor_another_subscription() {
    hanging_receiver(World::new(&[("VTS_WEBHOOKS_TIMEOUT_SECS", "120")]));
}

#[test]
fn a_hanging_receiver_slows_neither_calls_nor_another_subscription_on_postgres() {
    let Some(vts) = postgres_vts("webhooks_hanging") else {
        return;
    };
    hanging_receiver(World::on(vts, &[("VTS_WEBHOOKS_TIMEOUT_SECS", "120")]));
}

fn hanging_receiver(w: World) {
    let stuck = Receiver::start(vec![Reply::Hang]);
    let fine = Receiver::start(vec![Reply::Status(204)]);
    w.subscribe(&format!("http://{}/", stuck.addr), &["call.completed"]);
    let ok = w.subscribe(&format!("http://{}/", fine.addr), &["call.completed"]);
    let started = Instant::now();
    w.calls("127.0.0.1", 10);
    let calls_took = started.elapsed();
    w.vts.await_cdrs(10, Duration::from_secs(30));
    let got = fine.await_requests(10, Duration::from_secs(30));
    assert_eq!(got.len(), 10);
    w.await_deliveries(ok, "all delivered", |d| {
        d.len() == 10 && d.iter().all(|x| x["state"] == "delivered")
    });
    // 10 calls at 10 cps, each up for sipp's default hold: the calls ran as without webhooks.
    assert!(calls_took < Duration::from_secs(30), "{calls_took:?}");
    let stuck_got = stuck.received().len();
    assert!(
        (1..=8).contains(&stuck_got),
        "its own slots only: {stuck_got}"
    );
    assert!(w.serve.unwrap().stop().success());
}

#[test]
fn a_customer_subscribes_to_its_own_events_at_an_allowed_host_only() {
    customer_subscription(World::new(&[("VTS_WEBHOOKS_CUSTOMER_HOSTS", "127.0.0.1")]));
}

#[test]
fn a_customer_subscribes_to_its_own_events_at_an_allowed_host_only_on_postgres() {
    let Some(vts) = postgres_vts("webhooks_customer") else {
        return;
    };
    customer_subscription(World::on(
        vts,
        &[("VTS_WEBHOOKS_CUSTOMER_HOSTS", "127.0.0.1")],
    ));
}

fn customer_subscription(w: World) {
    let mine = w
        .vts
        .cli(&[
            "token",
            "create",
            "--name",
            "portal",
            "--scope",
            &format!("customer:{}", w.acme),
        ])
        .lines()
        .last()
        .unwrap()
        .to_string();
    let rx = Receiver::start(vec![Reply::Status(200)]);
    let url = format!("http://{}/mine", rx.addr);
    let (status, v) = w.post(
        "/api/v1/webhooks",
        &mine,
        json!({ "url": url, "events": ["carrier.down"] }),
    );
    assert_eq!(status, 422, "not a customer's kind: {v}");
    let (status, v) = w.post(
        "/api/v1/webhooks",
        &mine,
        json!({ "url": "http://localhost:9/x", "events": ["call.completed"] }),
    );
    assert_eq!(status, 422, "a host the operator did not allow: {v}");
    assert!(v["detail"].as_str().unwrap().contains("localhost"), "{v}");
    let (status, v) = w.post(
        "/api/v1/webhooks",
        &mine,
        json!({ "url": url, "events": ["call.completed"] }),
    );
    assert_eq!(status, 201, "{v}");
    assert_eq!(v["webhook"]["customer_id"], w.acme);
    assert!(
        v["secret"].as_str().unwrap().len() >= 32,
        "a random secret, shown once"
    );
    let hook = v["webhook"]["id"].as_i64().unwrap();
    // The secret is never shown again.
    let list = w.get("/api/v1/webhooks", &mine);
    assert!(!list.to_string().contains(v["secret"].as_str().unwrap()));
    // beta's call and acme's call: acme's hook gets acme's only.
    w.calls("127.0.0.2", 1);
    w.calls("127.0.0.1", 1);
    w.vts.await_cdrs(2, Duration::from_secs(30));
    let got = rx.await_requests(1, Duration::from_secs(30));
    w.await_deliveries(hook, "delivered", |d| {
        d.len() == 1 && d[0]["state"] == "delivered"
    });
    let body: Value = serde_json::from_slice(&got[0].body).unwrap();
    assert_eq!(body["customer_id"], w.acme);
    // The customer's view of its call: the record, without the carrier side.
    assert_eq!(body["data"]["final_code"], 200, "{body}");
    assert!(body["carrier_id"].is_null(), "{body}");
    for field in ["carrier_id", "carrier_addr", "callee_out", "cost"] {
        assert!(body["data"][field].is_null(), "{field}: {body}");
    }
    assert_eq!(body["data"]["attempt_log"], json!([]), "{body}");
    assert_eq!(rx.received().len(), 1, "beta's call is not acme's");
    assert!(w.serve.unwrap().stop().success());
}

#[test]
fn a_run_of_refusals_disables_the_subscription_with_an_event() {
    run_of_refusals(World::new(&[("VTS_WEBHOOKS_DISABLE_AFTER", "2")]));
}

#[test]
fn a_run_of_refusals_disables_the_subscription_with_an_event_on_postgres() {
    let Some(vts) = postgres_vts("webhooks_disable") else {
        return;
    };
    run_of_refusals(World::on(vts, &[("VTS_WEBHOOKS_DISABLE_AFTER", "2")]));
}

fn run_of_refusals(w: World) {
    let rx = Receiver::start(vec![Reply::Status(410)]);
    let hook = w.subscribe(&format!("http://{}/", rx.addr), &["call.completed"]);
    w.calls("127.0.0.1", 2);
    w.await_deliveries(hook, "both failed at once (410 is not retried)", |d| {
        d.len() == 2
            && d.iter()
                .all(|x| x["state"] == "failed" && x["attempts"] == 1)
    });
    let h = w.get(&format!("/api/v1/webhooks/{hook}"), &w.admin);
    assert_eq!(h["active"], false, "{h}");
    assert!(
        h["disabled_reason"]
            .as_str()
            .unwrap()
            .contains("2 deliveries failed"),
        "{h}"
    );
    let events = w.get("/api/v1/events?type=webhook.disabled", &w.admin);
    assert_eq!(events["items"][0]["body"]["webhook_id"], hook);
    // Redelivery of one, once on again.
    let log = w.get(&format!("/api/v1/webhooks/{hook}/deliveries"), &w.admin);
    let first = log["items"][0]["id"].as_i64().unwrap();
    let res = w
        .client
        .put(format!("{}/api/v1/webhooks/{hook}/active", w.base))
        .bearer_auth(&w.admin)
        .json(&json!({ "active": true }))
        .send()
        .unwrap();
    assert!(res.status().is_success());
    let (status, _) = w.post(
        &format!("/api/v1/webhooks/deliveries/{first}/redeliver"),
        &w.admin,
        json!(null),
    );
    assert_eq!(status, 200);
    rx.await_requests(3, Duration::from_secs(30));
    assert!(w.serve.unwrap().stop().success());
}

/// One attempt at a time, each hanging until a 5 s timeout: what the sender reads ahead of
/// a subscription waits in its queue.
const READ_AHEAD_ENV: &[(&str, &str)] = &[
    ("VTS_WEBHOOKS_PER_SUBSCRIPTION", "1"),
    ("VTS_WEBHOOKS_TIMEOUT_SECS", "5"),
];

#[test]
fn a_subscription_turned_off_sends_nothing_more_of_what_was_read_ahead() {
    turned_off_read_ahead(World::new(READ_AHEAD_ENV));
}

#[test]
fn a_subscription_turned_off_sends_nothing_more_of_what_was_read_ahead_on_postgres() {
    let Some(vts) = postgres_vts("webhooks_read_ahead") else {
        return;
    };
    turned_off_read_ahead(World::on(vts, READ_AHEAD_ENV));
}

fn turned_off_read_ahead(w: World) {
    let rx = Receiver::start(vec![Reply::Hang]);
    let hook = w.subscribe(&format!("http://{}/", rx.addr), &["call.completed"]);
    let set_active = |on: bool| {
        let res = w
            .client
            .put(format!("{}/api/v1/webhooks/{hook}/active", w.base))
            .bearer_auth(&w.admin)
            .json(&json!({ "active": on }))
            .send()
            .unwrap();
        assert!(res.status().is_success(), "{}", res.status());
    };
    w.calls("127.0.0.1", 5);
    w.await_deliveries(hook, "five deliveries", |d| d.len() == 5);
    // The first attempt hangs in the one slot; the other four wait, read ahead.
    rx.await_requests(1, Duration::from_secs(30));
    set_active(false);
    w.await_deliveries(hook, "the first attempt timed out", |d| {
        d.iter().any(|x| x["attempts"] == 1)
    });
    // Its slot is free, and nothing more goes out for a subscription that is off.
    assert_eq!(
        rx.requests_within(2, Duration::from_secs(2)).len(),
        1,
        "a delivery read ahead went out after the subscription was turned off"
    );
    let log = w.await_deliveries(hook, "the rest pending, unattempted", |d| {
        d.iter().filter(|x| x["attempts"] == 0).count() == 4
    });
    assert!(log.iter().all(|x| x["state"] == "pending"), "{log:#?}");
    // On again: they are read again and sent.
    set_active(true);
    rx.await_requests(2, Duration::from_secs(30));
    assert!(w.serve.unwrap().stop().success());
}
