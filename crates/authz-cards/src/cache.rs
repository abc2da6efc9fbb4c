//! The card plugins' caches: answers computed from the card store, each kept with the epoch it
//! was computed at and the tags ([`Tag`]) of every fact it rests on. A change announces the
//! tags of what it changed (on this instance before the call that made it returns, on every
//! other instance sharing the database through the change feed), and only the entries that
//! depend on one of them are dropped. Without a live change feed nothing is cached.
//!
//! What each cached answer depends on, and which change touches it:
//!
//! | answer                        | facts (tag)                                    | evicted by a change to                          |
//! |-------------------------------|------------------------------------------------|-------------------------------------------------|
//! | credentials: password         | user card (`slug`), its password (`password`)  | the user card; a password set or replaced      |
//! | credentials: session token    | user card (`slug`), the session (`card`)       | the user card; the session (deactivated...)    |
//! | decision: the actor           | user card (`slug`), its links (`links`: memberships, grants), each of its orgs (`card`), each role card it names, present or not (`slug`), its session (`card`) | the user; a membership added, removed or re-roled; an org of the user deactivated; a role card it holds; its session |
//! | decision: `repository:a/b`    | the image of `a/b` (`repository`), its links (`links`: grants); when push would be allowed, whether `org-a` is over its storage quota (`quota`) | the image card of `a/b` (created, markers, public flag, deactivated); a grant on it; `org-a` crossing its quota |
//! | decision: `registry:catalog`  | the actor's facts only                          | as for the actor                                |
//!
//! So a new session, refresh token or CI token (nothing depends on a card that did not exist)
//! and event cards (never announced) evict nothing; a first push of `acme/x` evicts only the
//! decisions about `acme/x`; pushes and pulls reported by the registry evict nothing, and an
//! org crossing its quota only the decisions on its repositories that allowed (or would allow)
//! a push; a password change or a deactivated user only that user's entries.

use std::sync::Arc;

use cardgate_password::{CacheCounters, Changes, Invalidation};
use cardgate_store::Store;

pub(crate) use cardgate_password::{Cache, CacheSettings};
pub(crate) use cardgate_store::Tag;

/// Authorization decisions.
pub(crate) static DECISIONS: CacheCounters = CacheCounters::new("decisions");

/// The hit and miss counters of every cache of the card plugins: verified credentials (a
/// counter shared with every other verified-credentials cache, the static users' included)
/// and decisions.
pub fn cache_counters() -> [&'static CacheCounters; 2] {
    [&cardgate_password::CREDENTIALS, &DECISIONS]
}

/// The store's change clock, as the caches see it.
struct StoreChanges(Store);

impl Changes for StoreChanges {
    fn current(&self) -> Option<u64> {
        self.0.generation().current()
    }

    fn changed_since(&self, epoch: u64, tags: &[u64]) -> bool {
        self.0.generation().changed_since(epoch, tags)
    }
}

/// Invalidation by the changes announced for `store`.
pub(crate) fn store_changes(store: &Store) -> Invalidation {
    Invalidation::Changes(Arc::new(StoreChanges(store.clone())))
}

/// Tags as the caches keep them.
pub(crate) fn tags(tags: impl IntoIterator<Item = Tag>) -> Vec<u64> {
    tags.into_iter().map(Tag::get).collect()
}
