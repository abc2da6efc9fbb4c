//! The admin API's rough edges over HTTP: a new user's default roles and the refusal of roles
//! that are not roles, listings a page at a time with a cursor, an org's images by name,
//! events by the slugs they show, and an OpenAPI document whose bounds are the service's.

use cardgate_admin::{
    MAX_ACCOUNT_NAME_LEN, MAX_PAGE, MAX_ROLES, MAX_TOKEN_SECONDS, MIN_PAGE, MIN_PASSWORD_CHARS,
    MIN_TOKEN_SECONDS, api::MAX_QUOTA_BYTES,
};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::Sent;
use crate::admin::Api;
use crate::cards::{access, token};
use crate::description;

/// The slugs of the cards of a listing's answer.
fn slugs(body: &Value) -> Vec<String> {
    body["cards"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["slug"].as_str().unwrap().to_owned())
        .collect()
}

/// The repositories of the images of a listing's answer, sorted.
fn repositories(body: &Value) -> Vec<String> {
    let mut names: Vec<String> = body["cards"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["data"]["repository"].as_str().unwrap().to_owned())
        .collect();
    names.sort();
    names
}

/// Checks a `400` whose description starts with `field`.
fn refused_naming(status: StatusCode, answer: &Value, field: &str, what: &str) {
    assert_eq!(status, StatusCode::BAD_REQUEST, "{what}: {answer}");
    assert_eq!(answer["error"], "invalid_request", "{what}");
    assert!(description(answer).starts_with(field), "{what}: {answer}");
}

#[tokio::test]
async fn a_user_created_without_roles_reaches_its_orgs_images_and_roles_that_do_not_exist_are_refused()
 {
    let api = Api::new().await;
    let admin = api.login("admin").await;
    let (status, dora) = api
        .post("/v1/admin/users", &admin, json!({"name": "dora"}))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{dora}");
    assert_eq!(dora["data"]["roles"], json!(["user-default"]));
    // As a developer of acme, she pulls acme/web.
    let (status, _) = api
        .status(
            Method::PUT,
            "/v1/admin/users/dora/password",
            &admin,
            Some(json!({"password": "dora-password"})),
        )
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, _) = api
        .post(
            "/v1/admin/orgs/acme/members",
            &admin,
            json!({"user": "dora", "role": "developer"}),
        )
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let pull = token(
        &api.base,
        Some(("dora", "dora-password")),
        "repository:acme/web:pull",
    )
    .await;
    assert_eq!(pull.status(), StatusCode::OK);
    assert_eq!(
        access(&pull.json().await.unwrap())[0]["actions"],
        json!(["pull"])
    );

    // A role that is not `platform-admin` nor an active role card's name: 400 naming `roles`,
    // nothing created, nothing changed.
    for roles in [
        json!(["user-defualt"]),
        json!(["role-user-default"]),
        json!(["user-default", "\u{0}"]),
        json!(vec!["user-default"; MAX_ROLES + 1]),
    ] {
        let (status, answer) = api
            .post(
                "/v1/admin/users",
                &admin,
                json!({"name": "ghost", "roles": roles}),
            )
            .await;
        refused_naming(status, &answer, "roles", &roles.to_string());
        let response = reqwest::Client::new()
            .put(format!("{}/v1/admin/users/dora/roles", api.base))
            .bearer_auth(&admin)
            .header("If-Match", format!("\"{}\"", dora["revision"]))
            .json(&json!({"roles": roles}))
            .sent()
            .await;
        let status = response.status();
        let answer: Value = response.json().await.unwrap();
        refused_naming(status, &answer, "roles", &roles.to_string());
    }
    assert!(!api.f.has_card("user-ghost").await);
    let (_, dora) = api.get("/v1/admin/users/dora", &admin).await;
    assert_eq!(dora["data"]["roles"], json!(["user-default"]));
}

