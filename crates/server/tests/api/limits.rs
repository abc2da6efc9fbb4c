//! Limits on request size: the head (431), bodies (413), scopes, names (400), each answered
//! with a JSON error.

use cardgate_server::Application;
use cardgate_store::testing::fresh_database_url;
use reqwest::StatusCode;
use serde_json::json;

use crate::Sent;
use crate::bad_request_saying;
use crate::cards::spawn_on;
use crate::description;
use crate::{ALICE, error_body, raw_request, spawn_app, test_settings};

#[tokio::test]
async fn a_request_head_over_the_configured_limit_is_431_with_a_json_error() {
    let app = spawn_app().await;
    // One large header (32 KiB by default)...
    let url = format!("{}/v1/registry?service=registry.test", app.base);
    let with_filler = |bytes: usize| app.client.get(&url).header("X-Filler", "a".repeat(bytes));
    let response = with_filler(40 * 1024).sent().await;
    let body = error_body(response, StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE).await;
    assert_eq!(body["error"], "invalid_request");
    assert!(description(&body).contains("32768 bytes"));
    // ...many small ones, or a long query string.
    let mut request = app.client.get(&url);
    for i in 0..80 {
        request = request.header(format!("x-filler-{i}"), "b".repeat(500));
    }
    let response = request.sent().await;
    error_body(response, StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE).await;
    let response = app
        .get(
            &format!(
                "/v1/registry?service=registry.test&client_id={}",
                "c".repeat(40 * 1024)
            ),
            ALICE,
        )
        .await;
    error_body(response, StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE).await;
    // A head just under the limit is served.
    let response = with_filler(30 * 1024).sent().await;
    assert_eq!(response.status(), StatusCode::OK);
}

#[tokio::test]
async fn a_request_head_beyond_what_actix_web_buffers_is_still_431() {
    let app = spawn_app().await;
    // Over 128 KiB, or over 96 headers, actix-web answers by itself and closes the connection.
    let huge = format!(
        "GET /v1/registry HTTP/1.1\r\nHost: x\r\nX-Filler: {}\r\n\r\n",
        "a".repeat(200 * 1024)
    );
    let (status, _) = raw_request(&app.base, huge.into_bytes()).await;
    assert_eq!(status, 431);
    let mut many = "GET /v1/registry HTTP/1.1\r\nHost: x\r\n".to_owned();
    for i in 0..120 {
        many.push_str(&format!("X-Filler-{i}: b\r\n"));
    }
    many.push_str("\r\n");
    let (status, _) = raw_request(&app.base, many.into_bytes()).await;
    assert_eq!(status, 431);
}

#[tokio::test]
async fn user_names_and_repository_names_over_their_limits_are_400() {
    let app = spawn_app().await;
    let long_user = "u".repeat(257);
    let response = app
        .get(
            "/v1/registry?service=registry.test",
            Some((&long_user, "x")),
        )
        .await;
    bad_request_saying(response, "longer than 256 characters").await;
    let form = [
        ("grant_type", "password"),
        ("username", long_user.as_str()),
        ("password", "x"),
    ];
    let url = format!("{}/v1/registry", app.base);
    let response = app.client.post(url).form(&form).sent().await;
    error_body(response, StatusCode::BAD_REQUEST).await;

    let app = &app;
    let name_of_length = |length: usize| {
        let path = format!(
            "/v1/registry?service=registry.test&scope=repository:acme/{}:pull",
            "w".repeat(length - "acme/".len())
        );
        async move { app.get(&path, ALICE).await }
    };
    error_body(name_of_length(256).await, StatusCode::BAD_REQUEST).await;
    // 255 characters is still a name.
    assert_eq!(name_of_length(255).await.status(), StatusCode::OK);
}

#[tokio::test]
async fn admin_bodies_over_64_kib_are_413_and_extractor_errors_are_json() {
    let url = fresh_database_url().await;
    let base = spawn_on(&url, true).await;
    let client = reqwest::Client::new();
    let body = json!({"username": "admin", "password": "p".repeat(100 * 1024)});
    let url = format!("{base}/v1/admin/login");
    let response = client.post(url).json(&body).sent().await;
    let answer = error_body(response, StatusCode::PAYLOAD_TOO_LARGE).await;
    assert_eq!(answer["error"], "invalid_request");
    // A query actix-web cannot read is a JSON 400 too.
    let response = client.get(format!("{base}/v1/admin/explain")).sent().await;
    let answer = error_body(response, StatusCode::BAD_REQUEST).await;
    assert!(description(&answer).contains("scope"), "{answer}");
}

#[tokio::test]
async fn start_up_fails_naming_the_setting_when_the_header_limit_is_too_small() {
    let (settings, _) = test_settings(&[("CARDGATE__SERVER__MAX_HEADER_BYTES", "100")]);
    let err = Application::build(&settings).await.unwrap_err().to_string();
    assert!(err.contains("server.max_header_bytes"), "{err}");
    assert!(err.contains("at least 4096"), "{err}");
}
