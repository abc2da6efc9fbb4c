//! An org's robots, for its owners: create one, set its password, give it a token (with an
//! expiry and optionally one repository), shown once, and revoke its tokens.

use actix_web::http::StatusCode;
use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse, ResponseError, web};
use askama::Template;
use cardgate_admin::AdminError;
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use serde_json::json;
use uuid::Uuid;

use super::account::{SessionRow, session_rows};
use super::orgs::{org_slug, outcome, user_slug};
use super::page::{Chrome, ConsoleError, Feedback, render, see_other, when};
use super::session::{Post, Viewer, states};

#[derive(Deserialize)]
pub struct NewRobot {
    name: String,
}

/// Creates a robot in the org.
pub async fn create_robot(
    req: HttpRequest,
    path: web::Path<String>,
    post: Post<NewRobot>,
) -> Result<HttpResponse, ConsoleError> {
    let (state, _) = states(&req)?;
    let org = path.into_inner();
    let result = async {
        let slug = org_slug(&org)?;
        state
            .admin
            .create_robot(&post.viewer.caller, &slug, post.form.name.trim())
            .await?;
        Ok(())
    }
    .await;
    outcome(
        &req,
        &post.viewer,
        &org,
        result,
        "robot",
        &["name"],
        "robot",
    )
    .await
}

/// The robot `robot` of the org `org`, for whoever manages it; a robot of another org is
/// not found.
async fn robot_of(
    req: &HttpRequest,
    viewer: &Viewer,
    org: &str,
    robot: &str,
) -> Result<(String, String), ConsoleError> {
    let (state, _) = states(req)?;
    let org_slug = org_slug(org)?;
    let robot_slug = user_slug("robot", robot)?;
    let card = state.admin.user(&viewer.caller, &robot_slug).await?;
    if card.data["robot"] != json!(true) || !card.markers.contains(&org_slug) {
        return Err(AdminError::NotFound(format!("robot {robot} of {org}")).into());
    }
    Ok((org_slug, robot_slug))
}

#[derive(Template)]
#[template(path = "console/robot.html")]
struct RobotPage {
    chrome: Chrome,
    feedback: Feedback,
    org: String,
    robot: String,
    tokens: Vec<SessionRow>,
}

async fn robot_page_with(
    req: &HttpRequest,
    viewer: &Viewer,
    org: &str,
    robot: &str,
    status: StatusCode,
    feedback: Feedback,
) -> Result<HttpResponse, ConsoleError> {
    let (state, _) = states(req)?;
    let (_, robot_slug) = robot_of(req, viewer, org, robot).await?;
    let tokens = state.admin.sessions(&viewer.caller, &robot_slug).await?;
    Ok(render(
        status,
        &RobotPage {
            chrome: Chrome::of(viewer),
            feedback,
            org: org.to_owned(),
            robot: robot.to_owned(),
            tokens: session_rows(tokens, None),
        },
    ))
}

#[derive(Deserialize)]
pub struct Notice {
    #[serde(default)]
    done: Option<String>,
}

/// A robot's page.
pub async fn robot_page(
    req: HttpRequest,
    path: web::Path<(String, String)>,
    query: web::Query<Notice>,
    viewer: Viewer,
) -> Result<HttpResponse, ConsoleError> {
    let (org, robot) = path.into_inner();
    let feedback = match query.done.as_deref() {
        Some("password") => Feedback::notice("Password set."),
        Some("revoked") => Feedback::notice("Token revoked."),
        _ => Feedback::none(),
    };
    robot_page_with(&req, &viewer, &org, &robot, StatusCode::OK, feedback).await
}

/// A robot form's outcome: to its page with a notice, or its page again with the error.
#[allow(clippy::too_many_arguments)]
async fn robot_outcome(
    req: &HttpRequest,
    viewer: &Viewer,
    org: &str,
    robot: &str,
    result: Result<(), ConsoleError>,
    form: &'static str,
    fields: &[&str],
    done: &str,
) -> Result<HttpResponse, ConsoleError> {
    match result {
        Ok(()) => Ok(see_other(&format!(
            "/console/orgs/{org}/robots/{robot}?done={done}"
        ))),
        Err(ConsoleError::LoggedOut) => Err(ConsoleError::LoggedOut),
        Err(e) => {
            let feedback = Feedback::error(form, fields, &e);
            robot_page_with(req, viewer, org, robot, e.status_code(), feedback).await
        }
    }
}

#[derive(Deserialize)]
pub struct NewPassword {
    password: String,
    confirm: String,
}

