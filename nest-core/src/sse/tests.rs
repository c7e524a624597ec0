//! Unit tests of the stream: keep-alive under tokio's paused clock, buffer policies, ids, hooks.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::BodyExt;

use super::lifecycle::LOSS_LOG_INTERVAL;
use super::*;
use crate::context::{Budget, SseShared};

/// The next frame, `None` at the end of the stream. Every test here runs on tokio's paused
/// clock, so a stream that never yields fails at once (the clock jumps to the timeout) instead
/// of hanging, and one that waits for a timer (keep-alive, lifetime) gets it first.
async fn next(body: &mut SseBody) -> Option<Bytes> {
    within("a frame", body.frame())
        .await
        .map(|f| f.unwrap().into_data().unwrap())
}

/// Awaits `fut` for at most an hour of paused time: at once, when nothing else can happen.
async fn within<T>(what: &str, fut: impl std::future::Future<Output = T>) -> T {
    tokio::time::timeout(Duration::from_secs(3600), fut)
        .await
        .unwrap_or_else(|_| panic!("waited in vain for {what}"))
}

/// Whether the body has a frame ready right now (without letting time pass).
fn ready(body: &mut SseBody) -> Option<Bytes> {
    use futures_util::FutureExt;
    body.frame()
        .now_or_never()
        .flatten()
        .map(|f| f.unwrap().into_data().unwrap())
}

/// A stream with a 15 s keep-alive: unattached (its body's own timer), or attached to an app
/// (the app's keep-alive checks; the body never makes a timer). The app's part, when attached,
/// is returned so it outlives the test.
fn keep_alive_stream(attached: bool) -> (SseWriter, SseBody, Option<Arc<SseShared>>) {
    let (writer, body) =
        get_sse_stream(SseOptions::new().keep_alive(Some(Duration::from_secs(15))));
    let app = attached.then(|| {
        let app = Arc::new(SseShared::default());
        attach(&body, &app, false);
        assert!(body.shared.on_app_checks.load(Ordering::Relaxed));
        app
    });
    (writer, body, app)
}

#[tokio::test(start_paused = true)]
async fn keep_alive_fires_only_after_a_whole_idle_interval() {
    for attached in [false, true] {
        keep_alive_fires_only_after_a_whole_idle_interval_when(attached).await;
    }
}

async fn keep_alive_fires_only_after_a_whole_idle_interval_when(attached: bool) {
    let (writer, mut body, _app) = keep_alive_stream(attached);
    assert!(ready(&mut body).is_none());
    tokio::time::advance(Duration::from_secs(10)).await;
    writer.write("event").unwrap();
    assert_eq!(next(&mut body).await.unwrap(), "data: event\n\n");
    // 15 s after the start but only 5 s after the last write: no keep-alive yet.
    tokio::time::advance(Duration::from_secs(5)).await;
    assert!(ready(&mut body).is_none());
    // 15 s after the last write: one keep-alive comment.
    let start = tokio::time::Instant::now();
    assert_eq!(next(&mut body).await.unwrap(), ":\n\n");
    assert_eq!(start.elapsed(), Duration::from_secs(10));
    // And again a whole interval later.
    let start = tokio::time::Instant::now();
    assert_eq!(next(&mut body).await.unwrap(), ":\n\n");
    assert_eq!(start.elapsed(), Duration::from_secs(15));
    assert_eq!(body.has_timer(), !attached, "attached: {attached}");
}

#[tokio::test(start_paused = true)]
async fn keep_alive_reaches_a_new_waker_after_a_write() {
    for attached in [false, true] {
        keep_alive_reaches_a_new_waker_after_a_write_when(attached).await;
    }
}

async fn keep_alive_reaches_a_new_waker_after_a_write_when(attached: bool) {
    let (writer, mut body, _app) = keep_alive_stream(attached);
    // The timer is first polled with a no-op waker, and the event is taken with one too.
    assert!(ready(&mut body).is_none());
    writer.write("event").unwrap();
    assert_eq!(ready(&mut body).unwrap(), "data: event\n\n");
    // Polled by this task now: the keep-alive wakes it a whole interval after the write.
    let start = tokio::time::Instant::now();
    assert_eq!(next(&mut body).await.unwrap(), ":\n\n");
    assert_eq!(start.elapsed(), Duration::from_secs(15));
}

#[tokio::test(start_paused = true)]
async fn keep_alive_set_before_a_write_at_its_deadline_waits_a_whole_interval() {
    for attached in [false, true] {
        keep_alive_set_before_a_write_at_its_deadline_waits_a_whole_interval_when(attached).await;
    }
}

async fn keep_alive_set_before_a_write_at_its_deadline_waits_a_whole_interval_when(attached: bool) {
    let (writer, mut body, _app) = keep_alive_stream(attached);
    let start = tokio::time::Instant::now();
    let first = tokio::spawn(async move {
        let frame = next(&mut body).await.unwrap();
        (frame, next(&mut body).await.unwrap(), body)
    });
    tokio::task::yield_now().await; // the body's task polls the timer: due at 15 s
    tokio::time::advance(Duration::from_secs(15)).await;
    // A write at the very instant the timer fires: the event, then silence for 15 s.
    writer.write("event").unwrap();
    let (frame, keep_alive, _body) = within("the keep-alive", first).await.unwrap();
    assert_eq!(frame, "data: event\n\n");
    assert_eq!(keep_alive, ":\n\n");
    assert_eq!(start.elapsed(), Duration::from_secs(30));
}

#[tokio::test(start_paused = true)]
async fn keep_alive_off_sends_nothing() {
    let (_writer, mut body) = get_sse_stream(SseOptions::new().keep_alive(None));
    assert!(ready(&mut body).is_none());
    tokio::time::advance(Duration::from_secs(3600)).await;
    assert!(ready(&mut body).is_none());
}

#[tokio::test(start_paused = true)]
async fn queued_events_are_coalesced_into_one_frame() {
    let (writer, mut body) = get_sse_stream(SseOptions::new().keep_alive(None));
    for i in 0..3 {
        writer.write(format!("{i}")).unwrap();
    }
    assert_eq!(
        next(&mut body).await.unwrap(),
        "data: 0\n\ndata: 1\n\ndata: 2\n\n"
    );
}

#[tokio::test(start_paused = true)]
async fn overflow_error_refuses_and_counts() {
    let (writer, mut body) = get_sse_stream(SseOptions::new().keep_alive(None).buffer(2, 1 << 20));
    writer.write("a").unwrap();
    writer.write("b").unwrap();
    assert!(writer.write("c").unwrap_err().is_full());
    assert_eq!(writer.lost_events(), 1);
    assert_eq!(next(&mut body).await.unwrap(), "data: a\n\ndata: b\n\n");
    writer.write("d").unwrap();
}

