//! Hostile clients against the LLM example (issue 31): a stolen or guessed answer id reads
//! nothing, and a flood of anonymous answers is refused at the instance's limit without taking
//! the hub from anyone else.

#[path = "../examples/llm.rs"]
#[allow(
    dead_code,
    unreachable_pub,
    reason = "the example's `main` is not run here"
)]
mod llm;

use std::time::Duration;

use nest::sse::resumable::ResumableOptions;

const WAIT: Duration = Duration::from_secs(10);

/// The first SSE frame of `res`, within [`WAIT`].
async fn first_frame(res: &mut reqwest::Response) -> String {
    let chunk = tokio::time::timeout(WAIT, res.chunk())
        .await
        .expect("a frame in time")
        .unwrap()
        .expect("a frame before the end");
    String::from_utf8(chunk.to_vec()).unwrap()
}

fn last_id(frame: &str) -> String {
    frame
        .lines()
        .filter_map(|l| l.strip_prefix("id: "))
        .next_back()
        .expect("an id")
        .to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn another_client_with_the_answer_id_reads_nothing() {
    let server = llm::app(Duration::from_millis(50))
        .bind(([127, 0, 0, 1], 0))
        .await
        .unwrap();
    let page = format!("http://{}/", server.local_addr());
    let url = format!("http://{}/chat", server.local_addr());
    let victim = reqwest::Client::new();
    // The page gives the browser its owner cookie.
    let res = victim.get(&page).send().await.unwrap();
    let cookie = res
        .headers()
        .get("set-cookie")
        .expect("an owner cookie")
        .to_str()
        .unwrap()
        .to_owned();
    assert!(
        cookie.contains("HttpOnly") && cookie.contains("SameSite=Strict"),
        "{cookie}"
    );
    let owner = cookie.split(';').next().unwrap().to_owned();
    let mut answer = victim
        .post(&url)
        .header("cookie", &owner)
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), 200);
    let frame = first_frame(&mut answer).await;
    let id = last_id(&frame);
    // The stream's part of the id is 128 random bits, not `answer-1`.
    let stream = id.rsplit_once(':').unwrap().0;
    assert_eq!(stream.len(), 32, "{id}");
    assert!(stream.bytes().all(|c| c.is_ascii_hexdigit()), "{id}");

    // Someone else presents the id: without a cookie, with a cookie of their own, with a forged
    // one.
    let attacker = reqwest::Client::new();
    for cookie in [
        None,
        Some("llm_owner=0123456789abcdef0123456789abcdef"),
        Some("llm_owner=x"),
    ] {
        let mut req = attacker.post(&url).header("last-event-id", &id).body("{}");
        if let Some(cookie) = cookie {
            req = req.header("cookie", cookie);
        }
        let res = req.send().await.unwrap();
        assert_eq!(res.status(), 404, "{cookie:?}");
        let body = res.text().await.unwrap();
        assert!(!body.contains("data:"), "{body}");
    }
    // The owner resumes.
    let mut resumed = victim
        .post(&url)
        .header("last-event-id", &id)
        .header("cookie", &owner)
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_eq!(resumed.status(), 200);
    assert!(first_frame(&mut resumed).await.contains("data: "));
    server.shutdown(Duration::from_secs(1)).await;
}

/// `count` answers asked of an app with slow answers (all still held) and `options`, each with
/// `cookie` when given: their statuses, then one more without a cookie (another browser).
async fn statuses(
    options: ResumableOptions,
    count: usize,
    cookie: Option<&str>,
) -> (Vec<u16>, u16) {
    let server = llm::app_with(Duration::from_secs(30), options)
        .bind(([127, 0, 0, 1], 0))
        .await
        .unwrap();
    let url = format!("http://{}/chat", server.local_addr());
    let client = reqwest::Client::new();
    let mut statuses = Vec::new();
    let mut open = Vec::new();
    for _ in 0..count {
        let mut req = client.post(&url).body("{}");
        if let Some(cookie) = cookie {
            req = req.header("cookie", cookie);
        }
        let res = req.send().await.unwrap();
        statuses.push(res.status().as_u16());
        open.push(res);
    }
    let other = client.post(&url).body("{}").send().await.unwrap();
    let other_status = other.status().as_u16();
    drop((open, other));
    server.shutdown(Duration::from_secs(1)).await;
    (statuses, other_status)
}

/// One browser (one owner cookie) holds at most `max_streams_per_owner` answers: 429 past it;
/// another browser is not affected.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_owner_is_refused_past_its_own_limit() {
    let cookie = "llm_owner=0123456789abcdef0123456789abcdef";
    let options = ResumableOptions::new().max_streams_per_owner(3);
    let (owner, other) = statuses(options, 5, Some(cookie)).await;
    assert_eq!(owner, [200, 200, 200, 429, 429]);
    assert_eq!(other, 200);
}

/// A flood of anonymous answers is refused at the instance's limit (20 here, 10,000 by
/// default) with 503, nothing stored.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flood_of_anonymous_answers_is_refused_at_the_limit() {
    let (flood, after) = statuses(ResumableOptions::new().max_streams(20), 30, None).await;
    assert_eq!(flood.iter().filter(|s| **s == 200).count(), 20, "{flood:?}");
    assert_eq!(flood.iter().filter(|s| **s == 503).count(), 10, "{flood:?}");
    assert_eq!(after, 503);
}
