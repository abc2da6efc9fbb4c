//! What the admin handlers take, each parsed here once: the [`Caller`], a [`Json`] body, a
//! [`Query`], the [`Revision`] an update is meant for, and the names in the path.
//!
//! Whatever a handler's arguments, their errors come in one order: a malformed path or query
//! (400), a body over the bound (413), no valid session (401), a missing `If-Match` (400), a
//! malformed body (400). Path and query parse at once; the body is read before the caller is
//! resolved, and parsed only after the caller and the revision are known.

use std::future::{Future, Ready, ready};
use std::ops::Deref;
use std::pin::Pin;

use actix_web::dev::Payload;
use actix_web::http::header::{self, HeaderValue};
use actix_web::{FromRequest, HttpMessage, HttpRequest, web};
use cardgate_admin::api::Name;
use cardgate_store::Slug;
use serde::de::DeserializeOwned;
use tokio::sync::watch;
use uuid::Uuid;

use super::AdminState;
use super::error::ApiError;
use crate::input::check_json_depth;

type Extraction<T> = Pin<Box<dyn Future<Output = Result<T, actix_web::Error>>>>;

/// How far a request's extraction has come.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Step {
    Start,
    BodyRead,
    Authenticated,
    Preconditioned,
    /// The body is parsed last.
    Parsed,
}

/// The steps the handler's extractors take, and how far they have come: each waits for the
/// steps before its own that the handler takes.
#[derive(Debug, Clone)]
struct Progress {
    taken: Vec<Step>,
    step: watch::Sender<Step>,
}

impl Progress {
    /// Notes, while the handler's extractors are created, that one of them takes `step`.
    fn takes(req: &HttpRequest, step: Step) {
        let mut extensions = req.extensions_mut();
        if extensions.get::<Progress>().is_none() {
            extensions.insert(Progress {
                taken: Vec::new(),
                step: watch::channel(Step::Start).0,
            });
        }
        if let Some(progress) = extensions.get_mut::<Progress>() {
            progress.taken.push(step);
        }
    }

    fn of(req: &HttpRequest) -> Option<Progress> {
        req.extensions().get::<Progress>().cloned()
    }

    /// Waits until extraction has come to the last step before `step` that the handler takes.
    async fn wait_before(req: &HttpRequest, step: Step) {
        let Some(progress) = Progress::of(req) else {
            return;
        };
        let needed = progress.taken.iter().filter(|s| **s < step).max();
        if let Some(needed) = needed {
            // The sender lives as long as the request: waiting ends at the step.
            let _ = progress.step.subscribe().wait_for(|s| s >= needed).await;
        }
    }

    fn reached(req: &HttpRequest, step: Step) {
        if let Some(progress) = Progress::of(req) {
            progress.step.send_modify(|s| *s = (*s).max(step));
        }
    }
}

/// The extraction `work` as the step `step`: begun once the steps before it that the handler
/// takes are done, and done when it succeeds.
fn at_step<T: 'static, F: Future<Output = Result<T, ApiError>> + 'static>(
    req: &HttpRequest,
    step: Step,
    work: impl FnOnce(HttpRequest) -> F + 'static,
) -> Extraction<T> {
    Progress::takes(req, step);
    let req = req.clone();
    Box::pin(async move {
        Progress::wait_before(&req, step).await;
        let done = work(req.clone()).await?;
        Progress::reached(&req, step);
        Ok(done)
    })
}

/// Reads `Authorization: Bearer <session id>.<secret>` (scheme in any case): the session id,
/// and the whole token. `None` when the header is not of that form.
pub fn bearer_session(value: &HeaderValue) -> Option<(Uuid, &str)> {
    let (scheme, token) = value.to_str().ok()?.split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("bearer") {
        return None;
    }
    let token = token.trim();
    let (id, _) = token.split_once('.')?;
    Some((Uuid::parse_str(id).ok()?, token))
}

/// The caller behind `Authorization: Bearer <session id>.<secret>`, as `cardgate-admin`
/// resolves it: only a login session of an active user is an admin credential.
pub struct Caller(cardgate_admin::Caller);

impl Deref for Caller {
    type Target = cardgate_admin::Caller;
    fn deref(&self) -> &cardgate_admin::Caller {
        &self.0
    }
}

impl FromRequest for Caller {
    type Error = actix_web::Error;
    type Future = Extraction<Self>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        at_step(req, Step::Authenticated, |req| async move {
            let (session, token) = req
                .headers()
                .get(header::AUTHORIZATION)
                .and_then(bearer_session)
                .ok_or(ApiError::Unauthorized)?;
            let state = req
                .app_data::<web::Data<AdminState>>()
                .ok_or(ApiError::Unconfigured)?;
            Ok(Caller(state.admin.session_caller(session, token).await?))
        })
    }
}

