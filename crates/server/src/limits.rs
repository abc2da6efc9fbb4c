//! Request limits the handlers do not see: the size of the request head, and JSON bodies for
//! the errors actix-web answers by itself (an oversized or unreadable body, a bad query).

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header::{self, HeaderValue};
use actix_web::middleware::{ErrorHandlerResponse, ErrorHandlers, Next};
use actix_web::{HttpResponse, web};
use serde_json::json;

use crate::error::TokenError;
use crate::settings::Settings;

/// The limits, as app data.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// The most bytes of request target plus header names and values.
    pub max_header_bytes: usize,
}

impl Limits {
    /// The limits of `settings` (whose ranges [`Settings::validate`] checked: none is too small
    /// to serve real clients).
    pub fn from_settings(settings: &Settings) -> Self {
        Limits {
            max_header_bytes: settings.server.max_header_bytes,
        }
    }
}

/// The size of a request head as counted against [`Limits::max_header_bytes`]: the request
/// target, and every header's name and value.
fn head_bytes(req: &ServiceRequest) -> usize {
    let target = req.uri().path_and_query().map_or(0, |p| p.as_str().len());
    req.headers()
        .iter()
        .map(|(name, value)| name.as_str().len() + value.len())
        .fold(target, usize::saturating_add)
}

/// Answers `431` with a JSON error when the request head is over the limit. (Over 128 KiB or
/// 96 headers, actix-web answers `431` itself, with an empty body, and closes the connection.)
pub async fn limit_headers(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    if let Some(limits) = req.app_data::<web::Data<Limits>>()
        && head_bytes(&req) > limits.max_header_bytes
    {
        return Err(TokenError::HeadersTooLarge(limits.max_header_bytes).into());
    }
    next.call(req).await
}

/// Gives every error answer that is not JSON already (those actix-web makes itself) a JSON
/// body: `invalid_request` with actix-web's reason for 4xx, an opaque `server_error` for 5xx.
pub fn json_errors<B: 'static>() -> ErrorHandlers<B> {
    ErrorHandlers::new().default_handler(|response: ServiceResponse<B>| {
        let is_json = response
            .response()
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.starts_with("application/json"));
        if is_json {
            return Ok(ErrorHandlerResponse::Response(
                response.map_into_left_body(),
            ));
        }
        let status = response.status();
        let (code, description) = if status.is_server_error() {
            (
                "server_error",
                "the server could not complete the request".to_owned(),
            )
        } else {
            let reason = response
                .response()
                .error()
                .map(ToString::to_string)
                .unwrap_or_else(|| status.canonical_reason().unwrap_or("error").to_owned());
            ("invalid_request", reason)
        };
        let (request, old) = response.into_parts();
        let mut answer = HttpResponse::build(status);
        for name in [header::WWW_AUTHENTICATE, header::ALLOW, header::RETRY_AFTER] {
            if let Some(value) = old.headers().get(&name) {
                answer.insert_header((name, value.clone()));
            }
        }
        answer.insert_header((header::CACHE_CONTROL, HeaderValue::from_static("no-store")));
        let answer = answer.json(json!({"error": code, "error_description": description}));
        Ok(ErrorHandlerResponse::Response(
            ServiceResponse::new(request, answer).map_into_right_body(),
        ))
    })
}
