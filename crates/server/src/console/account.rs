//! Logging in and out, and what every person may do with their own account: see their
//! memberships and what they reach, change their password, list and revoke their sessions,
//! tokens and refresh tokens, copy their `docker login` line.

use actix_web::http::StatusCode;
use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse, ResponseError, web};
use askama::Template;
use cardgate_admin::AdminError;
use cardgate_admin::api::Name;
use cardgate_authz::Credentials;
use cardgate_store::{MembershipRole, SessionKind};
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use uuid::Uuid;

use super::page::{Chrome, ConsoleError, Feedback, render, see_other, user_name, when};
use super::session::{LoginForm, Post, Viewer, states};

#[derive(Template)]
#[template(path = "console/login.html")]
struct LoginPage<'a> {
    username: &'a str,
    error: &'a str,
}

/// The login form.
pub async fn login_page() -> HttpResponse {
    render(
        StatusCode::OK,
        &LoginPage {
            username: "",
            error: "",
        },
    )
}

#[derive(Deserialize)]
pub struct Login {
    username: String,
    password: String,
}

/// Logs in with a password, throttled exactly as the admin API's login: a new login session
/// whose token becomes the session cookie.
pub async fn log_in(
    req: HttpRequest,
    LoginForm(login): LoginForm<Login>,
) -> Result<HttpResponse, ConsoleError> {
    let (state, console) = states(&req)?;
    let refused = |status: StatusCode, error: &str| {
        render(
            status,
            &LoginPage {
                username: &login.username,
                error,
            },
        )
    };
    let username = match Name::parse(login.username.as_str()) {
        Ok(username) => username,
        Err(e) => {
            state
                .throttle
                .malformed_login(&req, &login.username)
                .await
                .map_err(|locked| ConsoleError::TooManyLogins(locked.retry_after_seconds()))?;
            return Ok(refused(StatusCode::BAD_REQUEST, &format!("username: {e}")));
        }
    };
    let credentials = Credentials::Password {
        username: username.into_string(),
        password: SecretString::from(login.password.clone()),
    };
    let attempt = state
        .throttle
        .admit(&req, &credentials)
        .await
        .map_err(|locked| ConsoleError::TooManyLogins(locked.retry_after_seconds()))?;
    let session = match state.admin.log_in(&credentials).await {
        Ok(session) => session,
        Err(AdminError::BadLogin { wrong }) => {
            if wrong {
                attempt.failed().await;
            }
            return Ok(refused(
                StatusCode::UNAUTHORIZED,
                "invalid username or password",
            ));
        }
        Err(e) => return Err(e.into()),
    };
    Ok(HttpResponse::SeeOther()
        .insert_header((header::LOCATION, "/console/"))
        .insert_header((
            header::SET_COOKIE,
            console.session_cookie(session.session.token.expose_secret()),
        ))
        .finish())
}

#[derive(Deserialize)]
pub struct Empty {}

/// Logs out: the session card is revoked and the cookie removed.
pub async fn log_out(req: HttpRequest, post: Post<Empty>) -> Result<HttpResponse, ConsoleError> {
    let (state, console) = states(&req)?;
    state.admin.log_out(&post.viewer.caller).await?;
    Ok(HttpResponse::SeeOther()
        .insert_header((header::LOCATION, "/console/login"))
        .insert_header((header::SET_COOKIE, console.cleared_cookie()))
        .finish())
}

/// A membership and what it reaches.
pub struct MembershipRow {
    pub org: String,
    pub role: &'static str,
    pub reach: String,
}

/// What a membership role reaches in its org's repositories.
fn reach(org: &str, role: MembershipRole) -> String {
    match role {
        MembershipRole::Viewer => format!("pull on {org}/*"),
        MembershipRole::Developer => format!("pull and push on {org}/*"),
        MembershipRole::Maintainer => format!("pull, push and delete on {org}/*"),
        MembershipRole::Owner => format!("everything on {org}/*, and managing {org}"),
    }
}

/// A session, token or refresh token, without its secret.
pub struct SessionRow {
    pub id: Uuid,
    pub kind: &'static str,
    pub created: String,
    pub expires: String,
    pub scoped: bool,
    pub current: bool,
}

