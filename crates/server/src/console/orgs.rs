//! An org's page: its members (owners add them, change their roles, remove them), its robots
//! (owners only) and its images, found by part of their name a page at a time.

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, ResponseError, web};
use askama::Template;
use cardgate_admin::Page;
use cardgate_admin::api::Name;
use cardgate_store::{MembershipRole, Slug};
use serde::Deserialize;

use super::page::{Chrome, ConsoleError, Feedback, render, see_other, size, user_name};
use super::session::{Post, Viewer, states};

/// Images shown at once.
const IMAGES_PER_PAGE: i64 = 20;

/// The membership roles, lowest first.
pub const ROLES: [&str; 4] = ["viewer", "developer", "maintainer", "owner"];

/// The slug of the org named `name` in a path.
pub fn org_slug(name: &str) -> Result<String, ConsoleError> {
    let name = Name::parse(name).map_err(|e| ConsoleError::BadRequest(format!("org: {e}")))?;
    Ok(Slug::org(name.as_str()).into())
}

/// The slug of the user named `name` in a form or a path.
pub fn user_slug(field: &str, name: &str) -> Result<String, ConsoleError> {
    let name =
        Name::parse(name.trim()).map_err(|e| ConsoleError::BadRequest(format!("{field}: {e}")))?;
    Ok(cardgate_authz_cards::user_slug(name.as_str()))
}

pub struct MemberRow {
    pub name: String,
    pub role: &'static str,
}

pub struct ImageRow {
    pub repository: String,
    pub public: bool,
}

