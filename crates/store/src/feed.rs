//! The change feed: which cached answers a change makes stale, on every instance sharing the
//! database.
//!
//! Every committed write to `cards` or `links` announces, on [`CHANNEL`], *tags* naming what
//! it changed (statement triggers, see `migrations/0006_change_tags.sql`; a statement changing
//! more than 100 rows, a bulk load, announces `*`, everything):
//!
//! | tag                      | announced by a change to                                   |
//! |--------------------------|------------------------------------------------------------|
//! | [`Tag::card`]`(id)`      | the card `id` (creation, update, deactivation)              |
//! | [`Tag::slug`]`(slug)`    | the card with `slug` (users, orgs, roles, images, sessions) |
//! | [`Tag::repository`]`(r)` | the image card of repository `r`                            |
//! | [`Tag::password`]`(u)`   | a password card of the user `u`                             |
//! | [`Tag::links`]`(id)`     | a link from or to the card `id` (membership, grant)         |
//! | [`Tag::quota`]`(org)`    | the org `org` going over its storage quota, or back under   |
//!
//! Events and the links attaching them to their targets announce nothing: no answer depends
//! on them. A cached answer is kept with the tags of every fact it was computed from and the
//! [`Generation::current`] epoch read before the store was; it is stale as soon as one of its
//! tags is announced after that epoch ([`Generation::changed_since`]).
//!
//! [`Store::watch_changes`] keeps one listening connection per process and records each
//! announced tag; this process's own writes record theirs as soon as they commit, before the
//! call that made them returns (the triggers also gather the transaction's tags, which
//! [`Store::commit`] reads just before committing). While the listener is not connected there
//! is no current epoch, and caches are bypassed; when it connects (again), everything cached
//! before is dropped: a missed notification can never leave a stale answer in use.
//!
//! A connection can also die silently (a network partition, a stopped server process): the
//! listener would hear nothing, and nothing would tell it. So the process sends itself a
//! heartbeat on the same channel every few seconds (`ping:<process>:<n>`, through another
//! connection) and keeps the time it sent the last one it heard: PostgreSQL delivers
//! notifications in commit order, so every change committed before then has been heard. When
//! none was heard for the `silence` bound given to [`Store::watch_changes`], the connection is
//! given up as lost (caches bypassed, then everything dropped when a new one is heard). Cached
//! answers therefore need no age limit of their own: they stay until a change evicts them.
//!
//! Tags are hashed into a fixed table of slots (the last epoch each slot was announced at):
//! memory stays bounded whatever the store holds, and two tags sharing a slot only evict a
//! little more than needed, never less.

use std::collections::VecDeque;
use std::hash::{Hash, Hasher};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use tokio::time::Instant;

use sqlx::postgres::PgListener;
use uuid::Uuid;

use crate::Store;

/// The channel change notifications are sent on.
pub const CHANNEL: &str = "cardgate_changes";

/// How long the listener waits before connecting again after losing its connection.
const RECONNECT_DELAY: Duration = Duration::from_millis(500);

/// The heartbeats sent and not yet heard that are remembered (older ones are forgotten: hearing
/// a later one confirms more).
const HEARTBEATS_KEPT: usize = 16;

/// What a heartbeat's payload starts with (a tag never does).
const HEARTBEAT: &str = "ping:";

/// Slots of the table of last announcements (8 bytes each: 8 MiB). Two tags sharing a slot
/// evict each other's dependents: with a busy registry's 100 tags a second, a table of 65,536
/// slots evicted a cached password every few minutes for nothing (each an argon2id check
/// again); this many make it every few hours.
const SLOTS: usize = 1 << 20;

/// What a change announces, as its slot in the table: see the module's table.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Tag(u64);

impl Tag {
    /// Hashes a tag's text, as the triggers write it (`c:<uuid>`, `s:<slug>`...).
    fn of(text: &str) -> Tag {
        let mut hasher = std::hash::DefaultHasher::new();
        text.hash(&mut hasher);
        Tag(hasher.finish())
    }

    /// Any change to the card `id`.
    pub fn card(id: Uuid) -> Tag {
        Tag::of(&format!("c:{id}"))
    }

    /// A change to the card with `slug` (also one that creates it).
    pub fn slug(slug: &str) -> Tag {
        Tag::of(&format!("s:{slug}"))
    }

