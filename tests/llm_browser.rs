//! The LLM example in a real browser: a reload in the middle of an answer resumes it with
//! `Last-Event-ID` on the retried POST, and the page shows the whole answer exactly once.
//!
//! Same setup as `tests/browser.rs` (Debian chromium + chromedriver; a loud skip without them,
//! a failure under `CI`).

#[path = "../examples/llm.rs"]
#[allow(
    dead_code,
    unreachable_pub,
    reason = "the example's `main` is not run here"
)]
mod llm;

#[path = "browser/driver.rs"]
mod driver;

use std::time::Duration;

use driver::Browser;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reload_mid_answer_resumes_and_shows_the_answer_exactly_once() {
    let Some(browser) = Browser::launch().await else {
        return;
    };
    let server = llm::app(Duration::from_millis(80))
        .bind(([127, 0, 0, 1], 0))
        .await
        .unwrap();
    let url = format!("http://127.0.0.1:{}/", server.local_addr().port());
    browser.goto(&url).await;
    browser
        .eval("localStorage.clear(); document.getElementById('ask').click(); return true;")
        .await;
    let tokens = llm::tokens();
    let partial = browser
        .wait_for(
            "a few tokens",
            "return document.getElementById('answer').textContent;",
            |v| v.as_str().is_some_and(|t| t.split(' ').count() >= 4),
        )
        .await;
    let partial = partial.as_str().unwrap().to_owned();
    assert!(
        partial.len() < llm::ANSWER.len() / 2,
        "still mid-answer: {partial:?}"
    );

    browser.goto(&url).await; // the reload
    browser
        .wait_for(
            "the answer to finish",
            "return document.body.dataset.state || '';",
            |v| v == "done",
        )
        .await;
    let shown = browser
        .eval("return document.getElementById('answer').textContent;")
        .await;
    assert_eq!(shown.as_str().unwrap(), llm::ANSWER);
    assert_eq!(tokens.concat(), llm::ANSWER);
    browser.close().await;
    server.shutdown(Duration::from_secs(1)).await;
}
