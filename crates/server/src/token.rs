//! Request handlers: the token endpoint (GET with Basic credentials, and the OAuth2 POST form),
//! the JWKS and the health probes.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, SystemTime};

use actix_web::http::header;
use actix_web::web::Bytes;
use actix_web::{HttpRequest, HttpResponse, web};
use actix_web_httpauth::headers::authorization::{Basic, ParseError, Scheme};
use cardgate_authz::{AuthnChain, AuthnError, AuthzChain, Credentials, Identity, RefreshTokens};
use cardgate_store::Store;
use cardgate_token::{
    AccessEntry, Minter, Scope, TokenId, TokenLifetimes, TokenRequest, parse_scopes,
};
use secrecy::SecretString;
use serde::Serialize;
use serde_json::json;

use crate::error::TokenError;
use crate::input::{MAX_NAME_LEN, Name};
use crate::throttle::Throttle;

/// The largest OAuth2 form body accepted; larger ones are answered 413.
pub const MAX_FORM_BYTES: usize = 64 * 1024;

/// The parameters of the OAuth2 form read besides `scope`.
pub const FORM_PARAMETERS: &[&str] = &[
    "grant_type",
    "service",
    "client_id",
    "access_type",
    "username",
    "password",
    "refresh_token",
];

/// The longest user name accepted, in characters; longer ones are malformed requests.
pub const MAX_USERNAME_LEN: usize = MAX_NAME_LEN;

/// What `invalid_grant` says, whichever check failed.
const BAD_PASSWORD: &str = "invalid username or password";
const BAD_REFRESH_TOKEN: &str = "the refresh token is invalid, expired or revoked";

/// What every handler shares.
#[derive(Debug)]
pub struct AppState {
    pub minter: Minter,
    /// How long tokens live, by what they grant and who holds them.
    pub lifetimes: TokenLifetimes,
    /// The one `service` this server issues tokens for.
    pub service: String,
    pub authn: AuthnChain,
    pub authz: AuthzChain,
    /// Refresh tokens, when a configured authenticator can keep them (`cards`).
    pub refresh: Option<Arc<dyn RefreshTokens>>,
    /// How long a refresh token lives.
    pub refresh_lifetime: Duration,
    /// The card store, when configured: readiness includes reaching it.
    pub store: Option<Store>,
    /// The JWKS document, serialised once at start-up.
    pub jwks: String,
    /// Failed logins, per account and client address.
    pub throttle: Arc<Throttle>,
    /// Set on SIGTERM during the drain period: `/readyz` answers 503, the rest is served.
    pub draining: Arc<AtomicBool>,
}

/// The parameters of a token request (query string or form body): the `scope` values, and the
/// single-valued parameters this endpoint reads. Holds secrets: `Debug` shows no values.
pub struct Params {
    scopes: Vec<String>,
    values: Vec<(&'static str, String)>,
}

impl std::fmt::Debug for Params {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Params").finish_non_exhaustive()
    }
}

impl Params {
    /// Parses `input` (`application/x-www-form-urlencoded`), keeping `scope` and the parameters
    /// in `names`; any of those but `scope` given twice is refused, even with equal values
    /// (RFC 6749, section 3.1).
    pub fn parse(input: &[u8], names: &[&'static str]) -> Result<Self, TokenError> {
        let mut parsed = Params {
            scopes: Vec::new(),
            values: Vec::new(),
        };
        for (key, value) in form_urlencoded::parse(input) {
            if key == "scope" {
                parsed.scopes.push(value.into_owned());
                continue;
            }
            let Some(name) = names.iter().find(|n| **n == key) else {
                continue;
            };
            if parsed.get(name).is_some() {
                return Err(TokenError::BadRequest(format!(
                    "parameter `{name}` is given more than once"
                )));
            }
            parsed.values.push((name, value.into_owned()));
        }
        Ok(parsed)
    }

    pub fn get(&self, name: &str) -> Option<&str> {
        self.values
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, v)| v.as_str())
    }

    /// A parameter that must be present (and not empty).
    pub fn required(&self, name: &str) -> Result<&str, TokenError> {
        self.get(name)
            .filter(|v| !v.is_empty())
            .ok_or_else(|| TokenError::BadRequest(format!("parameter `{name}` is required")))
    }

    /// The `client_id`, when given (and not empty): a [`Name`], as it is stored with refresh
    /// tokens.
    pub fn client_id(&self) -> Result<Option<Name>, TokenError> {
        self.get("client_id")
            .filter(|c| !c.is_empty())
            .map(|c| {
                Name::parse(c)
                    .map_err(|e| TokenError::BadRequest(format!("parameter `client_id`: {e}")))
            })
            .transpose()
    }

    /// The requested scopes, each value possibly holding several separated by spaces.
    pub fn scopes(&self) -> Result<Vec<Scope>, TokenError> {
        parse_scopes(self.scopes.iter().map(String::as_str))
            .map_err(|e| TokenError::BadRequest(e.to_string()))
    }
}

