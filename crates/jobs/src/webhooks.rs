//! Webhook delivery, from the durable event stream. Two halves in one task:
//!
//! - the fan-out reads events after its checkpoint and turns each into one delivery per
//!   subscription that wants it (`Store::fan_out`: the deliveries and the checkpoint in one
//!   transaction, so nothing is lost or doubled across a kill -9);
//! - the sender posts due deliveries: `POST` with the JSON event, `X-Vts-Event`,
//!   `X-Vts-Delivery` (receivers dedupe on it) and `X-Vts-Signature: t=UNIX,v1=HEX` (HMAC-SHA256
//!   of `t + "." + body` with the subscription's secret). A 2xx is delivered; a timeout, a
//!   connection error, a 5xx, 408 or 429 is tried again with exponential backoff and jitter
//!   until the retry window (24 h) ends; any other status gives up at once. Outcomes are
//!   written in batches. Each subscription has its own few slots, so a receiver that hangs
//!   holds only its own deliveries: other subscriptions, and calls, never wait for it.
//!
//! A delivery sent but not yet recorded when the process dies is sent again after the
//! restart: at least once, deduplicated by `X-Vts-Delivery`.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;
use store::{Attempt, Due, Store};
use tokio::task::JoinSet;
use tracing::{debug, warn};

/// How deliveries are made.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Config {
    /// One attempt's time (connect, send, the response's head).
    pub timeout: Duration,
    /// The first retry's wait; each next one doubles, up to `retry_max`, ±20 % jitter.
    pub retry_base: Duration,
    pub retry_max: Duration,
    /// How long a delivery is tried, from the event's fan-out.
    pub window: Duration,
    /// Failed deliveries in a row that disable a subscription.
    pub disable_after: u32,
    /// Deliveries in flight per subscription.
    pub per_subscription: usize,
    /// Deliveries in flight in all.
    pub concurrency: usize,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            timeout: Duration::from_secs(10),
            retry_base: Duration::from_secs(5),
            retry_max: Duration::from_secs(3600),
            window: Duration::from_secs(24 * 3600),
            disable_after: 20,
            per_subscription: 8,
            concurrency: 256,
        }
    }
}

/// What the sender did, for `/metrics`.
#[derive(Debug, Default)]
pub struct Counts {
    pub delivered: AtomicU64,
    pub retried: AtomicU64,
    pub failed: AtomicU64,
    /// Events fanned out into deliveries.
    pub fanned_out: AtomicU64,
}