#[tokio::test(start_paused = true)]
async fn overflow_by_bytes() {
    let (writer, _body) = get_sse_stream(SseOptions::new().keep_alive(None).buffer(100, 20));
    writer.write("0123456789").unwrap(); // 18 bytes on the wire
    assert!(writer.write("x").unwrap_err().is_full());
}

/// The byte bound at its edge (issue 36, mutants of `push_locked`): events whose frames add up
/// to exactly `max_bytes` are all queued; one byte more is refused. And `queued` and
/// `is_closed` say what they should.
#[tokio::test(start_paused = true)]
async fn the_byte_bound_holds_exactly_max_bytes() {
    // "data: ab\n\n" is 10 bytes: two fill 20 exactly.
    let (writer, _body) = get_sse_stream(SseOptions::new().keep_alive(None).buffer(100, 20));
    assert!(!writer.is_closed());
    assert_eq!(writer.queued(), 0);
    writer.write("ab").unwrap();
    writer.write("cd").unwrap();
    assert_eq!(writer.queued(), 2);
    assert!(writer.write("e").unwrap_err().is_full(), "21 bytes");
    assert_eq!(writer.queued(), 2);
    assert!(!writer.is_closed());
    writer.close();
    assert!(writer.is_closed());
}

/// `DropOldest` by bytes drops just enough of the oldest, not everything (its byte count
/// follows each drop).
#[tokio::test(start_paused = true)]
async fn drop_oldest_by_bytes_drops_just_enough() {
    let (writer, mut body) = get_sse_stream(
        SseOptions::new()
            .keep_alive(None)
            .buffer(100, 30)
            .overflow(Overflow::DropOldest),
    );
    for s in ["ab", "cd", "ef", "gh"] {
        writer.write(s).unwrap();
    }
    assert_eq!(writer.lost_events(), 1);
    assert_eq!(writer.queued(), 3);
    assert_eq!(
        next(&mut body).await.unwrap(),
        "data: cd\n\ndata: ef\n\ndata: gh\n\n"
    );
}

/// `send` on an ended stream returns the error at once (it waits for room only when the
/// buffer is full).
#[tokio::test(start_paused = true)]
async fn send_on_a_closed_stream_fails_at_once() {
    let (writer, _body) = get_sse_stream(SseOptions::new().keep_alive(None).buffer(1, 1 << 20));
    writer.write("a").unwrap();
    writer.close();
    let err = within("the send", writer.send("b")).await.unwrap_err();
    assert!(!err.is_full(), "{err}");
}

#[tokio::test(start_paused = true)]
async fn overflow_drop_oldest() {
    let (writer, mut body) = get_sse_stream(
        SseOptions::new()
            .keep_alive(None)
            .buffer(2, 1 << 20)
            .overflow(Overflow::DropOldest),
    );
    for s in ["a", "b", "c", "d"] {
        writer.write(s).unwrap();
    }
    assert_eq!(writer.lost_events(), 2);
    assert_eq!(next(&mut body).await.unwrap(), "data: c\n\ndata: d\n\n");
}

#[tokio::test(start_paused = true)]
async fn send_waits_for_room() {
    let (writer, mut body) = get_sse_stream(SseOptions::new().keep_alive(None).buffer(1, 1 << 20));
    writer.write("a").unwrap();
    let sender = {
        let writer = writer.clone();
        tokio::spawn(async move { writer.send("b").await })
    };
    tokio::task::yield_now().await;
    assert!(!sender.is_finished());
    assert_eq!(next(&mut body).await.unwrap(), "data: a\n\n");
    within("the send", sender).await.unwrap().unwrap();
    assert_eq!(next(&mut body).await.unwrap(), "data: b\n\n");
    assert_eq!(writer.lost_events(), 0);
}

#[tokio::test(start_paused = true)]
async fn auto_ids_grow_and_explicit_ids_are_kept() {
    let (writer, mut body) = get_sse_stream(SseOptions::new().keep_alive(None).auto_id(42));
    writer.write("a").unwrap();
    writer.write(SseEvent::data("b").id("x")).unwrap();
    writer.write("c").unwrap();
    assert_eq!(
        next(&mut body).await.unwrap(),
        "id: 42\ndata: a\n\nid: x\ndata: b\n\nid: 43\ndata: c\n\n"
    );
}

#[tokio::test(start_paused = true)]
async fn write_encoded_shares_bytes() {
    let encoded = SseEvent::data("shared").encode().unwrap();
    let (w1, mut b1) = get_sse_stream(SseOptions::new().keep_alive(None));
    let (w2, mut b2) = get_sse_stream(SseOptions::new().keep_alive(None));
    w1.write_encoded(&encoded).unwrap();
    w2.write_encoded(&encoded).unwrap();
    let f1 = next(&mut b1).await.unwrap();
    let f2 = next(&mut b2).await.unwrap();
    assert_eq!(f1.as_ptr(), f2.as_ptr(), "one encoding, no copy");
}

#[tokio::test(start_paused = true)]
async fn hook_registered_after_the_end_runs_at_once_exactly_once() {
    let (writer, body) = get_sse_stream(SseOptions::new());
    drop(writer);
    let runs = Arc::new(AtomicUsize::new(0));
    let r = runs.clone();
    let body = body.on_cancel(move |reason| {
        assert_eq!(reason, EndReason::WritersDropped);
        r.fetch_add(1, Ordering::SeqCst);
    });
    drop(body);
    assert_eq!(runs.load(Ordering::SeqCst), 1);
}

#[tokio::test(start_paused = true)]
async fn options_hook_runs_on_drop_of_the_body() {
    let runs = Arc::new(AtomicUsize::new(0));
    let r = runs.clone();
    let (writer, body) = get_sse_stream(SseOptions::new().on_cancel(move |reason| {
        assert_eq!(reason, EndReason::ClientGone);
        r.fetch_add(1, Ordering::SeqCst);
    }));
    drop(body);
    drop(writer);
    assert_eq!(runs.load(Ordering::SeqCst), 1);
}

#[tokio::test(start_paused = true)]
async fn closed_resolves_with_the_reason() {
    let (writer, body) = get_sse_stream(SseOptions::new());
    let w = writer.clone();
    let waiter = tokio::spawn(async move { w.closed().await });
    tokio::task::yield_now().await;
    drop(body);
    assert_eq!(
        within("closed()", waiter).await.unwrap(),
        EndReason::ClientGone
    );
}

/// A hook that counts its runs and holds `held` (to see when the stream frees it).
fn counting_hook(
    runs: &Arc<AtomicUsize>,
    held: &Arc<()>,
) -> impl FnOnce(EndReason) + Send + 'static {
    let runs = runs.clone();
    let held = held.clone();
    move |_| {
        let _held = held;
        runs.fetch_add(1, Ordering::SeqCst);
    }
}

