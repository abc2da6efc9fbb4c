//! The plugin chains built from the settings: the authenticators of `authn.chain` and the
//! authorizers of `authz.chain`, in configured order, and the refresh tokens of the card store.

use std::sync::Arc;

use cardgate_authz::{Authenticator, AuthnChain, Authorizer, AuthzChain, RefreshTokens};
use cardgate_authz_cards::{CardAuthenticator, CardAuthorizer, CardRefreshTokens};
use cardgate_authz_static::{StaticAcl, StaticUsers};
use cardgate_store::Store;

use crate::settings::{AuthenticatorName, AuthorizerName, Settings, SettingsError, setting};

/// The card store for a plugin of `section.chain`, or the setting it needs named.
fn need_store(store: Option<&Store>, section: &str) -> Result<Store, SettingsError> {
    store.cloned().ok_or_else(|| {
        SettingsError::new(format!(
            "`{section}.chain` lists `cards`, which needs {}",
            setting("database.url")
        ))
    })
}

/// The settings of the `static` plugin of `section`, or the missing table named.
fn static_settings<'a, T>(settings: Option<&'a T>, section: &str) -> Result<&'a T, SettingsError> {
    settings.ok_or_else(|| {
        SettingsError::new(format!(
            "`{section}.chain` lists `static` but [{section}.static] is missing"
        ))
    })
}

/// Builds the authenticator and authorizer chains in configured order.
pub fn chains(
    settings: &Settings,
    store: Option<&Store>,
) -> Result<(AuthnChain, AuthzChain), SettingsError> {
    let mut authn: Vec<Arc<dyn Authenticator>> = Vec::new();
    for name in &settings.authn.chain {
        authn.push(match name {
            AuthenticatorName::Cards => Arc::new(
                CardAuthenticator::with_cache(need_store(store, "authn")?, settings.cache())
                    .map_err(|e| SettingsError::new(format!("authn.cards: {e}")))?,
            ),
            AuthenticatorName::Static => {
                let users = static_settings(settings.authn.static_settings.as_ref(), "authn")?;
                Arc::new(
                    StaticUsers::with_cache(users, settings.cache())
                        .map_err(|e| SettingsError::new(format!("authn.static: {e}")))?,
                )
            }
        });
    }
    let mut authz: Vec<Arc<dyn Authorizer>> = Vec::new();
    for name in &settings.authz.chain {
        authz.push(match name {
            AuthorizerName::Cards => Arc::new(CardAuthorizer::with_cache(
                need_store(store, "authz")?,
                settings.cache(),
            )),
            AuthorizerName::Static => {
                let acl = static_settings(settings.authz.static_settings.as_ref(), "authz")?;
                let chain: Vec<&str> = settings.authn.chain.iter().map(|n| n.as_str()).collect();
                Arc::new(
                    StaticAcl::new(acl, &chain).map_err(|e| SettingsError::new(e.to_string()))?,
                )
            }
        });
    }
    Ok((AuthnChain::new(authn), AuthzChain::new(authz)))
}

/// The refresh tokens, when the `cards` authenticator is configured (the static plugins have no
/// storage to keep them in).
pub fn refresh_tokens(
    settings: &Settings,
    store: Option<&Store>,
) -> Option<Arc<dyn RefreshTokens>> {
    let store = store?;
    settings
        .authn
        .chain
        .contains(&AuthenticatorName::Cards)
        .then(|| {
            Arc::new(
                CardRefreshTokens::new(store.clone())
                    .with_max_per_client(settings.token.max_refresh_tokens_per_client),
            ) as Arc<dyn RefreshTokens>
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::settings::tests::source;

    #[tokio::test]
    async fn static_acl_rules_are_refused_for_authenticators_outside_the_chain() {
        // The test profile's ACL is for its static users (the default); with only the card
        // store authenticating, start-up says so instead of letting the rules match card users.
        let mut s = source(&[
            ("CARDGATE__AUTHN__CHAIN", "cards"),
            ("CARDGATE__DATABASE__URL", "postgres://127.0.0.1:1/none"),
        ]);
        s.profile = Some("test".into());
        let settings = Settings::load(&s).unwrap();
        let store = settings.store().unwrap();
        let err = chains(&settings, store.as_ref()).unwrap_err().to_string();
        assert!(err.contains("authz.static.authenticators"), "{err}");
        assert!(err.contains("`static` is not in `authn.chain`"), "{err}");

        s.env
            .insert("CARDGATE__AUTHN__CHAIN".into(), "cards, static".into());
        let settings = Settings::load(&s).unwrap();
        chains(&settings, store.as_ref()).unwrap();
    }

    #[test]
    fn unknown_plugins_are_refused_at_start_up_naming_the_setting() {
        for (variable, value, expected) in [
            ("CARDGATE__AUTHN__CHAIN", "cards, ldap", "ldap"),
            ("CARDGATE__AUTHZ__CHAIN", "opa", "opa"),
        ] {
            let setting = variable
                .trim_start_matches("CARDGATE__")
                .replace("__", ".")
                .to_lowercase();
            let err = Settings::load(&source(&[(variable, value)]))
                .unwrap_err()
                .to_string();
            assert!(err.contains(expected), "{err}");
            assert!(err.contains(&setting), "{err}");
            assert!(err.contains("`cards`") && err.contains("`static`"), "{err}");
        }
    }

    #[test]
    fn a_chain_listing_cards_without_a_database_names_the_setting() {
        let settings = Settings::load(&source(&[])).unwrap();
        let err = chains(&settings, None).unwrap_err().to_string();
        assert!(err.contains("`authn.chain` lists `cards`"), "{err}");
        assert!(err.contains("database.url"), "{err}");
        assert!(refresh_tokens(&settings, None).is_none());
    }
}
