//! Actions and sets of actions, with the rule that decides what a request for `*` receives.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// One action a scope can ask for.
///
/// `*` is an action of its own: the registry treats a token holding `*` as holding every action.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Action {
    Pull,
    Push,
    Delete,
    All,
}

impl Action {
    /// Every action, in the order they are written.
    pub const EVERY: [Action; 4] = [Action::Pull, Action::Push, Action::Delete, Action::All];

    pub fn as_str(self) -> &'static str {
        match self {
            Action::Pull => "pull",
            Action::Push => "push",
            Action::Delete => "delete",
            Action::All => "*",
        }
    }

    const fn bit(self) -> u8 {
        match self {
            Action::Pull => 1,
            Action::Push => 2,
            Action::Delete => 4,
            Action::All => 8,
        }
    }
}

display_as_str!(Action);

impl FromStr for Action {
    type Err = UnknownAction;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "pull" => Ok(Action::Pull),
            "push" => Ok(Action::Push),
            "delete" => Ok(Action::Delete),
            "*" => Ok(Action::All),
            other => Err(UnknownAction(other.to_owned())),
        }
    }
}

/// An action name this server does not know.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown action `{0}` (known: pull, push, delete, *)")]
pub struct UnknownAction(pub String);

/// A set of actions. Small, `Copy`, and ordered as `pull, push, delete, *` when listed.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct ActionSet(u8);

impl ActionSet {
    pub const EMPTY: ActionSet = ActionSet(0);
    /// `pull`, `push` and `delete`: what `*` stands for in a repository scope.
    pub const EXPLICIT: ActionSet = ActionSet(1 | 2 | 4);

    pub fn of(actions: &[Action]) -> Self {
        actions.iter().fold(Self::EMPTY, |set, a| set.with(*a))
    }

    #[must_use]
    pub fn with(self, action: Action) -> Self {
        ActionSet(self.0 | action.bit())
    }

    pub fn contains(self, action: Action) -> bool {
        self.0 & action.bit() != 0
    }

    pub fn is_empty(self) -> bool {
        self.0 == 0
    }

    #[must_use]
    pub fn union(self, other: ActionSet) -> Self {
        ActionSet(self.0 | other.0)
    }

    #[must_use]
    pub fn intersection(self, other: ActionSet) -> Self {
        ActionSet(self.0 & other.0)
    }

    pub fn iter(self) -> impl Iterator<Item = Action> {
        Action::EVERY.into_iter().filter(move |a| self.contains(*a))
    }

    /// What a request for `self` receives when policy allows `allowed`.
    ///
    /// - Allowing `*` allows everything asked, `*` included.
    /// - Explicit actions are granted when allowed.
    /// - Asking for `*` without `*` being allowed yields the explicit actions that are allowed.
    ///   (For repositories, [`crate::Scope::grant`] turns all three back into `*`.)
    #[must_use]
    pub fn grant(self, allowed: ActionSet) -> ActionSet {
        if allowed.contains(Action::All) {
            return self;
        }
        let explicit = self.intersection(Self::EXPLICIT).intersection(allowed);
        if self.contains(Action::All) {
            explicit.union(allowed.intersection(Self::EXPLICIT))
        } else {
            explicit
        }
    }

    /// The action names, in canonical order.
    pub fn names(self) -> Vec<&'static str> {
        self.iter().map(Action::as_str).collect()
    }
}

impl fmt::Debug for ActionSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_set().entries(self.iter()).finish()
    }
}

impl fmt::Display for ActionSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.names().join(","))
    }
}

impl FromIterator<Action> for ActionSet {
    fn from_iter<I: IntoIterator<Item = Action>>(iter: I) -> Self {
        iter.into_iter().fold(Self::EMPTY, ActionSet::with)
    }
}

impl Serialize for ActionSet {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_seq(self.iter().map(Action::as_str))
    }
}

impl<'de> Deserialize<'de> for ActionSet {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let names = Vec::<String>::deserialize(deserializer)?;
        names
            .iter()
            .map(|n| n.parse::<Action>().map_err(serde::de::Error::custom))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(s: &str) -> ActionSet {
        s.split(',')
            .filter(|p| !p.is_empty())
            .map(|p| p.parse::<Action>().unwrap())
            .collect()
    }

    #[test]
    fn grant_table() {
        // (asked, allowed, granted)
        let cases = [
            ("pull", "pull,push", "pull"),
            ("pull,push", "pull", "pull"),
            ("push", "pull", ""),
            ("pull,push,delete", "*", "pull,push,delete"),
            ("*", "*", "*"),
            ("*", "pull", "pull"),
            ("*", "pull,delete", "pull,delete"),
            ("*", "pull,push,delete", "pull,push,delete"),
            ("*,pull", "pull,push", "pull,push"),
            ("delete", "pull,push", ""),
            ("delete", "delete", "delete"),
            ("pull", "", ""),
            ("", "*", ""),
        ];
        for (asked, allowed, granted) in cases {
            assert_eq!(
                set(asked).grant(set(allowed)),
                set(granted),
                "asked {asked}, allowed {allowed}"
            );
        }
    }

    #[test]
    fn serialises_in_canonical_order() {
        let json = serde_json::to_string(&set("*,delete,pull")).unwrap();
        assert_eq!(json, r#"["pull","delete","*"]"#);
        let back: ActionSet = serde_json::from_str(&json).unwrap();
        assert_eq!(back, set("pull,delete,*"));
    }

    #[test]
    fn unknown_action_names_are_refused_when_deserialising() {
        assert!(serde_json::from_str::<ActionSet>(r#"["pull","fly"]"#).is_err());
    }
}