#[tokio::test(start_paused = true)]
async fn a_hook_in_the_options_and_one_on_the_body_both_run_once() {
    let (first, second) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
    let held = Arc::new(());
    let (_writer, body) = get_sse_stream(SseOptions::new().on_cancel(counting_hook(&first, &held)));
    let body = body.on_cancel(counting_hook(&second, &held));
    drop(body);
    assert_eq!(first.load(Ordering::SeqCst), 1, "the options' hook");
    assert_eq!(second.load(Ordering::SeqCst), 1, "the body's hook");
    assert_eq!(
        Arc::strong_count(&held),
        1,
        "both hooks freed after running"
    );
}

#[tokio::test(start_paused = true)]
async fn a_hook_attached_after_the_hooked_end_runs_at_once_with_the_reason() {
    let runs = Arc::new(AtomicUsize::new(0));
    let held = Arc::new(());
    let (writer, body) = get_sse_stream(SseOptions::new().on_cancel(counting_hook(&runs, &held)));
    drop(writer); // WritersDropped: the options' hook runs
    assert_eq!(runs.load(Ordering::SeqCst), 1);
    let late = Arc::new(std::sync::Mutex::new(None));
    let l = late.clone();
    let body = body.on_cancel(move |reason| *l.lock().unwrap() = Some(reason));
    assert_eq!(*late.lock().unwrap(), Some(EndReason::WritersDropped));
    drop(body);
    assert_eq!(
        runs.load(Ordering::SeqCst),
        1,
        "each hook runs exactly once"
    );
}

#[tokio::test(start_paused = true)]
async fn close_releases_the_hook_and_what_it_captured() {
    let runs = Arc::new(AtomicUsize::new(0));
    let held = Arc::new(());
    let (writer, body) = get_sse_stream(SseOptions::new());
    let body = body.on_cancel(counting_hook(&runs, &held));
    assert_eq!(Arc::strong_count(&held), 2);
    writer.close();
    assert_eq!(Arc::strong_count(&held), 1, "close() must free the hook");
    // A hook added after close() never runs (close runs none) and is not kept either.
    let body = body.on_cancel(counting_hook(&runs, &held));
    assert_eq!(Arc::strong_count(&held), 1);
    drop(body);
    assert_eq!(runs.load(Ordering::SeqCst), 0);
}

#[tokio::test(start_paused = true)]
async fn a_hook_that_captures_its_own_writer_is_freed_by_close() {
    // The usual cycle: the hook holds a writer, the stream holds the hook.
    let (writer, body) = get_sse_stream(SseOptions::new());
    let own = writer.clone();
    let body = body.on_cancel(move |_| drop(own));
    let weak = Arc::downgrade(&body.shared);
    writer.close();
    drop(writer);
    drop(body);
    assert!(weak.upgrade().is_none(), "the stream's state must be freed");
}

#[tokio::test(start_paused = true)]
async fn a_panicking_hook_is_caught_and_the_other_hook_still_runs() {
    let runs = Arc::new(AtomicUsize::new(0));
    let held = Arc::new(());
    let (_writer, body) = get_sse_stream(SseOptions::new().on_cancel(|_| panic!("hook bug")));
    let body = body.on_cancel(counting_hook(&runs, &held));
    drop(body); // would abort the process if the panic escaped a drop during unwinding
    assert_eq!(runs.load(Ordering::SeqCst), 1);
}

/// The loss reports (WARN lines) seen by the subscriber of this thread: `(lost, total_lost)`.
#[derive(Clone, Default)]
struct LossLines(Arc<std::sync::Mutex<Vec<(u64, u64)>>>);

impl LossLines {
    fn get(&self) -> Vec<(u64, u64)> {
        self.0.lock().unwrap().clone()
    }
}

impl<S: tracing::Subscriber> tracing_subscriber::Layer<S> for LossLines {
    fn on_event(
        &self,
        event: &tracing::Event<'_>,
        _ctx: tracing_subscriber::layer::Context<'_, S>,
    ) {
        if *event.metadata().level() == tracing::Level::WARN {
            let mut fields = LossFields::default();
            event.record(&mut fields);
            let line = (
                fields.lost.expect("lost"),
                fields.total.expect("total_lost"),
            );
            self.0.lock().unwrap().push(line);
        }
    }
}

#[derive(Default)]
struct LossFields {
    lost: Option<u64>,
    total: Option<u64>,
}

impl tracing::field::Visit for LossFields {
    fn record_u64(&mut self, field: &tracing::field::Field, value: u64) {
        match field.name() {
            "lost" => self.lost = Some(value),
            "total_lost" => self.total = Some(value),
            _ => {}
        }
    }

    fn record_debug(&mut self, _: &tracing::field::Field, _: &dyn std::fmt::Debug) {}
}

#[tokio::test(start_paused = true)]
async fn a_flood_of_losses_logs_one_line_per_stream_per_interval() {
    use tracing_subscriber::layer::SubscriberExt;
    // The losses' clock starts at the first loss in the process: one on another stream, then an
    // hour later this stream's intervals are counted from a large clock value.
    let (other, _body) = get_sse_stream(
        SseOptions::new()
            .buffer(1, 1024)
            .overflow(Overflow::DropOldest),
    );
    for i in 0..2 {
        other.write(format!("{i}")).unwrap();
    }
    tokio::time::advance(Duration::from_secs(3600)).await;
    let lines = LossLines::default();
    let _guard =
        tracing::subscriber::set_default(tracing_subscriber::registry().with(lines.clone()));
    let (writer, body) = get_sse_stream(
        SseOptions::new()
            .buffer(1, 1024)
            .overflow(Overflow::DropOldest),
    );
    for i in 0..10_000 {
        writer.write(format!("{i}")).unwrap();
    }
    assert_eq!(writer.lost_events(), 9_999);
    assert_eq!(
        lines.get(),
        [(1, 1)],
        "one line for the first interval, at its first loss"
    );
    tokio::time::advance(LOSS_LOG_INTERVAL).await;
    for i in 0..10_000 {
        writer.write(format!("{i}")).unwrap();
    }
    // The stream had 9,998 unlogged losses when the interval ended: its losses look at the
    // clock again when their count crosses the next multiple of 64 (10,048), 50 losses in.
    assert_eq!(
        lines.get(),
        [(1, 1), (10_048, 10_049)],
        "one more line in the next interval, with the losses in between"
    );
    drop(body);
    assert_eq!(
        lines.get(),
        [(1, 1), (10_048, 10_049), (9_950, 19_999)],
        "the unreported losses, once, at the end"
    );
}