fn credentials(req: &HttpRequest) -> Result<Credentials, TokenError> {
    match req.headers().get(header::AUTHORIZATION) {
        Some(value) => basic_credentials(value),
        None => Ok(Credentials::Anonymous),
    }
}

/// Reads an `Authorization` header that must use the Basic scheme (named in any case).
pub fn basic_credentials(value: &header::HeaderValue) -> Result<Credentials, TokenError> {
    // Scheme names are case-insensitive (RFC 9110); the parser wants `Basic`.
    let normalized;
    let value = match value.as_bytes().split_at_checked(6) {
        Some((scheme, rest)) if scheme.eq_ignore_ascii_case(b"basic ") && scheme != b"Basic " => {
            let mut bytes = b"Basic ".to_vec();
            bytes.extend_from_slice(rest);
            normalized = header::HeaderValue::from_bytes(&bytes).map_err(|e| {
                TokenError::BadRequest(format!("malformed Authorization header: {e}"))
            })?;
            &normalized
        }
        _ => value,
    };
    let basic = Basic::parse(value).map_err(|e| {
        TokenError::BadRequest(match e {
            ParseError::MissingScheme => {
                "the Authorization header must use the Basic scheme".to_owned()
            }
            other => format!("malformed Basic Authorization header: {other}"),
        })
    })?;
    let username = user_name("Basic user name", basic.user_id())?;
    Ok(Credentials::Password {
        username: username.into_string(),
        password: SecretString::from(basic.password().unwrap_or_default()),
    })
}

/// A login's user name: a [`Name`] (no account has a longer one, or a control character).
fn user_name(field: &'static str, username: &str) -> Result<Name, TokenError> {
    Name::parse(username).map_err(|problem| TokenError::MalformedUserName {
        field,
        username: username.to_owned(),
        problem,
    })
}

/// A login refused for its malformed user name still counts as a failed login, and is
/// answered 429 while its account or its address is locked; other errors are passed on.
async fn counted(state: &AppState, req: &HttpRequest, error: TokenError) -> TokenError {
    if let TokenError::MalformedUserName { username, .. } = &error
        && let Err(locked) = state.throttle.malformed_login(req, username).await
    {
        return TokenError::TooManyRequests(locked.retry_after_seconds());
    }
    error
}

fn token_id() -> Result<TokenId, TokenError> {
    let mut bytes = [0u8; 16];
    getrandom::fill(&mut bytes).map_err(|e| TokenError::Internal(e.to_string().into()))?;
    Ok(TokenId::from_random(bytes))
}

/// Refuses a `service` other than the one this server issues tokens for.
fn check_service(state: &AppState, service: Option<&str>) -> Result<(), TokenError> {
    match service {
        Some(service) if service != state.service => Err(TokenError::BadRequest(format!(
            "unknown service `{}`: this server issues tokens for `{}`",
            service.chars().take(256).collect::<String>(),
            state.service
        ))),
        _ => Ok(()),
    }
}

