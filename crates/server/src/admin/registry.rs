//! What the registry reported: an image's tags, the pull and push audit trail, org storage and
//! quotas.

use actix_web::{get, put};
use cardgate_admin::api::{ActivityQuery, QuotaBody, RepositoryQuery};

use super::extractors::{Caller, Json, Query, org_segment};
use super::{State, handler, ok};

handler! {
    /// The image's tags as the registry reported them (digest, size, media type, who pushed
    /// and when), whether it is only reserved (made for a push token, no push yet), when it
    /// was last pulled and its pulls in the last day. Members of its org.
    get "/images/contents", "images", params(RepositoryQuery) => 200: Object | 400 | 403 | 404;
    async fn image_contents(Query(query): Query<RepositoryQuery>, state: State, caller: Caller) {
        ok(state.admin.image_contents(&caller, &query.repository).await?)
    }
}

handler! {
    /// Pulls, pushes and deletes reported by the registry, newest first. Platform admins see
    /// all (repositories without an image included); owners their orgs' repositories.
    get "/registry/activity", "registry", params(ActivityQuery) => 200: Object | 400 | 403;
    async fn registry_activity(Query(query): Query<ActivityQuery>, state: State, caller: Caller) {
        let activity = state.admin.registry_activity(&caller, &query).await?;
        ok(serde_json::json!({ "activity": activity }))
    }
}

handler! {
    /// The org's storage quota, its usage and whether it is over. Members of the org.
    get "/orgs/{org}/storage", "orgs" => 200: Object | 400 | 403 | 404;
    async fn org_storage(path: actix_web::web::Path<String>, state: State, caller: Caller) {
        let org = org_segment(path.into_inner())?;
        ok(state.admin.storage(&caller, &org).await?)
    }
}

handler! {
    /// Sets the org's storage quota in bytes (`null`: none). Over it, push is refused on its
    /// repositories. Platform admins only.
    put "/orgs/{org}/quota", "orgs", body QuotaBody => 200: Object | 400 | 403 | 404;
    async fn set_quota(path: actix_web::web::Path<String>, state: State, caller: Caller, Json(body): Json<QuotaBody>) {
        let org = org_segment(path.into_inner())?;
        ok(state.admin.set_quota(&caller, &org, body.quota_bytes).await?)
    }
}
