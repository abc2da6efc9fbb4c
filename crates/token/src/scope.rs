//! The scope grammar of the registry token protocol.
//!
//! `resourcetype[(class)]:resourcename:action[,action...]`. The type is everything before the
//! first `:`, the actions everything after the last `:`, and the name what lies between, so a
//! name may carry one `:` from a `host:port` prefix.

use std::fmt;
use std::str::FromStr;
use std::sync::LazyLock;

use regex::Regex;

use crate::access::{Action, ActionSet};

/// Longest repository name the registry accepts, in characters.
const MAX_NAME_LEN: usize = 255;

/// Most distinct scopes one request may ask for. Real clients ask for one to three.
pub const MAX_SCOPES: usize = 64;

/// A scope's type or class: `repository`, `registry`, `plugin`...
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ResourceType(String);

/// A resource name, validated against distribution's reference grammar: an optional
/// `host[:port]/` prefix, then lowercase path components joined by `/`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ResourceName(String);

/// One requested (or granted) scope.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Scope {
    pub resource_type: ResourceType,
    pub class: Option<ResourceType>,
    pub name: ResourceName,
    pub actions: ActionSet,
}

/// A scope that does not follow the grammar. Carries the offending text so that the error can
/// name it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid scope `{scope}`: {reason}")]
pub struct ScopeError {
    pub scope: String,
    pub reason: &'static str,
}

static TYPE_RE: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"^[a-z0-9]+(?:[._-][a-z0-9]+)*$").unwrap_or_else(|e| unreachable!("{e}"))
});

/// distribution/reference: `(domain/)?component(/component)*`.
static NAME_RE: LazyLock<Regex> = LazyLock::new(|| {
    let component = r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*";
    let domain_component = r"(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])";
    let domain = format!(r"{domain_component}(?:\.{domain_component})*(?::[0-9]+)?");
    Regex::new(&format!(r"^(?:{domain}/)?{component}(?:/{component})*$"))
        .unwrap_or_else(|e| unreachable!("{e}"))
});

/// `as_str` and `Display` for a validated `String` newtype.
macro_rules! string_newtype {
    ($type:ty) => {
        impl $type {
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        display_as_str!($type);
    };
}

string_newtype!(ResourceType);
string_newtype!(ResourceName);

impl FromStr for ResourceType {
    type Err = &'static str;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if TYPE_RE.is_match(s) {
            Ok(ResourceType(s.to_owned()))
        } else {
            Err("resource type must be lowercase letters and digits, separated by `.`, `_` or `-`")
        }
    }
}

impl FromStr for ResourceName {
    type Err = &'static str;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if s.len() > MAX_NAME_LEN {
            Err("resource name is longer than 255 characters")
        } else if NAME_RE.is_match(s) {
            Ok(ResourceName(s.to_owned()))
        } else {
            Err(
                "resource name must be lowercase path components ([a-z0-9] separated by `.`, `_`, `__` or `-`) joined by `/`, with an optional host[:port]/ prefix",
            )
        }
    }
}

impl Scope {
    /// What this request receives when policy allows `allowed` (see [`ActionSet::grant`]).
    /// A repository request for `*` that is allowed `pull`, `push` and `delete` receives `*`:
    /// for a repository those three are everything `*` stands for. For other types `*` is only
    /// ever granted when allowed as such (the registry's catalog needs `*` literally).
    pub fn grant(&self, allowed: ActionSet) -> ActionSet {
        let granted = self.actions.grant(allowed);
        if self.resource_type.as_str() == "repository"
            && self.actions.contains(Action::All)
            && granted == ActionSet::EXPLICIT
        {
            ActionSet::EMPTY.with(Action::All)
        } else {
            granted
        }
    }

    /// Whether two scopes name the same resource (and so merge).
    fn same_resource(&self, other: &Scope) -> bool {
        self.resource_type == other.resource_type
            && self.class == other.class
            && self.name == other.name
    }
}

impl FromStr for Scope {
    type Err = ScopeError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let err = |reason| ScopeError {
            scope: s.chars().take(MAX_NAME_LEN + 64).collect(),
            reason,
        };
        let (type_part, rest) = s
            .split_once(':')
            .ok_or_else(|| err("expected type:name:actions"))?;
        let (name_part, actions_part) = rest
            .rsplit_once(':')
            .ok_or_else(|| err("expected type:name:actions"))?;

        let (resource_type, class) = match type_part.split_once('(') {
            None => (type_part, None),
            Some((t, c)) => {
                let class = c
                    .strip_suffix(')')
                    .ok_or_else(|| err("resource class must be closed with `)`"))?;
                (t, Some(class.parse::<ResourceType>().map_err(err)?))
            }
        };
        let resource_type = resource_type.parse::<ResourceType>().map_err(err)?;
        let name = name_part.parse::<ResourceName>().map_err(err)?;

