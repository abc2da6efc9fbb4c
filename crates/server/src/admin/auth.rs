//! Logging in and out, and who the caller is.

use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse, get, post};
use cardgate_admin::AdminError;
use cardgate_admin::api::{ErrorBody, Login, LoginAnswer, Name, WhoAmI};
use cardgate_authz::Credentials;
use secrecy::{ExposeSecret, SecretString};
use time::format_description::well_known::Rfc3339;

use super::error::{ApiError, ApiResult};
use super::extractors::{Caller, Json};
use super::{State, done, handler, ok};

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
pub(super) async fn log_in(req: HttpRequest, state: State, Json(login): Json<Login>) -> ApiResult {
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
    let login = match state.admin.log_in(&credentials).await {
        Err(AdminError::BadLogin { wrong: true }) => {
            attempt.failed().await;
            return Err(ApiError::BadLogin);
        }
        result => result?,
    };
    Ok(HttpResponse::Ok()
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .json(LoginAnswer {
            token: login.session.token.expose_secret().to_owned(),
            user: login.user.slug,
            expires_at: login.expires.format(&Rfc3339).unwrap_or_default(),
        }))
}

handler! {
    /// Logs out: deactivates the caller's session.
    post "/logout", "session" => 204 | 401;
    async fn log_out(state: State, caller: Caller) {
        state.admin.log_out(&caller).await?;
        done()
    }
}

handler! {
    /// The caller: its user, whether it is a platform admin, its memberships.
    get "/whoami", "session" => 200: WhoAmI | 401;
    async fn who_am_i(caller: Caller) {
        ok(WhoAmI::from(&*caller))
    }
}
