//! The web console in a real browser: headless chromium driven through chromedriver
//! (WebDriver), against `cardgate dev` and its demo data. Screenshots of each main page, at
//! 1280 and 390 pixels wide, go to `target/console-screenshots/`.

use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use fantoccini::{Client, ClientBuilder, Locator};
use hyper_util::client::legacy::connect::HttpConnector;
use serde_json::{Value, json};
use tokio::process::{Child, Command};

use crate::Sent;
use crate::running::{Dev, free_port};

/// What the registry sends with its notifications in these tests.
const EVENTS_SECRET: &str = "console-test-events-secret";

/// A headless chromium behind its own chromedriver, both stopped when dropped.
struct Browser {
    client: Client,
    base: String,
    driver: Child,
}

impl Drop for Browser {
    /// Stops chromedriver and every browser it started, even when a test fails halfway.
    fn drop(&mut self) {
        if let Some(group) = self.driver.id() {
            let _ = std::process::Command::new("kill")
                .args(["-KILL", "--", &format!("-{group}")])
                .status();
        }
    }
}

/// Enter, as a key sent to an element.
const ENTER: &str = "\u{E007}";

impl Browser {
    async fn start(base: &str) -> Browser {
        crate::ensure_packages(&[
            ("/usr/bin/chromium", "chromium"),
            ("/usr/bin/chromedriver", "chromium-driver"),
        ])
        .await;
        let port = free_port();
        // In a process group of its own, so that the browsers it starts go with it.
        let driver = Command::new("/usr/bin/chromedriver")
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .process_group(0)
            .kill_on_drop(true)
            .spawn()
            .unwrap();
        let url = format!("http://127.0.0.1:{port}");
        crate::wait_for(&format!("{url}/status"), 200, String::new).await;
        let mut capabilities = serde_json::Map::new();
        capabilities.insert(
            "goog:chromeOptions".into(),
            json!({"args": [
                "--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu",
                "--window-size=1280,1000",
            ]}),
        );
        let client = ClientBuilder::new(HttpConnector::new())
            .capabilities(capabilities)
            .connect(&url)
            .await
            .unwrap();
        Browser {
            client,
            base: base.to_owned(),
            driver,
        }
    }

    async fn open(&self, path: &str) {
        self.client
            .goto(&format!("{}{path}", self.base))
            .await
            .unwrap();
    }

