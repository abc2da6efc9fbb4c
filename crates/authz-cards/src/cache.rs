//! Bounded, time-limited caches of answers computed from the card store. An entry is kept
//! with the store generation it was computed from, and the whole cache is emptied as soon as
//! that generation moves: any change to the store, made by this process or heard from another
//! instance sharing the database. Without a live change feed nothing is cached.

use std::collections::HashMap;
use std::hash::Hash;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

use cardgate_store::Store;

/// How large caches grow and how long an entry lives (a bound of its own, besides the
/// emptying on every change).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CacheSettings {
    /// Entries per cache; 0 turns caching off.
    pub capacity: usize,
    pub ttl: Duration,
}

impl Default for CacheSettings {
    fn default() -> Self {
        CacheSettings {
            capacity: 10_000,
            ttl: Duration::from_secs(60),
        }
    }
}

/// Hits and misses of one kind of cache, for the whole process.
#[derive(Debug)]
pub struct CacheCounters {
    pub name: &'static str,
    hits: AtomicU64,
    misses: AtomicU64,
}

impl CacheCounters {
    const fn new(name: &'static str) -> Self {
        CacheCounters {
            name,
            hits: AtomicU64::new(0),
            misses: AtomicU64::new(0),
        }
    }

    pub fn hits(&self) -> u64 {
        self.hits.load(Ordering::Relaxed)
    }

    pub fn misses(&self) -> u64 {
        self.misses.load(Ordering::Relaxed)
    }
}

/// Verified credentials (keyed by an HMAC of them).
pub(crate) static CREDENTIALS: CacheCounters = CacheCounters::new("credentials");
/// Authorization decisions.
pub(crate) static DECISIONS: CacheCounters = CacheCounters::new("decisions");

/// The hit and miss counters of every cache.
pub fn cache_counters() -> [&'static CacheCounters; 2] {
    [&CREDENTIALS, &DECISIONS]
}

struct Inner<K, V> {
    generation: u64,
    entries: HashMap<K, (V, Instant)>,
}

impl<K, V> Inner<K, V> {
    /// Whether entries of `generation` may be read or written: the entries of an older one
    /// are dropped first; a newer one already seen means `generation` is stale.
    fn admit(&mut self, generation: u64) -> bool {
        if self.generation < generation {
            self.entries.clear();
            self.generation = generation;
        }
        self.generation == generation
    }
}

pub(crate) struct Cache<K, V> {
    store: Store,
    settings: CacheSettings,
    counters: &'static CacheCounters,
    inner: Mutex<Inner<K, V>>,
}

impl<K, V> std::fmt::Debug for Cache<K, V> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Cache")
            .field("name", &self.counters.name)
            .field("settings", &self.settings)
            .finish_non_exhaustive()
    }
}

impl<K: Hash + Eq, V: Clone> Cache<K, V> {
    pub(crate) fn new(
        store: Store,
        settings: CacheSettings,
        counters: &'static CacheCounters,
    ) -> Self {
        Cache {
            store,
            settings,
            counters,
            inner: Mutex::new(Inner {
                generation: 0,
                entries: HashMap::new(),
            }),
        }
    }

    /// The generation to compute an answer at (read before the store is), or `None` when
    /// answers may not be cached now.
    pub(crate) fn generation(&self) -> Option<u64> {
        if self.settings.capacity == 0 || self.settings.ttl.is_zero() {
            return None;
        }
        self.store.generation().current()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner<K, V>> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The cached answer for `key`, when one computed at the current generation is unexpired.
    pub(crate) fn get(&self, key: &K) -> Option<V> {
        let generation = self.generation()?;
        let mut inner = self.lock();
        let found = if inner.admit(generation) {
            inner
                .entries
                .get(key)
                .filter(|(_, expires)| *expires > Instant::now())
                .map(|(value, _)| value.clone())
        } else {
            None
        };
        drop(inner);
        let counter = if found.is_some() {
            &self.counters.hits
        } else {
            &self.counters.misses
        };
        counter.fetch_add(1, Ordering::Relaxed);
        found
    }

    /// Keeps `value`, computed at `generation`, until `expires` (at most the cache's TTL from
    /// now); dropped when the store has changed since.
    pub(crate) fn insert(&self, generation: u64, key: K, value: V, expires: Option<Instant>) {
        if self.generation() != Some(generation) {
            return;
        }
        let now = Instant::now();
        // A TTL beyond what the clock can count is no limit of its own.
        let expires = match (expires, now.checked_add(self.settings.ttl)) {
            (Some(e), Some(limit)) => e.min(limit),
            (Some(e), None) => e,
            (None, Some(limit)) => limit,
            (None, None) => return,
        };
        let mut inner = self.lock();
        if !inner.admit(generation) {
            return;
        }
        if inner.entries.len() >= self.settings.capacity && !inner.entries.contains_key(&key) {
            inner.entries.retain(|_, (_, e)| *e > now);
            if inner.entries.len() >= self.settings.capacity {
                inner.entries.clear();
            }
        }
        inner.entries.insert(key, (value, expires));
    }
}
