//! Explicit grants of actions on a repository to a user or an org.

use actix_web::{delete, get, post};
use cardgate_admin::api::{GrantBody, GrantList, GrantQuery, RepositoryQuery};

use super::extractors::{Caller, Json, Query};
use super::{State, done, handler, ok};

handler! {
    /// The explicit grants on a repository. Owners of its org.
    get "/grants", "grants", params(RepositoryQuery) => 200: GrantList | 403 | 404;
    async fn list_grants(Query(query): Query<RepositoryQuery>, state: State, caller: Caller) {
        ok(GrantList::from(state.admin.grants(&caller, &query.repository).await?))
    }
}

handler! {
    /// Grants a user or org actions on a repository. Owners of its org.
    post "/grants", "grants", body GrantBody => 204 | 400 | 403 | 404 | 409;
    async fn add_grant(state: State, caller: Caller, Json(grant): Json<GrantBody>) {
        let (holder, repository) = (grant.holder.as_str(), &grant.repository);
        state.admin.grant(&caller, holder, repository, &grant.actions).await?;
        done()
    }
}

handler! {
    /// Revokes a grant. Owners of the repository's org.
    delete "/grants", "grants", params(GrantQuery) => 204 | 403 | 404;
    async fn revoke_grant(Query(query): Query<GrantQuery>, state: State, caller: Caller) {
        state.admin.revoke(&caller, query.holder.as_str(), &query.repository).await?;
        done()
    }
}