    /// The text of `css`, waiting up to 10 s for it to appear.
    async fn text(&self, css: &str) -> String {
        let mut last = String::new();
        for _ in 0..100 {
            match self.client.find(Locator::Css(css)).await {
                Ok(found) => match found.text().await {
                    Ok(text) => return text,
                    Err(e) => last = e.to_string(),
                },
                Err(e) => last = e.to_string(),
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("no `{css}`: {last}");
    }

    /// The page's heading once it is `expected` (waiting up to 10 s for a navigation).
    async fn heading(&self, expected: &str) -> String {
        let mut heading = String::new();
        for _ in 0..100 {
            if let Ok(found) = self.client.find(Locator::Css("main h1")).await
                && let Ok(text) = found.text().await
            {
                heading = text;
                if heading == expected {
                    break;
                }
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        heading
    }

    async fn type_into(&self, css: &str, text: &str) {
        let field = self.client.find(Locator::Css(css)).await.unwrap();
        field.clear().await.unwrap();
        field.send_keys(text).await.unwrap();
    }

    /// Clicks `css` (a link or a submit button) and waits until the next page replaced this
    /// one.
    async fn click(&self, css: &str) {
        let page = self.client.find(Locator::Css("html")).await.unwrap();
        self.client
            .find(Locator::Css(css))
            .await
            .unwrap_or_else(|e| panic!("no `{css}`: {e}"))
            .click()
            .await
            .unwrap();
        for _ in 0..100 {
            if page.tag_name().await.is_err() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("clicking `{css}` led nowhere");
    }

    async fn source(&self) -> String {
        self.client.source().await.unwrap()
    }

    /// Logs in with the keyboard alone: the name, the password, Enter.
    async fn log_in(&self, user: &str, password: &str) {
        self.open("/console/login").await;
        self.type_into("#username", user).await;
        self.type_into("#password", &format!("{password}{ENTER}"))
            .await;
        assert_eq!(self.heading(user).await, user);
    }

    /// Saves the page at 1280 and at 390 pixels wide, and checks that nothing is wider than
    /// the narrow window.
    async fn screenshots(&self, name: &str) {
        let dir = screenshot_dir();
        for width in [1280u32, 390] {
            self.client.set_window_size(width, 1400).await.unwrap();
            let png = self.client.screenshot().await.unwrap();
            assert!(png.starts_with(b"\x89PNG"), "{name} at {width}");
            std::fs::write(dir.join(format!("{name}-{width}.png")), png).unwrap();
            if width == 390 {
                let overflow = self
                    .client
                    .execute(
                        "return document.documentElement.scrollWidth - window.innerWidth",
                        vec![],
                    )
                    .await
                    .unwrap();
                assert!(
                    overflow.as_i64().unwrap() <= 0,
                    "{name} is wider than 390 px by {overflow}"
                );
            }
        }
        self.client.set_window_size(1280, 1000).await.unwrap();
    }

    /// The value of the session cookie, as the browser keeps it.
    async fn session_cookie(&self) -> fantoccini::cookies::Cookie<'static> {
        self.client
            .get_named_cookie("cardgate-console")
            .await
            .unwrap()
    }
}

fn screenshot_dir() -> PathBuf {
    let dir = crate::workspace().join("target/console-screenshots");
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// The actions a token for `scope` carries, asked with `user` (anonymous when `None`).
async fn token_actions(dev: &Dev, scope: &str, user: Option<(&str, &str)>) -> Value {
    let mut request = reqwest::Client::new()
        .get(dev.realm())
        .query(&[("service", "registry.dev.local"), ("scope", scope)]);
    if let Some((name, password)) = user {
        request = request.basic_auth(name, Some(password));
    }
    let response = request.sent().await;
    assert_eq!(response.status(), 200, "{scope} as {user:?}");
    let body: Value = response.json().await.unwrap();
    let payload = body["token"].as_str().unwrap().split('.').nth(1).unwrap();
    use base64::Engine;
    let claims: Value = serde_json::from_slice(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(payload)
            .unwrap(),
    )
    .unwrap();
    match &claims["access"][0]["actions"] {
        Value::Null => json!([]),
        actions => actions.clone(),
    }
}

#[tokio::test]
async fn an_owner_manages_acme_in_a_browser_and_nobody_else_sees_or_forges_it() {
    let dev = Dev::start(&[("CARDGATE__REGISTRY__EVENTS_SECRET", EVENTS_SECRET)]).await;
    let browser = Browser::start(&dev.base).await;

    // A platform admin creates the user the owner will add.
    browser.log_in("admin", "admin-dev-password").await;
    browser.open("/console/platform").await;
    browser.type_into("#user-name", "erin").await;
    browser
        .click("form[action='/console/platform/users'] button")
        .await;
    assert_eq!(browser.text(".notice").await, "User created.");
    let platform = browser.source().await;
    assert!(platform.contains("<td>erin</td>"));
    // Built-in users are offered no deactivation; the others are.
    assert!(platform.contains("/console/platform/users/erin/deactivate"));
    assert!(!platform.contains("/console/platform/users/admin/deactivate"));
    // A bad name is refused next to its field, and nothing is created.
    browser.type_into("#user-name", "Not A Name").await;
    browser
        .click("form[action='/console/platform/users'] button")
        .await;
    assert!(
        browser
            .text("#user-name-error")
            .await
            .starts_with("name: `Not A Name` must be"),
    );
    // A role card: refused with its schema named when that is no JSON, then created, then
    // deactivated; the built-in roles are offered no deactivation.
    browser.type_into("#role-name", "auditor").await;
    browser.type_into("#role-read", "{not json").await;
    browser
        .click("form[action='/console/platform/roles'] button")
        .await;
    assert!(
        browser
            .text("#role-read-error")
            .await
            .starts_with("read: not JSON"),
    );
    assert!(!browser.source().await.contains("<td>role-auditor</td>"));
    browser.type_into("#role-name", "auditor").await;
    browser.type_into("#role-read", "true").await;
    browser
        .click("form[action='/console/platform/roles'] button")
        .await;
    assert_eq!(browser.text(".notice").await, "Role created.");
    let platform = browser.source().await;
    assert!(platform.contains("<td>role-auditor</td>"));
    assert!(!platform.contains("/console/platform/roles/user-default/deactivate"));
    browser.screenshots("platform").await;
    browser
        .click("form[action='/console/platform/roles/auditor/deactivate'] button")
        .await;
    assert_eq!(browser.text(".notice").await, "Role deactivated.");
    assert!(!browser.source().await.contains("<td>role-auditor</td>"));
    browser.click("form[action='/console/logout'] button").await;
    assert_eq!(browser.heading("Log in").await, "Log in");

    // The owner logs in: her memberships, what they reach, her session, her docker login.
    browser.log_in("alice", "alice-dev-password").await;
    let home = browser.source().await;
    assert!(home.contains("everything on acme/*, and managing acme"));
    assert!(home.contains("login session (this one)"));
    assert_eq!(
        browser.text("#docker-login").await,
        "docker login registry.dev.local -u alice"
    );
    browser.screenshots("home").await;

    // She adds a developer.
    browser.open("/console/orgs/acme").await;
    browser.type_into("#member-user", "erin").await;
    browser
        .click("form[action='/console/orgs/acme/members'] button")
        .await;
    assert_eq!(browser.text(".notice").await, "Member saved.");
    let role = browser
        .client
        .find(Locator::Css("#role-erin"))
        .await
        .unwrap()
        .prop("value")
        .await
        .unwrap();
    assert_eq!(role.as_deref(), Some("developer"));
    // An unknown user is refused above the form, and the page says so.
    browser.type_into("#member-user", "nobody").await;
    browser
        .click("form[action='/console/orgs/acme/members'] button")
        .await;
    assert_eq!(
        browser.text("#add-member--error").await,
        "user user-nobody not found"
    );

    // She creates a robot and a token for one repository, shown once.
    browser.type_into("#robot-name", "builder").await;
    browser
        .click("form[action='/console/orgs/acme/robots'] button")
        .await;
    assert_eq!(browser.text(".notice").await, "Robot created.");
    browser.screenshots("org").await;
    browser
        .click("a[href='/console/orgs/acme/robots/builder']")
        .await;
    assert_eq!(browser.heading("Robot builder").await, "Robot builder");
    browser.type_into("#token-days", "30").await;
    browser.type_into("#token-repository", "acme/web").await;
    browser
        .click("form[action='/console/orgs/acme/robots/builder/tokens'] button")
        .await;
    let token = browser.text("#new-token").await;
    let (id, secret) = token.split_once('.').unwrap();
    assert!(uuid::Uuid::parse_str(id).is_ok(), "{token}");
    assert!(secret.len() >= 32, "{token}");
    assert!(browser.source().await.contains("Reaches only acme/web."));
    browser.screenshots("token").await;
    // The token logs the robot in; the robot's page lists it, never its secret again.
    assert_eq!(
        token_actions(&dev, "repository:acme/web:pull", Some(("builder", &token))).await,
        json!([])
    );
    browser.open("/console/orgs/acme/robots/builder").await;
    let robot_page = browser.source().await;
    assert!(robot_page.contains("token (one repository)"));
    assert!(!robot_page.contains(secret));

    // She opens an image to the public: anonymous pulls get it at once.
    assert_eq!(
        token_actions(&dev, "repository:acme/web:pull", None).await,
        json!([])
    );
    browser
        .open("/console/orgs/acme/image?repository=acme/web")
        .await;
    assert!(browser.text("#visibility").await.starts_with("Private"));
    browser
        .click("form[action='/console/orgs/acme/image/public'] button")
        .await;
    assert!(browser.text("#visibility").await.starts_with("Public"));
    browser.screenshots("image").await;
    let mut anonymous = json!([]);
    for _ in 0..50 {
        anonymous = token_actions(&dev, "repository:acme/web:pull", None).await;
        if anonymous == json!(["pull"]) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(anonymous, json!(["pull"]));

    // Each change is in the org's audit trail, by her.
    browser.open("/console/orgs/acme/audit?actor=alice").await;
    let rows = browser
        .client
        .find_all(Locator::Css("table.events tbody tr"))
        .await
        .unwrap();
    let mut trail = Vec::new();
    for row in rows {
        trail.push(row.text().await.unwrap());
    }
    let find = |what: &str, on: &str, after: &str| {
        trail.iter().any(|row| {
            row.contains("user-alice")
                && row.contains(what)
                && row.contains(on)
                && row.contains(after)
        })
    };
    assert!(
        find("link", "org-acme", "\"role\":\"developer\""),
        "{trail:#?}"
    );
    assert!(
        find("create", "user-builder", "\"robot\":true"),
        "{trail:#?}"
    );
    assert!(find("create", "session-", "acme/web"), "{trail:#?}");
    assert!(find("update", "image-", "/data/public"), "{trail:#?}");
    assert!(trail.iter().all(|row| row.contains("user-alice")));
    // On what: a repository stands for its image.
    browser.type_into("#audit-target", "acme/web").await;
    browser
        .click("form[action='/console/orgs/acme/audit'] button")
        .await;
    for _ in 0..100 {
        let url = browser.client.current_url().await.unwrap();
        if url.as_str().contains("target=acme") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let rows = browser
        .client
        .find_all(Locator::Css("table.events tbody tr"))
        .await
        .unwrap();
    assert_eq!(rows.len(), 1);
    assert!(rows[0].text().await.unwrap().contains("/data/public"));
    browser.screenshots("audit").await;

    // Why can't dave push?
    browser
        .open("/console/orgs/acme/why?account=dave&repository=acme/web&push=on")
        .await;
    let verdict = browser.text(".verdicts").await;
    assert!(verdict.starts_with("push: denied"), "{verdict}");
    assert!(
        verdict.contains(
            "push needs developer or higher of org-acme; the actor is viewer of org-acme"
        ),
        "{verdict}"
    );
    assert!(browser.text(".facts").await.contains("membership"));
    browser.screenshots("why").await;

    // The registry reports a push by alice and a pull by bob: the image's page shows the tag
    // and the pull, the org's page its storage, and the owner's record of pulls and pushes
    // both, filtered by who.
    let now = time::OffsetDateTime::now_utc()
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap();
    let digest = format!("sha256:{}", "d".repeat(64));
    let manifest = |id: &str, action: &str, actor: &str| {
        json!({
            "id": id, "timestamp": now, "action": action,
            "target": {"mediaType": "application/vnd.oci.image.manifest.v1+json", "size": 528,
                       "digest": digest, "repository": "acme/web", "tag": "v1"},
            "request": {"addr": "10.1.2.3:4567"},
            "actor": {"name": actor},
        })
    };
    let layer = json!({
        "id": "layer", "timestamp": now, "action": "push",
        "target": {"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", "size": 3_145_728,
                   "digest": format!("sha256:{}", "e".repeat(64)), "repository": "acme/web"},
        "actor": {"name": "alice"},
    });
    let reported = reqwest::Client::new()
        .post(format!("{}/v1/registry/events", dev.base))
        .bearer_auth(EVENTS_SECRET)
        .header(
            "Content-Type",
            "application/vnd.docker.distribution.events.v1+json",
        )
        .json(&json!({"events": [layer, manifest("push", "push", "alice"), manifest("pull", "pull", "bob")]}))
        .sent()
        .await;
    assert_eq!(reported.status(), 200);
    browser
        .open("/console/orgs/acme/image?repository=acme/web")
        .await;
    let tags = browser.text("table.tags tbody").await;
    for shown in ["v1", &digest, "528 B", "alice"] {
        assert!(tags.contains(shown), "{tags}");
    }
    assert!(
        browser
            .text("#pulls")
            .await
            .starts_with("Pulls in the last 24 hours: 1; last pulled 20"),
    );
    browser.screenshots("image-contents").await;
    browser.open("/console/orgs/acme").await;
    assert_eq!(
        browser.text("#storage").await,
        "Storage: 3.0 MiB, no quota."
    );
    browser.click("a[href='/console/orgs/acme/registry']").await;
    assert_eq!(
        browser.heading("Pulls and pushes of acme").await,
        "Pulls and pushes of acme"
    );
    let rows = |browser: &Browser| {
        let client = browser.client.clone();
        async move {
            let mut rows = Vec::new();
            for row in client
                .find_all(Locator::Css("table.events tbody tr"))
                .await
                .unwrap()
            {
                rows.push(row.text().await.unwrap());
            }
            rows
        }
    };
    let record = rows(&browser).await;
    // Manifests, not layers: what was pulled and pushed.
    assert_eq!(record.len(), 2, "{record:#?}");
    assert!(
        record[0].contains("pull") && record[0].contains("bob"),
        "{record:#?}"
    );
    assert!(
        record[1].contains("push") && record[1].contains("v1"),
        "{record:#?}"
    );
    browser.screenshots("registry").await;
    browser.type_into("#registry-actor", "bob").await;
    browser
        .click("form[action='/console/orgs/acme/registry'] button")
        .await;
    let mut record = Vec::new();
    for _ in 0..100 {
        record = rows(&browser).await;
        if record.len() == 1 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(record.len(), 1, "{record:#?}");
    assert!(record[0].contains("bob"), "{record:#?}");
    // A repository of another org is refused next to its field.
    browser
        .open("/console/orgs/acme/registry?repository=globex/app")
        .await;
    assert_eq!(
        browser.text("#registry-repository-error").await,
        "repository: a repository of acme, as acme/<name>"
    );

    // A cross-site form with her cookie, without the form token or from another origin,
    // is refused and changes nothing.
    let cookie = browser.session_cookie().await;
    assert_eq!(cookie.http_only(), Some(true));
    assert!(format!("{:?}", cookie.same_site()).contains("Strict"));
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let post = |path: &str, origin: Option<&str>, body: String| {
        let mut request = http
            .post(format!("{}{path}", dev.base))
            .header("Cookie", format!("cardgate-console={}", cookie.value()))
            .header("Content-Type", "application/x-www-form-urlencoded")
            .body(body);
        if let Some(origin) = origin {
            request = request.header("Origin", origin);
        }
        request.sent()
    };
    const MEMBERS: &str = "/console/orgs/acme/members";
    let csrf = browser
        .client
        .find(Locator::Css(
            "form[action='/console/logout'] input[name=csrf]",
        ))
        .await
        .unwrap()
        .prop("value")
        .await
        .unwrap()
        .unwrap();
    for response in [
        post(MEMBERS, None, "user=gina&role=owner".into()).await,
        post(MEMBERS, None, "csrf=forged&user=gina&role=owner".into()).await,
        post(
            MEMBERS,
            Some("http://evil.example"),
            format!("csrf={csrf}&user=gina&role=owner"),
        )
        .await,
    ] {
        assert_eq!(response.status(), 403);
        assert!(
            response
                .text()
                .await
                .unwrap()
                .contains("nothing was changed")
        );
    }
    browser.open("/console/orgs/acme").await;
    assert!(!browser.source().await.contains("<td>gina</td>"));
    // The same form with its token, from the console's origin, goes through: the refusals
    // above were the checks, not a broken form.
    let port = dev.base.rsplit(':').next().unwrap();
    let accepted = post(
        "/console/orgs/acme/members/erin/role",
        Some(&format!("http://127.0.0.1:{port}")),
        format!("csrf={csrf}&role=maintainer"),
    )
    .await;
    assert_eq!(accepted.status(), 303);
    browser.open("/console/orgs/acme").await;
    let role = browser
        .client
        .find(Locator::Css("#role-erin"))
        .await
        .unwrap()
        .prop("value")
        .await
        .unwrap();
    assert_eq!(role.as_deref(), Some("maintainer"));

    // Another tenant's owner sees none of it.
    browser.client.delete_all_cookies().await.unwrap();
    browser.log_in("gina", "gina-dev-password").await;
    let home = browser.source().await;
    assert!(home.contains("managing globex"));
    for name in ["acme", "erin", "builder", "alice"] {
        assert!(!home.contains(name), "gina's page shows {name}");
    }
    for path in [
        "/console/orgs/acme",
        "/console/orgs/acme/audit",
        "/console/orgs/acme/registry",
        "/console/orgs/acme/robots/builder",
        "/console/orgs/acme/image?repository=acme/web",
        "/console/orgs/acme/why?account=dave&repository=acme/web&push=on",
        "/console/platform",
    ] {
        browser.open(path).await;
        assert_eq!(
            browser.heading("Not allowed").await,
            "Not allowed",
            "{path}"
        );
        // The refusal names what was asked for, nothing more.
        let page = browser.source().await;
        for name in ["erin", "builder", "user-alice", "image-", "token"] {
            assert!(
                path.contains(name) || !page.contains(name),
                "{path} shows {name}"
            );
        }
    }
    browser.open("/console/orgs/globex/audit").await;
    let trail = browser.source().await;
    for name in ["acme", "erin", "builder", "user-alice"] {
        assert!(!trail.contains(name), "globex's trail shows {name}");
    }

    // Her password form says what is wrong next to the field; revoking her session from
    // her own list logs her out for good.
    browser.open("/console/").await;
    browser
        .type_into("#new-password", "gina-new-password")
        .await;
    browser
        .type_into("#confirm-password", "gina-other-password")
        .await;
    browser
        .click("form[action='/console/password'] button")
        .await;
    assert_eq!(
        browser.text("#password-confirm-error").await,
        "confirm: the two passwords differ"
    );
    browser
        .click("form[action^='/console/sessions/'] button")
        .await;
    assert_eq!(browser.heading("Log in").await, "Log in");
    browser.open("/console/").await;
    assert_eq!(browser.heading("Log in").await, "Log in");

    // Nothing secret reached the log, every level on: not the token, the session cookie,
    // the form token or a password.
    let logs = dev.logs();
    for secret in [
        secret,
        cookie.value(),
        &csrf,
        "alice-dev-password",
        "gina-new-password",
    ] {
        assert!(!logs.contains(secret), "the log holds a secret");
    }

    browser.client.clone().close().await.unwrap();
    dev.signal("TERM").await;
    let mut dev = dev;
    dev.exit_status().await;
}

#[tokio::test]
async fn console_answers_forbid_framing_inline_scripts_and_other_origins() {
    let dev = Dev::start(&[]).await;
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let page = client
        .get(format!("{}/console/login", dev.base))
        .sent()
        .await;
    assert_eq!(page.status(), 200);
    let header = |name: &str| {
        page.headers()
            .get(name)
            .unwrap_or_else(|| panic!("no {name}"))
            .to_str()
            .unwrap()
            .to_owned()
    };
    let policy = header("content-security-policy");
    for directive in [
        "default-src 'self'",
        "script-src 'self'",
        "style-src 'self'",
        "frame-ancestors 'none'",
        "form-action 'self'",
    ] {
        assert!(policy.contains(directive), "{policy}");
    }
    assert!(!policy.contains("unsafe"), "{policy}");
    assert_eq!(header("x-frame-options"), "DENY");
    assert_eq!(header("referrer-policy"), "same-origin");
    assert_eq!(header("x-content-type-options"), "nosniff");
    assert_eq!(header("cache-control"), "no-store");
    let html = page.text().await.unwrap();
    assert!(
        !html.contains("<script>") && !html.contains("style="),
        "{html}"
    );

    // The session cookie: HttpOnly, SameSite=Strict, for the whole site; a login from
    // another site is refused before any password is checked.
    let login = client
        .post(format!("{}/console/login", dev.base))
        .form(&[("username", "alice"), ("password", "alice-dev-password")])
        .sent()
        .await;
    assert_eq!(login.status(), 303);
    let cookie = login.headers()["set-cookie"].to_str().unwrap().to_owned();
    assert!(cookie.starts_with("cardgate-console="), "{cookie}");
    for attribute in ["HttpOnly", "SameSite=Strict", "Path=/"] {
        assert!(cookie.contains(attribute), "{cookie}");
    }
    let cross_site = client
        .post(format!("{}/console/login", dev.base))
        .header("Sec-Fetch-Site", "cross-site")
        .form(&[("username", "alice"), ("password", "alice-dev-password")])
        .sent()
        .await;
    assert_eq!(cross_site.status(), 403);
    assert!(cross_site.headers().get("set-cookie").is_none());

    // Forms are bounded.
    let large = client
        .post(format!("{}/console/login", dev.base))
        .header("Content-Type", "application/x-www-form-urlencoded")
        .body(format!("username=alice&password={}", "x".repeat(64 * 1024)))
        .sent()
        .await;
    assert_eq!(large.status(), 413);

    dev.signal("TERM").await;
    let mut dev = dev;
    dev.exit_status().await;
}
