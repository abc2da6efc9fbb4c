//! Sessions, CI tokens and refresh tokens.

use actix_web::HttpResponse;
use actix_web::http::header;
use actix_web::web::Path;
use actix_web::{delete, get, post};
use cardgate_admin::api::{NewToken, SessionList, SessionToken};
use secrecy::ExposeSecret;
use uuid::Uuid;

use super::extractors::{Caller, JsonOrDefault, user_segment};
use super::{State, done, handler, ok};

handler! {
    /// Opens a token (for CI robots): the secret is shown once, only its hash is kept. The user
    /// itself, platform admins, owners of a robot's org; at most `admin.tokens_per_hour` by
    /// one account in any hour (then `429` with `Retry-After`).
    post "/users/{user}/tokens", "users", body NewToken => 201: SessionToken | 400 | 403 | 404 | 429;
    async fn create_token(path: Path<String>, state: State, caller: Caller, JsonOrDefault(new): JsonOrDefault<NewToken>) {
        let user = user_segment(path.into_inner())?;
        let scope = new.scope.map(|scope| scope.into_value());
        let issued = state.admin.open_token(&caller, &user, new.expires_in_seconds, scope).await?;
        Ok(HttpResponse::Created()
            .insert_header((header::CACHE_CONTROL, "no-store"))
            .json(SessionToken {
                id: issued.card.id,
                token: issued.token.expose_secret().to_owned(),
                expires_at: issued.card.data["expiration"].clone(),
            }))
    }
}

handler! {
    /// Sessions, tokens and refresh tokens of a user, without secrets.
    get "/users/{user}/sessions", "sessions" => 200: SessionList | 403 | 404;
    async fn list_sessions(path: Path<String>, state: State, caller: Caller) {
        let sessions = state.admin.sessions(&caller, &user_segment(path.into_inner())?).await?;
        ok(SessionList::from(sessions))
    }
}

handler! {
    /// Revokes a session, token or refresh token at once.
    delete "/sessions/{id}", "sessions" => 204 | 403 | 404;
    async fn revoke_session(path: Path<Uuid>, state: State, caller: Caller) {
        state.admin.revoke_session(&caller, path.into_inner()).await?;
        done()
    }
}
