//! The password checker. Every check of the process runs here: at most one per core at a
//! time, argon2 and bcrypt alike, each argon2 check in a kept buffer. An argon2 check needs the
//! hash's whole memory cost (19 MiB with the default parameters); fresh buffers per check
//! would let a burst of logins, or the allocator's retention, grow the process without bound.

use std::sync::{LazyLock, Mutex, PoisonError};
use std::time::{Duration, Instant};

use argon2::Block;
use secrecy::{ExposeSecret, SecretString};
use tokio::sync::Semaphore;

use crate::hash::argon2id;
use crate::{HashedPassword, PasswordError, default_decoy};

/// How many of the latest checks' durations [`wait_like_a_check`] takes the median of.
const RECENT: usize = 31;

struct Checker {
    permits: Semaphore,
    /// Buffers of checks that ended: never more than there are permits.
    buffers: Mutex<Vec<Vec<Block>>>,
    recent: Mutex<Recent>,
}

/// The durations of the latest checks, as their callers saw them (waiting for a permit
/// included).
struct Recent {
    durations: [Duration; RECENT],
    next: usize,
    len: usize,
}

impl Recent {
    fn record(&mut self, duration: Duration) {
        self.durations[self.next] = duration;
        self.next = (self.next + 1) % RECENT;
        self.len = (self.len + 1).min(RECENT);
    }

    fn median(&self) -> Option<Duration> {
        let mut durations = self.durations.get(..self.len)?.to_vec();
        durations.sort_unstable();
        durations.get(durations.len() / 2).copied()
    }
}

fn cores() -> usize {
    std::thread::available_parallelism().map_or(2, usize::from)
}

static CHECKER: LazyLock<Checker> = LazyLock::new(|| Checker {
    permits: Semaphore::new(cores()),
    buffers: Mutex::new(Vec::new()),
    recent: Mutex::new(Recent {
        durations: [Duration::ZERO; RECENT],
        next: 0,
        len: 0,
    }),
});

impl Checker {
    fn buffers(&self) -> std::sync::MutexGuard<'_, Vec<Vec<Block>>> {
        self.buffers.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn recent(&self) -> std::sync::MutexGuard<'_, Recent> {
        self.recent.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// Whether `password` matches `hash`. Waits for one of the process's permits (one per core),
/// then checks on a blocking thread in a kept buffer. The permit and the buffer stay with the
/// check until it ends, also when the caller has gone meanwhile (a client that hung up):
/// abandoned checks still count against the bound.
pub async fn verify(hash: &HashedPassword, password: &SecretString) -> Result<bool, PasswordError> {
    let started = Instant::now();
    let (hash, password) = (hash.clone(), password.clone());
    bounded(move |buffer| {
        let matches = hash.matches(password.expose_secret().as_bytes(), buffer);
        CHECKER.recent().record(started.elapsed());
        Ok(matches)
    })
    .await
}

/// Hashes `password` with argon2id, the default parameters and a random salt, as a PHC string
/// (what `cardgate hash-password` prints). Takes a permit and a kept buffer as [`verify`]
/// does: making hashes (new users, changed passwords, the demo users at start-up) shares the
/// checks' bound on memory and CPU.
pub async fn hash(password: &SecretString) -> Result<String, PasswordError> {
    let password = password.clone();
    bounded(move |buffer| argon2id(password.expose_secret().as_bytes(), buffer)).await
}

/// Runs `work` on a blocking thread with a permit and a kept argon2 buffer, both held until it
/// ends.
async fn bounded<T: Send + 'static>(
    work: impl FnOnce(&mut Vec<Block>) -> Result<T, PasswordError> + Send + 'static,
) -> Result<T, PasswordError> {
    let checker: &'static Checker = &CHECKER;
    let permit = checker
        .permits
        .acquire()
        .await
        .map_err(|e| PasswordError::Check(e.to_string()))?;
    tokio::task::spawn_blocking(move || {
        let _permit = permit;
        let mut buffer = checker.buffers().pop().unwrap_or_default();
        let done = work(&mut buffer);
        checker.buffers().push(buffer);
        done
    })
    .await
    .map_err(|e| PasswordError::Check(e.to_string()))?
}

