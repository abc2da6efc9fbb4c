//! The static ACL: ordered rules, the first whose match fields all match decides. A rule
//! matches only identities from the authenticators it is for (by default the static users),
//! since an account name means what its authenticator says it means.

use async_trait::async_trait;
use cardgate_authz::{Authorizer, Decision, Identity, PluginError};
use cardgate_token::{Action, ActionSet, Scope};
use globset::{GlobBuilder, GlobMatcher};
use serde::Deserialize;

use crate::ConfigError;

const NAME: &str = "static";
const ACCOUNT_PLACEHOLDER: &str = "${account}";

/// The authenticators whose identities rules match unless configured otherwise: only the
/// static users', whom the file that holds the ACL also defines.
const DEFAULT_AUTHENTICATORS: [&str; 1] = ["static"];

fn default_authenticators() -> Vec<String> {
    DEFAULT_AUTHENTICATORS.map(str::to_owned).to_vec()
}

/// `[authz.static]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AclSettings {
    /// The authenticators (as named in `authn.chain`) whose identities the rules match, unless
    /// a rule names its own. Default: `["static"]`. An account name means what its
    /// authenticator says it means: a card store user, robot or org owner named `acme` is not
    /// the static user `acme`, so a rule written for static users (`${account}/**`) reaches
    /// the card store's identities only when listed here (`["static", "cards"]`).
    #[serde(default = "default_authenticators")]
    pub authenticators: Vec<String>,
    #[serde(default)]
    pub acl: Vec<RuleSettings>,
}

impl Default for AclSettings {
    fn default() -> Self {
        AclSettings {
            authenticators: default_authenticators(),
            acl: Vec::new(),
        }
    }
}

/// One `[[authz.static.acl]]` rule. Absent match fields match anything.
///
/// Globs: `*` matches within one path component, `**` across components, `?` one character,
/// `{a,b}` alternatives. `name` may contain `${account}`, replaced by the requesting account.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RuleSettings {
    /// Glob on the account. `""` matches only the anonymous identity; `"?*"` any named account.
    #[serde(default)]
    pub account: Option<String>,
    /// The authenticators whose identities (anonymous ones included) this rule matches;
    /// absent: the ACL's `authenticators`.
    #[serde(default)]
    pub authenticators: Option<Vec<String>>,
    /// Glob on the scope type (`repository`, `registry`...).
    #[serde(default, rename = "type")]
    pub resource_type: Option<String>,
    /// Glob on the resource name, with `${account}` placeholders.
    #[serde(default)]
    pub name: Option<String>,
    /// What the rule allows: `pull`, `push`, `delete`, `*`. Empty: explicitly nothing.
    pub actions: Vec<String>,
    /// Free text, for people reading the configuration.
    #[serde(default)]
    pub comment: Option<String>,
}

#[derive(Debug)]
enum Pattern {
    Any,
    Glob(GlobMatcher),
    /// Contains `${account}`: compiled per request with the account escaped.
    Template(String),
}

fn glob(pattern: &str) -> Result<GlobMatcher, globset::Error> {
    Ok(GlobBuilder::new(pattern)
        .literal_separator(true)
        .build()?
        .compile_matcher())
}

impl Pattern {
    fn new(pattern: Option<&str>, allow_placeholder: bool) -> Result<Self, String> {
        match pattern {
            None => Ok(Pattern::Any),
            Some(p) if allow_placeholder && p.contains(ACCOUNT_PLACEHOLDER) => {
                // Check that the template is a valid glob for some account.
                glob(&p.replace(ACCOUNT_PLACEHOLDER, "x")).map_err(|e| e.to_string())?;
                Ok(Pattern::Template(p.to_owned()))
            }
            Some(p) => glob(p).map(Pattern::Glob).map_err(|e| e.to_string()),
        }
    }

    fn matches(&self, value: &str, account: &str) -> bool {
        match self {
            Pattern::Any => true,
            Pattern::Glob(g) => g.is_match(value),
            Pattern::Template(t) => {
                // An anonymous request has no account to put in its place, and an account with
                // characters a glob could read as syntax (`*`, `\\`, `[`...) never matches.
                is_plain(account)
                    && glob(&t.replace(ACCOUNT_PLACEHOLDER, account))
                        .is_ok_and(|g| g.is_match(value))
            }
        }
    }
}