/// Sets a robot's password.
pub async fn set_password(
    req: HttpRequest,
    path: web::Path<(String, String)>,
    post: Post<NewPassword>,
) -> Result<HttpResponse, ConsoleError> {
    let (state, _) = states(&req)?;
    let (org, robot) = path.into_inner();
    let result = async {
        let (_, robot_slug) = robot_of(&req, &post.viewer, &org, &robot).await?;
        if post.form.password != post.form.confirm {
            return Err(ConsoleError::BadRequest(
                "confirm: the two passwords differ".into(),
            ));
        }
        state
            .admin
            .change_password(
                &post.viewer.caller,
                &robot_slug,
                SecretString::from(post.form.password.clone()),
            )
            .await?;
        Ok(())
    }
    .await;
    robot_outcome(
        &req,
        &post.viewer,
        &org,
        &robot,
        result,
        "password",
        &["password", "confirm"],
        "password",
    )
    .await
}

#[derive(Deserialize)]
pub struct NewToken {
    days: String,
    #[serde(default)]
    repository: String,
}

#[derive(Template)]
#[template(path = "console/token.html")]
struct TokenPage {
    chrome: Chrome,
    feedback: Feedback,
    org: String,
    robot: String,
    token: String,
    expires: String,
    repository: String,
    docker_login: String,
}

/// Creates a token for a robot and shows it, this once.
pub async fn create_token(
    req: HttpRequest,
    path: web::Path<(String, String)>,
    post: Post<NewToken>,
) -> Result<HttpResponse, ConsoleError> {
    let (state, console) = states(&req)?;
    let (org, robot) = path.into_inner();
    let repository = post.form.repository.trim().to_owned();
    let result = async {
        let (_, robot_slug) = robot_of(&req, &post.viewer, &org, &robot).await?;
        let days: u64 = post.form.days.trim().parse().map_err(|_| {
            ConsoleError::BadRequest("days: a whole number of days, 1 to 3650".into())
        })?;
        if !(1..=3650).contains(&days) {
            return Err(ConsoleError::BadRequest(
                "days: a whole number of days, 1 to 3650".into(),
            ));
        }
        let scope = if repository.is_empty() {
            None
        } else {
            if !repository.starts_with(&format!("{org}/")) {
                return Err(ConsoleError::BadRequest(format!(
                    "repository: a repository of {org}, as {org}/<name>"
                )));
            }
            Some(json!({
                "properties": {"data": {
                    "properties": {"repository": {"const": repository}},
                    "required": ["repository"],
                }},
                "required": ["data"],
            }))
        };
        Ok(state
            .admin
            .open_token(&post.viewer.caller, &robot_slug, Some(days * 86_400), scope)
            .await?)
    }
    .await;
    match result {
        Ok(issued) => {
            let expires = issued
                .card
                .session()
                .map(|s| when(s.expiration))
                .unwrap_or_default();
            let mut response = render(
                StatusCode::CREATED,
                &TokenPage {
                    chrome: Chrome::of(&post.viewer),
                    feedback: Feedback::none(),
                    token: issued.token.expose_secret().to_owned(),
                    expires,
                    repository,
                    docker_login: format!("docker login {} -u {robot}", console.registry),
                    org,
                    robot,
                },
            );
            response.headers_mut().insert(
                header::CACHE_CONTROL,
                header::HeaderValue::from_static("no-store"),
            );
            Ok(response)
        }
        Err(e) => {
            robot_outcome(
                &req,
                &post.viewer,
                &org,
                &robot,
                Err(e),
                "token",
                &["days", "repository"],
                "token",
            )
            .await
        }
    }
}

#[derive(Deserialize)]
pub struct Empty {}

/// Revokes one of a robot's tokens.
pub async fn revoke(
    req: HttpRequest,
    path: web::Path<(String, String, Uuid)>,
    post: Post<Empty>,
) -> Result<HttpResponse, ConsoleError> {
    let (state, _) = states(&req)?;
    let (org, robot, id) = path.into_inner();
    let result = async {
        let (_, robot_slug) = robot_of(&req, &post.viewer, &org, &robot).await?;
        let its_own = state
            .admin
            .sessions(&post.viewer.caller, &robot_slug)
            .await?
            .iter()
            .any(|s| s.id == id);
        if !its_own {
            return Err(AdminError::NotFound(format!("token {id} of {robot}")).into());
        }
        state.admin.revoke_session(&post.viewer.caller, id).await?;
        Ok(())
    }
    .await;
    robot_outcome(
        &req,
        &post.viewer,
        &org,
        &robot,
        result,
        "tokens",
        &[],
        "revoked",
    )
    .await
}
