//! The admin API under `/v1/admin/`: log in and out, and change policy through
//! `cardgate-admin`, which decides who may change what and records every change with its
//! event. Served only when the card store is configured. Its OpenAPI document is generated
//! from the handlers' annotations and served at `/v1/admin/openapi.json`.

// utoipa's expansion of `params(<query type>)` names the type by a qualified path that carries
// the handler's span, which this lint would report on our code.
#![allow(unused_qualifications)]

use std::sync::{Arc, LazyLock};
use std::time::Duration;

use actix_web::http::StatusCode;
use actix_web::http::header::{self, HeaderValue};
use actix_web::{
    FromRequest, HttpRequest, HttpResponse, ResponseError, delete, get, patch, post, put, web,
};
use cardgate_admin::{Admin, AdminError, Caller, Page};
use cardgate_authz::{Authentication, Authenticator, Credentials, PluginError};
use cardgate_authz_cards::{CardAuthenticator, CardAuthorizer, Subject};
use cardgate_store::{Card, EventFilter, MembershipRole, Store, StoreError};
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{IntoParams, OpenApi, ToSchema};
use utoipa_actix_web::OpenApiFactory;
use uuid::Uuid;

use crate::input::{Document, Name, check_json_depth};
use crate::throttle::Throttle;

/// What the admin handlers share.
#[derive(Debug)]
pub struct AdminState {
    pub admin: Admin,
    pub store: Store,
    pub authenticator: CardAuthenticator,
    /// Explains decisions exactly as the token endpoint's authorizer makes them.
    pub authorizer: CardAuthorizer,
    /// How long a login session lasts.
    pub session_lifetime: Duration,
    /// Failed logins, shared with the token endpoint.
    pub throttle: Arc<Throttle>,
}

/// Why an admin request failed. One place maps it to a status; 5xx bodies are opaque.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("{0}")]
    BadRequest(String),
    #[error("a valid `Authorization: Bearer <session token>` is required")]
    Unauthorized,
    #[error("invalid username or password")]
    BadLogin,
    /// Too many failed logins; retry after the seconds.
    #[error("too many failed logins: try again later")]
    TooManyRequests(u64),
    #[error(transparent)]
    Admin(#[from] AdminError),
    #[error("an authentication backend failed")]
    Backend(#[source] PluginError),
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        ApiError::Admin(e.into())
    }
}

impl ApiError {
    fn code(&self) -> &'static str {
        match self {
            ApiError::BadRequest(_) | ApiError::Admin(AdminError::Invalid(_)) => "invalid_request",
            ApiError::Unauthorized | ApiError::BadLogin => "unauthorized",
            ApiError::TooManyRequests(_) => "too_many_requests",
            ApiError::Admin(AdminError::Forbidden(_)) => "forbidden",
            ApiError::Admin(AdminError::NotFound(_)) => "not_found",
            ApiError::Admin(AdminError::Conflict(_)) => "conflict",
            ApiError::Admin(AdminError::Stale { .. }) => "precondition_failed",
            ApiError::Admin(AdminError::Store(StoreError::Unavailable(_))) => {
                "temporarily_unavailable"
            }
            ApiError::Backend(e) if e.unavailable => "temporarily_unavailable",
            ApiError::Admin(AdminError::Store(_)) | ApiError::Backend(_) => "server_error",
        }
    }
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        match self.code() {
            "invalid_request" => StatusCode::BAD_REQUEST,
            "unauthorized" => StatusCode::UNAUTHORIZED,
            "forbidden" => StatusCode::FORBIDDEN,
            "not_found" => StatusCode::NOT_FOUND,
            "conflict" => StatusCode::CONFLICT,
            "precondition_failed" => StatusCode::PRECONDITION_FAILED,
            "temporarily_unavailable" => StatusCode::SERVICE_UNAVAILABLE,
            "too_many_requests" => StatusCode::TOO_MANY_REQUESTS,
            _ => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn error_response(&self) -> HttpResponse {
        let status = self.status_code();
        let description = if status.is_server_error() {
            tracing::error!(error = ?self, "admin request failed");
            "the server could not complete the request".to_owned()
        } else {
            self.to_string()
        };
        let mut response = HttpResponse::build(status);
        if status == StatusCode::UNAUTHORIZED {
            response.insert_header((header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer")));
        }
        if let ApiError::TooManyRequests(seconds) = self {
            response.insert_header((header::RETRY_AFTER, seconds.to_string()));
        }
        response.json(ErrorBody {
            error: self.code(),
            error_description: description,
        })
    }
}

/// Every error answer: a machine-readable code and a description naming the problem.
#[derive(Serialize, ToSchema)]
struct ErrorBody {
    /// `invalid_request`, `unauthorized`, `forbidden`, `not_found`, `conflict`,
    /// `precondition_failed`, `too_many_requests`, `temporarily_unavailable` or
    /// `server_error`.
    error: &'static str,
    error_description: String,
}

type ApiResult = Result<HttpResponse, ApiError>;

/// A JSON body; malformed ones are 400 naming the field (or the body, when it is not JSON),
/// and so are those nested deeper than [`crate::input::MAX_JSON_DEPTH`].
fn body<T: serde::de::DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    check_json_depth(bytes).map_err(|e| ApiError::BadRequest(e.to_string()))?;
    let deserializer = &mut serde_json::Deserializer::from_slice(bytes);
    serde_path_to_error::deserialize(deserializer).map_err(|e| {
        let path = e.path().to_string();
        let field = if path == "." { "body".to_owned() } else { path };
        ApiError::BadRequest(format!("{field}: {}", e.inner()))
    })
}

/// A path segment naming a card (`{user}`, `{org}`, `{role}`): a [`Name`], else 400 naming
/// the segment.
fn segment(field: &str, value: String) -> Result<Name, ApiError> {
    Name::parse(value).map_err(|e| ApiError::BadRequest(format!("{field}: {e}")))
}

/// A query string's parameters; malformed ones are 400 naming the parameter.
struct Query<T>(T);

impl<T> Query<T> {
    fn into_inner(self) -> T {
        self.0
    }
}

impl<T> std::ops::Deref for Query<T> {
    type Target = T;
    fn deref(&self) -> &T {
        &self.0
    }
}

impl<T: serde::de::DeserializeOwned> FromRequest for Query<T> {
    type Error = ApiError;
    type Future = std::future::Ready<Result<Self, ApiError>>;

    fn from_request(req: &HttpRequest, _: &mut actix_web::dev::Payload) -> Self::Future {
        let parameters = form_urlencoded::parse(req.query_string().as_bytes());
        let deserializer = serde_urlencoded::Deserializer::new(parameters);
        std::future::ready(
            serde_path_to_error::deserialize(deserializer)
                .map(Query)
                .map_err(|e| {
                    let path = e.path().to_string();
                    let field = if path == "." {
                        "query".to_owned()
                    } else {
                        path
                    };
                    ApiError::BadRequest(format!("{field}: {}", e.inner()))
                }),
        )
    }
}

/// Reads `Authorization: Bearer <session id>.<secret>` (scheme in any case): the session id,
/// and the whole token. `None` when the header is not of that form.
pub fn bearer_session(value: &HeaderValue) -> Option<(Uuid, &str)> {
    let (scheme, token) = value.to_str().ok()?.split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("bearer") {
        return None;
    }
    let token = token.trim();
    let (id, _) = token.split_once('.')?;
    Some((Uuid::parse_str(id).ok()?, token))
}

/// The caller behind `Authorization: Bearer <session id>.<secret>`, and the session id.
async fn caller(req: &HttpRequest, state: &AdminState) -> Result<(Caller, Uuid), ApiError> {
    let (session_id, token) = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(bearer_session)
        .ok_or(ApiError::Unauthorized)?;
    // Only admin login sessions: a CI token or a refresh token is never an admin credential.
    let actor = state
        .store
        .card_by_id(session_id)
        .await?
        .filter(|session| session.data["kind"] == "login")
        .and_then(|session| {
            session.data["actor"]
                .as_str()
                .and_then(|a| Uuid::parse_str(a).ok())
        })
        .ok_or(ApiError::Unauthorized)?;
    let user = state
        .store
        .card_by_id(actor)
        .await?
        .filter(|u| u.active)
        .ok_or(ApiError::Unauthorized)?;
    // The card authenticator checks the session: the user's, ordinary, active, unexpired,
    // and the secret's hash, in constant time.
    let credentials = Credentials::Password {
        username: user.slug.clone(),
        password: SecretString::from(token),
    };
    match state
        .authenticator
        .authenticate(&credentials)
        .await
        .map_err(ApiError::Backend)?
    {
        Authentication::Authenticated(identity) if identity.session.is_some() => {}
        _ => return Err(ApiError::Unauthorized),
    }
    let caller = state
        .admin
        .caller(user.id)
        .await?
        .ok_or(ApiError::Unauthorized)?;
    Ok((caller, session_id))
}

/// A card as the API shows it; `revision` is also its `ETag`.
#[derive(Serialize, ToSchema)]
struct CardView<'a> {
    id: Uuid,
    slug: &'a str,
    #[serde(rename = "type")]
    card_type: &'a str,
    name: Option<&'a str>,
    markers: &'a [String],
    data: &'a Value,
    active: bool,
    revision: i64,
}