#[derive(Template)]
#[template(path = "console/org.html")]
struct OrgPage {
    chrome: Chrome,
    feedback: Feedback,
    org: String,
    owner: bool,
    members: Vec<MemberRow>,
    robots: Vec<String>,
    images: Vec<ImageRow>,
    search: String,
    next: Option<String>,
    roles: [&'static str; 4],
    storage: StorageLine,
}

/// What the org's images take in the registry, against its quota.
pub struct StorageLine {
    pub usage: String,
    /// `None`: no quota.
    pub quota: Option<String>,
    /// Pushes of new content are refused until usage is back under the quota.
    pub over: bool,
}

#[derive(Deserialize, Default)]
pub struct ImageQuery {
    #[serde(default)]
    q: String,
    #[serde(default)]
    after: Option<String>,
    #[serde(default)]
    done: Option<String>,
}

async fn org_page_with(
    req: &HttpRequest,
    viewer: &Viewer,
    org: &str,
    query: &ImageQuery,
    status: StatusCode,
    feedback: Feedback,
) -> Result<HttpResponse, ConsoleError> {
    let (state, _) = states(req)?;
    let slug = org_slug(org)?;
    let caller = &viewer.caller;
    let members = state.admin.members(caller, &slug).await?;
    let storage = state.admin.storage(caller, &slug).await?;
    let owner = caller.platform_admin || caller.role_in(&slug) == Some(MembershipRole::Owner);
    let robots = if owner {
        state
            .admin
            .robots(caller, &slug, &Page::default())
            .await?
            .into_iter()
            .map(|robot| user_name(&robot.slug).to_owned())
            .collect()
    } else {
        Vec::new()
    };
    let page = Page {
        after: query.after.clone(),
        limit: Some(IMAGES_PER_PAGE),
    };
    let images = state
        .admin
        .search_images(caller, &slug, query.q.trim(), &page)
        .await?;
    let next = (images.len() == usize::try_from(IMAGES_PER_PAGE).unwrap_or(0))
        .then(|| images.last().map(|image| image.slug.clone()))
        .flatten();
    Ok(render(
        status,
        &OrgPage {
            chrome: Chrome::of(viewer),
            feedback,
            org: org.to_owned(),
            owner,
            members: members
                .into_iter()
                .map(|m| MemberRow {
                    name: user_name(&m.user.slug).to_owned(),
                    role: m.role.as_str(),
                })
                .collect(),
            robots,
            images: images
                .into_iter()
                .map(|image| ImageRow {
                    repository: image.data["repository"]
                        .as_str()
                        .unwrap_or_default()
                        .to_owned(),
                    public: image.data["public"] == serde_json::json!(true),
                })
                .collect(),
            search: query.q.clone(),
            next,
            roles: ROLES,
            storage: StorageLine {
                usage: size(storage.usage_bytes),
                quota: storage.quota_bytes.map(size),
                over: storage.over_quota,
            },
        },
    ))
}

/// The org's page.
pub async fn org_page(
    req: HttpRequest,
    path: web::Path<String>,
    query: web::Query<ImageQuery>,
    viewer: Viewer,
) -> Result<HttpResponse, ConsoleError> {
    let feedback = match query.done.as_deref() {
        Some("member") => Feedback::notice("Member saved."),
        Some("removed") => Feedback::notice("Member removed."),
        Some("robot") => Feedback::notice("Robot created."),
        Some("image") => Feedback::notice("Image created."),
        Some("deactivated") => Feedback::notice("Image deactivated."),
        _ => Feedback::none(),
    };
    org_page_with(&req, &viewer, &path, &query, StatusCode::OK, feedback).await
}

/// A form's outcome on the org page: to the page with a notice, or the page again with the
/// error next to the field at fault.
pub async fn outcome(
    req: &HttpRequest,
    viewer: &Viewer,
    org: &str,
    result: Result<(), ConsoleError>,
    form: &'static str,
    fields: &[&str],
    done: &str,
) -> Result<HttpResponse, ConsoleError> {
    match result {
        Ok(()) => Ok(see_other(&format!("/console/orgs/{org}?done={done}"))),
        Err(ConsoleError::LoggedOut) => Err(ConsoleError::LoggedOut),
        Err(e) => {
            let feedback = Feedback::error(form, fields, &e);
            org_page_with(
                req,
                viewer,
                org,
                &ImageQuery::default(),
                e.status_code(),
                feedback,
            )
            .await
        }
    }
}

fn role(field: &str, role: &str) -> Result<MembershipRole, ConsoleError> {
    role.parse()
        .map_err(|_| ConsoleError::BadRequest(format!("{field}: one of {}", ROLES.join(", "))))
}

#[derive(Deserialize)]
pub struct NewMember {
    user: String,
    role: String,
}

/// Adds a member with a role.
pub async fn add_member(
    req: HttpRequest,
    path: web::Path<String>,
    post: Post<NewMember>,
) -> Result<HttpResponse, ConsoleError> {
    let (state, _) = states(&req)?;
    let org = path.into_inner();
    let caller = &post.viewer.caller;
    let result = async {
        let slug = org_slug(&org)?;
        let user = user_slug("user", &post.form.user)?;
        let role = role("role", &post.form.role)?;
        state.admin.add_member(caller, &slug, &user, role).await?;
        Ok(())
    }
    .await;
    outcome(
        &req,
        &post.viewer,
        &org,
        result,
        "add-member",
        &["user", "role"],
        "member",
    )
    .await
}

#[derive(Deserialize)]
pub struct RoleChange {
    role: String,
}

/// Changes a member's role.
pub async fn set_role(
    req: HttpRequest,
    path: web::Path<(String, String)>,
    post: Post<RoleChange>,
) -> Result<HttpResponse, ConsoleError> {
    let (state, _) = states(&req)?;
    let (org, user) = path.into_inner();
    let caller = &post.viewer.caller;
    let result = async {
        let slug = org_slug(&org)?;
        let user = user_slug("user", &user)?;
        let role = role("role", &post.form.role)?;
        state
            .admin
            .set_member_role(caller, &slug, &user, role)
            .await?;
        Ok(())
    }
    .await;
    outcome(
        &req,
        &post.viewer,
        &org,
        result,
        "members",
        &["role"],
        "member",
    )
    .await
}

#[derive(Deserialize)]
pub struct Empty {}

/// Removes a member.
pub async fn remove_member(
    req: HttpRequest,
    path: web::Path<(String, String)>,
    post: Post<Empty>,
) -> Result<HttpResponse, ConsoleError> {
    let (state, _) = states(&req)?;
    let (org, user) = path.into_inner();
    let caller = &post.viewer.caller;
    let result = async {
        let slug = org_slug(&org)?;
        let user = user_slug("user", &user)?;
        state.admin.remove_member(caller, &slug, &user).await?;
        Ok(())
    }
    .await;
    outcome(&req, &post.viewer, &org, result, "members", &[], "removed").await
}
