//! The storage story: one realistic sequence of configuration changes and call records,
//! against SQLite always and against PostgreSQL when `VTS_TEST_POSTGRES_URL` is set (each run
//! in a freshly created database, dropped at the end).

use std::net::IpAddr;
use std::time::{SystemTime, UNIX_EPOCH};

use domain::Scope;
use domain::{
    BillingMode, Carrier, CarrierId, Cdr, CustomerId, CustomerStatus, DialPlanId, HangupSide,
    Health, InboundFormat, Money, NumberProfile, OutboundFormat, Pattern, Rate, RatePlanId,
    RoutingMode, Transport,
};
use ipnet::IpNet;
use sqlx::migrate::MigrateDatabase;
use sqlx::{AnyConnection, Connection};
use store::{
    Actor, Backend, CarrierLimitsChange, CdrFilter, CustomerHeaders, EntryKind, LimitsChange,
    NewCarrier, NewCustomer, NumbersChange, RateOwner, Store, StoreError,
};

#[tokio::test]
async fn story_on_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("vts.db");
    assert!(!path.exists());
    let url = format!("sqlite://{}", path.display());
    story(&url, Backend::Sqlite).await;
    assert!(path.exists(), "connect created the database file");

    // journal_mode is stored in the file: a fresh connection sees the store's WAL.
    let mut other = AnyConnection::connect(&url).await.unwrap();
    let mode: String = sqlx::query_scalar("PRAGMA journal_mode")
        .fetch_one(&mut other)
        .await
        .unwrap();
    assert_eq!(mode, "wal");
    other.close().await.unwrap();
}

#[tokio::test]
async fn story_on_postgres() {
    let Ok(base) = std::env::var("VTS_TEST_POSTGRES_URL") else {
        eprintln!("VTS_TEST_POSTGRES_URL is not set: skipping the PostgreSQL story");
        return;
    };
    sqlx::any::install_default_drivers();
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    let url = with_database(
        &base,
        &format!("vts_store_test_{}_{nanos}", std::process::id()),
    );
    sqlx::Any::create_database(&url)
        .await
        .expect("create a test database (the role needs CREATEDB)");
    story(&url, Backend::Postgres).await;
    sqlx::Any::drop_database(&url).await.unwrap();
}

#[tokio::test]
async fn unknown_url_schemes_are_refused() {
    let err = Store::connect("mysql://root:secret@127.0.0.1/vts")
        .await
        .unwrap_err();
    assert!(
        matches!(&err, StoreError::UnsupportedUrl(scheme) if scheme == "mysql"),
        "{err:?}"
    );
    assert!(!err.to_string().contains("secret"));
}

/// `base` with its database name replaced by `name` (query string kept).
fn with_database(base: &str, name: &str) -> String {
    let (head, query) = match base.split_once('?') {
        Some((head, query)) => (head, format!("?{query}")),
        None => (base, String::new()),
    };
    let (scheme, rest) = head.split_once("://").expect("a URL");
    let server = rest.split_once('/').map_or(rest, |(server, _)| server);
    format!("{scheme}://{server}/{name}{query}")
}

fn nets(list: &[&str]) -> Vec<IpNet> {
    list.iter().map(|s| s.parse().unwrap()).collect()
}

fn customer(
    name: &str,
    ips: &[&str],
    max_channels: Option<u32>,
    max_cps: Option<u32>,
) -> NewCustomer {
    NewCustomer {
        name: name.into(),
        ips: nets(ips),
        max_channels,
        max_cps,
    }
}

fn carrier(name: &str, port: u16, transport: Transport, priority: i32, weight: i32) -> NewCarrier {
    NewCarrier {
        name: name.into(),
        host: format!("{name}.example.net"),
        port,
        transport,
        priority,
        weight,
        max_channels: (priority == 20).then_some(30),
        max_cps: None,
        first_response_ms: (priority == 20).then_some(2_500),
        ring_timeout_s: (priority == 20).then_some(60),
    }
}

/// `n` CDRs with every field exercised: NULLs and values, unicode, extreme integers, equal
/// INVITE times (ordered by id then), every hangup side.
fn cdrs(range: std::ops::Range<usize>) -> Vec<Cdr> {
    range
        .map(|i| {
            let answered = i % 3 != 0;
            let invite_ms = 1_780_000_000_000 + (i as i64 / 2) * 1_000; // pairs share a time
            Cdr {
                id: format!("01J{i:08}"),
                call_id: format!("{i}-a84b4c76e66710@pc33.atlanta.example.com"),
                customer_id: CustomerId(1 + (i % 2) as i64),
                carrier_id: (i % 5 != 0).then_some(CarrierId(i as i64 % 3 + 1)),
                carrier_addr: (i % 5 != 0).then(|| format!("198.51.100.{}:5060", i % 250)),
                source_addr: format!("192.0.2.10:{}", 5060 + i % 100),
                caller: format!("+3120{i:07}"),
                callee: if i % 7 == 0 {
                    "Ünïcødé 💡 'quoted' \"x\"".into()
                } else {
                    format!("+4420{i:07}")
                },
                caller_out: (i % 4 != 0).then(|| format!("3120{i:07}")),
                callee_out: (i % 4 != 1).then(String::new),
                user_agent: (i % 2 == 0).then(|| "Asterisk PBX 20.5.0".into()),
                invite_ms,
                progress_ms: (i % 3 != 2).then_some(invite_ms + 120),
                answer_ms: answered.then_some(invite_ms + 2_000),
                end_ms: invite_ms + if answered { 62_001 } else { 800 },
                pdd_ms: (i % 3 != 2).then_some(118),
                billable_ms: if answered { 60_001 } else { 0 },
                billable_secs: if answered { 61 } else { 0 },
                final_code: match i % 4 {
                    0 => 486,
                    1 => 200,
                    2 => u16::MAX,
                    _ => 503,
                },
                final_reason: if i % 4 == 1 {
                    "OK".into()
                } else {
                    String::new()
                },
                hangup: [HangupSide::Caller, HangupSide::Callee, HangupSide::Switch][i % 3],
                attempts: if i == 5 { u32::MAX } else { (i % 4) as u32 },
                caller_e164: answered.then(|| "34912000000".to_string()),
                callee_e164: answered.then(|| format!("4420{i:07}")),
                cost: answered.then_some(Money(20_000 + i as i64)),
                price: (i % 3 == 0).then_some(Money(i64::MAX)),
                q850_cause: (i % 4 == 0).then_some(17),
                attempt_log: (0..(i % 3))
                    .map(|n| domain::AttemptRecord {
                        carrier_id: CarrierId(n as i64 + 1),
                        carrier_addr: format!("198.51.100.{n}:5060"),
                        started_ms: invite_ms + n as i64,
                        code: (n != 1).then_some(503),
                        pdd_ms: None,
                    })
                    .collect(),
                codecs_offered: Some("PCMU,PCMA,telephone-event".into()),
                codecs_answered: answered.then(|| "PCMA".to_string()),
            }
        })
        .collect()
}