fn card_json(card: &Card) -> CardView<'_> {
    CardView {
        id: card.id,
        slug: &card.slug,
        card_type: &card.card_type,
        name: card.name.as_deref(),
        markers: &card.markers,
        data: &card.data,
        active: card.active,
        revision: card.revision,
    }
}

/// A listing of cards; page on with `?after=<last slug>`.
#[derive(Serialize, ToSchema)]
struct CardList<'a> {
    cards: Vec<CardView<'a>>,
}

fn card_list(cards: &[Card]) -> HttpResponse {
    HttpResponse::Ok().json(CardList {
        cards: cards.iter().map(card_json).collect(),
    })
}

/// A page of a listing.
#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
struct PageQuery {
    /// Start after this slug (the last one of the previous page).
    #[param(value_type = Option<String>)]
    after: Option<Name>,
    /// At most this many cards (default 100, at most 1000).
    limit: Option<i64>,
}

impl From<PageQuery> for Page {
    fn from(q: PageQuery) -> Page {
        Page {
            after: q.after.map(Name::into_string),
            limit: q.limit,
        }
    }
}

/// A card answer, with its revision as the `ETag`.
fn with_etag(status: StatusCode, card: &Card) -> HttpResponse {
    HttpResponse::build(status)
        .insert_header((header::ETAG, format!("\"{}\"", card.revision)))
        .json(card_json(card))
}

/// The revision an update names in `If-Match` (required: no blind overwrites).
fn if_match(req: &HttpRequest) -> Result<i64, ApiError> {
    req.headers()
        .get(header::IF_MATCH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            v.trim()
                .trim_start_matches("W/")
                .trim_matches('"')
                .parse()
                .ok()
        })
        .ok_or_else(|| {
            ApiError::BadRequest("If-Match: the card's revision (its ETag) is required".into())
        })
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct Login {
    username: String,
    password: String,
}

/// A login session's token, for `Authorization: Bearer`.
#[derive(Serialize, ToSchema)]
struct LoginAnswer {
    token: String,
    user: String,
    expires_at: String,
}

/// Logs in with a password; the answer's token is the `Bearer` of every other call.
#[utoipa::path(
    tag = "session",
    request_body = Login,
    security(()),
    responses(
        (status = 200, body = LoginAnswer),
        (status = 400, body = ErrorBody),
        (status = 401, body = ErrorBody),
        (status = 429, body = ErrorBody),
    ),
)]
#[post("/login")]
async fn log_in(req: HttpRequest, state: web::Data<AdminState>, bytes: web::Bytes) -> ApiResult {
    let login: Login = body(&bytes)?;
    // A malformed user name is a failed login too.
    let username = match Name::parse(login.username.as_str()) {
        Ok(username) => username,
        Err(e) => {
            state
                .throttle
                .malformed_login(&req, &login.username)
                .await
                .map_err(|locked| ApiError::TooManyRequests(locked.retry_after_seconds()))?;
            return Err(ApiError::BadRequest(format!("username: {e}")));
        }
    };
    let credentials = Credentials::Password {
        username: username.into_string(),
        password: SecretString::from(login.password),
    };
    let attempt = state
        .throttle
        .admit(&req, &credentials)
        .await
        .map_err(|locked| ApiError::TooManyRequests(locked.retry_after_seconds()))?;
    let identity = match state
        .authenticator
        .authenticate(&credentials)
        .await
        .map_err(ApiError::Backend)?
    {
        // A session token is not a password: logging in needs the password.
        Authentication::Authenticated(identity) if identity.session.is_none() => identity,
        Authentication::Authenticated(_) => return Err(ApiError::BadLogin),
        Authentication::Rejected | Authentication::NotMine => {
            attempt.failed().await;
            return Err(ApiError::BadLogin);
        }
    };
    let user = state
        .store
        .card_by_slug(&cardgate_authz_cards::user_slug(&identity.account))
        .await?
        .ok_or(ApiError::BadLogin)?;
    // `admin.session_lifetime_seconds` is range-checked at start-up; never overflow anyway.
    let expiration = time::Duration::try_from(state.session_lifetime)
        .ok()
        .and_then(|lifetime| OffsetDateTime::now_utc().checked_add(lifetime))
        .ok_or_else(|| {
            ApiError::Backend(PluginError::internal(
                "admin",
                format!("session lifetime {:?}", state.session_lifetime),
            ))
        })?;
    let session = state.store.create_login_session(&user, expiration).await?;
    Ok(HttpResponse::Ok()
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .json(LoginAnswer {
            token: session.token.expose_secret().to_owned(),
            user: user.slug,
            expires_at: expiration.format(&Rfc3339).unwrap_or_default(),
        }))
}

