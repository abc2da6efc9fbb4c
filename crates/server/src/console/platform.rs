//! Platform admins' page: orgs (create), users (create with the default role, deactivate),
//! role cards (create, deactivate).

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
    /// The name a role is given by (the slug without `role-`).
    pub name: String,
    pub revision: i64,
    pub read: String,
    pub catalog: bool,
    /// Built in: never deactivated, so offered no button.
    pub built_in: bool,
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
                    name: r.slug.strip_prefix("role-").unwrap_or(&r.slug).to_owned(),
                    revision: r.revision,
                    read: r.data["read"].to_string(),
                    catalog: r.data["catalog"] == json!(true),
                    built_in: cardgate_store::is_built_in(&r.slug),
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
        Some("role") => Feedback::notice("Role created."),
        Some("role-deactivated") => Feedback::notice("Role deactivated."),
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

#[derive(Deserialize)]
pub struct NewRole {
    name: String,
    /// The JSON schema of the cards the role reads (`true`: every card its markers allow).
    read: String,
    /// A checkbox: present when ticked.
    #[serde(default)]
    catalog: Option<String>,
}

/// Creates a role card.
pub async fn create_role(
    req: HttpRequest,
    post: Post<NewRole>,
) -> Result<HttpResponse, ConsoleError> {
    let (state, _) = states(&req)?;
    let result = async {
        let read = serde_json::from_str(&post.form.read)
            .map_err(|e| ConsoleError::BadRequest(format!("read: not JSON: {e}")))?;
        state
            .admin
            .create_role(
                &post.viewer.caller,
                post.form.name.trim(),
                read,
                post.form.catalog.is_some(),
            )
            .await?;
        Ok(())
    }
    .await;
    outcome(
        &req,
        &post.viewer,
        result,
        "role",
        &["name", "read"],
        "role",
    )
    .await
}

#[derive(Deserialize)]
pub struct Revision {
    revision: i64,
}

/// Deactivates a role card, at the revision the page showed.
pub async fn deactivate_role(
    req: HttpRequest,
    path: web::Path<String>,
    post: Post<Revision>,
) -> Result<HttpResponse, ConsoleError> {
    let (state, _) = states(&req)?;
    let result = state
        .admin
        .deactivate_role(&post.viewer.caller, &path, post.form.revision)
        .await
        .map(drop)
        .map_err(ConsoleError::from);
    outcome(&req, &post.viewer, result, "roles", &[], "role-deactivated").await
}
