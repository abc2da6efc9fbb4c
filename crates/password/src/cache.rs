//! Bounded, time-limited caches of computed answers. Every entry ends with its TTL, and a full
//! cache drops its expired entries (or, when none are, all of them) before taking a new one.
//! A cache whose answers depend on data that changes is also invalidated by a generation
//! counter: an entry is kept with the generation it was computed at, and the whole cache is
//! emptied as soon as that generation moves.

use std::collections::HashMap;
use std::hash::Hash;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

/// How large a cache grows and how long an entry lives.
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
    pub const fn new(name: &'static str) -> Self {
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

/// What makes a cache's entries stale besides their TTL.
pub enum Invalidation {
    /// Nothing: the answers cannot change while the process runs (static users), so entries
    /// end only with their TTL or when the cache is full.
    Never,
    /// A generation counter: the cache is emptied whenever it moves. `None` means changes
    /// could go unheard right now, and nothing is cached or read then.
    Generations(Box<dyn Fn() -> Option<u64> + Send + Sync>),
}

impl std::fmt::Debug for Invalidation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Invalidation::Never => "Never",
            Invalidation::Generations(_) => "Generations",
        })
    }
}

impl Invalidation {
    fn current(&self) -> Option<u64> {
        match self {
            Invalidation::Never => Some(0),
            Invalidation::Generations(current) => current(),
        }
    }
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

/// A cache of `V` by `K`, bounded by [`CacheSettings`] and invalidated by an [`Invalidation`].
pub struct Cache<K, V> {
    invalidation: Invalidation,
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
    pub fn new(
        invalidation: Invalidation,
        settings: CacheSettings,
        counters: &'static CacheCounters,
    ) -> Self {
        Cache {
            invalidation,
            settings,
            counters,
            inner: Mutex::new(Inner {
                generation: 0,
                entries: HashMap::new(),
            }),
        }
    }

    /// The generation to compute an answer at (read before the data it depends on is), or
    /// `None` when answers may not be cached now.
    pub fn generation(&self) -> Option<u64> {
        if self.settings.capacity == 0 || self.settings.ttl.is_zero() {
            return None;
        }
        self.invalidation.current()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner<K, V>> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The cached answer for `key`, when one computed at the current generation is unexpired.
    pub fn get(&self, key: &K) -> Option<V> {
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
    /// now); dropped when the generation has moved since.
    pub fn insert(&self, generation: u64, key: K, value: V, expires: Option<Instant>) {
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

    /// How many entries are kept (expired ones included until they are dropped).
    #[cfg(test)]
    fn len(&self) -> usize {
        self.lock().entries.len()
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::sync::atomic::AtomicBool;

    use super::*;

    static TEST: CacheCounters = CacheCounters::new("test");

    fn settings(capacity: usize, ttl: Duration) -> CacheSettings {
        CacheSettings { capacity, ttl }
    }

    #[test]
    fn without_invalidation_entries_live_their_ttl_within_the_capacity() {
        let cache = Cache::new(
            Invalidation::Never,
            settings(3, Duration::from_secs(60)),
            &TEST,
        );
        let generation = cache.generation().unwrap();
        for i in 0..3 {
            cache.insert(generation, i, i * 10, None);
        }
        assert_eq!(cache.get(&2), Some(20));
        cache.insert(generation, 3, 30, None);
        assert!(cache.len() <= 3);
        assert_eq!(cache.get(&3), Some(30));
        // A shorter expiry wins over the TTL.
        cache.insert(generation, 4, 40, Some(Instant::now()));
        assert_eq!(cache.get(&4), None);

        let off: Cache<u8, u8> = Cache::new(
            Invalidation::Never,
            settings(0, Duration::from_secs(60)),
            &TEST,
        );
        assert_eq!(off.generation(), None);
        let expired: Cache<u8, u8> =
            Cache::new(Invalidation::Never, settings(5, Duration::ZERO), &TEST);
        assert_eq!(expired.generation(), None);
    }

    #[test]
    fn a_moving_generation_empties_the_cache_and_a_silent_one_disables_it() {
        let counter = Arc::new(AtomicU64::new(1));
        let live = Arc::new(AtomicBool::new(true));
        let (c, l) = (counter.clone(), live.clone());
        let cache = Cache::new(
            Invalidation::Generations(Box::new(move || {
                l.load(Ordering::SeqCst).then(|| c.load(Ordering::SeqCst))
            })),
            settings(10, Duration::from_secs(60)),
            &TEST,
        );
        let before = cache.generation().unwrap();
        cache.insert(before, "a", 1, None);
        assert_eq!(cache.get(&"a"), Some(1));
        counter.store(2, Ordering::SeqCst);
        assert_eq!(cache.get(&"a"), None);
        // An answer computed before the change is not kept.
        cache.insert(before, "b", 2, None);
        assert_eq!(cache.get(&"b"), None);
        let now = cache.generation().unwrap();
        cache.insert(now, "b", 2, None);
        assert_eq!(cache.get(&"b"), Some(2));
        live.store(false, Ordering::SeqCst);
        assert_eq!(cache.get(&"b"), None);
    }
}