/// Logs out: deactivates the caller's session.
#[utoipa::path(
    tag = "session",
    responses((status = 204), (status = 401, body = ErrorBody)),
)]
#[post("/logout")]
async fn log_out(req: HttpRequest, state: web::Data<AdminState>) -> ApiResult {
    let (caller, session) = caller(&req, &state).await?;
    state.store.deactivate(&caller.card, session, None).await?;
    Ok(HttpResponse::NoContent().finish())
}

/// An org membership.
#[derive(Serialize, ToSchema)]
struct MembershipView {
    org: String,
    /// `owner`, `maintainer`, `developer` or `viewer`.
    #[schema(value_type = String, pattern = "^(owner|maintainer|developer|viewer)$")]
    role: MembershipRole,
}

/// Who the caller is.
#[derive(Serialize, ToSchema)]
struct WhoAmI {
    user: String,
    platform_admin: bool,
    memberships: Vec<MembershipView>,
}

/// The caller: its user, whether it is a platform admin, its memberships.
#[utoipa::path(
    tag = "session",
    responses((status = 200, body = WhoAmI), (status = 401, body = ErrorBody)),
)]
#[get("/whoami")]
async fn who_am_i(req: HttpRequest, state: web::Data<AdminState>) -> ApiResult {
    let (caller, _) = caller(&req, &state).await?;
    Ok(HttpResponse::Ok().json(WhoAmI {
        user: caller.card.slug.clone(),
        platform_admin: caller.platform_admin,
        memberships: caller
            .memberships()
            .iter()
            .map(|m| MembershipView {
                org: m.org_slug.clone(),
                role: m.role,
            })
            .collect(),
    }))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct NewOrg {
    /// Lowercase letters, digits and inner `-`; the org's slug is `org-<name>`.
    name: String,
}

/// The orgs the caller may look inside: all for platform admins, else its own.
#[utoipa::path(
    tag = "orgs",
    params(PageQuery),
    responses((status = 200, body = CardList), (status = 401, body = ErrorBody)),
)]
#[get("/orgs")]
async fn list_orgs(
    req: HttpRequest,
    state: web::Data<AdminState>,
    query: Query<PageQuery>,
) -> ApiResult {
    let (caller, _) = caller(&req, &state).await?;
    let orgs = state
        .admin
        .orgs(&caller, &query.into_inner().into())
        .await?;
    Ok(card_list(&orgs))
}

/// Creates an org. Platform admins only.
#[utoipa::path(
    tag = "orgs",
    request_body = NewOrg,
    responses(
        (status = 201, body = CardView),
        (status = 400, body = ErrorBody),
        (status = 403, body = ErrorBody),
        (status = 409, body = ErrorBody),
    ),
)]
#[post("/orgs")]
async fn create_org(
    req: HttpRequest,
    state: web::Data<AdminState>,
    bytes: web::Bytes,
) -> ApiResult {
    let (caller, _) = caller(&req, &state).await?;
    let new: NewOrg = body(&bytes)?;
    let org = state.admin.create_org(&caller, &new.name).await?;
    Ok(with_etag(StatusCode::CREATED, &org))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct NewUser {
    name: String,
    /// Platform roles, e.g. `user-default`, `platform-admin`.
    #[serde(default)]
    roles: Vec<String>,
}

/// All users. Platform admins only.
#[utoipa::path(
    tag = "users",
    params(PageQuery),
    responses((status = 200, body = CardList), (status = 403, body = ErrorBody)),
)]
#[get("/users")]
async fn list_users(
    req: HttpRequest,
    state: web::Data<AdminState>,
    query: Query<PageQuery>,
) -> ApiResult {
    let (caller, _) = caller(&req, &state).await?;
    let users = state
        .admin
        .users(&caller, &query.into_inner().into())
        .await?;
    Ok(card_list(&users))
}

/// Creates a user. Platform admins only.
#[utoipa::path(
    tag = "users",
    request_body = NewUser,
    responses(
        (status = 201, body = CardView),
        (status = 400, body = ErrorBody),
        (status = 403, body = ErrorBody),
        (status = 409, body = ErrorBody),
    ),
)]
#[post("/users")]
async fn create_user(
    req: HttpRequest,
    state: web::Data<AdminState>,
    bytes: web::Bytes,
) -> ApiResult {
    let (caller, _) = caller(&req, &state).await?;
    let new: NewUser = body(&bytes)?;
    let user = state
        .admin
        .create_user(&caller, &new.name, &new.roles)
        .await?;
    Ok(with_etag(StatusCode::CREATED, &user))
}

