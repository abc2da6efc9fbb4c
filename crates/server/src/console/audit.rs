//! An org's audit trail (who did what, before and after; filtered by actor, target and time),
//! the registry's record of pulls, pushes and deletes of its repositories (for its owners),
//! and "why?": per action, whether an account is granted it on a repository, and the facts
//! the decision rests on.

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use askama::Template;
use cardgate_admin::NamedEventQuery;
use cardgate_admin::api::{ActivityQuery, ExplainAnswer, Name};
use cardgate_token::Scope;
use serde::Deserialize;
use serde_json::Value;
use time::format_description::well_known::Rfc3339;
use time::{Date, OffsetDateTime, PrimitiveDateTime, Time};

use super::orgs::{org_slug, user_slug};
use super::page::{Chrome, ConsoleError, Feedback, render, when};
use super::session::{Viewer, states};

/// Events read at once.
const EVENTS: i64 = 200;

/// Lines of the registry's record shown at once.
const ACTIVITY: i64 = 100;

pub struct EventRow {
    pub at: String,
    pub actor: String,
    pub what: String,
    pub target: String,
    pub before: String,
    pub after: String,
}

#[derive(Template)]
#[template(path = "console/audit.html")]
struct AuditPage {
    chrome: Chrome,
    feedback: Feedback,
    org: String,
    actor: String,
    target: String,
    since: String,
    until: String,
    events: Vec<EventRow>,
}

#[derive(Deserialize, Default)]
pub struct AuditQuery {
    #[serde(default)]
    actor: String,
    #[serde(default)]
    target: String,
    #[serde(default)]
    since: String,
    #[serde(default)]
    until: String,
}

/// A time from a form: RFC 3339, or a date (`2026-01-31`, midnight UTC), or a date and a
/// time (`2026-01-31T12:00`, UTC); empty: none.
fn instant(field: &str, text: &str) -> Result<Option<OffsetDateTime>, ConsoleError> {
    let text = text.trim();
    if text.is_empty() {
        return Ok(None);
    }
    let refused = || {
        ConsoleError::BadRequest(format!(
            "{field}: a date (2026-01-31) or a date and time (2026-01-31T12:00), UTC"
        ))
    };
    if let Ok(at) = OffsetDateTime::parse(text, &Rfc3339) {
        return Ok(Some(at));
    }
    let (date, time) = text.split_once('T').unwrap_or((text, "00:00"));
    let date = Date::parse(
        date,
        time::macros::format_description!("[year]-[month]-[day]"),
    )
    .map_err(|_| refused())?;
    let time = Time::parse(time, time::macros::format_description!("[hour]:[minute]"))
        .map_err(|_| refused())?;
    Ok(Some(PrimitiveDateTime::new(date, time).assume_utc()))
}

/// A JSON value in one short line; `—` for none.
fn compact(value: &Value) -> String {
    if value.is_null() {
        "—".to_owned()
    } else {
        value.to_string()
    }
}

/// The org's audit trail.
pub async fn audit_page(
    req: HttpRequest,
    path: web::Path<String>,
    query: web::Query<AuditQuery>,
    viewer: Viewer,
) -> Result<HttpResponse, ConsoleError> {
    let (state, _) = states(&req)?;
    let org = path.into_inner();
    let slug = org_slug(&org)?;
    let caller = &viewer.caller;
    // Only the org's members may look at its trail at all, whatever the filter.
    state.admin.members(caller, &slug).await?;
    let mut feedback = Feedback::none();
    let filter = async {
        let name = |field: &str, text: &str| -> Result<Option<String>, ConsoleError> {
            let text = text.trim();
            if text.is_empty() {
                Ok(None)
            } else if text.contains('-')
                && text.split_once('-').is_some_and(|(kind, _)| {
                    ["org", "image", "role", "session", "user"].contains(&kind)
                })
            {
                Ok(Some(text.to_owned()))
            } else {
                Ok(Some(user_slug(field, text)?))
            }
        };
        // A repository stands for its image.
        let target = match query.target.trim() {
            repository if repository.contains('/') => {
                Some(state.admin.image_of(caller, repository).await?.slug)
            }
            other => name("target", other)?,
        };
        Ok::<_, ConsoleError>(NamedEventQuery {
            actor: name("actor", &query.actor)?,
            target,
            since: instant("since", &query.since)?,
            until: instant("until", &query.until)?,
            limit: Some(EVENTS),
        })
    }
    .await;
    let (status, events) = match filter {
        Ok(filter) => (
            StatusCode::OK,
            state.admin.org_events(caller, &slug, &filter).await?,
        ),
        Err(e) => {
            feedback = Feedback::error("audit", &["actor", "target", "since", "until"], &e);
            (StatusCode::BAD_REQUEST, Vec::new())
        }
    };
    let events = events
        .into_iter()
        .map(|event| {
            let payload = &event.card.data["payload"];
            EventRow {
                at: when(event.card.created_at),
                actor: event.actor.unwrap_or_else(|| "—".into()),
                what: event.card.base_type().to_owned(),
                target: event.target.unwrap_or_else(|| "—".into()),
                before: compact(&payload["previous"]),
                after: compact(if payload["patch"].is_null() {
                    &payload["data"]
                } else {
                    &payload["patch"]
                }),
            }
        })
        .collect();
    Ok(render(
        status,
        &AuditPage {
            chrome: Chrome::of(&viewer),
            feedback,
            org,
            actor: query.actor.clone(),
            target: query.target.clone(),
            since: query.since.clone(),
            until: query.until.clone(),
            events,
        },
    ))
}

