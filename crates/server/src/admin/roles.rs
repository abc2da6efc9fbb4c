//! Role cards: what their holders may read, and whether they may list the catalog.

use actix_web::web::Path;
use actix_web::{delete, get, post, put};
use cardgate_admin::api::{CardList, CardView, NewRole, PageQuery, RoleBody};

use super::extractors::{Caller, Json, Revision, segment};
use super::{State, created, handler, updated};

handler! {
    /// All role cards. Platform admins only.
    get "/roles", "roles", pages => 403; list_roles: roles
}

handler! {
    /// Creates the role card `role-<name>`. Platform admins only.
    post "/roles", "roles", body NewRole => 201: CardView | 400 | 403 | 409;
    async fn create_role(state: State, caller: Caller, Json(new): Json<NewRole>) {
        let (name, read) = (&new.name, new.read.into_value());
        created(state.admin.create_role(&caller, name, read, new.catalog).await?)
    }
}

handler! {
    /// Replaces a role's read schema and catalog flag; `If-Match` required. Platform admins only;
    /// never a built-in role (403).
    put "/roles/{role}", "roles", body RoleBody,
        params(("If-Match" = String, Header, description = "The role's revision (its ETag)"))
        => 200: CardView | 400 | 403 | 404 | 412;
    async fn update_role(path: Path<String>, state: State, caller: Caller, Revision(revision): Revision, Json(change): Json<RoleBody>) {
        let role = segment("role", path.into_inner())?;
        let (read, catalog) = (change.read.into_value(), change.catalog);
        updated(state.admin.update_role(&caller, role.as_str(), revision, read, catalog).await?)
    }
}

handler! {
    /// Deactivates a role; `If-Match` required. Platform admins only; never a built-in role (403).
    delete "/roles/{role}", "roles",
        params(("If-Match" = String, Header, description = "The role's revision (its ETag)"))
        => 200: CardView | 403 | 404 | 412;
    async fn deactivate_role(path: Path<String>, state: State, caller: Caller, Revision(revision): Revision) {
        let role = segment("role", path.into_inner())?;
        updated(state.admin.deactivate_role(&caller, role.as_str(), revision).await?)
    }
}
