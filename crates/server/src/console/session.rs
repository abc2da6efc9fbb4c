//! The console's session: an ordinary login session card whose token travels in a cookie, and
//! the checks every state-changing form passes: it comes from the console's own origin and
//! carries the token derived from the session's secret.

use std::future::Future;
use std::pin::Pin;

use actix_web::dev::Payload;
use actix_web::http::header;
use actix_web::{FromRequest, HttpRequest, web};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use secrecy::{ExposeSecret, SecretString};
use serde::de::DeserializeOwned;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use uuid::Uuid;

use super::page::ConsoleError;
use crate::admin::AdminState;

/// How the console is reached and what it shows.
#[derive(Debug, Clone)]
pub struct ConsoleConfig {
    /// Browsers reach the server over HTTPS (`console.behind_tls`).
    pub behind_tls: bool,
    /// The registry's name, for the `docker login` line (`token.service`).
    pub registry: String,
}

impl ConsoleConfig {
    /// The session cookie's name: `__Host-` (bound to this origin, `Secure`) over HTTPS.
    pub fn cookie_name(&self) -> &'static str {
        if self.behind_tls {
            "__Host-cardgate-console"
        } else {
            "cardgate-console"
        }
    }

    /// The `Set-Cookie` value carrying `token`.
    pub fn session_cookie(&self, token: &str) -> String {
        format!(
            "{}={token}; Path=/; HttpOnly; SameSite=Strict{}",
            self.cookie_name(),
            if self.behind_tls { "; Secure" } else { "" }
        )
    }

    /// The `Set-Cookie` value that removes the session cookie.
    pub fn cleared_cookie(&self) -> String {
        format!(
            "{}=; Path=/; Max-Age=0; HttpOnly; SameSite=Strict{}",
            self.cookie_name(),
            if self.behind_tls { "; Secure" } else { "" }
        )
    }
}

/// The console's settings and the admin state, as handlers need them.
pub fn states(
    req: &HttpRequest,
) -> Result<(web::Data<AdminState>, web::Data<ConsoleConfig>), ConsoleError> {
    Ok((
        req.app_data::<web::Data<AdminState>>()
            .cloned()
            .ok_or(ConsoleError::Unconfigured)?,
        req.app_data::<web::Data<ConsoleConfig>>()
            .cloned()
            .ok_or(ConsoleError::Unconfigured)?,
    ))
}

/// The CSRF token of the session whose token is `token`: a hash of its secret under a label
/// of its own, so that it reveals nothing of the secret and changes with every session.
fn csrf_token(token: &str) -> String {
    let mut hash = Sha256::new();
    hash.update(b"cardgate console form\0");
    hash.update(token.as_bytes());
    URL_SAFE_NO_PAD.encode(hash.finalize())
}

/// The person logged in to the console.
pub struct Viewer {
    pub caller: cardgate_admin::Caller,
    /// The token its forms carry.
    pub csrf: String,
}

impl std::fmt::Debug for Viewer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Viewer")
            .field("user", &self.caller.card.slug)
            .finish_non_exhaustive()
    }
}

/// The value of the cookie `name` in the request's `Cookie` headers.
fn cookie<'a>(req: &'a HttpRequest, name: &str) -> Option<&'a str> {
    req.headers()
        .get_all(header::COOKIE)
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(key, _)| *key == name)
        .map(|(_, value)| value)
}

impl Viewer {
    /// The viewer behind the session cookie, as `cardgate-admin` resolves a login session.
    async fn of(req: &HttpRequest) -> Result<Viewer, ConsoleError> {
        let (state, console) = states(req)?;
        let token = cookie(req, console.cookie_name()).ok_or(ConsoleError::LoggedOut)?;
        let session = token
            .split_once('.')
            .and_then(|(id, _)| Uuid::parse_str(id).ok())
            .ok_or(ConsoleError::LoggedOut)?;
        let token = SecretString::from(token);
        let caller = state
            .admin
            .session_caller(session, token.expose_secret())
            .await?;
        Ok(Viewer {
            caller,
            csrf: csrf_token(token.expose_secret()),
        })
    }
}

impl FromRequest for Viewer {
    type Error = ConsoleError;
    type Future = Pin<Box<dyn Future<Output = Result<Viewer, ConsoleError>>>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let req = req.clone();
        Box::pin(async move { Viewer::of(&req).await })
    }
}

/// Refuses a form a browser sent from another site: `Sec-Fetch-Site` other than
/// `same-origin`, or an `Origin` other than the request's own.
pub fn check_origin(req: &HttpRequest) -> Result<(), ConsoleError> {
    let text = |name: header::HeaderName| {
        req.headers()
            .get(name)
            .map(|v| v.to_str().unwrap_or("\u{0}"))
    };
    if let Some(site) = text(header::HeaderName::from_static("sec-fetch-site"))
        && site != "same-origin"
    {
        return Err(ConsoleError::CrossSite);
    }
    if let Some(origin) = text(header::ORIGIN) {
        let host = text(header::HOST).unwrap_or_default();
        let own = ["http://", "https://"]
            .iter()
            .any(|scheme| origin.strip_prefix(scheme) == Some(host));
        if !own {
            return Err(ConsoleError::CrossSite);
        }
    }
    Ok(())
}

