#!/usr/bin/env bash
# Distribution (issue 8): builds the .deb, the npm tarball and the Python package with
# scripts/dist.sh (the binaries with the MSRV toolchain), installs the .deb with dpkg -i on this
# machine and uses what it installed — the CLI, the gateway as its own user from the example
# config, the C library through pkg-config, man pages, completions, the systemd unit — runs every
# code block of README.md against it (tests/readme/run.py), checks `cargo install --path crates/…`, and
# purges the package at the end.
set -euo pipefail
cd "$(dirname "$0")/../.."
source scripts/lib.sh
root=$PWD

need_apt dpkg-dev pkgconf gcc libc6-dev curl man-db bash-completion openssl xxd php8.2-cli python3-venv
command -v node >/dev/null && command -v npm >/dev/null || need_apt nodejs npm

# has [GREP-OPTIONS] PATTERN: grep -q over the whole input, read to the end first (grep -q exits
# at the first match, and the writer then fails with EPIPE under pipefail).
has() {
  local all
  all=$(cat)
  grep -q "$@" <<<"$all"
}

version=$(package_field version)
msrv=$(package_field rust_version)
arch=$(dpkg --print-architecture)
deb=$root/target/dist/siptoken_${version}-1_${arch}.deb
work=$(mktemp -d)
gateway_pid=
cleanup() {
  [ -z "$gateway_pid" ] || kill "$gateway_pid" 2>/dev/null || true
  if dpkg-query -W -f='${Status}' siptoken 2>/dev/null | has "ok installed"; then
    dpkg --purge siptoken >/dev/null || true
  fi
  rm -rf "$work"
}
trap cleanup EXIT

# --- MSRV ----------------------------------------------------------------------------------------
# rust-version in Cargo.toml is the oldest toolchain this machine has (rustup cannot download
# others here): the release binaries that go into the package are built with exactly it. A later
# `cargo build --release` with stable (the same rustc) reuses them.
msrv_build() {
  local toolchain="$msrv"
  [[ $toolchain == *.*.* ]] || toolchain="$msrv.0"
  rustup toolchain list | has "^$toolchain-" || { echo "toolchain $toolchain (rust-version $msrv) is not installed" >&2; return 1; }
  cargo "+$toolchain" build --release -p siptoken-cli -p siptoken-gateway -p siptoken-ffi
}
step "MSRV: release build with Rust $msrv (rust-version)" msrv_build

# --- build ---------------------------------------------------------------------------------------
step "scripts/dist.sh (deb, npm, python)" scripts/dist.sh deb npm python

contents() {
  dpkg-deb -c "$deb" | awk '{ print $6 }' | sed 's|^\./|/|' | grep -v '/$' | sort > "$work/contents"
  local want
  for want in /usr/bin/siptoken /usr/bin/siptoken-gateway /usr/lib/libsiptoken.so /usr/include/siptoken.h \
    /usr/lib/pkgconfig/siptoken.pc /usr/share/man/man1/siptoken.1.gz /usr/share/man/man1/siptoken-issue.1.gz \
    /usr/share/man/man8/siptoken-gateway.8.gz /usr/share/bash-completion/completions/siptoken \
    /usr/share/zsh/vendor-completions/_siptoken /usr/share/fish/vendor_completions.d/siptoken.fish \
    /etc/siptoken/gateway.toml /lib/systemd/system/siptoken-gateway.service /usr/share/doc/siptoken/copyright; do
    grep -qx "$want" "$work/contents" || { echo "missing from the package: $want" >&2; return 1; }
  done
  # The key ring is made on the machine by postinst, never shipped.
  ! grep -q keys.conf "$work/contents"
  [ "$(dpkg-deb -f "$deb" Version)" = "$version-1" ]
  dpkg-deb --ctrl-tarfile "$deb" | tar xO ./conffiles | has -x /etc/siptoken/gateway.toml
  echo "$(wc -l < "$work/contents") files, $(stat -c %s "$deb") bytes, Installed-Size $(dpkg-deb -f "$deb" Installed-Size) KiB"
}
step "package contents" contents

# --- install -------------------------------------------------------------------------------------
install_fresh() {
  # A machine reused from an earlier run: start from nothing.
  dpkg --purge siptoken >/dev/null 2>&1 || true
  [ ! -e /etc/siptoken/keys.conf ]
  local t0=$EPOCHREALTIME
  dpkg -i "$deb"
  echo "dpkg -i took $(awk -v a="$t0" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.2f", b - a }') s"
  dpkg-query -W -f='${Status}\n' siptoken | has -x "install ok installed"
}
step "dpkg -i" install_fresh

