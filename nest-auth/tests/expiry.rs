//! A stream authorized by a token ends at the token's expiry plus the grace, with `event:
//! reauth` and a `retry:`; the client, with a refreshed token, resumes after its last id and
//! gets every event published meanwhile. Under tokio's paused clock: no sleeps.

use std::time::Duration;

use bytes::Bytes;
use http_body_util::BodyExt;
use nest_auth::{Authenticator, AuthorizedHub, Grant, Key, REAUTH_EVENT};
use nest_core::body::Body;
use nest_core::sse::LastEventId;
use nest_hub::{Hub, HubOptions, MemoryBackend, Retention};
use tokio::time::Instant;

fn authenticator() -> Authenticator {
    Authenticator::builder()
        .key(Key::hmac("k1", &[7; 32]).unwrap())
        .audience("rooms")
        .grace(Duration::from_secs(2))
        .reauth_retry(Duration::from_millis(500))
        .build()
        .unwrap()
}

fn hub(auth: &Authenticator) -> AuthorizedHub {
    let hub = Hub::with_backend(
        MemoryBackend::new(Retention::default()),
        HubOptions::new().keep_alive(None),
    );
    AuthorizedHub::new(hub, auth.clone())
}

async fn next(body: &mut Body) -> Option<String> {
    let frame = body.frame().await?.expect("no body error");
    let data: Bytes = frame.into_data().expect("a data frame");
    Some(String::from_utf8(data.to_vec()).unwrap())
}

/// The `id:` of the last event in `text`.
fn last_id(text: &str) -> String {
    text.lines()
        .rev()
        .find_map(|l| l.strip_prefix("id: "))
        .expect("an id")
        .to_owned()
}

#[tokio::test(start_paused = true)]
async fn a_stream_ends_at_expiry_plus_grace_with_reauth_and_resumes_without_loss() {
    let auth = authenticator();
    let hub = hub(&auth);
    let grant = Grant::new("ada")
        .subscribe(["rooms/a"])
        .publish(["rooms/a"])
        .ttl(Duration::from_secs(10));
    let claims = auth.verify(auth.issue(&grant).unwrap().as_str()).unwrap();
    // `exp` is in whole seconds: the token has between 9 and 10 s left.
    let left = claims.expires_in();
    assert!(
        left > Duration::from_secs(8) && left <= Duration::from_secs(10),
        "{left:?}"
    );

    let start = Instant::now();
    let res = hub
        .subscribe(&claims, "rooms/a", &LastEventId(None))
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let mut body = res.into_body();
    hub.publish(&claims, "rooms/a", "one").await.unwrap();
    let one = next(&mut body).await.unwrap();
    assert!(one.contains("data: one\n"), "{one}");

    // Nothing at expiry alone: the grace runs first.
    tokio::time::advance(left).await;
    hub.publish(&claims, "rooms/a", "two").await.unwrap();
    let two = next(&mut body).await.unwrap();
    assert!(two.contains("data: two\n"), "{two}");
    assert!(start.elapsed() < left + Duration::from_secs(2));

    // Then, at expiry + grace: the reauth event with its retry, and the end.
    let reauth = next(&mut body).await.unwrap();
    let ended_at = start.elapsed();
    assert_eq!(
        reauth,
        format!("event: {REAUTH_EVENT}\nretry: 500\ndata: {{\"reason\":\"expired\"}}\n\n"),
    );
    // `exp` is read from the wall clock when the stream starts (a little after `left` was), and
    // tokio's timer rounds up to the millisecond.
    let due = left + Duration::from_secs(2);
    assert!(
        ended_at <= due + Duration::from_millis(2) && ended_at + Duration::from_millis(50) >= due,
        "ended {ended_at:?} after the start, due at expiry + grace = {due:?}"
    );
    assert!(
        next(&mut body).await.is_none(),
        "the stream ends after reauth"
    );
    drop(body);
    assert_eq!(hub.hub().stats("rooms/a").subscribers, 0);

    // While the client refreshes, the room goes on.
    let server_side = auth
        .verify(
            auth.issue(&Grant::new("bot").publish(["rooms/*"]))
                .unwrap()
                .as_str(),
        )
        .unwrap();
    hub.publish(&server_side, "rooms/a", "three").await.unwrap();
    hub.publish(&server_side, "rooms/a", "four").await.unwrap();

    // The refreshed token resumes after the last id the client saw: three and four, once.
    let refreshed = auth
        .verify(auth.issue(&claims.to_grant()).unwrap().as_str())
        .unwrap();
    let resumed = hub
        .subscribe(&refreshed, "rooms/a", &LastEventId(Some(last_id(&two))))
        .await
        .unwrap();
    let mut body = resumed.into_body();
    let mut text = String::new();
    while !text.contains("data: four\n") {
        text.push_str(&next(&mut body).await.unwrap());
    }
    let data: Vec<&str> = text
        .lines()
        .filter_map(|l| l.strip_prefix("data: "))
        .collect();
    assert_eq!(data, ["three", "four"]);
}

#[tokio::test(start_paused = true)]
async fn a_stream_that_ends_for_another_reason_sends_no_reauth() {
    let auth = authenticator();
    let hub = hub(&auth);
    let claims = auth
        .verify(
            auth.issue(&Grant::new("ada").subscribe(["rooms/a"]))
                .unwrap()
                .as_str(),
        )
        .unwrap();
    let mut body = hub
        .subscribe(&claims, "rooms/a", &LastEventId(None))
        .await
        .unwrap()
        .into_body();
    // A quiet stream is just pending (no keep-alive in this hub): nothing before the deadline.
    let quiet = tokio::time::timeout(Duration::from_secs(60), next(&mut body)).await;
    assert!(
        quiet.is_err(),
        "nothing within a minute of a 15 minute token"
    );
    drop(body);
    assert_eq!(hub.hub().stats("rooms/a").subscribers, 0);
}
