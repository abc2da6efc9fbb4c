//! `GET /metrics` in the Prometheus text format: requests by route and outcome with latency
//! histograms, granted and denied actions, cache hits and misses, database pool use.
//!
//! Recording is a few relaxed atomic increments (and, per request, a read-locked map lookup by
//! route pattern), so that it can stay on under full load; nothing grows between scrapes.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, LazyLock, PoisonError, RwLock};
use std::time::{Duration, Instant};

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::middleware::Next;
use actix_web::{HttpResponse, web};
use cardgate_authz::GrantedScope;

use crate::token::AppState;

/// Upper bounds of the latency buckets, in seconds.
const BUCKETS: [f64; 12] = [
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
];

/// The outcome label of a status: its class.
const OUTCOMES: [&str; 5] = ["1xx", "2xx", "3xx", "4xx", "5xx"];

#[derive(Debug, Default)]
struct RouteMetrics {
    by_outcome: [AtomicU64; OUTCOMES.len()],
    /// Per bucket (not cumulative), the last one for slower requests.
    buckets: [AtomicU64; BUCKETS.len() + 1],
    sum_micros: AtomicU64,
}

impl RouteMetrics {
    fn record(&self, status: u16, elapsed: Duration) {
        let outcome = usize::from(status / 100)
            .saturating_sub(1)
            .min(OUTCOMES.len() - 1);
        self.by_outcome[outcome].fetch_add(1, Ordering::Relaxed);
        let seconds = elapsed.as_secs_f64();
        let bucket = BUCKETS
            .iter()
            .position(|bound| seconds <= *bound)
            .unwrap_or(BUCKETS.len());
        self.buckets[bucket].fetch_add(1, Ordering::Relaxed);
        let micros = u64::try_from(elapsed.as_micros()).unwrap_or(u64::MAX);
        self.sum_micros.fetch_add(micros, Ordering::Relaxed);
    }
}

/// The process's counters (shared by every application it runs).
#[derive(Debug, Default)]
struct Registry {
    /// By route pattern (`/v1/registry`, `/v1/admin/orgs/{slug}`...; `unmatched`).
    routes: RwLock<BTreeMap<String, Arc<RouteMetrics>>>,
    granted: AtomicU64,
    denied: AtomicU64,
}

static REGISTRY: LazyLock<Registry> = LazyLock::new(Registry::default);

impl Registry {
    fn route(&self, pattern: &str) -> Arc<RouteMetrics> {
        if let Some(found) = self
            .routes
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .get(pattern)
        {
            return found.clone();
        }
        self.routes
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .entry(pattern.to_owned())
            .or_default()
            .clone()
    }
}

/// Middleware: counts every request by route and outcome, and its latency.
pub async fn track(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let start = Instant::now();
    let response = next.call(req).await;
    let (pattern, status) = match &response {
        Ok(response) => (
            response.request().match_pattern(),
            response.status().as_u16(),
        ),
        Err(e) => (None, e.as_response_error().status_code().as_u16()),
    };
    REGISTRY
        .route(pattern.as_deref().unwrap_or("unmatched"))
        .record(status, start.elapsed());
    response
}

/// Counts the actions of a token request: those granted, and those asked for but not granted.
pub fn record_grants(grants: &[GrantedScope]) {
    for grant in grants {
        let asked = grant.scope.actions.iter().count() as u64;
        let granted = grant.granted.iter().count() as u64;
        REGISTRY.granted.fetch_add(granted, Ordering::Relaxed);
        REGISTRY
            .denied
            .fetch_add(asked.saturating_sub(granted), Ordering::Relaxed);
    }
}

