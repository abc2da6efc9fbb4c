//! The robot users of an org, for CI.

use actix_web::web::Path;
use actix_web::{get, post};
use cardgate_admin::api::{CardList, CardView, NewRobot, PageQuery};

use super::extractors::{Caller, Json, org_segment};
use super::{State, created, handler};

handler! {
    /// The robots of an org. Owners of the org.
    get "/orgs/{org}/robots", "orgs", pages => 403 | 404; list_robots: org: robots
}

handler! {
    /// Creates a robot user for CI in the org: it reaches only what it is granted. Owners of
    /// the org.
    post "/orgs/{org}/robots", "orgs", body NewRobot => 201: CardView | 400 | 403 | 409;
    async fn create_robot(path: Path<String>, state: State, caller: Caller, Json(new): Json<NewRobot>) {
        let org = org_segment(path.into_inner())?;
        created(state.admin.create_robot(&caller, &org, &new.name).await?)
    }
}