/// Whether an account name can stand in a glob as itself: letters, digits, `.`, `_`, `-`, `@`.
fn is_plain(account: &str) -> bool {
    !account.is_empty()
        && account
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-' | b'@'))
}

#[derive(Debug)]
enum AccountPattern {
    Any,
    Anonymous,
    Glob(GlobMatcher),
}

#[derive(Debug)]
struct Rule {
    /// The authenticators whose identities the rule matches.
    authenticators: Vec<String>,
    account: AccountPattern,
    resource_type: Pattern,
    name: Pattern,
    actions: ActionSet,
}

/// Ordered first-match ACL.
#[derive(Debug)]
pub struct StaticAcl {
    rules: Vec<Rule>,
}

/// Checks a list of authenticators: not empty, each in `chain` (the configured `authn.chain`),
/// none twice.
fn check_authenticators(names: &[String], chain: &[&str]) -> Result<(), String> {
    if names.is_empty() {
        return Err("empty: the rules would match nobody".into());
    }
    for (i, name) in names.iter().enumerate() {
        if !chain.contains(&name.as_str()) {
            return Err(format!(
                "`{name}` is not in `authn.chain` ({}): its identities never come",
                chain.join(", ")
            ));
        }
        if names[..i].contains(name) {
            return Err(format!("`{name}` is listed twice"));
        }
    }
    Ok(())
}

impl StaticAcl {
    /// Compiles and checks `config`; `chain` is the configured authenticators (`authn.chain`),
    /// which the rules' `authenticators` must be among.
    pub fn new(config: &AclSettings, chain: &[&str]) -> Result<Self, ConfigError> {
        check_authenticators(&config.authenticators, chain).map_err(|why| {
            let default = if config.authenticators == default_authenticators() {
                " (the default; set it to the authenticators the rules are for)"
            } else {
                ""
            };
            ConfigError(format!("authz.static.authenticators{default}: {why}"))
        })?;
        let rules = config
            .acl
            .iter()
            .enumerate()
            .map(|(i, rule)| {
                let bad = |what: &str, why: String| {
                    ConfigError(format!("authz.static.acl rule {}: {what}: {why}", i + 1))
                };
                let authenticators = match &rule.authenticators {
                    Some(names) => {
                        check_authenticators(names, chain)
                            .map_err(|why| bad("authenticators", why))?;
                        names.clone()
                    }
                    None => config.authenticators.clone(),
                };
                let account = match rule.account.as_deref() {
                    None => AccountPattern::Any,
                    Some("") => AccountPattern::Anonymous,
                    Some(p) => {
                        AccountPattern::Glob(glob(p).map_err(|e| bad("account", e.to_string()))?)
                    }
                };
                let actions = rule
                    .actions
                    .iter()
                    .map(|a| {
                        a.parse::<Action>()
                            .map_err(|e| bad("actions", e.to_string()))
                    })
                    .collect::<Result<ActionSet, _>>()?;
                Ok(Rule {
                    authenticators,
                    account,
                    resource_type: Pattern::new(rule.resource_type.as_deref(), false)
                        .map_err(|e| bad("type", e))?,
                    name: Pattern::new(rule.name.as_deref(), true).map_err(|e| bad("name", e))?,
                    actions,
                })
            })
            .collect::<Result<_, ConfigError>>()?;
        Ok(StaticAcl { rules })
    }
}

impl Rule {
    fn matches(&self, identity: &Identity, scope: &Scope) -> bool {
        if !self
            .authenticators
            .iter()
            .any(|a| a == identity.authenticator)
        {
            return false;
        }
        let account = identity.account.as_str();
        let account_matches = match &self.account {
            AccountPattern::Any => true,
            AccountPattern::Anonymous => identity.is_anonymous(),
            AccountPattern::Glob(g) => !identity.is_anonymous() && g.is_match(account),
        };
        account_matches
            && self
                .resource_type
                .matches(scope.resource_type.as_str(), account)
            && self.name.matches(scope.name.as_str(), account)
    }
}

