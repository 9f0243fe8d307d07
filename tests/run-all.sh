#!/usr/bin/env bash
# The whole webui-doctor test suite, for real, on a fresh Debian machine: installs what the tests
# need (ss and ip from iproute2, nft from nftables, Prometheus and promtool from prometheus,
# openssl and curl for the TLS tests, golang-go, nginx and python3-venv (gunicorn and uvicorn
# from PyPI) for the third-party servers,
# node_exporter, chromium and chromedriver for the dashboard, setpriv and script from
# util-linux, systemd-analyze to check the shipped units, man-db and bash-completion for the
# Debian package's test), then runs formatting, lints, the server crate's docs (warnings are
# errors) and packaging, the crate graph and the build without `serve`, the benchmark's smoke run, the fuzzers (60 s each), every test (the
# server crate's doctests and examples included), and the Debian package's install test. Root-only tests (network
# namespaces, nftables rules, pidfd_getfd, SOCK_DESTROY, switching to `nobody`) run when this is
# run as root, as CI does. `.ci/run` calls this script.
set -euo pipefail
cd "$(dirname "$0")/.."

need=()
command -v ss >/dev/null && command -v ip >/dev/null || need+=(iproute2)
command -v nft >/dev/null || need+=(nftables)
command -v promtool >/dev/null || need+=(prometheus)
command -v prometheus-node-exporter >/dev/null || need+=(prometheus-node-exporter)
[ -x /usr/bin/chromium ] || need+=(chromium)
[ -x /usr/bin/chromedriver ] || need+=(chromium-driver)
command -v setpriv >/dev/null || need+=(util-linux)
[ -x /usr/bin/time ] || need+=(time)
command -v script >/dev/null || need+=(bsdutils)
command -v systemd-analyze >/dev/null || need+=(systemd)
command -v man >/dev/null || need+=(man-db)
command -v openssl >/dev/null || need+=(openssl)
command -v curl >/dev/null || need+=(curl)
[ -f /usr/share/bash-completion/bash_completion ] || need+=(bash-completion)
command -v go >/dev/null || need+=(golang-go)
[ -x /usr/sbin/nginx ] || need+=(nginx)
python3 -c 'import ensurepip' 2>/dev/null || need+=(python3-venv)
if [ ${#need[@]} -gt 0 ]; then
    if [ "$(id -u)" -ne 0 ]; then
        echo "run-all: missing ${need[*]}: install them (apt-get install ${need[*]}) or run as root" >&2
        exit 2
    fi
    echo "run-all: installing ${need[*]}"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi

# gunicorn and uvicorn, for the tests that run them as third-party servers, in a virtualenv
# under target/.
if [ ! -x target/test-venv/bin/gunicorn ] || [ ! -x target/test-venv/bin/uvicorn ]; then
    python3 -m venv target/test-venv
    target/test-venv/bin/pip install --quiet --disable-pip-version-check gunicorn uvicorn
fi

cargo fmt --all -- --check
cargo clippy --workspace --all-targets --locked -- -D warnings
# The crate graph runs one way and the CLI builds without the dashboard (tests/crates.sh).
tests/crates.sh
# The library crates: every public item documented (missing_docs in each; clippy above fails on
# one left out), no broken links; the server crate packages on its own for others to adopt.
RUSTDOCFLAGS="-D warnings" cargo doc -p webui-doctor-core -p webui-doctor-server --no-deps --locked
cargo package -p webui-doctor-server --no-verify --quiet
# The benchmark's fixture and comparison at a small N: checks that both run and that
# webui-doctor and ss count the same sockets per state (correctness, not timing).
cargo bench --locked --bench compare -- --smoke
# Each fuzz target for 60 s from the committed seeds; fails on any crash.
tests/fuzz.sh
cargo test --workspace --locked
# The .deb: built with cargo-deb (installed from crates.io when missing), installed, checked, removed.
tests/deb.sh