    /// A change to the image card of `repository` (also one that creates it).
    pub fn repository(repository: &str) -> Tag {
        Tag::of(&format!("r:{repository}"))
    }

    /// A change to a password card of the user `user_id`.
    pub fn password(user_id: Uuid) -> Tag {
        Tag::of(&format!("p:{user_id}"))
    }

    /// A change to a link from or to the card `id`.
    pub fn links(id: Uuid) -> Tag {
        Tag::of(&format!("l:{id}"))
    }

    /// The org with slug `org` going over its storage quota, or back under it (announced by
    /// `org_quotas`, see `migrations/0008_registry_events.sql`).
    pub fn quota(org: &str) -> Tag {
        Tag::of(&format!("q:{org}"))
    }

    /// The tag as a number, for caches that know nothing of the store.
    pub fn get(self) -> u64 {
        self.0
    }

    fn slot(hash: u64) -> usize {
        // Below `SLOTS`, which is a `usize`: the cast loses nothing.
        (hash % SLOTS as u64) as usize
    }
}

/// The store's change clock: an epoch advanced by every change, and the epoch each tag was
/// last announced at.
#[derive(Debug)]
pub struct Generation {
    epoch: AtomicU64,
    /// Answers computed before this epoch are all stale (the feed was interrupted, or a
    /// change could not be told).
    floor: AtomicU64,
    /// The last epoch a tag hashed to each slot was announced at.
    slots: Box<[AtomicU64]>,
    /// Whether changes made elsewhere are being heard.
    live: AtomicBool,
}

impl Default for Generation {
    fn default() -> Self {
        Generation {
            epoch: AtomicU64::new(1),
            floor: AtomicU64::new(0),
            slots: (0..SLOTS).map(|_| AtomicU64::new(0)).collect(),
            live: AtomicBool::new(false),
        }
    }
}

impl Generation {
    /// The epoch to compute an answer at (read before the store is), when cached answers may
    /// be used: `None` while changes made by other instances would go unheard.
    pub fn current(&self) -> Option<u64> {
        if self.live.load(Ordering::SeqCst) {
            Some(self.epoch.load(Ordering::SeqCst))
        } else {
            None
        }
    }

    /// Whether an answer computed at `epoch` from facts named by `tags` (see
    /// [`Tag::get`]) may have changed since.
    pub fn changed_since(&self, epoch: u64, tags: &[u64]) -> bool {
        epoch < self.floor.load(Ordering::SeqCst)
            || tags
                .iter()
                .any(|&tag| self.slots[Tag::slot(tag)].load(Ordering::SeqCst) > epoch)
    }

    /// Makes every answer computed so far stale.
    pub fn advance(&self) {
        let epoch = self.epoch.fetch_add(1, Ordering::SeqCst) + 1;
        self.floor.fetch_max(epoch, Ordering::SeqCst);
    }

    /// Makes stale the answers that depend on `tags`.
    pub fn touch(&self, tags: &[Tag]) {
        let epoch = self.epoch.fetch_add(1, Ordering::SeqCst) + 1;
        for tag in tags {
            self.slots[Tag::slot(tag.0)].fetch_max(epoch, Ordering::SeqCst);
        }
    }

    /// Records what a notification (or a transaction's gathered tags) announced: tags
    /// separated by spaces; `*`, or nothing at all (the notifications of older releases),
    /// means everything.
    pub fn announced(&self, text: &str) {
        let tags: Vec<&str> = text.split_ascii_whitespace().collect();
        if tags.is_empty() || tags.contains(&"*") {
            self.advance();
        } else {
            let tags: Vec<Tag> = tags.into_iter().map(Tag::of).collect();
            self.touch(&tags);
        }
    }

    fn set_live(&self, live: bool) {
        if live {
            self.advance();
            self.live.store(true, Ordering::SeqCst);
        } else {
            self.live.store(false, Ordering::SeqCst);
            self.advance();
        }
    }
}

/// Sleeps until `deadline`, or forever when there is none.
async fn sleep_until(deadline: Option<Instant>) {
    match deadline {
        Some(deadline) => tokio::time::sleep_until(deadline).await,
        None => std::future::pending().await,
    }
}