#[tokio::test]
async fn listings_answer_a_next_cursor_and_link_and_refuse_limits_out_of_range() {
    let api = Api::new().await;
    let admin = api.login("admin").await;
    let (status, all) = api.get("/v1/admin/users", &admin).await;
    assert_eq!(status, StatusCode::OK);
    assert!(all["next"].is_null(), "{all}");
    let everyone = slugs(&all);
    assert!(everyone.len() > 4, "{all}");

    // Page by page, following the `Link` header, which carries the same as `next`.
    let mut url = format!("{}/v1/admin/users?limit=2", api.base);
    let mut seen = Vec::new();
    loop {
        let response = reqwest::Client::new()
            .get(&url)
            .bearer_auth(&admin)
            .sent()
            .await;
        assert_eq!(response.status(), StatusCode::OK);
        let link = response
            .headers()
            .get("link")
            .map(|v| v.to_str().unwrap().to_owned());
        let body: Value = response.json().await.unwrap();
        assert!(slugs(&body).len() <= 2, "{body}");
        seen.extend(slugs(&body));
        match body["next"].as_str() {
            Some(next) => {
                assert_eq!(Some(next), seen.last().map(String::as_str));
                let link = link.expect("a Link header to the next page");
                assert_eq!(
                    link,
                    format!("</v1/admin/users?after={next}&limit=2>; rel=\"next\"")
                );
                let path = link.trim_start_matches('<').split_once('>').unwrap().0;
                url = format!("{}{path}", api.base);
            }
            None => {
                assert!(link.is_none(), "{link:?}");
                break;
            }
        }
    }
    assert_eq!(seen, everyone);

    for limit in [
        "0",
        "-1",
        &(MAX_PAGE + 1).to_string(),
        "99999999999999999999",
    ] {
        for path in [
            "/v1/admin/users",
            "/v1/admin/orgs",
            "/v1/admin/roles",
            "/v1/admin/orgs/acme/robots",
            "/v1/admin/orgs/acme/images",
            "/v1/admin/events",
        ] {
            let path = format!("{path}?limit={limit}");
            let (status, answer) = api.get(&path, &admin).await;
            refused_naming(status, &answer, "limit", &path);
        }
    }
    let olivia = api.login("olivia").await;
    let (status, answer) = api.get("/v1/admin/orgs?limit=0", &olivia).await;
    refused_naming(status, &answer, "limit", "orgs of a member");
}

