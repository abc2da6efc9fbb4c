//! The admin API under `/v1/admin/`: each handler parses the request, calls one function of
//! `cardgate-admin` (which decides who may do what and records every change with its event),
//! and maps the result. Served only when the card store is configured. Its OpenAPI document is
//! generated from the handlers' annotations and served at `/v1/admin/openapi.json`.
//!
//! One file per resource; [`extractors`] parses the caller, bodies and queries, [`error`] maps
//! every failure to its status.

// utoipa's expansion of `params(<query type>)` names the type by a qualified path that carries
// the handler's span, which this lint would report on our code.
#![allow(unused_qualifications)]

mod auth;
mod error;
mod events;
mod explain;
mod extractors;
mod grants;
mod images;
mod members;
mod orgs;
mod registry;
mod robots;
mod roles;
mod sessions;
mod users;

use std::sync::{Arc, LazyLock};

use actix_web::http::StatusCode;
use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse, get, web};
use cardgate_admin::Admin;
use cardgate_admin::api::{CardList, CardView, ErrorBody, Name};
use cardgate_store::Card;
use serde::Serialize;
use utoipa::OpenApi;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa_actix_web::OpenApiFactory;

pub use extractors::bearer_session;

use self::error::{ApiError, ApiResult, OPAQUE};
use crate::throttle::Throttle;