/// A user, with its revision as the `ETag`: the user itself, platform admins, owners of a
/// robot's org.
#[utoipa::path(
    tag = "users",
    responses(
        (status = 200, body = CardView),
        (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody),
    ),
)]
#[get("/users/{user}")]
async fn get_user(
    req: HttpRequest,
    state: web::Data<AdminState>,
    path: web::Path<String>,
) -> ApiResult {
    let (caller, _) = caller(&req, &state).await?;
    let user = cardgate_authz_cards::user_slug(segment("user", path.into_inner())?.as_str());
    let card = state.admin.user(&caller, &user).await?;
    Ok(with_etag(StatusCode::OK, &card))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct Roles {
    roles: Vec<String>,
}

/// Replaces a user's platform roles; `If-Match: "<revision>"` required. Platform admins only;
/// the built-in users' roles never change (403).
#[utoipa::path(
    tag = "users",
    request_body = Roles,
    params(("If-Match" = String, Header, description = "The user's revision (its ETag)")),
    responses(
        (status = 200, body = CardView),
        (status = 400, body = ErrorBody),
        (status = 403, body = ErrorBody),
        (status = 412, body = ErrorBody),
    ),
)]
#[put("/users/{user}/roles")]
async fn set_roles(
    req: HttpRequest,
    state: web::Data<AdminState>,
    path: web::Path<String>,
    bytes: web::Bytes,
) -> ApiResult {
    let (caller, _) = caller(&req, &state).await?;
    let revision = if_match(&req)?;
    let new: Roles = body(&bytes)?;
    let user = cardgate_authz_cards::user_slug(segment("user", path.into_inner())?.as_str());
    let card = state
        .admin
        .set_roles(&caller, &user, revision, &new.roles)
        .await?;
    Ok(with_etag(StatusCode::OK, &card))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct NewPassword {
    /// At least 8 characters.
    password: String,
}

/// Sets a password, stored as an argon2id hash; the event records the change, never the
/// secret. The user itself, platform admins, owners of a robot's org; never `user-admin`
/// (set on the host with `cardgate set-password admin`) or `user-guest` (403).
#[utoipa::path(
    tag = "users",
    request_body = NewPassword,
    responses(
        (status = 204),
        (status = 400, body = ErrorBody),
        (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody),
    ),
)]
#[put("/users/{user}/password")]
async fn set_password(
    req: HttpRequest,
    state: web::Data<AdminState>,
    path: web::Path<String>,
    bytes: web::Bytes,
) -> ApiResult {
    let (caller, _) = caller(&req, &state).await?;
    let new: NewPassword = body(&bytes)?;
    if new.password.chars().count() < 8 {
        return Err(ApiError::BadRequest(
            "password: at least 8 characters".into(),
        ));
    }
    // Refusals cost no hashing; the hash is computed off the request workers.
    let user = cardgate_authz_cards::user_slug(segment("user", path.into_inner())?.as_str());
    state.admin.password_user(&caller, &user).await?;
    let password = SecretString::from(new.password);
    let hash = web::block(move || cardgate_authz_static::hash_password(&password))
        .await
        .map_err(|e| ApiError::Backend(PluginError::internal("cards", e.to_string())))?
        .map_err(|e| ApiError::Backend(PluginError::internal("cards", e.to_string())))?;
    state.admin.set_password(&caller, &user, &hash).await?;
    Ok(HttpResponse::NoContent().finish())
}

/// Deactivates a user: platform admins, owners of a robot's org; never a built-in user (403).
#[utoipa::path(
    tag = "users",
    responses(
        (status = 200, body = CardView),
        (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody),
    ),
)]
#[delete("/users/{user}")]
async fn deactivate_user(
    req: HttpRequest,
    state: web::Data<AdminState>,
    path: web::Path<String>,
) -> ApiResult {
    let (caller, _) = caller(&req, &state).await?;
    let user = cardgate_authz_cards::user_slug(segment("user", path.into_inner())?.as_str());
    let card = state.admin.deactivate_user(&caller, &user).await?;
    Ok(with_etag(StatusCode::OK, &card))
}

#[derive(Deserialize, Default, ToSchema)]
#[serde(deny_unknown_fields)]
struct NewToken {
    /// Lifetime in seconds (default one year).
    #[serde(default)]
    expires_in_seconds: Option<u64>,
    /// A JSON Schema the cards the token reaches must satisfy.
    #[serde(default)]
    #[schema(value_type = Option<Value>)]
    scope: Option<Document>,
}

/// A new token: its secret is shown only here.
#[derive(Serialize, ToSchema)]
struct IssuedToken {
    id: Uuid,
    token: String,
    expires_at: Value,
}

/// Longest token lifetime: ten years.
const MAX_TOKEN_SECONDS: u64 = 10 * 365 * 24 * 3600;

/// Opens a token (for CI robots): the secret is shown once, only its hash is kept. The user
/// itself, platform admins, owners of a robot's org.
#[utoipa::path(
    tag = "users",
    request_body = NewToken,
    responses(
        (status = 201, body = IssuedToken),
        (status = 400, body = ErrorBody),
        (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody),
    ),
)]
#[post("/users/{user}/tokens")]
async fn create_token(
    req: HttpRequest,
    state: web::Data<AdminState>,
    path: web::Path<String>,
    bytes: web::Bytes,
) -> ApiResult {
    let (caller, _) = caller(&req, &state).await?;
    let new: NewToken = if bytes.is_empty() {
        NewToken::default()
    } else {
        body(&bytes)?
    };
    let seconds = new.expires_in_seconds.unwrap_or(365 * 24 * 3600);
    if !(60..=MAX_TOKEN_SECONDS).contains(&seconds) {
        return Err(ApiError::BadRequest(format!(
            "expires_in_seconds: between 60 and {MAX_TOKEN_SECONDS}"
        )));
    }
    let expiration = OffsetDateTime::now_utc()
        + time::Duration::seconds(i64::try_from(seconds).unwrap_or(i64::MAX));
    let user = cardgate_authz_cards::user_slug(segment("user", path.into_inner())?.as_str());
    let issued = state
        .admin
        .create_token(
            &caller,
            &user,
            expiration,
            new.scope.map(Document::into_value),
        )
        .await?;
    Ok(HttpResponse::Created()
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .json(IssuedToken {
            id: issued.card.id,
            token: issued.token.expose_secret().to_owned(),
            expires_at: issued.card.data["expiration"].clone(),
        }))
}

/// A session as listed: never its secret's hash.
#[derive(Serialize, ToSchema)]
struct SessionView<'a> {
    id: Uuid,
    /// `session` (logins and tokens) or `refresh` (OAuth2 refresh tokens).
    kind: &'a str,
    client_id: &'a Value,
    service: &'a Value,
    expires_at: &'a Value,
    /// Whether a scope narrows what it reaches.
    scoped: bool,
    created_at: String,
}

/// The sessions of a user.
#[derive(Serialize, ToSchema)]
struct SessionList<'a> {
    sessions: Vec<SessionView<'a>>,
}

