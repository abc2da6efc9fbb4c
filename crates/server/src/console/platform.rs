//! Platform admins' page: orgs (create), users (create with the default role, deactivate),
//! role cards.

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, ResponseError, web};
use askama::Template;
use cardgate_admin::Page;
use serde::Deserialize;
use serde_json::json;

use super::orgs::user_slug;
use super::page::{Chrome, ConsoleError, Feedback, org_name, render, see_other, user_name};
use super::session::{Post, Viewer, states};

/// Cards listed at once.
const PER_PAGE: i64 = 100;

pub struct UserRow {
    pub name: String,
    pub roles: String,
    pub robot: bool,
    /// Built in: never deactivated, so offered no button.
    pub built_in: bool,
}

pub struct RoleRow {
    pub slug: String,
    pub read: String,
    pub catalog: bool,
}

#[derive(Template)]
#[template(path = "console/platform.html")]
struct PlatformPage {
    chrome: Chrome,
    feedback: Feedback,
    orgs: Vec<String>,
    users: Vec<UserRow>,
    next_user: Option<String>,
    roles: Vec<RoleRow>,
}

#[derive(Deserialize, Default)]
pub struct PlatformQuery {
    #[serde(default)]
    after: Option<String>,
    #[serde(default)]
    done: Option<String>,
}

async fn platform_page_with(
    req: &HttpRequest,
    viewer: &Viewer,
    query: &PlatformQuery,
    status: StatusCode,
    feedback: Feedback,
) -> Result<HttpResponse, ConsoleError> {
    let (state, _) = states(req)?;
    let caller = &viewer.caller;
    let page = Page {
        after: None,
        limit: Some(PER_PAGE),
    };
    // Users first: only platform admins may list them, so anyone else is refused here.
    let users = state
        .admin
        .users(
            caller,
            &Page {
                after: query.after.clone(),
                limit: Some(PER_PAGE),
            },
        )
        .await?;
    let orgs = state.admin.orgs(caller, &page).await?;
    let roles = state.admin.roles(caller, &page).await?;
    let next_user = (users.len() == usize::try_from(PER_PAGE).unwrap_or(0))
        .then(|| users.last().map(|u| u.slug.clone()))
        .flatten();
    Ok(render(
        status,
        &PlatformPage {
            chrome: Chrome::of(viewer),
            feedback,
            orgs: orgs.iter().map(|o| org_name(&o.slug).to_owned()).collect(),
            users: users
                .iter()
                .map(|u| UserRow {
                    name: user_name(&u.slug).to_owned(),
                    roles: u.data["roles"]
                        .as_array()
                        .map(|roles| {
                            roles
                                .iter()
                                .filter_map(|r| r.as_str())
                                .collect::<Vec<_>>()
                                .join(", ")
                        })
                        .unwrap_or_default(),
                    robot: u.data["robot"] == json!(true),
                    built_in: cardgate_store::is_built_in(&u.slug),
                })
                .collect(),
            next_user,
            roles: roles
                .iter()
                .map(|r| RoleRow {
                    slug: r.slug.clone(),
                    read: r.data["read"].to_string(),
                    catalog: r.data["catalog"] == json!(true),
                })
                .collect(),
        },
    ))
}

/// The platform page.
pub async fn platform_page(
    req: HttpRequest,
    query: web::Query<PlatformQuery>,
    viewer: Viewer,
) -> Result<HttpResponse, ConsoleError> {
    let feedback = match query.done.as_deref() {
        Some("org") => Feedback::notice("Org created."),
        Some("user") => Feedback::notice("User created."),
        Some("deactivated") => Feedback::notice("User deactivated."),
        _ => Feedback::none(),
    };
    platform_page_with(&req, &viewer, &query, StatusCode::OK, feedback).await
}

async fn outcome(
    req: &HttpRequest,
    viewer: &Viewer,
    result: Result<(), ConsoleError>,
    form: &'static str,
    fields: &[&str],
    done: &str,
) -> Result<HttpResponse, ConsoleError> {
    match result {
        Ok(()) => Ok(see_other(&format!("/console/platform?done={done}"))),
        Err(ConsoleError::LoggedOut) => Err(ConsoleError::LoggedOut),
        Err(e) => {
            let feedback = Feedback::error(form, fields, &e);
            platform_page_with(
                req,
                viewer,
                &PlatformQuery::default(),
                e.status_code(),
                feedback,
            )
            .await
        }
    }
}

#[derive(Deserialize)]
pub struct NewName {
    name: String,
}

/// Creates an org.
pub async fn create_org(
    req: HttpRequest,
    post: Post<NewName>,
) -> Result<HttpResponse, ConsoleError> {
    let (state, _) = states(&req)?;
    let result = state
        .admin
        .create_org(&post.viewer.caller, post.form.name.trim())
        .await
        .map(drop)
        .map_err(ConsoleError::from);
    outcome(&req, &post.viewer, result, "org", &["name"], "org").await
}

/// Creates a user with the default role (what every user reads); platform roles are given
/// through the API.
pub async fn create_user(
    req: HttpRequest,
    post: Post<NewName>,
) -> Result<HttpResponse, ConsoleError> {
    let (state, _) = states(&req)?;
    let result = state
        .admin
        .create_user(&post.viewer.caller, post.form.name.trim(), None)
        .await
        .map(drop)
        .map_err(ConsoleError::from);
    outcome(&req, &post.viewer, result, "user", &["name"], "user").await
}

#[derive(Deserialize)]
pub struct Empty {}

/// Deactivates a user.
pub async fn deactivate_user(
    req: HttpRequest,
    path: web::Path<String>,
    post: Post<Empty>,
) -> Result<HttpResponse, ConsoleError> {
    let (state, _) = states(&req)?;
    let result = async {
        let user = user_slug("user", &path)?;
        state
            .admin
            .deactivate_user(&post.viewer.caller, &user)
            .await?;
        Ok(())
    }
    .await;
    outcome(&req, &post.viewer, result, "users", &[], "deactivated").await
}