/// Declares a handler: its OpenAPI operation (doc, method and path, tag, request body or
/// parameters, the success status and its answer, the error statuses, each answered with an
/// [`ErrorBody`]) and its route, around a body that calls the service and maps the result.
///
/// A listing of cards, a page at a time, is shorter: `get PATH, TAG, pages => ERRORS; NAME:
/// LIST` calls `Admin::LIST`, after the org named in the path when `PATH` has one (`org:`),
/// and answers with the cursor of the next page ([`listing`]); a page size out of range is
/// `400`.
macro_rules! handler {
    (
        $(#[doc = $doc:tt])*
        get $path:tt, $tag:tt, pages => $($status:tt)|*; $name:ident: $list:ident
    ) => {
        handler! {
            $(#[doc = $doc])*
            get $path, $tag, params(PageQuery) => 200: CardList | 400 $(| $status)*;
            async fn $name(
                request: actix_web::HttpRequest,
                super::extractors::Query(query): super::extractors::Query<PageQuery>,
                state: super::State,
                caller: super::extractors::Caller,
            ) {
                let page = cardgate_admin::Page::from(query.clone());
                let cards = state.admin.$list(&caller, &page).await?;
                super::listing(&request, CardList::page(cards, &page), |after| PageQuery {
                    after: Some(after),
                    ..query
                })
            }
        }
    };
    (
        $(#[doc = $doc:tt])*
        get $path:tt, $tag:tt, pages => $($status:tt)|*; $name:ident: org: $list:ident
    ) => {
        handler! {
            $(#[doc = $doc])*
            get $path, $tag, params(PageQuery) => 200: CardList | 400 $(| $status)*;
            async fn $name(
                request: actix_web::HttpRequest,
                path: actix_web::web::Path<String>,
                super::extractors::Query(query): super::extractors::Query<PageQuery>,
                state: super::State,
                caller: super::extractors::Caller,
            ) {
                let org = super::extractors::org_segment(path.into_inner())?;
                let page = cardgate_admin::Page::from(query.clone());
                let cards = state.admin.$list(&caller, &org, &page).await?;
                super::listing(&request, CardList::page(cards, &page), |after| PageQuery {
                    after: Some(after),
                    ..query
                })
            }
        }
    };
    (
        $(#[doc = $doc:tt])*
        $method:ident $path:tt, $tag:tt $(, body $body:ident)? $(, params($($param:tt)*))?
        => $ok:tt $(: $answer:ident)? $(| $status:tt)*;
        async fn $name:ident($($args:tt)*) $block:block
    ) => {
        $(#[doc = $doc])*
        #[utoipa::path(
            tag = $tag,
            $(request_body = $body,)?
            $(params($($param)*),)?
            responses(
                (status = $ok $(, body = $answer)?),
                $((status = $status, body = cardgate_admin::api::ErrorBody),)*
            ),
        )]
        #[$method($path)]
        pub(super) async fn $name($($args)*) -> super::error::ApiResult $block
    };
}
use handler;

/// The admin state, as handlers take it.
type State = web::Data<AdminState>;

/// What the admin handlers share.
#[derive(Debug)]
pub struct AdminState {
    /// Every rule and every change.
    pub admin: Admin,
    /// Failed logins by client address, shared with the token endpoint.
    pub throttle: Arc<Throttle>,
}

/// A `200` with a JSON body.
fn ok(body: impl Serialize) -> ApiResult {
    Ok(HttpResponse::Ok().json(body))
}

/// A page of a listing: `200` with its cards and its `next` cursor, and when there is one a
/// `Link` header to the next page (`rel="next"`): this path with the query `next_query` makes
/// of the cursor.
fn listing<Q: Serialize>(
    request: &HttpRequest,
    list: CardList,
    next_query: impl FnOnce(Name) -> Q,
) -> ApiResult {
    let mut response = HttpResponse::Ok();
    if let Some(next) = &list.next
        && let Ok(after) = Name::parse(next.as_str())
        && let Ok(query) = serde_urlencoded::to_string(next_query(after))
    {
        let link = format!("<{}?{query}>; rel=\"next\"", request.path());
        response.insert_header((header::LINK, link));
    }
    Ok(response.json(list))
}

/// A `204`: done, nothing to show.
fn done() -> ApiResult {
    Ok(HttpResponse::NoContent().finish())
}

/// A card answer, with its revision as the `ETag`.
fn with_etag(status: StatusCode, card: Card) -> ApiResult {
    Ok(HttpResponse::build(status)
        .insert_header((header::ETAG, format!("\"{}\"", card.revision)))
        .json(CardView::from(card)))
}

/// A new card: `201` with its `ETag`.
fn created(card: Card) -> ApiResult {
    with_etag(StatusCode::CREATED, card)
}

/// A card as it is now: `200` with its `ETag`.
fn updated(card: Card) -> ApiResult {
    with_etag(StatusCode::OK, card)
}

/// This document.
#[utoipa::path(tag = "session", security(()), responses((status = 200, body = Object)))]
#[get("/openapi.json")]
async fn openapi_json() -> HttpResponse {
    match &*DOCUMENT {
        Ok(document) => HttpResponse::Ok()
            .content_type("application/json")
            .body(document.clone()),
        Err(e) => {
            tracing::error!(error = %e, "the OpenAPI document cannot be serialised");
            HttpResponse::InternalServerError().json(ErrorBody {
                error: "server_error".into(),
                error_description: OPAQUE.into(),
            })
        }
    }
}

/// The admin scope: every handler, each registered (and documented) once.
fn scope() -> utoipa_actix_web::scope::Scope<
    impl actix_web::dev::ServiceFactory<
        actix_web::dev::ServiceRequest,
        Config = (),
        Response = actix_web::dev::ServiceResponse,
        Error = actix_web::Error,
        InitError = (),
    >,
> {
    utoipa_actix_web::scope("/v1/admin")
        .service(auth::log_in)
        .service(auth::log_out)
        .service(auth::who_am_i)
        .service(orgs::list_orgs)
        .service(orgs::create_org)
        .service(members::list_members)
        .service(members::add_member)
        .service(members::set_member_role)
        .service(members::remove_member)
        .service(robots::list_robots)
        .service(robots::create_robot)
        .service(images::list_images)
        .service(users::list_users)
        .service(users::create_user)
        .service(users::get_user)
        .service(users::set_roles)
        .service(users::deactivate_user)
        .service(users::set_password)
        .service(sessions::create_token)
        .service(sessions::list_sessions)
        .service(sessions::revoke_session)
        .service(images::create_image)
        .service(images::set_public)
        .service(images::deactivate_image)
        .service(grants::list_grants)
        .service(grants::add_grant)
        .service(grants::revoke_grant)
        .service(roles::list_roles)
        .service(roles::create_role)
        .service(roles::update_role)
        .service(roles::deactivate_role)
        .service(events::list_events)
        .service(explain::explain_access)
        .service(registry::image_contents)
        .service(registry::registry_activity)
        .service(registry::org_storage)
        .service(registry::set_quota)
        .service(openapi_json)
}

#[derive(OpenApi)]
#[openapi(
    info(
        title = "cardgate admin API",
        description = "Policy changes on the card store: audited, in force for the next token request."
    ),
    security(("bearer" = [])),
    modifiers(&BearerAuth),
)]
struct AdminApi;

/// The `bearer` security scheme: a login session token `<id>.<secret>`.
struct BearerAuth;

impl utoipa::Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        openapi
            .components
            .get_or_insert_with(Default::default)
            .add_security_scheme(
                "bearer",
                SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
            );
    }
}

/// The admin API's OpenAPI document, generated from the handlers' annotations.
pub fn openapi() -> utoipa::openapi::OpenApi {
    let scope = scope();
    let mut api = AdminApi::openapi();
    api.paths.merge(scope.paths());
    let mut schemas = Vec::new();
    scope.schemas(&mut schemas);
    api.components
        .get_or_insert_with(Default::default)
        .schemas
        .extend(schemas);
    api
}

static DOCUMENT: LazyLock<Result<String, String>> =
    LazyLock::new(|| openapi().to_pretty_json().map_err(|e| e.to_string()));

/// Registers the admin routes under `/v1/admin`; malformed path segments (a session id) are
/// answered like malformed bodies.
pub fn configure(config: &mut web::ServiceConfig) {
    config.service(
        scope().app_data(
            web::PathConfig::default()
                .error_handler(|e, _| ApiError::BadRequest(format!("path: {e}")).into()),
        ),
    );
}
