#!/usr/bin/env bash
# The crate graph runs one way (ARCHITECTURE.md), and the CLI builds without a web server:
# - webui-doctor-core (the listing and diagnosis library) links no clap, tokio, hyper or axum;
# - webui-doctor-server links no metrics library, so none can be in its public API, and nothing
#   of webui-doctor's own;
# - webui-doctor built with --no-default-features links no async runtime, HTTP or TLS crate, its
#   `sockets` output (table and JSON) equals the full build's on the same sockets, and its `serve`
#   says it is not there (exit 2).
# Prints both binaries' sizes. Run by tests/run-all.sh.
set -euo pipefail
cd "$(dirname "$0")/.."

fail() {
    echo "crates: $*" >&2
    exit 1
}
# Each crate a package depends on, one per line, as "name vX.Y.Z".
deps() { cargo tree --locked -e normal --prefix none --no-dedupe "$@" | sed 's/ (.*//' | sort -u; }

bad=$(deps -p webui-doctor-core | grep -E '^(clap|tokio|hyper|axum|webui-doctor-server) ' || true)
[ -z "$bad" ] || fail "webui-doctor-core depends on: $bad"
bad=$(deps -p webui-doctor-server | grep -E '^(prometheus-client|clap|webui-doctor-core|webui-doctor) ' || true)
[ -z "$bad" ] || fail "webui-doctor-server depends on: $bad"
bad=$(deps -p webui-doctor --no-default-features | grep -E '^(tokio|hyper|axum|rustls|webui-doctor-server) ' || true)
[ -z "$bad" ] || fail "webui-doctor --no-default-features depends on: $bad"

cargo build --locked --release --quiet
cargo build --locked --release --quiet --no-default-features --target-dir target/lean
full=target/release/webui-doctor
lean=target/lean/release/webui-doctor

# A listener of our own, so both builds see the same socket (listening: no idle times that
# move between the two reads).
python3 -c 'import socket, sys, time
s = socket.socket(); s.bind(("127.0.0.1", 0)); s.listen()
print(s.getsockname()[1], flush=True); time.sleep(60)' >target/lean/port &
holder=$!
trap 'kill $holder 2>/dev/null || true' EXIT
for _ in $(seq 50); do [ -s target/lean/port ] && break; sleep 0.1; done
port=$(cat target/lean/port)
[ -n "$port" ] || fail "the test listener did not start"
for format in table json; do
    a=$("$full" sockets --port "$port" --state listening --format "$format" | grep -v 'taken')
    b=$("$lean" sockets --port "$port" --state listening --format "$format" | grep -v 'taken')
    [ "$a" = "$b" ] || fail "sockets --format $format differs between the full and the lean build"
    grep -q "127.0.0.1:$port" <<<"$a" || fail "sockets --format $format did not list the test sockets"
done
set +e
msg=$("$lean" serve 2>&1 >/dev/null)
rc=$?
set -e
[ $rc -eq 2 ] || fail "serve in the lean build exited $rc, not 2"
grep -q 'built without the `serve` feature' <<<"$msg" || fail "serve in the lean build said: $msg"

echo "crates: one way; binary sizes (release): full $(stat -c %s "$full") bytes, --no-default-features $(stat -c %s "$lean") bytes"
