//! Why an account is granted or denied the actions of a scope.

use actix_web::get;
use cardgate_admin::api::{ExplainAnswer, ExplainQuery};
use cardgate_token::{Scope, ScopeError};

use super::error::ApiError;
use super::extractors::{Caller, Query};
use super::{State, handler, ok};

handler! {
    /// Per requested action, granted or denied and why, decided exactly as for a token request
    /// with that account's password. Platform admins for anything; an org's owners only for
    /// their org's repositories.
    get "/explain", "explain", params(ExplainQuery) => 200: Object | 400 | 403 | 404;
    async fn explain_access(Query(query): Query<ExplainQuery>, state: State, caller: Caller) {
        let scope: Scope = query
            .scope
            .parse()
            .map_err(|e: ScopeError| ApiError::BadRequest(format!("scope: {e}")))?;
        let account = query.account.as_str();
        let explanation = state.admin.explain(&caller, account, &scope).await?;
        ok(ExplainAnswer::new(&explanation, &scope))
    }
}
