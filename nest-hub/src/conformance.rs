//! The conformance suite every [`HubBackend`] must pass (feature `test-util`): run it from a test
//! of each backend, in-process or distributed.
//!
//! # Example
//!
//! ```
//! use nest_hub::{conformance, MemoryBackend};
//!
//! # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
//! conformance::run(MemoryBackend::new).await;
//! # });
//! ```

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;

use super::{Batch, HubBackend, Retention};

fn encoded(tag: &'static str) -> super::EncodeWithSeq {
    Box::new(move |seq| Bytes::from(format!("{tag}:{seq}")))
}

/// Awaits a read, failing after 10 s with the rule it checks: a backend whose read never answers
/// fails the suite instead of hanging it.
async fn read<T>(rule: &str, call: impl std::future::Future<Output = T>) -> T {
    tokio::time::timeout(Duration::from_secs(10), call)
        .await
        .unwrap_or_else(|_| panic!("no answer within 10 s, checking: {rule}"))
}

/// The concatenated bytes of a batch of events, as text.
fn texts(batch: &Batch) -> String {
    match batch {
        Batch::Events { bytes, .. } => String::from_utf8_lossy(bytes).into_owned(),
        Batch::Gap { oldest } => panic!("expected events, got a gap (oldest {oldest})"),
    }
}