/// A stream that loses an event now and then logs each loss once its line is due: every
/// first loss after a line looks at the clock.
#[tokio::test(start_paused = true)]
async fn sparse_losses_are_logged_when_their_line_is_due() {
    use tracing_subscriber::layer::SubscriberExt;
    let lines = LossLines::default();
    let _guard =
        tracing::subscriber::set_default(tracing_subscriber::registry().with(lines.clone()));
    let (writer, mut body) = get_sse_stream(
        SseOptions::new()
            .keep_alive(None)
            .buffer(1, 1024)
            .overflow(Overflow::DropOldest),
    );
    for round in 1..=3u64 {
        writer.write("a").unwrap();
        writer.write("b").unwrap(); // drops "a"
        assert_eq!(
            lines.get().len() as u64,
            round,
            "round {round}: {:?}",
            lines.get()
        );
        body.frame().await.unwrap().unwrap();
        tokio::time::advance(LOSS_LOG_INTERVAL).await;
    }
    assert_eq!(lines.get(), [(1, 1), (1, 2), (1, 3)]);
}

/// The losses metric moves with the losses that look at the clock (the 1st, 2nd, 4th … 64th
/// since the stream's last loss line, then every 64th), not with each loss: under a flood of
/// losses it is updated once per 64 (with a recorder installed, each update looks its series
/// up). It is never more than 63 behind the stream's count, and exact once the stream ends.
#[test]
fn the_losses_metric_moves_once_per_64_losses_and_is_exact_at_the_end() {
    use super::lifecycle::LOSS_CLOCK_EVERY;
    use metrics_util::debugging::{DebugValue, DebuggingRecorder};
    let recorder = DebuggingRecorder::new();
    let snapshotter = recorder.snapshotter();
    // The counter's total so far (a snapshot resets what it read: the totals are summed here).
    let mut total = 0;
    let mut metered = || {
        for (key, _, _, value) in snapshotter.snapshot().into_vec() {
            if key.key().name() == "nest_sse_events_lost_total" {
                assert!(
                    key.key().labels().any(|l| l.value() == "dropped"),
                    "{key:?}"
                );
                let DebugValue::Counter(n) = value else {
                    panic!("{value:?}")
                };
                total += n;
            }
        }
        total
    };
    metrics::with_local_recorder(&recorder, || {
        let (writer, body) = get_sse_stream(
            SseOptions::new()
                .keep_alive(None)
                .buffer(1, 1024)
                .overflow(Overflow::DropOldest),
        );
        writer.write("0").unwrap();
        let mut updates = Vec::new();
        for lost in 1..=200u64 {
            let before = metered();
            writer.write(format!("{lost}")).unwrap();
            assert_eq!(
                writer.lost_events(),
                lost,
                "the stream's own count is exact"
            );
            let after = metered();
            assert!(
                lost - after < LOSS_CLOCK_EVERY,
                "{lost} lost, {after} counted"
            );
            if after != before {
                assert_eq!(after, lost, "an update counts every loss so far");
                updates.push(lost);
            }
        }
        // The first loss logs its line at once; the looks count from that line.
        assert_eq!(updates, [1, 2, 3, 5, 9, 17, 33, 65, 129, 193]);
        drop(body);
        assert_eq!(metered(), 200, "the stream's end counts the rest");
        // Ended: nothing more is lost or counted.
        assert!(writer.write("late").is_err());
        assert_eq!(metered(), 200);
    });
}

/// Which losses read the clock: the first after a line, the count's powers of two, then every
/// [`LOSS_CLOCK_EVERY`]th, also when one push drops several.
#[test]
fn losses_look_at_the_clock_at_powers_of_two_then_every_64() {
    use super::lifecycle::LOSS_CLOCK_EVERY;
    let looks: Vec<u64> = (0..300u64)
        .filter(|n| super::lifecycle::looks_at_clock(*n, n + 1))
        .map(|n| n + 1)
        .collect();
    assert_eq!(looks, [1, 2, 4, 8, 16, 32, 64, 128, 192, 256]);
    assert_eq!(LOSS_CLOCK_EVERY, 64);
    assert!(super::lifecycle::looks_at_clock(3, 5), "past 4 in one push");
    assert!(
        super::lifecycle::looks_at_clock(130, 200),
        "past 192 in one push"
    );
    assert!(!super::lifecycle::looks_at_clock(129, 191));
}

/// `Overflow::Close` ends the stream with its queue: what was queued is lost, not flushed.
#[tokio::test(start_paused = true)]
async fn overflow_close_drops_the_queue_with_the_stream() {
    let reason = Arc::new(std::sync::Mutex::new(None));
    let r = reason.clone();
    let (writer, mut body) = get_sse_stream(
        SseOptions::new()
            .keep_alive(None)
            .buffer(1, 1 << 20)
            .overflow(Overflow::Close)
            .on_cancel(move |why| *r.lock().unwrap() = Some(why)),
    );
    writer.write("queued").unwrap();
    let err = writer.write("refused").unwrap_err();
    assert_eq!(err.end_reason(), Some(EndReason::Overflow));
    assert_eq!(
        writer.lost_events(),
        2,
        "the queued event and the refused one"
    );
    assert_eq!(next(&mut body).await, None, "nothing is flushed");
    assert_eq!(*reason.lock().unwrap(), Some(EndReason::Overflow));
}

#[test]
fn an_encoded_event_gives_its_bytes_and_their_length() {
    let encoded = SseEvent::data("x").event("e").encode().unwrap();
    assert_eq!(encoded.as_bytes(), b"event: e\ndata: x\n\n");
    assert_eq!(encoded.len(), 18);
    assert!(!encoded.is_empty());
    assert!(EncodedEvent(Arc::new(Bytes::new())).is_empty());
    // As shared `Bytes`: the same bytes, not a copy.
    let bytes = encoded.bytes();
    assert_eq!(bytes, encoded.as_bytes());
    assert_eq!(bytes.as_ptr(), encoded.as_bytes().as_ptr());
}

/// A body's own keep-alive (a body polled unattached) and its lifetime share one box: both
/// still fire, the keep-alive every 15 s until the lifetime ends the stream at 60 s.
#[tokio::test(start_paused = true)]
async fn an_unattached_body_keeps_alive_until_its_lifetime_ends_it() {
    let options = SseOptions::new()
        .keep_alive(Some(Duration::from_secs(15)))
        .max_lifetime(Duration::from_secs(60), Duration::ZERO);
    let (_writer, mut body) = get_sse_stream(options);
    let started = tokio::time::Instant::now();
    let mut keep_alives = 0;
    // Bounded: a lifetime that never fires fails here instead of looping on keep-alives.
    while let Some(frame) = next(&mut body).await {
        assert_eq!(frame, ":\n\n");
        keep_alives += 1;
        assert!(keep_alives <= 3, "the lifetime ended the stream at 60 s");
    }
    assert_eq!(keep_alives, 3, "at 15, 30 and 45 s");
    assert_eq!(started.elapsed(), Duration::from_secs(60));
}

