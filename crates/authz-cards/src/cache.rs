//! The card plugins' caches: answers computed from the card store, each kept with the store
//! generation it was computed from. The whole cache is emptied as soon as that generation
//! moves: any change to the store, made by this process or heard from another instance
//! sharing the database. Without a live change feed nothing is cached.

use cardgate_password::{CacheCounters, Invalidation};
use cardgate_store::Store;

pub(crate) use cardgate_password::{Cache, CacheSettings};

/// Authorization decisions.
pub(crate) static DECISIONS: CacheCounters = CacheCounters::new("decisions");

/// The hit and miss counters of every cache of the card plugins: verified credentials (a
/// counter shared with every other verified-credentials cache, the static users' included)
/// and decisions.
pub fn cache_counters() -> [&'static CacheCounters; 2] {
    [&cardgate_password::CREDENTIALS, &DECISIONS]
}

/// Invalidation by `store`'s generations.
pub(crate) fn store_generations(store: &Store) -> Invalidation {
    let store = store.clone();
    Invalidation::Generations(Box::new(move || store.generation().current()))
}
