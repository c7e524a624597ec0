//! Two instances on one backend (two `Resumable`s on one `Hub`): a stream started on one is
//! served, expired, forgotten and cancelled alike on the other, and a stream whose producer's
//! instance died ends its readers with an error. Under tokio's paused clock.

use std::time::Duration;

use http_body_util::BodyExt;
use tokio::sync::mpsc;
use tokio::time::Instant;

use super::record::{self, State, StreamRecord};
use super::*;

/// Longer than anything here may take (the paused clock runs ahead when all tasks wait).
const DEADLINE: Duration = Duration::from_secs(3600);

fn two_instances(options: ResumableOptions) -> (Hub, Resumable, Resumable) {
    let hub = Hub::new();
    let a = Resumable::with_options(hub.clone(), options.clone());
    let b = Resumable::with_options(hub.clone(), options);
    (hub, a, b)
}

/// Starts `id` on `on` with a producer that sends what the test feeds it, ending when the
/// sender is dropped.
async fn fed(on: &Resumable, id: &str) -> mpsc::UnboundedSender<&'static str> {
    let (tx, mut rx) = mpsc::unbounded_channel();
    on.start(id, |out| async move {
        while let Some(text) = rx.recv().await {
            out.send(text).await?;
        }
        Ok::<_, ResumableError>(())
    })
    .await
    .unwrap();
    tx
}

/// The next frame's text; fails when none comes or the body ends.
async fn next(body: &mut SseBody, what: &str) -> String {
    let frame = tokio::time::timeout(DEADLINE, body.frame())
        .await
        .unwrap_or_else(|_| panic!("no frame: {what}"))
        .unwrap_or_else(|| panic!("the body ended: {what}"))
        .unwrap();
    String::from_utf8(frame.into_data().unwrap().to_vec()).unwrap()
}

/// Everything until the body ends; fails when it does not end.
async fn to_end(body: SseBody, what: &str) -> String {
    let all = tokio::time::timeout(DEADLINE, body.collect())
        .await
        .unwrap_or_else(|_| panic!("the body did not end: {what}"))
        .unwrap();
    String::from_utf8(all.to_bytes().to_vec()).unwrap()
}

fn last_id(text: &str) -> String {
    text.lines()
        .filter_map(|l| l.strip_prefix("id: "))
        .next_back()
        .expect("an id")
        .to_owned()
}

/// Waits (yielding) until `on` no longer runs the producer of `id`.
async fn until_finished(on: &Resumable, id: &str) {
    tokio::time::timeout(DEADLINE, async {
        while on.is_running(id) {
            tokio::task::yield_now().await;
        }
    })
    .await
    .expect("the producer finishes");
}

#[tokio::test(start_paused = true)]
async fn a_stream_started_on_one_instance_is_read_and_resumed_on_another() {
    let (_hub, a, b) = two_instances(ResumableOptions::new());
    let tx = fed(&a, "s1").await;
    tx.send("one").unwrap();
    let mut live = b.subscribe("s1", &LastEventId(None)).await.unwrap();
    let first = next(&mut live, "the first event on b").await;
    assert!(first.contains("data: one\n"), "{first}");
    assert!(a.is_running("s1") && !b.is_running("s1"));
    // Resumed on b mid-stream, after "one".
    let after_one = LastEventId(Some(last_id(&first)));
    let mut resumed = b.resume(&after_one).await.unwrap();
    tx.send("two").unwrap();
    assert!(next(&mut resumed, "the second event")
        .await
        .contains("data: two\n"));
    drop(tx);
    let rest = to_end(resumed, "the resumed stream on b").await;
    assert!(!rest.contains("data:"), "{rest}");
    assert!(to_end(live, "the live stream on b")
        .await
        .contains("data: two\n"));
    // And after the end: from the start, and from "one".
    until_finished(&a, "s1").await;
    let all = to_end(b.subscribe("s1", &LastEventId(None)).await.unwrap(), "all").await;
    assert_eq!(all.matches("data: ").count(), 2, "{all}");
    let rest = to_end(b.resume(&after_one).await.unwrap(), "the rest").await;
    assert!(
        rest.contains("data: two\n") && !rest.contains("data: one"),
        "{rest}"
    );
}