/// Every configuration change bumps the version.
async fn bumped(store: &Store, version: &mut i64) {
    let now = store.config_version().await.unwrap();
    assert!(
        now > *version,
        "config_version {now} did not grow past {version}"
    );
    *version = now;
}

async fn story(url: &str, backend: Backend) {
    let store = Store::connect(url).await.unwrap();
    assert_eq!(store.backend(), backend);
    let mut version = migrations(&store).await;
    let (acme, beta) = customers(&store, &mut version).await;
    let (low, high, _heavy) = carriers(&store, &mut version).await;
    another_writer(&store, url, &mut version).await;
    directory(&store, &mut version, acme, (low, high)).await;
    cdr_records(&store, version).await;
    blocks(&store).await;
    whitelist(&store).await;
    header_policy(&store, acme, beta, high).await;
    routing_tables(&store, acme, high).await;
    audit_and_tokens(&store, url, acme).await;
    events(&store, url, acme, high).await;
    store.close().await;
}

/// Chapter: every change is audited with who, what, before and after, in its own
/// transaction with an event; a change that changes nothing, or fails, records nothing.
/// Tokens: shown once, kept as a hash, found by what a request presents until revoked or
/// expired.
async fn audit_and_tokens(store: &Store, url: &str, acme: CustomerId) {
    let as_token = store.acting_as(Actor::Token {
        id: 7,
        name: "billing".into(),
    });
    let last = store.last_event_seq().await.unwrap();
    let change = LimitsChange {
        max_channels: Some(Some(44)),
        ..LimitsChange::default()
    };
    as_token.set_customer_limits(acme, &change).await.unwrap();
    let target = format!("customer:{}", acme.0);
    let records = store.audit_records(Some(&target), None, 10).await.unwrap();
    let newest = &records[0];
    assert_eq!(
        (newest.actor.as_str(), newest.action.as_str()),
        ("token:7:billing", "customer.limits")
    );
    let (before, after) = (
        newest.before.as_ref().unwrap(),
        newest.after.as_ref().unwrap(),
    );
    assert_ne!(before["max_channels"], 44);
    assert_eq!(after["max_channels"], 44);
    assert_eq!(after["name"], "acme");
    assert!(
        after["ips"].is_array(),
        "the rows that belong to it: {after}"
    );
    let event = store.events_after(last, 10, None).await.unwrap();
    assert_eq!(event.len(), 1, "{event:?}");
    assert_eq!(event[0].kind, "config.changed");
    assert_eq!(event[0].customer_id, Some(acme.0));
    assert_eq!(event[0].body["audit_id"], newest.id);
    assert_eq!(event[0].body["actor"], "token:7:billing");
    // The same change again changes nothing: no record, no event.
    as_token.set_customer_limits(acme, &change).await.unwrap();
    assert_eq!(
        store
            .audit_records(Some(&target), None, 10)
            .await
            .unwrap()
            .len(),
        records.len()
    );
    assert_eq!(store.last_event_seq().await.unwrap(), event[0].seq);
    // A change refused records nothing.
    assert!(
        as_token
            .set_customer_limits(CustomerId(999_999), &change)
            .await
            .is_err()
    );
    assert_eq!(store.last_event_seq().await.unwrap(), event[0].seq);
    // Paging, newest first.
    let all = store.audit_records(None, None, 1000).await.unwrap();
    assert!(all.windows(2).all(|w| w[0].id > w[1].id));
    let next = store.audit_records(None, Some(all[0].id), 1).await.unwrap();
    assert_eq!(next[0].id, all[1].id);

    // Tokens.
    assert!(matches!(
        store
            .create_token("ghost", Scope::Customer(CustomerId(999_999)), None)
            .await
            .unwrap_err(),
        StoreError::NotFound { .. }
    ));
    assert!(
        store
            .create_token("old", Scope::Read, Some(1))
            .await
            .is_err(),
        "expired already"
    );
    let (admin, secret) = store.create_token("ops", Scope::Admin, None).await.unwrap();
    assert!(secret.starts_with("vts_") && secret.len() == 44, "{secret}");
    assert_eq!(admin.scope, Scope::Admin);
    let now = domain::now_ms();
    let found = store.token_by_secret(&secret, now).await.unwrap().unwrap();
    assert_eq!(found.id, admin.id);
    assert!(
        store
            .token_by_secret("vts_nothing", now)
            .await
            .unwrap()
            .is_none()
    );
    let other = if secret.ends_with('x') { 'y' } else { 'x' };
    let wrong = format!("{}{other}", &secret[..43]);
    assert!(store.token_by_secret(&wrong, now).await.unwrap().is_none());
    // Only the hash is stored.
    let mut raw = AnyConnection::connect(url).await.unwrap();
    let stored: String = sqlx::query_scalar("SELECT token_hash FROM api_tokens WHERE id = $1")
        .bind(admin.id)
        .fetch_one(&mut raw)
        .await
        .unwrap();
    assert_eq!(stored, store::token_hash(&secret));
    assert!(!stored.contains(&secret[4..]));
    raw.close().await.unwrap();
    let (mine, mine_secret) = store
        .create_token("acme portal", Scope::Customer(acme), Some(now + 86_400_000))
        .await
        .unwrap();
    assert_eq!(mine.scope, Scope::Customer(acme));
    assert!(
        store
            .token_by_secret(&mine_secret, now + 86_400_001)
            .await
            .unwrap()
            .is_none(),
        "expired"
    );
    let revoked = store.revoke_token(mine.id).await.unwrap();
    assert!(revoked.revoked_ms.is_some());
    assert!(
        store
            .token_by_secret(&mine_secret, now)
            .await
            .unwrap()
            .is_none(),
        "revoked"
    );
    assert_eq!(store.list_tokens().await.unwrap().len(), 2);
    let token_audit = store
        .audit_records(Some(&format!("token:{}", mine.id)), None, 10)
        .await
        .unwrap();
    assert_eq!(token_audit.len(), 2, "created and revoked");
    assert!(
        !token_audit[1]
            .after
            .as_ref()
            .unwrap()
            .to_string()
            .contains("hash")
    );
    assert!(matches!(
        store.revoke_token(999_999).await.unwrap_err(),
        StoreError::NotFound { .. }
    ));
}

