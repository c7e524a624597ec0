//! The chaos test (issue 28): nothing acknowledged is lost, duplicated or reordered while nodes
//! die, Redis restarts and the network cuts and stalls connections; what is lost for real (an
//! in-process hub's memory, Redis without persistence) is announced by a gap event.
//!
//! Each scenario runs real processes: nest nodes (this test binary run again as `chaos_node`:
//! the chat example's app, plus resumable streams), a `redis-server` of its own (free port,
//! temp directory, stopped by pid), and a TCP proxy per node (`chaos/proxy.rs`) that cuts
//! connections mid-frame or freezes them on command. Publishers post to any node with an
//! `Idempotency-Key` and retry every failed post with the same key until it is acknowledged;
//! subscribers (nest-sse-client) hop between nodes with `Last-Event-ID` at random moments.
//! Faults are injected meanwhile, from a seeded schedule. At the end the publishers stop, a
//! fence event is published, every subscriber reads up to it, and the checker
//! (`chaos/checker.rs`) goes over every acknowledged event for every subscriber: 0 lost, 0
//! duplicated, 0 out of order, every gap event a real loss.
//!
//! - `redis_with_aof`: two nodes on Redis with `appendfsync always`; faults: SIGKILL and
//!   restart of a node, a graceful restart (SIGTERM), Redis SIGKILLed and restarted, cuts,
//!   stalls, and cuts and stalls between the nodes and Redis (through a proxy too: a reply lost
//!   or later than the call's timeout, so a publish fails that Redis may have stored). No gap
//!   event may appear at all (nothing is lost, retention is not exceeded).
//! - `redis_without_aof`: the same with Redis keeping nothing: its restarts lose data, a new
//!   epoch begins, and what subscribers missed must be announced by the reset.
//! - `in_process_restarts`: one node on the in-process hub, killed and restarted (each start
//!   is a new epoch), cuts and stalls.
//! - `in_process_graceful_restarts`: graceful restarts only, subscribers that keep their streams:
//!   no event of an epoch's tail may be lost (the shutdown flushes every acknowledged event).
//! - `resumable_streams`: a stream produced on one node, read on the other, while the producer's
//!   node is killed or Redis restarts: the reader ends with every chunk, or with an `error`
//!   event or a 404 — never a clean end with chunks missing.
//!
//! Size and seed: `NEST_CHAOS_FAULTS` (faults per scenario; default 24) and `NEST_CHAOS_SEED`
//! (default: from the clock). Each scenario prints a `CHAOS` line with its figures and the
//! seed. Every wait has a deadline that fails with what it waited for. Without `redis-server`
//! the Redis scenarios SKIP loudly (and append to `NEST_SKIP_LOG`), or fail under `CI`.
//!
//! Run: `cargo test --all-features --test chaos -- --nocapture`; the large run of
//! RELIABILITY.md: `NEST_CHAOS_SEED=28 NEST_CHAOS_FAULTS=1000 cargo test --all-features --test
//! chaos -- --nocapture --test-threads 1`.

#[path = "../examples/chat.rs"]
#[allow(
    dead_code,
    unreachable_pub,
    reason = "the example's `main` is not run here"
)]
mod chat;
#[path = "chaos/checker.rs"]
mod checker;
#[path = "chaos/node.rs"]
mod node;
#[path = "chaos/proxy.rs"]
mod proxy;
#[cfg(feature = "redis")]
#[path = "../nest-hub/tests/redis/server.rs"]
#[allow(
    dead_code,
    reason = "the Redis test's support, of which this test uses a part"
)]
mod server;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use nest::sse_client::EventSource;
use serde_json::{json, Value};
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio::time::Instant;

use checker::{Id, Rules, Seen};
use node::Node;
use proxy::{Fault, Proxy};

/// The default number of faults per scenario (`NEST_CHAOS_FAULTS`).
const DEFAULT_FAULTS: usize = 24;
/// Publishers and subscribers per scenario.
const PUBLISHERS: usize = 3;
const SUBSCRIBERS: usize = 4;
/// How long a post may take to be acknowledged, retries included, before the run fails.
const PUBLISH_DEADLINE: Duration = Duration::from_secs(60);
/// How long the subscribers may take to read up to the fence at the end.
const DRAIN_DEADLINE: Duration = Duration::from_secs(60);
/// In the drain, a stream silent this long is left for another (a stall watchdog).
const SILENCE: Duration = Duration::from_secs(2);