fn session_json(card: &Card) -> SessionView<'_> {
    SessionView {
        id: card.id,
        kind: card.data["kind"].as_str().unwrap_or("session"),
        client_id: &card.data["client_id"],
        service: &card.data["service"],
        expires_at: &card.data["expiration"],
        scoped: card.data.get("scope").is_some(),
        created_at: card.created_at.format(&Rfc3339).unwrap_or_default(),
    }
}

/// Sessions, tokens and refresh tokens of a user, without secrets.
#[utoipa::path(
    tag = "sessions",
    responses(
        (status = 200, body = SessionList),
        (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody),
    ),
)]
#[get("/users/{user}/sessions")]
async fn list_sessions(
    req: HttpRequest,
    state: web::Data<AdminState>,
    path: web::Path<String>,
) -> ApiResult {
    let (caller, _) = caller(&req, &state).await?;
    let user = cardgate_authz_cards::user_slug(segment("user", path.into_inner())?.as_str());
    let sessions = state.admin.sessions(&caller, &user).await?;
    Ok(HttpResponse::Ok().json(SessionList {
        sessions: sessions.iter().map(session_json).collect(),
    }))
}

/// Revokes a session, token or refresh token at once.
#[utoipa::path(
    tag = "sessions",
    responses(
        (status = 204),
        (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody),
    ),
)]
#[delete("/sessions/{id}")]
async fn revoke_session(
    req: HttpRequest,
    state: web::Data<AdminState>,
    path: web::Path<Uuid>,
) -> ApiResult {
    let (caller, _) = caller(&req, &state).await?;
    state
        .admin
        .revoke_session(&caller, path.into_inner())
        .await?;
    Ok(HttpResponse::NoContent().finish())
}

/// A member of an org.
#[derive(Serialize, ToSchema)]
struct MemberView<'a> {
    user: &'a str,
    /// `owner`, `maintainer`, `developer` or `viewer`.
    #[schema(value_type = String, pattern = "^(owner|maintainer|developer|viewer)$")]
    role: MembershipRole,
}

/// The members of an org.
#[derive(Serialize, ToSchema)]
struct MemberList<'a> {
    members: Vec<MemberView<'a>>,
}

/// The members of an org and their roles. Members of the org.
#[utoipa::path(
    tag = "orgs",
    responses(
        (status = 200, body = MemberList),
        (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody),
    ),
)]
#[get("/orgs/{org}/members")]
async fn list_members(
    req: HttpRequest,
    state: web::Data<AdminState>,
    path: web::Path<String>,
) -> ApiResult {
    let (caller, _) = caller(&req, &state).await?;
    let org = format!("org-{}", segment("org", path.into_inner())?.as_str());
    let members = state.admin.members(&caller, &org).await?;
    Ok(HttpResponse::Ok().json(MemberList {
        members: members
            .iter()
            .map(|m| MemberView {
                user: &m.user.slug,
                role: m.role,
            })
            .collect(),
    }))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct NewMember {
    #[schema(value_type = String)]
    user: Name,
    /// `owner`, `maintainer`, `developer` or `viewer`.
    #[schema(value_type = String, pattern = "^(owner|maintainer|developer|viewer)$")]
    role: MembershipRole,
}

/// Adds a member with a role. Owners of the org, never above their own role.
#[utoipa::path(
    tag = "orgs",
    request_body = NewMember,
    responses(
        (status = 204),
        (status = 400, body = ErrorBody),
        (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody),
        (status = 409, body = ErrorBody),
    ),
)]
#[post("/orgs/{org}/members")]
async fn add_member(
    req: HttpRequest,
    state: web::Data<AdminState>,
    path: web::Path<String>,
    bytes: web::Bytes,
) -> ApiResult {
    let (caller, _) = caller(&req, &state).await?;
    let new: NewMember = body(&bytes)?;
    let org = format!("org-{}", segment("org", path.into_inner())?.as_str());
    let user = cardgate_authz_cards::user_slug(new.user.as_str());
    state
        .admin
        .add_member(&caller, &org, &user, new.role)
        .await?;
    Ok(HttpResponse::NoContent().finish())
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct RoleChange {
    /// `owner`, `maintainer`, `developer` or `viewer`.
    #[schema(value_type = String, pattern = "^(owner|maintainer|developer|viewer)$")]
    role: MembershipRole,
}

/// Changes a member's role. Owners of the org, never above their own role.
#[utoipa::path(
    tag = "orgs",
    request_body = RoleChange,
    responses(
        (status = 204),
        (status = 400, body = ErrorBody),
        (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody),
    ),
)]
#[put("/orgs/{org}/members/{user}")]
async fn set_member_role(
    req: HttpRequest,
    state: web::Data<AdminState>,
    path: web::Path<(String, String)>,
    bytes: web::Bytes,
) -> ApiResult {
    let (caller, _) = caller(&req, &state).await?;
    let change: RoleChange = body(&bytes)?;
    let (org, user) = path.into_inner();
    let org = segment("org", org)?.into_string();
    let user = cardgate_authz_cards::user_slug(segment("user", user)?.as_str());
    state
        .admin
        .set_member_role(&caller, &format!("org-{org}"), &user, change.role)
        .await?;
    Ok(HttpResponse::NoContent().finish())
}

/// Removes a member. Owners of the org.
#[utoipa::path(
    tag = "orgs",
    responses(
        (status = 204),
        (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody),
    ),
)]
#[delete("/orgs/{org}/members/{user}")]
async fn remove_member(
    req: HttpRequest,
    state: web::Data<AdminState>,
    path: web::Path<(String, String)>,
) -> ApiResult {
    let (caller, _) = caller(&req, &state).await?;
    let (org, user) = path.into_inner();
    let org = segment("org", org)?.into_string();
    let user = cardgate_authz_cards::user_slug(segment("user", user)?.as_str());
    state
        .admin
        .remove_member(&caller, &format!("org-{org}"), &user)
        .await?;
    Ok(HttpResponse::NoContent().finish())
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct NewRobot {
    /// Lowercase letters, digits and inner `-`; the robot's slug is `user-<name>`.
    name: String,
}

/// The robots of an org. Owners of the org.
#[utoipa::path(
    tag = "orgs",
    params(PageQuery),
    responses(
        (status = 200, body = CardList),
        (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody),
    ),
)]
#[get("/orgs/{org}/robots")]
async fn list_robots(
    req: HttpRequest,
    state: web::Data<AdminState>,
    path: web::Path<String>,
    query: Query<PageQuery>,
) -> ApiResult {
    let (caller, _) = caller(&req, &state).await?;
    let org = format!("org-{}", segment("org", path.into_inner())?.as_str());
    let robots = state
        .admin
        .robots(&caller, &org, &query.into_inner().into())
        .await?;
    Ok(card_list(&robots))
}

