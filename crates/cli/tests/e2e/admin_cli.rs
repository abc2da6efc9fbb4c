//! Policy changed at runtime through `cardgate admin`, seen by a real registry: an owner
//! grants a robot push on acme/web, the robot pushes, the grant is revoked, the robot's next
//! push is refused; the events show both changes by the owner, and explain says why.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use cardgate_store::PoolSettings;
use cardgate_store::Store;
use cardgate_store::testing::{Fixture, fresh_database_url};
use serde_json::Value;
use tokio::process::Command;

use crate::Sent;
use crate::registry::{RegistrySettings, Stack, write_oci_image};
use crate::{assert_succeeded, cardgate, output_with_stdin};

/// Runs `cardgate admin --url <url> <args>` with `stdin`, the token file `cli.token` of the
/// stack; the output.
pub async fn admin(stack: &Stack, args: &[&str], stdin: &str) -> std::process::Output {
    let mut command = Command::new(cardgate());
    command
        .arg("admin")
        .arg("--url")
        .arg(&stack.cardgate_url)
        .args(args)
        .env("CARDGATE_TOKEN_FILE", stack.path("cli.token"))
        .env_remove("CARDGATE_TOKEN");
    output_with_stdin(&mut command, stdin).await
}

/// Runs `cardgate admin` and returns its standard output, failing on a non-zero exit.
pub async fn admin_ok(stack: &Stack, args: &[&str]) -> String {
    let output = admin(stack, args, "").await;
    assert!(
        output.status.success(),
        "cardgate admin {args:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).unwrap()
}

/// The actions the robot's token carries for `repository:acme/web:pull,push`.
async fn robot_token_actions(stack: &Stack) -> Value {
    let seed = RegistrySettings::from_seed();
    let realm_path = seed
        .realm
        .split_once("://")
        .and_then(|(_, rest)| rest.find('/').map(|i| rest[i..].to_owned()))
        .unwrap();
    let response = reqwest::Client::new()
        .get(format!("{}{realm_path}", stack.cardgate_url))
        .query(&[
            ("service", seed.service.as_str()),
            ("scope", "repository:acme/web:pull,push"),
        ])
        .basic_auth("ci", Some("ci-robot-e2e-secret"))
        .sent()
        .await;
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.unwrap();
    let payload = body["token"].as_str().unwrap().split('.').nth(1).unwrap();
    let claims: Value = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).unwrap()).unwrap();
    claims["access"][0]["actions"].clone()
}