/// Chapter: the event stream. The chapters before wrote events with what they report (one
/// `call.completed` per CDR stored, none for a CDR stored again; a block; status changes);
/// consumers read from their own checkpoint, which never moves back; a filter by kind; a
/// commit wakes a subscriber of this process at once, and on PostgreSQL one of another
/// store (another process) through NOTIFY; retention deletes by age.
async fn events(store: &Store, url: &str, acme: CustomerId, carrier: CarrierId) {
    let completed = store
        .events_after(0, u32::MAX, Some("call.completed"))
        .await
        .unwrap();
    assert_eq!(
        completed.len() as i64,
        store.count_cdrs().await.unwrap(),
        "one per CDR stored, none for a CDR stored again"
    );
    assert_eq!(completed[0].body["id"], "01J00000000");
    let seqs: Vec<i64> = completed.iter().map(|e| e.seq).collect();
    assert!(seqs.windows(2).all(|w| w[0] < w[1]), "oldest first");
    let all = store.events_after(0, u32::MAX, None).await.unwrap();
    assert!(
        all.iter().any(|e| e.kind == "security.blocked"),
        "the blocks chapter's"
    );
    assert!(all.iter().any(|e| e.kind == "customer.suspended"));
    let last = store.last_event_seq().await.unwrap();
    assert_eq!(last, all.last().unwrap().seq);

    // Status and money write their event in their own transaction.
    store
        .set_customer_status(acme, CustomerStatus::Blocked, Some("fraud"))
        .await
        .unwrap();
    store
        .post(acme, EntryKind::Credit, Money(5_000_000), "top-up")
        .await
        .unwrap();
    let new = store.events_after(last, 10, None).await.unwrap();
    let kinds: Vec<&str> = new.iter().map(|e| e.kind.as_str()).collect();
    assert_eq!(kinds, ["customer.blocked", "balance.changed"]);
    assert_eq!(new[0].customer_id, Some(acme.0));
    assert_eq!(new[0].body["reason"], "fraud");
    assert_eq!(new[1].body["amount"], 5_000_000);
    // A failed change writes no event.
    assert!(
        store
            .set_customer_status(CustomerId(999_999), CustomerStatus::Active, None)
            .await
            .is_err()
    );
    assert_eq!(store.last_event_seq().await.unwrap(), new[1].seq);
    // Health: an event on a change of state only.
    let before = store.last_event_seq().await.unwrap();
    store
        .set_carrier_health(carrier, Health::Down, 1_000)
        .await
        .unwrap();
    store
        .set_carrier_health(carrier, Health::Down, 2_000)
        .await
        .unwrap();
    let health = store.events_after(before, 10, None).await.unwrap();
    assert_eq!(health.len(), 1, "{health:?}");
    assert_eq!(
        (health[0].kind.as_str(), health[0].carrier_id),
        ("carrier.down", Some(carrier.0))
    );

    // Checkpoints: per consumer, never back.
    assert_eq!(store.event_checkpoint("webhooks").await.unwrap(), 0);
    store.save_event_checkpoint("webhooks", 40).await.unwrap();
    store.save_event_checkpoint("webhooks", 30).await.unwrap();
    assert_eq!(store.event_checkpoint("webhooks").await.unwrap(), 40);
    assert_eq!(store.event_checkpoint("alerts").await.unwrap(), 0);
    assert!(store.save_event_checkpoint("", 1).await.is_err());
    let page = store.events_after(40, 5, None).await.unwrap();
    assert_eq!(page.first().map(|e| e.seq), Some(41));
    assert_eq!(page.len(), 5);
    // The newest n, for `vts events tail`.
    let tail = store.events_tail_start(2, None).await.unwrap();
    let two = store.events_after(tail, 10, None).await.unwrap();
    assert_eq!(two.len(), 2);
    assert_eq!(two[1].seq, store.last_event_seq().await.unwrap());

    // Standalone appends; an unknown kind is refused and appends nothing.
    let bad = store::NewEvent::new("no.such", serde_json::json!({}));
    assert!(matches!(
        store.append_events(&[bad]).await.unwrap_err(),
        StoreError::Invalid(_)
    ));
    // A subscriber is woken by a commit: here, and (PostgreSQL) in another store.
    let mut here = store.subscribe_events().await.unwrap();
    let other = Store::connect(url).await.unwrap();
    let mut there = other.subscribe_events().await.unwrap();
    let wake = tokio::spawn(async move {
        here.wait(std::time::Duration::from_secs(60)).await;
    });
    let wake_there = tokio::spawn(async move {
        there.wait(std::time::Duration::from_secs(60)).await;
        there
    });
    tokio::task::yield_now().await;
    let warn = store::NewEvent::new("limit.warning", serde_json::json!({ "limit": "cps" }))
        .customer(acme.0);
    // (Appended until the subscriber has seen one: it may not be waiting yet.)
    let woke = tokio::time::timeout(std::time::Duration::from_secs(10), async {
        while !wake.is_finished() {
            store
                .append_events(std::slice::from_ref(&warn))
                .await
                .unwrap();
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
    })
    .await;
    assert!(woke.is_ok(), "a commit of this store wakes its subscriber");
    if store.backend() == Backend::Postgres {
        let woke = tokio::time::timeout(std::time::Duration::from_secs(10), async {
            while !wake_there.is_finished() {
                store
                    .append_events(std::slice::from_ref(&warn))
                    .await
                    .unwrap();
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
            }
        })
        .await;
        assert!(woke.is_ok(), "NOTIFY wakes a subscriber of another store");
    } else {
        wake_there.abort();
    }
    other.close().await;

    // Retention: by age.
    let total = store.events_after(0, u32::MAX, None).await.unwrap().len() as u64;
    assert_eq!(store.delete_events_before(0).await.unwrap(), 0);
    let deleted = store.delete_events_before(i64::MAX).await.unwrap();
    assert_eq!(deleted, total);
    assert!(store.events_after(0, 10, None).await.unwrap().is_empty());
}

/// Chapter: migrations are clean on an empty database and a no-op the second time; the
/// configuration version starts at 1. Returns it.
async fn migrations(store: &Store) -> i64 {
    store.migrate().await.unwrap();
    store.migrate().await.unwrap();
    let version = store.config_version().await.unwrap();
    assert_eq!(version, 1);
    assert!(store.list_customers().await.unwrap().is_empty());
    assert!(store.list_carriers().await.unwrap().is_empty());
    assert_eq!(store.count_cdrs().await.unwrap(), 0);
    version
}

/// Chapter: customers with host addresses and networks; refusals change nothing.
async fn customers(store: &Store, version: &mut i64) -> (CustomerId, CustomerId) {
    let acme = store
        .add_customer(&customer(
            "acme",
            &[
                "192.0.2.10/32",
                "198.51.100.0/24",
                "10.1.2.3/8",
                "192.0.2.10/32",
            ],
            Some(30),
            Some(5),
        ))
        .await
        .unwrap();
    bumped(store, version).await;
    let beta = store
        .add_customer(&customer(
            "beta",
            &["10.1.0.0/16", "2001:db8::1/32", "::ffff:192.0.2.11/128"],
            None,
            None,
        ))
        .await
        .unwrap();
    bumped(store, version).await;
    assert!(beta > acme);

    // Refusals change nothing.
    let err = store
        .add_customer(&customer(
            "gamma",
            &["203.0.113.5/32", "192.0.2.10/32"],
            None,
            None,
        ))
        .await
        .unwrap_err();
    match &err {
        StoreError::Conflict(msg) => assert!(
            msg.contains("192.0.2.10/32") && msg.contains("acme"),
            "{msg}"
        ),
        other => panic!("expected a conflict, got {other:?}"),
    }
    let err = store
        .add_customer(&customer("beta", &["203.0.113.9/32"], None, None))
        .await
        .unwrap_err();
    assert!(
        matches!(&err, StoreError::Conflict(msg) if msg.contains("beta")),
        "{err:?}"
    );
    let err = store
        .add_customer(&customer("  ", &[], None, None))
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::Invalid(_)), "{err:?}");
    let err = store
        .add_customer(&customer("delta", &[], Some(0), None))
        .await
        .unwrap_err();
    assert!(
        matches!(&err, StoreError::Invalid(msg) if msg.contains("max_channels")),
        "{err:?}"
    );
    assert_eq!(
        store.config_version().await.unwrap(),
        *version,
        "refused changes leave the version alone"
    );

    let customers = store.list_customers().await.unwrap();
    assert_eq!(customers.len(), 2);
    assert_eq!(
        (customers[0].id, customers[0].name.as_str()),
        (acme, "acme")
    );
    assert_eq!(
        customers[0].ips,
        nets(&["192.0.2.10/32", "198.51.100.0/24", "10.0.0.0/8"])
    );
    assert_eq!(
        (
            customers[0].max_channels,
            customers[0].max_cps,
            customers[0].active
        ),
        (Some(30), Some(5), true)
    );
    assert_eq!(
        (customers[1].id, customers[1].name.as_str()),
        (beta, "beta")
    );
    assert_eq!(
        customers[1].ips,
        nets(&["10.1.0.0/16", "2001:db8::/32", "192.0.2.11/32"])
    );
    assert_eq!(
        (customers[1].max_channels, customers[1].max_cps),
        (None, None)
    );
    (acme, beta)
}

