//! Unit tests of the rules: what a create, an append and a read do, and which 4xx they are.

use bytes::Bytes;
use http::StatusCode;

use super::*;
use crate::config::DurableConfig;

fn create(content_type: &str, body: &str) -> CreateRequest {
    CreateRequest {
        content_type: Some(content_type.to_owned()),
        ttl: None,
        expires_at: None,
        closed: false,
        fork: None,
        body: Bytes::copy_from_slice(body.as_bytes()),
    }
}

fn post(content_type: &str, body: &str) -> AppendRequest {
    AppendRequest {
        content_type: Some(content_type.to_owned()),
        seq: None,
        producer: None,
        close: false,
        body: Bytes::copy_from_slice(body.as_bytes()),
    }
}

fn stream(content_type: &str, body: &str) -> (Meta, Vec<Chunk>) {
    new_stream(
        &create(content_type, body),
        None,
        1,
        0,
        &DurableConfig::default(),
    )
    .unwrap()
}

#[test]
fn json_mode_flattens_one_level_and_rejects_empty_arrays() {
    let (mut meta, mut chunks) = stream("application/json", "[]");
    assert_eq!(meta.tail, 0);
    let config = DurableConfig::default();
    let (_, added) = append(
        &mut meta,
        &post("application/json", r#"[{"a":1},[2,3]]"#),
        0,
        0,
        &config,
    )
    .unwrap();
    chunks.extend(added);
    assert_eq!(meta.tail, 2);
    let err = append(&mut meta, &post("application/json", "[]"), 0, 0, &config).unwrap_err();
    assert_eq!(err.status, StatusCode::BAD_REQUEST);
    let err = append(&mut meta, &post("application/json", "{nope"), 0, 0, &config).unwrap_err();
    assert!(err.message.contains("not valid JSON"));
    let (data, next) = collect(&chunks, true, 1, 1024);
    let read = outcome(&meta, 1, data, next);
    assert_eq!(&read.body()[..], b"[[2,3]]");
    assert!(read.up_to_date());
}

#[test]
fn a_rejected_append_leaves_the_stream_unchanged() {
    let (mut meta, _) = stream("text/plain", "abc");
    let config = DurableConfig::default().max_stream_bytes(5);
    let before = serde_json::to_string(&meta).unwrap();
    let mut seq = post("text/plain", "d");
    seq.seq = Some("b".into());
    append(&mut meta, &seq, 0, 0, &config).unwrap();
    let after_first = serde_json::to_string(&meta).unwrap();
    assert_ne!(before, after_first);
    for (req, status) in [
        (
            {
                let mut r = post("text/plain", "e");
                r.seq = Some("a".into());
                r
            },
            StatusCode::CONFLICT,
        ),
        (post("application/json", "1"), StatusCode::CONFLICT),
        (post("text/plain", "toolong"), StatusCode::PAYLOAD_TOO_LARGE),
        (post("text/plain", ""), StatusCode::BAD_REQUEST),
    ] {
        let err = append(&mut meta, &req, 0, 0, &config).unwrap_err();
        assert_eq!(err.status, status, "{}", err.message);
        assert_eq!(
            serde_json::to_string(&meta).unwrap(),
            after_first,
            "{}",
            err.message
        );
    }
}

#[test]
fn producers_are_fenced_by_epoch_and_deduplicated_by_seq() {
    let (mut meta, _) = stream("text/plain", "");
    let config = DurableConfig::default();
    let with = |epoch, seq| {
        let mut r = post("text/plain", "x");
        r.producer = Some(ProducerTuple {
            id: "p".into(),
            epoch,
            seq,
        });
        r
    };
    assert_eq!(
        append(&mut meta, &with(1, 0), 0, 0, &config)
            .unwrap()
            .0
            .status,
        StatusCode::OK
    );
    assert_eq!(
        append(&mut meta, &with(1, 1), 0, 0, &config)
            .unwrap()
            .0
            .status,
        StatusCode::OK
    );
    let dup = append(&mut meta, &with(1, 0), 0, 0, &config).unwrap().0;
    assert_eq!(
        (dup.status, dup.producer),
        (StatusCode::NO_CONTENT, Some((1, 1)))
    );
    let gap = append(&mut meta, &with(1, 5), 0, 0, &config).unwrap_err();
    assert_eq!(gap.status, StatusCode::CONFLICT);
    assert!(gap
        .headers
        .iter()
        .any(|(n, v)| n == "producer-expected-seq" && v == "2"));
    let stale = append(&mut meta, &with(0, 0), 0, 0, &config).unwrap_err();
    assert_eq!(stale.status, StatusCode::FORBIDDEN);
    assert_eq!(meta.tail, 2);
}

#[test]
fn sliding_ttl_and_absolute_expiry() {
    let (mut meta, _) = stream("text/plain", "");
    meta.ttl = Some(10);
    assert!(!meta.expired(9_999));
    assert!(meta.expired(10_000));
    meta.touch(5_000);
    assert!(!meta.expired(14_999));
    meta.ttl = None;
    meta.expires_at_ms = Some(100);
    assert!(meta.expired(100));
}

#[test]
fn forks_copy_up_to_the_fork_point_and_inherit_expiry() {
    let (mut src, mut chunks) = stream("text/plain", "hello");
    src.ttl = Some(60);
    chunks.extend(
        append(
            &mut src,
            &post("text/plain", " world"),
            0,
            0,
            &DurableConfig::default(),
        )
        .unwrap()
        .1,
    );
    let mut req = create("text/plain", "!");
    req.content_type = None;
    req.fork = Some(ForkRequest {
        source: "/s".into(),
        offset: Some(0),
        sub: 3,
    });
    let source = ForkSource {
        meta: &src,
        chunks: chunks.clone(),
    };
    let (fork, fork_chunks) =
        new_stream(&req, Some(source), 2, 0, &DurableConfig::default()).unwrap();
    assert_eq!(
        (fork.ttl, fork.tail, fork.content_type.as_str()),
        (Some(60), 4, "text/plain")
    );
    let (data, _) = collect(&fork_chunks, false, 0, 1024);
    assert_eq!(data.concat(), b"hel!");
    req.fork = Some(ForkRequest {
        source: "/s".into(),
        offset: Some(src.tail),
        sub: 1,
    });
    let source = ForkSource { meta: &src, chunks };
    assert_eq!(
        new_stream(&req, Some(source), 3, 0, &DurableConfig::default())
            .unwrap_err()
            .status,
        StatusCode::BAD_REQUEST
    );
}

#[test]
fn wakeups_are_bounded_by_live_readers() {
    let wakeups = crate::store::Wakeups::default();
    let rx = wakeups.subscribe("/a");
    wakeups.notify("/a");
    assert!(rx.has_changed().unwrap());
    drop(rx);
    wakeups.notify("/a");
    assert_eq!(wakeups.len(), 0);
}