/// The scenarios share the machine's two cores: one at a time.
static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

// ===== the node entry point =====

/// Not a test: the chaos scenarios run this binary again with `NEST_CHAOS_NODE_PORT` set, and
/// this serves a node until SIGTERM (see `chaos/node.rs`).
#[test]
#[ignore = "a chaos node, started by the chaos scenarios as a process of its own"]
fn chaos_node() {
    let Ok(port) = std::env::var("NEST_CHAOS_NODE_PORT") else {
        eprintln!("chaos_node serves only when the chaos scenarios start it");
        return;
    };
    let port: u16 = port.parse().expect("NEST_CHAOS_NODE_PORT is a port");
    let redis = std::env::var("NEST_CHAOS_NODE_REDIS")
        .ok()
        .filter(|url| !url.is_empty());
    let _ = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .try_init();
    runtime().block_on(node::serve(port, redis));
}

// ===== the scenarios =====

#[cfg(feature = "redis")]
#[test]
fn redis_with_aof() {
    let scenario = Scenario {
        name: "redis_with_aof",
        nodes: 2,
        redis: Some(true),
        faults: faults(),
        kinds: &[
            Kind::Kill,
            Kind::Restart,
            Kind::Redis,
            Kind::Cut,
            Kind::Freeze,
            Kind::RedisCut,
            Kind::RedisStall,
        ],
        rules: Rules {
            retention: chat::RETENTION.max_events as u64,
            epoch_changes: false,
        },
        hops: true,
    };
    run(scenario);
}

#[cfg(feature = "redis")]
#[test]
fn redis_without_aof() {
    let scenario = Scenario {
        name: "redis_without_aof",
        nodes: 2,
        redis: Some(false),
        faults: (faults() / 3).max(4),
        kinds: &[Kind::Redis, Kind::Kill, Kind::Cut, Kind::RedisCut],
        rules: Rules {
            retention: chat::RETENTION.max_events as u64,
            epoch_changes: true,
        },
        hops: true,
    };
    run(scenario);
}

#[test]
fn in_process_restarts() {
    let scenario = Scenario {
        name: "in_process_restarts",
        nodes: 1,
        redis: None,
        faults: faults(),
        kinds: &[Kind::Kill, Kind::Restart, Kind::Cut, Kind::Freeze],
        rules: Rules {
            retention: chat::RETENTION.max_events as u64,
            epoch_changes: true,
        },
        hops: true,
    };
    run(scenario);
}

/// Resumable request streams across instances: produced on one node, read on the other, while
/// the producer's node is SIGKILLed or Redis restarts (or nothing happens, as a control).
#[cfg(feature = "redis")]
#[test]
fn resumable_streams() {
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|p| p.into_inner());
    let scenario = Scenario {
        name: "resumable_streams",
        nodes: 2,
        redis: Some(true),
        faults: (faults() / 3).max(6),
        kinds: &[Kind::Kill, Kind::Redis, Kind::Cut],
        rules: Rules {
            retention: chat::RETENTION.max_events as u64,
            epoch_changes: false,
        },
        hops: true,
    };
    let seed = seed();
    runtime().block_on(async {
        let started = Instant::now();
        if let Some(mut world) = World::start(&scenario, seed).await {
            world.resumable(&scenario, seed, started).await;
        }
    });
}

/// A graceful shutdown delivers every event acknowledged before it to the open streams, over
/// the wire (the in-process hub's events are gone with the process: the client would never get
/// them again).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_graceful_shutdown_delivers_every_acknowledged_event_over_the_wire() {
    let hub = chat::hub();
    let server = nest::test_util::TestServer::start(chat::app(hub.clone())).await;
    let hello = hub
        .publish_idempotent("chat", "hello", chat_event("hello"))
        .await
        .unwrap();
    let mut readers = Vec::new();
    for _ in 0..4 {
        let source = EventSource::builder(server.url("/events")).reconnect(false);
        let mut events = source.build().unwrap().into_events();
        let first = within("the history", events.next()).await.unwrap().unwrap();
        assert_eq!(first.id, hello);
        readers.push(tokio::spawn(async move {
            let mut ids = Vec::new();
            while let Some(Ok(event)) = events.next().await {
                ids.push(event.id);
            }
            ids
        }));
    }
    let mut published = Vec::new();
    for n in 0..500 {
        let key = format!("k{n}");
        published.push(
            hub.publish_idempotent("chat", &key, chat_event(&key))
                .await
                .unwrap(),
        );
    }
    server.shutdown().await;
    for reader in readers {
        let ids = join("a reader's end", reader, Duration::from_secs(30)).await;
        assert_eq!(ids, published, "every acknowledged event, then the end");
    }
}