/// Chapter: carriers; refusals change nothing. Returns (low, high, heavy).
async fn carriers(store: &Store, version: &mut i64) -> (CarrierId, CarrierId, CarrierId) {
    let low = store
        .add_carrier(&carrier("low", 5060, Transport::Udp, 10, 1))
        .await
        .unwrap();
    bumped(store, version).await;
    let high = store
        .add_carrier(&carrier("high", 5080, Transport::Tcp, 20, 5))
        .await
        .unwrap();
    bumped(store, version).await;
    let heavy = store
        .add_carrier(&carrier("heavy", 5060, Transport::Udp, 20, 10))
        .await
        .unwrap();
    bumped(store, version).await;
    let err = store
        .add_carrier(&carrier("zero", 0, Transport::Udp, 1, 1))
        .await
        .unwrap_err();
    assert!(
        matches!(&err, StoreError::Invalid(msg) if msg.contains("port")),
        "{err:?}"
    );
    let err = store
        .add_carrier(&carrier("high", 5060, Transport::Udp, 1, 1))
        .await
        .unwrap_err();
    assert!(
        matches!(&err, StoreError::Conflict(msg) if msg.contains("high")),
        "{err:?}"
    );
    let mut blank_host = carrier("blank", 5060, Transport::Udp, 1, 1);
    blank_host.host = " ".into();
    assert!(matches!(
        store.add_carrier(&blank_host).await,
        Err(StoreError::Invalid(_))
    ));
    assert_eq!(store.config_version().await.unwrap(), *version);

    let carriers = store.list_carriers().await.unwrap();
    assert_eq!(
        carriers[1],
        Carrier {
            id: high,
            name: "high".into(),
            host: "high.example.net".into(),
            port: 5080,
            transport: Transport::Tcp,
            priority: 20,
            weight: 5,
            active: true,
            first_response_ms: Some(2_500),
            ring_timeout_s: Some(60),
            max_channels: Some(30),
            max_cps: None,
            allow: Vec::new(),
            deny: Vec::new(),
            ..Carrier::default()
        }
    );
    assert_eq!(
        carriers.iter().map(|c| c.id).collect::<Vec<_>>(),
        vec![low, high, heavy]
    );
    (low, high, heavy)
}

/// Chapter: another writer, straight SQL on its own connection: the triggers bump the
/// version.
async fn another_writer(store: &Store, url: &str, version: &mut i64) {
    let mut other = AnyConnection::connect(url).await.unwrap();
    sqlx::query("UPDATE carriers SET active = 0 WHERE name = 'heavy'")
        .execute(&mut other)
        .await
        .unwrap();
    bumped(store, version).await;
    sqlx::query("UPDATE customer_ips SET active = 0 WHERE network = '192.0.2.11/32'")
        .execute(&mut other)
        .await
        .unwrap();
    bumped(store, version).await;
    sqlx::query("DELETE FROM customer_ips WHERE network = '198.51.100.0/24'")
        .execute(&mut other)
        .await
        .unwrap();
    bumped(store, version).await;
    other.close().await.unwrap();
}

/// Chapter: the directory: identification by longest prefix, routes by priority then
/// weight; a freed address can go to a new customer.
async fn directory(
    store: &Store,
    version: &mut i64,
    acme: CustomerId,
    (low, high): (CarrierId, CarrierId),
) {
    let directory = store.load_directory().await.unwrap();
    assert_eq!(directory.version, *version);
    let who = |ip: &str| {
        directory
            .identify(ip.parse::<IpAddr>().unwrap())
            .map(|c| c.name.clone())
    };
    assert_eq!(who("192.0.2.10").as_deref(), Some("acme"));
    assert_eq!(who("10.200.0.1").as_deref(), Some("acme"), "10.0.0.0/8");
    assert_eq!(
        who("10.1.5.5").as_deref(),
        Some("beta"),
        "10.1.0.0/16 beats 10.0.0.0/8"
    );
    assert_eq!(who("2001:db8::5").as_deref(), Some("beta"));
    assert_eq!(who("::ffff:10.1.0.9").as_deref(), Some("beta"));
    assert_eq!(who("192.0.2.11"), None, "deactivated by the other writer");
    assert_eq!(who("198.51.100.77"), None, "deleted by the other writer");
    assert_eq!(
        who("203.0.113.5"),
        None,
        "never stored: the refused customer's transaction"
    );
    assert_eq!(directory.customer(acme).unwrap().max_channels, Some(30));
    let routes: Vec<CarrierId> = directory.routes().iter().map(|c| c.id).collect();
    assert_eq!(routes, vec![high, low], "heavy is inactive");
    assert_eq!(
        store.config_version().await.unwrap(),
        *version,
        "reading changes nothing"
    );

    // The freed address can go to a new customer now.
    store
        .add_customer(&customer("gamma", &["192.0.2.11/32"], None, Some(1)))
        .await
        .unwrap();
    bumped(store, version).await;
}