/// Runs every check against backends made by `make` (called with the retention each check
/// needs). Panics with a message naming the broken rule.
pub async fn run<B: HubBackend>(make: impl Fn(Retention) -> B) {
    let wide = Retention {
        max_events: 100,
        max_age: None,
        max_bytes: 1024 * 1024,
    };

    // Sequence numbers start at 1, grow by one, and are given to the encoder.
    let backend = make(wide);
    let topic = backend.topic("a");
    assert_eq!(
        topic.clone().head().await.unwrap(),
        0,
        "an empty topic's head is 0"
    );
    for expected in 1..=3 {
        assert_eq!(
            topic.clone().append(encoded("a")).await.unwrap(),
            expected,
            "append numbers grow by one"
        );
    }
    assert_eq!(topic.clone().head().await.unwrap(), 3);

    // Reads return the events after a number, in order.
    let rule = "read_after(0) returns everything, in order";
    let batch = read(rule, topic.clone().read_after(0, usize::MAX))
        .await
        .unwrap();
    assert_eq!(
        texts(&batch),
        "a:1a:2a:3",
        "read_after(0) returns everything, in order"
    );
    assert!(
        matches!(batch, Batch::Events { last: 3, .. }),
        "last is the number of the last event"
    );
    let rule = "read_after(n) starts after n";
    let batch = read(rule, topic.clone().read_after(2, usize::MAX))
        .await
        .unwrap();
    assert_eq!(texts(&batch), "a:3", "{rule}");
    let rule = "max_bytes bounds a read";
    let batch = read(rule, topic.clone().read_after(0, 1)).await.unwrap();
    assert_eq!(
        texts(&batch),
        "a:1",
        "max_bytes bounds a read, which still returns at least one event"
    );
    assert!(
        matches!(batch, Batch::Events { last: 1, .. }),
        "last follows max_bytes"
    );
    if let Some(batch) = topic.try_read(0, usize::MAX) {
        // A backend that cannot read without waiting says so with `None`.
        assert_eq!(
            texts(&batch.unwrap()),
            "a:1a:2a:3",
            "try_read returns what read_after does"
        );
    }
    assert!(
        topic.try_read(3, usize::MAX).is_none(),
        "try_read at the head has nothing"
    );

    // A read at the head waits for the next append (the live tail).
    let reader = tokio::spawn(topic.clone().read_after(3, usize::MAX));
    tokio::task::yield_now().await;
    assert!(!reader.is_finished(), "a read at the head waits");
    topic.clone().append(encoded("a")).await.unwrap();
    let rule = "the waiting read gets the new event";
    let batch = read(rule, reader).await.unwrap().unwrap();
    assert_eq!(texts(&batch), "a:4", "{rule}");

    // Topics are independent, and the same name is the same topic.
    let other = backend.topic("b");
    assert_eq!(
        other.clone().head().await.unwrap(),
        0,
        "topics are independent"
    );
    assert_eq!(
        backend.topic("a").head().await.unwrap(),
        4,
        "a topic is found again by name"
    );

    // The epoch is stable for one backend.
    assert_eq!(backend.epoch(), backend.epoch());

    // Retention: what is no longer kept is reported as a gap, never skipped.
    let backend = make(Retention {
        max_events: 2,
        max_age: None,
        max_bytes: 1024 * 1024,
    });
    let topic: Arc<_> = backend.topic("r");
    for _ in 0..5 {
        topic.clone().append(encoded("r")).await.unwrap();
    }
    let rule = "a read after an event that is gone reports the oldest retained number";
    assert_eq!(
        read(rule, topic.clone().read_after(0, usize::MAX))
            .await
            .unwrap(),
        Batch::Gap { oldest: 4 },
        "{rule}"
    );
    let rule = "a read after an event just before the oldest one retained is a gap, not a skip";
    assert_eq!(
        read(rule, topic.clone().read_after(2, usize::MAX))
            .await
            .unwrap(),
        Batch::Gap { oldest: 4 },
        "{rule}: event 3 is gone"
    );
    let rule = "a read from the oldest retained event gets the retained ones";
    let batch = read(rule, topic.clone().read_after(3, usize::MAX))
        .await
        .unwrap();
    assert_eq!(texts(&batch), "r:4r:5", "{rule}");

    // History by age (`History::Since`): every retained event is younger than an hour, so the
    // answer is the one before the oldest retained; an empty topic answers its head.
    assert_eq!(
        topic
            .clone()
            .after_age(Duration::from_secs(3600))
            .await
            .unwrap(),
        3,
        "after_age names the event before the first one younger than the age"
    );
    let empty = backend.topic("never-used");
    assert_eq!(empty.after_age(Duration::from_secs(3600)).await.unwrap(), 0);

    // Retention by bytes at its exact bound: events whose bytes add up to `max_bytes` are all
    // kept; one byte more and the oldest goes.
    let backend = make(Retention {
        max_events: 100,
        max_age: None,
        max_bytes: 6,
    });
    let topic: Arc<_> = backend.topic("b");
    for _ in 0..5 {
        topic.clone().append(encoded("b")).await.unwrap();
    }
    let rule = "events adding up to exactly max_bytes are kept (3 + 3 of 6)";
    let batch = read(rule, topic.clone().read_after(3, usize::MAX))
        .await
        .unwrap();
    assert_eq!(texts(&batch), "b:4b:5", "{rule}");
    assert_eq!(
        read(rule, topic.clone().read_after(0, usize::MAX))
            .await
            .unwrap(),
        Batch::Gap { oldest: 4 },
        "{rule}"
    );

    records(&make(wide)).await;
    idempotency(&make(wide)).await;
}

