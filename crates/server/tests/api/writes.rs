//! Bounded writes per account through the admin API.

use reqwest::{Method, StatusCode};
use serde_json::json;

use crate::Sent;
use crate::admin::Api;

#[tokio::test]
async fn an_account_gets_429_with_retry_after_beyond_its_hourly_tokens_and_others_are_unaffected() {
    let api = Api::new().await;
    let plain = api.login("plain").await;
    let path = "/v1/admin/users/plain/tokens";
    // The default allowance: 100 an hour.
    for i in 0..100 {
        let (status, body) = api
            .status(Method::POST, path, &plain, Some(json!({})))
            .await;
        assert_eq!(status, StatusCode::CREATED, "token {i}: {body}");
    }
    let response = reqwest::Client::new()
        .post(format!("{}{path}", api.base))
        .bearer_auth(&plain)
        .json(&json!({}))
        .sent()
        .await;
    assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
    let retry_after: u64 = response.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(retry_after > 0);
    let body: serde_json::Value = response.json().await.unwrap();
    assert_eq!(body["error"], "too_many_requests");
    assert!(
        body["error_description"]
            .as_str()
            .unwrap()
            .contains("100 an hour"),
        "{body}"
    );
    // The refused request wrote nothing: the login session and the 100 tokens.
    let (_, sessions) = api
        .status(Method::GET, "/v1/admin/users/plain/sessions", &plain, None)
        .await;
    assert_eq!(
        sessions["sessions"].as_array().map(Vec::len),
        Some(101),
        "{sessions}"
    );
    let olivia = api.login("olivia").await;
    let (status, _) = api
        .status(
            Method::POST,
            "/v1/admin/users/olivia/tokens",
            &olivia,
            Some(json!({})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED);
}