/// Runs the authentication chain, unless the throttle refuses the login; invalid credentials
/// become `invalid` and count as a failure.
async fn authenticate(
    state: &AppState,
    req: &HttpRequest,
    credentials: &Credentials,
    invalid: TokenError,
) -> Result<Identity, TokenError> {
    let attempt = state
        .throttle
        .admit(req, credentials)
        .await
        .map_err(|locked| TokenError::TooManyRequests(locked.retry_after_seconds()))?;
    match state.authn.authenticate(credentials).await {
        Ok(identity) => Ok(identity),
        Err(AuthnError::InvalidCredentials) => {
            attempt.failed().await;
            Err(invalid)
        }
        Err(AuthnError::Plugin(e)) => Err(TokenError::Backend(e)),
    }
}

/// A token request once its protocol is read and its identity established.
struct AuthenticatedRequest<'a> {
    identity: Identity,
    scopes: Vec<Scope>,
    /// Offline access was asked by this client: a refresh token is issued when the identity's
    /// backend can keep one.
    offline_client: Option<&'a str>,
    /// How the identity was established, for the log.
    via: &'static str,
}

impl<'a> AuthenticatedRequest<'a> {
    /// A request for `scopes` by `identity`, with offline access for `client` when `offline`
    /// was asked.
    fn new(
        identity: Identity,
        scopes: Vec<Scope>,
        client: Option<&'a Name>,
        offline: bool,
        via: &'static str,
    ) -> Self {
        Self {
            identity,
            scopes,
            offline_client: client.filter(|_| offline).map(Name::as_str),
            via,
        }
    }
}

#[derive(Serialize)]
struct TokenResponse<'a> {
    token: &'a str,
    access_token: &'a str,
    /// The granted scopes, space separated (those with at least one action).
    scope: String,
    expires_in: u64,
    issued_at: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    refresh_token: Option<&'a str>,
}

/// Authorizes the scopes, mints the token and, when asked, issues a refresh token: what GET
/// and both OAuth2 grants share.
async fn respond(
    state: &AppState,
    request: AuthenticatedRequest<'_>,
) -> Result<HttpResponse, TokenError> {
    let AuthenticatedRequest {
        identity,
        scopes,
        offline_client,
        via,
    } = request;
    let grants = state
        .authz
        .authorize(&identity, &scopes)
        .await
        .map_err(TokenError::Backend)?;
    crate::metrics::record_grants(&grants);
    let access: Vec<AccessEntry> = grants
        .iter()
        .map(|g| AccessEntry::granted(&g.scope, g.granted))
        .collect();

    let issued = state
        .minter
        .mint(
            TokenRequest {
                subject: &identity.account,
                audience: &state.service,
                access: &access,
                lifetime: state.lifetimes.for_token(&access, identity.is_robot()),
            },
            SystemTime::now(),
            token_id()?,
        )
        .map_err(|e| TokenError::Internal(Box::new(e)))?;
    let refresh_token = match (offline_client, &state.refresh) {
        (Some(client_id), Some(refresh)) => refresh
            .issue(&identity, client_id, &state.service, state.refresh_lifetime)
            .await
            .map_err(TokenError::Backend)?,
        _ => None,
    };
    tracing::info!(
        account = %identity.account,
        authenticator = identity.authenticator,
        via,
        refresh_token = refresh_token.is_some(),
        granted = ?grants
            .iter()
            .map(|g| format!(
                "{}:{}:{} by {}",
                g.scope.resource_type,
                g.scope.name,
                g.granted,
                g.decided_by.unwrap_or("default deny")
            ))
            .collect::<Vec<_>>(),
        "token issued"
    );
    let scope = grants
        .iter()
        .filter(|g| !g.granted.is_empty())
        .map(|g| {
            Scope {
                actions: g.granted,
                ..g.scope.clone()
            }
            .to_string()
        })
        .collect::<Vec<_>>()
        .join(" ");
    let refresh_token = refresh_token
        .as_ref()
        .map(secrecy::ExposeSecret::expose_secret);
    Ok(HttpResponse::Ok()
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .insert_header((header::PRAGMA, "no-cache"))
        .json(TokenResponse {
            token: &issued.token,
            access_token: &issued.token,
            scope,
            expires_in: issued.expires_in,
            issued_at: &issued.issued_at,
            refresh_token,
        }))
}

