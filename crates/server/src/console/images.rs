//! An org's images: create one; on an image's page, its tags and pulls as the registry
//! reported them, open it to the public or close it, deactivate it, and give or revoke
//! explicit grants. Owners change; members look.

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, ResponseError, web};
use askama::Template;
use cardgate_admin::AdminError;
use cardgate_store::MembershipRole;
use serde::Deserialize;
use serde_json::json;

use super::orgs::{org_slug, outcome};
use super::page::{Chrome, ConsoleError, Feedback, render, see_other, size, user_name, when};
use super::session::{Post, Viewer, states};

/// `<org>/<name>`, refused (naming `field`) when not a repository of `org`.
pub(super) fn repository_of(
    field: &str,
    org: &str,
    repository: &str,
) -> Result<String, ConsoleError> {
    let repository = repository.trim();
    match repository
        .strip_prefix(org)
        .and_then(|rest| rest.strip_prefix('/'))
    {
        Some(name) if !name.is_empty() => Ok(repository.to_owned()),
        _ => Err(ConsoleError::BadRequest(format!(
            "{field}: a repository of {org}, as {org}/<name>"
        ))),
    }
}

#[derive(Deserialize)]
pub struct NewImage {
    name: String,
    #[serde(default)]
    public: Option<String>,
}

/// Creates an image `<org>/<name>`.
pub async fn create_image(
    req: HttpRequest,
    path: web::Path<String>,
    post: Post<NewImage>,
) -> Result<HttpResponse, ConsoleError> {
    let (state, _) = states(&req)?;
    let org = path.into_inner();
    let result = async {
        org_slug(&org)?;
        let repository = format!("{org}/{}", post.form.name.trim());
        state
            .admin
            .create_image(&post.viewer.caller, &repository, post.form.public.is_some())
            .await
            .map_err(|e| match e {
                AdminError::Invalid(message) => {
                    AdminError::Invalid(message.replacen("repository:", "name:", 1))
                }
                other => other,
            })?;
        Ok(())
    }
    .await;
    outcome(
        &req,
        &post.viewer,
        &org,
        result,
        "image",
        &["name"],
        "image",
    )
    .await
}

pub struct TagRow {
    pub tag: String,
    pub digest: String,
    pub size: String,
    pub media_type: String,
    pub pushed_by: String,
    pub pushed_at: String,
}

pub struct GrantRow {
    pub holder: String,
    pub actions: String,
}

#[derive(Template)]
#[template(path = "console/image.html")]
struct ImagePage {
    chrome: Chrome,
    feedback: Feedback,
    org: String,
    repository: String,
    public: bool,
    revision: i64,
    owner: bool,
    grants: Vec<GrantRow>,
    /// Made for a push token, nothing pushed yet.
    reserved: bool,
    tags: Vec<TagRow>,
    pulls_last_day: i64,
    last_pulled_at: Option<String>,
}

async fn image_page_with(
    req: &HttpRequest,
    viewer: &Viewer,
    org: &str,
    repository: &str,
    status: StatusCode,
    feedback: Feedback,
) -> Result<HttpResponse, ConsoleError> {
    let (state, _) = states(req)?;
    let slug = org_slug(org)?;
    let repository = repository_of("repository", org, repository)?;
    let caller = &viewer.caller;
    let image = state.admin.image_of(caller, &repository).await?;
    let contents = state.admin.image_contents(caller, &repository).await?;
    let owner = caller.platform_admin || caller.role_in(&slug) == Some(MembershipRole::Owner);
    let grants = if owner {
        state
            .admin
            .grants(caller, &repository)
            .await?
            .into_iter()
            .map(|grant| GrantRow {
                holder: grant.holder.slug.clone(),
                actions: grant.actions.join(", "),
            })
            .collect()
    } else {
        Vec::new()
    };
    Ok(render(
        status,
        &ImagePage {
            chrome: Chrome::of(viewer),
            feedback,
            org: org.to_owned(),
            public: image.data["public"] == json!(true),
            revision: image.revision,
            repository,
            owner,
            grants,
            reserved: contents.reserved,
            tags: contents
                .tags
                .into_iter()
                .map(|tag| TagRow {
                    tag: tag.tag,
                    digest: tag.digest,
                    size: size(tag.size),
                    media_type: tag.media_type,
                    pushed_by: tag.pushed_by,
                    pushed_at: when(tag.pushed_at),
                })
                .collect(),
            pulls_last_day: contents.pulls_last_day,
            last_pulled_at: contents.last_pulled_at.map(when),
        },
    ))
}

#[derive(Deserialize)]
pub struct ImageQuery {
    repository: String,
    #[serde(default)]
    done: Option<String>,
}

/// An image's page.
pub async fn image_page(
    req: HttpRequest,
    path: web::Path<String>,
    query: web::Query<ImageQuery>,
    viewer: Viewer,
) -> Result<HttpResponse, ConsoleError> {
    let feedback = match query.done.as_deref() {
        Some("public") => Feedback::notice("Saved."),
        Some("granted") => Feedback::notice("Grant saved."),
        Some("revoked") => Feedback::notice("Grant revoked."),
        _ => Feedback::none(),
    };
    image_page_with(
        &req,
        &viewer,
        &path,
        &query.repository,
        StatusCode::OK,
        feedback,
    )
    .await
}

