//! Throttling of failed logins, per account and per client address.
//!
//! Failures (a wrong password or session token on the token endpoint, the OAuth2 password grant
//! or the admin login) are counted in a fixed window that starts at the first failure. Once an
//! account or an address has `*_failures` failures in its window, every login for it is refused
//! until the window ends, right password or wrong: the answer never tells which. Successful
//! logins are never counted, so any number of parallel valid pulls go through.
//!
//! A refused attempt waits as long as a password check takes (the median of the latest real
//! checks) before answering, so timing does not tell a locked account from a wrong password;
//! it waits asleep, spending no CPU and taking no turn of the password checker, so hammering a
//! locked account does not slow anyone else's login.
//!
//! The counters live in two bounded caches (`max_entries` each): state never grows without
//! bound, whatever names or addresses an attacker sprays.
//!
//! With the card store configured, an account's failures are also counted in the database,
//! shared by every instance (the `shared` module): the account limit holds for the whole
//! fleet, and a lock made on one instance holds on all. The address counters stay per
//! instance. When the database cannot be read or written, each instance falls back to its own
//! counters (which it always keeps), so the limit then holds per instance, as without a card
//! store.

mod shared;

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::{Duration, Instant};

use actix_web::HttpRequest;
use cardgate_authz::Credentials;
use cardgate_store::Store;
use moka::sync::Cache;
use secrecy::SecretString;
use serde::Deserialize;

/// The longest account name kept as a key; longer names share the key of their prefix.
const MAX_ACCOUNT_KEY_CHARS: usize = 256;

/// `[throttle]`: how failed logins are limited.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ThrottleSettings {
    /// Counting failures at all.
    pub enabled: bool,
    /// The window failures are counted in, from the first failure, in seconds. 1 to 86,400.
    pub window_seconds: u64,
    /// Failures of one account, from anywhere, before it is locked for the rest of the window.
    /// 1 to 1,000,000.
    pub account_failures: u32,
    /// Failures from one client address, for any accounts, before it is locked. 1 to
    /// 1,000,000.
    pub address_failures: u32,
    /// How many accounts, and how many addresses, are tracked at most. 1 to 10,000,000.
    pub max_entries: u64,
    /// Peers whose `X-Forwarded-For` is believed: the client is the rightmost address in it
    /// that is not itself a trusted proxy. IP addresses: a list, or comma-separated text.
    #[serde(default, deserialize_with = "crate::settings::names")]
    pub trusted_proxies: Vec<String>,
}

/// The throttle settings make no sense; the message names the setting.
#[derive(Debug, thiserror::Error)]
#[error("`throttle.{0}`")]
pub struct ThrottleSettingsError(String);

/// Failures counted for one key since `started`.
#[derive(Debug, Clone, Copy)]
struct Window {
    started: Instant,
    failures: u32,
}

/// The failure counters and what they allow.
pub struct Throttle {
    enabled: bool,
    window: Duration,
    account_failures: u32,
    address_failures: u32,
    trusted_proxies: Vec<IpAddr>,
    accounts: Cache<String, Window>,
    addresses: Cache<IpAddr, Window>,
    max_entries: u64,
    /// The accounts' failures in the database, shared by the instances.
    shared: Option<shared::SharedAccounts>,
}

impl std::fmt::Debug for Throttle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Throttle")
            .field("enabled", &self.enabled)
            .field("window", &self.window)
            .field("account_failures", &self.account_failures)
            .field("address_failures", &self.address_failures)
            .field("trusted_proxies", &self.trusted_proxies)
            .field("shared", &self.shared.is_some())
            .finish_non_exhaustive()
    }
}

/// A login refused because its account or address is locked.
#[derive(Debug, Clone, Copy)]
pub struct Locked {
    retry_after: Duration,
}

impl Locked {
    /// Whole seconds until the lock ends (at least 1): the `Retry-After` value.
    pub fn retry_after_seconds(&self) -> u64 {
        let seconds = self.retry_after.as_secs();
        if self.retry_after.subsec_nanos() > 0 || seconds == 0 {
            seconds + 1
        } else {
            seconds
        }
    }
}

