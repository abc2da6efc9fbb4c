//! The web console under `/console/`: server-rendered pages and plain HTML forms for people
//! (an org's owners, its members, platform admins) over the same `cardgate-admin` functions as
//! the admin API, so that every rule of who may do what is written once. Served with the admin
//! API, when the card store is configured.
//!
//! Safe by construction: the session is an ordinary login session card carried in an
//! `HttpOnly`, `SameSite=Strict` cookie (`Secure` and `__Host-` when `console.behind_tls`);
//! every state-changing form carries a token derived from the session's secret and must come
//! from the console's own origin ([`session`]); every answer forbids framing, inline scripts
//! and other origins; templates (askama) escape every value and are checked at compile time.
//! The CSS and the one small script are built into the binary.

mod account;
mod audit;
mod images;
mod orgs;
mod page;
mod platform;
mod robots;
mod session;

use actix_web::http::header::{self, HeaderValue};
use actix_web::middleware::{Next, from_fn};
use actix_web::{HttpResponse, body::MessageBody, dev::ServiceRequest, dev::ServiceResponse, web};

pub use session::ConsoleConfig;

/// The most a console form's body may hold.
const MAX_FORM_BYTES: usize = 16 * 1024;

/// What every console answer says about itself: no framing, no inline script, nothing from
/// another origin, no referrer to other sites (`same-origin`: with `no-referrer`, browsers
/// send `Origin: null` on the console's own forms), no sniffing; pages are never cached.
async fn security_headers(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let mut response = next.call(req).await?;
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self'; \
             connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'; \
             object-src 'none'",
        ),
    );
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("same-origin"),
    );
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    if !headers.contains_key(header::CACHE_CONTROL) {
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    Ok(response)
}

/// The stylesheet, built into the binary.
async fn stylesheet() -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/css; charset=utf-8")
        .insert_header((header::CACHE_CONTROL, "public, max-age=3600"))
        .body(include_str!("../../static/console.css"))
}

/// The one script (copy buttons), built into the binary.
async fn script() -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/javascript; charset=utf-8")
        .insert_header((header::CACHE_CONTROL, "public, max-age=3600"))
        .body(include_str!("../../static/console.js"))
}

/// `/console` without its slash.
async fn to_home() -> HttpResponse {
    page::see_other("/console/")
}

/// Registers the console's routes under `/console`.
pub fn configure(config: &mut web::ServiceConfig, console: ConsoleConfig) {
    config.route("/console", web::get().to(to_home));
    config.service(
        web::scope("/console")
            .app_data(web::Data::new(console))
            .app_data(web::PayloadConfig::new(MAX_FORM_BYTES))
            .app_data(
                web::PathConfig::default().error_handler(|e, _| {
                    page::ConsoleError::BadRequest(format!("path: {e}")).into()
                }),
            )
            .app_data(
                web::QueryConfig::default().error_handler(|e, _| {
                    page::ConsoleError::BadRequest(format!("query: {e}")).into()
                }),
            )
            .wrap(from_fn(security_headers))
            .route("/static/console.css", web::get().to(stylesheet))
            .route("/static/console.js", web::get().to(script))
            .route("/", web::get().to(account::home))
            .route("/login", web::get().to(account::login_page))
            .route("/login", web::post().to(account::log_in))
            .route("/logout", web::post().to(account::log_out))
            .route("/password", web::post().to(account::change_password))
            .route(
                "/sessions/{id}/revoke",
                web::post().to(account::revoke_session),
            )
            .route("/orgs/{org}", web::get().to(orgs::org_page))
            .route("/orgs/{org}/members", web::post().to(orgs::add_member))
            .route(
                "/orgs/{org}/members/{user}/role",
                web::post().to(orgs::set_role),
            )
            .route(
                "/orgs/{org}/members/{user}/remove",
                web::post().to(orgs::remove_member),
            )
            .route("/orgs/{org}/robots", web::post().to(robots::create_robot))
            .route(
                "/orgs/{org}/robots/{robot}",
                web::get().to(robots::robot_page),
            )
            .route(
                "/orgs/{org}/robots/{robot}/password",
                web::post().to(robots::set_password),
            )
            .route(
                "/orgs/{org}/robots/{robot}/tokens",
                web::post().to(robots::create_token),
            )
            .route(
                "/orgs/{org}/robots/{robot}/revoke/{id}",
                web::post().to(robots::revoke),
            )
            .route("/orgs/{org}/images", web::post().to(images::create_image))
            .route("/orgs/{org}/image", web::get().to(images::image_page))
            .route(
                "/orgs/{org}/image/public",
                web::post().to(images::set_public),
            )
            .route(
                "/orgs/{org}/image/deactivate",
                web::post().to(images::deactivate),
            )
            .route("/orgs/{org}/image/grants", web::post().to(images::grant))
            .route("/orgs/{org}/image/revoke", web::post().to(images::revoke))
            .route("/orgs/{org}/audit", web::get().to(audit::audit_page))
            .route("/orgs/{org}/registry", web::get().to(audit::registry_page))
            .route("/orgs/{org}/why", web::get().to(audit::why_page))
            .route("/platform", web::get().to(platform::platform_page))
            .route("/platform/orgs", web::post().to(platform::create_org))
            .route("/platform/users", web::post().to(platform::create_user))
            .route("/platform/roles", web::post().to(platform::create_role))
            .route(
                "/platform/roles/{role}/deactivate",
                web::post().to(platform::deactivate_role),
            )
            .route(
                "/platform/users/{user}/deactivate",
                web::post().to(platform::deactivate_user),
            )
            .default_service(web::to(page::not_found)),
    );
}