/// `GET <realm>?service=..&scope=..[&account=..][&client_id=..&offline_token=true]` with
/// optional Basic credentials.
pub async fn token(
    req: HttpRequest,
    state: web::Data<AppState>,
) -> Result<HttpResponse, TokenError> {
    let query = Params::parse(
        req.query_string().as_bytes(),
        &["service", "account", "client_id", "offline_token"],
    )?;
    let credentials = match credentials(&req) {
        Ok(credentials) => credentials,
        Err(e) => return Err(counted(&state, &req, e).await),
    };
    if let (Some(account), Credentials::Password { username, .. }) =
        (query.get("account"), &credentials)
        && account != username
    {
        return Err(TokenError::BadRequest(
            "`account` differs from the user of the Basic credentials".into(),
        ));
    }
    check_service(&state, query.get("service"))?;
    let scopes = query.scopes()?;
    let client_id = query.client_id()?;
    let via = match credentials {
        Credentials::Password { .. } => "basic",
        Credentials::Anonymous => "anonymous",
    };
    let identity = authenticate(&state, &req, &credentials, TokenError::Unauthorized).await?;
    let offline = query
        .get("offline_token")
        .is_some_and(|v| v.eq_ignore_ascii_case("true"));
    let request = AuthenticatedRequest::new(identity, scopes, client_id.as_ref(), offline, via);
    respond(&state, request).await
}

/// Refuses a body that is not `application/x-www-form-urlencoded` (parameters allowed; a
/// charset, when given, must be UTF-8 or ASCII).
fn check_form_content_type(req: &HttpRequest) -> Result<(), TokenError> {
    let refused = || {
        TokenError::BadRequest(
            "the token form must be sent as application/x-www-form-urlencoded (UTF-8)".into(),
        )
    };
    let content_type = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    let mut parts = content_type.split(';').map(str::trim);
    if !parts
        .next()
        .is_some_and(|essence| essence.eq_ignore_ascii_case("application/x-www-form-urlencoded"))
    {
        return Err(refused());
    }
    for parameter in parts {
        if let Some((name, value)) = parameter.split_once('=')
            && name.trim().eq_ignore_ascii_case("charset")
        {
            let charset = value.trim().trim_matches('"');
            if !["utf-8", "utf8", "us-ascii"]
                .iter()
                .any(|c| charset.eq_ignore_ascii_case(c))
            {
                return Err(refused());
            }
        }
    }
    Ok(())
}

/// Whether the request's `Content-Length` announces more than `limit` bytes.
pub(crate) fn declares_more_than(headers: &header::HeaderMap, limit: usize) -> bool {
    headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok())
        .is_some_and(|length| length > limit as u64)
}

/// The request body, at most [`MAX_FORM_BYTES`] (with or without `Content-Length`).
async fn read_body(req: &HttpRequest, payload: web::Payload) -> Result<Bytes, TokenError> {
    if declares_more_than(req.headers(), MAX_FORM_BYTES) {
        return Err(TokenError::PayloadTooLarge(MAX_FORM_BYTES));
    }
    match payload.to_bytes_limited(MAX_FORM_BYTES).await {
        Ok(Ok(body)) => Ok(body),
        Ok(Err(e)) => Err(TokenError::BadRequest(format!(
            "cannot read the request body: {e}"
        ))),
        Err(_) => Err(TokenError::PayloadTooLarge(MAX_FORM_BYTES)),
    }
}