/// Takes about as long as a password check, spending neither CPU nor a permit: sleeps for the
/// median duration of the latest checks (from asking for a permit to the answer, as their
/// callers saw them). Before any check has been made, makes one, against [`default_decoy`].
/// For refusals (a locked account) that must not answer faster than a check would, without
/// letting their traffic take other users' turns.
pub async fn wait_like_a_check() -> Result<(), PasswordError> {
    let typical = CHECKER.recent().median();
    match typical {
        Some(duration) => {
            tokio::time::sleep(duration).await;
            Ok(())
        }
        None => verify(default_decoy(), &SecretString::from("not-a-password"))
            .await
            .map(drop),
    }
}

#[cfg(test)]
mod tests {
    use argon2::Params;

    use super::*;
    use crate::hash::tests::argon2id as hashed;

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn abandoned_checks_hold_their_permit_and_buffer_until_they_end() {
        // About ten milliseconds a check; every caller gives up after a fraction of that.
        let hash = hashed("wonderland", Params::new(8 * 1024, 4, 1, None).unwrap());
        let password = SecretString::from("wrong");
        let mut abandoned = Vec::new();
        for _ in 0..64 {
            let (hash, password) = (hash.clone(), password.clone());
            abandoned.push(tokio::spawn(async move {
                let _ = tokio::time::timeout(Duration::from_micros(200), verify(&hash, &password))
                    .await;
            }));
        }
        for task in abandoned {
            task.await.unwrap();
        }
        // Every check has ended once all permits are free again.
        let all = u32::try_from(cores()).unwrap();
        let _all = CHECKER.permits.acquire_many(all).await.unwrap();
        let buffers = CHECKER.buffers().len();
        // As many buffers as checks ever ran at once: never more than the permits.
        assert!(
            (1..=cores()).contains(&buffers),
            "{buffers} buffers for {} cores",
            cores()
        );
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn checks_verify_and_the_wait_takes_what_checks_take() {
        let hash = hashed("wonderland", Params::DEFAULT);
        assert!(
            verify(&hash, &SecretString::from("wonderland"))
                .await
                .unwrap()
        );
        assert!(!verify(&hash, &SecretString::from("nope")).await.unwrap());
        // A default argon2id check takes milliseconds; so does the wait, which checks nothing.
        let started = Instant::now();
        wait_like_a_check().await.unwrap();
        assert!(started.elapsed() >= Duration::from_millis(1));
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn made_hashes_are_argon2id_with_fresh_salts_and_verify() {
        let password = SecretString::from("wonderland");
        let (first, second) = (
            hash(&password).await.unwrap(),
            hash(&password).await.unwrap(),
        );
        assert!(
            first.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"),
            "{first}"
        );
        assert_ne!(first, second, "the same salt twice");
        let parsed = HashedPassword::argon2(&first).unwrap();
        assert!(verify(&parsed, &password).await.unwrap());
        assert!(!verify(&parsed, &SecretString::from("alice")).await.unwrap());
    }

    #[test]
    fn the_typical_check_is_the_median_of_the_latest() {
        let mut recent = Recent {
            durations: [Duration::ZERO; RECENT],
            next: 0,
            len: 0,
        };
        assert_eq!(recent.median(), None);
        for ms in [30, 10, 20] {
            recent.record(Duration::from_millis(ms));
        }
        assert_eq!(recent.median(), Some(Duration::from_millis(20)));
        // Only the latest RECENT count: older, slower checks are forgotten.
        for _ in 0..RECENT {
            recent.record(Duration::from_millis(5));
        }
        assert_eq!(recent.median(), Some(Duration::from_millis(5)));
    }
}
