//! Database faults under load: a PostgreSQL stopped and restarted with `pg_ctl`, and one made
//! slow by a lock. Requests get a token the store decided, or a quick 503; never a hang, never
//! a token decided without the store; service resumes by itself.

use std::ops::Range;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde_json::{Value, json};
use sqlx::{Connection, Executor, PgConnection};

use cardgate_store::embedded::EmbeddedPostgres;

use crate::Sent;
use crate::cards::{access, off_runtime, seeded, seeded_cluster};
use crate::cards_settings;

/// The longest a request may take to be refused while the database is away or slow.
const REFUSED_WITHIN: Duration = Duration::from_secs(2);
/// Requests sent at once while the database fails.
const WORKERS: usize = 6;

const SCOPE: &str = "repository:acme/web:pull,push";

/// What alice is granted on `SCOPE` by the seeded store.
fn decided_by_the_store() -> Value {
    json!([{"type": "repository", "name": "acme/web", "actions": ["pull", "push"]}])
}

/// One token request of the load.
#[derive(Debug)]
struct Sample {
    started: Instant,
    took: Duration,
    status: StatusCode,
    /// The token's `access`, for a 200.
    access: Option<Value>,
}

/// Token requests from `WORKERS` clients at once until `stop` is set.
struct Load {
    stop: Arc<AtomicBool>,
    samples: Arc<Mutex<Vec<Sample>>>,
    workers: Vec<tokio::task::JoinHandle<()>>,
}