/// Creates a robot user for CI in the org: it reaches only what it is granted. Owners of
/// the org.
#[utoipa::path(
    tag = "orgs",
    request_body = NewRobot,
    responses(
        (status = 201, body = CardView),
        (status = 400, body = ErrorBody),
        (status = 403, body = ErrorBody),
        (status = 409, body = ErrorBody),
    ),
)]
#[post("/orgs/{org}/robots")]
async fn create_robot(
    req: HttpRequest,
    state: web::Data<AdminState>,
    path: web::Path<String>,
    bytes: web::Bytes,
) -> ApiResult {
    let (caller, _) = caller(&req, &state).await?;
    let new: NewRobot = body(&bytes)?;
    let org = format!("org-{}", segment("org", path.into_inner())?.as_str());
    let robot = state.admin.create_robot(&caller, &org, &new.name).await?;
    Ok(with_etag(StatusCode::CREATED, &robot))
}

/// The images of an org. Members of the org.
#[utoipa::path(
    tag = "images",
    params(PageQuery),
    responses(
        (status = 200, body = CardList),
        (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody),
    ),
)]
#[get("/orgs/{org}/images")]
async fn list_images(
    req: HttpRequest,
    state: web::Data<AdminState>,
    path: web::Path<String>,
    query: Query<PageQuery>,
) -> ApiResult {
    let (caller, _) = caller(&req, &state).await?;
    let org = format!("org-{}", segment("org", path.into_inner())?.as_str());
    let images = state
        .admin
        .images(&caller, &org, &query.into_inner().into())
        .await?;
    Ok(card_list(&images))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct NewImage {
    /// `<org>/<name...>`.
    repository: String,
    #[serde(default)]
    public: bool,
}

#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
struct RepositoryQuery {
    repository: String,
}

/// Creates the image of a repository. Owners of its org.
#[utoipa::path(
    tag = "images",
    request_body = NewImage,
    responses(
        (status = 201, body = CardView),
        (status = 400, body = ErrorBody),
        (status = 403, body = ErrorBody),
        (status = 409, body = ErrorBody),
    ),
)]
#[post("/images")]
async fn create_image(
    req: HttpRequest,
    state: web::Data<AdminState>,
    bytes: web::Bytes,
) -> ApiResult {
    let (caller, _) = caller(&req, &state).await?;
    let new: NewImage = body(&bytes)?;
    let image = state
        .admin
        .create_image(&caller, &new.repository, new.public)
        .await?;
    Ok(with_etag(StatusCode::CREATED, &image))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct ImageChange {
    repository: String,
    public: bool,
}

/// Opens an image to the public or closes it; `If-Match: "<revision>"` required. Owners of
/// its org.
#[utoipa::path(
    tag = "images",
    request_body = ImageChange,
    params(("If-Match" = String, Header, description = "The image's revision (its ETag)")),
    responses(
        (status = 200, body = CardView),
        (status = 400, body = ErrorBody),
        (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody),
        (status = 412, body = ErrorBody),
    ),
)]
#[patch("/images")]
async fn set_public(
    req: HttpRequest,
    state: web::Data<AdminState>,
    bytes: web::Bytes,
) -> ApiResult {
    let (caller, _) = caller(&req, &state).await?;
    let revision = if_match(&req)?;
    let change: ImageChange = body(&bytes)?;
    let image = state
        .admin
        .set_public(&caller, &change.repository, revision, change.public)
        .await?;
    Ok(with_etag(StatusCode::OK, &image))
}

/// Deactivates an image; `If-Match` required. Its name is never recreated by a push. Owners
/// of its org.
#[utoipa::path(
    tag = "images",
    params(
        RepositoryQuery,
        ("If-Match" = String, Header, description = "The image's revision (its ETag)")),
    responses(
        (status = 200, body = CardView),
        (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody),
        (status = 412, body = ErrorBody),
    ),
)]
#[delete("/images")]
async fn deactivate_image(
    req: HttpRequest,
    state: web::Data<AdminState>,
    query: Query<RepositoryQuery>,
) -> ApiResult {
    let (caller, _) = caller(&req, &state).await?;
    let revision = if_match(&req)?;
    let image = state
        .admin
        .deactivate_image(&caller, &query.repository, revision)
        .await?;
    Ok(with_etag(StatusCode::OK, &image))
}

/// An explicit grant.
#[derive(Serialize, ToSchema)]
struct GrantView<'a> {
    holder: &'a str,
    actions: &'a [String],
}

/// The explicit grants on an image.
#[derive(Serialize, ToSchema)]
struct GrantList<'a> {
    grants: Vec<GrantView<'a>>,
}

/// The explicit grants on a repository. Owners of its org.
#[utoipa::path(
    tag = "grants",
    params(RepositoryQuery),
    responses(
        (status = 200, body = GrantList),
        (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody),
    ),
)]
#[get("/grants")]
async fn list_grants(
    req: HttpRequest,
    state: web::Data<AdminState>,
    query: Query<RepositoryQuery>,
) -> ApiResult {
    let (caller, _) = caller(&req, &state).await?;
    let grants = state.admin.grants(&caller, &query.repository).await?;
    Ok(HttpResponse::Ok().json(GrantList {
        grants: grants
            .iter()
            .map(|g| GrantView {
                holder: &g.holder.slug,
                actions: &g.actions,
            })
            .collect(),
    }))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct GrantBody {
    /// A user or org slug (`user-ci`, `org-acme`).
    #[schema(value_type = String)]
    holder: Name,
    repository: String,
    /// `pull`, `push`, `delete`, `*`.
    actions: Vec<String>,
}

#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
struct GrantQuery {
    #[param(value_type = String)]
    holder: Name,
    repository: String,
}

/// Grants a user or org actions on a repository. Owners of its org.
#[utoipa::path(
    tag = "grants",
    request_body = GrantBody,
    responses(
        (status = 204),
        (status = 400, body = ErrorBody),
        (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody),
        (status = 409, body = ErrorBody),
    ),
)]
#[post("/grants")]
async fn add_grant(req: HttpRequest, state: web::Data<AdminState>, bytes: web::Bytes) -> ApiResult {
    let (caller, _) = caller(&req, &state).await?;
    let grant: GrantBody = body(&bytes)?;
    state
        .admin
        .grant(
            &caller,
            grant.holder.as_str(),
            &grant.repository,
            &grant.actions,
        )
        .await?;
    Ok(HttpResponse::NoContent().finish())
}

