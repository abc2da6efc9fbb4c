//! `cardgate keygen`: what open-balena's `gen-token-auth-cert` makes, plus a JWKS, and the
//! `.env` lines that carry them.

use std::fs::OpenOptions;
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use anyhow::Context;
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use cardgate_token::{GeneratedKey, SigningAlgorithm};
use time::OffsetDateTime;

#[derive(Debug, clap::Args)]
pub struct KeygenArgs {
    /// The issuer (`REGISTRY_TOKEN_AUTH_CERT_ISSUER`): the certificate's CN and the files' name.
    #[arg(long)]
    pub issuer: String,
    /// Folder to write NAME.pem, NAME.crt, NAME.kid and NAME.jwks.json into.
    #[arg(long, default_value = ".")]
    pub out: PathBuf,
    /// Signing algorithm.
    #[arg(long, default_value = "ES256", value_parser = parse_alg)]
    pub alg: SigningAlgorithm,
    /// Certificate validity in days.
    #[arg(long, default_value_t = 3650)]
    pub days: u32,
    /// Overwrite existing files.
    #[arg(long)]
    pub force: bool,
}

fn parse_alg(s: &str) -> Result<SigningAlgorithm, String> {
    s.parse()
        .map_err(|e: cardgate_token::KeyError| e.to_string())
}

/// The files of a generated key, by suffix.
pub struct KeyFiles {
    pub key: PathBuf,
    pub certificate: PathBuf,
    pub kid: PathBuf,
    pub jwks: PathBuf,
}

impl KeyFiles {
    /// The files for `issuer` in `dir`; the issuer names them, so it must be a plain name.
    pub fn new(dir: &Path, issuer: &str) -> anyhow::Result<Self> {
        anyhow::ensure!(
            !issuer.is_empty()
                && issuer != "."
                && issuer != ".."
                && !issuer.contains(['/', '\\', '\0']),
            "the issuer `{issuer}` names the key files, so it must be a name without path separators"
        );
        Ok(KeyFiles {
            key: dir.join(format!("{issuer}.pem")),
            certificate: dir.join(format!("{issuer}.crt")),
            kid: dir.join(format!("{issuer}.kid")),
            jwks: dir.join(format!("{issuer}.jwks.json")),
        })
    }

    fn all(&self) -> [&Path; 4] {
        [&self.key, &self.certificate, &self.kid, &self.jwks]
    }

    /// Writes the key (mode 0600) and its public companions; refuses to overwrite unless `force`.
    pub fn write(&self, generated: &GeneratedKey, force: bool) -> anyhow::Result<()> {
        if !force && let Some(existing) = self.all().into_iter().find(|p| p.exists()) {
            anyhow::bail!("{} exists; use --force to overwrite", existing.display());
        }
        let contents = [
            generated.key_pem.as_str(),
            generated.certificate_pem.as_str(),
            generated.kid.as_str(),
            generated.jwks_json.as_str(),
        ];
        for (path, text) in self.all().into_iter().zip(contents) {
            let mode = if path == self.key { 0o600 } else { 0o644 };
            let mut file = OpenOptions::new()
                .write(true)
                .create(true)
                .truncate(true)
                .mode(mode)
                .open(path)
                .with_context(|| format!("cannot write {}", path.display()))?;
            file.write_all(text.as_bytes())?;
            if !text.ends_with('\n') {
                file.write_all(b"\n")?;
            }
        }
        Ok(())
    }
}

pub fn run(args: &KeygenArgs) -> anyhow::Result<()> {
    let files = KeyFiles::new(&args.out, &args.issuer)?;
    std::fs::create_dir_all(&args.out)
        .with_context(|| format!("cannot create {}", args.out.display()))?;
    let generated =
        cardgate_token::generate(args.alg, &args.issuer, OffsetDateTime::now_utc(), args.days)?;
    files.write(&generated, args.force)?;
    for path in files.all() {
        eprintln!("wrote {}", path.display());
    }
    let b64 = |s: &str| STANDARD.encode(s.as_bytes());
    println!("REGISTRY_TOKEN_AUTH_CERT_ISSUER={}", args.issuer);
    println!("REGISTRY_TOKEN_AUTH_JWT_ALGO={}", args.alg);
    println!(
        "REGISTRY_TOKEN_AUTH_CERT=\"{}\"",
        b64(&generated.certificate_pem)
    );
    println!(
        "REGISTRY_TOKEN_AUTH_CERT_KEY=\"{}\"",
        b64(&generated.key_pem)
    );
    println!(
        "REGISTRY_TOKEN_AUTH_CERT_KID=\"{}\"",
        b64(generated.kid.as_str())
    );
    println!("REGISTRY_TOKEN_AUTH_JWKS=\"{}\"", b64(&generated.jwks_json));
    Ok(())
}