/// The initial `retry:` is kept in 4 bytes: past `u32::MAX - 1` ms (49 days) it is sent as
/// that.
#[tokio::test]
async fn an_initial_retry_past_49_days_is_sent_as_the_largest_kept() {
    for (retry, line) in [
        (Duration::from_secs(100 * 86_400), "retry: 4294967294\n"),
        (Duration::from_millis(1500), "retry: 1500\n"),
    ] {
        let (writer, mut body) = get_sse_stream(SseOptions::new().keep_alive(None).retry(retry));
        writer.write("a").unwrap();
        assert_eq!(next(&mut body).await.unwrap(), format!("{line}data: a\n\n"));
    }
}

#[tokio::test(start_paused = true)]
async fn a_stream_ends_at_its_lifetime_with_the_retry_hint() {
    let reason = Arc::new(std::sync::Mutex::new(None));
    let r = reason.clone();
    let (writer, mut body) = get_sse_stream(
        SseOptions::new()
            .keep_alive(None)
            .max_lifetime(Duration::from_secs(60), Duration::from_secs(10))
            .shutdown_retry(Duration::from_secs(2), Duration::ZERO)
            .on_cancel(move |why| *r.lock().unwrap() = Some(why)),
    );
    writer.write("a").unwrap();
    assert_eq!(next(&mut body).await.unwrap(), "data: a\n\n");
    tokio::time::advance(Duration::from_secs(59)).await;
    assert!(ready(&mut body).is_none(), "not before the lifetime");
    let started = tokio::time::Instant::now();
    assert_eq!(next(&mut body).await.unwrap(), "retry: 2000\n\n");
    let waited = started.elapsed();
    assert!(
        waited >= Duration::from_secs(1) && waited <= Duration::from_secs(11),
        "lifetime 60 s + up to 10 s of jitter, ended after {:?}",
        Duration::from_secs(59) + waited
    );
    assert!(next(&mut body).await.is_none());
    assert_eq!(*reason.lock().unwrap(), Some(EndReason::Lifetime));
    assert_eq!(
        writer.write("late").unwrap_err().end_reason(),
        Some(EndReason::Lifetime)
    );
}

#[tokio::test(start_paused = true)]
async fn the_shutdown_retry_jitter_stays_within_base_and_base_plus_jitter() {
    let mut seen = std::collections::HashSet::new();
    for _ in 0..200 {
        let token = tokio_util::sync::CancellationToken::new();
        let (_writer, mut body) = get_sse_stream(
            SseOptions::new()
                .keep_alive(None)
                .shutdown_retry(Duration::from_millis(1000), Duration::from_millis(50)),
        );
        body.attachment().attach(
            &link(token.clone()),
            &Arc::new(SseShared::default()),
            &Arc::from("/t"),
            false,
        );
        assert!(ready(&mut body).is_none());
        token.cancel();
        let frame = next(&mut body).await.unwrap();
        let ms: u64 = std::str::from_utf8(&frame)
            .unwrap()
            .strip_prefix("retry: ")
            .and_then(|s| s.strip_suffix("\n\n"))
            .unwrap()
            .parse()
            .unwrap();
        assert!((1000..=1050).contains(&ms), "{ms}");
        seen.insert(ms);
    }
    assert!(seen.len() > 10, "the jitter varies: {seen:?}");
}

/// Records what `sse_stream` spans were given: (field, value) pairs, and whether they closed.
#[derive(Clone, Default)]
struct StreamSpans(Arc<std::sync::Mutex<Vec<(String, String)>>>);

impl<S> tracing_subscriber::Layer<S> for StreamSpans
where
    S: tracing::Subscriber + for<'a> tracing_subscriber::registry::LookupSpan<'a>,
{
    fn on_new_span(
        &self,
        attrs: &tracing::span::Attributes<'_>,
        _: &tracing::span::Id,
        _: tracing_subscriber::layer::Context<'_, S>,
    ) {
        if attrs.metadata().name() == "sse_stream" {
            attrs.record(&mut Fields(self.clone()));
        }
    }

    fn on_record(
        &self,
        id: &tracing::span::Id,
        values: &tracing::span::Record<'_>,
        ctx: tracing_subscriber::layer::Context<'_, S>,
    ) {
        if ctx.span(id).is_some_and(|s| s.name() == "sse_stream") {
            values.record(&mut Fields(self.clone()));
        }
    }

    fn on_close(&self, id: tracing::span::Id, ctx: tracing_subscriber::layer::Context<'_, S>) {
        if ctx.span(&id).is_some_and(|s| s.name() == "sse_stream") {
            self.0.lock().unwrap().push(("closed".into(), "yes".into()));
        }
    }
}

struct Fields(StreamSpans);

impl tracing::field::Visit for Fields {
    fn record_debug(&mut self, field: &tracing::field::Field, value: &dyn std::fmt::Debug) {
        let value = format!("{value:?}").trim_matches('"').to_owned();
        self.0
             .0
            .lock()
            .unwrap()
            .push((field.name().to_owned(), value));
    }
}

#[tokio::test(start_paused = true)]
async fn a_stream_span_lasts_as_long_as_the_stream_and_records_its_end() {
    use tracing_subscriber::layer::SubscriberExt;
    let spans = StreamSpans::default();
    let _guard =
        tracing::subscriber::set_default(tracing_subscriber::registry().with(spans.clone()));
    let (writer, mut body) = get_sse_stream(SseOptions::new().keep_alive(None));
    body.attachment().attach(
        &link(tokio_util::sync::CancellationToken::new()),
        &Arc::new(SseShared::default()),
        &Arc::from("/events"),
        false,
    );
    writer.write("a").unwrap();
    writer.write("bc").unwrap();
    assert_eq!(next(&mut body).await.unwrap(), "data: a\n\ndata: bc\n\n");
    assert!(
        !spans.0.lock().unwrap().iter().any(|(k, _)| k == "closed"),
        "open while the stream is"
    );
    drop(body);
    let seen = spans.0.lock().unwrap().clone();
    let get = |k: &str| seen.iter().find(|(f, _)| f == k).map(|(_, v)| v.clone());
    assert_eq!(get("route").as_deref(), Some("/events"));
    assert_eq!(get("end_reason").as_deref(), Some("client_gone"));
    assert_eq!(get("events").as_deref(), Some("2"));
    assert_eq!(get("bytes").as_deref(), Some("19"));
    assert_eq!(get("closed").as_deref(), Some("yes"));
}