#[tokio::test]
async fn an_owner_grants_and_revokes_robot_push_through_the_cli_and_the_registry_follows() {
    let url = fresh_database_url().await;
    let f = Fixture::on(Store::connect_lazy(&url, &PoolSettings::default()).unwrap()).await;
    let alice = f.user("alice", &["user-default"]).await;
    let hash = cardgate_authz_static::hash_password(&"alice-e2e-password".into()).unwrap();
    f.store.set_password(&f.admin, &alice, &hash).await.unwrap();
    let acme = f.org("acme").await;
    f.member(&acme, &alice, "owner").await;
    let web = f.image("acme/web", &["org-acme"], false).await;
    let stack = &Stack::start(&[("CARDGATE__DATABASE__URL", url.as_str())]).await;

    // The owner logs in (password on standard input, never in argv) and makes a robot. The
    // token goes to the file, owner-only even if the file was readable before, and not to the
    // terminal.
    std::fs::write(stack.path("cli.token"), "stale").unwrap();
    std::fs::set_permissions(
        stack.path("cli.token"),
        std::os::unix::fs::PermissionsExt::from_mode(0o644),
    )
    .unwrap();
    let login = admin(
        stack,
        &[
            "login",
            "alice",
            "--save",
            stack.path("cli.token").to_str().unwrap(),
        ],
        "alice-e2e-password\n",
    )
    .await;
    assert_succeeded(&login);
    assert!(login.stdout.is_empty());
    let mode = std::os::unix::fs::PermissionsExt::mode(
        &std::fs::metadata(stack.path("cli.token"))
            .unwrap()
            .permissions(),
    );
    assert_eq!(mode & 0o777, 0o600);
    let whoami = admin_ok(stack, &["whoami"]).await;
    assert!(
        whoami.contains("user-alice") && whoami.contains("owner"),
        "{whoami}"
    );
    admin_ok(stack, &["robots", "create", "acme", "ci"]).await;
    let set = admin(stack, &["users", "password", "ci"], "ci-robot-e2e-secret\n").await;
    assert_succeeded(&set);
    let robots = admin_ok(stack, &["robots", "list", "acme"]).await;
    assert!(robots.contains("user-ci"), "{robots}");

    let source_dir = stack.path("image");
    write_oci_image(&source_dir, "v1", "pushed by the robot\n");
    let source = format!("oci:{}:v1", source_dir.display());
    let dest = stack.image("acme/web:v1");
    let push_args = crate::registry::push("ci:ci-robot-e2e-secret", &source, &dest);
    let push = || stack.fails_or_output(&push_args);
    assert!(push().await.is_some(), "no grant yet: the push is refused");

    admin_ok(
        stack,
        &["grants", "add", "user-ci", "acme/web", "pull,push"],
    )
    .await;
    let grants = admin_ok(stack, &["grants", "list", "acme/web"]).await;
    assert!(
        grants.contains("user-ci") && grants.contains("pull,push"),
        "{grants}"
    );
    assert_eq!(
        robot_token_actions(stack).await,
        serde_json::json!(["pull", "push"])
    );
    if let Some(error) = push().await {
        panic!("the granted robot's push failed: {error}\n{}", stack.logs());
    }

    admin_ok(stack, &["grants", "revoke", "user-ci", "acme/web"]).await;
    assert_eq!(robot_token_actions(stack).await, serde_json::json!([]));
    let refused = push()
        .await
        .expect("the push is refused after the revocation");
    assert!(
        refused.contains("denied") || refused.contains("unauthorized"),
        "{refused}"
    );

    // The events show both changes, by the owner; explain says why the robot is refused.
    let events = admin_ok(
        stack,
        &["--json", "events", "--target", &web.id.to_string()],
    )
    .await;
    let events: Value = serde_json::from_str(&events).unwrap();
    let by_owner: Vec<&str> = events["events"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["actor"] == "user-alice")
        .map(|e| e["type"].as_str().unwrap())
        .collect();
    assert_eq!(by_owner, ["unlink@1.0.0", "link@1.0.0"], "{events}");
    let table = admin_ok(stack, &["events", "--target", &web.id.to_string()]).await;
    assert!(
        table.starts_with(" TIME") && table.contains("user-alice"),
        "{table}"
    );
    let explained = admin_ok(stack, &["explain", "ci", "repository:acme/web:push"]).await;
    assert!(explained.contains("push: denied"), "{explained}");
    assert!(
        explained.contains("no explicit grant gives push"),
        "{explained}"
    );

    // A stale revision is refused and changes nothing; the current one is read when none is
    // given.
    let stale = admin(
        stack,
        &["images", "public", "acme/web", "true", "--revision", "99"],
        "",
    )
    .await;
    assert!(!stale.status.success());
    assert!(String::from_utf8_lossy(&stale.stderr).contains("412"));
    let images = admin_ok(stack, &["images", "list", "acme"]).await;
    assert!(
        images.contains("acme/web") && images.contains("false"),
        "{images}"
    );
    admin_ok(stack, &["images", "public", "acme/web", "true"]).await;
    let images = admin_ok(stack, &["--json", "images", "list", "acme"]).await;
    assert!(images.contains("\"public\": true"), "{images}");

    // The token also comes from CARDGATE_TOKEN.
    let token = std::fs::read_to_string(stack.path("cli.token")).unwrap();
    let from_env = Command::new(cardgate())
        .args(["admin", "--url", &stack.cardgate_url, "whoami"])
        .env_remove("CARDGATE_TOKEN_FILE")
        .env("CARDGATE_TOKEN", token.trim())
        .output()
        .await
        .unwrap();
    assert!(String::from_utf8_lossy(&from_env.stdout).contains("user-alice"));

    // Without a token the CLI says how to get one.
    std::fs::remove_file(stack.path("cli.token")).unwrap();
    let anonymous = admin(stack, &["whoami"], "").await;
    assert!(!anonymous.status.success());
    assert!(String::from_utf8_lossy(&anonymous.stderr).contains("token"));
}

/// The subcommands a `--help` text lists under `Commands:` (`help` left out).
fn subcommands(help: &str) -> Vec<String> {
    help.lines()
        .skip_while(|line| line.trim() != "Commands:")
        .skip(1)
        .take_while(|line| !line.trim().is_empty())
        .filter_map(|line| line.split_whitespace().next())
        .filter(|name| *name != "help")
        .map(str::to_owned)
        .collect()
}

#[tokio::test]
async fn every_admin_subcommand_shows_the_global_options_in_its_help() {
    let mut pending = vec![vec!["admin".to_owned()]];
    let mut checked = Vec::new();
    while let Some(command) = pending.pop() {
        let output = Command::new(cardgate())
            .args(&command)
            .arg("--help")
            .env_remove("CARDGATE_TOKEN")
            .env_remove("CARDGATE_TOKEN_FILE")
            .env_remove("CARDGATE_URL")
            .output()
            .await
            .unwrap();
        assert_succeeded(&output);
        let help = String::from_utf8(output.stdout).unwrap();
        for option in ["--url", "--token-file", "--json"] {
            assert!(
                help.contains(option),
                "`cardgate {} --help` does not show {option}:\n{help}",
                command.join(" ")
            );
        }
        for sub in subcommands(&help) {
            let mut deeper = command.clone();
            deeper.push(sub);
            pending.push(deeper);
        }
        checked.push(command.join(" "));
    }
    // The walk reached the leaves, not only the top.
    for command in [
        "admin users create",
        "admin images list",
        "admin events",
        "admin tokens revoke",
        "admin roles deactivate",
    ] {
        assert!(checked.iter().any(|c| c == command), "{checked:?}");
    }
}