/// An image form's outcome: to the image's page with a notice, or its page again with the
/// error next to the field at fault.
#[allow(clippy::too_many_arguments)]
async fn image_outcome(
    req: &HttpRequest,
    viewer: &Viewer,
    org: &str,
    repository: &str,
    result: Result<(), ConsoleError>,
    form: &'static str,
    fields: &[&str],
    done: &str,
) -> Result<HttpResponse, ConsoleError> {
    match result {
        Ok(()) => Ok(see_other(&format!(
            "/console/orgs/{org}/image?repository={}&done={done}",
            form_urlencoded::byte_serialize(repository.as_bytes()).collect::<String>()
        ))),
        Err(ConsoleError::LoggedOut) => Err(ConsoleError::LoggedOut),
        Err(e) => {
            let feedback = Feedback::error(form, fields, &e);
            image_page_with(req, viewer, org, repository, e.status_code(), feedback).await
        }
    }
}

#[derive(Deserialize)]
pub struct PublicChange {
    repository: String,
    revision: i64,
    public: String,
}

/// Opens the image to the public, or closes it.
pub async fn set_public(
    req: HttpRequest,
    path: web::Path<String>,
    post: Post<PublicChange>,
) -> Result<HttpResponse, ConsoleError> {
    let (state, _) = states(&req)?;
    let org = path.into_inner();
    let form = &post.form;
    let result = async {
        let repository = repository_of("repository", &org, &form.repository)?;
        state
            .admin
            .set_public(
                &post.viewer.caller,
                &repository,
                form.revision,
                form.public == "true",
            )
            .await?;
        Ok(())
    }
    .await;
    image_outcome(
        &req,
        &post.viewer,
        &org,
        &form.repository,
        result,
        "public",
        &[],
        "public",
    )
    .await
}

#[derive(Deserialize)]
pub struct Deactivation {
    repository: String,
    revision: i64,
}

/// Deactivates the image.
pub async fn deactivate(
    req: HttpRequest,
    path: web::Path<String>,
    post: Post<Deactivation>,
) -> Result<HttpResponse, ConsoleError> {
    let (state, _) = states(&req)?;
    let org = path.into_inner();
    let form = &post.form;
    let result = async {
        let repository = repository_of("repository", &org, &form.repository)?;
        state
            .admin
            .deactivate_image(&post.viewer.caller, &repository, form.revision)
            .await?;
        Ok(())
    }
    .await;
    match result {
        Ok(()) => Ok(see_other(&format!("/console/orgs/{org}?done=deactivated"))),
        Err(e) => {
            image_outcome(
                &req,
                &post.viewer,
                &org,
                &form.repository,
                Err(e),
                "deactivate",
                &[],
                "",
            )
            .await
        }
    }
}

#[derive(Deserialize)]
pub struct NewGrant {
    repository: String,
    holder: String,
    #[serde(default)]
    pull: Option<String>,
    #[serde(default)]
    push: Option<String>,
    #[serde(default)]
    delete: Option<String>,
}

/// The slug of a grant's holder: `org-...` or `user-...` as given, else a user's name.
fn holder_slug(holder: &str) -> String {
    let holder = holder.trim();
    if holder.starts_with("org-") || holder.starts_with("user-") {
        holder.to_owned()
    } else {
        cardgate_authz_cards::user_slug(user_name(holder))
    }
}

/// Gives a user or an org actions on the image.
pub async fn grant(
    req: HttpRequest,
    path: web::Path<String>,
    post: Post<NewGrant>,
) -> Result<HttpResponse, ConsoleError> {
    let (state, _) = states(&req)?;
    let org = path.into_inner();
    let form = &post.form;
    let result = async {
        let repository = repository_of("repository", &org, &form.repository)?;
        let actions: Vec<String> = [
            ("pull", &form.pull),
            ("push", &form.push),
            ("delete", &form.delete),
        ]
        .into_iter()
        .filter(|(_, on)| on.is_some())
        .map(|(action, _)| action.to_owned())
        .collect();
        if actions.is_empty() {
            return Err(ConsoleError::BadRequest(
                "actions: choose at least one".into(),
            ));
        }
        if form.holder.trim().is_empty() {
            return Err(ConsoleError::BadRequest(
                "holder: a user or org-<name>".into(),
            ));
        }
        state
            .admin
            .grant(
                &post.viewer.caller,
                &holder_slug(&form.holder),
                &repository,
                &actions,
            )
            .await?;
        Ok(())
    }
    .await;
    image_outcome(
        &req,
        &post.viewer,
        &org,
        &form.repository,
        result,
        "grant",
        &["holder", "actions"],
        "granted",
    )
    .await
}

#[derive(Deserialize)]
pub struct Revocation {
    repository: String,
    holder: String,
}

/// Revokes a holder's grant on the image.
pub async fn revoke(
    req: HttpRequest,
    path: web::Path<String>,
    post: Post<Revocation>,
) -> Result<HttpResponse, ConsoleError> {
    let (state, _) = states(&req)?;
    let org = path.into_inner();
    let form = &post.form;
    let result = async {
        let repository = repository_of("repository", &org, &form.repository)?;
        state
            .admin
            .revoke(&post.viewer.caller, &holder_slug(&form.holder), &repository)
            .await?;
        Ok(())
    }
    .await;
    image_outcome(
        &req,
        &post.viewer,
        &org,
        &form.repository,
        result,
        "grants",
        &[],
        "revoked",
    )
    .await
}
