//! Bounded caches of computed answers. A full cache drops its expired and stale entries (or,
//! when none are, all of them) before taking a new one.
//!
//! A cache of answers that cannot change while the process runs ([`Invalidation::Never`]) ends
//! each entry with its TTL. A cache whose answers depend on data that changes is invalidated by
//! a [`Changes`] clock instead: an entry is kept with the epoch it was computed at and the tags
//! of the facts it depends on, and is dropped as soon as one of those facts is announced
//! changed. It needs no age limit (an answer that no change touched is still right), so it
//! ends only with what it rests on (a session's expiry); the clock bounds how long answers
//! are used while changes might go unheard (the store's feed gives up a connection whose
//! heartbeats go unheard for the TTL).

use std::collections::HashMap;
use std::hash::Hash;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

/// How large a cache grows and how long an entry lives.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CacheSettings {
    /// Entries per cache; 0 turns caching off.
    pub capacity: usize,
    /// How long an entry of a cache without invalidation lives; 0 turns caching off.
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

/// A clock of changes to the data answers are computed from: an epoch to compute at, and
/// whether facts named by tags changed after an epoch.
pub trait Changes: Send + Sync {
    /// The epoch to compute an answer at (read before the data is), or `None` when changes
    /// could go unheard right now: nothing is cached or read then.
    fn current(&self) -> Option<u64>;
    /// Whether a fact named by one of `tags` changed after `epoch` (or everything did).
    fn changed_since(&self, epoch: u64, tags: &[u64]) -> bool;
}

/// What makes a cache's entries stale.
#[derive(Clone)]
pub enum Invalidation {
    /// Nothing: the answers cannot change while the process runs (static users), so entries
    /// end with their TTL or when the cache is full.
    Never,
    /// Announced changes to the facts each entry depends on (and no TTL).
    Changes(Arc<dyn Changes>),
}

impl std::fmt::Debug for Invalidation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Invalidation::Never => "Never",
            Invalidation::Changes(_) => "Changes",
        })
    }
}

impl Invalidation {
    fn current(&self) -> Option<u64> {
        match self {
            Invalidation::Never => Some(0),
            Invalidation::Changes(changes) => changes.current(),
        }
    }

    fn changed_since(&self, epoch: u64, tags: &[u64]) -> bool {
        match self {
            Invalidation::Never => false,
            Invalidation::Changes(changes) => changes.changed_since(epoch, tags),
        }
    }
}

/// A kept answer: until when (if it ends by itself), the epoch it was computed at and the
/// facts it depends on.
struct Entry<V> {
    value: V,
    expires: Option<Instant>,
    epoch: u64,
    depends_on: Box<[u64]>,
}

