//! `cardgate keygen` makes what gen-token-auth-cert makes, and the server accepts it.

use std::process::Command;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use cardgate_token::SigningKey;

use crate::cardgate;

fn env_lines(stdout: &str) -> Vec<(String, String)> {
    stdout
        .lines()
        .map(|l| {
            let (k, v) = l.split_once('=').unwrap();
            (k.to_owned(), v.trim_matches('"').to_owned())
        })
        .collect()
}

#[test]
fn keygen_writes_key_certificate_kid_and_jwks_and_prints_env_lines() {
    for alg in ["ES256", "RS256"] {
        let dir = tempfile::tempdir().unwrap();
        let output = Command::new(cardgate())
            .args([
                "keygen",
                "--issuer",
                "api.example.test",
                "--alg",
                alg,
                "--out",
            ])
            .arg(dir.path())
            .output()
            .unwrap();
        assert!(output.status.success(), "{output:?}");
        let read = |suffix: &str| {
            std::fs::read_to_string(dir.path().join(format!("api.example.test.{suffix}"))).unwrap()
        };
        let (key, cert, kid, jwks) = (read("pem"), read("crt"), read("kid"), read("jwks.json"));
        let loaded =
            SigningKey::from_pem(&key, Some(alg.parse().unwrap()), Some(&cert), Some(&kid))
                .unwrap();
        assert_eq!(loaded.kid().as_str(), kid.trim());
        let jwks: serde_json::Value = serde_json::from_str(&jwks).unwrap();
        assert_eq!(jwks["keys"][0]["kid"], kid.trim());
        assert_eq!(jwks["keys"][0]["alg"], alg);

        let mode = std::os::unix::fs::PermissionsExt::mode(
            &std::fs::metadata(dir.path().join("api.example.test.pem"))
                .unwrap()
                .permissions(),
        );
        assert_eq!(
            mode & 0o777,
            0o600,
            "the private key must not be world-readable"
        );

        let stdout = String::from_utf8(output.stdout).unwrap();
        let lines = env_lines(&stdout);
        let names: Vec<&str> = lines.iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(
            names,
            [
                "REGISTRY_TOKEN_AUTH_CERT_ISSUER",
                "REGISTRY_TOKEN_AUTH_JWT_ALGO",
                "REGISTRY_TOKEN_AUTH_CERT",
                "REGISTRY_TOKEN_AUTH_CERT_KEY",
                "REGISTRY_TOKEN_AUTH_CERT_KID",
                "REGISTRY_TOKEN_AUTH_JWKS",
            ]
        );
        let decoded = |i: usize| String::from_utf8(STANDARD.decode(&lines[i].1).unwrap()).unwrap();
        assert_eq!(decoded(2), cert);
        assert_eq!(decoded(3), key);
        assert_eq!(decoded(4).trim(), kid.trim());

        // A second run refuses to overwrite.
        let again = Command::new(cardgate())
            .args(["keygen", "--issuer", "api.example.test", "--out"])
            .arg(dir.path())
            .output()
            .unwrap();
        assert!(!again.status.success());
        assert!(String::from_utf8_lossy(&again.stderr).contains("--force"));
    }
}
