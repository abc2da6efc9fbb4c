//! `POST /v1/registry/events`: the registry's notifications (distribution's
//! `notifications.endpoints`), authenticated by a shared secret, applied to the card store's
//! registry tables (see `cardgate_store`'s `registry` module and `docs/registry-events.md`).
//!
//! The body is bounded (`registry.max_events_bytes`, read within `server.body_timeout_seconds`
//! like every body) and the secret checked before it is parsed; an envelope that does not parse is refused whole with `400`
//! naming the field, so that nothing of it is applied. Events of actions the store does not
//! know are skipped (the registry must not retry them for ever).

use actix_web::http::StatusCode;
use actix_web::http::header::{self, HeaderValue};
use actix_web::{HttpRequest, HttpResponse, web};
use cardgate_store::{RegistryAction, RegistryEvent, RegistryTarget, Store, StoreError};
use secrecy::{ExposeSecret, SecretString};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

/// Where the registry sends its notifications.
pub const EVENTS_PATH: &str = "/v1/registry/events";

/// The most events one envelope may carry.
pub const MAX_EVENTS_PER_ENVELOPE: usize = 10_000;

/// The longest event id, tag, digest, media type, actor or address accepted.
const MAX_FIELD_CHARS: usize = 255;

/// What the endpoint needs.
pub struct RegistryEvents {
    store: Store,
    /// SHA-256 of the secret: compared in constant time whatever the length sent.
    secret: [u8; 32],
    max_bytes: usize,
}

impl std::fmt::Debug for RegistryEvents {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RegistryEvents")
            .field("max_bytes", &self.max_bytes)
            .finish_non_exhaustive()
    }
}

impl RegistryEvents {
    pub fn new(store: Store, secret: &SecretString, max_bytes: usize) -> Self {
        RegistryEvents {
            store,
            secret: Sha256::digest(secret.expose_secret().trim().as_bytes()).into(),
            max_bytes,
        }
    }

    /// Whether the request carries `Authorization: Bearer <secret>`.
    fn authenticated(&self, request: &HttpRequest) -> bool {
        let Some(sent) = request
            .headers()
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
        else {
            return false;
        };
        let sent: [u8; 32] = Sha256::digest(sent.trim().as_bytes()).into();
        bool::from(sent.ct_eq(&self.secret))
    }
}

/// How often expired reservations and old audit lines are looked for.
const UPKEEP_PERIOD: std::time::Duration = std::time::Duration::from_secs(60);

/// Every minute, for as long as the runtime runs: releases the images reserved
/// longer than `reservation` without a push (as `user-admin`, with their events) and forgets
/// audit lines older than `retention`. Several instances may run it at once: each reservation
/// is released by one of them, and pruning twice removes nothing more.
pub fn spawn_upkeep(
    store: Store,
    reservation: std::time::Duration,
    retention: std::time::Duration,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut ticks = tokio::time::interval(UPKEEP_PERIOD);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            ticks.tick().await;
            if let Err(e) = upkeep(&store, reservation, retention).await {
                tracing::warn!(error = %e, "registry upkeep failed; retried in a minute");
            }
        }
    })
}

async fn upkeep(
    store: &Store,
    reservation: std::time::Duration,
    retention: std::time::Duration,
) -> Result<(), StoreError> {
    let to_time =
        |d: std::time::Duration| time::Duration::try_from(d).unwrap_or(time::Duration::MAX);
    if let Some(admin) = store.card_by_slug(cardgate_store::ADMIN_SLUG).await? {
        store
            .release_reservations(&admin, to_time(reservation))
            .await?;
    }
    let pruned = store.prune_registry_activity(to_time(retention)).await?;
    if pruned > 0 {
        tracing::info!(
            lines = pruned,
            "registry audit lines past their retention removed"
        );
    }
    Ok(())
}

fn error(status: StatusCode, code: &str, description: &str) -> HttpResponse {
    let mut response = HttpResponse::build(status);
    response.insert_header((header::CACHE_CONTROL, "no-store"));
    if status == StatusCode::UNAUTHORIZED {
        response.insert_header((
            header::WWW_AUTHENTICATE,
            HeaderValue::from_static("Bearer realm=\"cardgate registry events\""),
        ));
    }
    response.json(json!({"error": code, "error_description": description}))
}

