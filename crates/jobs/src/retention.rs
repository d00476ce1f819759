//! Retention: deletes what is older than its keep period, once at start and then every
//! interval. Today the event stream (`[events] retention_days`); SIP traces join it.

use std::time::Duration;

use store::Store;
use tracing::{info, warn};

/// How long the event stream and the SIP traces are kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Retention {
    /// Events older than this are deleted; `None`: kept for ever.
    pub events: Option<Duration>,
    /// Trace messages older than this are deleted; `None`: kept (within their byte budget).
    pub traces: Option<Duration>,
    /// Webhook deliveries that ended (delivered, failed) older than this are deleted.
    pub deliveries: Option<Duration>,
}

/// Idempotency keys answer repeats for a day.
const IDEMPOTENCY_KEEP_MS: i64 = 86_400_000;

/// Runs until the task is aborted: deletes at start, then every `every`.
pub async fn run(store: Store, retention: Retention, every: Duration) {
    let mut tick = tokio::time::interval(every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        once(&store, retention, domain::now_ms()).await;
    }
}

/// One pass at `now_ms`: how many events it deleted (and the old traces).
pub async fn once(store: &Store, retention: Retention, now_ms: i64) -> u64 {
    if let Some(keep) = retention.traces {
        let before_us = now_ms
            .saturating_mul(1000)
            .saturating_sub(i64::try_from(keep.as_micros()).unwrap_or(i64::MAX));
        match store.delete_traces_before(before_us).await {
            Ok(0) => {}
            Ok(n) => info!(messages = n, "retention: old SIP traces deleted"),
            Err(e) => {
                warn!(error = %e, "retention: old SIP traces not deleted (retried at the next pass)")
            }
        }
    }
    if let Some(keep) = retention.deliveries {
        let before = now_ms.saturating_sub(i64::try_from(keep.as_millis()).unwrap_or(i64::MAX));
        match store.delete_deliveries_before(before).await {
            Ok(0) => {}
            Ok(n) => info!(deliveries = n, "retention: old webhook deliveries deleted"),
            Err(e) => {
                warn!(error = %e, "retention: old webhook deliveries not deleted (retried at the next pass)")
            }
        }
    }
    if let Err(e) = store
        .delete_idempotency_keys_before(now_ms - IDEMPOTENCY_KEEP_MS)
        .await
    {
        warn!(error = %e, "retention: old idempotency keys not deleted (retried at the next pass)");
    }
    let Some(keep) = retention.events else {
        return 0;
    };
    let before = now_ms.saturating_sub(i64::try_from(keep.as_millis()).unwrap_or(i64::MAX));
    match store.delete_events_before(before).await {
        Ok(0) => 0,
        Ok(n) => {
            info!(events = n, "retention: old events deleted");
            n
        }
        Err(e) => {
            warn!(error = %e, "retention: old events not deleted (retried at the next pass)");
            0
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn events_older_than_the_keep_period_go() {
        let store = Store::connect("sqlite::memory:").await.unwrap();
        store.migrate().await.unwrap();
        let day = 86_400_000;
        for at_ms in [10 * day, 20 * day, 29 * day] {
            let mut e = store::NewEvent::new("cap.reached", serde_json::json!({}));
            e.at_ms = at_ms;
            store.append_events(&[e]).await.unwrap();
        }
        let keep = Retention {
            events: Some(Duration::from_secs(15 * 86_400)),
            traces: None,
            deliveries: None,
        };
        assert_eq!(
            once(&store, keep, 30 * day).await,
            1,
            "only day 10 is older than 15 days"
        );
        let left: Vec<i64> = store
            .events_after(0, 10, None)
            .await
            .unwrap()
            .iter()
            .map(|e| e.at_ms)
            .collect();
        assert_eq!(left, [20 * day, 29 * day]);
        let forever = Retention {
            events: None,
            traces: None,
            deliveries: None,
        };
        assert_eq!(once(&store, forever, 1_000 * day).await, 0);
        assert_eq!(store.events_after(0, 10, None).await.unwrap().len(), 2);
    }
}