/// A cache of `V` by `K`, bounded by [`CacheSettings`] and invalidated by an [`Invalidation`].
pub struct Cache<K, V> {
    invalidation: Invalidation,
    settings: CacheSettings,
    counters: &'static CacheCounters,
    entries: Mutex<HashMap<K, Entry<V>>>,
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
            entries: Mutex::new(HashMap::new()),
        }
    }

    /// The epoch to compute an answer at (read before the data it depends on is), or `None`
    /// when answers may not be cached now.
    pub fn generation(&self) -> Option<u64> {
        if self.settings.capacity == 0 || self.settings.ttl.is_zero() {
            return None;
        }
        self.invalidation.current()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<K, Entry<V>>> {
        self.entries.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The cached answer for `key`, when it is unexpired and none of the facts it depends on
    /// changed since it was computed; a stale entry is dropped.
    pub fn get(&self, key: &K) -> Option<V> {
        let found = match self.generation() {
            None => None,
            Some(_) => {
                let mut entries = self.lock();
                let fresh = entries.get(key).map(|entry| {
                    entry.expires.is_none_or(|expires| expires > Instant::now())
                        && !self
                            .invalidation
                            .changed_since(entry.epoch, &entry.depends_on)
                });
                match fresh {
                    Some(true) => entries.get(key).map(|entry| entry.value.clone()),
                    Some(false) => {
                        entries.remove(key);
                        None
                    }
                    None => None,
                }
            }
        };
        let counter = if found.is_some() {
            &self.counters.hits
        } else {
            &self.counters.misses
        };
        counter.fetch_add(1, Ordering::Relaxed);
        found
    }

    /// Keeps `value`, computed at `generation` from the facts named by `depends_on`, until
    /// `expires` (without invalidation, at most the cache's TTL from now); not kept when one of
    /// them changed since.
    pub fn insert(
        &self,
        generation: u64,
        key: K,
        value: V,
        expires: Option<Instant>,
        depends_on: Vec<u64>,
    ) {
        if self.generation().is_none() {
            return;
        }
        let now = Instant::now();
        let expires = match self.invalidation {
            Invalidation::Changes(_) => expires,
            // A TTL beyond what the clock can count is no limit of its own.
            Invalidation::Never => match (expires, now.checked_add(self.settings.ttl)) {
                (Some(e), Some(limit)) => Some(e.min(limit)),
                (e, limit) => e.or(limit),
            },
        };
        let mut entries = self.lock();
        // Checked under the lock: a change announced before this answer is kept is seen here;
        // one announced after is seen by `get`.
        if self.invalidation.changed_since(generation, &depends_on) {
            return;
        }
        if entries.len() >= self.settings.capacity && !entries.contains_key(&key) {
            let invalidation = &self.invalidation;
            entries.retain(|_, e| {
                e.expires.is_none_or(|expires| expires > now)
                    && !invalidation.changed_since(e.epoch, &e.depends_on)
            });
            if entries.len() >= self.settings.capacity {
                entries.clear();
            }
        }
        entries.insert(
            key,
            Entry {
                value,
                expires,
                epoch: generation,
                depends_on: depends_on.into_boxed_slice(),
            },
        );
    }

    /// How many entries are kept (expired ones included until they are dropped).
    #[cfg(test)]
    fn len(&self) -> usize {
        self.lock().len()
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap as Announced;
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
            cache.insert(generation, i, i * 10, None, Vec::new());
        }
        assert_eq!(cache.get(&2), Some(20));
        cache.insert(generation, 3, 30, None, Vec::new());
        assert!(cache.len() <= 3);
        assert_eq!(cache.get(&3), Some(30));
        // A shorter expiry wins over the TTL.
        cache.insert(generation, 4, 40, Some(Instant::now()), Vec::new());
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

    /// A clock for tests: the epoch, the last epoch each tag was announced at, and whether
    /// changes are heard.
    #[derive(Default)]
    struct Clock {
        epoch: AtomicU64,
        announced: Mutex<Announced<u64, u64>>,
        deaf: AtomicBool,
    }

    impl Clock {
        fn announce(&self, tag: u64) {
            let epoch = self.epoch.fetch_add(1, Ordering::SeqCst) + 1;
            self.announced.lock().unwrap().insert(tag, epoch);
        }
    }

    impl Changes for Clock {
        fn current(&self) -> Option<u64> {
            (!self.deaf.load(Ordering::SeqCst)).then(|| self.epoch.load(Ordering::SeqCst))
        }

        fn changed_since(&self, epoch: u64, tags: &[u64]) -> bool {
            let announced = self.announced.lock().unwrap();
            tags.iter()
                .any(|t| announced.get(t).is_some_and(|&e| e > epoch))
        }
    }

    #[test]
    fn an_announced_change_drops_only_its_dependents_and_a_deaf_clock_disables_the_cache() {
        let clock = Arc::new(Clock::default());
        let cache = Cache::new(
            Invalidation::Changes(clock.clone()),
            settings(10, Duration::from_secs(60)),
            &TEST,
        );
        let before = cache.generation().unwrap();
        cache.insert(before, "a", 1, None, vec![1, 2]);
        cache.insert(before, "b", 2, None, vec![3]);
        assert_eq!(cache.get(&"a"), Some(1));
        clock.announce(2);
        assert_eq!(cache.get(&"a"), None);
        assert_eq!(cache.get(&"b"), Some(2));
        // An answer computed before a change to what it depends on is not kept.
        cache.insert(before, "a", 1, None, vec![2]);
        assert_eq!(cache.get(&"a"), None);
        let now = cache.generation().unwrap();
        cache.insert(now, "a", 1, None, vec![2]);
        assert_eq!(cache.get(&"a"), Some(1));
        clock.deaf.store(true, Ordering::SeqCst);
        assert_eq!(cache.get(&"b"), None);
    }

    #[test]
    fn answers_invalidated_by_changes_outlive_the_ttl_and_end_only_with_their_own_expiry() {
        let clock = Arc::new(Clock::default());
        let cache = Cache::new(
            Invalidation::Changes(clock.clone()),
            settings(10, Duration::from_millis(1)),
            &TEST,
        );
        let generation = cache.generation().unwrap();
        cache.insert(generation, "password", 1, None, vec![1]);
        let session_ends = Instant::now() + Duration::from_millis(30);
        cache.insert(generation, "session", 2, Some(session_ends), vec![2]);
        std::thread::sleep(Duration::from_millis(5));
        assert_eq!(cache.get(&"password"), Some(1));
        assert_eq!(cache.get(&"session"), Some(2));
        std::thread::sleep(session_ends.saturating_duration_since(Instant::now()));
        assert_eq!(cache.get(&"session"), None);
        assert_eq!(cache.get(&"password"), Some(1));
        clock.announce(1);
        assert_eq!(cache.get(&"password"), None);
    }
}