/// Receives one notification.
pub async fn receive(
    request: HttpRequest,
    payload: web::Payload,
    state: web::Data<RegistryEvents>,
) -> HttpResponse {
    if !state.authenticated(&request) {
        return error(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "registry notifications need `Authorization: Bearer <registry.events_secret>`",
        );
    }
    let body = match payload.to_bytes_limited(state.max_bytes).await {
        Ok(Ok(body)) => body,
        Ok(Err(_)) => {
            return error(
                StatusCode::BAD_REQUEST,
                "invalid_request",
                "the request body could not be read",
            );
        }
        Err(_) => {
            let mut response = error(
                StatusCode::PAYLOAD_TOO_LARGE,
                "invalid_request",
                &format!(
                    "the notification is larger than {} bytes (registry.max_events_bytes)",
                    state.max_bytes
                ),
            );
            response
                .head_mut()
                .set_connection_type(actix_web::http::ConnectionType::Close);
            return response;
        }
    };
    let events = match parse_envelope(&body) {
        Ok(events) => events,
        Err(problem) => {
            return error(StatusCode::BAD_REQUEST, "invalid_request", &problem);
        }
    };
    match state.store.record_registry_events(&events).await {
        Ok(recorded) => HttpResponse::Ok().json(recorded),
        Err(StoreError::Unavailable(e)) => {
            tracing::warn!(error = %e, "registry notification not recorded: database unavailable");
            error(
                StatusCode::SERVICE_UNAVAILABLE,
                "temporarily_unavailable",
                "the database is unavailable; retry later",
            )
        }
        Err(e) => {
            tracing::error!(error = ?e, "registry notification not recorded");
            error(
                StatusCode::INTERNAL_SERVER_ERROR,
                "server_error",
                "internal error",
            )
        }
    }
}

/// The events of an envelope `{"events": [...]}`, or what is wrong, naming the field.
pub fn parse_envelope(body: &[u8]) -> Result<Vec<RegistryEvent>, String> {
    let envelope: Value =
        serde_json::from_slice(body).map_err(|e| format!("body: not JSON ({e})"))?;
    let events = envelope
        .get("events")
        .ok_or("events: missing")?
        .as_array()
        .ok_or("events: not an array")?;
    if events.len() > MAX_EVENTS_PER_ENVELOPE {
        return Err(format!(
            "events: more than {MAX_EVENTS_PER_ENVELOPE} events in one notification"
        ));
    }
    let mut parsed = Vec::with_capacity(events.len());
    for (i, event) in events.iter().enumerate() {
        let parsed_event = parse_event(event).map_err(|e| match e.is_empty() {
            true => format!("events[{i}]: not an object"),
            false => format!("events[{i}].{e}"),
        })?;
        if let Some(event) = parsed_event {
            parsed.push(event);
        }
    }
    Ok(parsed)
}

/// A string field of `object` at `path` (for messages): `None` when absent or null.
fn text<'a>(object: &'a Value, key: &str, path: &str) -> Result<Option<&'a str>, String> {
    match object.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) if s.chars().count() > MAX_FIELD_CHARS => {
            Err(format!("{path}: longer than {MAX_FIELD_CHARS} characters"))
        }
        Some(Value::String(s)) if s.contains('\0') => Err(format!("{path}: holds a NUL character")),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(_) => Err(format!("{path}: not a string")),
    }
}

fn required<'a>(object: &'a Value, key: &str, path: &str) -> Result<&'a str, String> {
    match text(object, key, path)? {
        Some(s) if !s.is_empty() => Ok(s),
        _ => Err(format!("{path}: missing")),
    }
}

/// A digest `algorithm:hex`.
fn digest(target: &Value) -> Result<String, String> {
    let digest = required(target, "digest", "target.digest")?;
    let valid = digest.split_once(':').is_some_and(|(algorithm, hex)| {
        !algorithm.is_empty()
            && algorithm
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || "+._-".contains(c))
            && hex.len() >= 32
            && hex.chars().all(|c| c.is_ascii_hexdigit())
    });
    if valid {
        Ok(digest.to_owned())
    } else {
        Err("target.digest: not a digest `<algorithm>:<hex>`".to_owned())
    }
}

fn size(target: &Value) -> Result<u64, String> {
    match target.get("size").or_else(|| target.get("length")) {
        None | Some(Value::Null) => Ok(0),
        Some(v) => v
            .as_u64()
            .ok_or_else(|| "target.size: not a whole number of bytes".to_owned()),
    }
}

/// The media types of manifests (and indexes), for events that carry no URL.
fn is_manifest_type(media_type: &str) -> bool {
    media_type.contains("manifest") || media_type.ends_with("image.index.v1+json")
}