/// Chapter: CDRs: more than one multi-row statement's worth, idempotent by id.
async fn cdr_records(store: &Store, version: i64) {
    let batch = cdrs(0..1_203);
    assert_eq!(store.insert_cdrs(&[]).await.unwrap(), 0);
    assert_eq!(store.insert_cdrs(&batch).await.unwrap(), 1_203);
    assert_eq!(
        store.insert_cdrs(&batch).await.unwrap(),
        0,
        "the same batch again adds nothing"
    );
    let overlap = cdrs(1_200..1_210);
    assert_eq!(store.insert_cdrs(&overlap).await.unwrap(), 7);
    assert_eq!(store.count_cdrs().await.unwrap(), 1_210);
    assert_eq!(
        store.config_version().await.unwrap(),
        version,
        "CDRs are not configuration"
    );

    let mut expected = cdrs(0..1_210);
    expected.sort_by(|a, b| b.invite_ms.cmp(&a.invite_ms).then(b.id.cmp(&a.id)));
    let newest = store.list_cdrs(5).await.unwrap();
    assert_eq!(newest, expected[..5]);
    assert_eq!(newest[0].id, "01J00001209");
    assert_eq!(
        newest[1].id, "01J00001208",
        "equal INVITE times: higher id first"
    );
    let all = store.list_cdrs(u32::MAX).await.unwrap();
    assert_eq!(all.len(), 1_210);
    for (got, want) in all.iter().zip(&expected) {
        assert_eq!(got, want, "every field round-trips");
    }
    assert!(store.list_cdrs(0).await.unwrap().is_empty());
    let err = store
        .insert_cdrs(&[Cdr {
            id: String::new(),
            ..expected[0].clone()
        }])
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::Invalid(_)), "{err:?}");
}

/// Chapter: automatic blocks: never over a manual entry still in force; over an earlier
/// automatic one, yes. A block moves the block list's version only.
async fn blocks(store: &Store) {
    // Automatic blocks: never over a manual entry still in force; over an earlier automatic
    // one, yes.
    let by_hand: IpNet = "198.51.100.7/32".parse().unwrap();
    let flooder: IpNet = "198.51.100.8/32".parse().unwrap();
    let before = store.versions().await.unwrap();
    store.add_block(by_hand, "by hand", None).await.unwrap();
    // A block moves the block list's version only: the configuration is not reloaded.
    let after = store.versions().await.unwrap();
    assert_eq!(after.config, before.config);
    assert!(
        after.blocklist > before.blocklist,
        "{before:?} -> {after:?}"
    );
    let list = store.load_blocklist().await.unwrap();
    assert_eq!(list.version(), after.blocklist);
    assert!(list.blocking("198.51.100.7".parse().unwrap(), 0).is_some());
    let later = 4_000_000_000_000;
    store
        .add_auto_block(by_hand, "flood", "flood: auto", later)
        .await
        .unwrap();
    store
        .add_auto_block(flooder, "flood", "first", 1)
        .await
        .unwrap();
    store
        .add_auto_block(flooder, "auth_fail", "second", later)
        .await
        .unwrap();
    let blocks = store.list_blocks().await.unwrap();
    let find = |net: IpNet| blocks.iter().find(|b| b.network == net).unwrap();
    assert_eq!(
        (find(by_hand).source.as_str(), find(by_hand).reason.as_str()),
        ("manual", "by hand")
    );
    assert_eq!(find(by_hand).expires_ms, None);
    assert_eq!(
        (find(flooder).source.as_str(), find(flooder).reason.as_str()),
        ("auth_fail", "second")
    );
    assert_eq!(find(flooder).expires_ms, Some(later));
    let err = store
        .add_auto_block(flooder, "manual", "x", later)
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::Invalid(_)), "{err:?}");
}

/// Chapter: the whitelist: one entry per network, in the directory, changes bump the
/// version.
async fn whitelist(store: &Store) {
    let mut version = store.config_version().await.unwrap();
    let sbc: IpNet = "203.0.113.0/24".parse().unwrap();
    store.add_whitelist(sbc, "sbc").await.unwrap();
    bumped(store, &mut version).await;
    store.add_whitelist(sbc, "our sbc").await.unwrap();
    assert_eq!(
        store.list_whitelist().await.unwrap(),
        vec![(sbc, "our sbc".to_string())]
    );
    let dir = store.load_directory().await.unwrap();
    assert!(dir.whitelisted("203.0.113.9".parse().unwrap()));
    assert!(!dir.whitelisted("198.51.100.8".parse().unwrap()));
    assert!(store.remove_whitelist(sbc).await.unwrap());
    assert!(!store.remove_whitelist(sbc).await.unwrap());
    assert!(store.list_whitelist().await.unwrap().is_empty());
}

/// The header policy (docs/ROUTING.md "Headers between customers and carriers"): off by
/// default, each flag set on its own, read back through the directory; every change bumps
/// the version, a refusal or a look changes nothing.
async fn header_policy(store: &Store, acme: CustomerId, beta: CustomerId, carrier: CarrierId) {
    let mut version = store.config_version().await.unwrap();
    let dir = store.load_directory().await.unwrap();
    for c in dir.customers() {
        assert!(!c.trusted && !c.hide_topology, "{}: defaults", c.name);
    }
    assert!(
        store
            .list_carriers()
            .await
            .unwrap()
            .iter()
            .all(|k| !k.hide_topology)
    );

    let now = store
        .set_customer_headers(acme, Some(true), None)
        .await
        .unwrap();
    assert_eq!(
        now,
        CustomerHeaders {
            trusted: true,
            hide_topology: false
        }
    );
    bumped(store, &mut version).await;
    let now = store
        .set_customer_headers(acme, None, Some(true))
        .await
        .unwrap();
    assert_eq!(
        now,
        CustomerHeaders {
            trusted: true,
            hide_topology: true
        },
        "trusted stays"
    );
    bumped(store, &mut version).await;
    store
        .set_customer_headers(beta, None, Some(true))
        .await
        .unwrap();
    bumped(store, &mut version).await;
    store.set_carrier_headers(carrier, true).await.unwrap();
    bumped(store, &mut version).await;

    let dir = store.load_directory().await.unwrap();
    assert_eq!(dir.version, version);
    let flags = |id| {
        let c = dir.customer(id).unwrap();
        (c.trusted, c.hide_topology)
    };
    assert_eq!(flags(acme), (true, true));
    assert_eq!(flags(beta), (false, true));
    assert!(dir.routes().iter().any(|k| k.id == carrier), "active");
    for k in dir.routes() {
        assert_eq!(k.hide_topology, k.id == carrier, "carrier {}", k.name);
    }
    for k in store.list_carriers().await.unwrap() {
        assert_eq!(k.hide_topology, k.id == carrier, "carrier {}", k.name);
    }

    // Looking changes nothing; unknown ids are refused and change nothing.
    assert_eq!(
        store.set_customer_headers(beta, None, None).await.unwrap(),
        CustomerHeaders {
            trusted: false,
            hide_topology: true
        }
    );
    let err = store
        .set_customer_headers(CustomerId(999), Some(true), None)
        .await
        .unwrap_err();
    assert!(
        matches!(
            &err,
            StoreError::NotFound {
                what: "customer",
                id: 999
            }
        ),
        "{err:?}"
    );
    let err = store
        .set_carrier_headers(CarrierId(999), true)
        .await
        .unwrap_err();
    assert!(
        matches!(
            &err,
            StoreError::NotFound {
                what: "carrier",
                id: 999
            }
        ),
        "{err:?}"
    );
    assert_eq!(store.config_version().await.unwrap(), version);

    // And back: beta shows its topology again, the carrier too; acme stays as it is.
    store
        .set_customer_headers(beta, Some(false), Some(false))
        .await
        .unwrap();
    bumped(store, &mut version).await;
    store.set_carrier_headers(carrier, false).await.unwrap();
    bumped(store, &mut version).await;
    let dir = store.load_directory().await.unwrap();
    let c = dir.customer(beta).unwrap();
    assert!(!c.trusted && !c.hide_topology);
    assert!(dir.customer(acme).unwrap().trusted);
    assert!(dir.routes().iter().all(|k| !k.hide_topology));
}