key_ring() {
  id siptoken
  [ "$(getent passwd siptoken | cut -d: -f7)" = /usr/sbin/nologin ]
  [ "$(stat -c '%U:%G %a' /etc/siptoken/keys.conf)" = "siptoken:siptoken 600" ]
  grep -Eq '^CRM\.[A-Za-z0-9_-]+=[0-9a-f]{64}$' /etc/siptoken/keys.conf
  # Only that user (and root) can read it.
  runuser -u siptoken -- head -c1 /etc/siptoken/keys.conf >/dev/null
  if runuser -u nobody -- cat /etc/siptoken/keys.conf >/dev/null 2>&1; then
    echo "nobody can read the key ring" >&2
    return 1
  fi
}
step "postinst: system user siptoken, key ring readable only by it" key_ring

reinstall_keeps_keys() {
  # An administrator's key ring (and its permissions) survives reinstallation and upgrades.
  printf 'CRM=8263D535FFFFFFFF7B0F60\nCRM.k1=%s\n' "$(openssl rand -hex 32)" > /etc/siptoken/keys.conf
  chmod 600 /etc/siptoken/keys.conf
  local before
  before=$(sha256sum /etc/siptoken/keys.conf)
  dpkg -i "$deb"
  [ "$(sha256sum /etc/siptoken/keys.conf)" = "$before" ]
  [ "$(stat -c '%U:%G %a' /etc/siptoken/keys.conf)" = "siptoken:siptoken 600" ]
  [ "$(getent passwd | grep -c '^siptoken:')" = 1 ]
  # The conffile was not changed, so dpkg kept it without a prompt.
  cmp /etc/siptoken/gateway.toml examples/gateway.toml
  # Not enabled by the installation; an administrator's `systemctl enable` survives upgrades.
  local wants=/etc/systemd/system/multi-user.target.wants/siptoken-gateway.service
  [ ! -e "$wants" ]
  command -v systemctl >/dev/null || { echo "no systemctl: enablement not checked"; return 0; }
  systemctl enable siptoken-gateway.service 2>/dev/null
  dpkg -i "$deb" >/dev/null
  [ -L "$wants" ]
  systemctl disable siptoken-gateway.service 2>/dev/null
  [ ! -e "$wants" ]
}
step "dpkg -i again: idempotent, the key ring is kept" reinstall_keeps_keys

cli() (
  cd "$work"
  [ "$(command -v siptoken)" = /usr/bin/siptoken ]
  siptoken --version | has -x "siptoken $version"
  siptoken keygen --app CRM > keys.conf
  chmod 600 keys.conf
  printf '%s' 'pa"ss<&>' | siptoken issue --keys keys.conf --app CRM --login crm1 --domain sip.example.org \
    --password-stdin > token
  siptoken verify --keys keys.conf --json --show-password < token | has '"password":"pa\\"ss<&>"'
  # The package's own key ring, as root.
  printf 'pw' | siptoken issue --keys /etc/siptoken/keys.conf --app CRM --login crm1 --domain sip.example.org \
    --password-stdin | siptoken verify --keys /etc/siptoken/keys.conf
  # A token from another key ring is rejected (exit status 1).
  set +e
  siptoken verify --keys /etc/siptoken/keys.conf < token >/dev/null 2>&1
  local rc=$?
  set -e
  [ $rc -eq 1 ]
)
step "installed siptoken: keygen, issue, verify" cli

gateway() {
  runuser -u siptoken -- siptoken-gateway --config /etc/siptoken/gateway.toml --check
  # As the unit runs it: its own user, the example config, the key ring next to it, no new
  # privileges and an empty capability bounding set (the rest of the unit's sandbox needs
  # systemd, which does not run here).
  setpriv --reuid=siptoken --regid=siptoken --init-groups --no-new-privs --bounding-set=-all --inh-caps=-all \
    -- siptoken-gateway --config /etc/siptoken/gateway.toml > "$work/gw.out" 2> "$work/gw.err" &
  gateway_pid=$!
  local i
  for i in $(seq 100); do
    curl -fsS http://127.0.0.1:8088/healthz > "$work/healthz" 2>/dev/null && break
    kill -0 "$gateway_pid" 2>/dev/null || { cat "$work/gw.err" >&2; return 1; }
    sleep 0.1
  done
  echo "GET /healthz: $(cat "$work/healthz")"
  grep -q "listening on http://127.0.0.1:8088" "$work/gw.out"
  kill -TERM "$gateway_pid"
  local rc=0
  wait "$gateway_pid" || rc=$?
  gateway_pid=
  [ $rc -eq 0 ] || { echo "gateway exited with $rc" >&2; cat "$work/gw.err" >&2; return 1; }
  # No key material in its output.
  ! grep -Fqf <(cut -d= -f2 /etc/siptoken/keys.conf) "$work/gw.out" "$work/gw.err"
}
step "installed siptoken-gateway: example config, /healthz, SIGTERM" gateway