impl Load {
    fn start(base: &str) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let samples = Arc::new(Mutex::new(Vec::new()));
        let client = reqwest::Client::new();
        let workers = (0..WORKERS)
            .map(|_| {
                let (stop, samples, client) = (stop.clone(), samples.clone(), client.clone());
                let url = format!("{base}/v1/registry?service=registry.test&scope={SCOPE}");
                tokio::spawn(async move {
                    while !stop.load(Ordering::Relaxed) {
                        let started = Instant::now();
                        let response = client
                            .get(&url)
                            .basic_auth("alice", Some("wonderland"))
                            .sent()
                            .await;
                        let took = started.elapsed();
                        let status = response.status();
                        let body: Value = response.json().await.unwrap();
                        let access = (status == StatusCode::OK).then(|| access(&body));
                        samples.lock().unwrap().push(Sample {
                            started,
                            took,
                            status,
                            access,
                        });
                    }
                })
            })
            .collect();
        Load {
            stop,
            samples,
            workers,
        }
    }

    /// Waits for the first request started after `since` that got a token; how long after.
    async fn first_token_after(&self, since: Instant, limit: Duration) -> Duration {
        loop {
            let found = self
                .samples
                .lock()
                .unwrap()
                .iter()
                .filter(|s| s.started >= since && s.status == StatusCode::OK)
                .map(|s| s.started + s.took)
                .min();
            if let Some(at) = found {
                return at - since;
            }
            assert!(
                since.elapsed() < limit,
                "no token {limit:?} after {since:?}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    async fn finish(self) -> Vec<Sample> {
        self.stop.store(true, Ordering::Relaxed);
        for worker in self.workers {
            worker.await.unwrap();
        }
        std::mem::take(&mut *self.samples.lock().unwrap())
    }
}

/// Every answer is a token the store decided, or a 503; the requests started during `fault`
/// are refused within [`REFUSED_WITHIN`] (those already running when it began may have spent
/// longer before meeting it, but never hang). Returns how many tokens and 503s.
fn check(samples: &[Sample], fault: Range<Instant>) -> (usize, usize) {
    let (mut tokens, mut refused) = (0, 0);
    for sample in samples {
        assert!(sample.took < REFUSED_WITHIN * 3, "{sample:?}");
        match sample.status {
            StatusCode::OK => {
                assert_eq!(sample.access, Some(decided_by_the_store()), "{sample:?}");
                tokens += 1;
            }
            StatusCode::SERVICE_UNAVAILABLE => {
                if fault.contains(&sample.started) {
                    assert!(sample.took < REFUSED_WITHIN, "{sample:?}");
                }
                refused += 1;
            }
            _ => panic!("neither a token nor 503: {sample:?}"),
        }
    }
    (tokens, refused)
}

async fn status(base: &str, path: &str) -> StatusCode {
    reqwest::get(format!("{base}{path}"))
        .await
        .unwrap()
        .status()
}

#[tokio::test]
async fn under_load_a_stopped_database_gives_quick_503s_and_service_resumes_by_itself() {
    let (cluster, base) = seeded_cluster().await;
    let load = Load::start(&base);
    load.first_token_after(Instant::now(), Duration::from_secs(10))
        .await;

    let cluster = off_runtime(cluster, EmbeddedPostgres::stop).await;
    let stopped = Instant::now();
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(
        status(&base, "/readyz").await,
        StatusCode::SERVICE_UNAVAILABLE
    );
    assert_eq!(status(&base, "/healthz").await, StatusCode::OK);
    let outage = load.samples.lock().unwrap().len();

    let resumed = Instant::now();
    let _cluster = off_runtime(cluster, EmbeddedPostgres::resume).await;
    let recovery = load
        .first_token_after(resumed, Duration::from_secs(15))
        .await;
    assert!(recovery < Duration::from_secs(10), "{recovery:?}");
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(status(&base, "/readyz").await, StatusCode::OK);

    let samples = load.finish().await;
    let (tokens, refused) = check(&samples, stopped..resumed);
    assert!(
        refused > 0 && tokens > 0,
        "{tokens} tokens, {refused} refused"
    );
    assert!(outage < samples.len());
}

/// Runs the load against a server whose store is made slow (another session holds the cards
/// table for 3 s); the samples and the lock's span.
async fn slow_database(cache_capacity: &str) -> (Vec<Sample>, Range<Instant>) {
    let (url, _, _) = seeded(None).await;
    let settings = cards_settings(
        &url,
        &[
            ("CARDGATE__DATABASE__STATEMENT_TIMEOUT_MS", "1000"),
            ("CARDGATE__CACHE__CAPACITY", cache_capacity),
        ],
    );
    let app = cardgate_server::Application::build(&settings)
        .await
        .unwrap();
    let base = format!("http://127.0.0.1:{}", app.port());
    tokio::spawn(app.run_until_stopped());
    let load = Load::start(&base);
    load.first_token_after(Instant::now(), Duration::from_secs(10))
        .await;

    // Another session holds the cards table: every query on it waits, and no change can
    // commit (every change writes its event card).
    let mut blocker = PgConnection::connect(&url).await.unwrap();
    blocker.execute("BEGIN").await.unwrap();
    blocker
        .execute("LOCK TABLE cards IN ACCESS EXCLUSIVE MODE")
        .await
        .unwrap();
    let locked = Instant::now();
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(status(&base, "/healthz").await, StatusCode::OK);
    blocker.execute("ROLLBACK").await.unwrap();
    let released = Instant::now();
    let recovery = load
        .first_token_after(released, Duration::from_secs(10))
        .await;
    assert!(recovery < Duration::from_secs(3), "{recovery:?}");
    (load.finish().await, locked..released)
}

#[tokio::test]
async fn under_load_a_database_too_slow_to_answer_gives_503_within_the_statement_timeout() {
    // Without caches every request needs the store.
    let (samples, lock) = slow_database("0").await;
    let (tokens, refused) = check(&samples, lock.clone());
    assert!(
        refused > 0 && tokens > 0,
        "{tokens} tokens, {refused} refused"
    );
    // No request started while the table was held got a token before it was released.
    assert!(
        samples.iter().all(|s| s.status != StatusCode::OK
            || s.started < lock.start
            || s.started + s.took >= lock.end),
        "a token was issued while the store could not be read"
    );
}

#[tokio::test]
async fn while_the_database_is_slow_cached_decisions_that_nothing_can_have_changed_still_count() {
    // With caches, an answer the store decided before the lock is still current (no change can
    // commit while the table is held, and the change feed is connected): served, not 503.
    // Whatever still needs the store is refused in time.
    let (samples, lock) = slow_database("10000").await;
    let (tokens, _) = check(&samples, lock.clone());
    assert!(
        samples
            .iter()
            .any(|s| s.status == StatusCode::OK && lock.contains(&s.started)),
        "{tokens} tokens, none from the caches during the lock"
    );
}