/// The signature header value of `body` at `unix` seconds: `t=UNIX,v1=HEX`.
pub fn signature(secret: &str, unix: u64, body: &[u8]) -> String {
    let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(secret.as_bytes())
        .expect("HMAC takes a key of any length");
    mac.update(unix.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    let digest = mac.finalize().into_bytes();
    let mut hex = String::with_capacity(64);
    for b in digest {
        hex.push_str(&format!("{b:02x}"));
    }
    format!("t={unix},v1={hex}")
}

/// The wait before the next attempt after `attempts` attempts.
pub fn backoff(cfg: &Config, attempts: i64, rng: &mut fastrand::Rng) -> Duration {
    let exp = u32::try_from(attempts.saturating_sub(1).clamp(0, 30)).unwrap_or(30);
    let wait = cfg
        .retry_base
        .saturating_mul(2u32.saturating_pow(exp))
        .min(cfg.retry_max);
    wait.mul_f64(0.8 + 0.4 * rng.f64())
}

/// Runs until the task is aborted.
pub async fn run(store: Store, cfg: Config, counts: Arc<Counts>) {
    let client = match reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .connect_timeout(cfg.timeout)
        .user_agent("vts-webhooks/1")
        .build()
    {
        Ok(c) => c,
        Err(e) => {
            warn!(target: "vts::webhooks", error = %e, "no HTTP client: webhooks are not delivered");
            return;
        }
    };
    let wake = Arc::new(tokio::sync::Notify::new());
    let fan = tokio::spawn(fan_out(store.clone(), counts.clone(), wake.clone()));
    send_loop(store, cfg, counts, client, wake).await;
    fan.abort();
}

/// The fan-out half: events after the checkpoint into deliveries, woken by new events.
async fn fan_out(store: Store, counts: Arc<Counts>, wake: Arc<tokio::sync::Notify>) {
    let mut events = match store.subscribe_events().await {
        Ok(s) => s,
        Err(e) => {
            warn!(target: "vts::webhooks", error = %e, "cannot watch the event stream: webhooks stop");
            return;
        }
    };
    let mut failing = false;
    loop {
        let done: Result<bool, store::StoreError> = async {
            let after = store.event_checkpoint(store::WEBHOOK_CONSUMER).await?;
            let batch = store.events_after(after, 500, None).await?;
            let full = batch.len() == 500;
            let made = store.fan_out(&batch).await?;
            counts
                .fanned_out
                .fetch_add(batch.len() as u64, Ordering::Relaxed);
            if made > 0 {
                wake.notify_one();
            }
            Ok(full)
        }
        .await;
        match done {
            Ok(true) => continue,
            Ok(false) => failing = false,
            Err(e) => {
                if !failing {
                    warn!(target: "vts::webhooks", error = %e, "the fan-out of events failed (tried again)");
                }
                failing = true;
                tokio::time::sleep(Duration::from_secs(1)).await;
                continue;
            }
        }
        events.wait(Duration::from_millis(500)).await;
    }
}

/// One attempt's result, for the batch of outcomes.
struct Sent {
    id: i64,
    webhook: i64,
    attempt: Attempt,
}

/// Deliveries read ahead of their slots, at most, in all and per subscription (a
/// subscription whose receiver hangs fills its own queue, and the reads skip it).
const READ_AHEAD: usize = 2_000;
const READ_AHEAD_PER_SUBSCRIPTION: usize = 256;

/// The sender half. Due deliveries are read ahead in batches into a queue per subscription;
/// a delivery holds one of its subscription's slots while its HTTP attempt runs; its id stays
/// busy (not read as due again) until its outcome is written, and outcomes are written in
/// batches: the slots turn over at the receivers' pace, not the database's.
async fn send_loop(
    store: Store,
    cfg: Config,
    counts: Arc<Counts>,
    client: reqwest::Client,
    wake: Arc<tokio::sync::Notify>,
) {
    let mut in_flight: JoinSet<Sent> = JoinSet::new();
    let mut busy: HashSet<i64> = HashSet::new();
    let mut per_hook: HashMap<i64, usize> = HashMap::new();
    let mut queue: HashMap<i64, std::collections::VecDeque<Due>> = HashMap::new();
    let mut queued = 0usize;
    let mut outcomes: Vec<Sent> = Vec::new();
    let mut rng = fastrand::Rng::new();
    let mut last_flush = Instant::now();
    let mut failing = false;
    // Whether more may be due than the queue holds.
    let mut look = true;
    let mut last_read = Instant::now();
    // The last read found deliveries: read again soon (every 20 ms), not only when told.
    let mut busy_reading = false;
    loop {
        // Write what finished (in one transaction).
        if !outcomes.is_empty()
            && (outcomes.len() >= 500
                || last_flush.elapsed() >= Duration::from_millis(50)
                || in_flight.is_empty())
        {
            let batch: Vec<(i64, Attempt)> =
                outcomes.iter().map(|s| (s.id, s.attempt.clone())).collect();
            match store.record_attempts(&batch, cfg.disable_after).await {
                Ok(()) => {
                    // Only a failure can have disabled its subscription.
                    let failed = outcomes
                        .iter()
                        .any(|s| !matches!(s.attempt, Attempt::Delivered { .. }));
                    for s in outcomes.drain(..) {
                        busy.remove(&s.id);
                    }
                    failing = false;
                    if failed {
                        drop_inactive(&store, &mut queue, &mut busy, &mut queued).await;
                    }
                }
                Err(e) => {
                    if !failing {
                        warn!(target: "vts::webhooks", error = %e, "delivery outcomes not written (tried again)");
                    }
                    failing = true;
                }
            }
            last_flush = Instant::now();
        }
        // Read ahead what is due: when told to, and every 20 ms while deliveries run (the
        // queues of fast receivers run low).
        let refill = busy_reading && last_read.elapsed() >= Duration::from_millis(20);
        if (look || refill) && !failing && queued < READ_AHEAD / 2 {
            let busy_ids: Vec<i64> = busy.iter().copied().collect();
            let full: Vec<i64> = queue
                .iter()
                .filter(|(_, q)| q.len() >= READ_AHEAD_PER_SUBSCRIPTION)
                .map(|(h, _)| *h)
                .collect();
            last_read = Instant::now();
            // A subscription disabled meanwhile (through the API) sends nothing more of what
            // was read ahead for it.
            drop_inactive(&store, &mut queue, &mut busy, &mut queued).await;
            let want = (READ_AHEAD - queued).min(READ_AHEAD_PER_SUBSCRIPTION * 2);
            match store
                .due_deliveries(domain::now_ms(), want as u32, &busy_ids, &full)
                .await
            {
                Ok(due) => {
                    let read = due.len();
                    busy_reading = read > 0;
                    let mut skipped = 0;
                    for d in due {
                        let q = queue.entry(d.delivery.webhook_id).or_default();
                        if q.len() >= READ_AHEAD_PER_SUBSCRIPTION {
                            skipped += 1;
                            continue;
                        }
                        busy.insert(d.delivery.id);
                        q.push_back(d);
                        queued += 1;
                    }
                    // A full read whose rows all found room may leave more due now; else the
                    // next read waits for the refill timer, a wake-up or an outcome.
                    look = read == want && skipped == 0;
                    debug!(target: "vts::webhooks", read, skipped, queued, busy = busy.len(), "due deliveries read");
                }
                Err(e) => {
                    debug!(target: "vts::webhooks", error = %e, "due deliveries not read");
                    look = false;
                    busy_reading = false;
                }
            }
        }
        // Into the free slots.
        for (hook, waiting) in queue.iter_mut() {
            let n = per_hook.entry(*hook).or_insert(0);
            while *n < cfg.per_subscription && in_flight.len() < cfg.concurrency {
                let Some(d) = waiting.pop_front() else { break };
                queued -= 1;
                *n += 1;
                let (client, cfg) = (client.clone(), cfg);
                let jitter = rng.u64(..);
                in_flight.spawn(async move { deliver(&client, &cfg, d, jitter).await });
            }
        }
        queue.retain(|_, q| !q.is_empty());
        let pause = if !outcomes.is_empty() {
            Duration::from_millis(50).saturating_sub(last_flush.elapsed())
        } else if busy_reading {
            Duration::from_millis(20).saturating_sub(last_read.elapsed())
        } else {
            Duration::from_millis(250)
        };
        tokio::select! {
            Some(done) = in_flight.join_next(), if !in_flight.is_empty() => {
                if let Ok(sent) = done {
                    match &sent.attempt {
                        Attempt::Delivered { .. } => counts.delivered.fetch_add(1, Ordering::Relaxed),
                        Attempt::Retry { .. } => counts.retried.fetch_add(1, Ordering::Relaxed),
                        Attempt::Failed { .. } => counts.failed.fetch_add(1, Ordering::Relaxed),
                    };
                    if let Some(n) = per_hook.get_mut(&sent.webhook) {
                        *n = n.saturating_sub(1);
                    }
                    outcomes.push(sent);
                }
            }
            _ = wake.notified() => look = true,
            _ = tokio::time::sleep(pause) => look = true,
        }
    }
}

/// Drops what was read ahead for subscriptions no longer active: those deliveries stay
/// pending, unattempted, and are read again if the subscription is turned on again. (An
/// attempt already under way finishes.) When the store cannot say, nothing is dropped.
async fn drop_inactive(
    store: &Store,
    queue: &mut HashMap<i64, std::collections::VecDeque<Due>>,
    busy: &mut HashSet<i64>,
    queued: &mut usize,
) {
    if queue.is_empty() {
        return;
    }
    let hooks: Vec<i64> = queue.keys().copied().collect();
    let Ok(active) = store.active_webhooks(&hooks).await else {
        return;
    };
    for hook in hooks.iter().filter(|h| !active.contains(h)) {
        if let Some(dropped) = queue.remove(hook) {
            *queued -= dropped.len();
            for d in &dropped {
                busy.remove(&d.delivery.id);
            }
            debug!(target: "vts::webhooks", webhook = hook, dropped = dropped.len(), "subscription no longer active: its queue dropped");
        }
    }
}

/// One attempt of `due`: its outcome.
async fn deliver(client: &reqwest::Client, cfg: &Config, due: Due, jitter: u64) -> Sent {
    let id = due.delivery.id;
    let webhook = due.delivery.webhook_id;
    let Some(event) = &due.event else {
        return Sent {
            id,
            webhook,
            attempt: Attempt::Failed {
                code: None,
                error: "the event is no longer stored (retention)".into(),
                latency_ms: 0,
            },
        };
    };
    let body = serde_json::json!({
        "id": due.delivery.delivery,
        "event": event.kind,
        "seq": event.seq,
        "created": jiff::Timestamp::from_millisecond(event.at_ms).map(|t| format!("{t:.3}")).unwrap_or_default(),
        "customer_id": event.customer_id,
        "carrier_id": event.carrier_id,
        "data": event.body,
    })
    .to_string();
    let unix = u64::try_from(domain::now_ms() / 1000).unwrap_or(0);
    let started = Instant::now();
    let sent = client
        .post(&due.url)
        .timeout(cfg.timeout)
        .header("content-type", "application/json")
        .header("x-vts-event", event.kind.as_str())
        .header("x-vts-delivery", due.delivery.delivery.as_str())
        .header(
            "x-vts-signature",
            signature(&due.secret, unix, body.as_bytes()),
        )
        .body(body)
        .send()
        .await;
    let latency_ms = i64::try_from(started.elapsed().as_millis()).unwrap_or(i64::MAX);
    let (code, error, retry) = match sent {
        Ok(res) if res.status().is_success() => {
            return Sent {
                id,
                webhook,
                attempt: Attempt::Delivered {
                    code: res.status().as_u16(),
                    latency_ms,
                },
            };
        }
        Ok(res) => {
            let s = res.status();
            let retry = s.is_server_error() || s.as_u16() == 408 || s.as_u16() == 429;
            (Some(s.as_u16()), format!("HTTP {s}"), retry)
        }
        Err(e) if e.is_timeout() => (None, format!("no response within {:?}", cfg.timeout), true),
        Err(e) => (None, format!("{e}"), true),
    };
    let attempts = due.delivery.attempts + 1;
    let mut rng = fastrand::Rng::with_seed(jitter);
    let next_ms = domain::now_ms()
        + i64::try_from(backoff(cfg, attempts, &mut rng).as_millis()).unwrap_or(i64::MAX);
    let window_ends =
        due.delivery.created_ms + i64::try_from(cfg.window.as_millis()).unwrap_or(i64::MAX);
    let attempt = if retry && next_ms <= window_ends {
        Attempt::Retry {
            code,
            error,
            latency_ms,
            next_ms,
        }
    } else if retry {
        Attempt::Failed {
            code,
            error: format!("the retry window ended; the last attempt: {error}"),
            latency_ms,
        }
    } else {
        Attempt::Failed {
            code,
            error,
            latency_ms,
        }
    };
    Sent {
        id,
        webhook,
        attempt,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signatures_are_hmac_sha256_of_time_dot_body() {
        let s = signature("key", 1_700_000_000, b"{\"a\":1}");
        assert!(s.starts_with("t=1700000000,v1="), "{s}");
        assert_eq!(s.len(), "t=1700000000,v1=".len() + 64);
        let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(b"key").unwrap();
        mac.update(b"1700000000.{\"a\":1}");
        let want: String = mac
            .finalize()
            .into_bytes()
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        assert!(s.ends_with(&want));
    }

    #[test]
    fn backoff_doubles_to_its_cap_with_jitter() {
        let cfg = Config::default();
        let mut rng = fastrand::Rng::with_seed(1);
        for (attempts, base) in [(1, 5.0), (2, 10.0), (3, 20.0), (12, 3600.0), (40, 3600.0)] {
            let w = backoff(&cfg, attempts, &mut rng).as_secs_f64();
            assert!((base * 0.8..=base * 1.2).contains(&w), "{attempts}: {w}");
        }
    }
}