/// A login the throttle let through; tell it when the credentials turn out wrong.
#[derive(Debug)]
pub struct Attempt<'a> {
    throttle: &'a Throttle,
    address: IpAddr,
    account: Option<String>,
}

impl Attempt<'_> {
    /// Counts this attempt as a failure of its account and its address.
    pub async fn failed(self) {
        let throttle = self.throttle;
        if !throttle.enabled {
            return;
        }
        let now = Instant::now();
        count_failure(&throttle.addresses, self.address, now, throttle.window);
        if let Some(account) = self.account {
            if let Some(shared) = &throttle.shared
                && let Err(e) = shared.failed(&account).await
            {
                tracing::warn!(error = %e, "login failure counted by this instance only");
            }
            count_failure(&throttle.accounts, account, now, throttle.window);
        }
    }
}

fn count_failure<K>(cache: &Cache<K, Window>, key: K, now: Instant, window: Duration)
where
    K: std::hash::Hash + Eq + Send + Sync + 'static,
{
    cache.entry(key).and_upsert_with(|current| match current {
        Some(entry) if now.duration_since(entry.value().started) < window => Window {
            failures: entry.value().failures.saturating_add(1),
            ..*entry.value()
        },
        _ => Window {
            started: now,
            failures: 1,
        },
    });
}

/// How long `key` stays locked, if it is.
fn lock_of<K>(cache: &Cache<K, Window>, key: &K, limit: u32, window: Duration) -> Option<Duration>
where
    K: std::hash::Hash + Eq + Send + Sync + 'static,
{
    let entry = cache.get(key)?;
    if entry.failures < limit {
        return None;
    }
    let now = Instant::now();
    // A window beyond what the clock can count never ends: locked for a whole window more.
    match entry.started.checked_add(window) {
        Some(ends) => (now < ends).then(|| ends - now),
        None => Some(window),
    }
}

/// A cache of at most `capacity` windows; an entry lives one window after its last failure,
/// long enough for every lock.
fn bounded<K>(capacity: u64, window: Duration) -> Cache<K, Window>
where
    K: std::hash::Hash + Eq + Send + Sync + 'static,
{
    Cache::builder()
        .max_capacity(capacity)
        .time_to_live(window)
        .build()
}

/// The key of an account: `alice` and `user-alice` are one account of the card store.
fn account_key(username: &str) -> String {
    let name = username.strip_prefix("user-").unwrap_or(username);
    name.chars()
        .take(MAX_ACCOUNT_KEY_CHARS)
        .collect::<String>()
        .to_lowercase()
}

/// The address of an `X-Forwarded-For` hop: an IP address, bare or with a port (`ip:port`,
/// `[v6]:port`, as some proxies write it), or a bracketed IPv6 address.
fn forwarded_address(hop: &str) -> Option<IpAddr> {
    let hop = hop.trim();
    hop.parse::<IpAddr>()
        .ok()
        .or_else(|| hop.parse::<SocketAddr>().ok().map(|a| a.ip()))
        .or_else(|| hop.strip_prefix('[')?.strip_suffix(']')?.parse().ok())
}

/// The key of an address: IPv4 (also when mapped into IPv6) as is, IPv6 by its /64, the
/// smallest block one subscriber usually holds.
pub(crate) fn address_key(address: IpAddr) -> IpAddr {
    match address {
        IpAddr::V4(_) => address,
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => {
                let segments = v6.segments();
                IpAddr::V6(std::net::Ipv6Addr::new(
                    segments[0],
                    segments[1],
                    segments[2],
                    segments[3],
                    0,
                    0,
                    0,
                    0,
                ))
            }
        },
    }
}

impl Throttle {
    /// Checks the settings.
    pub fn new(settings: &ThrottleSettings) -> Result<Self, ThrottleSettingsError> {
        let positive = |name: &str, value: u64| {
            if value == 0 {
                Err(ThrottleSettingsError(format!("{name} must be at least 1")))
            } else {
                Ok(())
            }
        };
        positive("window_seconds", settings.window_seconds)?;
        positive("account_failures", settings.account_failures.into())?;
        positive("address_failures", settings.address_failures.into())?;
        positive("max_entries", settings.max_entries)?;
        let trusted_proxies = settings
            .trusted_proxies
            .iter()
            .map(|p| {
                p.parse::<IpAddr>().map_err(|_| {
                    ThrottleSettingsError(format!("trusted_proxies: `{p}` is not an IP address"))
                })
            })
            .collect::<Result<Vec<_>, _>>()?;
        let window = Duration::from_secs(settings.window_seconds);
        Ok(Throttle {
            enabled: settings.enabled,
            window,
            account_failures: settings.account_failures,
            address_failures: settings.address_failures,
            trusted_proxies,
            accounts: bounded(settings.max_entries, window),
            addresses: bounded(settings.max_entries, window),
            shared: None,
            max_entries: settings.max_entries,
        })
    }