/// The sessions of a user as rows; `current` marks the viewer's own.
pub fn session_rows(cards: Vec<cardgate_store::Card>, current: Option<Uuid>) -> Vec<SessionRow> {
    cards
        .into_iter()
        .filter_map(|card| {
            let session = card.session().ok()?;
            Some(SessionRow {
                id: card.id,
                kind: match session.kind {
                    SessionKind::Login => "login session",
                    SessionKind::Token => "token",
                    SessionKind::Refresh => "refresh token",
                },
                created: when(card.created_at),
                expires: when(session.expiration),
                scoped: session.scope.is_some(),
                current: current == Some(card.id),
            })
        })
        .collect()
}

#[derive(Template)]
#[template(path = "console/home.html")]
struct HomePage {
    chrome: Chrome,
    feedback: Feedback,
    memberships: Vec<MembershipRow>,
    sessions: Vec<SessionRow>,
    docker_login: String,
}

async fn home_page(
    req: &HttpRequest,
    viewer: &Viewer,
    status: StatusCode,
    feedback: Feedback,
) -> Result<HttpResponse, ConsoleError> {
    let (state, console) = states(req)?;
    let caller = &viewer.caller;
    let mut memberships: Vec<MembershipRow> = caller
        .memberships()
        .iter()
        .map(|m| {
            let org = super::page::org_name(&m.org_slug).to_owned();
            MembershipRow {
                reach: reach(&org, m.role),
                role: m.role.as_str(),
                org,
            }
        })
        .collect();
    memberships.sort_by(|a, b| a.org.cmp(&b.org));
    let sessions = state.admin.sessions(caller, &caller.card.slug).await?;
    Ok(render(
        status,
        &HomePage {
            chrome: Chrome::of(viewer),
            feedback,
            memberships,
            sessions: session_rows(sessions, caller.session()),
            docker_login: format!(
                "docker login {} -u {}",
                console.registry,
                user_name(&caller.card.slug)
            ),
        },
    ))
}

#[derive(Deserialize)]
pub struct Notice {
    #[serde(default)]
    done: Option<String>,
}

/// The viewer's own page.
pub async fn home(
    req: HttpRequest,
    viewer: Viewer,
    query: web::Query<Notice>,
) -> Result<HttpResponse, ConsoleError> {
    let feedback = match query.done.as_deref() {
        Some("revoked") => Feedback::notice("Revoked."),
        _ => Feedback::none(),
    };
    home_page(&req, &viewer, StatusCode::OK, feedback).await
}

#[derive(Deserialize)]
pub struct NewPassword {
    password: String,
    confirm: String,
}

/// Changes the viewer's own password; that ends its login sessions, this one too.
pub async fn change_password(
    req: HttpRequest,
    post: Post<NewPassword>,
) -> Result<HttpResponse, ConsoleError> {
    let (state, console) = states(&req)?;
    let viewer = &post.viewer;
    let result = if post.form.password == post.form.confirm {
        state
            .admin
            .change_password(
                &viewer.caller,
                &viewer.caller.card.slug,
                SecretString::from(post.form.password.clone()),
            )
            .await
            .map_err(ConsoleError::from)
    } else {
        Err(ConsoleError::BadRequest(
            "confirm: the two passwords differ".into(),
        ))
    };
    match result {
        Ok(()) => Ok(HttpResponse::SeeOther()
            .insert_header((header::LOCATION, "/console/login"))
            .insert_header((header::SET_COOKIE, console.cleared_cookie()))
            .finish()),
        Err(e) => {
            let feedback = Feedback::error("password", &["password", "confirm"], &e);
            home_page(&req, viewer, e.status_code(), feedback).await
        }
    }
}

/// Revokes one of the viewer's own sessions, tokens or refresh tokens.
pub async fn revoke_session(
    req: HttpRequest,
    path: web::Path<Uuid>,
    post: Post<Empty>,
) -> Result<HttpResponse, ConsoleError> {
    let (state, _) = states(&req)?;
    let id = path.into_inner();
    let caller = &post.viewer.caller;
    // Only the viewer's own: another user's session is refused like an absent one.
    let own = state
        .admin
        .sessions(caller, &caller.card.slug)
        .await?
        .iter()
        .any(|s| s.id == id);
    if !own {
        return Err(AdminError::NotFound(format!("session {id}")).into());
    }
    state.admin.revoke_session(caller, id).await?;
    if caller.session() == Some(id) {
        return Ok(see_other("/console/login"));
    }
    Ok(see_other("/console/?done=revoked"))
}