#[tokio::test(start_paused = true)]
async fn expiry_and_forgetting_are_the_same_on_every_instance() {
    let options = ResumableOptions::new().ttl(Duration::from_secs(60));
    let (_hub, a, b) = two_instances(options);
    drop(fed(&a, "e1").await);
    until_finished(&a, "e1").await;
    tokio::time::advance(Duration::from_secs(59)).await;
    assert!(b.subscribe("e1", &LastEventId(None)).await.is_ok());
    tokio::time::advance(Duration::from_secs(2)).await;
    for on in [&a, &b] {
        let err = on.subscribe("e1", &LastEventId(None)).await.unwrap_err();
        assert!(err.is_expired(), "{err}");
    }
    // Another ttl later the id is forgotten everywhere (nothing else has to happen).
    tokio::time::advance(Duration::from_secs(60)).await;
    let err = b
        .resume(&LastEventId(Some("e1:1-1".into())))
        .await
        .unwrap_err();
    assert!(err.is_unknown(), "{err}");
    let err = b.subscribe("never", &LastEventId(None)).await.unwrap_err();
    assert!(err.is_unknown(), "{err}");
}

#[tokio::test(start_paused = true)]
async fn one_id_started_on_two_instances_starts_once() {
    let (_hub, a, b) = two_instances(ResumableOptions::new());
    let producer = |_| async { Ok::<_, ResumableError>(()) };
    let (on_a, on_b) = tokio::join!(a.start("x1", producer), b.start("x1", producer));
    let errors: Vec<_> = [on_a, on_b].into_iter().filter_map(Result::err).collect();
    assert_eq!(errors.len(), 1, "exactly one start fails: {errors:?}");
    assert!(errors[0].is_exists(), "{:?}", errors[0]);
}

#[tokio::test(start_paused = true)]
async fn cancel_anywhere_stops_a_producer_on_another_instance() {
    let lease = Duration::from_secs(3);
    let (_hub, a, b) = two_instances(ResumableOptions::new().lease(lease));
    let _tx = fed(&a, "c1").await;
    let reader = b.subscribe("c1", &LastEventId(None)).await.unwrap();
    assert!(
        !b.cancel("c1"),
        "cancel stops this instance's producers only"
    );
    let asked = Instant::now();
    assert!(b.cancel_anywhere("c1").await.unwrap());
    let text = to_end(reader, "the cancelled stream").await;
    assert!(
        text.contains("event: error\n") && text.contains("data: cancelled\n"),
        "{text}"
    );
    assert!(asked.elapsed() <= lease / 3, "seen at the next renewal");
    until_finished(&a, "c1").await;
    assert!(!b.cancel_anywhere("c1").await.unwrap(), "finished");
    assert!(!b.cancel_anywhere("nope").await.unwrap(), "unknown");
}

/// The state a producer's instance leaves when it dies mid-stream: a running record that is
/// no longer renewed, the start marker and an event, no end.
async fn orphan(hub: &Hub, options: &ResumableOptions, id: &str, state: State) {
    let first = hub
        .publish(&topic(id), SseEvent::new().event(START_EVENT))
        .await
        .unwrap();
    let value = StreamRecord::new(state, options.ttl, Some(&first)).encode();
    let ttl = match state {
        State::Finished => options.ttl * 2,
        _ => options.running_ttl(),
    };
    assert!(hub
        .create_record(&record::key(id), value, ttl)
        .await
        .unwrap());
    hub.publish(&topic(id), "partial").await.unwrap();
}