/// Numbers, dialing plans, carrier profiles, rates, health, minute caps and the minutes used:
/// written, read back through the directory, bad input refused.
async fn routing_tables(store: &Store, acme: CustomerId, carrier: CarrierId) {
    let mut version = store.config_version().await.unwrap();
    let change = NumbersChange {
        format: Some(InboundFormat::National),
        country_code: Some(Some("+44".into())),
        forced_cli: Some(Some("+44 20 7946 0000".into())),
    };
    store.set_customer_numbers(acme, &change).await.unwrap();
    bumped(store, &mut version).await;
    let no_cc = NumbersChange {
        country_code: Some(None),
        ..NumbersChange::default()
    };
    let err = store.set_customer_numbers(acme, &no_cc).await.unwrap_err();
    assert!(
        err.to_string()
            .contains("needs the customer's country code"),
        "{err}"
    );
    store
        .set_customer_routing(acme, RoutingMode::Lcr)
        .await
        .unwrap();
    store
        .set_customer_limits(
            acme,
            &LimitsChange {
                daily_minutes: Some(Some(100)),
                monthly_minutes: Some(Some(2_000)),
                ..LimitsChange::default()
            },
        )
        .await
        .unwrap();

    let plan = store.add_dial_plan("uk", false, true).await.unwrap();
    let rule = store
        .add_dial_rule(plan, 10, &Pattern::parse("44*").unwrap(), true)
        .await
        .unwrap();
    assert!(matches!(
        store.add_dial_plan("uk", true, false).await.unwrap_err(),
        StoreError::Conflict(_)
    ));
    store
        .set_customer_dial_plan(acme, Some(plan))
        .await
        .unwrap();
    let err = store
        .set_customer_dial_plan(acme, Some(DialPlanId(999)))
        .await
        .unwrap_err();
    assert!(err.to_string().contains("no dialing plan"), "{err}");

    let profile = NumberProfile {
        strip: 2,
        tech_prefix: "99#".into(),
        format: OutboundFormat::National,
        cli_format: OutboundFormat::Plus,
        country_code: Some("44".into()),
    };
    store
        .set_carrier_profile(
            carrier,
            &profile,
            &["pcma".into(), "G729".into(), "PCMA".into()],
        )
        .await
        .unwrap();
    let bad = NumberProfile {
        tech_prefix: "9a".into(),
        ..NumberProfile::default()
    };
    assert!(store.set_carrier_profile(carrier, &bad, &[]).await.is_err());

    let rate = |prefix: &str, micros: i64, effective_ms: i64| Rate {
        prefix: prefix.into(),
        per_minute: Money(micros),
        connection_fee: Money(0),
        increment_s: 60,
        minimum_s: 30,
        effective_ms,
    };
    let n = store
        .import_rates(
            RateOwner::Carrier(carrier),
            &[rate("44", 10_000, 0), rate("447", 50_000, 1_000)],
        )
        .await
        .unwrap();
    assert_eq!(n, 2);
    // Same prefix and date: replaced, not doubled.
    store
        .import_rates(RateOwner::Carrier(carrier), &[rate("447", 40_000, 1_000)])
        .await
        .unwrap();
    assert_eq!(
        store
            .list_rates(RateOwner::Carrier(carrier))
            .await
            .unwrap()
            .len(),
        2
    );
    // All or nothing.
    assert!(
        store
            .import_rates(
                RateOwner::Carrier(carrier),
                &[rate("33", 1, 0), rate("3x", 1, 0)]
            )
            .await
            .is_err()
    );
    assert_eq!(
        store
            .list_rates(RateOwner::Carrier(carrier))
            .await
            .unwrap()
            .len(),
        2
    );
    store
        .import_rates(RateOwner::Customer(acme), &[rate("44", 30_000, 0)])
        .await
        .unwrap();

    store
        .set_carrier_health(carrier, Health::Down, 1_234)
        .await
        .unwrap();
    store
        .set_carrier_health(carrier, Health::Suspect, 2_345)
        .await
        .unwrap();
    assert_eq!(
        store.carrier_health().await.unwrap().get(&carrier),
        Some(&(Health::Suspect, 2_345))
    );

    let dir = store.load_directory().await.unwrap();
    let c = dir.customer(acme).unwrap();
    assert_eq!(c.number_format, InboundFormat::National);
    assert_eq!(c.country_code.as_deref(), Some("44"));
    assert_eq!(c.forced_cli.as_deref(), Some("442079460000"));
    assert_eq!(c.routing, RoutingMode::Lcr);
    assert_eq!(c.dial_plan, Some(plan));
    assert_eq!(
        (c.daily_minutes, c.monthly_minutes),
        (Some(100), Some(2_000))
    );
    let p = dir.dial_plan(plan).unwrap();
    assert!(!p.default_allow && p.block_premium);
    assert_eq!(p.rules.len(), 1);
    assert_eq!(p.rules[0].id, rule);
    let k = store
        .list_carriers()
        .await
        .unwrap()
        .into_iter()
        .find(|k| k.id == carrier)
        .unwrap();
    assert_eq!(k.numbers, profile);
    assert_eq!(k.codecs, vec!["PCMA".to_string(), "G729".to_string()]);
    let rates = dir.carrier_rates(carrier).unwrap();
    assert_eq!(
        rates.lookup("447700900123", 999).unwrap().per_minute,
        Money(10_000)
    );
    assert_eq!(
        rates.lookup("447700900123", 1_000).unwrap().per_minute,
        Money(40_000)
    );
    assert_eq!(
        dir.customer_rates(acme)
            .unwrap()
            .lookup("4420", 0)
            .unwrap()
            .per_minute,
        Money(30_000)
    );
    assert_eq!(dir.health.get(&carrier), Some(&Health::Suspect));

    // Carrier limits, timers, prefix removal and disabling.
    store
        .set_carrier_limits(
            carrier,
            &CarrierLimitsChange {
                max_channels: Some(None),
                max_cps: Some(Some(7)),
                first_response_ms: Some(Some(1_500)),
                ring_timeout_s: Some(None),
            },
        )
        .await
        .unwrap();
    let zero = CarrierLimitsChange {
        max_cps: Some(Some(0)),
        ..CarrierLimitsChange::default()
    };
    assert!(store.set_carrier_limits(carrier, &zero).await.is_err());
    let slow = CarrierLimitsChange {
        first_response_ms: Some(Some(99)),
        ..CarrierLimitsChange::default()
    };
    assert!(store.set_carrier_limits(carrier, &slow).await.is_err());
    store
        .add_carrier_prefixes(carrier, true, &["44".into(), "33".into()])
        .await
        .unwrap();
    let removed = store
        .remove_carrier_prefixes(carrier, true, &["33".into(), "49".into()])
        .await
        .unwrap();
    assert_eq!(removed, 1);
    store.set_carrier_active(carrier, false).await.unwrap();
    let k = store
        .list_carriers()
        .await
        .unwrap()
        .into_iter()
        .find(|k| k.id == carrier)
        .unwrap();
    assert_eq!((k.max_channels, k.max_cps), (None, Some(7)));
    assert_eq!((k.first_response_ms, k.ring_timeout_s), (Some(1_500), None));
    assert_eq!(k.allow, vec!["44".to_string()]);
    assert!(!k.active);
    assert!(
        !store
            .load_directory()
            .await
            .unwrap()
            .routes()
            .iter()
            .any(|r| r.id == carrier),
        "a disabled carrier is not routed"
    );
    store.set_carrier_active(carrier, true).await.unwrap();
    assert!(
        store
            .set_carrier_active(CarrierId(999), true)
            .await
            .is_err()
    );

    // Rate plans: a markup, rates, a customer's plan, all in the directory.
    let retail = store.add_rate_plan("retail", 250_000).await.unwrap();
    assert!(matches!(
        store.add_rate_plan("retail", 0).await.unwrap_err(),
        StoreError::Conflict(_)
    ));
    store
        .import_rates(RateOwner::Plan(retail), &[rate("44", 30_000, 0)])
        .await
        .unwrap();
    assert!(
        store
            .import_rates(RateOwner::Plan(RatePlanId(999)), &[rate("44", 1, 0)])
            .await
            .is_err()
    );
    store
        .set_customer_rate_plan(acme, Some(retail))
        .await
        .unwrap();
    let dir = store.load_directory().await.unwrap();
    assert_eq!(dir.customer(acme).unwrap().rate_plan, Some(retail));
    let plan = dir.rate_plan(retail).unwrap();
    assert_eq!(plan.markup_ppm, 250_000);
    assert_eq!(
        plan.rates.lookup("4420", 0).unwrap().per_minute,
        Money(30_000)
    );
    assert_eq!(store.list_rate_plans().await.unwrap().len(), 1);

    assert!(store.remove_dial_rule(rule).await.unwrap());
    assert!(!store.remove_dial_rule(rule).await.unwrap());
    cdr_filters(store).await;
    balances(store, acme).await;
    usage(store).await;
}