c_library() (
  cd "$work"
  pkg-config --modversion siptoken | has -x "$version"
  echo "pkg-config: $(pkg-config --cflags --libs siptoken)"
  # The package's own C example, against the installed header and library (found through
  # ld.so.cache: the ldconfig trigger ran).
  cc -std=c11 -Wall -Wextra -Werror /usr/share/doc/siptoken/examples/issue_verify.c \
    $(pkg-config --cflags --libs siptoken) -o issue_verify
  local so
  so=$(ldd ./issue_verify | awk '$1 == "libsiptoken.so" { print $3 }')
  [ "$(readlink -f "$so")" = /usr/lib/libsiptoken.so ]
  token=$(printf 's3cr<t\n' | SIPTOKEN_KEYS=/etc/siptoken/keys.conf ./issue_verify CRM crm1 sip.example.org)
  printf '%s' "$token" | siptoken verify --keys /etc/siptoken/keys.conf --json | has '"login":"crm1"'
)
step "C: pkg-config --cflags --libs siptoken, compile, link, run" c_library

docs_and_completions() {
  local page
  for page in siptoken siptoken-issue siptoken-verify siptoken-keygen siptoken-inspect siptoken-completions; do
    man -w "$page" | has "/usr/share/man/man1/$page.1.gz"
  done
  man -w 8 siptoken-gateway | has /usr/share/man/man8/siptoken-gateway.8.gz
  man 8 siptoken-gateway | has -- --config
  # bash: the completion file loads and registers a function for siptoken.
  bash -c 'source /usr/share/bash-completion/completions/siptoken && complete -p siptoken' | has siptoken
  # The others are at least what the installed binary generates.
  diff /usr/share/zsh/vendor-completions/_siptoken <(siptoken completions zsh)
  diff /usr/share/fish/vendor_completions.d/siptoken.fish <(siptoken completions fish)
}
step "man pages and shell completions" docs_and_completions

unit() {
  local u=/lib/systemd/system/siptoken-gateway.service d
  # The directives themselves, with or without systemd on this machine. LimitCORE=0: no core
  # file may hold the SIP passwords and the key ring (issue 14, item 10).
  for d in 'User=siptoken' 'ProtectSystem=strict' 'NoNewPrivileges=yes' 'PrivateTmp=yes' 'ProtectHome=yes' 'CapabilityBoundingSet=$' 'LimitCORE=0$'; do
    grep -Eq "^$d" "$u" || { echo "unit lacks $d" >&2; return 1; }
  done
  if ! command -v systemd-analyze >/dev/null; then
    echo "systemd-analyze not available: verify and security score skipped (directives checked)"
    return 0
  fi
  systemd-analyze verify "$u"
  # The hardening, scored by systemd itself (0 = locked down, 10 = exposed; "OK" is below 2).
  systemd-analyze security --offline=yes --threshold=20 "$u" | tail -1
}
step "systemd unit: systemd-analyze verify and security" unit

step "README.md: every code block (tests/readme/run.py)" python3 tests/readme/run.py

cargo_install() {
  # Into a scratch root, reusing target/ (the release build above), as a user would from a checkout.
  CARGO_TARGET_DIR=$root/target cargo install --quiet --path crates/siptoken-cli --root "$work/cargo-root"
  CARGO_TARGET_DIR=$root/target cargo install --quiet --path crates/siptoken-gateway --root "$work/cargo-root"
  "$work/cargo-root/bin/siptoken" --version | has -x "siptoken $version"
  "$work/cargo-root/bin/siptoken-gateway" --version | has -x "siptoken-gateway $version"
}
step "cargo install --path crates/… gives both binaries" cargo_install

purge() {
  dpkg -r siptoken
  [ ! -e /usr/bin/siptoken ] && [ ! -e /usr/lib/libsiptoken.so ]
  [ -e /etc/siptoken/keys.conf ] # remove keeps configuration
  dpkg --purge siptoken
  [ ! -e /etc/siptoken ]
  ! dpkg-query -W -f='${Status}' siptoken 2>/dev/null | has "ok installed"
}
step "dpkg -r, dpkg --purge: binaries, then key ring and /etc/siptoken gone" purge
