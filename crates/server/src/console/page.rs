//! Rendering: the frame every page shares, the feedback a form gets next to its field, and the
//! one place that maps a failure to its status and its page.

use actix_web::http::StatusCode;
use actix_web::http::header;
use actix_web::{HttpResponse, ResponseError};
use askama::Template;
use cardgate_admin::AdminError;
use cardgate_store::StoreError;

use super::session::Viewer;

/// What a server error tells the viewer: nothing of its cause.
const OPAQUE: &str = "the server could not complete the request";

/// What every logged-in page shows around its content.
#[derive(Debug)]
pub struct Chrome {
    pub user: String,
    pub csrf: String,
    pub platform_admin: bool,
    /// The names of the viewer's orgs.
    pub orgs: Vec<String>,
}

impl Chrome {
    pub fn of(viewer: &Viewer) -> Chrome {
        let mut orgs: Vec<String> = viewer
            .caller
            .memberships()
            .iter()
            .map(|m| org_name(&m.org_slug).to_owned())
            .collect();
        orgs.sort();
        orgs.dedup();
        Chrome {
            user: user_name(&viewer.caller.card.slug).to_owned(),
            csrf: viewer.csrf.clone(),
            platform_admin: viewer.caller.platform_admin,
            orgs,
        }
    }
}

/// An org's name: its slug without `org-`.
pub fn org_name(slug: &str) -> &str {
    slug.strip_prefix("org-").unwrap_or(slug)
}

/// A user's name: its slug without `user-`.
pub fn user_name(slug: &str) -> &str {
    slug.strip_prefix("user-").unwrap_or(slug)
}

/// What a form's last submission came to: a message next to the field at fault (or above
/// the form when it names none), or a notice of success.
#[derive(Debug, Default)]
pub struct Feedback {
    form: &'static str,
    field: String,
    message: String,
    pub notice: String,
}

impl Feedback {
    pub fn none() -> Feedback {
        Feedback::default()
    }

    /// A notice of success shown at the top of the page.
    pub fn notice(notice: impl Into<String>) -> Feedback {
        Feedback {
            notice: notice.into(),
            ..Feedback::default()
        }
    }

    /// `error` of the form `form`, placed at the field its message names (`field: ...`)
    /// when that is one of `fields`.
    pub fn error(form: &'static str, fields: &[&str], error: &ConsoleError) -> Feedback {
        let message = error.to_string();
        let field = message
            .split_once(':')
            .map(|(field, _)| field.trim())
            .filter(|field| fields.contains(field))
            .unwrap_or_default()
            .to_owned();
        Feedback {
            form,
            field,
            message,
            notice: String::new(),
        }
    }

    /// The message for `field` of `form` (`""`: for the form as a whole).
    pub fn at(&self, form: &str, field: &str) -> Option<&str> {
        (!self.message.is_empty() && self.form == form && self.field == field)
            .then_some(self.message.as_str())
    }
}

/// A rendered page with `status`.
pub fn render(status: StatusCode, template: &impl Template) -> HttpResponse {
    match template.render() {
        Ok(body) => HttpResponse::build(status)
            .content_type("text/html; charset=utf-8")
            .body(body),
        Err(e) => {
            tracing::error!(error = %e, "a console page cannot be rendered");
            HttpResponse::InternalServerError().finish()
        }
    }
}

/// `303 See Other` to `location`: where a form's success leads.
pub fn see_other(location: &str) -> HttpResponse {
    HttpResponse::SeeOther()
        .insert_header((header::LOCATION, location))
        .finish()
}

/// Why a console request failed.
#[derive(Debug, thiserror::Error)]
pub enum ConsoleError {
    /// No valid session: to the login page.
    #[error("please log in")]
    LoggedOut,
    /// A form without its token, or from another site: nothing was changed.
    #[error(
        "this form did not come from the console (another site, or an old page): nothing was changed"
    )]
    CrossSite,
    #[error("the form is too large")]
    TooLarge,
    #[error("{0}")]
    BadRequest(String),
    #[error("too many failed logins: try again in {0} seconds")]
    TooManyLogins(u64),
    #[error(transparent)]
    Admin(AdminError),
    #[error("the console is not configured")]
    Unconfigured,
}