/// Revokes a grant. Owners of the repository's org.
#[utoipa::path(
    tag = "grants",
    params(GrantQuery),
    responses(
        (status = 204),
        (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody),
    ),
)]
#[delete("/grants")]
async fn revoke_grant(
    req: HttpRequest,
    state: web::Data<AdminState>,
    query: Query<GrantQuery>,
) -> ApiResult {
    let (caller, _) = caller(&req, &state).await?;
    state
        .admin
        .revoke(&caller, query.holder.as_str(), &query.repository)
        .await?;
    Ok(HttpResponse::NoContent().finish())
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct RoleBody {
    /// A JSON Schema the cards holders of the role may read must satisfy, or `true`.
    #[schema(value_type = Value)]
    read: Document,
    /// Whether holders may list the registry catalog.
    #[serde(default)]
    catalog: bool,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct NewRole {
    name: String,
    #[schema(value_type = Value)]
    read: Document,
    #[serde(default)]
    catalog: bool,
}

/// All role cards. Platform admins only.
#[utoipa::path(
    tag = "roles",
    params(PageQuery),
    responses((status = 200, body = CardList), (status = 403, body = ErrorBody)),
)]
#[get("/roles")]
async fn list_roles(
    req: HttpRequest,
    state: web::Data<AdminState>,
    query: Query<PageQuery>,
) -> ApiResult {
    let (caller, _) = caller(&req, &state).await?;
    let roles = state
        .admin
        .roles(&caller, &query.into_inner().into())
        .await?;
    Ok(card_list(&roles))
}

/// Creates the role card `role-<name>`. Platform admins only.
#[utoipa::path(
    tag = "roles",
    request_body = NewRole,
    responses(
        (status = 201, body = CardView),
        (status = 400, body = ErrorBody),
        (status = 403, body = ErrorBody),
        (status = 409, body = ErrorBody),
    ),
)]
#[post("/roles")]
async fn create_role(
    req: HttpRequest,
    state: web::Data<AdminState>,
    bytes: web::Bytes,
) -> ApiResult {
    let (caller, _) = caller(&req, &state).await?;
    let new: NewRole = body(&bytes)?;
    let role = state
        .admin
        .create_role(&caller, &new.name, new.read.into_value(), new.catalog)
        .await?;
    Ok(with_etag(StatusCode::CREATED, &role))
}

/// Replaces a role's read schema and catalog flag; `If-Match` required. Platform admins only;
/// never a built-in role (403).
#[utoipa::path(
    tag = "roles",
    request_body = RoleBody,
    params(("If-Match" = String, Header, description = "The role's revision (its ETag)")),
    responses(
        (status = 200, body = CardView),
        (status = 400, body = ErrorBody),
        (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody),
        (status = 412, body = ErrorBody),
    ),
)]
#[put("/roles/{role}")]
async fn update_role(
    req: HttpRequest,
    state: web::Data<AdminState>,
    path: web::Path<String>,
    bytes: web::Bytes,
) -> ApiResult {
    let (caller, _) = caller(&req, &state).await?;
    let revision = if_match(&req)?;
    let change: RoleBody = body(&bytes)?;
    let role = state
        .admin
        .update_role(
            &caller,
            segment("role", path.into_inner())?.as_str(),
            revision,
            change.read.into_value(),
            change.catalog,
        )
        .await?;
    Ok(with_etag(StatusCode::OK, &role))
}

/// Deactivates a role; `If-Match` required. Platform admins only; never a built-in role (403).
#[utoipa::path(
    tag = "roles",
    params(("If-Match" = String, Header, description = "The role's revision (its ETag)")),
    responses(
        (status = 200, body = CardView),
        (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody),
        (status = 412, body = ErrorBody),
    ),
)]
#[delete("/roles/{role}")]
async fn deactivate_role(
    req: HttpRequest,
    state: web::Data<AdminState>,
    path: web::Path<String>,
) -> ApiResult {
    let (caller, _) = caller(&req, &state).await?;
    let revision = if_match(&req)?;
    let role = state
        .admin
        .deactivate_role(
            &caller,
            segment("role", path.into_inner())?.as_str(),
            revision,
        )
        .await?;
    Ok(with_etag(StatusCode::OK, &role))
}

#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
struct EventQuery {
    /// Only events about this card.
    target: Option<Uuid>,
    /// Only events by this user card.
    actor: Option<Uuid>,
    /// RFC 3339; only events at or after.
    #[serde(default, with = "time::serde::rfc3339::option")]
    #[param(value_type = Option<String>)]
    since: Option<OffsetDateTime>,
    /// RFC 3339; only events before (not at).
    #[serde(default, with = "time::serde::rfc3339::option")]
    #[param(value_type = Option<String>)]
    until: Option<OffsetDateTime>,
    /// At most this many (default 100, at most 1000).
    #[serde(default)]
    limit: Option<i64>,
}

/// The audit trail, newest first: only events of cards the caller can see (platform admins
/// see all).
#[utoipa::path(
    tag = "events",
    params(EventQuery),
    responses((status = 200, body = EventList), (status = 400, body = ErrorBody)),
)]
#[get("/events")]
async fn list_events(
    req: HttpRequest,
    state: web::Data<AdminState>,
    query: Query<EventQuery>,
) -> ApiResult {
    let (caller, _) = caller(&req, &state).await?;
    let query = query.into_inner();
    let limit = query.limit.unwrap_or(100).clamp(1, 1000);
    let visible = state
        .store
        .events(&EventFilter {
            target: query.target,
            actor: query.actor,
            since: query.since,
            until: query.until,
            limit,
            visible_to: (!caller.platform_admin).then(|| caller.markers()),
        })
        .await?;
    // Who acted and on what, by slug, in one query.
    let id_of = |event: &Card, field: &str| event.data[field].as_str()?.parse::<Uuid>().ok();
    let ids: Vec<Uuid> = visible
        .iter()
        .flat_map(|event| [id_of(event, "actor"), id_of(event, "target")])
        .flatten()
        .collect();
    let slugs = state.store.slugs_of(&ids).await?;
    let slug_of =
        |event: &Card, field: &str| id_of(event, field).and_then(|id| slugs.get(&id).cloned());
    Ok(HttpResponse::Ok().json(EventList {
        events: visible
            .iter()
            .map(|event| EventView {
                card: card_json(event),
                actor: slug_of(event, "actor"),
                target: slug_of(event, "target"),
            })
            .collect(),
    }))
}

