//! Request handlers: the token endpoint, the JWKS and the health probes.

use std::time::SystemTime;

use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse, web};
use actix_web_httpauth::headers::authorization::{Basic, ParseError, Scheme};
use cardgate_authz::{AuthnChain, AuthnError, AuthzChain, Credentials};
use cardgate_store::Store;
use cardgate_token::{AccessEntry, Minter, TokenId, TokenRequest, parse_scopes};
use secrecy::SecretString;
use serde::Serialize;
use serde_json::json;

use crate::error::TokenError;

/// What every handler shares.
#[derive(Debug)]
pub struct AppState {
    pub minter: Minter,
    /// The one `service` this server issues tokens for.
    pub service: String,
    pub authn: AuthnChain,
    pub authz: AuthzChain,
    /// The card store, when configured: readiness includes reaching it.
    pub store: Option<Store>,
    /// The JWKS document, serialised once at start-up.
    pub jwks: String,
}

/// The query parameters of a token request that matter.
#[derive(Debug, Default)]
struct TokenQuery {
    service: Option<String>,
    account: Option<String>,
    scopes: Vec<String>,
}

impl TokenQuery {
    fn parse(query: &str) -> Result<Self, TokenError> {
        let mut parsed = TokenQuery::default();
        for (key, value) in form_urlencoded::parse(query.as_bytes()) {
            let slot = match key.as_ref() {
                "scope" => {
                    parsed.scopes.push(value.into_owned());
                    continue;
                }
                "service" => &mut parsed.service,
                "account" => &mut parsed.account,
                _ => continue,
            };
            match slot {
                Some(previous) if *previous != value => {
                    return Err(TokenError::BadRequest(format!(
                        "parameter `{key}` is given twice with different values"
                    )));
                }
                _ => *slot = Some(value.into_owned()),
            }
        }
        Ok(parsed)
    }
}

fn credentials(req: &HttpRequest) -> Result<Credentials, TokenError> {
    let Some(value) = req.headers().get(header::AUTHORIZATION) else {
        return Ok(Credentials::Anonymous);
    };
    // Scheme names are case-insensitive (RFC 9110); the parser wants `Basic`.
    let normalized;
    let value = match value.as_bytes().get(..6) {
        Some(scheme) if scheme.eq_ignore_ascii_case(b"basic ") && scheme != b"Basic " => {
            let mut bytes = b"Basic ".to_vec();
            bytes.extend_from_slice(&value.as_bytes()[6..]);
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
    Ok(Credentials::Password {
        username: basic.user_id().to_owned(),
        password: SecretString::from(basic.password().unwrap_or_default()),
    })
}

fn token_id() -> Result<TokenId, TokenError> {
    let mut bytes = [0u8; 16];
    getrandom::fill(&mut bytes).map_err(|e| TokenError::Internal(e.to_string().into()))?;
    Ok(TokenId::from_random(bytes))
}

#[derive(Serialize)]
struct TokenResponse<'a> {
    token: &'a str,
    access_token: &'a str,
    expires_in: u64,
    issued_at: &'a str,
}

/// `GET <realm>?service=..&scope=..[&account=..]` with optional Basic credentials.
pub async fn token(
    req: HttpRequest,
    state: web::Data<AppState>,
) -> Result<HttpResponse, TokenError> {
    let query = TokenQuery::parse(req.query_string())?;
    let credentials = credentials(&req)?;
    if let (Some(account), Credentials::Password { username, .. }) = (&query.account, &credentials)
        && account != username
    {
        return Err(TokenError::BadRequest(
            "`account` differs from the user of the Basic credentials".into(),
        ));
    }
    if let Some(service) = &query.service
        && *service != state.service
    {
        return Err(TokenError::BadRequest(format!(
            "unknown service `{}`: this server issues tokens for `{}`",
            service.chars().take(256).collect::<String>(),
            state.service
        )));
    }
    let scopes = parse_scopes(query.scopes.iter().map(String::as_str))
        .map_err(|e| TokenError::BadRequest(e.to_string()))?;

    let identity = state
        .authn
        .authenticate(&credentials)
        .await
        .map_err(|e| match e {
            AuthnError::InvalidCredentials => TokenError::Unauthorized,
            AuthnError::Plugin(e) => TokenError::Backend(e),
        })?;
    let grants = state
        .authz
        .authorize(&identity, &scopes)
        .await
        .map_err(TokenError::Backend)?;
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
            },
            SystemTime::now(),
            token_id()?,
        )
        .map_err(|e| TokenError::Internal(Box::new(e)))?;
    tracing::info!(
        account = %identity.account,
        authenticator = identity.authenticator,
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
    Ok(HttpResponse::Ok()
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .json(TokenResponse {
            token: &issued.token,
            access_token: &issued.token,
            expires_in: issued.expires_in,
            issued_at: &issued.issued_at,
        }))
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

/// `GET /readyz`: a token can be signed right now, and the database (when configured) answers.
pub async fn readyz(state: web::Data<AppState>) -> HttpResponse {
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