/// One event; `None` for an action the store does not record.
fn parse_event(event: &Value) -> Result<Option<RegistryEvent>, String> {
    if !event.is_object() {
        // An empty problem: the event itself is at fault.
        return Err(String::new());
    }
    let id = required(event, "id", "id")?.to_owned();
    let action = match required(event, "action", "action")? {
        "push" => RegistryAction::Push,
        "pull" => RegistryAction::Pull,
        "delete" => RegistryAction::Delete,
        "mount" => RegistryAction::Mount,
        _ => return Ok(None),
    };
    let at = required(event, "timestamp", "timestamp")?;
    let at = OffsetDateTime::parse(at, &Rfc3339)
        .map_err(|_| "timestamp: not an RFC 3339 time".to_owned())?;
    let target = event.get("target").ok_or("target: missing")?;
    if !target.is_object() {
        return Err("target: not an object".to_owned());
    }
    let repository = required(target, "repository", "target.repository")?;
    repository
        .parse::<cardgate_token::ResourceName>()
        .map_err(|e| format!("target.repository: {e}"))?;
    let tag = text(target, "tag", "target.tag")?.filter(|t| !t.is_empty());
    let media_type = text(target, "mediaType", "target.mediaType")?.unwrap_or_default();
    let url = text_unbounded(target, "url")?;
    let target = match action {
        RegistryAction::Delete => match tag {
            Some(tag) if target.get("digest").is_none_or(Value::is_null) => RegistryTarget::Tag {
                tag: tag.to_owned(),
            },
            _ => RegistryTarget::Digest {
                digest: digest(target)?,
            },
        },
        _ => {
            let manifest = match url {
                Some(url) if url.contains("/manifests/") => true,
                Some(url) if url.contains("/blobs/") => false,
                _ => is_manifest_type(media_type),
            };
            if manifest && action != RegistryAction::Mount {
                RegistryTarget::Manifest {
                    digest: digest(target)?,
                    size: size(target)?,
                    media_type: media_type.to_owned(),
                    tag: tag.map(str::to_owned),
                }
            } else {
                RegistryTarget::Blob {
                    digest: digest(target)?,
                    size: size(target)?,
                }
            }
        }
    };
    let actor = match event.get("actor") {
        None | Some(Value::Null) => None,
        Some(actor) if actor.is_object() => text(actor, "name", "actor.name")?,
        Some(_) => return Err("actor: not an object".to_owned()),
    };
    let address = match event.get("request") {
        None | Some(Value::Null) => None,
        Some(request) if request.is_object() => text(request, "addr", "request.addr")?,
        Some(_) => return Err("request: not an object".to_owned()),
    };
    Ok(Some(RegistryEvent {
        id,
        at,
        action,
        repository: repository.to_owned(),
        target,
        actor: actor.unwrap_or_default().to_owned(),
        address: address.unwrap_or_default().to_owned(),
    }))
}

/// `target.url`: only looked at, never stored, so any length will do.
fn text_unbounded<'a>(target: &'a Value, key: &str) -> Result<Option<&'a str>, String> {
    match target.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(_) => Err(format!("target.{key}: not a string")),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    fn envelope(events: Value) -> Vec<u8> {
        serde_json::to_vec(&json!({ "events": events })).unwrap()
    }

    #[test]
    fn a_manifest_push_by_tag_is_read_with_its_tag_digest_size_and_pusher() {
        let events = parse_envelope(&envelope(json!([{
            "id": "e1", "timestamp": "2026-01-02T03:04:05.123456789Z", "action": "push",
            "target": {"mediaType": "application/vnd.oci.image.manifest.v1+json", "size": 528,
                       "digest": format!("sha256:{}", "a".repeat(64)), "length": 528,
                       "repository": "acme/web", "tag": "v1",
                       "url": "http://r/v2/acme/web/manifests/sha256:aa"},
            "request": {"addr": "10.0.0.1:1234"}, "actor": {"name": "bob"}
        }])))
        .unwrap();
        assert_eq!(events.len(), 1);
        assert_eq!(events[0].actor, "bob");
        assert_eq!(
            events[0].target,
            RegistryTarget::Manifest {
                digest: format!("sha256:{}", "a".repeat(64)),
                size: 528,
                media_type: "application/vnd.oci.image.manifest.v1+json".into(),
                tag: Some("v1".into()),
            }
        );
    }

    #[test]
    fn malformed_events_are_refused_naming_the_field() {
        let cases = [
            (json!([{"action": "push"}]), "events[0].id: missing"),
            (
                json!([{"id": "x", "action": "pull", "timestamp": "yesterday"}]),
                "events[0].timestamp: not an RFC 3339 time",
            ),
            (
                json!([{"id": "x", "action": "pull", "timestamp": "2026-01-02T03:04:05Z",
                        "target": {"repository": "Acme/Web", "digest": "sha256:00"}}]),
                "events[0].target.repository",
            ),
            (
                json!([{"id": "x", "action": "pull", "timestamp": "2026-01-02T03:04:05Z",
                        "target": {"repository": "acme/web", "digest": "nope",
                                   "mediaType": "application/vnd.oci.image.manifest.v1+json"}}]),
                "events[0].target.digest",
            ),
        ];
        for (events, expected) in cases {
            let error = parse_envelope(&envelope(events)).unwrap_err();
            assert!(error.starts_with(expected), "{error} (expected {expected})");
        }
        assert_eq!(parse_envelope(b"{}").unwrap_err(), "events: missing");
    }

    #[test]
    fn unknown_actions_are_skipped_not_refused() {
        let events = parse_envelope(&envelope(json!([{"id": "x", "action": "rename"}]))).unwrap();
        assert!(events.is_empty());
    }
}
