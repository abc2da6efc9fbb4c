# cardgate tasks. `just --list` shows them.

# Run on the embedded dev defaults (demo users, dev keys, 127.0.0.1:8080).
dev:
    cargo run --release -- dev

# The whole test suite (what CI runs).
test:
    cargo test --workspace

# Only the end-to-end test: real docker-registry and skopeo.
e2e:
    cargo test -p cardgate --test e2e -- --nocapture

# Formatting and lints, as CI checks them.
lint:
    cargo fmt --all -- --check
    cargo clippy --workspace --all-targets -- -D warnings

# Generate a signing key, certificate, kid and JWKS for ISSUER into OUT.
keygen issuer out="." alg="ES256":
    cargo run --release -- keygen --issuer {{issuer}} --out {{out}} --alg {{alg}}

# Print the argon2id hash of a password read from standard input.
hash-password:
    cargo run --release -q -- hash-password

# Benchmark the token endpoint (release build, private PostgreSQL, large seeded store, wrk);
# results in bench/results.md. Needs wrk: apt-get install -y wrk.
bench:
    bench/run.sh
