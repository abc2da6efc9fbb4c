//! The admin API under `/v1/admin/`: log in and out, and change policy through
//! `cardgate-admin`, which decides who may change what and records every change with its
//! event. Served only when the card store is configured.

use std::sync::Arc;
use std::time::Duration;

use actix_web::http::StatusCode;
use actix_web::http::header::{self, HeaderValue};
use actix_web::{HttpRequest, HttpResponse, ResponseError, web};
use cardgate_admin::{Admin, AdminError, Caller};
use cardgate_authz::{Authentication, Authenticator, Credentials, PluginError};
use cardgate_authz_cards::{CardAuthenticator, CardAuthorizer, Subject};
use cardgate_store::{Card, EventFilter, MembershipRole, Store, StoreError, markers_allow};
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use serde_json::{Value, json};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;
use uuid::Uuid;

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
        response.json(json!({"error": self.code(), "error_description": description}))
    }
}

type ApiResult = Result<HttpResponse, ApiError>;

/// A JSON body; malformed ones are 400 naming the problem.
fn body<T: serde::de::DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    serde_json::from_slice(bytes).map_err(|e| ApiError::BadRequest(format!("body: {e}")))
}

/// The caller behind `Authorization: Bearer <session id>.<secret>`, and the session id.
async fn caller(req: &HttpRequest, state: &AdminState) -> Result<(Caller, Uuid), ApiError> {
    let token = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            let (scheme, token) = v.split_once(' ')?;
            scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
        })
        .ok_or(ApiError::Unauthorized)?;
    let session_id = token
        .split_once('.')
        .and_then(|(id, _)| Uuid::parse_str(id).ok())
        .ok_or(ApiError::Unauthorized)?;
    let actor = state
        .store
        .card_by_id(session_id)
        .await?
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

fn card_json(card: &Card) -> Value {
    json!({
        "id": card.id,
        "slug": card.slug,
        "type": card.card_type,
        "name": card.name,
        "markers": card.markers,
        "data": card.data,
        "active": card.active,
        "revision": card.revision,
    })
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

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Login {
    username: String,
    password: String,
}

/// `POST /v1/admin/login` `{username, password}` → a session token for `Bearer`.
async fn login(req: HttpRequest, state: web::Data<AdminState>, bytes: web::Bytes) -> ApiResult {
    let login: Login = body(&bytes)?;
    let credentials = Credentials::Password {
        username: login.username,
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
            attempt.failed();
            return Err(ApiError::BadLogin);
        }
    };
    let user = state
        .store
        .card_by_slug(&cardgate_authz_cards::user_slug(&identity.account))
        .await?
        .ok_or(ApiError::BadLogin)?;
    let expiration = OffsetDateTime::now_utc()
        + time::Duration::seconds(
            i64::try_from(state.session_lifetime.as_secs()).unwrap_or(i64::MAX),
        );
    let session = state
        .store
        .create_session(&user, &user, expiration, None)
        .await?;
    Ok(HttpResponse::Ok()
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .json(json!({
            "token": session.token.expose_secret(),
            "user": user.slug,
            "expires_at": expiration.format(&Rfc3339).unwrap_or_default(),
        })))
}

/// `POST /v1/admin/logout`: deactivates the caller's session.
async fn logout(req: HttpRequest, state: web::Data<AdminState>) -> ApiResult {
    let (caller, session) = caller(&req, &state).await?;
    state.store.deactivate(&caller.card, session, None).await?;
    Ok(HttpResponse::NoContent().finish())
}

/// `GET /v1/admin/whoami`.
async fn whoami(req: HttpRequest, state: web::Data<AdminState>) -> ApiResult {
    let (caller, _) = caller(&req, &state).await?;
    let memberships = state.store.memberships(caller.card.id).await?;
    Ok(HttpResponse::Ok().json(json!({
        "user": caller.card.slug,
        "platform_admin": caller.platform_admin,
        "memberships": memberships
            .iter()
            .map(|m| json!({"org": m.org_slug, "role": m.role}))
            .collect::<Vec<_>>(),
    })))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NewOrg {
    name: String,
}

/// `POST /v1/admin/orgs` `{name}`.
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

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NewUser {
    name: String,
    #[serde(default)]
    roles: Vec<String>,
}

/// `POST /v1/admin/users` `{name, roles}`.
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

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NewPassword {
    password: String,
}

/// `PUT /v1/admin/users/{user}/password` `{password}`: stored as an argon2id hash; the event
/// records the change, never the secret.
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
    let hash = cardgate_authz_static::hash_password(&SecretString::from(new.password))
        .map_err(|e| ApiError::BadRequest(format!("password: {e}")))?;
    let user = cardgate_authz_cards::user_slug(&path.into_inner());
    state.admin.set_password(&caller, &user, &hash).await?;
    Ok(HttpResponse::NoContent().finish())
}