/// `POST <realm>`: the OAuth2 form, `grant_type` = `password` (`username`, `password`) or
/// `refresh_token` (`refresh_token`, `client_id`); `service`, `scope` (repeated and/or space
/// separated), `client_id` and `access_type=offline` for a refresh token.
pub async fn oauth_token(
    req: HttpRequest,
    payload: web::Payload,
    state: web::Data<AppState>,
) -> Result<HttpResponse, TokenError> {
    check_form_content_type(&req)?;
    let body = read_body(&req, payload).await?;
    let form = Params::parse(&body, FORM_PARAMETERS)?;
    let client_id = form.client_id()?;
    match form.required("grant_type")? {
        "password" => {
            let username = match user_name("parameter `username`", form.required("username")?) {
                Ok(username) => username,
                Err(e) => return Err(counted(&state, &req, e).await),
            };
            let password = form
                .get("password")
                .ok_or_else(|| TokenError::BadRequest("parameter `password` is required".into()))?;
            check_service(&state, form.get("service"))?;
            let scopes = form.scopes()?;
            let credentials = Credentials::Password {
                username: username.into_string(),
                password: SecretString::from(password),
            };
            let identity = authenticate(
                &state,
                &req,
                &credentials,
                TokenError::InvalidGrant(BAD_PASSWORD),
            )
            .await?;
            let offline = form.get("access_type") == Some("offline");
            let request = AuthenticatedRequest::new(
                identity,
                scopes,
                client_id.as_ref(),
                offline,
                "password grant",
            );
            respond(&state, request).await
        }
        "refresh_token" => {
            let token = SecretString::from(form.required("refresh_token")?);
            let client_id = client_id.ok_or_else(|| {
                TokenError::BadRequest("parameter `client_id` is required".into())
            })?;
            let client_id = client_id.as_str();
            let scopes = form.scopes()?;
            // A token is bound to the service it was issued for: another one is not a
            // malformed request but a grant that does not hold.
            let service = form.get("service").unwrap_or(&state.service);
            let refresh = state
                .refresh
                .as_ref()
                .ok_or(TokenError::InvalidGrant(BAD_REFRESH_TOKEN))?;
            let identity = refresh
                .redeem(&token, client_id, service)
                .await
                .map_err(TokenError::Backend)?
                .ok_or(TokenError::InvalidGrant(BAD_REFRESH_TOKEN))?;
            check_service(&state, Some(service))?;
            respond(
                &state,
                AuthenticatedRequest {
                    identity,
                    scopes,
                    offline_client: None,
                    via: "refresh token grant",
                },
            )
            .await
        }
        other => Err(TokenError::UnsupportedGrantType(
            other.chars().take(64).collect(),
        )),
    }
}

/// `GET /.well-known/jwks.json`: the public keys, `kid` = libtrust key ID.
pub async fn jwks(state: web::Data<AppState>) -> HttpResponse {
    HttpResponse::Ok()
        .content_type("application/json")
        .insert_header((header::CACHE_CONTROL, "public, max-age=300"))
        .body(state.jwks.clone())
}

/// `GET /healthz`: the process is up.
pub async fn healthz() -> HttpResponse {
    HttpResponse::Ok().json(json!({"status": "ok"}))
}

/// `GET /readyz`: a token can be signed right now, and the database (when configured) answers;
/// 503 once the server is shutting down.
pub async fn readyz(state: web::Data<AppState>) -> HttpResponse {
    if state.draining.load(Ordering::SeqCst) {
        return HttpResponse::ServiceUnavailable()
            .json(json!({"status": "unavailable", "reason": "draining"}));
    }
    if let Some(store) = &state.store
        && let Err(e) = store.ping().await
    {
        tracing::warn!(error = %e, "readiness probe: database unreachable");
        return HttpResponse::ServiceUnavailable()
            .json(json!({"status": "unavailable", "reason": "database"}));
    }
    let probe = token_id().map_err(|e| e.to_string()).and_then(|jti| {
        state
            .minter
            .mint(
                TokenRequest {
                    subject: "",
                    audience: &state.service,
                    access: &[],
                    lifetime: state.lifetimes.for_token(&[], false),
                },
                SystemTime::now(),
                jti,
            )
            .map_err(|e| e.to_string())
    });
    match probe {
        Ok(_) => HttpResponse::Ok().json(json!({"status": "ready"})),
        Err(e) => {
            tracing::error!(error = %e, "readiness probe failed");
            HttpResponse::ServiceUnavailable().json(json!({"status": "unavailable"}))
        }
    }
}