/// A state-changing form of a logged-in viewer: from the console's own origin, carrying the
/// session's CSRF token (compared in constant time), its fields parsed into `T`.
pub struct Post<T> {
    pub viewer: Viewer,
    pub form: T,
}

impl<T: DeserializeOwned + 'static> FromRequest for Post<T> {
    type Error = ConsoleError;
    type Future = Pin<Box<dyn Future<Output = Result<Post<T>, ConsoleError>>>>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let body = web::Bytes::from_request(req, payload);
        let req = req.clone();
        Box::pin(async move {
            check_origin(&req)?;
            let body = body.await.map_err(|_| ConsoleError::TooLarge)?;
            let viewer = Viewer::of(&req).await?;
            let sent = form_urlencoded::parse(&body)
                .find(|(key, _)| key == "csrf")
                .map(|(_, value)| value.into_owned())
                .unwrap_or_default();
            if !bool::from(sent.as_bytes().ct_eq(viewer.csrf.as_bytes())) {
                return Err(ConsoleError::CrossSite);
            }
            let form = parse_form(&body)?;
            Ok(Post { viewer, form })
        })
    }
}

/// Parses a form body: a malformed one is a 400 naming the field.
pub fn parse_form<T: DeserializeOwned>(body: &[u8]) -> Result<T, ConsoleError> {
    let deserializer = serde_urlencoded::Deserializer::new(form_urlencoded::parse(body));
    serde_path_to_error::deserialize(deserializer).map_err(|e| {
        let path = e.path().to_string();
        ConsoleError::BadRequest(format!("{path}: {}", e.inner()))
    })
}

/// The login form: not yet a session, so only its origin is checked.
pub struct LoginForm<T>(pub T);

impl<T: DeserializeOwned + 'static> FromRequest for LoginForm<T> {
    type Error = ConsoleError;
    type Future = Pin<Box<dyn Future<Output = Result<LoginForm<T>, ConsoleError>>>>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let body = web::Bytes::from_request(req, payload);
        let req = req.clone();
        Box::pin(async move {
            check_origin(&req)?;
            let body = body.await.map_err(|_| ConsoleError::TooLarge)?;
            Ok(LoginForm(parse_form(&body)?))
        })
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use actix_web::test::TestRequest;

    use super::*;

    fn config(behind_tls: bool) -> ConsoleConfig {
        ConsoleConfig {
            behind_tls,
            registry: "registry.test".into(),
        }
    }

    #[test]
    fn behind_tls_the_cookie_is_secure_and_bound_to_the_origin() {
        let cookie = config(true).session_cookie("id.secret");
        assert_eq!(
            cookie,
            "__Host-cardgate-console=id.secret; Path=/; HttpOnly; SameSite=Strict; Secure"
        );
        let cleared = config(true).cleared_cookie();
        assert!(cleared.starts_with("__Host-cardgate-console=; Path=/; Max-Age=0"));
        assert!(cleared.ends_with("; Secure"));
    }

    #[test]
    fn over_plain_http_the_cookie_is_still_http_only_and_same_site_strict() {
        let cookie = config(false).session_cookie("id.secret");
        assert_eq!(
            cookie,
            "cardgate-console=id.secret; Path=/; HttpOnly; SameSite=Strict"
        );
    }

    #[test]
    fn form_tokens_differ_per_session_and_reveal_nothing_of_the_secret() {
        let one = csrf_token("11111111-1111-1111-1111-111111111111.aaaa");
        let other = csrf_token("11111111-1111-1111-1111-111111111111.aaab");
        assert_ne!(one, other);
        assert_eq!(one, csrf_token("11111111-1111-1111-1111-111111111111.aaaa"));
        assert!(!one.contains("aaaa") && one.len() == 43);
    }

    #[test]
    fn forms_from_another_origin_or_site_are_refused() {
        let request = |headers: &[(&str, &str)]| {
            let mut request = TestRequest::post().insert_header(("host", "console.test"));
            for header in headers {
                request = request.insert_header(*header);
            }
            check_origin(&request.to_http_request()).is_ok()
        };
        assert!(request(&[]));
        assert!(request(&[("origin", "https://console.test")]));
        assert!(request(&[("origin", "http://console.test")]));
        assert!(request(&[("sec-fetch-site", "same-origin")]));
        assert!(!request(&[("origin", "https://evil.test")]));
        assert!(!request(&[("origin", "https://console.test.evil.test")]));
        assert!(!request(&[("origin", "null")]));
        assert!(!request(&[("sec-fetch-site", "cross-site")]));
        assert!(!request(&[("sec-fetch-site", "same-site")]));
        assert!(!request(&[
            ("sec-fetch-site", "same-origin"),
            ("origin", "https://evil.test")
        ]));
    }
}