/// Idempotency keys: a retried append with a key returns the first number and stores nothing;
/// racing appends with one key store once; keys are per topic; the newest
/// [`IDEMPOTENCY_KEYS`](super::IDEMPOTENCY_KEYS) are remembered.
async fn idempotency(backend: &impl HubBackend) {
    let topic = backend.topic("once");
    let first = topic.clone().append_once("k1".into(), encoded("x")).await;
    assert_eq!(first.unwrap(), (1, true), "a new key appends");
    let retried = topic.clone().append_once("k1".into(), encoded("x")).await;
    assert_eq!(
        retried.unwrap(),
        (1, false),
        "a known key returns its number"
    );
    assert_eq!(topic.clone().head().await.unwrap(), 1, "and stores nothing");
    let racing = (0..8).map(|_| topic.clone().append_once("k2".into(), encoded("y")));
    let results: Vec<_> = futures_util::future::join_all(racing).await;
    let fresh = results
        .iter()
        .filter(|r| matches!(r, Ok((_, true))))
        .count();
    assert_eq!(
        fresh, 1,
        "of racing appends with one key, one stores: {results:?}"
    );
    assert!(
        results.iter().all(|r| matches!(r, Ok((2, _)))),
        "{results:?}"
    );
    let other = backend.topic("once-other");
    let elsewhere = other.clone().append_once("k1".into(), encoded("z")).await;
    assert_eq!(elsewhere.unwrap(), (1, true), "keys are per topic");
    let plain = topic.clone().append(encoded("p")).await.unwrap();
    assert_eq!(plain, 3, "an append without a key is never taken for one");
    for i in 0..super::IDEMPOTENCY_KEYS {
        let key = format!("fill{i}");
        topic.clone().append_once(key, encoded("f")).await.unwrap();
    }
    let oldest_kept = topic
        .clone()
        .append_once("fill0".into(), encoded("f"))
        .await;
    assert!(
        matches!(oldest_kept, Ok((_, false))),
        "the oldest of the last IDEMPOTENCY_KEYS keys is still known: {oldest_kept:?}"
    );
    let forgotten = topic.clone().append_once("k1".into(), encoded("x")).await;
    assert!(
        matches!(forgotten, Ok((_, true))),
        "past IDEMPOTENCY_KEYS newer keys, the oldest is forgotten: {forgotten:?}"
    );
    let newest = format!("fill{}", super::IDEMPOTENCY_KEYS - 1);
    let kept = topic.clone().append_once(newest, encoded("f")).await;
    assert!(
        matches!(kept, Ok((_, false))),
        "the newest are kept: {kept:?}"
    );
}

/// Records: create if absent (exactly one of racing creators wins), read back with the time
/// left, compare-and-set, removal.
async fn records(backend: &impl HubBackend) {
    let ttl = Duration::from_secs(60);
    let creates = (0..8).map(|_| backend.create_record("k", Bytes::from("one"), ttl));
    let created = futures_util::future::join_all(creates).await;
    let won = created.into_iter().filter(|c| *c.as_ref().unwrap()).count();
    assert_eq!(won, 1, "of racing creates of one key, exactly one stores");
    let record = backend
        .record("k")
        .await
        .unwrap()
        .expect("a created record is there");
    assert_eq!(record.value, "one", "a record reads back as created");
    assert!(
        record.ttl <= ttl && record.ttl > ttl / 2,
        "a record's time left is about its ttl: {:?}",
        record.ttl
    );
    assert_eq!(
        backend.record("none").await.unwrap(),
        None,
        "no record, none"
    );

    let replace = |expected: &'static str, value: &'static str, ttl| {
        backend.replace_record("k", Bytes::from(expected), Bytes::from(value), ttl)
    };
    assert!(
        !replace("other", "two", ttl).await.unwrap(),
        "a replace expecting another value does nothing"
    );
    assert!(
        replace("one", "two", ttl * 2).await.unwrap(),
        "compare-and-set"
    );
    let record = backend.record("k").await.unwrap().unwrap();
    assert_eq!(record.value, "two", "a replaced record has the new value");
    assert!(record.ttl > ttl, "a replace sets the new ttl");
    assert!(
        !backend
            .replace_record("none", Bytes::new(), Bytes::from("x"), ttl)
            .await
            .unwrap(),
        "a record that is not there is not replaced"
    );
    assert_eq!(backend.record("none").await.unwrap(), None, "nor created");
    assert!(replace("two", "", Duration::ZERO).await.unwrap(), "removal");
    assert_eq!(
        backend.record("k").await.unwrap(),
        None,
        "a removed record is gone"
    );
    assert!(
        backend
            .create_record("k", Bytes::from("again"), ttl)
            .await
            .unwrap(),
        "a removed record's key can be created again"
    );
}
