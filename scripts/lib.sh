# Shared helpers for scripts/test.sh and its stages (source it; do not run it).

export PATH="$HOME/.cargo/bin:$PATH"

# need_apt PKG...: installs the Debian packages that are missing, idempotently. Blocks service
# start-up in package scripts (policy-rc.d), since tests start their own servers.
need_apt() {
  local missing=()
  for pkg in "$@"; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "ok installed" || missing+=("$pkg")
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  echo "installing Debian packages: ${missing[*]}"
  local sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  if [ ! -e /usr/sbin/policy-rc.d ]; then
    printf '#!/bin/sh\nexit 101\n' | $sudo tee /usr/sbin/policy-rc.d >/dev/null
    $sudo chmod +x /usr/sbin/policy-rc.d
  fi
  if [ -z "${SIPTOKEN_APT_UPDATED:-}" ]; then
    $sudo apt-get -o DPkg::Lock::Timeout=900 update -qq
    export SIPTOKEN_APT_UPDATED=1
  fi
  DEBIAN_FRONTEND=noninteractive $sudo apt-get -o DPkg::Lock::Timeout=900 install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

# need_pip MODULE PACKAGE: installs PACKAGE from PyPI when python3 cannot import MODULE.
need_pip() {
  python3 -c "import $1" 2>/dev/null && return 0
  python3 -m pip install --quiet "$2" 2>/dev/null ||
    python3 -m pip install --quiet --break-system-packages "$2"
}

# step NAME CMD...: runs a command with a heading and its duration.
step() {
  local name=$1
  shift
  local t0=$SECONDS
  echo "--- $name"
  "$@"
  echo "--- $name: ok ($((SECONDS - t0)) s)"
}

# kill_background_on_exit: arms traps so that when the script ends (normally, on failure, or on
# SIGINT/SIGTERM, which exit with 130) the background process whose PID the script keeps in the
# global $pid, if still running, gets SIGTERM and is waited for; the script's exit status is
# kept. Sets pid= (empty); assign pid=$! after starting the process. Used by the load scripts:
# the load tool kills Kamailio and the gateway it started when it gets SIGTERM.
kill_background_on_exit() {
  pid=
  trap _kill_background_now EXIT
  trap 'exit 130' INT TERM
}

# The EXIT trap of kill_background_on_exit.
_kill_background_now() {
  local rc=$?
  if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then
    kill -TERM "$pid"
    wait "$pid" || true
  fi
  exit "$rc"
}

# package_field FIELD [PACKAGE]: a field of a workspace package (default: the core, `siptoken`)
# from `cargo metadata`, e.g. `package_field version`, `package_field rust_version`. The version
# lives in one place, [workspace.package] of the root Cargo.toml.
package_field() {
  cargo metadata --no-deps --format-version 1 --manifest-path "$(git -C "$(dirname "${BASH_SOURCE[0]}")" rev-parse --show-toplevel)/Cargo.toml" |
    python3 -c 'import json, sys; f, p = sys.argv[1:]; print(next(x[f] for x in json.load(sys.stdin)["packages"] if x["name"] == p) or "")' "$1" "${2:-siptoken}"
}

# npm_pack_exactly DIR NAME DEST FILE…: `npm pack` the package NAME built in DIR into DEST, check
# that the tarball holds exactly FILE… and report its size. Sets $version and $tarball.
npm_pack_exactly() {
  local dir=$1 name=$2 dest=$3
  shift 3
  version=$(node -p "require(\"./$dir/package.json\").version")
  (cd "$dir" && npm pack --silent --pack-destination "$dest" >/dev/null)
  tarball="$dest/$name-$version.tgz"
  [ -f "$tarball" ] || { echo "npm pack made no $tarball" >&2; return 1; }
  echo "tarball: $(stat -c %s "$tarball") bytes"
  diff <(tar tzf "$tarball" | sort) <(printf 'package/%s\n' "$@" | sort)
}