#[test]
fn is_event_stream_reads_the_media_type_only() {
    for yes in [
        "text/event-stream",
        "TEXT/Event-Stream",
        "text/event-stream;charset=utf-8",
        " text/event-stream ; x=1",
        "text/event-stream\t;q=1",
    ] {
        assert!(is_event_stream(&HeaderValue::from_static(yes)), "{yes:?}");
    }
    for no in [
        "text/event-streams",
        "text/event",
        "text/plain; x=text/event-stream",
        "",
        "application/json",
        "text/event-stream x",
        "text/event-streamx;",
        "text/event-strea",
    ] {
        assert!(!is_event_stream(&HeaderValue::from_static(no)), "{no:?}");
    }
}

/// Streams attached to one budget of `limit` bytes, as the router attaches them.
fn budgeted(
    limit: usize,
    options: impl Fn() -> SseOptions,
    n: usize,
) -> (Arc<SseShared>, Vec<(SseWriter, SseBody)>) {
    let app = Arc::new(SseShared::new(limit));
    let streams = (0..n)
        .map(|_| {
            let (writer, body) = get_sse_stream(options());
            attach(&body, &app, false);
            (writer, body)
        })
        .collect();
    (app, streams)
}

/// Asserts that `budget` counts what `streams` streams hold, `held` bytes: at least that, and
/// less than two [`Budget::STEP`]s more per stream (a stream's charge moves in steps).
#[track_caller]
fn assert_charged(budget: &Budget, held: usize, streams: usize) {
    let used = budget.used();
    assert!(
        used >= held && used < held + streams * 2 * Budget::STEP,
        "{used} counted for {held} held by {streams} streams"
    );
}

/// Issue 33: never-reading clients fill the server's budget, not more; past it, each slow
/// stream holds at most its share (the budget ÷ open streams) and its overflow policy acts,
/// while a stream whose client reads gets every event; what is released comes back.
#[tokio::test]
async fn the_budget_bounds_all_streams_together_and_spares_a_reading_client() {
    const LIMIT: usize = 256 * 1024;
    let event = "x".repeat(1000);
    let (app, mut streams) = budgeted(LIMIT, || SseOptions::new().keep_alive(None), 4);
    let budget = &app.budget;
    let (reader_writer, mut reader) = streams.pop().unwrap();
    // Three never-reading clients: each stream's own bound is 256 KiB, so without the budget
    // they would hold 768 KiB.
    for (writer, _) in &streams {
        let mut taken = 0;
        while writer.write(event.as_str()).is_ok() {
            taken += 1;
            assert!(taken < 10_000, "the budget never refused");
        }
        assert!(writer.write(event.as_str()).unwrap_err().is_full());
    }
    let per_event = event.len() + "data: \n\n".len() + Budget::PER_EVENT + Budget::SLOT;
    // The first filled to its own bound (256 KiB) before the budget was spent; the others got
    // their share, a quarter of the budget each: at most twice the budget in all.
    let held: Vec<usize> = streams.iter().map(|(w, _)| w.queued()).collect();
    assert!((230..=245).contains(&held[0]), "{held:?}");
    assert!(held[1..].iter().all(|n| (55..=62).contains(n)), "{held:?}");
    let share = LIMIT / 4;
    assert!(
        budget.used() <= LIMIT + 2 * share + 2 * per_event + 3 * 2 * Budget::STEP,
        "{}",
        budget.used()
    );
    assert!(budget.exhausted());
    // The reading client gets every event while the budget stays spent.
    for i in 0..500 {
        reader_writer.write(format!("{i}")).unwrap();
        let frame = next(&mut reader).await.unwrap();
        assert_eq!(frame, format!("data: {i}\n\n"));
    }
    assert!(budget.exhausted());
    // A stream that ends gives what it held back, and so does one that is read.
    let before = budget.used();
    let (writer, body) = streams.remove(0);
    drop(body);
    drop(writer);
    // What it was charged: what it held, and less than two steps more.
    let freed = |budget: &Budget, held: usize, streams: usize| {
        let freed = before - budget.used();
        assert!(
            freed >= held * per_event && freed < held * per_event + streams * 2 * Budget::STEP,
            "{freed} freed for {held} events of {streams} streams"
        );
    };
    freed(budget, held[0], 1);
    let (_writer, mut body) = streams.pop().unwrap();
    while ready(&mut body).is_some() {}
    freed(budget, held[0] + held[2], 2);
    drop(streams);
    drop(body);
    drop(reader);
    drop(reader_writer);
    assert_eq!(budget.used(), 0, "everything released");
}

/// With `DropOldest` a slow stream over its share drops its oldest events to make room, and
/// with `Close` it ends with `Overflow` (its client resumes with `Last-Event-ID`).
#[tokio::test]
async fn past_the_budget_the_stream_s_overflow_policy_acts() {
    const LIMIT: usize = 128 * 1024;
    let event = "y".repeat(1000);
    let (app, streams) = budgeted(
        LIMIT,
        || {
            SseOptions::new()
                .keep_alive(None)
                .overflow(Overflow::DropOldest)
        },
        2,
    );
    let budget = &app.budget;
    for _ in 0..2_000 {
        for (writer, _) in &streams {
            writer.write(event.as_str()).unwrap();
        }
    }
    assert!(budget.used() <= LIMIT + 4 * 1024, "{}", budget.used());
    assert!(streams.iter().all(|(w, _)| w.lost_events() > 0));
    let (app, streams) = budgeted(
        LIMIT,
        || SseOptions::new().keep_alive(None).overflow(Overflow::Close),
        2,
    );
    let budget = &app.budget;
    let (writer, _body) = &streams[0];
    let mut result = Ok(());
    for _ in 0..2_000 {
        result = writer.write(event.as_str());
        if result.is_err() {
            break;
        }
    }
    assert_eq!(result.unwrap_err().end_reason(), Some(EndReason::Overflow));
    assert_eq!(budget.used(), 0, "an overflow end drops the queue");
}

/// Attaches `body` to `app` as the server would (route `/t`, a shutdown token of its own, no
/// connection watch), over HTTP/2 or not.
fn attach(body: &SseBody, app: &Arc<SseShared>, http2: bool) {
    body.attachment().attach(
        &link(tokio_util::sync::CancellationToken::new()),
        app,
        &Arc::from("/t"),
        http2,
    );
}

/// What a stream attaches to: `token` as the app's shutdown, no connection watch.
fn link(token: tokio_util::sync::CancellationToken) -> Arc<crate::context::StreamLink> {
    Arc::new(crate::context::StreamLink {
        shutdown: token,
        watch: None,
    })
}