pub struct ActivityRow {
    pub at: String,
    pub action: String,
    pub repository: String,
    pub reference: String,
    pub actor: String,
    pub address: String,
}

#[derive(Template)]
#[template(path = "console/registry.html")]
struct RegistryPage {
    chrome: Chrome,
    feedback: Feedback,
    org: String,
    repository: String,
    actor: String,
    since: String,
    until: String,
    lines: Vec<ActivityRow>,
    /// The query of the next (older) page, when this one is full.
    older: Option<String>,
}

#[derive(Deserialize, Default)]
pub struct RegistryQuery {
    #[serde(default)]
    repository: String,
    #[serde(default)]
    actor: String,
    #[serde(default)]
    since: String,
    #[serde(default)]
    until: String,
    #[serde(default)]
    before: Option<i64>,
}

/// The registry's record of pulls, pushes and deletes of the org's repositories, newest
/// first. Owners of the org (and platform admins).
pub async fn registry_page(
    req: HttpRequest,
    path: web::Path<String>,
    query: web::Query<RegistryQuery>,
    viewer: Viewer,
) -> Result<HttpResponse, ConsoleError> {
    let (state, _) = states(&req)?;
    let org = path.into_inner();
    org_slug(&org)?;
    let caller = &viewer.caller;
    let org_filter =
        Name::parse(org.as_str()).map_err(|e| ConsoleError::BadRequest(format!("org: {e}")))?;
    let filter = async {
        let repository = match query.repository.trim() {
            "" => None,
            repository => Some(super::images::repository_of(
                "repository",
                &org,
                repository,
            )?),
        };
        let actor = match query.actor.trim() {
            "" => None,
            actor => Some(
                Name::parse(actor).map_err(|e| ConsoleError::BadRequest(format!("actor: {e}")))?,
            ),
        };
        Ok::<_, ConsoleError>(ActivityQuery {
            org: Some(org_filter.clone()),
            repository,
            actor,
            since: instant("since", &query.since)?,
            until: instant("until", &query.until)?,
            before: query.before,
            limit: Some(ACTIVITY),
        })
    }
    .await;
    let listed = match filter {
        Ok(filter) => state
            .admin
            .registry_activity(caller, &filter)
            .await
            .map_err(ConsoleError::from),
        Err(refused) => {
            // Only owners see the record at all, whatever the filter: a refusal of theirs
            // comes before the filter's.
            let bare = ActivityQuery {
                org: Some(org_filter),
                limit: Some(1),
                ..ActivityQuery::default()
            };
            state.admin.registry_activity(caller, &bare).await?;
            Err(refused)
        }
    };
    let mut feedback = Feedback::none();
    let (status, lines) = match listed {
        Ok(lines) => (StatusCode::OK, lines),
        Err(e) if actix_web::ResponseError::status_code(&e) == StatusCode::BAD_REQUEST => {
            let fields = ["repository", "actor", "since", "until"];
            feedback = Feedback::error("registry", &fields, &e);
            (StatusCode::BAD_REQUEST, Vec::new())
        }
        Err(e) => return Err(e),
    };
    let older = (lines.len() == usize::try_from(ACTIVITY).unwrap_or(0))
        .then(|| lines.last().map(|line| line.id))
        .flatten()
        .map(|before| {
            form_urlencoded::Serializer::new(String::new())
                .append_pair("repository", &query.repository)
                .append_pair("actor", &query.actor)
                .append_pair("since", &query.since)
                .append_pair("until", &query.until)
                .append_pair("before", &before.to_string())
                .finish()
        });
    let lines = lines
        .into_iter()
        .map(|line| ActivityRow {
            at: when(line.at),
            action: line.action,
            repository: line.repository,
            reference: line.reference,
            actor: line.actor,
            address: line.address,
        })
        .collect();
    Ok(render(
        status,
        &RegistryPage {
            chrome: Chrome::of(&viewer),
            feedback,
            org,
            repository: query.repository.clone(),
            actor: query.actor.clone(),
            since: query.since.clone(),
            until: query.until.clone(),
            lines,
            older,
        },
    ))
}

