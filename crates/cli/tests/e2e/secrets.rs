//! Secrets never reach the log: a run of `cardgate dev` with every level on (`RUST_LOG=trace`)
//! through passwords, sessions, CI tokens, refresh tokens and a database outage; then the
//! complete log is searched for every secret used. 5xx bodies say nothing of the cause.

use serde_json::Value;

use crate::Sent;
use crate::running::Dev;

/// What must never be logged, each with a name for the failure message.
#[derive(Default)]
struct Secrets(Vec<(String, String)>);

impl Secrets {
    fn add(&mut self, what: &str, secret: &str) {
        assert!(secret.len() >= 16, "{what} is too short to search for");
        self.0.push((what.to_owned(), secret.to_owned()));
    }

    /// A JWT, and its signature alone.
    fn add_jwt(&mut self, what: &str, jwt: &str) {
        self.add(what, jwt);
        self.add(
            &format!("{what} (signature)"),
            jwt.rsplit('.').next().unwrap(),
        );
    }

    /// A session-like token `<id>.<secret>`, and its secret alone.
    fn add_session(&mut self, what: &str, token: &str) {
        self.add(what, token);
        self.add(
            &format!("{what} (secret)"),
            token.split_once('.').unwrap().1,
        );
    }

    /// The names of the secrets `text` contains.
    fn found_in(&self, text: &str) -> Vec<&str> {
        self.0
            .iter()
            .filter(|(_, secret)| text.contains(secret.as_str()))
            .map(|(what, _)| what.as_str())
            .collect()
    }
}

async fn json(response: reqwest::Response, status: u16) -> Value {
    assert_eq!(response.status(), status);
    response.json().await.unwrap()
}