/// This process's heartbeats: its own mark, and when each of the last ones was sent.
struct Heartbeats {
    process: u64,
    next: u64,
    sent: VecDeque<(u64, Instant)>,
}

/// What a notification was.
#[derive(Debug, PartialEq)]
enum Heard<'a> {
    /// One of this process's heartbeats, sent at that time.
    Ours(Instant),
    /// Another process's heartbeat, or one of ours already forgotten.
    Others,
    /// A change, announcing these tags.
    Change(&'a str),
}

impl Heartbeats {
    fn new() -> Self {
        use std::hash::BuildHasher;
        Heartbeats {
            // Random per process (the standard library seeds its hashers from the system's
            // randomness): tells this process's heartbeats from the others'.
            process: std::hash::RandomState::new().hash_one(std::process::id()),
            next: 0,
            sent: VecDeque::with_capacity(HEARTBEATS_KEPT),
        }
    }

    /// The payload of the next heartbeat, remembered as sent now (a little before it is: the
    /// confirmation it brings is never later than the truth).
    fn send(&mut self) -> String {
        self.next += 1;
        if self.sent.len() == HEARTBEATS_KEPT {
            self.sent.pop_front();
        }
        self.sent.push_back((self.next, Instant::now()));
        format!("{HEARTBEAT}{:016x}:{}", self.process, self.next)
    }

    fn heard<'a>(&mut self, payload: &'a str) -> Heard<'a> {
        let Some(heartbeat) = payload.strip_prefix(HEARTBEAT) else {
            return Heard::Change(payload);
        };
        let ours = heartbeat
            .split_once(':')
            .filter(|(process, _)| *process == format!("{:016x}", self.process))
            .and_then(|(_, n)| n.parse::<u64>().ok());
        let Some(n) = ours else {
            return Heard::Others;
        };
        let Some(&(_, sent)) = self.sent.iter().find(|(sent, _)| *sent == n) else {
            return Heard::Others;
        };
        // Earlier ones can only confirm less.
        self.sent.retain(|(sent, _)| *sent > n);
        Heard::Ours(sent)
    }
}

impl Store {
    /// The change clock of the store's contents, for caches.
    pub fn generation(&self) -> &Generation {
        &self.generation
    }

