//! The members of an org and their roles.

use actix_web::web::Path;
use actix_web::{delete, get, post, put};
use cardgate_admin::api::{MemberList, NewMember, RoleChange};

use super::error::ApiError;
use super::extractors::{Caller, Json, org_segment, user_segment};
use super::{State, done, handler, ok};

handler! {
    /// The members of an org and their roles. Members of the org.
    get "/orgs/{org}/members", "orgs" => 200: MemberList | 403 | 404;
    async fn list_members(path: Path<String>, state: State, caller: Caller) {
        let org = org_segment(path.into_inner())?;
        ok(MemberList::from(state.admin.members(&caller, &org).await?))
    }
}

handler! {
    /// Adds a member with a role. Owners of the org, never above their own role.
    post "/orgs/{org}/members", "orgs", body NewMember => 204 | 400 | 403 | 404 | 409;
    async fn add_member(path: Path<String>, state: State, caller: Caller, Json(new): Json<NewMember>) {
        let org = org_segment(path.into_inner())?;
        let user = cardgate_authz_cards::user_slug(new.user.as_str());
        state.admin.add_member(&caller, &org, &user, new.role).await?;
        done()
    }
}

handler! {
    /// Changes a member's role. Owners of the org, never above their own role.
    put "/orgs/{org}/members/{user}", "orgs", body RoleChange => 204 | 400 | 403 | 404;
    async fn set_member_role(path: Path<(String, String)>, state: State, caller: Caller, Json(change): Json<RoleChange>) {
        let (org, user) = member_path(path)?;
        state.admin.set_member_role(&caller, &org, &user, change.role).await?;
        done()
    }
}

handler! {
    /// Removes a member. Owners of the org.
    delete "/orgs/{org}/members/{user}", "orgs" => 204 | 403 | 404;
    async fn remove_member(path: Path<(String, String)>, state: State, caller: Caller) {
        let (org, user) = member_path(path)?;
        state.admin.remove_member(&caller, &org, &user).await?;
        done()
    }
}

/// The org and the user slugs of `/orgs/{org}/members/{user}`.
fn member_path(path: Path<(String, String)>) -> Result<(String, String), ApiError> {
    let (org, user) = path.into_inner();
    Ok((org_segment(org)?, user_segment(user)?))
}