fn label(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

/// The metrics in the Prometheus text format (0.0.4).
fn render(state: &AppState) -> String {
    let mut out = String::with_capacity(4096);
    let routes: Vec<(String, Arc<RouteMetrics>)> = REGISTRY
        .routes
        .read()
        .unwrap_or_else(PoisonError::into_inner)
        .iter()
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();

    out.push_str(
        "# HELP cardgate_requests_total HTTP requests by route and outcome (status class).\n",
    );
    out.push_str("# TYPE cardgate_requests_total counter\n");
    for (route, metrics) in &routes {
        for (outcome, count) in OUTCOMES.iter().zip(&metrics.by_outcome) {
            let count = count.load(Ordering::Relaxed);
            if count > 0 {
                let _ = writeln!(
                    out,
                    "cardgate_requests_total{{route=\"{}\",outcome=\"{outcome}\"}} {count}",
                    label(route)
                );
            }
        }
    }

    out.push_str("# HELP cardgate_request_duration_seconds HTTP request latency by route.\n");
    out.push_str("# TYPE cardgate_request_duration_seconds histogram\n");
    for (route, metrics) in &routes {
        let route = label(route);
        let mut cumulative = 0;
        for (i, count) in metrics.buckets.iter().enumerate() {
            cumulative += count.load(Ordering::Relaxed);
            let bound = BUCKETS.get(i).map_or("+Inf".to_owned(), f64::to_string);
            let _ = writeln!(
                out,
                "cardgate_request_duration_seconds_bucket{{route=\"{route}\",le=\"{bound}\"}} {cumulative}"
            );
        }
        let sum = metrics.sum_micros.load(Ordering::Relaxed) as f64 / 1e6;
        let _ = writeln!(
            out,
            "cardgate_request_duration_seconds_sum{{route=\"{route}\"}} {sum}\n\
             cardgate_request_duration_seconds_count{{route=\"{route}\"}} {cumulative}"
        );
    }

    out.push_str(
        "# HELP cardgate_actions_total Actions asked for in token requests, by decision.\n",
    );
    out.push_str("# TYPE cardgate_actions_total counter\n");
    let _ = writeln!(
        out,
        "cardgate_actions_total{{decision=\"granted\"}} {}\n\
         cardgate_actions_total{{decision=\"denied\"}} {}",
        REGISTRY.granted.load(Ordering::Relaxed),
        REGISTRY.denied.load(Ordering::Relaxed)
    );

    out.push_str("# HELP cardgate_cache_requests_total Cache lookups by cache and result.\n");
    out.push_str("# TYPE cardgate_cache_requests_total counter\n");
    for cache in cardgate_authz_cards::cache_counters() {
        let _ = writeln!(
            out,
            "cardgate_cache_requests_total{{cache=\"{name}\",result=\"hit\"}} {}\n\
             cardgate_cache_requests_total{{cache=\"{name}\",result=\"miss\"}} {}",
            cache.hits(),
            cache.misses(),
            name = cache.name
        );
    }

    if let Some(connected) = state.throttle.failures_heard() {
        let _ = writeln!(
            out,
            "# HELP cardgate_login_failures_feed_connected Whether login failures recorded by \
             every instance are heard (1); 0 while the listener reconnects (every login then \
             reads its account's failures from the database).\n\
             # TYPE cardgate_login_failures_feed_connected gauge\n\
             cardgate_login_failures_feed_connected {}",
            u8::from(connected)
        );
    }
    if let Some(store) = &state.store {
        let _ = writeln!(
            out,
            "# HELP cardgate_change_feed_connected Whether store changes from every instance are \
             heard (1), which caches need; 0 while the listener reconnects (caches bypassed).\n\
             # TYPE cardgate_change_feed_connected gauge\n\
             cardgate_change_feed_connected {}",
            u8::from(store.generation().current().is_some())
        );
        let pool = store.pool();
        let size = pool.size();
        let idle = u32::try_from(pool.num_idle()).unwrap_or(u32::MAX);
        let _ = writeln!(
            out,
            "# HELP cardgate_db_pool_connections Database pool connections by state.\n\
             # TYPE cardgate_db_pool_connections gauge\n\
             cardgate_db_pool_connections{{state=\"in_use\"}} {}\n\
             cardgate_db_pool_connections{{state=\"idle\"}} {idle}\n\
             # HELP cardgate_db_pool_max_connections The pool's size limit.\n\
             # TYPE cardgate_db_pool_max_connections gauge\n\
             cardgate_db_pool_max_connections {}",
            size.saturating_sub(idle),
            pool.options().get_max_connections()
        );
    }
    out
}

/// `GET /metrics`.
pub async fn metrics(state: web::Data<AppState>) -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/plain; version=0.0.4")
        .insert_header((actix_web::http::header::CACHE_CONTROL, "no-store"))
        .body(render(&state))
}