    /// Listens for changes from every instance sharing the database, for as long as the
    /// runtime runs; reconnects when the connection is lost, or silent for longer than
    /// `silence` (its heartbeats unheard), dropping every cached answer (what was announced
    /// meanwhile is unknown). Caches are used only from the first heartbeat heard on a
    /// connection. Call once per store (process).
    pub fn watch_changes(&self, silence: Duration) -> tokio::task::JoinHandle<()> {
        let store = self.clone();
        // Below a second a busy database would lose the connection for nothing.
        let silence = silence.max(Duration::from_secs(1));
        // Well within the bound, so that one late heartbeat does not lose the connection.
        let every = (silence / 4).clamp(Duration::from_millis(100), Duration::from_secs(10));
        let mut heartbeats = Heartbeats::new();
        tokio::spawn(async move {
            loop {
                match store.listen().await {
                    Ok(listener) => {
                        let lost = store
                            .follow(listener, &mut heartbeats, silence, every)
                            .await;
                        store.generation.set_live(false);
                        tracing::warn!("change feed: {lost}, caches bypassed");
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, "change feed: cannot listen, caches bypassed");
                    }
                }
                tokio::time::sleep(RECONNECT_DELAY).await;
            }
        })
    }

    /// Records what `listener` hears until its connection is lost or silent; says which.
    async fn follow(
        &self,
        mut listener: PgListener,
        heartbeats: &mut Heartbeats,
        silence: Duration,
        every: Duration,
    ) -> &'static str {
        let mut confirmed = Instant::now();
        let mut ticks = tokio::time::interval(every);
        loop {
            let deadline = confirmed.checked_add(silence);
            tokio::select! {
                received = listener.try_recv() => {
                    // `Ok(None)`: the connection was lost; an error: likewise.
                    let Ok(Some(notification)) = received else {
                        return "connection lost";
                    };
                    match heartbeats.heard(notification.payload()) {
                        Heard::Ours(sent) => {
                            confirmed = confirmed.max(sent);
                            if self.generation.current().is_none() {
                                self.generation.set_live(true);
                            }
                        }
                        Heard::Others => {}
                        Heard::Change(tags) => self.generation.announced(tags),
                    }
                }
                _ = ticks.tick() => {
                    let payload = heartbeats.send();
                    let pool = self.pool.clone();
                    // Not awaited here: a busy pool must not delay what the listener hears.
                    tokio::spawn(async move {
                        if let Err(e) = sqlx::query("SELECT pg_notify($1, $2)")
                            .bind(CHANNEL)
                            .bind(payload)
                            .execute(&pool)
                            .await
                        {
                            tracing::debug!(error = %e, "change feed: cannot send a heartbeat");
                        }
                    });
                }
                () = sleep_until(deadline) => return "no heartbeat heard",
            }
        }
    }

    async fn listen(&self) -> Result<PgListener, sqlx::Error> {
        let mut listener = PgListener::connect_with(&self.pool).await?;
        // A lost connection is reported at once (the caller stops trusting its caches then),
        // not after an attempt to reconnect that may wait for the pool's acquire timeout.
        listener.eager_reconnect(false);
        listener.listen(CHANNEL).await?;
        Ok(listener)
    }

    /// Commits `tx`, then makes this process's cached answers that depend on what it changed
    /// stale (other instances hear of the change from the feed).
    pub(crate) async fn commit(
        &self,
        mut tx: sqlx::Transaction<'_, sqlx::Postgres>,
    ) -> crate::Result<()> {
        let gathered: Result<(Option<String>,), sqlx::Error> =
            sqlx::query_as("SELECT current_setting('cardgate.changed', true)")
                .fetch_one(&mut *tx)
                .await;
        let committed = tx.commit().await;
        // Also after a failed commit: whether it took effect is unknown.
        match gathered {
            Ok((Some(tags),)) if !tags.is_empty() => self.generation.announced(&tags),
            Ok(_) => {}
            Err(_) => self.generation.advance(),
        }
        Ok(committed?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn live() -> Generation {
        let generation = Generation::default();
        generation.set_live(true);
        generation
    }

    #[test]
    fn an_announced_tag_makes_stale_only_what_depends_on_it() {
        let generation = live();
        let alice = Tag::slug("user-alice").get();
        let bob = Tag::slug("user-bob").get();
        let before = generation.current().unwrap();
        generation.announced("s:user-alice c:00000000-0000-0000-0000-000000000000");
        assert!(generation.changed_since(before, &[bob, alice]));
        assert!(!generation.changed_since(before, &[bob]));
        // Computed after the announcement: current.
        let after = generation.current().unwrap();
        assert!(!generation.changed_since(after, &[alice]));
        // Everything, or nothing named (an older release's notification).
        for everything in ["*", "", "s:user-bob *"] {
            let at = generation.current().unwrap();
            generation.announced(everything);
            assert!(generation.changed_since(at, &[]), "{everything:?}");
        }
    }

    #[test]
    fn heartbeats_are_told_from_changes_and_from_other_processes() {
        let mut ours = Heartbeats::new();
        let mut theirs = Heartbeats::new();
        let first = ours.send();
        let second = ours.send();
        let other = theirs.send();
        assert!(first.starts_with(HEARTBEAT) && first != second);
        assert_eq!(ours.heard("s:user-alice"), Heard::Change("s:user-alice"));
        assert_eq!(ours.heard(&other), Heard::Others);
        assert!(matches!(ours.heard(&second), Heard::Ours(_)));
        // Hearing a later heartbeat confirms more than an earlier one could.
        assert_eq!(ours.heard(&first), Heard::Others);
        assert_eq!(ours.heard("ping:garbage"), Heard::Others);
        for _ in 0..HEARTBEATS_KEPT + 1 {
            ours.send();
        }
        assert!(ours.sent.len() <= HEARTBEATS_KEPT);
    }

    #[test]
    fn a_silent_feed_has_no_epoch_and_reconnecting_drops_everything() {
        let generation = live();
        let before = generation.current().unwrap();
        generation.set_live(false);
        assert_eq!(generation.current(), None);
        generation.set_live(true);
        assert!(generation.changed_since(before, &[]));
        let now = generation.current().unwrap();
        assert!(!generation.changed_since(now, &[Tag::repository("acme/web").get()]));
    }
}
