//! The audit trail.

use actix_web::get;
use cardgate_admin::api::{EventList, EventQuery};

use super::extractors::{Caller, Query};
use super::{State, handler, ok};

handler! {
    /// The audit trail, newest first: only events of cards the caller can see (platform admins
    /// see all).
    get "/events", "events", params(EventQuery) => 200: EventList | 400;
    async fn list_events(Query(query): Query<EventQuery>, state: State, caller: Caller) {
        ok(EventList::from(state.admin.events(&caller, &query).await?))
    }
}
