//! How long a token lives: by what it grants (pull-only tokens short, tokens that write long
//! enough for large layers) and by who holds it (robots).

use std::fmt;
use std::time::Duration;

use crate::access::Action;
use crate::mint::{AccessEntry, MIN_LIFETIME};

/// Which lifetime a token gets.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum LifetimeClass {
    /// Tokens granting only `pull`, or nothing.
    Pull,
    /// Tokens granting `push`, `delete` or `*` on any resource.
    Push,
    /// Tokens of robots, whatever they grant.
    Robot,
}

impl fmt::Display for LifetimeClass {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            LifetimeClass::Pull => "pull",
            LifetimeClass::Push => "push",
            LifetimeClass::Robot => "robot",
        })
    }
}

/// The longest lifetime accepted: ten years, far beyond any sensible setting, so that `exp`
/// never overflows.
pub const MAX_LIFETIME: Duration = Duration::from_secs(10 * 366 * 24 * 3600);

/// A lifetime outside [`MIN_LIFETIME`]..=[`MAX_LIFETIME`] was given.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "the {class} token lifetime must be between {min}s and {max}s, got {seconds}s",
    min = MIN_LIFETIME.as_secs(),
    max = MAX_LIFETIME.as_secs()
)]
pub struct LifetimeError {
    pub class: LifetimeClass,
    pub seconds: u64,
}

/// The lifetimes tokens are given, each between [`MIN_LIFETIME`] and [`MAX_LIFETIME`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TokenLifetimes {
    pull: Duration,
    push: Duration,
    robot: Option<Duration>,
}

impl TokenLifetimes {
    /// `robot`, when given, is what robots' tokens get whatever they grant; otherwise robots
    /// get what everybody gets.
    pub fn new(
        pull: Duration,
        push: Duration,
        robot: Option<Duration>,
    ) -> Result<Self, LifetimeError> {
        let check = |class, lifetime: Duration| {
            if !(MIN_LIFETIME..=MAX_LIFETIME).contains(&lifetime) {
                Err(LifetimeError {
                    class,
                    seconds: lifetime.as_secs(),
                })
            } else {
                Ok(lifetime)
            }
        };
        Ok(TokenLifetimes {
            pull: check(LifetimeClass::Pull, pull)?,
            push: check(LifetimeClass::Push, push)?,
            robot: robot
                .map(|robot| check(LifetimeClass::Robot, robot))
                .transpose()?,
        })
    }

    /// The same lifetime for every token.
    pub fn uniform(lifetime: Duration) -> Result<Self, LifetimeError> {
        TokenLifetimes::new(lifetime, lifetime, None)
    }

    /// The class of a token granting `access` to a robot (`robot = true`) or anybody else.
    pub fn class(&self, access: &[AccessEntry], robot: bool) -> LifetimeClass {
        if robot && self.robot.is_some() {
            LifetimeClass::Robot
        } else if access.iter().any(|entry| {
            [Action::Push, Action::Delete, Action::All]
                .iter()
                .any(|action| entry.actions.contains(*action))
        }) {
            LifetimeClass::Push
        } else {
            LifetimeClass::Pull
        }
    }

    /// The lifetime of a token granting `access` to a robot (`robot = true`) or anybody else.
    pub fn for_token(&self, access: &[AccessEntry], robot: bool) -> Duration {
        self.of(self.class(access, robot))
    }

    /// The lifetime of `class` (robots without a lifetime of their own: the push lifetime,
    /// the longest they could get otherwise).
    pub fn of(&self, class: LifetimeClass) -> Duration {
        match class {
            LifetimeClass::Pull => self.pull,
            LifetimeClass::Push => self.push,
            LifetimeClass::Robot => self.robot.unwrap_or(self.push),
        }
    }

    /// The longest lifetime any token can have: how long a retired key must stay published.
    pub fn longest(&self) -> Duration {
        self.pull.max(self.push).max(self.robot.unwrap_or_default())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::access::ActionSet;
    use crate::scope::Scope;

    fn entry(scope: &str, actions: &[Action]) -> AccessEntry {
        let scope: Scope = scope.parse().unwrap();
        AccessEntry::granted(&scope, ActionSet::of(actions))
    }

    fn lifetimes(robot: Option<u64>) -> TokenLifetimes {
        TokenLifetimes::new(
            Duration::from_secs(300),
            Duration::from_secs(3600),
            robot.map(Duration::from_secs),
        )
        .unwrap()
    }

    #[test]
    fn tokens_granting_only_pull_or_nothing_get_the_pull_lifetime() {
        let l = lifetimes(None);
        assert_eq!(l.for_token(&[], false), Duration::from_secs(300));
        let pull_only = [
            entry("repository:acme/web:pull,push", &[Action::Pull]),
            entry("repository:acme/api:push", &[]),
        ];
        assert_eq!(l.for_token(&pull_only, false), Duration::from_secs(300));
    }

    #[test]
    fn tokens_granting_push_delete_or_star_anywhere_get_the_push_lifetime() {
        let l = lifetimes(None);
        for action in [Action::Push, Action::Delete, Action::All] {
            let access = [
                entry("repository:acme/base:pull", &[Action::Pull]),
                entry("repository:acme/web:*", &[action]),
            ];
            assert_eq!(l.class(&access, false), LifetimeClass::Push, "{action}");
            assert_eq!(l.for_token(&access, false), Duration::from_secs(3600));
        }
    }

    #[test]
    fn robots_get_their_own_lifetime_when_one_is_set_and_the_class_lifetime_otherwise() {
        let pull = [entry("repository:acme/web:pull", &[Action::Pull])];
        assert_eq!(
            lifetimes(Some(120)).for_token(&pull, true),
            Duration::from_secs(120)
        );
        assert_eq!(
            lifetimes(Some(120)).for_token(&pull, false),
            Duration::from_secs(300)
        );
        assert_eq!(
            lifetimes(None).for_token(&pull, true),
            Duration::from_secs(300)
        );
    }

    #[test]
    fn lifetimes_under_a_minute_or_over_ten_years_are_refused_naming_their_class() {
        let minute = Duration::from_secs(60);
        let short = Duration::from_secs(59);
        assert!(TokenLifetimes::new(minute, minute, Some(minute)).is_ok());
        for (pull, push, robot, class) in [
            (short, minute, None, LifetimeClass::Pull),
            (minute, short, None, LifetimeClass::Push),
            (minute, minute, Some(short), LifetimeClass::Robot),
        ] {
            let err = TokenLifetimes::new(pull, push, robot).unwrap_err();
            assert_eq!(err, LifetimeError { class, seconds: 59 });
            assert!(err.to_string().contains(&format!("{class} token lifetime")));
        }
        let err = TokenLifetimes::uniform(MAX_LIFETIME + Duration::from_secs(1)).unwrap_err();
        assert_eq!(err.class, LifetimeClass::Pull);
    }

    #[test]
    fn the_longest_lifetime_covers_every_class() {
        assert_eq!(lifetimes(None).longest(), Duration::from_secs(3600));
        assert_eq!(lifetimes(Some(7200)).longest(), Duration::from_secs(7200));
    }
}
