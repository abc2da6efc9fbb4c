//! Why an admin request failed, and the one place that maps it to a status; 5xx bodies are
//! opaque, their cause goes to the log.

use actix_web::http::StatusCode;
use actix_web::http::header::{self, HeaderValue};
use actix_web::{HttpResponse, ResponseError};
use cardgate_admin::AdminError;
use cardgate_admin::api::ErrorBody;
use cardgate_store::StoreError;

/// Why an admin request failed.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("{0}")]
    BadRequest(String),
    #[error("a valid `Authorization: Bearer <session token>` is required")]
    Unauthorized,
    #[error("invalid username or password")]
    BadLogin,
    /// Too many failed logins; retry after the seconds.
    #[error("too many failed logins: try again later")]
    TooManyRequests(u64),
    #[error(transparent)]
    Admin(AdminError),
    /// A handler runs without the admin state (a mistake in routing, not in the request).
    #[error("the admin state is not configured")]
    Unconfigured,
}

impl From<AdminError> for ApiError {
    fn from(e: AdminError) -> Self {
        match e {
            AdminError::Unauthenticated => ApiError::Unauthorized,
            AdminError::BadLogin { .. } => ApiError::BadLogin,
            other => ApiError::Admin(other),
        }
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        AdminError::from(e).into()
    }
}

pub type ApiResult = Result<HttpResponse, ApiError>;

impl ApiError {
    fn code(&self) -> &'static str {
        match self {
            ApiError::BadRequest(_) | ApiError::Admin(AdminError::Invalid(_)) => "invalid_request",
            ApiError::Unauthorized
            | ApiError::BadLogin
            | ApiError::Admin(AdminError::Unauthenticated | AdminError::BadLogin { .. }) => {
                "unauthorized"
            }
            ApiError::TooManyRequests(_) | ApiError::Admin(AdminError::TooManyTokens { .. }) => {
                "too_many_requests"
            }
            ApiError::Admin(AdminError::Forbidden(_)) => "forbidden",
            ApiError::Admin(AdminError::NotFound(_)) => "not_found",
            ApiError::Admin(AdminError::Conflict(_)) => "conflict",
            ApiError::Admin(AdminError::Stale { .. }) => "precondition_failed",
            ApiError::Admin(AdminError::Store(StoreError::Unavailable(_))) => {
                "temporarily_unavailable"
            }
            ApiError::Admin(AdminError::Backend(e)) if e.unavailable => "temporarily_unavailable",
            ApiError::Admin(AdminError::Store(_) | AdminError::Backend(_))
            | ApiError::Unconfigured => "server_error",
        }
    }
}

/// What a server error tells the client: its code, nothing of its cause.
pub const OPAQUE: &str = "the server could not complete the request";

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        match self.code() {
            "invalid_request" => StatusCode::BAD_REQUEST,
            "unauthorized" => StatusCode::UNAUTHORIZED,
            "forbidden" => StatusCode::FORBIDDEN,
            "not_found" => StatusCode::NOT_FOUND,
            "conflict" => StatusCode::CONFLICT,
            "precondition_failed" => StatusCode::PRECONDITION_FAILED,
            "temporarily_unavailable" => StatusCode::SERVICE_UNAVAILABLE,
            "too_many_requests" => StatusCode::TOO_MANY_REQUESTS,
            _ => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn error_response(&self) -> HttpResponse {
        let status = self.status_code();
        let description = if status.is_server_error() {
            tracing::error!(error = ?self, "admin request failed");
            OPAQUE.to_owned()
        } else {
            self.to_string()
        };
        let mut response = HttpResponse::build(status);
        if status == StatusCode::UNAUTHORIZED {
            response.insert_header((header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer")));
        }
        if let ApiError::TooManyRequests(seconds)
        | ApiError::Admin(AdminError::TooManyTokens {
            retry_after_seconds: seconds,
            ..
        }) = self
        {
            response.insert_header((header::RETRY_AFTER, seconds.to_string()));
        }
        response.json(ErrorBody {
            error: self.code().into(),
            error_description: description,
        })
    }
}