fn chat_event(text: &str) -> nest::sse::SseEvent {
    nest::sse::SseEvent::json(&json!({ "user": "chaos", "text": text })).event("message")
}

/// Graceful restarts of an in-process node under subscribers that keep their streams (no hops,
/// cuts or stalls): every event acknowledged before a shutdown reaches every open stream, so
/// no subscriber misses the tail of an epoch that ended gracefully (it may miss a whole epoch it
/// had no stream in, announced by `reset`).
#[test]
fn in_process_graceful_restarts_lose_no_tail() {
    let scenario = Scenario {
        name: "in_process_graceful_restarts",
        nodes: 1,
        redis: None,
        faults: (faults() / 3).max(6),
        kinds: &[Kind::Restart],
        rules: Rules {
            retention: chat::RETENTION.max_events as u64,
            epoch_changes: true,
        },
        hops: false,
    };
    run(scenario);
}

/// The chat example's `POST /messages` with `Idempotency-Key`: a retry answers the first id
/// and stores nothing; keys are bounded.
#[tokio::test]
async fn the_chat_example_stores_a_retried_post_once() {
    let hub = chat::hub();
    let server = nest::test_util::TestServer::start(chat::app(hub.clone())).await;
    let client = reqwest::Client::new();
    let post = |key: Option<String>| {
        let mut request = client
            .post(server.url("/messages"))
            .json(&json!({"user": "ann", "text": "hi"}));
        if let Some(key) = key {
            request = request.header("idempotency-key", key);
        }
        async move {
            let res = within("a post", request.send()).await.unwrap();
            let status = res.status().as_u16();
            (status, res.json::<Value>().await.unwrap_or_default())
        }
    };
    let (status, first) = post(Some("k-1".into())).await;
    assert_eq!(status, 201, "{first}");
    let (status, again) = post(Some("k-1".into())).await;
    assert_eq!((status, &again), (201, &first), "the first id, once more");
    assert_eq!(hub.stats("chat").published, 1, "stored once");
    let (_, other) = post(Some("k-2".into())).await;
    let (_, plain) = post(None).await;
    assert_ne!(other["id"], first["id"]);
    assert_ne!(plain["id"], other["id"]);
    let (status, _) = post(Some("k".repeat(129))).await;
    assert_eq!(status, 400, "a key longer than 128 bytes");
    assert_eq!(hub.stats("chat").published, 3);
    server.shutdown().await;
}

// ===== the run =====

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    /// SIGKILL a node, start it again.
    Kill,
    /// SIGTERM a node (graceful shutdown), start it again.
    Restart,
    /// SIGKILL Redis, start it again on its directory.
    Redis,
    /// Cut every connection of a node's proxy mid-frame.
    Cut,
    /// Stall every connection of a node's proxy for 0.1–1 s.
    Freeze,
    /// Cut every connection between the nodes and Redis mid-frame (a reply lost: the publish
    /// fails although Redis may have stored it).
    RedisCut,
    /// Stall every connection between the nodes and Redis for 0.5–3 s (longer than a call's
    /// 2 s timeout: publishes time out, stored or not).
    RedisStall,
}

struct Scenario {
    name: &'static str,
    nodes: usize,
    /// Redis, with the append-only file (`Some(true)`) or without; `None`: in-process hubs.
    redis: Option<bool>,
    faults: usize,
    kinds: &'static [Kind],
    rules: Rules,
    /// Whether subscribers hop between nodes at random moments (else they stay on a stream
    /// until it ends).
    hops: bool,
}

/// What the subscribers are to do.
#[derive(Debug, Clone, Copy)]
enum Phase {
    /// Hop between nodes at random moments.
    Run,
    /// Stay, and stop once the fence (this id) is read.
    Drain(Id),
}

#[derive(Debug, Default)]
struct Counts {
    hops: AtomicUsize,
    errors: AtomicUsize,
    ends: AtomicUsize,
    retried_posts: AtomicUsize,
}

