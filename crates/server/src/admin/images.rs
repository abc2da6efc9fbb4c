//! Images: the repositories of an org, public or not.

use actix_web::web::Path;
use actix_web::{HttpRequest, delete, get, patch, post};
use cardgate_admin::api::{
    CardList, CardView, ImageChange, ImageQuery, Name, NewImage, RepositoryQuery,
};

use super::extractors::{Caller, Json, Query, Revision, org_segment};
use super::{State, created, handler, listing, updated};

handler! {
    /// The images of an org, a page at a time (by slug, `next` the cursor of the next page),
    /// only those whose name starts with `q` when given. Members of the org.
    get "/orgs/{org}/images", "images", params(ImageQuery) => 200: CardList | 400 | 403 | 404;
    async fn list_images(request: HttpRequest, path: Path<String>, Query(query): Query<ImageQuery>, state: State, caller: Caller) {
        let org = org_segment(path.into_inner())?;
        let page = query.page();
        let name = query.q.as_ref().map(Name::as_str);
        let cards = state.admin.images(&caller, &org, &page, name).await?;
        listing(&request, CardList::page(cards, &page), |after| ImageQuery {
            after: Some(after),
            ..query
        })
    }
}

handler! {
    /// Creates the image of a repository. Owners of its org.
    post "/images", "images", body NewImage => 201: CardView | 400 | 403 | 409;
    async fn create_image(state: State, caller: Caller, Json(new): Json<NewImage>) {
        created(state.admin.create_image(&caller, &new.repository, new.public).await?)
    }
}

handler! {
    /// Opens an image to the public or closes it; `If-Match: "<revision>"` required. Owners of
    /// its org.
    patch "/images", "images", body ImageChange,
        params(("If-Match" = String, Header, description = "The image's revision (its ETag)"))
        => 200: CardView | 400 | 403 | 404 | 412;
    async fn set_public(state: State, caller: Caller, Revision(revision): Revision, Json(change): Json<ImageChange>) {
        let (repository, public) = (&change.repository, change.public);
        updated(state.admin.set_public(&caller, repository, revision, public).await?)
    }
}

handler! {
    /// Deactivates an image; `If-Match` required. Its name is never recreated by a push. Owners
    /// of its org.
    delete "/images", "images",
        params(RepositoryQuery, ("If-Match" = String, Header, description = "The image's revision (its ETag)"))
        => 200: CardView | 403 | 404 | 412;
    async fn deactivate_image(Query(query): Query<RepositoryQuery>, state: State, caller: Caller, Revision(revision): Revision) {
        updated(state.admin.deactivate_image(&caller, &query.repository, revision).await?)
    }
}