/// Every idle stream carries its `Shared` (measured in BENCHMARKS.md's idle rows): the buffer
/// budget (issue 33) came at no byte of it (one pointer to what the app's streams share, where
/// the open-stream counter was; its charge and flag in padding); the HTTP/2 stall check
/// (issue 33) at one pointer, to its connection's watch (312 → 320). Smaller is issue 37's.
#[test]
fn a_stream_s_shared_state_does_not_grow() {
    // With the Arc's counts, the allocator's 304-byte class (336 before the two wait lists were
    // made by their first waiter). The shutdown roll's key fits because the shutdown `retry:` is
    // kept in milliseconds. (Smaller was tried, issue 37's eighth session: 264 bytes, the
    // 288-byte class, measured no less RSS per idle stream and a few percent less one-writer
    // fan-out at 10,000 clients; 248, the 272-byte class, ~55 bytes more RSS per stream.)
    let size = std::mem::size_of::<super::lifecycle::Shared>();
    assert!(size <= 280, "{size}");
}

/// Every idle stream's body is boxed for its whole life: its keep-alive is the app's (no timer
/// of its own, made only for a body polled unattached, in one box with the rare lifetime timer)
/// and its initial `retry:` is kept as a number, so the box is the allocator's 48-byte class (144
/// before, then 64).
#[test]
fn a_stream_s_body_stays_small() {
    let size = std::mem::size_of::<SseBody>();
    assert!(size <= 40, "{size}");
}

/// An event written to many streams with `write_encoded` is stored once: each stream pays only
/// its queue slot, so a fan-out's queues are charged what they cost (a plain `write` pays the
/// event's bytes and bookkeeping too).
#[tokio::test]
async fn a_shared_event_costs_each_stream_its_slot_only() {
    let (app, streams) = budgeted(64 * 1024 * 1024, || SseOptions::new().keep_alive(None), 100);
    let event = encode(&SseEvent::data("s".repeat(1000))).unwrap();
    for _ in 0..100 {
        for (writer, _) in &streams {
            writer.write_encoded(&event).unwrap();
        }
    }
    assert_charged(&app.budget, 100 * 100 * Budget::SLOT, 100);
    let (writer, _body) = &streams[0];
    writer.write("p".repeat(1000)).unwrap();
    let sole = Budget::SLOT + 1008 + Budget::PER_EVENT;
    assert_charged(&app.budget, 100 * 100 * Budget::SLOT + sole, 100);
    drop(streams);
    assert_eq!(app.budget.used(), 0);
}

/// Queued events are handed on coalesced into frames of whole events, at most 64 KiB on
/// HTTP/1.1 and 16 KiB on HTTP/2 (h2 holds a frame's whole buffer until its last byte is sent).
#[test]
fn frames_hold_whole_events_up_to_64_kib_or_16_kib_on_http2() {
    let event = "x".repeat(1000);
    let each = event.len() + "data: \n\n".len();
    for (http2, max_frame) in [(false, 64 * 1024), (true, 16 * 1024)] {
        let (writer, mut body) =
            get_sse_stream(SseOptions::new().keep_alive(None).buffer(1000, 1 << 20));
        attach(&body, &Arc::new(SseShared::default()), http2);
        for _ in 0..200 {
            writer.write(event.as_str()).unwrap();
        }
        let frame = ready(&mut body).unwrap();
        assert_eq!(frame.len(), max_frame / each * each, "http2: {http2}");
    }
}

/// A stream of at most three queued events that drops its oldest, attached to `app`.
fn three_events_dropping_oldest(app: &Arc<SseShared>) -> (SseWriter, SseBody) {
    let (writer, body) = get_sse_stream(
        SseOptions::new()
            .keep_alive(None)
            .buffer(3, 1 << 20)
            .overflow(Overflow::DropOldest),
    );
    attach(&body, app, false);
    (writer, body)
}

/// Events dropped from a queue (here by `DropOldest`) give back what they cost: a queue that
/// stays at three events of one size stays charged three events' cost (within the charge's
/// steps), drop after drop, and nothing once the body has taken them all.
#[test]
fn dropped_events_give_back_their_cost() {
    let app = Arc::new(SseShared::new(64 << 20));
    let (writer, mut body) = three_events_dropping_oldest(&app);
    // Encoded: "data: " + 992 + "\n\n" = 1,000 bytes.
    let event = "y".repeat(992);
    let each = Budget::SLOT + 1000 + Budget::PER_EVENT;
    for written in 1..=6 {
        writer.write(event.as_str()).unwrap();
        assert_charged(&app.budget, written.min(3) * each, 1);
    }
    assert_eq!(ready(&mut body).unwrap().len(), 3000);
    // The frame (the three events copied into one) is in the connection's hands: still held
    // until the connection asks for the next one, which it does once it took that one.
    assert_charged(&app.budget, 3000, 1);
    assert!(ready(&mut body).is_none());
    assert_eq!(app.budget.used(), 0);
}

/// A frame in the connection's hands counts as long as it is there when it is the stream's
/// own (a plain `write`'s event, or events copied into one frame), and not at all when it is an
/// event shared with other streams (`write_encoded`: stored once); a body dropped with one
/// there gives it back.
#[test]
fn the_frame_in_the_connection_s_hands_counts_when_it_is_the_stream_s_own() {
    let app = Arc::new(SseShared::new(64 << 20));
    let attached = || {
        let (writer, body) = get_sse_stream(SseOptions::new().keep_alive(None));
        attach(&body, &app, false);
        (writer, body)
    };
    let (writer, mut body) = attached();
    writer.write("x".repeat(992)).unwrap();
    assert_eq!(ready(&mut body).unwrap().len(), 1000);
    // A sole event, in the connection's hands.
    assert_charged(&app.budget, 1000, 1);
    let shared = encode(&SseEvent::data("s".repeat(992))).unwrap();
    writer.write_encoded(&shared).unwrap();
    assert_eq!(ready(&mut body).unwrap().len(), 1000);
    assert_eq!(app.budget.used(), 0, "a shared event counts nothing there");
    writer.write("y".repeat(992)).unwrap();
    assert!(ready(&mut body).is_some());
    assert_charged(&app.budget, 1000, 1);
    drop(body);
    assert_eq!(app.budget.used(), 0, "the dropped body gave it back");
    drop(writer);
    // A stream that ended before its body went (closed: it flushes, so nothing cleared its
    // queue's charge on the drop) gives the frame back too.
    let (writer, mut body) = attached();
    writer.write("z".repeat(992)).unwrap();
    assert!(ready(&mut body).is_some());
    writer.close();
    assert_charged(&app.budget, 1000, 1);
    drop(body);
    assert_eq!(
        app.budget.used(),
        0,
        "a body dropped after the end gave it back"
    );
}