#[tokio::test(start_paused = true)]
async fn a_lapsed_lease_ends_readers_with_an_error_and_the_id_expires() {
    let lease = Duration::from_secs(3);
    let options = ResumableOptions::new()
        .lease(lease)
        .ttl(Duration::from_secs(60));
    let (hub, _a, b) = two_instances(options.clone());
    orphan(&hub, &options, "l1", State::Running).await;
    let since = Instant::now();
    let reader = b.subscribe("l1", &LastEventId(None)).await.unwrap();
    let text = to_end(reader, "a reader of a stream whose producer died").await;
    assert!(text.contains("data: partial\n"), "{text}");
    assert!(
        text.ends_with(&format!("event: error\ndata: {}\n\n", watch::LOST)),
        "{text}"
    );
    let waited = since.elapsed();
    assert!(waited >= lease && waited <= lease + lease / 3, "{waited:?}");
    let err = b.subscribe("l1", &LastEventId(None)).await.unwrap_err();
    assert!(err.is_expired(), "never an empty 200: {err}");
    tokio::time::advance(Duration::from_secs(60)).await;
    let err = b.subscribe("l1", &LastEventId(None)).await.unwrap_err();
    assert!(err.is_unknown(), "{err}");
}

#[tokio::test(start_paused = true)]
async fn a_finished_stream_without_its_end_marker_ends_its_readers() {
    let options = ResumableOptions::new().lease(Duration::from_secs(3));
    let (hub, _a, b) = two_instances(options.clone());
    orphan(&hub, &options, "m1", State::Finished).await;
    let reader = b.subscribe("m1", &LastEventId(None)).await.unwrap();
    let text = to_end(reader, "a reader of a stream whose end marker was lost").await;
    assert!(
        text.ends_with("event: error\ndata: the stream's end was lost\n\n"),
        "{text}"
    );
}

#[tokio::test(start_paused = true)]
async fn a_long_stream_keeps_its_lease() {
    let lease = Duration::from_secs(3);
    let (_hub, a, b) = two_instances(ResumableOptions::new().lease(lease));
    let tx = fed(&a, "k1").await;
    let mut reader = b.subscribe("k1", &LastEventId(None)).await.unwrap();
    // Many leases pass while the reader waits: the renewals keep the stream alive.
    tokio::time::sleep(lease * 10).await;
    tx.send("late").unwrap();
    assert!(next(&mut reader, "an event after ten leases")
        .await
        .contains("data: late\n"));
    drop(tx);
    let rest = to_end(reader, "the end").await;
    assert!(!rest.contains("error"), "{rest}");
}

/// Issue 31: an id is a capability. A stream bound to an owner is unknown (404) to anyone else
/// who holds its id (the LLM example's sequential ids let another client read the victim's
/// whole answer with `Last-Event-ID: answer-1:<epoch>-0`), on every instance: read, resume and
/// cancel alike; its owner reads it anywhere.
#[tokio::test(start_paused = true)]
async fn a_stream_bound_to_its_owner_is_unknown_to_everyone_else() {
    let (_hub, a, b) = two_instances(ResumableOptions::new());
    let id = Resumable::new_id();
    assert_eq!(id.len(), 32);
    assert_ne!(id, Resumable::new_id());
    let tx = fed(&a.owned_by("alice"), &id).await;
    tx.send("secret").unwrap();
    let mut mine = b
        .owned_by("alice")
        .subscribe(&id, &LastEventId(None))
        .await
        .unwrap();
    let first = next(&mut mine, "the owner reads on the other instance").await;
    assert!(first.contains("data: secret\n"), "{first}");
    let stolen = LastEventId(Some(last_id(&first)));
    for other in [
        b.owned_by("mallory"),
        b.clone(),
        a.owned_by("mallory"),
        a.clone(),
    ] {
        let err = other.subscribe(&id, &LastEventId(None)).await.unwrap_err();
        assert!(err.is_unknown(), "{err}");
        let err = other.resume(&stolen).await.unwrap_err();
        assert!(err.is_unknown(), "{err}");
        assert!(!other.cancel(&id), "cancelled by someone else");
        assert!(!other.cancel_anywhere(&id).await.unwrap());
    }
    assert!(a.is_running(&id), "still running after the attempts");
    // Its owner cancels it from the other instance.
    assert!(b.owned_by("alice").cancel_anywhere(&id).await.unwrap());
    let rest = to_end(mine, "the owner's stream").await;
    assert!(rest.contains("event: error\n"), "{rest}");
    drop(tx);
}