impl From<AdminError> for ConsoleError {
    fn from(e: AdminError) -> Self {
        match e {
            AdminError::Unauthenticated => ConsoleError::LoggedOut,
            other => ConsoleError::Admin(other),
        }
    }
}

impl ConsoleError {
    /// What the viewer is told: never the cause of a server error.
    pub fn message(&self) -> String {
        if self.status_code().is_server_error() {
            OPAQUE.to_owned()
        } else {
            self.to_string()
        }
    }
}

/// A page saying what went wrong.
#[derive(Template)]
#[template(path = "console/error.html")]
struct ErrorPage<'a> {
    status: u16,
    message: &'a str,
}

impl ResponseError for ConsoleError {
    fn status_code(&self) -> StatusCode {
        match self {
            ConsoleError::LoggedOut => StatusCode::SEE_OTHER,
            ConsoleError::CrossSite => StatusCode::FORBIDDEN,
            ConsoleError::TooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            ConsoleError::BadRequest(_) => StatusCode::BAD_REQUEST,
            ConsoleError::TooManyLogins(_) => StatusCode::TOO_MANY_REQUESTS,
            ConsoleError::Unconfigured => StatusCode::INTERNAL_SERVER_ERROR,
            ConsoleError::Admin(e) => match e {
                AdminError::Forbidden(_) => StatusCode::FORBIDDEN,
                AdminError::NotFound(_) => StatusCode::NOT_FOUND,
                AdminError::Invalid(_) => StatusCode::BAD_REQUEST,
                AdminError::Conflict(_) => StatusCode::CONFLICT,
                AdminError::Stale { .. } => StatusCode::PRECONDITION_FAILED,
                AdminError::Unauthenticated | AdminError::BadLogin { .. } => {
                    StatusCode::UNAUTHORIZED
                }
                AdminError::TooManyTokens { .. } => StatusCode::TOO_MANY_REQUESTS,
                AdminError::Store(StoreError::Unavailable(_)) => StatusCode::SERVICE_UNAVAILABLE,
                AdminError::Backend(e) if e.unavailable => StatusCode::SERVICE_UNAVAILABLE,
                AdminError::Store(_) | AdminError::Backend(_) => StatusCode::INTERNAL_SERVER_ERROR,
            },
        }
    }

    fn error_response(&self) -> HttpResponse {
        if let ConsoleError::LoggedOut = self {
            return see_other("/console/login");
        }
        let status = self.status_code();
        if status.is_server_error() {
            tracing::error!(error = ?self, "console request failed");
        }
        let mut response = render(
            status,
            &ErrorPage {
                status: status.as_u16(),
                message: &self.message(),
            },
        );
        let retry = match self {
            ConsoleError::TooManyLogins(seconds)
            | ConsoleError::Admin(AdminError::TooManyTokens {
                retry_after_seconds: seconds,
                ..
            }) => Some(*seconds),
            _ => None,
        };
        if let Some(seconds) = retry
            && let Ok(value) = header::HeaderValue::from_str(&seconds.to_string())
        {
            response.headers_mut().insert(header::RETRY_AFTER, value);
        }
        response
    }
}

/// No such console page.
pub async fn not_found() -> HttpResponse {
    ConsoleError::Admin(AdminError::NotFound("page".into())).error_response()
}

/// A time as the console shows it: `2026-01-31 12:34 UTC`.
pub fn when(at: time::OffsetDateTime) -> String {
    let at = at.to_offset(time::UtcOffset::UTC);
    format!(
        "{:04}-{:02}-{:02} {:02}:{:02} UTC",
        at.year(),
        u8::from(at.month()),
        at.day(),
        at.hour(),
        at.minute()
    )
}

/// A number of bytes as people read it: `512 B`, `1.5 KiB`, `20.0 MiB`, `3.2 GiB`...
pub fn size(bytes: i64) -> String {
    let mut value = bytes as f64;
    let mut unit = "B";
    for next in ["KiB", "MiB", "GiB", "TiB", "PiB", "EiB"] {
        if value.abs() < 1024.0 {
            break;
        }
        value /= 1024.0;
        unit = next;
    }
    if unit == "B" {
        format!("{bytes} B")
    } else {
        format!("{value:.1} {unit}")
    }
}