#[tokio::test]
async fn a_complete_trace_level_log_holds_no_password_token_or_key() {
    let mut dev = Dev::start(&[]).await;
    let client = reqwest::Client::new();
    let realm = dev.realm();
    let mut secrets = Secrets::default();
    for user in ["alice", "bob", "admin"] {
        secrets.add(
            &format!("{user}'s password"),
            &format!("{user}-dev-password"),
        );
    }
    let wrong = "a-wrong-password-tried-by-someone";
    secrets.add("a wrong password", wrong);

    let database = std::fs::read_to_string(dev.cluster_dir().with_extension("password")).unwrap();
    secrets.add("the database password", database.trim());

    // The private key, whole and line by line.
    let pem = std::fs::read_to_string(dev.data_dir().join("cardgate-dev.pem")).unwrap();
    secrets.add("the private key PEM", pem.trim());
    let body: Vec<&str> = pem
        .lines()
        .filter(|l| !l.starts_with("-----") && !l.trim().is_empty())
        .collect();
    secrets.add("the private key's base64", &body.concat());
    for (i, line) in body.iter().enumerate() {
        if line.len() >= 16 {
            secrets.add(&format!("line {i} of the private key"), line);
        }
    }

    // A password on GET, with Basic.
    let answer = json(
        client
            .get(&realm)
            .query(&[
                ("service", "registry.dev.local"),
                ("scope", "repository:acme/web:pull,push"),
            ])
            .basic_auth("alice", Some("alice-dev-password"))
            .sent()
            .await,
        200,
    )
    .await;
    secrets.add_jwt("alice's JWT", answer["token"].as_str().unwrap());
    // A wrong one.
    let response = client
        .get(&realm)
        .query(&[("service", "registry.dev.local")])
        .basic_auth("alice", Some(wrong))
        .sent()
        .await;
    assert_eq!(response.status(), 401);

    // The OAuth2 password grant with offline access, then the refresh grant.
    let grant = |form: &[(&str, &str)]| client.post(&realm).form(form).sent();
    let answer = json(
        grant(&[
            ("grant_type", "password"),
            ("username", "bob"),
            ("password", "bob-dev-password"),
            ("service", "registry.dev.local"),
            ("client_id", "secrets-test"),
            ("access_type", "offline"),
            ("scope", "repository:acme/web:pull"),
        ])
        .await,
        200,
    )
    .await;
    secrets.add_jwt("bob's JWT", answer["access_token"].as_str().unwrap());
    let refresh = answer["refresh_token"].as_str().unwrap().to_owned();
    secrets.add("bob's refresh token", &refresh);
    let answer = json(
        grant(&[
            ("grant_type", "refresh_token"),
            ("refresh_token", refresh.as_str()),
            ("service", "registry.dev.local"),
            ("client_id", "secrets-test"),
            ("scope", "repository:acme/web:pull"),
        ])
        .await,
        200,
    )
    .await;
    secrets.add_jwt(
        "bob's refreshed JWT",
        answer["access_token"].as_str().unwrap(),
    );
    // A refresh token that is not one.
    let forged = format!("{}x", refresh);
    let response = grant(&[
        ("grant_type", "refresh_token"),
        ("refresh_token", forged.as_str()),
        ("client_id", "secrets-test"),
    ])
    .await;
    assert_eq!(response.status(), 400);

    // The admin API: a login, a session used as Bearer, a CI token made and used as Basic.
    let login = json(
        client
            .post(format!("{}/v1/admin/login", dev.base))
            .json(&serde_json::json!({"username": "admin", "password": "admin-dev-password"}))
            .sent()
            .await,
        200,
    )
    .await;
    let session = login["token"].as_str().unwrap().to_owned();
    secrets.add_session("the admin session", &session);
    json(
        client
            .get(format!("{}/v1/admin/whoami", dev.base))
            .bearer_auth(&session)
            .sent()
            .await,
        200,
    )
    .await;
    let ci = json(
        client
            .post(format!("{}/v1/admin/users/alice/tokens", dev.base))
            .bearer_auth(&session)
            .sent()
            .await,
        201,
    )
    .await;
    let ci = ci["token"].as_str().unwrap().to_owned();
    secrets.add_session("alice's CI token", &ci);
    let answer = json(
        client
            .get(&realm)
            .query(&[
                ("service", "registry.dev.local"),
                ("scope", "repository:acme/web:pull"),
            ])
            .basic_auth("alice", Some(&ci))
            .sent()
            .await,
        200,
    )
    .await;
    secrets.add_jwt("the CI token's JWT", answer["token"].as_str().unwrap());

    // The database goes away: the answers are opaque, the cause is in the log.
    let postmaster = std::fs::read_to_string(dev.cluster_dir().join("postmaster.pid"))
        .unwrap()
        .lines()
        .next()
        .unwrap()
        .to_owned();
    let stopped = tokio::process::Command::new("kill")
        .args(["-INT", &postmaster])
        .status()
        .await
        .unwrap();
    assert!(stopped.success());
    let mut outage = None;
    for _ in 0..100 {
        let response = client
            .get(&realm)
            .query(&[("service", "registry.dev.local")])
            .basic_auth("alice", Some("alice-dev-password"))
            .sent()
            .await;
        if response.status().is_server_error() {
            outage = Some(response.text().await.unwrap());
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    let outage = outage.expect("the token endpoint kept answering without its database");
    let login = client
        .post(format!("{}/v1/admin/login", dev.base))
        .json(&serde_json::json!({"username": "admin", "password": "admin-dev-password"}))
        .sent()
        .await;
    assert!(login.status().is_server_error());
    let login = login.text().await.unwrap();
    for body in [&outage, &login] {
        let lowered = body.to_lowercase();
        for internal in [
            "postgres",
            "sqlx",
            "connection",
            "127.0.0.1",
            "pool",
            "database",
        ] {
            assert!(!lowered.contains(internal), "`{internal}` in {body}");
        }
    }

    dev.signal("TERM").await;
    dev.exit_status().await;
    let logs = dev.logs();
    // The log is the whole story: trace lines, the tokens issued, the outage's cause.
    assert!(logs.contains("TRACE"), "no trace lines");
    assert!(logs.contains("token issued"));
    assert!(
        logs.to_lowercase().contains("connection"),
        "no cause logged"
    );
    let leaked = secrets.found_in(&logs);
    assert!(leaked.is_empty(), "the log holds {leaked:?}");
    // Standard output is the dev banner: demo passwords are published there, nothing else.
    let leaked: Vec<&str> = secrets
        .found_in(&dev.stdout())
        .into_iter()
        .filter(|what| !what.ends_with("password"))
        .collect();
    assert!(leaked.is_empty(), "standard output holds {leaked:?}");
}