/// Issue 31: 100,000 starts filled the hub (+1.05 GB) and every publish to a new topic of the
/// same hub got 503 for ten minutes. Streams held per instance and per owner are capped (a clear
/// 503 / 429), the hub's other topics go on, and a finished stream's place and topic go back
/// once it can no longer be read.
#[tokio::test(start_paused = true)]
async fn starts_past_the_limits_are_refused_and_finished_streams_give_their_place_back() {
    let options = ResumableOptions::new()
        .ttl(Duration::from_secs(60))
        .max_streams(5)
        .max_streams_per_owner(2);
    let (hub, a, _b) = two_instances(options);
    let mut feeds = Vec::new();
    for i in 0..2 {
        feeds.push(fed(&a.owned_by("greedy"), &format!("g{i}")).await);
    }
    let err = a
        .owned_by("greedy")
        .start("g2", |_| async { Ok::<_, ResumableError>(()) })
        .await
        .unwrap_err();
    assert!(err.is_limited(), "{err}");
    assert_eq!(err.status(), http::StatusCode::TOO_MANY_REQUESTS);
    for i in 0..3 {
        feeds.push(fed(&a, &format!("o{i}")).await);
    }
    assert_eq!(a.held_streams(), 5);
    let err = a
        .start("o3", |_| async { Ok::<_, ResumableError>(()) })
        .await
        .unwrap_err();
    assert!(err.is_limited(), "{err}");
    assert_eq!(err.status(), http::StatusCode::SERVICE_UNAVAILABLE);
    // The refused starts left nothing behind, and the hub serves its other topics.
    assert!(a
        .subscribe("o3", &LastEventId(None))
        .await
        .unwrap_err()
        .is_unknown());
    hub.publish("chat", "still served").await.unwrap();
    // The streams end; for `ttl` they stay readable and keep their places.
    drop(feeds);
    for id in ["g0", "g1", "o0", "o1", "o2"] {
        until_finished(&a, id).await;
    }
    tokio::time::advance(Duration::from_secs(59)).await;
    assert_eq!(a.held_streams(), 5);
    assert!(hub.topics().contains(&"resumable:o0".to_owned()));
    // Past `ttl`: places back, topics gone.
    tokio::time::advance(Duration::from_secs(2)).await;
    tokio::time::timeout(DEADLINE, async {
        while a.held_streams() > 0 {
            tokio::task::yield_now().await;
        }
    })
    .await
    .expect("every place given back");
    let topics = hub.topics();
    assert!(
        !topics.iter().any(|t| t.starts_with("resumable:")),
        "{topics:?}"
    );
    drop(fed(&a.owned_by("greedy"), "g3").await);
}

/// Stream ids may hold `:` (a `Last-Event-ID` names its stream by the part before the *last*
/// `:`), and cancelling twice, or after the end, changes nothing more: one error event, one end.
#[tokio::test(start_paused = true)]
async fn ids_with_colons_resume_and_repeated_cancels_end_once() {
    let (_hub, a, b) = two_instances(ResumableOptions::new());
    let id = "tenant:7:answer";
    let tx = fed(&a, id).await;
    tx.send("one").unwrap();
    let mut live = b.subscribe(id, &LastEventId(None)).await.unwrap();
    let first = next(&mut live, "the first event").await;
    let after_one = LastEventId(Some(last_id(&first)));
    assert_eq!(
        Resumable::stream_of(after_one.0.as_deref().unwrap()),
        Some(id)
    );
    let resumed = b.resume(&after_one).await.unwrap();
    assert!(a.cancel(id));
    assert!(a.cancel(id), "still running until its end is written");
    assert!(b.cancel_anywhere(id).await.unwrap() || !a.is_running(id));
    let rest = to_end(resumed, "the resumed stream").await;
    assert_eq!(rest.matches("event: error\n").count(), 1, "{rest}");
    until_finished(&a, id).await;
    assert!(!a.cancel(id), "nothing left to cancel");
    assert!(!b.cancel_anywhere(id).await.unwrap());
    let all = to_end(live, "the live stream").await;
    assert_eq!(all.matches("event: error\n").count(), 1, "{all}");
    drop(tx);
}

