//! The one place where errors become HTTP answers. 5xx bodies are opaque; their causes go to
//! the log.

use std::fmt;

use actix_web::http::StatusCode;
use actix_web::http::header::{self, HeaderValue};
use actix_web::{HttpResponse, ResponseError};
use cardgate_authz::PluginError;
use serde_json::json;

/// Why a token request failed.
#[derive(thiserror::Error)]
pub enum TokenError {
    /// The request is malformed; the message says what is wrong and is shown to the client.
    #[error("{0}")]
    BadRequest(String),
    /// Authentication failed.
    #[error("invalid credentials")]
    Unauthorized,
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
            TokenError::BadRequest(_) => "invalid_request",
            TokenError::Unauthorized => "invalid_client",
            TokenError::Backend(e) if e.unavailable => "temporarily_unavailable",
            TokenError::Backend(_) | TokenError::Internal(_) => "server_error",
        }
    }
}

impl ResponseError for TokenError {
    fn status_code(&self) -> StatusCode {
        match self {
            TokenError::BadRequest(_) => StatusCode::BAD_REQUEST,
            TokenError::Unauthorized => StatusCode::UNAUTHORIZED,
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
        let registry_code = match status {
            StatusCode::BAD_REQUEST => "UNSUPPORTED",
            StatusCode::UNAUTHORIZED => "UNAUTHORIZED",
            StatusCode::SERVICE_UNAVAILABLE => "UNAVAILABLE",
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
        // OAuth2 clients read `error`/`error_description`; registry clients read `errors`.
        response.json(json!({
            "error": self.code(),
            "error_description": message,
            "errors": [{"code": registry_code, "message": message}],
        }))
    }
}
