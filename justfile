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

# Formatting, lints and the API docs, as CI checks them.
lint:
    cargo fmt --all -- --check
    cargo clippy --workspace --all-targets -- -D warnings
    RUSTDOCFLAGS="-D warnings" cargo doc --no-deps --workspace

# Generate a signing key, certificate, kid and JWKS for ISSUER into OUT.
keygen issuer out="." alg="ES256":
    cargo run --release -- keygen --issuer {{issuer}} --out {{out}} --alg {{alg}}

# Print the argon2id hash of a password read from standard input.
hash-password:
    cargo run --release -q -- hash-password

# Fuzz every target (or only TARGET) for SECONDS each: nightly and `cargo install cargo-fuzz`.
# Without a sanitizer: cardgate has no unsafe code; the targets look for panics, hangs, OOM.
fuzz seconds="60" target="":
    #!/usr/bin/env bash
    set -euo pipefail
    cd fuzz
    targets="{{target}}"
    [ -n "$targets" ] || targets="$(cargo +nightly fuzz list)"
    for t in $targets; do
        echo "== $t ({{seconds}} s)"
        # Seeds: the shipped configuration files, and freshly generated keys and certificates.
        mkdir -p "corpus/$t"
        seeds=""
        if [ "$t" = settings ]; then
            seeds="../config"
        elif [ "$t" = signing_key ]; then
            seeds="$(mktemp -d)"
            for alg in ES256 RS256; do
                cargo run -q --manifest-path ../Cargo.toml -p cardgate -- keygen --issuer "seed-$alg" \
                    --alg "$alg" --out "$seeds" > /dev/null
            done
        fi
        cargo +nightly fuzz run "$t" --sanitizer none --target-dir ../target/fuzz \
            "corpus/$t" $seeds -- -max_total_time={{seconds}} -timeout=10 -rss_limit_mb=2048
    done

# Soak: a release build under wrk at half capacity for SECONDS (default 600); fails on any
# error, RSS growth of 10% or more after the warm-up, or growing fds or database connections.
soak seconds="600":
    cargo build --release -p cardgate
    bench/soak.sh {{seconds}}

# Benchmark the token endpoint (release build, private PostgreSQL, large seeded store, wrk);
# results in bench/results.md. Needs wrk: apt-get install -y wrk.
bench:
    bench/run.sh
