//! Request limits the handlers do not see: the size of the request head, the requests in
//! progress per client address, the time and size of the body, and JSON bodies for the errors
//! actix-web answers by itself (an oversized or unreadable body, a bad query).
//!
//! Why a body needs a deadline: actix-web times out a request head (`client_request_timeout`,
//! 5 s) but never a body, so a connection that sends its body a byte at a time was held for as
//! long as the client liked. A few hundred such connections from one client held as many file
//! descriptors; once the process ran out of them (1024 by default on many systems) the server
//! accepted no connection at all. Now every body must arrive within
//! `server.body_timeout_seconds`, and one client address has at most
//! `server.max_requests_per_address` requests in progress: more are answered 429 at once and
//! their connection closed, so one client can never hold more than that.

use std::collections::HashMap;
use std::collections::hash_map::Entry;
use std::net::IpAddr;
use std::pin::Pin;
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll};
use std::time::Duration;

use actix_web::body::{self, BodySize, BodyStream, BoxBody, EitherBody, MessageBody};
use actix_web::dev::{self, ServiceRequest, ServiceResponse};
use actix_web::http::header::{self, HeaderValue};
use actix_web::middleware::{ErrorHandlerResponse, ErrorHandlers, Next};
use actix_web::web::Bytes;
use actix_web::{HttpMessage, HttpResponse, ResponseError, web};
use serde_json::json;

use crate::error::TokenError;
use crate::settings::Settings;
use crate::throttle::{Throttle, address_key};
use crate::token::{MAX_FORM_BYTES, declares_more_than};

/// The largest request body any route takes (the OAuth2 form, admin JSON bodies).
pub const MAX_BODY_BYTES: usize = MAX_FORM_BYTES;

/// The limits, as app data (one for all workers).
#[derive(Debug, Clone)]
pub struct Limits {
    /// The most bytes of request target plus header names and values.
    pub max_header_bytes: usize,
    /// How long a request body may take to arrive, from the end of its head.
    pub body_timeout: Duration,
    /// Requests in progress from one client address at most.
    pub max_requests_per_address: u32,
    in_progress: Arc<InProgress>,
    /// Tells the client address (behind trusted proxies too).
    throttle: Arc<Throttle>,
    /// The largest body of the registry's notifications (the one route taking more than
    /// [`MAX_BODY_BYTES`]).
    max_events_bytes: usize,
}

impl Limits {
    /// The limits of `settings` (whose ranges [`Settings::validate`] checked: none is too small
    /// to serve real clients).
    pub fn from_settings(settings: &Settings, throttle: Arc<Throttle>) -> Self {
        let server = &settings.server;
        Limits {
            max_header_bytes: server.max_header_bytes,
            body_timeout: Duration::from_secs(server.body_timeout_seconds),
            max_requests_per_address: server.max_requests_per_address,
            max_events_bytes: settings.registry.max_events_bytes.max(MAX_BODY_BYTES),
            in_progress: Arc::default(),
            throttle,
        }
    }
}

/// The requests in progress, by client address (as the throttle keys them: IPv6 by /64).
/// Holds only addresses with requests in progress.
#[derive(Debug, Default)]
struct InProgress(Mutex<HashMap<IpAddr, u32>>);

/// A request counted against its client address until dropped.
#[derive(Debug)]
struct Slot {
    in_progress: Arc<InProgress>,
    address: IpAddr,
}

impl InProgress {
    /// Counts a request from `address`, unless it has `limit` in progress already.
    fn enter(self: &Arc<Self>, address: IpAddr, limit: u32) -> Option<Slot> {
        let mut counts = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        let count = counts.entry(address).or_insert(0);
        if *count >= limit {
            return None;
        }
        *count += 1;
        Some(Slot {
            in_progress: self.clone(),
            address,
        })
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut counts = self
            .in_progress
            .0
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if let Entry::Occupied(mut count) = counts.entry(self.address) {
            *count.get_mut() = count.get().saturating_sub(1);
            if *count.get() == 0 {
                count.remove();
            }
        }
    }
}

