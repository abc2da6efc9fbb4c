//! Images: the repositories of an org, public or not.

use actix_web::{delete, get, patch, post};
use cardgate_admin::api::{CardList, CardView, ImageChange, NewImage, PageQuery, RepositoryQuery};

use super::extractors::{Caller, Json, Query, Revision};
use super::{State, created, handler, updated};

handler! {
    /// The images of an org. Members of the org.
    get "/orgs/{org}/images", "images", pages => 403 | 404; list_images: org: images
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