    /// Counts the accounts' failures in `store` too, shared with every instance using it
    /// (when throttling is enabled); starts listening for the failures they record.
    pub fn shared_through(mut self, store: &Store) -> Self {
        if self.enabled {
            self.shared = Some(shared::SharedAccounts::new(
                store.clone(),
                self.window,
                self.max_entries,
            ));
        }
        self
    }

    /// Whether failures recorded by other instances are heard, when the accounts' failures are
    /// shared.
    pub fn failures_heard(&self) -> Option<bool> {
        self.shared.as_ref().map(shared::SharedAccounts::heard)
    }

    /// How long `account` stays locked by the failures counted in the database, if it does;
    /// `None` too when the database cannot tell (the local counters then decide).
    async fn shared_lock(&self, account: &str) -> Option<Duration> {
        let shared = self.shared.as_ref()?;
        match shared.window(account).await {
            Ok(window) => window
                .filter(|w| w.failures >= self.account_failures)
                .map(|w| w.remaining),
            Err(e) => {
                tracing::warn!(error = %e, "login failures unreadable: this instance's count decides");
                None
            }
        }
    }

    /// The client's address: the peer's, or, when the peer is a trusted proxy, the rightmost
    /// address of `X-Forwarded-For` that is not a trusted proxy.
    pub fn client_address(&self, req: &HttpRequest) -> IpAddr {
        let peer = req
            .peer_addr()
            .map_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED), |a| a.ip());
        if !self.trusted_proxies.contains(&peer) {
            return peer;
        }
        let forwarded: Vec<&str> = req
            .headers()
            .get_all("x-forwarded-for")
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .collect();
        let mut client = peer;
        for hop in forwarded.iter().rev() {
            let Some(address) = forwarded_address(hop) else {
                break;
            };
            client = address;
            if !self.trusted_proxies.contains(&address) {
                break;
            }
        }
        client
    }

    /// Lets a login through, or refuses it when its account or its address is locked. A
    /// refused login first waits as long as a password check takes. Requests without
    /// credentials are never refused.
    pub async fn admit(
        &self,
        req: &HttpRequest,
        credentials: &Credentials,
    ) -> Result<Attempt<'_>, Locked> {
        let address = address_key(self.client_address(req));
        let account = match credentials {
            Credentials::Password { username, .. } => Some(account_key(username)),
            Credentials::Anonymous => {
                return Ok(Attempt {
                    throttle: self,
                    address,
                    account: None,
                });
            }
        };
        if self.enabled {
            let account_lock = match &account {
                Some(account) => {
                    let local =
                        lock_of(&self.accounts, account, self.account_failures, self.window);
                    local.max(self.shared_lock(account).await)
                }
                None => None,
            };
            let address_lock = lock_of(
                &self.addresses,
                &address,
                self.address_failures,
                self.window,
            );
            if let Some(retry_after) = account_lock.max(address_lock) {
                // Nothing to do if it fails: the answer is a refusal either way.
                let _ = cardgate_password::wait_like_a_check().await;
                tracing::warn!(
                    account = account.as_deref().unwrap_or_default(),
                    %address,
                    by_account = account_lock.is_some(),
                    by_address = address_lock.is_some(),
                    "login refused: too many failures"
                );
                return Err(Locked { retry_after });
            }
        }
        Ok(Attempt {
            throttle: self,
            address,
            account,
        })
    }

    /// Counts a login refused before any check, its user name being malformed, as a failure of
    /// its account and its address; refused like any login while either is locked.
    pub async fn malformed_login(&self, req: &HttpRequest, username: &str) -> Result<(), Locked> {
        let credentials = Credentials::Password {
            username: username.to_owned(),
            password: SecretString::from(""),
        };
        self.admit(req, &credentials).await?.failed().await;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    fn settings(max_entries: u64) -> ThrottleSettings {
        ThrottleSettings {
            enabled: true,
            window_seconds: 60,
            account_failures: 3,
            address_failures: 10,
            max_entries,
            trusted_proxies: Vec::new(),
        }
    }

    #[test]
    fn the_counters_stay_within_max_entries_whatever_is_sprayed() {
        let throttle = Throttle::new(&settings(100)).unwrap();
        let now = Instant::now();
        for i in 0..20_000u32 {
            count_failure(
                &throttle.accounts,
                format!("spray-{i}"),
                now,
                throttle.window,
            );
            count_failure(
                &throttle.addresses,
                IpAddr::V4(Ipv4Addr::from(i)),
                now,
                throttle.window,
            );
        }
        throttle.accounts.run_pending_tasks();
        throttle.addresses.run_pending_tasks();
        assert!(throttle.accounts.entry_count() <= 100);
        assert!(throttle.addresses.entry_count() <= 100);
    }

    #[test]
    fn an_account_locks_at_its_limit_and_only_for_the_window() {
        let throttle = Throttle::new(&settings(100)).unwrap();
        let now = Instant::now();
        for _ in 0..2 {
            count_failure(&throttle.accounts, "alice".to_owned(), now, throttle.window);
        }
        let lock = || lock_of(&throttle.accounts, &"alice".to_owned(), 3, throttle.window);
        assert!(lock().is_none());
        count_failure(&throttle.accounts, "alice".to_owned(), now, throttle.window);
        let remaining = lock().unwrap();
        assert!(remaining <= Duration::from_secs(60) && remaining > Duration::from_secs(50));
        let long_ago = now - Duration::from_secs(61);
        throttle.accounts.insert(
            "alice".to_owned(),
            Window {
                started: long_ago,
                failures: 99,
            },
        );
        assert!(lock().is_none());
    }

    #[test]
    fn account_names_and_ipv6_addresses_are_grouped() {
        assert_eq!(account_key("user-Alice"), account_key("alice"));
        assert_eq!(
            account_key(&"x".repeat(10_000)).len(),
            MAX_ACCOUNT_KEY_CHARS
        );
        let a: IpAddr = "2001:db8:1:2:aaaa::1".parse().unwrap();
        let b: IpAddr = "2001:db8:1:2:bbbb::2".parse().unwrap();
        assert_eq!(address_key(a), address_key(b));
        let mapped: IpAddr = "::ffff:192.0.2.7".parse().unwrap();
        assert_eq!(address_key(mapped), "192.0.2.7".parse::<IpAddr>().unwrap());
    }

    #[test]
    fn forwarded_hops_parse_with_or_without_a_port() {
        let v4: IpAddr = "203.0.113.9".parse().unwrap();
        let v6: IpAddr = "2001:db8::7".parse().unwrap();
        for (hop, address) in [
            ("203.0.113.9", v4),
            (" 203.0.113.9:4711 ", v4),
            ("2001:db8::7", v6),
            ("[2001:db8::7]:443", v6),
            ("[2001:db8::7]", v6),
        ] {
            assert_eq!(forwarded_address(hop), Some(address), "{hop}");
        }
        for hop in ["unknown", "", "203.0.113.9:x", "[2001:db8::7", "_hidden"] {
            assert_eq!(forwarded_address(hop), None, "{hop}");
        }
    }

    #[test]
    fn zero_limits_are_refused_naming_the_setting() {
        let mut bad = settings(100);
        bad.account_failures = 0;
        let err = Throttle::new(&bad).unwrap_err().to_string();
        assert!(err.contains("throttle.account_failures"), "{err}");
    }

    #[test]
    fn retry_after_rounds_up_to_whole_seconds() {
        let locked = |ms| Locked {
            retry_after: Duration::from_millis(ms),
        };
        assert_eq!(locked(1).retry_after_seconds(), 1);
        assert_eq!(locked(1000).retry_after_seconds(), 1);
        assert_eq!(locked(1001).retry_after_seconds(), 2);
    }
}