pub struct VerdictRow {
    pub action: String,
    pub granted: bool,
    pub reasons: Vec<String>,
}

#[derive(Template)]
#[template(path = "console/why.html")]
struct WhyPage {
    chrome: Chrome,
    feedback: Feedback,
    org: String,
    account: String,
    repository: String,
    pull: bool,
    push: bool,
    delete: bool,
    actor: String,
    verdicts: Vec<VerdictRow>,
    facts: Vec<(String, String)>,
}

#[derive(Deserialize, Default)]
pub struct WhyQuery {
    #[serde(default)]
    account: String,
    #[serde(default)]
    repository: String,
    #[serde(default)]
    pull: Option<String>,
    #[serde(default)]
    push: Option<String>,
    #[serde(default)]
    delete: Option<String>,
}

/// "Why?": an account's access to a repository of the org, explained.
pub async fn why_page(
    req: HttpRequest,
    path: web::Path<String>,
    query: web::Query<WhyQuery>,
    viewer: Viewer,
) -> Result<HttpResponse, ConsoleError> {
    let (state, _) = states(&req)?;
    let org = path.into_inner();
    let slug = org_slug(&org)?;
    state.admin.members(&viewer.caller, &slug).await?;
    let actions: Vec<&str> = [
        ("pull", &query.pull),
        ("push", &query.push),
        ("delete", &query.delete),
    ]
    .into_iter()
    .filter(|(_, on)| on.is_some())
    .map(|(action, _)| action)
    .collect();
    let mut page = WhyPage {
        chrome: Chrome::of(&viewer),
        feedback: Feedback::none(),
        org: org.clone(),
        account: query.account.clone(),
        repository: if query.repository.is_empty() {
            format!("{org}/")
        } else {
            query.repository.clone()
        },
        pull: query.pull.is_some(),
        push: query.push.is_some(),
        delete: query.delete.is_some(),
        actor: String::new(),
        verdicts: Vec::new(),
        facts: Vec::new(),
    };
    if query.account.is_empty() && query.repository.is_empty() {
        return Ok(render(StatusCode::OK, &page));
    }
    let explained = async {
        if actions.is_empty() {
            return Err(ConsoleError::BadRequest(
                "actions: choose at least one".into(),
            ));
        }
        let scope: Scope = format!(
            "repository:{}:{}",
            query.repository.trim(),
            actions.join(",")
        )
        .parse()
        .map_err(|e| ConsoleError::BadRequest(format!("repository: {e}")))?;
        let account = query.account.trim();
        let explanation = state.admin.explain(&viewer.caller, account, &scope).await?;
        Ok(ExplainAnswer::new(&explanation, &scope))
    }
    .await;
    match explained {
        Ok(answer) => {
            page.actor = answer.actor;
            page.verdicts = answer
                .actions
                .into_iter()
                .map(|v| VerdictRow {
                    action: v.action,
                    granted: v.granted,
                    reasons: v.reasons,
                })
                .collect();
            if let Value::Object(facts) = answer.facts {
                page.facts = facts
                    .into_iter()
                    .map(|(key, value)| (key.replace('_', " "), compact(&value)))
                    .collect();
            }
            Ok(render(StatusCode::OK, &page))
        }
        Err(ConsoleError::LoggedOut) => Err(ConsoleError::LoggedOut),
        Err(e) => {
            page.feedback = Feedback::error("why", &["account", "repository", "actions"], &e);
            Ok(render(actix_web::ResponseError::status_code(&e), &page))
        }
    }
}
