#!/usr/bin/env bash
# The Debian package, for real: builds it with `cargo deb`, installs it with dpkg, checks that the
# binary runs, `man` finds a page, bash-completion's own loader completes `webui-doctor so<TAB>` to
# `sockets`, every shipped systemd unit passes `systemd-analyze verify`; then removes it and checks
# that nothing it installed is left. Needs root (dpkg); elsewhere it says so and skips, except under
# CI. Removes the package on any failure too.
set -euo pipefail
cd "$(dirname "$0")/.."

if [ "$(id -u)" -ne 0 ]; then
    if [ -n "${CI:-}" ]; then echo "deb: needs root (dpkg -i) in CI" >&2; exit 1; fi
    echo "deb: skipped: installing a package needs root"
    exit 0
fi
if dpkg -s webui-doctor >/dev/null 2>&1; then
    echo "deb: a webui-doctor package is installed already; this test would remove it, so it stops" >&2
    exit 1
fi
command -v cargo-deb >/dev/null || cargo install --locked --quiet cargo-deb
cargo deb --locked --quiet >/dev/null
deb=$(ls -t target/debian/webui-doctor_*.deb | head -1)
fail() { echo "deb: $*" >&2; exit 1; }
work=$(mktemp -d)
trap 'dpkg -r webui-doctor >/dev/null 2>&1 || true; rm -rf "$work"' EXIT

dpkg -i "$deb" >/dev/null
[ "$(command -v webui-doctor)" = /usr/bin/webui-doctor ] || fail "webui-doctor is not /usr/bin/webui-doctor"
webui-doctor --version | grep -q '^webui-doctor [0-9]' || fail "webui-doctor --version: $(webui-doctor --version)"
page=$(man -w webui-doctor-sockets) || fail "man -w webui-doctor-sockets found nothing"
[ "$page" = /usr/share/man/man1/webui-doctor-sockets.1.gz ] || fail "man -w gave $page"

# Completion as an interactive bash does it: bash-completion loads the file by the command's name.
completed=$(bash -c '
    source /usr/share/bash-completion/bash_completion
    __load_completion webui-doctor 2>/dev/null || _comp_load webui-doctor
    func=$(complete -p webui-doctor | sed -E "s/.* -F ([^ ]+) .*/\1/")
    COMP_WORDS=(webui-doctor so); COMP_CWORD=1; COMP_LINE="webui-doctor so"; COMP_POINT=${#COMP_LINE}
    "$func" webui-doctor so webui-doctor
    printf "%s\n" "${COMPREPLY[@]}"')
[ "$completed" = sockets ] || fail "webui-doctor so<TAB> completed to: ${completed:-nothing}"

units=$(dpkg -L webui-doctor | grep '^/usr/lib/systemd/system/.*\.service$')
[ -n "$units" ] || fail "no systemd unit shipped"
for unit in $units; do
    name=$(basename "$unit")
    # A template is verified as one of its instances.
    [[ $name == *@.service ]] && name=${name%@.service}@8787.service
    cp "$unit" "$work/$name"
    out=$(systemd-analyze verify --man=no "$work/$name" 2>&1) || fail "systemd-analyze verify $unit: $out"
    [ -z "$out" ] || fail "systemd-analyze verify $unit: $out"
done
for rules in alerts.yml alerts.test.yml; do
    [ -f "/usr/share/doc/webui-doctor/prometheus/$rules" ] || fail "$rules is not under /usr/share/doc/webui-doctor/prometheus"
done

dpkg -L webui-doctor > "$work/files"
dpkg -r webui-doctor >/dev/null
dpkg -s webui-doctor >/dev/null 2>&1 && fail "still installed after dpkg -r"
left=$(while read -r f; do [ -f "$f" ] && echo "$f"; done < "$work/files" || true)
[ -z "$left" ] || fail "left after dpkg -r: $left"
echo "deb: $(basename "$deb"): installed, binary, man page, bash completion, $(echo "$units" | wc -l) systemd units verified, removed cleanly"