/// A source's frame (a hub subscriber's) in the connection's hands counts the same way: its
/// bytes when they are the stream's own, nothing when shared, until the next poll.
#[test]
fn a_source_s_frame_in_the_connection_s_hands_counts_when_it_is_the_stream_s_own() {
    struct Frames(Vec<Bytes>);
    impl EventSource for Frames {
        fn poll_frame(
            &mut self,
            _cx: &mut std::task::Context<'_>,
            _max_frame: usize,
        ) -> std::task::Poll<Result<SourceFrame, EndReason>> {
            match self.0.pop() {
                Some(bytes) => std::task::Poll::Ready(Ok(SourceFrame::new(bytes, 1))),
                None => std::task::Poll::Pending,
            }
        }
    }
    let app = Arc::new(SseShared::new(64 << 20));
    let shared = Bytes::from(format!("data: {}\n\n", "s".repeat(992)));
    let own = Bytes::from(format!("data: {}\n\n", "o".repeat(992)));
    // Popped from the end: the stream's own frame first, then one shared with `shared`.
    let mut body = SseBody::from_source(
        SseOptions::new().keep_alive(None),
        Frames(vec![shared.clone(), own]),
    );
    attach(&body, &app, false);
    assert_eq!(ready(&mut body).unwrap().len(), 1000);
    assert_charged(&app.budget, 1000, 1); // the stream's own frame
    assert_eq!(ready(&mut body).unwrap().len(), 1000);
    assert_eq!(app.budget.used(), 0, "a shared frame counts nothing");
    assert!(ready(&mut body).is_none());
    assert_eq!(app.budget.used(), 0);
}

/// A frame takes whole events up to the connection's largest frame, and exactly up to it: 16
/// events of 1,024 bytes fill an HTTP/2 frame of 16 KiB.
#[test]
fn a_frame_fills_up_to_its_largest_size_exactly() {
    let (writer, mut body) =
        get_sse_stream(SseOptions::new().keep_alive(None).buffer(1000, 1 << 20));
    attach(&body, &Arc::new(SseShared::default()), true);
    for _ in 0..17 {
        writer.write("e".repeat(1016)).unwrap();
    }
    assert_eq!(ready(&mut body).unwrap().len(), 16 * 1024);
    assert_eq!(ready(&mut body).unwrap().len(), 1024);
}

/// A waker that looks at its stream when woken (as a custom executor's or a test's may): it
/// takes the stream's lock, so it must never run under it.
struct Peeking(SseWriter);

impl std::task::Wake for Peeking {
    fn wake(self: Arc<Self>) {
        let _ = self.0.queued();
    }
}

/// Runs `act` on a writer of a stream whose body waits with a [`Peeking`] waker, on a thread
/// of its own: `true` when it returned (a wake under the stream's lock deadlocks it).
fn returns_with_a_peeking_waker(options: SseOptions, act: fn(&SseWriter)) -> bool {
    use std::pin::Pin;
    use std::task::{Context, Poll};
    let (writer, mut body) = get_sse_stream(options);
    let waker = std::task::Waker::from(Arc::new(Peeking(writer.clone())));
    let poll = http_body::Body::poll_frame(Pin::new(&mut body), &mut Context::from_waker(&waker));
    assert!(matches!(poll, Poll::Pending), "nothing queued yet");
    let (done, returned) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        act(&writer);
        let _ = done.send(());
        drop(body);
    });
    // A guard, not a timing: the act returns at once unless it deadlocked.
    returned.recv_timeout(Duration::from_secs(10)).is_ok()
}

/// The body's waker runs after the stream's lock is released: on a write, on a write with an
/// automatic id (the way through the overflow policy), and on `close()`.
#[test]
fn the_body_is_woken_outside_the_stream_lock() {
    let options = || SseOptions::new().keep_alive(None);
    assert!(
        returns_with_a_peeking_waker(options(), |w| w.write("a").unwrap()),
        "a write woke the body under the stream's lock"
    );
    assert!(
        returns_with_a_peeking_waker(options().auto_id(1), |w| w.write("a").unwrap()),
        "a write with an automatic id woke the body under the stream's lock"
    );
    assert!(
        returns_with_a_peeking_waker(options(), SseWriter::close),
        "close() woke the body under the stream's lock"
    );
}

/// A stream's charge moves in [`Budget::STEP`]s: 32 shared events (16-byte slots) are one step,
/// charged by the first of them; a charge less than two steps above what the stream holds
/// stays, one two steps or more above it comes down to it rounded up to a step; a stream
/// holding nothing is charged nothing.
#[test]
fn a_stream_s_charge_moves_in_steps() {
    let app = Arc::new(SseShared::new(64 << 20));
    let (writer, mut body) = three_events_dropping_oldest(&app);
    let step = Budget::STEP;
    // 400 bytes encoded: 496 with its slot and bookkeeping.
    let sole = "y".repeat(392);
    for _ in 0..3 {
        writer.write(sole.as_str()).unwrap();
    }
    // 1,488 held: charged up to the next step.
    assert_eq!(app.budget.used(), 1536);
    // Shared events drop the sole ones, oldest first: 1,008 then 534 held (the bookkeeping
    // given back in proportion to the bytes dropped), less than two steps below the charge,
    // which stays; then 69, more than two steps below: down to one step.
    let shared = encode(&SseEvent::data("s")).unwrap();
    for expected in [1536, 1536, 512] {
        writer.write_encoded(&shared).unwrap();
        assert_eq!(app.budget.used(), expected);
    }
    // Drained: the frame in the connection's hands (27 bytes) keeps the step; once the
    // connection asks for the next, nothing is held, and nothing is charged.
    assert_eq!(ready(&mut body).unwrap().len(), 27);
    assert_eq!(app.budget.used(), 512);
    assert!(ready(&mut body).is_none());
    assert_eq!(app.budget.used(), 0, "nothing held, nothing charged");

    let (writers, _bodies): (Vec<_>, Vec<_>) = (0..2)
        .map(|_| {
            let (writer, body) = get_sse_stream(SseOptions::new().keep_alive(None));
            attach(&body, &app, false);
            (writer, body)
        })
        .unzip();
    for n in 1..=32 {
        write_to_all(&writers, &shared);
        assert_eq!(app.budget.used(), 2 * step, "after {n}");
    }
    write_to_all(&writers, &shared);
    assert_eq!(app.budget.used(), 4 * step);
}

/// Writes `event` to every one of `writers`, as an app's loop over its clients does.
fn write_to_all(writers: &[SseWriter], event: &EncodedEvent) {
    for writer in writers {
        writer.write_encoded(event).unwrap();
    }
}