        let mut actions = ActionSet::EMPTY;
        for action in actions_part.split(',').filter(|a| !a.is_empty()) {
            match action.parse::<Action>() {
                Ok(a) => actions = actions.with(a),
                // The grammar allows any lowercase word; words we do not know are never granted.
                Err(_) if action.bytes().all(|b| b.is_ascii_lowercase()) => {}
                Err(_) => return Err(err("actions must be lowercase words or `*`")),
            }
        }
        Ok(Scope {
            resource_type,
            class,
            name,
            actions,
        })
    }
}

impl fmt::Display for Scope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.resource_type.as_str())?;
        if let Some(class) = &self.class {
            write!(f, "({class})")?;
        }
        write!(f, ":{}:{}", self.name, self.actions)
    }
}

/// Parses the `scope` values of one request: each value may hold several scopes separated by
/// spaces, and scopes naming the same resource are merged into one, in first-seen order.
pub fn parse_scopes<'a, I>(values: I) -> Result<Vec<Scope>, ScopeError>
where
    I: IntoIterator<Item = &'a str>,
{
    let mut scopes: Vec<Scope> = Vec::new();
    for value in values {
        for text in value.split(' ').filter(|t| !t.is_empty()) {
            let scope: Scope = text.parse()?;
            if let Some(existing) = scopes.iter_mut().find(|s| s.same_resource(&scope)) {
                existing.actions = existing.actions.union(scope.actions);
            } else if scopes.len() == MAX_SCOPES {
                return Err(ScopeError {
                    scope: scope.to_string(),
                    reason: "too many scopes in one request (at most 64)",
                });
            } else {
                scopes.push(scope);
            }
        }
    }
    Ok(scopes)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn scope(s: &str) -> Scope {
        s.parse().unwrap()
    }

    #[test]
    fn splits_type_name_and_actions() {
        let s = scope("repository:acme/web:pull,push");
        assert_eq!(s.resource_type.as_str(), "repository");
        assert_eq!(s.class, None);
        assert_eq!(s.name.as_str(), "acme/web");
        assert_eq!(s.actions, ActionSet::of(&[Action::Pull, Action::Push]));
    }

    #[test]
    fn type_class_is_split_off() {
        let s = scope("repository(plugin):acme/tool:pull");
        assert_eq!(s.resource_type.as_str(), "repository");
        assert_eq!(s.class.as_ref().map(ResourceType::as_str), Some("plugin"));
        assert_eq!(s.to_string(), "repository(plugin):acme/tool:pull");
    }

    #[test]
    fn names_keep_a_host_port_prefix_and_many_components() {
        let s = scope("repository:registry.example.com:5000/acme/team/web:pull");
        assert_eq!(s.name.as_str(), "registry.example.com:5000/acme/team/web");
        let s = scope("repository:localhost:5000/a/b/c/d:*");
        assert_eq!(s.name.as_str(), "localhost:5000/a/b/c/d");
        assert_eq!(s.actions, ActionSet::of(&[Action::All]));
    }

    #[test]
    fn catalog_scope_parses() {
        let s = scope("registry:catalog:*");
        assert_eq!(s.resource_type.as_str(), "registry");
        assert_eq!(s.name.as_str(), "catalog");
        assert!(s.actions.contains(Action::All));
    }

    #[test]
    fn duplicate_actions_merge() {
        assert_eq!(
            scope("repository:a:pull,pull,push,pull").to_string(),
            "repository:a:pull,push"
        );
    }

    #[test]
    fn unknown_actions_are_never_part_of_the_set() {
        assert_eq!(
            scope("repository:a:pull,fly").actions,
            ActionSet::of(&[Action::Pull])
        );
    }

    #[test]
    fn component_separators_follow_distribution() {
        for ok in [
            "a",
            "a.b",
            "a_b",
            "a__b",
            "a-b",
            "a---b",
            "a/b.c/d_e",
            "x9/y-8",
        ] {
            assert!(ok.parse::<ResourceName>().is_ok(), "{ok} should be valid");
        }
        for bad in [
            "", "A", "a/", "/a", "a//b", "a..b", "a___b", "-a", "a-", "a b", "a/B", "a:b", "a@b",
            "_a",
        ] {
            assert!(
                bad.parse::<ResourceName>().is_err(),
                "{bad:?} should be invalid"
            );
        }
    }

    #[test]
    fn names_longer_than_255_are_refused() {
        let long = "a".repeat(256);
        assert!(long.parse::<ResourceName>().is_err());
        assert!("a".repeat(255).parse::<ResourceName>().is_ok());
    }

    #[test]
    fn malformed_scopes_are_refused_with_their_text() {
        for bad in [
            "repository",
            "repository:acme",
            "Repository:acme:pull",
            "repository(plugin:acme:pull",
            "repository:ACME:pull",
            ":acme:pull",
            "repository::pull",
            "repository:acme:PULL",
        ] {
            let err = bad.parse::<Scope>().unwrap_err();
            assert_eq!(err.scope, bad);
            assert!(err.to_string().contains(bad));
        }
    }

    #[test]
    fn space_separated_and_repeated_values_merge_duplicates() {
        let scopes = parse_scopes([
            "repository:a:pull repository:b:push",
            "repository:a:push",
            "  registry:catalog:*  ",
        ])
        .unwrap();
        let shown: Vec<String> = scopes.iter().map(ToString::to_string).collect();
        assert_eq!(
            shown,
            [
                "repository:a:pull,push",
                "repository:b:push",
                "registry:catalog:*"
            ]
        );
    }

    #[test]
    fn star_is_rebuilt_from_explicit_actions_for_repositories_only() {
        let explicit = ActionSet::EXPLICIT;
        assert_eq!(
            scope("repository:a:*").grant(explicit),
            ActionSet::of(&[Action::All])
        );
        assert_eq!(scope("registry:catalog:*").grant(explicit), explicit);
        assert_eq!(
            scope("registry:catalog:*").grant(ActionSet::of(&[Action::All])),
            ActionSet::of(&[Action::All])
        );
        assert_eq!(
            scope("repository:a:*").grant(ActionSet::of(&[Action::Pull])),
            ActionSet::of(&[Action::Pull])
        );
        assert_eq!(
            scope("repository:a:pull,push,delete").grant(explicit),
            explicit
        );
    }

    #[test]
    fn at_most_64_distinct_scopes_are_accepted() {
        let many: Vec<String> = (0..=MAX_SCOPES)
            .map(|i| format!("repository:r{i}:pull"))
            .collect();
        let err = parse_scopes(many.iter().map(String::as_str)).unwrap_err();
        assert!(err.to_string().contains("too many scopes"), "{err}");
        assert_eq!(
            parse_scopes(many[..MAX_SCOPES].iter().map(String::as_str))
                .unwrap()
                .len(),
            64
        );
        // Repeats of one scope merge and do not count.
        let repeats = vec!["repository:a:pull"; 500];
        assert_eq!(parse_scopes(repeats).unwrap().len(), 1);
    }

    #[test]
    fn a_class_makes_a_different_resource() {
        let scopes = parse_scopes(["repository:a:pull repository(plugin):a:push"]).unwrap();
        assert_eq!(scopes.len(), 2);
    }

    fn component() -> impl Strategy<Value = String> {
        "[a-z0-9]{1,5}((\\.|_|__|-{1,3})[a-z0-9]{1,5}){0,2}"
    }

    fn name() -> impl Strategy<Value = String> {
        (
            proptest::option::of("[a-z0-9]{1,8}(\\.[a-z]{2,4})?(:[0-9]{1,5})?"),
            proptest::collection::vec(component(), 1..5),
        )
            .prop_map(|(host, parts)| {
                let path = parts.join("/");
                match host {
                    Some(h) => format!("{h}/{path}"),
                    None => path,
                }
            })
            .prop_filter("within the length limit", |n| n.len() <= MAX_NAME_LEN)
    }

    fn action_set() -> impl Strategy<Value = ActionSet> {
        proptest::collection::vec(proptest::sample::select(Action::EVERY.to_vec()), 0..4)
            .prop_map(|v| v.into_iter().collect())
    }

    proptest! {
        #[test]
        fn display_then_parse_is_identity(
            ty in "[a-z]{1,8}",
            class in proptest::option::of("[a-z]{1,8}"),
            name in name(),
            actions in action_set(),
        ) {
            let original = Scope {
                resource_type: ty.parse().unwrap(),
                class: class.map(|c| c.parse().unwrap()),
                name: name.parse().unwrap(),
                actions,
            };
            let text = original.to_string();
            let parsed: Scope = text.parse().unwrap();
            prop_assert_eq!(&parsed, &original);
            prop_assert_eq!(parsed.to_string(), text);
        }

        #[test]
        fn parse_then_display_is_canonical(
            parts in proptest::collection::vec(
                proptest::sample::select(vec![
                    "repository", "registry", "(plugin)", "(", ")", ":", ":", "a", "b0", "/",
                    ".", "_", "__", "-", "host.io:5000/", "pull", "push", "delete", "*", ",",
                    "fly", "A", " ",
                ]),
                0..12,
            )
        ) {
            let text: String = parts.concat();
            if let Ok(scope) = text.parse::<Scope>() {
                let again: Scope = scope.to_string().parse().unwrap();
                prop_assert_eq!(again, scope);
            }
        }

        #[test]
        fn well_formed_texts_parse(
            ty in "[a-z]{1,6}",
            name in name(),
            actions in proptest::collection::vec("pull|push|delete|\\*|fly", 1..4),
        ) {
            let text = format!("{ty}:{name}:{}", actions.join(","));
            let scope: Scope = text.parse().unwrap();
            let again: Scope = scope.to_string().parse().unwrap();
            prop_assert_eq!(again, scope);
        }
    }
}