#[async_trait]
impl Authorizer for StaticAcl {
    fn name(&self) -> &'static str {
        NAME
    }

    async fn authorize(&self, identity: &Identity, scope: &Scope) -> Result<Decision, PluginError> {
        Ok(self
            .rules
            .iter()
            .find(|rule| rule.matches(identity, scope))
            .map_or(Decision::NoMatch, |rule| Decision::Allowed(rule.actions)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ACL: &str = r#"
        [[acl]]
        account = "admin"
        actions = ["*"]
        comment = "admin may do anything"

        [[acl]]
        account = "mallory"
        actions = []
        comment = "explicitly nothing"

        [[acl]]
        account = "?*"
        type = "repository"
        name = "${account}/**"
        actions = ["pull", "push", "delete"]

        [[acl]]
        account = "ci-*"
        type = "repository"
        name = "acme/*"
        actions = ["pull", "push"]

        [[acl]]
        type = "repository"
        name = "public/*"
        actions = ["pull"]

        [[acl]]
        account = ""
        type = "repository"
        name = "anon-only/*"
        actions = ["pull"]

        [[acl]]
        account = "?*"
        type = "registry"
        name = "catalog"
        actions = ["*"]
    "#;

    fn acl() -> StaticAcl {
        StaticAcl::new(&toml::from_str::<AclSettings>(ACL).unwrap(), &["static"]).unwrap()
    }

    fn who(account: &str) -> Identity {
        Identity::new(account, "static")
    }

    #[tokio::test]
    async fn rules_decide_first_match_wins() {
        let acl = acl();
        let pull = ActionSet::of(&[Action::Pull]);
        let pull_push = ActionSet::of(&[Action::Pull, Action::Push]);
        let all = ActionSet::of(&[Action::All]);
        let own = ActionSet::of(&[Action::Pull, Action::Push, Action::Delete]);
        // (account, scope, expected decision)
        let table: &[(&str, &str, Decision)] = &[
            (
                "admin",
                "repository:anything/at/all:push",
                Decision::Allowed(all),
            ),
            ("admin", "registry:catalog:*", Decision::Allowed(all)),
            (
                "mallory",
                "repository:public/web:pull",
                Decision::Allowed(ActionSet::EMPTY),
            ),
            ("alice", "repository:alice/web:push", Decision::Allowed(own)),
            (
                "alice",
                "repository:alice/team/web:push",
                Decision::Allowed(own),
            ),
            ("alice", "repository:bob/web:pull", Decision::NoMatch),
            (
                "ci-build",
                "repository:acme/web:push",
                Decision::Allowed(pull_push),
            ),
            (
                "ci-build",
                "repository:acme/team/web:push",
                Decision::NoMatch,
            ),
            (
                "alice",
                "repository:public/web:push",
                Decision::Allowed(pull),
            ),
            ("", "repository:public/web:pull", Decision::Allowed(pull)),
            ("", "repository:anon-only/x:pull", Decision::Allowed(pull)),
            ("alice", "repository:anon-only/x:pull", Decision::NoMatch),
            ("", "registry:catalog:*", Decision::NoMatch),
            ("alice", "registry:catalog:*", Decision::Allowed(all)),
        ];
        for (account, scope, expected) in table {
            let parsed: Scope = scope.parse().unwrap();
            let got = acl.authorize(&who(account), &parsed).await.unwrap();
            assert_eq!(got, *expected, "{account:?} asking {scope}");
        }
    }

    #[tokio::test]
    async fn accounts_with_glob_syntax_never_match_placeholders() {
        let acl = acl();
        // `a*` must not reach `ab/...`, nor `al\ice` reach `alice/...`, through `${account}/**`.
        for (account, scope) in [
            ("a*", "repository:ab/web:pull"),
            ("al\\ice", "repository:alice/secret:pull,push,delete"),
            ("[a]lice", "repository:alice/secret:pull"),
            ("{alice,x}", "repository:alice/secret:pull"),
        ] {
            let scope: Scope = scope.parse().unwrap();
            assert_eq!(
                acl.authorize(&who(account), &scope).await.unwrap(),
                Decision::NoMatch,
                "{account}"
            );
        }
        assert!(is_plain("ci-bot.1@acme_x"));
    }

    #[tokio::test]
    async fn account_placeholders_never_match_anonymous_requests() {
        let config: AclSettings =
            toml::from_str("[[acl]]\nname = \"${account}*\"\nactions = [\"pull\"]").unwrap();
        let acl = StaticAcl::new(&config, &["static"]).unwrap();
        let scope: Scope = "repository:web:pull".parse().unwrap();
        assert_eq!(
            acl.authorize(&who(""), &scope).await.unwrap(),
            Decision::NoMatch
        );
        assert_eq!(
            acl.authorize(&who("web"), &scope).await.unwrap(),
            Decision::Allowed(ActionSet::of(&[Action::Pull]))
        );
    }

    #[test]
    fn invalid_rules_are_refused_with_their_position() {
        for (text, expected) in [
            ("[[acl]]\nactions = [\"fly\"]", "rule 1: actions"),
            (
                "[[acl]]\nactions = []\n[[acl]]\nname = \"a[\"\nactions = []",
                "rule 2: name",
            ),
            ("[[acl]]\naccount = \"{\"\nactions = []", "rule 1: account"),
        ] {
            let config: AclSettings = toml::from_str(text).unwrap();
            let err = StaticAcl::new(&config, &["static"])
                .unwrap_err()
                .to_string();
            assert!(err.contains(expected), "{err} should mention {expected}");
        }
    }

    #[tokio::test]
    async fn rules_match_only_the_identities_of_their_authenticators() {
        const OWN_NAMESPACE: &str = r#"
            [[acl]]
            account = "?*"
            type = "repository"
            name = "${account}/**"
            actions = ["pull", "push"]

            [[acl]]
            type = "repository"
            name = "public/**"
            actions = ["pull"]
            authenticators = ["static", "cards"]
        "#;
        let chain = ["cards", "static"];
        let push: Scope = "repository:acme/web:pull,push".parse().unwrap();
        let public: Scope = "repository:public/web:pull".parse().unwrap();
        let pull_push = Decision::Allowed(ActionSet::of(&[Action::Pull, Action::Push]));
        let pull = Decision::Allowed(ActionSet::of(&[Action::Pull]));
        // A card store identity named like an org is not the static user of that name.
        let card_acme = Identity::new("acme", "cards");
        let static_acme = Identity::new("acme", "static");

        let by_default = StaticAcl::new(&toml::from_str(OWN_NAMESPACE).unwrap(), &chain).unwrap();
        assert_eq!(
            by_default.authorize(&card_acme, &push).await.unwrap(),
            Decision::NoMatch
        );
        assert_eq!(
            by_default.authorize(&static_acme, &push).await.unwrap(),
            pull_push
        );
        // A rule naming its own authenticators reaches theirs, anonymous ones included.
        assert_eq!(
            by_default.authorize(&card_acme, &public).await.unwrap(),
            pull
        );
        assert_eq!(
            by_default
                .authorize(&Identity::anonymous("cards"), &public)
                .await
                .unwrap(),
            pull
        );

        let both = format!("authenticators = [\"static\", \"cards\"]\n{OWN_NAMESPACE}");
        let both = StaticAcl::new(&toml::from_str(&both).unwrap(), &chain).unwrap();
        assert_eq!(both.authorize(&card_acme, &push).await.unwrap(), pull_push);
    }

    #[test]
    fn authenticators_must_be_in_the_chain() {
        let rule = "[[acl]]\nactions = []\n";
        for (text, chain, expected) in [
            (
                rule.to_owned(),
                &["cards"][..],
                "authz.static.authenticators (the default",
            ),
            (
                format!("authenticators = [\"cards\", \"card\"]\n{rule}"),
                &["cards"][..],
                "`card` is not in `authn.chain`",
            ),
            (
                format!("authenticators = []\n{rule}"),
                &["static"][..],
                "authz.static.authenticators: empty",
            ),
            (
                format!("{rule}authenticators = [\"static\", \"static\"]"),
                &["static"][..],
                "rule 1: authenticators: `static` is listed twice",
            ),
        ] {
            let config: AclSettings = toml::from_str(&text).unwrap();
            let err = StaticAcl::new(&config, chain).unwrap_err().to_string();
            assert!(err.contains(expected), "{err} should mention {expected}");
        }
        assert_eq!(AclSettings::default().authenticators, ["static"]);
    }

    #[test]
    fn unknown_fields_are_refused() {
        assert!(toml::from_str::<AclSettings>("[[acl]]\nacount = \"x\"\nactions = []").is_err());
    }
}