fn run(scenario: Scenario) {
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|p| p.into_inner());
    let seed = seed();
    runtime().block_on(async {
        let started = Instant::now();
        // `None`: skipped (no redis-server), said loudly.
        if let Some(mut world) = World::start(&scenario, seed).await {
            world.play(&scenario, seed, started).await;
        }
    });
}

/// The processes and clients of one run.
struct World {
    #[cfg(feature = "redis")]
    redis: Option<server::RedisServer>,
    #[cfg(feature = "redis")]
    redis_proxy: Option<Proxy>,
    nodes: Vec<Node>,
    proxies: Vec<Proxy>,
    urls: Arc<Vec<String>>,
    _dir: TempDir,
}

impl World {
    async fn start(scenario: &Scenario, seed: u64) -> Option<Self> {
        let dir = TempDir::new(scenario.name, seed);
        #[cfg(feature = "redis")]
        let redis = match scenario.redis {
            Some(aof) => {
                let binary = server::binary_or_skip(scenario.name)?;
                let mut redis = server::RedisServer::start_with(&binary, aof);
                redis.ready().await;
                Some(redis)
            }
            None => None,
        };
        // The nodes reach Redis through a proxy of its own, which cuts and stalls on command.
        #[cfg(feature = "redis")]
        let redis_proxy = match &redis {
            Some(redis) => {
                let url = redis.url();
                let port = url.trim_end_matches('/').rsplit(':').next();
                let port: u16 = port.and_then(|p| p.parse().ok()).expect("Redis's port");
                Some(Proxy::start(([127, 0, 0, 1], port).into()).await)
            }
            None => None,
        };
        #[cfg(feature = "redis")]
        let url = redis_proxy
            .as_ref()
            .map(|proxy| format!("redis://{}/", proxy.addr()));
        #[cfg(not(feature = "redis"))]
        let url: Option<String> = {
            assert!(
                scenario.redis.is_none(),
                "Redis scenarios need the redis feature"
            );
            None
        };
        let mut nodes = Vec::new();
        for n in 0..scenario.nodes {
            let log = dir.0.join(format!("node{n}.log"));
            let mut node = Node::new(&format!("node{n}"), url.clone(), log);
            node.start().await;
            nodes.push(node);
        }
        let mut proxies = Vec::new();
        for node in &nodes {
            proxies.push(Proxy::start(node.addr()).await);
        }
        let urls = Arc::new(proxies.iter().map(Proxy::url).collect());
        Some(Self {
            #[cfg(feature = "redis")]
            redis,
            #[cfg(feature = "redis")]
            redis_proxy,
            nodes,
            proxies,
            urls,
            _dir: dir,
        })
    }