#[tokio::test]
async fn an_orgs_images_are_searched_by_the_start_of_their_name_a_page_at_a_time() {
    let api = Api::new().await;
    let olivia = api.login("olivia").await;
    for repository in ["acme/web-api", "acme/wab", "acme/w_b", "acme/api"] {
        let (status, answer) = api
            .post(
                "/v1/admin/images",
                &olivia,
                json!({"repository": repository}),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{answer}");
    }
    let images = |query: &str| {
        let api = &api;
        let path = format!("/v1/admin/orgs/acme/images{query}");
        let olivia = olivia.clone();
        async move { api.get(&path, &olivia).await }
    };
    let (status, web) = images("?q=web").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(repositories(&web), ["acme/web", "acme/web-api"]);
    assert_eq!(repositories(&images("?q=w_b").await.1), ["acme/w_b"]);
    assert_eq!(repositories(&images("?q=").await.1).len(), 5);
    assert_eq!(repositories(&images("").await.1).len(), 5);
    assert!(repositories(&images("?q=acme%2Fweb").await.1).is_empty());

    // A page of one: the `Link` keeps the filter.
    let response = reqwest::Client::new()
        .get(format!(
            "{}/v1/admin/orgs/acme/images?q=web&limit=1",
            api.base
        ))
        .bearer_auth(&olivia)
        .sent()
        .await;
    let link = response.headers()["link"].to_str().unwrap().to_owned();
    let first: Value = response.json().await.unwrap();
    let next = first["next"].as_str().unwrap();
    assert_eq!(
        link,
        format!("</v1/admin/orgs/acme/images?after={next}&limit=1&q=web>; rel=\"next\"")
    );
    let (_, second) = images(&format!("?q=web&limit=1&after={next}")).await;
    let mut both = repositories(&first);
    both.extend(repositories(&second));
    both.sort();
    assert_eq!(both, ["acme/web", "acme/web-api"]);

    // The name asked for is bounded; the org's members only, as without it.
    let (status, answer) = images(&format!("?q={}", "a".repeat(257))).await;
    refused_naming(status, &answer, "q", "a long q");
    let gina = api.login("gina").await;
    let (status, _) = api.get("/v1/admin/orgs/acme/images?q=web", &gina).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn events_are_asked_for_by_the_slugs_they_show_and_tell_nothing_of_unseen_cards() {
    let api = Api::new().await;
    let olivia = api.login("olivia").await;
    let admin = api.login("admin").await;
    let (status, _) = api
        .post(
            "/v1/admin/images",
            &olivia,
            json!({"repository": "acme/api"}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED);
    let events = |body: &Value| body["events"].as_array().unwrap().clone();

    let (status, by_olivia) = api.get("/v1/admin/events?actor=user-olivia", &admin).await;
    assert_eq!(status, StatusCode::OK, "{by_olivia}");
    assert!(!events(&by_olivia).is_empty());
    assert!(
        events(&by_olivia)
            .iter()
            .all(|e| e["actor"] == "user-olivia")
    );
    let acme = api.f.card_by_slug("org-acme").await;
    let (_, by_slug) = api.get("/v1/admin/events?target=org-acme", &admin).await;
    let (_, by_id) = api
        .get(&format!("/v1/admin/events?target={}", acme.id), &admin)
        .await;
    assert!(!events(&by_slug).is_empty());
    assert_eq!(by_slug, by_id);

    // No such card, or one the caller cannot see: the same empty answer.
    let gina = api.login("gina").await;
    for (who, path) in [
        (&admin, "/v1/admin/events?actor=user-nobody"),
        (&gina, "/v1/admin/events?actor=user-nobody"),
        (&gina, "/v1/admin/events?actor=user-olivia"),
        (&gina, "/v1/admin/events?target=org-acme"),
    ] {
        let (status, answer) = api.get(path, who).await;
        assert_eq!(status, StatusCode::OK, "{path}: {answer}");
        assert_eq!(answer, json!({"events": []}), "{path}");
    }
    for (path, field) in [
        ("/v1/admin/events?actor=alice", "actor"),
        ("/v1/admin/events?target=Org-acme", "target"),
    ] {
        let (status, answer) = api.get(path, &admin).await;
        refused_naming(status, &answer, field, path);
    }
}

/// The bounds (`minimum`, `maximum`) a JSON Schema in the document gives a number.
fn bounds(schema: &Value) -> (Option<f64>, Option<f64>) {
    (schema["minimum"].as_f64(), schema["maximum"].as_f64())
}

/// `value` as a JSON Schema bound.
fn bound(value: impl TryInto<i64, Error: std::fmt::Debug>) -> Option<f64> {
    Some(value.try_into().unwrap() as f64)
}

#[tokio::test]
async fn the_openapi_documents_bounds_are_those_the_service_enforces() {
    let api = Api::new().await;
    let admin = api.login("admin").await;
    let (status, document) = api.get("/v1/admin/openapi.json", &admin).await;
    assert_eq!(status, StatusCode::OK);
    let schemas = &document["components"]["schemas"];
    let property = |schema: &str, name: &str| schemas[schema]["properties"][name].clone();

    assert_eq!(
        bounds(&property("NewToken", "expires_in_seconds")),
        (bound(MIN_TOKEN_SECONDS), bound(MAX_TOKEN_SECONDS))
    );
    assert_eq!(
        property("NewPassword", "password")["minLength"].as_u64(),
        Some(MIN_PASSWORD_CHARS as u64)
    );
    for schema in ["NewOrg", "NewUser", "NewRobot", "NewRole"] {
        let name = property(schema, "name");
        assert_eq!(name["minLength"].as_u64(), Some(1), "{schema}");
        assert_eq!(
            name["maxLength"].as_u64(),
            Some(MAX_ACCOUNT_NAME_LEN as u64),
            "{schema}"
        );
    }
    for schema in ["NewUser", "Roles"] {
        assert_eq!(
            property(schema, "roles")["maxItems"].as_u64(),
            Some(MAX_ROLES as u64),
            "{schema}"
        );
    }

    // Every number a request may carry is bounded as the service bounds it: in the query,
    // page sizes; in a body, a token's lifetime.
    let mut limits = Vec::new();
    for (path, item) in document["paths"].as_object().unwrap() {
        for (method, operation) in item.as_object().unwrap() {
            for parameter in operation["parameters"].as_array().into_iter().flatten() {
                let schema = &parameter["schema"];
                let integer = schema["type"] == "integer"
                    || schema["type"]
                        .as_array()
                        .is_some_and(|types| types.contains(&json!("integer")));
                if integer {
                    match parameter["name"].as_str().unwrap() {
                        "limit" => {
                            assert_eq!(
                                bounds(schema),
                                (bound(MIN_PAGE), bound(MAX_PAGE)),
                                "{method} {path}"
                            );
                            limits.push(format!("{method} {path}"));
                        }
                        // A cursor: an id of the registry's audit trail.
                        "before" => {
                            assert_eq!(path, "/v1/admin/registry/activity");
                            assert_eq!(bounds(schema), (bound(1), bound(i64::MAX)));
                        }
                        name => panic!("{method} {path}: {name} is an unexpected number"),
                    }
                }
                if ["after", "q"].contains(&parameter["name"].as_str().unwrap()) {
                    assert_eq!(
                        schema["maxLength"].as_u64(),
                        Some(cardgate_admin::api::MAX_NAME_LEN as u64),
                        "{method} {path}"
                    );
                }
            }
        }
    }
    limits.sort();
    assert_eq!(
        limits,
        [
            "get /v1/admin/events",
            "get /v1/admin/orgs",
            "get /v1/admin/orgs/{org}/images",
            "get /v1/admin/orgs/{org}/robots",
            "get /v1/admin/registry/activity",
            "get /v1/admin/roles",
            "get /v1/admin/users",
        ]
    );
    let mut bodies: Vec<&str> = document["paths"]
        .as_object()
        .unwrap()
        .values()
        .flat_map(|item| item.as_object().unwrap().values())
        .filter_map(|operation| {
            operation["requestBody"]["content"]["application/json"]["schema"]["$ref"].as_str()
        })
        .map(|reference| reference.trim_start_matches("#/components/schemas/"))
        .collect();
    bodies.sort_unstable();
    bodies.dedup();
    assert!(
        bodies.contains(&"NewToken") && bodies.len() > 10,
        "{bodies:?}"
    );
    let mut numbers = Vec::new();
    for name in bodies {
        let schema = &schemas[name];
        for (field, property) in schema["properties"].as_object().into_iter().flatten() {
            let text = property["type"].to_string();
            if text.contains("integer") || text.contains("number") {
                assert!(
                    property["minimum"].is_number() && property["maximum"].is_number(),
                    "{name}.{field}: {property}"
                );
                numbers.push(format!("{name}.{field}"));
            }
        }
    }
    assert_eq!(
        numbers,
        ["NewToken.expires_in_seconds", "QuotaBody.quota_bytes"]
    );
    assert_eq!(
        bounds(&property("QuotaBody", "quota_bytes")),
        (bound(0), bound(MAX_QUOTA_BYTES))
    );
}