/// `DELETE /v1/admin/users/{user}`: deactivates the user.
async fn deactivate_user(
    req: HttpRequest,
    state: web::Data<AdminState>,
    path: web::Path<String>,
) -> ApiResult {
    let (caller, _) = caller(&req, &state).await?;
    let user = cardgate_authz_cards::user_slug(&path.into_inner());
    let card = state.admin.deactivate_user(&caller, &user).await?;
    Ok(with_etag(StatusCode::OK, &card))
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct NewToken {
    /// Lifetime in seconds (default one year).
    #[serde(default)]
    expires_in_seconds: Option<u64>,
    /// A JSON Schema the cards the token reaches must satisfy.
    #[serde(default)]
    scope: Option<Value>,
}

/// Longest token lifetime: ten years.
const MAX_TOKEN_SECONDS: u64 = 10 * 365 * 24 * 3600;

/// `POST /v1/admin/users/{user}/tokens` `{expires_in_seconds?, scope?}`: a token for CI (the
/// secret is shown once, only its hash is kept).
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
    let user = cardgate_authz_cards::user_slug(&path.into_inner());
    let issued = state
        .admin
        .create_token(&caller, &user, expiration, new.scope)
        .await?;
    Ok(HttpResponse::Created()
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .json(json!({
            "id": issued.card.id,
            "token": issued.token.expose_secret(),
            "expires_at": issued.card.data["expiration"],
        })))
}

/// A session as listed: never its secret's hash.
fn session_json(card: &Card) -> Value {
    json!({
        "id": card.id,
        "kind": card.data["kind"].as_str().unwrap_or("session"),
        "client_id": card.data["client_id"],
        "service": card.data["service"],
        "expires_at": card.data["expiration"],
        "scoped": card.data.get("scope").is_some(),
        "created_at": card.created_at.format(&Rfc3339).unwrap_or_default(),
    })
}

/// `GET /v1/admin/users/{user}/sessions`: sessions, tokens and refresh tokens, without secrets.
async fn sessions(
    req: HttpRequest,
    state: web::Data<AdminState>,
    path: web::Path<String>,
) -> ApiResult {
    let (caller, _) = caller(&req, &state).await?;
    let user = cardgate_authz_cards::user_slug(&path.into_inner());
    let sessions = state.admin.sessions(&caller, &user).await?;
    Ok(HttpResponse::Ok().json(json!({
        "sessions": sessions.iter().map(session_json).collect::<Vec<_>>(),
    })))
}

/// `DELETE /v1/admin/sessions/{id}`: revokes a session, token or refresh token at once.
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

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NewMember {
    user: String,
    role: MembershipRole,
}

/// `POST /v1/admin/orgs/{org}/members` `{user, role}`.
async fn add_member(
    req: HttpRequest,
    state: web::Data<AdminState>,
    path: web::Path<String>,
    bytes: web::Bytes,
) -> ApiResult {
    let (caller, _) = caller(&req, &state).await?;
    let new: NewMember = body(&bytes)?;
    let org = format!("org-{}", path.into_inner());
    let user = cardgate_authz_cards::user_slug(&new.user);
    state
        .admin
        .add_member(&caller, &org, &user, new.role)
        .await?;
    Ok(HttpResponse::NoContent().finish())
}

/// `DELETE /v1/admin/orgs/{org}/members/{user}`.
async fn remove_member(
    req: HttpRequest,
    state: web::Data<AdminState>,
    path: web::Path<(String, String)>,
) -> ApiResult {
    let (caller, _) = caller(&req, &state).await?;
    let (org, user) = path.into_inner();
    let user = cardgate_authz_cards::user_slug(&user);
    state
        .admin
        .remove_member(&caller, &format!("org-{org}"), &user)
        .await?;
    Ok(HttpResponse::NoContent().finish())
}