/// An event: its card, with the slugs of its actor and its target.
#[derive(Serialize, ToSchema)]
struct EventView<'a> {
    #[serde(flatten)]
    card: CardView<'a>,
    actor: Option<String>,
    target: Option<String>,
}

/// Events, newest first.
#[derive(Serialize, ToSchema)]
struct EventList<'a> {
    events: Vec<EventView<'a>>,
}

#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
struct ExplainQuery {
    /// The account to explain for; empty or absent: an anonymous request.
    #[serde(default)]
    #[param(value_type = String)]
    account: Name,
    /// One scope, e.g. `repository:acme/web:pull,push`.
    scope: String,
}

/// Per requested action, granted or denied and why, decided exactly as for a token request
/// with that account's password. Platform admins for anything; an org's owners only for
/// their org's repositories.
#[utoipa::path(
    tag = "explain",
    params(ExplainQuery),
    responses(
        (status = 200, body = Object),
        (status = 400, body = ErrorBody),
        (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody),
    ),
)]
#[get("/explain")]
async fn explain_access(
    req: HttpRequest,
    state: web::Data<AdminState>,
    query: Query<ExplainQuery>,
) -> ApiResult {
    let (caller, _) = caller(&req, &state).await?;
    let scope: cardgate_token::Scope = query
        .scope
        .parse()
        .map_err(|e: cardgate_token::ScopeError| ApiError::BadRequest(format!("scope: {e}")))?;
    if !caller.platform_admin {
        let org = (scope.resource_type.as_str() == "repository")
            .then(|| {
                scope
                    .name
                    .as_str()
                    .split('/')
                    .next()
                    .map(|ns| format!("org-{ns}"))
            })
            .flatten();
        let owns = org.is_some_and(|org| caller.role_in(&org) == Some(MembershipRole::Owner));
        if !owns {
            return Err(ApiError::Admin(AdminError::Forbidden(format!(
                "{} may explain only repositories of orgs it owns",
                caller.card.slug
            ))));
        }
    }
    let identity = cardgate_authz::Identity::new(query.account.as_str().to_owned(), "cards");
    let explanation = state
        .authorizer
        .explain(&identity, &scope)
        .await
        .map_err(ApiError::Backend)?
        .ok_or_else(|| {
            ApiError::Admin(AdminError::NotFound(format!(
                "account `{}`",
                query.account.as_str()
            )))
        })?;
    let facts = match &explanation.subject {
        Subject::Repository(assessment) => json!(assessment),
        other => json!(other),
    };
    Ok(HttpResponse::Ok().json(json!({
        "actor": explanation.actor,
        "scope": scope.to_string(),
        "actions": explanation.verdicts(&scope),
        "facts": facts,
    })))
}

/// This document.
#[utoipa::path(tag = "session", security(()), responses((status = 200, body = Object)))]
#[get("/openapi.json")]
async fn openapi_json() -> HttpResponse {
    match &*DOCUMENT {
        Ok(document) => HttpResponse::Ok()
            .content_type("application/json")
            .body(document.clone()),
        Err(e) => {
            tracing::error!(error = %e, "the OpenAPI document cannot be serialised");
            HttpResponse::InternalServerError().json(ErrorBody {
                error: "server_error",
                error_description: "the server could not complete the request".into(),
            })
        }
    }
}

/// The admin scope: every handler above, each registered (and documented) once.
fn scope() -> utoipa_actix_web::scope::Scope<
    impl actix_web::dev::ServiceFactory<
        actix_web::dev::ServiceRequest,
        Config = (),
        Response = actix_web::dev::ServiceResponse,
        Error = actix_web::Error,
        InitError = (),
    >,
> {
    utoipa_actix_web::scope("/v1/admin")
        .service(log_in)
        .service(log_out)
        .service(who_am_i)
        .service(list_orgs)
        .service(create_org)
        .service(list_members)
        .service(add_member)
        .service(set_member_role)
        .service(remove_member)
        .service(list_robots)
        .service(create_robot)
        .service(list_images)
        .service(list_users)
        .service(create_user)
        .service(get_user)
        .service(set_roles)
        .service(deactivate_user)
        .service(set_password)
        .service(create_token)
        .service(list_sessions)
        .service(revoke_session)
        .service(create_image)
        .service(set_public)
        .service(deactivate_image)
        .service(list_grants)
        .service(add_grant)
        .service(revoke_grant)
        .service(list_roles)
        .service(create_role)
        .service(update_role)
        .service(deactivate_role)
        .service(list_events)
        .service(explain_access)
        .service(openapi_json)
}

#[derive(OpenApi)]
#[openapi(
    info(
        title = "cardgate admin API",
        description = "Policy changes on the card store: audited, in force for the next token request."
    ),
    security(("bearer" = [])),
    modifiers(&BearerAuth),
)]
struct AdminApi;

/// The `bearer` security scheme: a login session token `<id>.<secret>`.
struct BearerAuth;

impl utoipa::Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        openapi
            .components
            .get_or_insert_with(Default::default)
            .add_security_scheme(
                "bearer",
                SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
            );
    }
}

/// The admin API's OpenAPI document, generated from the handlers' annotations.
pub fn openapi() -> utoipa::openapi::OpenApi {
    let scope = scope();
    let mut api = AdminApi::openapi();
    api.paths.merge(scope.paths());
    let mut schemas = Vec::new();
    scope.schemas(&mut schemas);
    api.components
        .get_or_insert_with(Default::default)
        .schemas
        .extend(schemas);
    api
}

static DOCUMENT: LazyLock<Result<String, String>> =
    LazyLock::new(|| openapi().to_pretty_json().map_err(|e| e.to_string()));

/// Registers the admin routes under `/v1/admin`; malformed path segments (a session id) are
/// answered like malformed bodies.
pub fn configure(config: &mut web::ServiceConfig) {
    config.service(
        scope().app_data(
            web::PathConfig::default()
                .error_handler(|e, _| ApiError::BadRequest(format!("path: {e}")).into()),
        ),
    );
}