/// Chapter: CDR filters: each condition alone agrees with filtering everything by hand.
async fn cdr_filters(store: &Store) {
    let all = store.list_cdrs(u32::MAX).await.unwrap();
    let check = |filter: CdrFilter, keep: &dyn Fn(&Cdr) -> bool| {
        let expected: Vec<&str> = all
            .iter()
            .filter(|c| keep(c))
            .map(|c| c.id.as_str())
            .collect();
        (
            filter,
            expected
                .into_iter()
                .map(String::from)
                .collect::<Vec<String>>(),
        )
    };
    let mid = all[all.len() / 2].invite_ms;
    for (filter, expected) in [
        check(
            CdrFilter {
                customer: Some(CustomerId(1)),
                ..CdrFilter::default()
            },
            &|c| c.customer_id == CustomerId(1),
        ),
        check(
            CdrFilter {
                code: Some(486),
                ..CdrFilter::default()
            },
            &|c| c.final_code == 486,
        ),
        check(
            CdrFilter {
                min_billable_ms: Some(60_000),
                ..CdrFilter::default()
            },
            &|c| c.billable_ms >= 60_000,
        ),
        check(
            CdrFilter {
                since_ms: Some(mid),
                until_ms: Some(mid + 10),
                carrier: all[all.len() / 2].carrier_id,
                ..CdrFilter::default()
            },
            &|c| {
                let carrier = all[all.len() / 2].carrier_id;
                c.invite_ms >= mid
                    && c.invite_ms < mid + 10
                    && (carrier.is_none() || c.carrier_id == carrier)
            },
        ),
    ] {
        let got: Vec<String> = store
            .find_cdrs(&filter, u32::MAX)
            .await
            .unwrap()
            .into_iter()
            .map(|c| c.id)
            .collect();
        assert!(!expected.is_empty(), "{filter:?} selects something");
        assert_eq!(got, expected, "{filter:?}");
    }
}

