//! The one place where errors become HTTP answers. 5xx bodies are opaque; their causes go to
//! the log.

use std::fmt;

use actix_web::http::StatusCode;
use actix_web::http::header::{self, HeaderValue};
use actix_web::{HttpResponse, ResponseError};
use cardgate_authz::PluginError;
use serde_json::json;

use crate::input::NameError;

/// Why a token request failed.
#[derive(thiserror::Error)]
pub enum TokenError {
    /// The request is malformed; the message says what is wrong and is shown to the client.
    #[error("{0}")]
    BadRequest(String),
    /// Authentication failed.
    #[error("invalid credentials")]
    Unauthorized,
    /// A login's user name is malformed: a malformed request, also counted as a failed login
    /// of `username` (never shown).
    #[error("{field}: {problem}")]
    MalformedUserName {
        field: &'static str,
        username: String,
        problem: NameError,
    },
    /// OAuth2: the password, or the refresh token, is not valid (`invalid_grant`). The message
    /// is shown to the client and never says which check failed.
    #[error("{0}")]
    InvalidGrant(&'static str),
    /// OAuth2: a `grant_type` other than `password` and `refresh_token`.
    #[error("unsupported grant_type `{0}`: use `password` or `refresh_token`")]
    UnsupportedGrantType(String),
    /// The request body is larger than the limit, in bytes.
    #[error("the request body is larger than {0} bytes")]
    PayloadTooLarge(usize),
    /// The request line and headers together are larger than the limit, in bytes.
    #[error("the request line and headers are larger than {0} bytes")]
    HeadersTooLarge(usize),
    /// The request body did not arrive within the deadline, in seconds.
    #[error("the request body did not arrive within {0} seconds")]
    BodyTimeout(u64),
    /// The client's address has this many requests in progress already.
    #[error("too many requests in progress from this address (at most {0})")]
    TooManyInProgress(u32),
    /// Too many failed logins for the account or from the address; retry after the seconds.
    #[error("too many failed logins: try again later")]
    TooManyRequests(u64),
    /// A backend failed; nothing was decided.
    #[error("an authorization backend failed")]
    Backend(#[source] PluginError),
    /// Anything else that should not happen.
    #[error("internal error")]
    Internal(#[source] Box<dyn std::error::Error + Send + Sync>),
}

impl fmt::Debug for TokenError {
    /// Shows the whole cause chain, for the log.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{self}")?;
        let mut source = std::error::Error::source(self);
        while let Some(cause) = source {
            write!(f, ": {cause}")?;
            source = cause.source();
        }
        Ok(())
    }
}

impl TokenError {
    fn code(&self) -> &'static str {
        match self {
            TokenError::BadRequest(_)
            | TokenError::MalformedUserName { .. }
            | TokenError::PayloadTooLarge(_)
            | TokenError::HeadersTooLarge(_)
            | TokenError::BodyTimeout(_) => "invalid_request",
            TokenError::Unauthorized => "invalid_client",
            TokenError::InvalidGrant(_) => "invalid_grant",
            TokenError::UnsupportedGrantType(_) => "unsupported_grant_type",
            TokenError::TooManyRequests(_) | TokenError::TooManyInProgress(_) => {
                "too_many_requests"
            }
            TokenError::Backend(e) if e.unavailable => "temporarily_unavailable",
            TokenError::Backend(_) | TokenError::Internal(_) => "server_error",
        }
    }
}

impl ResponseError for TokenError {
    fn status_code(&self) -> StatusCode {
        match self {
            TokenError::BadRequest(_)
            | TokenError::MalformedUserName { .. }
            | TokenError::InvalidGrant(_)
            | TokenError::UnsupportedGrantType(_) => StatusCode::BAD_REQUEST,
            TokenError::PayloadTooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            TokenError::HeadersTooLarge(_) => StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
            TokenError::Unauthorized => StatusCode::UNAUTHORIZED,
            TokenError::BodyTimeout(_) => StatusCode::REQUEST_TIMEOUT,
            TokenError::TooManyRequests(_) | TokenError::TooManyInProgress(_) => {
                StatusCode::TOO_MANY_REQUESTS
            }
            TokenError::Backend(e) if e.unavailable => StatusCode::SERVICE_UNAVAILABLE,
            TokenError::Backend(_) | TokenError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn error_response(&self) -> HttpResponse {
        let status = self.status_code();
        if status.is_server_error() {
            tracing::error!(error = ?self, "token request failed");
        }
        let message = self.to_string();
        let registry_code = match (self, status) {
            (TokenError::InvalidGrant(_), _) | (_, StatusCode::UNAUTHORIZED) => "UNAUTHORIZED",
            (_, StatusCode::BAD_REQUEST) => "UNSUPPORTED",
            (_, StatusCode::PAYLOAD_TOO_LARGE | StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE) => {
                "SIZE_INVALID"
            }
            (_, StatusCode::SERVICE_UNAVAILABLE) => "UNAVAILABLE",
            (_, StatusCode::TOO_MANY_REQUESTS) => "TOOMANYREQUESTS",
            _ => "UNKNOWN",
        };
        let mut response = HttpResponse::build(status);
        response.insert_header((header::CACHE_CONTROL, "no-store"));
        if status == StatusCode::UNAUTHORIZED {
            response.insert_header((
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Basic realm=\"cardgate\", charset=\"UTF-8\""),
            ));
        }
        match self {
            TokenError::TooManyRequests(seconds) => {
                response.insert_header((header::RETRY_AFTER, seconds.to_string()));
            }
            // Answered before the body is read: the connection cannot carry another request.
            TokenError::TooManyInProgress(_) => {
                response.insert_header((header::RETRY_AFTER, "1"));
                response.force_close();
            }
            TokenError::BodyTimeout(_) | TokenError::PayloadTooLarge(_) => {
                response.force_close();
            }
            _ => {}
        }
        // OAuth2 clients read `error`/`error_description`; registry clients read `errors`.
        response.json(json!({
            "error": self.code(),
            "error_description": message,
            "errors": [{"code": registry_code, "message": message}],
        }))
    }
}
