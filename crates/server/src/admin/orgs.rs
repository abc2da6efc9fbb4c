//! Orgs.

use actix_web::{get, post};
use cardgate_admin::api::{CardList, CardView, NewOrg, PageQuery};

use super::extractors::{Caller, Json};
use super::{State, created, handler};

handler! {
    /// The orgs the caller may look inside: all for platform admins, else its own.
    get "/orgs", "orgs", pages => 401; list_orgs: orgs
}

handler! {
    /// Creates an org. Platform admins only.
    post "/orgs", "orgs", body NewOrg => 201: CardView | 400 | 403 | 409;
    async fn create_org(state: State, caller: Caller, Json(new): Json<NewOrg>) {
        created(state.admin.create_org(&caller, &new.name).await?)
    }
}