/// `POST /v1/admin/orgs/{org}/robots` `{name}`: a robot user for CI in the org.
async fn create_robot(
    req: HttpRequest,
    state: web::Data<AdminState>,
    path: web::Path<String>,
    bytes: web::Bytes,
) -> ApiResult {
    let (caller, _) = caller(&req, &state).await?;
    let new: NewOrg = body(&bytes)?;
    let org = format!("org-{}", path.into_inner());
    let robot = state.admin.create_robot(&caller, &org, &new.name).await?;
    Ok(with_etag(StatusCode::CREATED, &robot))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NewImage {
    repository: String,
    #[serde(default)]
    public: bool,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RepositoryQuery {
    repository: String,
}

/// `POST /v1/admin/images` `{repository, public}`.
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

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ImageChange {
    repository: String,
    public: bool,
}

/// `PATCH /v1/admin/images` `{repository, public}` with `If-Match: "<revision>"`.
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

/// `DELETE /v1/admin/images?repository=...` with `If-Match`.
async fn deactivate_image(
    req: HttpRequest,
    state: web::Data<AdminState>,
    query: web::Query<RepositoryQuery>,
) -> ApiResult {
    let (caller, _) = caller(&req, &state).await?;
    let revision = if_match(&req)?;
    let image = state
        .admin
        .deactivate_image(&caller, &query.repository, revision)
        .await?;
    Ok(with_etag(StatusCode::OK, &image))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct GrantBody {
    holder: String,
    repository: String,
    actions: Vec<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct GrantQuery {
    holder: String,
    repository: String,
}

/// `POST /v1/admin/grants` `{holder, repository, actions}`: holder is a user or org slug.
async fn grant(req: HttpRequest, state: web::Data<AdminState>, bytes: web::Bytes) -> ApiResult {
    let (caller, _) = caller(&req, &state).await?;
    let grant: GrantBody = body(&bytes)?;
    state
        .admin
        .grant(&caller, &grant.holder, &grant.repository, &grant.actions)
        .await?;
    Ok(HttpResponse::NoContent().finish())
}

/// `DELETE /v1/admin/grants?holder=...&repository=...`.
async fn revoke(
    req: HttpRequest,
    state: web::Data<AdminState>,
    query: web::Query<GrantQuery>,
) -> ApiResult {
    let (caller, _) = caller(&req, &state).await?;
    state
        .admin
        .revoke(&caller, &query.holder, &query.repository)
        .await?;
    Ok(HttpResponse::NoContent().finish())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct EventQuery {
    target: Option<Uuid>,
    actor: Option<Uuid>,
    #[serde(default, with = "time::serde::rfc3339::option")]
    since: Option<OffsetDateTime>,
    #[serde(default, with = "time::serde::rfc3339::option")]
    until: Option<OffsetDateTime>,
    #[serde(default)]
    limit: Option<i64>,
}

/// `GET /v1/admin/events?target=&actor=&since=&until=&limit=`: newest first, only events of
/// cards the caller can see (platform admins see all).
async fn events(
    req: HttpRequest,
    state: web::Data<AdminState>,
    query: web::Query<EventQuery>,
) -> ApiResult {
    let (caller, _) = caller(&req, &state).await?;
    let query = query.into_inner();
    let limit = query.limit.unwrap_or(100).clamp(1, 1000);
    let events = state
        .store
        .events(&EventFilter {
            target: query.target,
            actor: query.actor,
            since: query.since,
            until: query.until,
            limit,
        })
        .await?;
    let mut markers = vec![caller.card.slug.clone()];
    markers.extend(
        state
            .store
            .memberships(caller.card.id)
            .await?
            .into_iter()
            .map(|m| m.org_slug),
    );
    let visible: Vec<Value> = events
        .iter()
        .filter(|e| caller.platform_admin || markers_allow(&e.markers, &markers))
        .map(card_json)
        .collect();
    Ok(HttpResponse::Ok().json(json!({"events": visible})))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ExplainQuery {
    /// The account to explain for; empty or absent: an anonymous request.
    #[serde(default)]
    account: String,
    scope: String,
}

/// `GET /v1/admin/explain?account=&scope=`: per requested action, granted or denied and why,
/// decided exactly as for a token request with that account's password. Platform admins for
/// anything; an org's owners only for their org's repositories.
async fn explain(
    req: HttpRequest,
    state: web::Data<AdminState>,
    query: web::Query<ExplainQuery>,
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
    let identity = cardgate_authz::Identity::new(query.account.clone(), "cards");
    let explanation = state
        .authorizer
        .explain(&identity, &scope)
        .await
        .map_err(ApiError::Backend)?
        .ok_or_else(|| {
            ApiError::Admin(AdminError::NotFound(format!("account `{}`", query.account)))
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

/// Registers the admin routes under `/v1/admin`.
pub fn configure(config: &mut web::ServiceConfig) {
    config.service(
        web::scope("/v1/admin")
            .route("/login", web::post().to(login))
            .route("/logout", web::post().to(logout))
            .route("/whoami", web::get().to(whoami))
            .route("/orgs", web::post().to(create_org))
            .route("/orgs/{org}/members", web::post().to(add_member))
            .route(
                "/orgs/{org}/members/{user}",
                web::delete().to(remove_member),
            )
            .route("/orgs/{org}/robots", web::post().to(create_robot))
            .route("/users", web::post().to(create_user))
            .route("/users/{user}", web::delete().to(deactivate_user))
            .route("/users/{user}/password", web::put().to(set_password))
            .route("/users/{user}/tokens", web::post().to(create_token))
            .route("/users/{user}/sessions", web::get().to(sessions))
            .route("/sessions/{id}", web::delete().to(revoke_session))
            .route("/images", web::post().to(create_image))
            .route("/images", web::patch().to(set_public))
            .route("/images", web::delete().to(deactivate_image))
            .route("/grants", web::post().to(grant))
            .route("/grants", web::delete().to(revoke))
            .route("/events", web::get().to(events))
            .route("/explain", web::get().to(explain)),
    );
}
