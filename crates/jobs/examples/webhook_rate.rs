//! Webhook deliveries per second to a local receiver: `webhook_rate DATABASE_URL EVENTS`
//! appends EVENTS `call.completed` events to a fresh database with one subscription, runs
//! `jobs::webhooks` (the fan-out and the sender, as `vts serve` does) against a receiver on
//! loopback that answers 204 (keep-alive), and times the run until every delivery is
//! recorded delivered. Prints one JSON line. Used by bench/api.py.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use store::{NewEvent, Store};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};

/// A minimal HTTP/1.1 receiver: reads each request (head and body) and answers 204.
async fn receiver(listener: tokio::net::TcpListener, got: Arc<AtomicU64>) {
    loop {
        let Ok((conn, _)) = listener.accept().await else {
            continue;
        };
        let got = got.clone();
        tokio::spawn(async move {
            let (read, mut write) = conn.into_split();
            let mut reader = BufReader::new(read);
            loop {
                let mut len = 0usize;
                let mut line = String::new();
                loop {
                    line.clear();
                    match reader.read_line(&mut line).await {
                        Ok(0) | Err(_) => return,
                        Ok(_) => {}
                    }
                    let l = line.trim_end();
                    if l.is_empty() {
                        break;
                    }
                    if let Some(v) = l
                        .split_once(':')
                        .filter(|(n, _)| n.eq_ignore_ascii_case("content-length"))
                        .map(|(_, v)| v.trim())
                    {
                        len = v.parse().unwrap_or(0);
                    }
                }
                let mut body = vec![0; len];
                if reader.read_exact(&mut body).await.is_err() {
                    return;
                }
                got.fetch_add(1, Ordering::Relaxed);
                if write
                    .write_all(b"HTTP/1.1 204 No Content\r\nContent-Length: 0\r\n\r\n")
                    .await
                    .is_err()
                {
                    return;
                }
            }
        });
    }
}

#[tokio::main]
async fn main() {
    let mut args = std::env::args().skip(1);
    let (Some(url), Some(count)) = (
        args.next(),
        args.next().and_then(|n| n.parse::<usize>().ok()),
    ) else {
        eprintln!("usage: webhook_rate DATABASE_URL EVENTS");
        std::process::exit(2);
    };
    // reqwest is built with rustls and no provider: the process installs ring's, as vts does.
    #[allow(deprecated)]
    let _ = rustls::crypto::ring::default_provider().install_default();
    let store = Store::connect(&url).await.expect("the database");
    store.migrate().await.expect("migrations");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let got = Arc::new(AtomicU64::new(0));
    tokio::spawn(receiver(listener, got.clone()));
    let (hook, _) = store
        .create_webhook(
            &format!("http://{addr}/in"),
            &["call.completed".to_string()],
            None,
            None,
        )
        .await
        .expect("a subscription");
    let body = serde_json::json!({ "id": "bench", "final_code": 200, "billable_secs": 60 });
    let events: Vec<NewEvent> = (0..count)
        .map(|_| NewEvent::new("call.completed", body.clone()).customer(1))
        .collect();
    for chunk in events.chunks(1000) {
        store.append_events(chunk).await.expect("events");
    }
    let started = Instant::now();
    let counts = Arc::new(jobs::webhooks::Counts::default());
    let task = tokio::spawn(jobs::webhooks::run(
        store.clone(),
        jobs::webhooks::Config::default(),
        counts.clone(),
    ));
    let deadline = started + Duration::from_secs(600);
    loop {
        let delivered = counts.delivered.load(Ordering::Relaxed);
        if delivered as usize >= count
            && store
                .deliveries(hook.id, None, 1)
                .await
                .expect("the log")
                .first()
                .is_some_and(|d| d.state == "delivered")
        {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "{delivered} of {count} within 600 s"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let seconds = started.elapsed().as_secs_f64();
    task.abort();
    println!(
        "{{\"events\": {count}, \"received\": {}, \"seconds\": {seconds:.2}, \"deliveries_per_sec\": {:.0}, \"retried\": {}, \"failed\": {}}}",
        got.load(Ordering::Relaxed),
        count as f64 / seconds,
        counts.retried.load(Ordering::Relaxed),
        counts.failed.load(Ordering::Relaxed)
    );
}