/// Chapter: balances: credits, adjustments, and one charge per new priced CDR of a billed
/// customer, never two (a replay charges nothing); suspension at zero and its lifting.
async fn balances(store: &Store, acme: CustomerId) {
    // The CDRs the story stored so far (priced copies of them are charged below).
    let all = store.list_cdrs(u32::MAX).await.unwrap();
    // Balances: credits, adjustments, and one charge per new priced CDR of a billed
    // customer, never two (a replay of the same CDRs charges nothing).
    store
        .set_customer_billing(
            acme,
            BillingMode::Prepaid,
            Money(0),
            true,
            Some(Money(700_000)),
        )
        .await
        .unwrap();
    let low_before = store.last_event_seq().await.unwrap();
    let credit = store
        .post(acme, EntryKind::Credit, Money(1_000_000), "prepayment")
        .await
        .unwrap();
    assert_eq!(
        (credit.balance_before, credit.balance_after),
        (Money(0), Money(1_000_000))
    );
    assert!(
        store
            .post(acme, EntryKind::Credit, Money(-5), "")
            .await
            .is_err()
    );
    assert!(
        store
            .post(acme, EntryKind::Charge, Money(-5), "")
            .await
            .is_err()
    );
    let adjusted = store
        .post(
            acme,
            EntryKind::Adjustment,
            Money(-250_000),
            "goodwill reversed",
        )
        .await
        .unwrap();
    assert_eq!(adjusted.balance_after, Money(750_000));
    let priced = |id: &str, price: i64| Cdr {
        id: id.into(),
        customer_id: acme,
        price: Some(Money(price)),
        ..all[0].clone()
    };
    let batch = vec![
        priced("bill-1", 60_000),
        priced("bill-2", 15_000),
        priced("bill-3", 0),
    ];
    store.insert_cdrs(&batch).await.unwrap();
    store.insert_cdrs(&batch).await.unwrap();
    store.insert_cdrs(&batch[..1]).await.unwrap();
    assert_eq!(store.balances().await.unwrap()[&acme], Money(675_000));
    // The charges took the balance past the low-balance mark (700,000): one event, in the
    // CDRs' own transaction; the adjustment to 750,000 and the replays did not.
    let low = store
        .events_after(low_before, 100, Some("balance.low"))
        .await
        .unwrap();
    assert_eq!(low.len(), 1, "{low:?}");
    assert_eq!(low[0].customer_id, Some(acme.0));
    assert_eq!(low[0].body["balance"], 675_000);
    let ledger = store.ledger(acme, 10).await.unwrap();
    let charges: Vec<(Option<&str>, i64, i64, i64)> = ledger
        .iter()
        .filter(|e| e.kind == "charge")
        .map(|e| {
            (
                e.cdr_id.as_deref(),
                e.amount.0,
                e.balance_before.0,
                e.balance_after.0,
            )
        })
        .collect();
    assert_eq!(
        charges,
        vec![
            (Some("bill-2"), -15_000, 690_000, 675_000),
            (Some("bill-1"), -60_000, 750_000, 690_000),
        ],
        "newest first, one per priced CDR"
    );
    let dir = store.load_directory().await.unwrap();
    assert_eq!(dir.customer(acme).unwrap().billing, BillingMode::Prepaid);
    assert_eq!(dir.customer(acme).unwrap().status, CustomerStatus::Active);
    // A charge that leaves nothing suspends (suspend_at_zero); a credit lifts it.
    store
        .insert_cdrs(&[priced("bill-4", 675_000)])
        .await
        .unwrap();
    let status = |dir: &domain::Directory| {
        let c = dir.customer(acme).unwrap();
        (c.status, c.status_reason.clone())
    };
    assert_eq!(
        status(&store.load_directory().await.unwrap()),
        (CustomerStatus::Suspended, Some("balance exhausted".into()))
    );
    store
        .post(acme, EntryKind::Credit, Money(1), "")
        .await
        .unwrap();
    assert_eq!(
        status(&store.load_directory().await.unwrap()),
        (CustomerStatus::Active, None)
    );
    // An operator's suspension is not lifted by a credit.
    store
        .set_customer_status(acme, CustomerStatus::Suspended, Some("unpaid invoice"))
        .await
        .unwrap();
    store
        .post(acme, EntryKind::Credit, Money(1), "")
        .await
        .unwrap();
    assert_eq!(
        status(&store.load_directory().await.unwrap()).0,
        CustomerStatus::Suspended
    );
    store
        .set_customer_status(acme, CustomerStatus::Active, None)
        .await
        .unwrap();
}

/// The usage counters of the story's CDRs, kept as they were stored (each once, though
/// some batches were stored twice), against the same numbers computed here; a rebuild gives
/// the same; a customer's zone moves its calls to its own days.
async fn usage(store: &Store) {
    // Every CDR the story stored, whatever the batches that carried it.
    let batch = store.list_cdrs(u32::MAX).await.unwrap();
    let day = "2026-05-28"; // every one of them (20:26 to 20:37 UTC)
    assert!(
        batch
            .iter()
            .all(|c| domain::Zone::utc().date(c.invite_ms) == day)
    );
    let mut want: std::collections::BTreeMap<i64, (i64, i64, i64, i64)> = Default::default();
    let mut carriers: std::collections::BTreeMap<i64, (i64, i64, i64)> = Default::default();
    for c in &batch {
        let w = want.entry(c.customer_id.0).or_default();
        w.0 += 1;
        if c.answer_ms.is_some() {
            w.1 += 1;
            w.2 += c.billable_secs;
        }
        w.3 = w.3.saturating_add(c.price.map_or(0, |p| p.0));
        for a in &c.attempt_log {
            let k = carriers.entry(a.carrier_id.0).or_default();
            k.0 += 1;
            if a.code.is_some_and(|code| code >= 400 && code != 487) {
                k.2 += 1;
            }
        }
    }
    let check = |got: Vec<store::CustomerUsage>, period: &str| {
        let got: Vec<(i64, (i64, i64, i64, i64))> = got
            .iter()
            .map(|u| {
                assert_eq!(u.period, period);
                (u.customer_id.0, (u.calls, u.answered, u.seconds, u.price.0))
            })
            .collect();
        assert_eq!(
            got,
            want.clone().into_iter().collect::<Vec<_>>(),
            "{period}"
        );
    };
    check(store.customer_usage(day).await.unwrap(), day);
    check(store.customer_usage("2026-05").await.unwrap(), "2026-05");
    assert!(store.customer_usage("2026-05-29").await.unwrap().is_empty());
    let got: Vec<(i64, (i64, i64, i64))> = store
        .carrier_usage(day)
        .await
        .unwrap()
        .iter()
        .map(|u| (u.carrier_id.0, (u.attempts, u.answered, u.failures)))
        .collect();
    assert_eq!(got, carriers.into_iter().collect::<Vec<_>>());
    assert_eq!(store.rebuild_usage().await.unwrap(), batch.len() as u64);
    check(store.customer_usage(day).await.unwrap(), day);
    for bad in ["2026-5-28", "May", "2026-02-30"] {
        let err = store.customer_usage(bad).await.unwrap_err();
        assert!(matches!(err, StoreError::Invalid(_)), "{bad}: {err:?}");
    }
    let err = store
        .set_customer_timezone(CustomerId(2), "Mars/Olympus")
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::Invalid(_)), "{err:?}");
    if domain::Zone::parse("Asia/Tokyo").is_err() {
        return; // no time zone database here: the UTC counters above are all we can check
    }
    // Tokyo is UTC+9: customer 2's calls (20:26 UTC) were on the 29th there.
    store
        .set_customer_timezone(CustomerId(2), "Asia/Tokyo")
        .await
        .unwrap();
    let dir = store.load_directory().await.unwrap();
    assert_eq!(
        dir.customer(CustomerId(2)).unwrap().timezone.name(),
        "Asia/Tokyo"
    );
    store.rebuild_usage().await.unwrap();
    let ids = |u: Vec<store::CustomerUsage>| u.iter().map(|u| u.customer_id.0).collect::<Vec<_>>();
    assert_eq!(ids(store.customer_usage(day).await.unwrap()), vec![1]);
    assert_eq!(
        ids(store.customer_usage("2026-05-29").await.unwrap()),
        vec![2]
    );
    store
        .set_customer_timezone(CustomerId(2), "UTC")
        .await
        .unwrap();
    store.rebuild_usage().await.unwrap();
}

#[tokio::test]
async fn in_memory_sqlite_keeps_its_data() {
    let store = Store::connect("sqlite::memory:").await.unwrap();
    store.migrate().await.unwrap();
    store
        .add_carrier(&carrier("only", 5060, Transport::Udp, 1, 1))
        .await
        .unwrap();
    assert_eq!(store.list_carriers().await.unwrap().len(), 1);
    assert_eq!(store.config_version().await.unwrap(), 2);
}