/// An answer given before the request body was read to its end. It holds the unread body
/// until it is written, so that actix-web closes the connection after it rather than reading
/// (draining) the rest of a body that may never end.
pub struct Unread {
    answer: BoxBody,
    _body: dev::Payload,
}

impl std::fmt::Debug for Unread {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Unread").finish_non_exhaustive()
    }
}

impl MessageBody for Unread {
    type Error = <BoxBody as MessageBody>::Error;

    fn size(&self) -> BodySize {
        self.answer.size()
    }

    fn poll_next(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Bytes, Self::Error>>> {
        Pin::new(&mut self.get_mut().answer).poll_next(cx)
    }
}

/// Answers `error` to `req` without reading the rest of its `body`.
fn refuse<B>(
    req: ServiceRequest,
    body: dev::Payload,
    error: &TokenError,
) -> ServiceResponse<EitherBody<B, Unread>> {
    let answer = error.error_response().map_body(|_, answer| Unread {
        answer,
        _body: body,
    });
    let (request, _) = req.into_parts();
    ServiceResponse::new(request, answer).map_into_right_body()
}

/// Reads the whole body, at most [`MAX_BODY_BYTES`], within `deadline`.
async fn read_body(
    body: &mut dev::Payload,
    deadline: Duration,
    limit: usize,
) -> Result<Bytes, TokenError> {
    let read = body::to_bytes_limited(BodyStream::new(body), limit);
    match actix_web::rt::time::timeout(deadline, read).await {
        Ok(Ok(Ok(bytes))) => Ok(bytes),
        Ok(Ok(Err(e))) => Err(TokenError::BadRequest(format!(
            "cannot read the request body: {e}"
        ))),
        Ok(Err(_)) => Err(TokenError::PayloadTooLarge(limit)),
        Err(_) => Err(TokenError::BodyTimeout(deadline.as_secs())),
    }
}

/// Counts the request against its client address (429 beyond
/// [`Limits::max_requests_per_address`]), then reads its whole body within
/// [`Limits::body_timeout`] (408 when it is late, 413 when it is larger than
/// [`MAX_BODY_BYTES`], or than `registry.max_events_bytes` for the registry's notifications)
/// before any handler runs; the handlers read the body so buffered.
pub async fn bound_requests(
    mut req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<EitherBody<impl MessageBody, Unread>>, actix_web::Error> {
    let Some(limits) = req.app_data::<web::Data<Limits>>().cloned() else {
        return next
            .call(req)
            .await
            .map(ServiceResponse::map_into_left_body);
    };
    let mut body = req.take_payload();
    let address = address_key(limits.throttle.client_address(req.request()));
    let Some(_slot) = limits
        .in_progress
        .enter(address, limits.max_requests_per_address)
    else {
        tracing::warn!(%address, "request refused: too many in progress from its address");
        let error = TokenError::TooManyInProgress(limits.max_requests_per_address);
        return Ok(refuse(req, body, &error));
    };
    let limit = if req.path() == crate::registry_events::EVENTS_PATH {
        limits.max_events_bytes
    } else {
        MAX_BODY_BYTES
    };
    if declares_more_than(req.headers(), limit) {
        return Ok(refuse(req, body, &TokenError::PayloadTooLarge(limit)));
    }
    match read_body(&mut body, limits.body_timeout, limit).await {
        Ok(bytes) => {
            req.set_payload(dev::Payload::from(bytes));
            next.call(req)
                .await
                .map(ServiceResponse::map_into_left_body)
        }
        Err(error) => {
            if let TokenError::BodyTimeout(_) = error {
                tracing::warn!(%address, "request refused: its body came too slowly");
            }
            Ok(refuse(req, body, &error))
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
            .is_some_and(|v| v.starts_with("application/json") || v.starts_with("text/html"));
        // The console's error pages are HTML, and stay so.
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