/// The revision an update names in `If-Match` (required: no blind overwrites).
pub struct Revision(pub i64);

impl FromRequest for Revision {
    type Error = actix_web::Error;
    type Future = Extraction<Self>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        at_step(req, Step::Preconditioned, |req| async move {
            req.headers()
                .get(header::IF_MATCH)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| {
                    v.trim()
                        .trim_start_matches("W/")
                        .trim_matches('"')
                        .parse()
                        .ok()
                })
                .map(Revision)
                .ok_or_else(|| {
                    ApiError::BadRequest(
                        "If-Match: the card's revision (its ETag) is required".into(),
                    )
                })
        })
    }
}

/// A JSON body; malformed ones are 400 naming the field (or the body, when it is not JSON),
/// and so are those nested deeper than [`crate::input::MAX_JSON_DEPTH`].
pub struct Json<T>(pub T);

/// A JSON body that may be left out: then `T::default()`.
pub struct JsonOrDefault<T>(pub T);

impl<T: DeserializeOwned + 'static> FromRequest for Json<T> {
    type Error = actix_web::Error;
    type Future = Extraction<Self>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        json_body(req, payload, |bytes| parse(bytes).map(Json))
    }
}

impl<T: DeserializeOwned + Default + 'static> FromRequest for JsonOrDefault<T> {
    type Error = actix_web::Error;
    type Future = Extraction<Self>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        json_body(req, payload, |bytes| {
            if bytes.is_empty() {
                Ok(JsonOrDefault(T::default()))
            } else {
                parse(bytes).map(JsonOrDefault)
            }
        })
    }
}

/// Reads the body at once (over the bound: 413), and parses it with `parse` once the caller
/// and the revision, when the handler takes them, are known.
fn json_body<B: 'static>(
    req: &HttpRequest,
    payload: &mut Payload,
    parse: impl FnOnce(&[u8]) -> Result<B, ApiError> + 'static,
) -> Extraction<B> {
    Progress::takes(req, Step::BodyRead);
    let read = web::Bytes::from_request(req, payload);
    let req = req.clone();
    Box::pin(async move {
        let bytes = read.await?;
        Progress::reached(&req, Step::BodyRead);
        Progress::wait_before(&req, Step::Parsed).await;
        Ok(parse(&bytes)?)
    })
}

/// Parses a JSON body: 400 naming the field, or the body when it is not JSON.
fn parse<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    check_json_depth(bytes).map_err(|e| ApiError::BadRequest(e.to_string()))?;
    let deserializer = &mut serde_json::Deserializer::from_slice(bytes);
    serde_path_to_error::deserialize(deserializer).map_err(|e| misnamed(&e, "body"))
}

/// A 400 naming the field of a deserialisation error (`whole` when it is about the whole).
fn misnamed<E: std::fmt::Display>(e: &serde_path_to_error::Error<E>, whole: &str) -> ApiError {
    let path = e.path().to_string();
    let field = if path == "." { whole } else { &path };
    ApiError::BadRequest(format!("{field}: {}", e.inner()))
}

/// A query string's parameters; malformed ones are 400 naming the parameter.
pub struct Query<T>(pub T);

impl<T: DeserializeOwned> FromRequest for Query<T> {
    type Error = ApiError;
    type Future = Ready<Result<Self, ApiError>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let parameters = form_urlencoded::parse(req.query_string().as_bytes());
        let deserializer = serde_urlencoded::Deserializer::new(parameters);
        ready(
            serde_path_to_error::deserialize(deserializer)
                .map(Query)
                .map_err(|e| misnamed(&e, "query")),
        )
    }
}

/// A path segment naming a card (`{user}`, `{org}`, `{role}`): a [`Name`], else 400 naming
/// the segment.
pub fn segment(field: &str, value: String) -> Result<Name, ApiError> {
    Name::parse(value).map_err(|e| ApiError::BadRequest(format!("{field}: {e}")))
}

/// The slug of the user named in the path.
pub fn user_segment(value: String) -> Result<String, ApiError> {
    Ok(cardgate_authz_cards::user_slug(
        segment("user", value)?.as_str(),
    ))
}

/// The slug of the org named in the path.
pub fn org_segment(value: String) -> Result<String, ApiError> {
    Ok(Slug::org(segment("org", value)?.as_str()).into())
}
