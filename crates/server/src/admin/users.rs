//! Users: people and robots, their platform roles and passwords.

use actix_web::web::Path;
use actix_web::{delete, get, post, put};
use cardgate_admin::api::{CardList, CardView, NewPassword, NewUser, PageQuery, Roles};
use secrecy::SecretString;

use super::extractors::{Caller, Json, Revision, user_segment};
use super::{State, created, done, handler, updated};

handler! {
    /// All users. Platform admins only.
    get "/users", "users", pages => 403; list_users: users
}

handler! {
    /// Creates a user, with the roles `["user-default"]` unless others are named. Platform
    /// admins only.
    post "/users", "users", body NewUser => 201: CardView | 400 | 403 | 409;
    async fn create_user(state: State, caller: Caller, Json(new): Json<NewUser>) {
        created(state.admin.create_user(&caller, &new.name, new.roles.as_deref()).await?)
    }
}

handler! {
    /// A user, with its revision as the `ETag`: the user itself, platform admins, owners of a
    /// robot's org.
    get "/users/{user}", "users" => 200: CardView | 403 | 404;
    async fn get_user(path: Path<String>, state: State, caller: Caller) {
        let user = user_segment(path.into_inner())?;
        updated(state.admin.user(&caller, &user).await?)
    }
}

handler! {
    /// Replaces a user's platform roles; `If-Match: "<revision>"` required. Platform admins only;
    /// the built-in users' roles never change (403).
    put "/users/{user}/roles", "users", body Roles,
        params(("If-Match" = String, Header, description = "The user's revision (its ETag)"))
        => 200: CardView | 400 | 403 | 412;
    async fn set_roles(path: Path<String>, state: State, caller: Caller, Revision(revision): Revision, Json(new): Json<Roles>) {
        let user = user_segment(path.into_inner())?;
        updated(state.admin.set_roles(&caller, &user, revision, &new.roles).await?)
    }
}

handler! {
    /// Sets a password, stored as an argon2id hash; the event records the change, never the
    /// secret. The user itself, platform admins, owners of a robot's org; never `user-admin`
    /// (set on the host with `cardgate set-password admin`) or `user-guest` (403).
    put "/users/{user}/password", "users", body NewPassword => 204 | 400 | 403 | 404;
    async fn set_password(path: Path<String>, state: State, caller: Caller, Json(new): Json<NewPassword>) {
        let user = user_segment(path.into_inner())?;
        let password = SecretString::from(new.password);
        state.admin.change_password(&caller, &user, password).await?;
        done()
    }
}

handler! {
    /// Deactivates a user: platform admins, owners of a robot's org; never a built-in user (403).
    delete "/users/{user}", "users" => 200: CardView | 403 | 404;
    async fn deactivate_user(path: Path<String>, state: State, caller: Caller) {
        let user = user_segment(path.into_inner())?;
        updated(state.admin.deactivate_user(&caller, &user).await?)
    }
}