    async fn play(&mut self, scenario: &Scenario, seed: u64, started: Instant) {
        let mut rng = Rng::new(seed);
        let counts = Arc::new(Counts::default());
        let client = reqwest::Client::builder()
            .pool_max_idle_per_host(0)
            .timeout(Duration::from_secs(3))
            .build()
            .unwrap();
        let acks = Arc::new(Mutex::new(Vec::new()));

        // A first event, so that each subscriber's first connection (no Last-Event-ID, the
        // example's history) starts at a known point.
        let hello = publish(&client, &self.urls, "hello", &mut rng, &counts).await;
        acks.lock().unwrap().push(("hello".to_owned(), hello));
        let (phase, phase_rx) = watch::channel(Phase::Run);
        let mut subscribers = Vec::new();
        let mut seen = Vec::new();
        for n in 0..SUBSCRIBERS {
            let log = Arc::new(Mutex::new(Vec::new()));
            seen.push(log.clone());
            let task = subscriber(
                scenario.hops,
                self.urls.clone(),
                Rng::new(seed.wrapping_add(n as u64 + 1)),
                phase_rx.clone(),
                log,
                counts.clone(),
            );
            subscribers.push(tokio::spawn(task));
        }
        within("every subscriber's first event", async {
            while seen.iter().any(|s| s.lock().unwrap().is_empty()) {
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        })
        .await;

        let (stop, stop_rx) = watch::channel(false);
        let mut publishers = Vec::new();
        for n in 0..PUBLISHERS {
            let task = publisher(
                n,
                client.clone(),
                self.urls.clone(),
                Rng::new(seed.wrapping_add(n as u64 + 1001)),
                stop_rx.clone(),
                acks.clone(),
                counts.clone(),
            );
            publishers.push(tokio::spawn(task));
        }

        let mut played = Vec::new();
        // In-process: each incarnation's epoch and how it ended, so that the losses announced
        // can be told apart: a SIGKILL loses what subscribers had not read, a graceful restart
        // should lose nothing (it flushes every acknowledged event to the open streams).
        let mut endings = Vec::new();
        for _ in 0..scenario.faults {
            tokio::time::sleep(Duration::from_millis(rng.between(20, 200))).await;
            let kind = scenario.kinds[rng.below(scenario.kinds.len() as u64) as usize];
            if scenario.redis.is_none() && matches!(kind, Kind::Kill | Kind::Restart) {
                let direct = [format!("http://{}", self.nodes[0].addr())];
                let key = format!("marker-{}", played.len());
                let id = publish(&client, &direct, &key, &mut rng, &counts).await;
                acks.lock().unwrap().push((key, id));
                endings.push((id.epoch(), kind));
            }
            self.inject(kind, &mut rng).await;
            played.push(kind);
        }
        tokio::time::sleep(Duration::from_millis(300)).await;

        let _ = stop.send(true);
        for task in publishers {
            join("a publisher", task, PUBLISH_DEADLINE).await;
        }
        let fence = publish(&client, &self.urls, "fence", &mut rng, &counts).await;
        acks.lock().unwrap().push(("fence".to_owned(), fence));
        let _ = phase.send(Phase::Drain(fence));
        for (n, task) in subscribers.into_iter().enumerate() {
            let what = format!("subscriber {n} to read up to the fence {fence}");
            join(&what, task, DRAIN_DEADLINE).await;
        }

        let acks = acks.lock().unwrap().clone();
        let seen: Vec<Vec<Seen>> = seen.iter().map(|s| s.lock().unwrap().clone()).collect();
        let report = checker::check(&acks, &seen, scenario.rules);
        let count = |kind| played.iter().filter(|k| **k == kind).count();
        let lost_at = |kind| -> usize {
            let epochs = endings.iter().filter(|(_, k)| *k == kind);
            epochs
                .map(|(epoch, _)| report.announced_tails.get(epoch).copied().unwrap_or(0))
                .sum()
        };
        let endings = match scenario.redis {
            None => format!(
                " (tails of epochs ended by SIGKILL: {}, by a graceful restart: {}; in epochs a \
                 subscriber had no stream in: {})",
                lost_at(Kind::Kill),
                lost_at(Kind::Restart),
                report.announced_unseen
            ),
            Some(_) => String::new(),
        };
        let line = format!(
            "CHAOS {}: seed {seed}: {} faults ({} SIGKILL, {} graceful restarts, {} Redis \
             restarts, {} cuts, {} stalls, {} Redis cuts, {} Redis stalls); {} events acknowledged ({} posts retried) over {} \
             epochs; {SUBSCRIBERS} subscribers: {} deliveries, {} announced by gap events{endings} \
             ({} resets, {} lagged); {} reconnects ({} hops, {} errors, {} ends); {} violations; \
             {:.1} s",
            scenario.name,
            played.len(),
            count(Kind::Kill),
            count(Kind::Restart),
            count(Kind::Redis),
            count(Kind::Cut),
            count(Kind::Freeze),
            count(Kind::RedisCut),
            count(Kind::RedisStall),
            report.acknowledged,
            counts.retried_posts.load(Ordering::Relaxed),
            report.epochs,
            report.delivered,
            report.announced,
            report.resets,
            report.lagged,
            counts.hops.load(Ordering::Relaxed)
                + counts.errors.load(Ordering::Relaxed)
                + counts.ends.load(Ordering::Relaxed),
            counts.hops.load(Ordering::Relaxed),
            counts.errors.load(Ordering::Relaxed),
            counts.ends.load(Ordering::Relaxed),
            report.violations.len(),
            started.elapsed().as_secs_f64(),
        );
        eprintln!("{line}");
        assert!(
            report.violations.is_empty(),
            "{line}\nreproduce with NEST_CHAOS_SEED={seed} NEST_CHAOS_FAULTS={}:\n{}",
            scenario.faults,
            report.violations.join("\n")
        );
        if scenario.redis.is_none() && !scenario.hops {
            assert_eq!(
                lost_at(Kind::Restart),
                0,
                "{line}\na graceful restart lost acknowledged events of open streams"
            );
        }
    }

    /// Rounds of: start a stream on one node, read it on the other, inject a fault (`Cut`
    /// stands for none here: the control) at a random moment; the reader must end with every
    /// chunk, or with an `error` event or a 404, never a clean end with chunks missing.
    #[cfg(feature = "redis")]
    async fn resumable(&mut self, scenario: &Scenario, seed: u64, started: Instant) {
        let mut rng = Rng::new(seed);
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs(3))
            .build()
            .unwrap();
        let mut outcomes = std::collections::BTreeMap::new();
        let mut violations = Vec::new();
        for round in 0..scenario.faults {
            let producer = rng.below(2) as usize;
            let reader_node = 1 - producer;
            let id = format!("chaos-{seed}-{round}");
            let start = format!("http://{}/streams/{id}", self.nodes[producer].addr());
            within("a stream to start", async {
                while !client
                    .post(&start)
                    .send()
                    .await
                    .is_ok_and(|res| res.status().is_success())
                {
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            })
            .await;
            let url = format!("http://{}/streams/{id}", self.nodes[reader_node].addr());
            let reader = tokio::spawn(read_stream(url));
            let kind = scenario.kinds[rng.below(scenario.kinds.len() as u64) as usize];
            tokio::time::sleep(Duration::from_millis(rng.between(0, 600))).await;
            match kind {
                Kind::Kill => self.nodes[producer].kill(),
                Kind::Redis => self.inject(Kind::Redis, &mut rng).await,
                _ => {}
            }
            let (outcome, chunks) = join("the reader's end", reader, Duration::from_secs(60)).await;
            if kind == Kind::Kill {
                self.nodes[producer].start().await;
            }
            let expected: Vec<String> = (0..chunks.len()).map(|n| format!("chunk {n}")).collect();
            if chunks != expected {
                violations.push(format!("{id} ({kind:?}): chunks out of order: {chunks:?}"));
            }
            if outcome == "complete" && chunks.len() != node::CHUNKS {
                violations.push(format!(
                    "{id} ({kind:?}): a clean end after {} of {} chunks: truncated",
                    chunks.len(),
                    node::CHUNKS
                ));
            }
            if kind == Kind::Cut && outcome != "complete" {
                violations.push(format!("{id}: no fault, yet it ended with {outcome}"));
            }
            *outcomes.entry(format!("{kind:?}: {outcome}")).or_insert(0) += 1;
        }
        let line = format!(
            "CHAOS resumable_streams: seed {seed}: {} streams of {} chunks, each read on the \
             other node; outcomes {outcomes:?} (Cut: no fault); {} violations; {:.1} s",
            scenario.faults,
            node::CHUNKS,
            violations.len(),
            started.elapsed().as_secs_f64()
        );
        eprintln!("{line}");
        assert!(
            violations.is_empty(),
            "{line}\nreproduce with NEST_CHAOS_SEED={seed}:\n{}",
            violations.join("\n")
        );
    }

    async fn inject(&mut self, kind: Kind, rng: &mut Rng) {
        let n = rng.below(self.nodes.len() as u64) as usize;
        match kind {
            Kind::Kill => {
                self.nodes[n].kill();
                tokio::time::sleep(Duration::from_millis(rng.between(0, 300))).await;
                self.nodes[n].start().await;
            }
            Kind::Restart => {
                self.nodes[n].terminate().await;
                self.nodes[n].start().await;
            }
            Kind::Redis =>
            {
                #[cfg(feature = "redis")]
                if let Some(redis) = &mut self.redis {
                    redis.kill();
                    tokio::time::sleep(Duration::from_millis(rng.between(0, 300))).await;
                    redis.restart().await;
                }
            }
            Kind::Cut => self.proxies[n].inject(Fault::Cut),
            Kind::Freeze => {
                let time = Duration::from_millis(rng.between(100, 1000));
                self.proxies[n].inject(Fault::Freeze(time));
            }
            Kind::RedisCut =>
            {
                #[cfg(feature = "redis")]
                if let Some(proxy) = &self.redis_proxy {
                    proxy.inject(Fault::Cut);
                }
            }
            Kind::RedisStall => {
                let time = Duration::from_millis(rng.between(500, 3000));
                #[cfg(feature = "redis")]
                if let Some(proxy) = &self.redis_proxy {
                    proxy.inject(Fault::Freeze(time));
                }
                let _ = time;
            }
        }
    }
}

/// Posts `key` to a random node until it is acknowledged (the same key every time); its id.
async fn publish(
    client: &reqwest::Client,
    urls: &[String],
    key: &str,
    rng: &mut Rng,
    counts: &Counts,
) -> Id {
    let deadline = Instant::now() + PUBLISH_DEADLINE;
    loop {
        let url = &urls[rng.below(urls.len() as u64) as usize];
        let sent = client
            .post(format!("{url}/messages"))
            .header("idempotency-key", key)
            .json(&json!({ "user": "chaos", "text": key }))
            .send()
            .await;
        let last_error = match sent {
            Ok(res) if res.status().as_u16() == 201 => {
                // The body may be cut too: then the post is retried like any other failure.
                match res.json::<Value>().await {
                    Ok(body) => match body["id"].as_str().and_then(Id::parse) {
                        Some(id) => return id,
                        None => panic!("post {key}: an answer without a hub id: {body}"),
                    },
                    Err(err) => err.to_string(),
                }
            }
            Ok(res) => res.status().to_string(),
            Err(err) => err.to_string(),
        };
        counts.retried_posts.fetch_add(1, Ordering::Relaxed);
        assert!(
            Instant::now() < deadline,
            "post {key} not acknowledged within {PUBLISH_DEADLINE:?}: {last_error}"
        );
        tokio::time::sleep(Duration::from_millis(rng.between(20, 100))).await;
    }
}

async fn publisher(
    n: usize,
    client: reqwest::Client,
    urls: Arc<Vec<String>>,
    mut rng: Rng,
    stop: watch::Receiver<bool>,
    acks: Arc<Mutex<Vec<(String, Id)>>>,
    counts: Arc<Counts>,
) {
    for i in 0.. {
        if *stop.borrow() {
            return;
        }
        let key = format!("p{n}-{i}");
        let id = publish(&client, &urls, &key, &mut rng, &counts).await;
        acks.lock().unwrap().push((key, id));
        tokio::time::sleep(Duration::from_millis(rng.between(5, 40))).await;
    }
}

/// Reads the chat's stream, hopping to a random node with `Last-Event-ID` at random moments
/// (and after every error or end), recording every event; in the drain it stays until the
/// fence is read.
async fn subscriber(
    hops: bool,
    urls: Arc<Vec<String>>,
    mut rng: Rng,
    mut phase: watch::Receiver<Phase>,
    seen: Arc<Mutex<Vec<Seen>>>,
    counts: Arc<Counts>,
) {
    let mut last: Option<String> = None;
    let reached = |last: &Option<String>, fence: Id| {
        last.as_deref()
            .and_then(Id::parse)
            .is_some_and(|id| id >= fence)
    };
    loop {
        let fence = match *phase.borrow() {
            Phase::Run => None,
            Phase::Drain(fence) => Some(fence),
        };
        if fence.is_some_and(|fence| reached(&last, fence)) {
            return;
        }
        let url = format!("{}/events", urls[rng.below(urls.len() as u64) as usize]);
        let mut builder = EventSource::builder(&url).reconnect(false);
        if let Some(id) = &last {
            builder = builder.last_event_id(id.clone());
        }
        let mut events = builder.build().expect("an event source").into_events();
        let stay = match fence {
            Some(_) => SILENCE,
            None if hops => Duration::from_millis(rng.between(100, 1500)),
            None => Duration::from_secs(3600),
        };
        let mut until = Instant::now() + stay;
        loop {
            let next = tokio::select! {
                next = events.next() => Ok(next),
                () = tokio::time::sleep_until(until) => Err(()),
                // The drain began: the fence may be read already.
                _ = phase.changed() => match *phase.borrow_and_update() {
                    Phase::Drain(fence) if reached(&last, fence) => return,
                    _ => continue,
                },
            };
            match next {
                Err(()) => {
                    counts.hops.fetch_add(1, Ordering::Relaxed);
                    break;
                }
                Ok(None) => {
                    counts.ends.fetch_add(1, Ordering::Relaxed);
                    break;
                }
                Ok(Some(Err(_))) => {
                    counts.errors.fetch_add(1, Ordering::Relaxed);
                    break;
                }
                Ok(Some(Ok(event))) => {
                    seen.lock().unwrap().push(seen_of(&event));
                    if !event.id.is_empty() {
                        last = Some(event.id.clone());
                    }
                    if let Phase::Drain(fence) = *phase.borrow() {
                        if reached(&last, fence) {
                            return;
                        }
                        until = Instant::now() + SILENCE;
                    }
                }
            }
        }
        // As a browser waits its `retry:` (shorter here).
        tokio::time::sleep(Duration::from_millis(rng.between(10, 80))).await;
    }
}

/// Reads a resumable stream to its end, resuming with `Last-Event-ID` after a broken
/// connection: how it ended (`complete`, `error event`, `gone` for a 404) and the chunks.
#[cfg(feature = "redis")]
async fn read_stream(url: String) -> (&'static str, Vec<String>) {
    let mut chunks = Vec::new();
    let mut last: Option<String> = None;
    loop {
        let mut builder = EventSource::builder(&url).reconnect(false);
        if let Some(id) = &last {
            builder = builder.last_event_id(id.clone());
        }
        let mut events = builder.build().expect("an event source").into_events();
        loop {
            match events.next().await {
                None => return ("complete", chunks),
                Some(Ok(event)) if event.event == "error" => return ("error event", chunks),
                Some(Ok(event)) => {
                    chunks.push(event.data);
                    last = Some(event.id);
                }
                Some(Err(err)) if err.is_status() => return ("gone", chunks),
                // The connection broke (Redis restarting, say): resume.
                Some(Err(_)) => break,
            }
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// What the checker makes of an event.
fn seen_of(event: &nest::sse_client::Event) -> Seen {
    let Some(id) = Id::parse(&event.id) else {
        return Seen::Garbled(format!("an event without a hub id: {event:?}"));
    };
    let data: Value = serde_json::from_str(&event.data).unwrap_or_default();
    match (event.event.as_str(), &data["text"], &data["reason"]) {
        ("message", Value::String(key), _) => Seen::Event {
            id,
            key: key.clone(),
        },
        ("reset", _, Value::String(reason)) => Seen::Gap {
            reason: reason.clone(),
            id,
        },
        _ => Seen::Garbled(format!("an unexpected event: {event:?}")),
    }
}

// ===== support =====

/// A seeded xorshift64*: the schedule and every random choice come from the seed.
struct Rng(u64);

impl Rng {
    fn new(seed: u64) -> Self {
        // splitmix64 once, so that nearby seeds give unrelated streams (and never 0).
        let mut z = seed.wrapping_add(0x9E37_79B9_7F4A_7C15);
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        Self((z ^ (z >> 31)) | 1)
    }

    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }

    fn between(&mut self, low: u64, high: u64) -> u64 {
        low + self.below(high - low + 1)
    }
}

fn seed() -> u64 {
    match std::env::var("NEST_CHAOS_SEED") {
        Ok(seed) => seed.parse().expect("NEST_CHAOS_SEED is a number"),
        Err(_) => SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(1, |d| d.as_nanos() as u64),
    }
}

fn faults() -> usize {
    std::env::var("NEST_CHAOS_FAULTS")
        .map(|n| n.parse().expect("NEST_CHAOS_FAULTS is a number"))
        .unwrap_or(DEFAULT_FAULTS)
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a tokio runtime")
}

/// Awaits `future` for at most 60 s, failing with what was awaited.
async fn within<T>(what: &str, future: impl std::future::Future<Output = T>) -> T {
    match tokio::time::timeout(Duration::from_secs(60), future).await {
        Ok(value) => value,
        Err(_) => panic!("timed out after 60 s: {what}"),
    }
}

/// Joins `task` within `deadline`, passing its panic on.
async fn join<T>(what: &str, task: JoinHandle<T>, deadline: Duration) -> T {
    match tokio::time::timeout(deadline, task).await {
        Ok(Ok(value)) => value,
        Ok(Err(err)) => std::panic::resume_unwind(err.into_panic()),
        Err(_) => panic!("timed out after {deadline:?}: {what}"),
    }
}

/// A directory for the nodes' logs, removed on drop (kept when the run failed).
struct TempDir(std::path::PathBuf);

impl TempDir {
    fn new(name: &str, seed: u64) -> Self {
        let dir =
            std::env::temp_dir().join(format!("nest-chaos-{name}-{seed}-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("make the chaos directory");
        Self(dir)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!("chaos: the nodes' logs are in {}", self.0.display());
        } else {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }
}