#[tokio::test]
async fn the_cli_leaves_default_roles_to_the_server_pages_listings_and_asks_events_by_slug() {
    let url = fresh_database_url().await;
    let f = Fixture::on(Store::connect_lazy(&url, &PoolSettings::default()).unwrap()).await;
    let hash = cardgate_authz_static::hash_password(&"admin-e2e-password".into()).unwrap();
    f.store
        .set_password(&f.admin, &f.admin, &hash)
        .await
        .unwrap();
    let acme = f.org("acme").await;
    for repository in ["acme/web", "acme/web-api", "acme/api"] {
        f.image(repository, &[acme.slug.as_str()], false).await;
    }
    let stack = &Stack::start(&[("CARDGATE__DATABASE__URL", url.as_str())]).await;
    let token_file = stack.path("cli.token");
    let login = admin(
        stack,
        &["login", "admin", "--save", token_file.to_str().unwrap()],
        "admin-e2e-password\n",
    )
    .await;
    assert_succeeded(&login);

    // No role named: the server's default roles; a role that is not one is refused.
    admin_ok(stack, &["users", "create", "bob"]).await;
    let bob: Value =
        serde_json::from_str(&admin_ok(stack, &["--json", "users", "show", "bob"]).await).unwrap();
    assert_eq!(
        bob["cards"][0]["data"]["roles"],
        serde_json::json!(["user-default"])
    );
    let refused = admin(
        stack,
        &["users", "create", "eve", "--role", "user-defualt"],
        "",
    )
    .await;
    assert!(!refused.status.success());
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(
        stderr.contains("400") && stderr.contains("roles"),
        "{stderr}"
    );
    for user in ["carol", "dave", "erin"] {
        admin_ok(stack, &["users", "create", user]).await;
    }

    // A page, with the cursor of the next one; every page with --all.
    let everyone: Value =
        serde_json::from_str(&admin_ok(stack, &["--json", "users", "list"]).await).unwrap();
    let slugs = |list: &Value| -> Vec<String> {
        list["cards"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["slug"].as_str().unwrap().to_owned())
            .collect()
    };
    let everyone = slugs(&everyone);
    assert!(everyone.len() > 4, "{everyone:?}");
    let first = admin(stack, &["users", "list", "--limit", "2"], "").await;
    assert_succeeded(&first);
    let stderr = String::from_utf8_lossy(&first.stderr);
    assert!(
        stderr.contains(&format!("--after {}", everyone[1])),
        "{stderr}"
    );
    let second: Value = serde_json::from_str(
        &admin_ok(
            stack,
            &[
                "--json",
                "users",
                "list",
                "--limit",
                "2",
                "--after",
                &everyone[1],
            ],
        )
        .await,
    )
    .unwrap();
    assert_eq!(slugs(&second), everyone[2..4]);
    assert_eq!(second["next"], everyone[3].as_str());
    let all: Value = serde_json::from_str(
        &admin_ok(stack, &["--json", "users", "list", "--all", "--limit", "2"]).await,
    )
    .unwrap();
    assert_eq!(slugs(&all), everyone);
    assert!(all["next"].is_null());
    let zero = admin(stack, &["users", "list", "--limit", "0"], "").await;
    assert!(!zero.status.success());

    // Images by the start of their name.
    let web = admin_ok(
        stack,
        &["--json", "images", "list", "acme", "--query", "web"],
    )
    .await;
    let web: Value = serde_json::from_str(&web).unwrap();
    let mut names: Vec<&str> = web["cards"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["data"]["repository"].as_str().unwrap())
        .collect();
    names.sort_unstable();
    assert_eq!(names, ["acme/web", "acme/web-api"]);

    // Events by the slugs they show.
    let events: Value = serde_json::from_str(
        &admin_ok(
            stack,
            &[
                "--json",
                "events",
                "--actor",
                "user-admin",
                "--target",
                "user-bob",
            ],
        )
        .await,
    )
    .unwrap();
    let events = events["events"].as_array().unwrap();
    assert!(!events.is_empty());
    assert!(
        events
            .iter()
            .all(|e| e["actor"] == "user-admin" && e["target"] == "user-bob"),
        "{events:?}"
    );
    let none = admin_ok(stack, &["--json", "events", "--actor", "user-nobody"]).await;
    assert_eq!(
        serde_json::from_str::<Value>(&none).unwrap(),
        serde_json::json!({"events": []})
    );
}