/// Stream ids of 1 to 200 bytes are accepted, empty and 201-byte ones refused; the writer knows
/// its stream's id.
#[tokio::test(start_paused = true)]
async fn stream_ids_are_1_to_200_bytes_and_the_writer_knows_its_own() {
    let (_hub, a, _b) = two_instances(ResumableOptions::new());
    let (seen_tx, mut seen) = mpsc::unbounded_channel();
    let id = "i".repeat(200);
    a.start(&id, move |out| async move {
        let _ = seen_tx.send(out.stream_id().to_owned());
        Ok::<_, ResumableError>(())
    })
    .await
    .unwrap();
    assert_eq!(seen.recv().await.unwrap(), id);
    for bad in [String::new(), "i".repeat(201)] {
        let err = a
            .start(&bad, |_| async { Ok::<_, ResumableError>(()) })
            .await
            .unwrap_err();
        assert!(err.is_invalid_id(), "{} bytes: {err}", bad.len());
    }
}

/// An owner's place is given back one stream at a time: with a limit of 2, after one of its two
/// streams is gone the owner may start one more, and no more than that.
#[tokio::test(start_paused = true)]
async fn an_owners_places_come_back_one_at_a_time() {
    let options = ResumableOptions::new()
        .ttl(Duration::from_secs(60))
        .max_streams_per_owner(2);
    let (_hub, a, _b) = two_instances(options);
    let alice = a.owned_by("alice");
    drop(fed(&alice, "a1").await);
    let _a2 = fed(&alice, "a2").await;
    until_finished(&a, "a1").await;
    // a1's place comes back once it can no longer be read.
    tokio::time::advance(Duration::from_secs(61)).await;
    tokio::time::timeout(DEADLINE, async {
        while a.held_streams() > 1 {
            tokio::task::yield_now().await;
        }
    })
    .await
    .expect("a1's place given back");
    let _a3 = fed(&alice, "a3").await;
    let err = alice
        .start("a4", |_| async { Ok::<_, ResumableError>(()) })
        .await
        .unwrap_err();
    assert!(err.is_limited(), "{err}");
}

/// Owners of 1 to 256 bytes bind streams; an empty or a 257-byte owner is refused.
#[tokio::test(start_paused = true)]
async fn owners_are_1_to_256_bytes() {
    let (_hub, a, _b) = two_instances(ResumableOptions::new());
    let owner = "o".repeat(256);
    drop(fed(&a.owned_by(owner.as_str()), "kept").await);
    assert!(a
        .owned_by(owner.as_str())
        .subscribe("kept", &LastEventId(None))
        .await
        .is_ok());
    for bad in [String::new(), "o".repeat(257)] {
        let err = a
            .owned_by(bad.as_str())
            .start("refused", |_| async { Ok::<_, ResumableError>(()) })
            .await
            .unwrap_err();
        assert!(err.is_invalid_id(), "{} bytes: {err}", bad.len());
    }
    assert_eq!(a.held_streams(), 1, "the refused starts hold no place");
}

/// Each error says what it is and nothing else: one predicate true, and its status.
#[tokio::test(start_paused = true)]
async fn each_error_answers_one_predicate() {
    let options = ResumableOptions::new()
        .ttl(Duration::from_secs(60))
        .max_streams(2);
    let (_hub, a, _b) = two_instances(options);
    let predicates = |err: &ResumableError| {
        [
            err.is_unknown(),
            err.is_expired(),
            err.is_exists(),
            err.is_invalid_id(),
            err.is_hub(),
            err.is_limited(),
        ]
    };
    drop(fed(&a, "e").await);
    until_finished(&a, "e").await;
    let exists = a
        .start("e", |_| async { Ok::<_, ResumableError>(()) })
        .await
        .unwrap_err();
    tokio::time::advance(Duration::from_secs(61)).await;
    let expired = a.subscribe("e", &LastEventId(None)).await.unwrap_err();
    let unknown = a.subscribe("never", &LastEventId(None)).await.unwrap_err();
    let invalid = a
        .start("", |_| async { Ok::<_, ResumableError>(()) })
        .await
        .unwrap_err();
    tokio::time::timeout(DEADLINE, async {
        while a.held_streams() > 0 {
            tokio::task::yield_now().await;
        }
    })
    .await
    .expect("e's place given back");
    let _f = fed(&a, "f").await;
    let _g = fed(&a, "g").await;
    let limited = a
        .start("h", |_| async { Ok::<_, ResumableError>(()) })
        .await
        .unwrap_err();
    for (err, which, status) in [
        (&unknown, 0, 404),
        (&expired, 1, 410),
        (&exists, 2, 409),
        (&invalid, 3, 400),
        (&limited, 5, 503),
    ] {
        let mut expected = [false; 6];
        expected[which] = true;
        assert_eq!(predicates(err), expected, "{err}");
        assert_eq!(err.status().as_u16(), status, "{err}");
    }
}

