//! HTTPS in a real browser (feature `tls`): over TLS Chromium speaks HTTP/2, so one page holds
//! 12 event streams to one origin; over cleartext HTTP/1.1 it holds six, and the seventh opens
//! only when one of the six closes (the limit TLS exists to lift).
//!
//! Same setup as `tests/browser.rs` (Debian chromium + chromedriver; a loud skip without them,
//! a failure under `CI`); the certificate is made here with rcgen.
#![cfg(feature = "tls")]

#[path = "browser/driver.rs"]
mod driver;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use nest::prelude::*;
use nest::server::TlsConfig;
use nest::{NestService, Server};
use serde_json::Value;

use driver::Browser;

/// The protocol of every `/events` request the server saw, in order.
#[derive(Clone, Default)]
struct Seen(Arc<Mutex<Vec<http::Version>>>);

struct Page {
    seen: Seen,
}

impl Controller for Page {
    fn routes(r: &mut Routes<Self>) {
        r.get("/", |_: Arc<Self>| async { Html(PAGE) });
        r.sse("/events", |this: Arc<Self>, req: Request| async move {
            this.seen.0.lock().unwrap().push(req.version());
            let (writer, body) = get_sse_stream(SseOptions::new());
            writer.write("open").unwrap();
            body.on_cancel(move |_| drop(writer))
        });
    }
}

const PAGE: &str = r#"<!doctype html><meta charset="utf-8"><title>12 streams</title>
<script>
  window.got = Array(12).fill(0);
  window.sources = [];
  for (let i = 0; i < 12; i++) {
    const source = new EventSource('/events?i=' + i);
    source.onmessage = () => { window.got[i] += 1; };
    window.sources.push(source);
  }
</script>"#;

fn app(seen: &Seen) -> NestService {
    NestApp::new()
        .controller(Page { seen: seen.clone() })
        .into_service()
        .unwrap()
}

fn streams_with_events(v: &Value) -> usize {
    v.as_array()
        .map_or(0, |a| a.iter().filter(|n| n.as_u64() > Some(0)).count())
}

const OPEN: &str = "return window.got;";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn over_https_one_page_holds_twelve_streams_on_http2() {
    let Some(browser) = Browser::launch().await else {
        return;
    };
    let cert = rcgen::generate_simple_self_signed(vec!["localhost".into()]).unwrap();
    let tls = TlsConfig::from_pem(cert.cert.pem(), cert.signing_key.serialize_pem()).unwrap();
    let seen = Seen::default();
    let server = Server::bind_tls(([127, 0, 0, 1], 0), app(&seen), tls)
        .await
        .unwrap();
    browser
        .goto(&format!(
            "https://localhost:{}/",
            server.local_addr().port()
        ))
        .await;
    browser
        .wait_for("all 12 EventSources to receive an event", OPEN, |v| {
            streams_with_events(v) == 12
        })
        .await;
    let page_protocol = browser
        .eval("return performance.getEntriesByType('navigation')[0].nextHopProtocol;")
        .await;
    assert_eq!(page_protocol, "h2", "the page came over HTTP/2");
    let versions = seen.0.lock().unwrap().clone();
    assert_eq!(versions.len(), 12);
    assert!(
        versions.iter().all(|v| *v == http::Version::HTTP_2),
        "{versions:?}"
    );
    browser.close().await;
    server.shutdown(Duration::from_secs(1)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn over_cleartext_http1_the_seventh_stream_waits_for_one_to_close() {
    let Some(browser) = Browser::launch().await else {
        return;
    };
    let seen = Seen::default();
    let server = Server::bind(([127, 0, 0, 1], 0), app(&seen)).await.unwrap();
    browser
        .goto(&format!("http://localhost:{}/", server.local_addr().port()))
        .await;
    browser
        .wait_for("six EventSources to receive an event", OPEN, |v| {
            streams_with_events(v) == 6
        })
        .await;
    assert_eq!(
        seen.0.lock().unwrap().len(),
        6,
        "Chromium holds at most six HTTP/1.1 connections per origin"
    );
    // Closing one frees a connection: only then does the seventh stream reach the server.
    browser
        .eval("window.sources[window.got.findIndex(n => n > 0)].close(); return true;")
        .await;
    browser
        .wait_for("a seventh stream once one closed", OPEN, |v| {
            streams_with_events(v) == 7
        })
        .await;
    let versions = seen.0.lock().unwrap().clone();
    assert_eq!(versions.len(), 7);
    assert!(
        versions.iter().all(|v| *v == http::Version::HTTP_11),
        "{versions:?}"
    );
    browser.close().await;
    server.shutdown(Duration::from_secs(1)).await;
}