/// A hub backend without records (the trait's defaults fail): resumable streams cannot start on
/// it, and say the hub failed, with the backend's error as the source.
struct NoRecords(crate::MemoryBackend);

impl crate::HubBackend for NoRecords {
    fn epoch(&self) -> u64 {
        self.0.epoch()
    }

    fn topic(&self, name: &str) -> std::sync::Arc<dyn crate::BackendTopic> {
        self.0.topic(name)
    }
}

#[tokio::test(start_paused = true)]
async fn a_backend_without_records_is_a_hub_error_with_its_source() {
    use std::error::Error as _;
    let hub = Hub::with_backend(
        NoRecords(crate::MemoryBackend::default()),
        crate::HubOptions::new(),
    );
    let streams = Resumable::new(hub);
    let err = streams
        .start("s", |_| async { Ok::<_, ResumableError>(()) })
        .await
        .unwrap_err();
    assert!(
        err.is_hub() && !err.is_unknown() && !err.is_limited(),
        "{err}"
    );
    assert_eq!(err.status(), http::StatusCode::SERVICE_UNAVAILABLE);
    assert!(err.source().is_some(), "the backend's error is the source");
    assert_eq!(streams.held_streams(), 0, "the failed start holds no place");
}

/// Local cancels follow ownership: an owner cancels its own stream, any handle cancels an
/// unbound one (its id is the capability), nobody else a bound one.
#[tokio::test(start_paused = true)]
async fn local_cancels_follow_ownership() {
    let (_hub, a, _b) = two_instances(ResumableOptions::new());
    let _mine = fed(&a.owned_by("alice"), "mine").await;
    let _open = fed(&a, "open").await;
    assert!(!a.cancel("mine") && !a.owned_by("bob").cancel("mine"));
    assert!(a.owned_by("alice").cancel("mine"));
    assert!(
        a.owned_by("bob").cancel("open"),
        "an unbound stream is anyone's with its id"
    );
}

/// A running stream whose record was replaced under it (by another writer, or a backend that
/// lost it) is ended by its producer as lapsed ("the stream's lease lapsed", in the topic), not
/// as cancelled; its readers end too.
#[tokio::test(start_paused = true)]
async fn a_record_replaced_under_a_running_stream_ends_it_as_lapsed() {
    let options = ResumableOptions::new().lease(Duration::from_secs(3));
    let (hub, a, _b) = two_instances(options.clone());
    let _tx = fed(&a, "r").await;
    let reader = a.subscribe("r", &LastEventId(None)).await.unwrap();
    // The topic itself, as the producer writes it.
    let mut raw = hub
        .subscribe(&topic("r"), &LastEventId(None))
        .await
        .unwrap();
    let key = record::key("r");
    let found = hub.record(&key).await.unwrap().expect("the record");
    let other = StreamRecord::new(State::Running, options.ttl, Some("0-0")).encode();
    assert!(hub
        .replace_record(&key, found.value, other, options.running_ttl())
        .await
        .unwrap());
    let error = tokio::time::timeout(DEADLINE, async {
        loop {
            let frame = next(&mut raw, "the producer's end").await;
            if frame.contains("event: error\n") {
                return frame;
            }
        }
    })
    .await
    .expect("the producer's error event");
    assert!(
        error.contains("data: the stream's lease lapsed\n"),
        "{error}"
    );
    assert!(!a.is_running("r"));
    let all = to_end(reader, "the reader").await;
    assert!(all.contains("event: error\n"), "{all}");
}
