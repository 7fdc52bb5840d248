#!/usr/bin/env python3
"""Runs every fenced code block of README.md, so the README cannot rot.

Run by scripts/ci/60-package.sh after the .deb is installed: the blocks use the installed
`siptoken` and `siptoken-gateway` (/usr/bin), /etc/siptoken/keys.conf, libsiptoken.so, the npm
tarball and the Python wheel from target/dist/ (scripts/dist.sh).

Conventions (README.md, visible to anyone editing it):
  * Every block has a language; each language has a runner:
      sh      bash -euo pipefail, in a fresh temporary directory (`cwd: repo`: the checkout)
      rust    a complete program, compiled with rustc against the release build of the library
      python  python3 in a venv with the siptoken wheel from target/dist/ installed
      js      node, in a directory where the npm tarballs from target/dist/ (siptoken and
              the browser SDK siptoken-phone) are installed; a block with `import`
              statements runs as an ES module (its prelude too)
      php     php, with the installed header and libsiptoken.so
      conf    not a program: written to the file named by `file:`, then `check:` runs
  * An HTML comment right before a block (invisible when rendered) may add, one per line:
      setup: SHELL       run first, in the same directory and shell (variables carry over)
      prelude: CODE      prepended to a js block (e.g. the token a browser page would hold)
      check: SHELL       run after the block; the block's standard output is in out.txt;
                         `CMD | has PATTERN` is grep -q that reads CMD's output to the end
      teardown: SHELL    run at the end, whatever happened
      cwd: repo          run in the checkout instead of a temporary directory
      file: NAME         write the block to NAME instead of running it (conf)
      background         start the block, retry `check` for up to 20 s, then stop it (servers)
      ci                 the block is the CI entry point: checked to be what .ci/run executes
                         (running it here would run this test again)
  * A block fails the test when it (or setup/check) exits non-zero.
"""
import json
import os
import re
import shlex
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
DIST = ROOT / "target" / "dist"

FENCE = re.compile(r"^```(\S*)\s*$")
COMMENT_START = "<!-- readme-test"


def cargo_version():
    """The workspace version (root Cargo.toml, [workspace.package]), as cargo reads it."""
    out = subprocess.run(["cargo", "metadata", "--no-deps", "--format-version", "1",
                          "--manifest-path", str(ROOT / "Cargo.toml")],
                         check=True, capture_output=True, text=True).stdout
    return next(p["version"] for p in json.loads(out)["packages"] if p["name"] == "siptoken")


def parse(readme):
    """Yields (line number, language, code, directives) for every fenced block."""
    lines = readme.read_text().splitlines()
    i = 0
    pending = None
    while i < len(lines):
        line = lines[i]
        if line.startswith(COMMENT_START):
            directives = []
            body = line[len(COMMENT_START):]
            while "-->" not in body:
                directives.append(body)
                i += 1
                body = lines[i]
            directives.append(body.split("-->")[0])
            pending = {}
            for d in directives:
                d = d.strip()
                if not d:
                    continue
                key, _, value = d.partition(":")
                pending.setdefault(key.strip(), []).append(value.strip())
            i += 1
            continue
        m = FENCE.match(line)
        if m:
            lang = m.group(1)
            start = i + 1
            i += 1
            code = []
            while not lines[i].startswith("```"):
                code.append(lines[i])
                i += 1
            yield start, lang, "\n".join(code) + "\n", pending or {}
            pending = None
        elif line.strip():
            pending = None if not line.startswith("<!--") else pending
        i += 1


class Env:
    """What the runners share: the venv, the npm install, the library's rlib."""

    def __init__(self, scratch):
        self.scratch = scratch
        self.version = cargo_version()
        self._venv = None
        self._node = None
        self._rlib = None

    def venv(self):
        if self._venv is None:
            wheel = DIST / f"siptoken-{self.version}-py3-none-any.whl"
            venv = self.scratch / "venv"
            subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
            subprocess.run([str(venv / "bin/pip"), "install", "--quiet", "--disable-pip-version-check",
                            "--no-index", str(wheel)], check=True)
            self._venv = venv / "bin/python"
        return self._venv

    def node_dir(self):
        if self._node is None:
            tarballs = [DIST / f"siptoken-{self.version}.tgz", DIST / f"siptoken-phone-{self.version}.tgz"]
            d = self.scratch / "node"
            d.mkdir()
            (d / "package.json").write_text('{"private": true}\n')
            subprocess.run(["npm", "install", "--no-audit", "--no-fund", "--silent", "--offline",
                            "--no-package-lock", *map(str, tarballs)], cwd=d, check=True)
            self._node = d
        return self._node

    def rlib(self):
        if self._rlib is None:
            out = subprocess.run(["cargo", "build", "--release", "--lib", "-p", "siptoken",
                                  "--message-format=json"], cwd=ROOT, check=True,
                                 stdout=subprocess.PIPE, text=True).stdout
            for line in out.splitlines():
                msg = json.loads(line)
                if msg.get("reason") == "compiler-artifact" and msg["target"]["name"] == "siptoken" \
                        and "lib" in msg["target"]["kind"]:
                    self._rlib = next(f for f in msg["filenames"] if f.endswith(".rlib"))
            if self._rlib is None:
                raise SystemExit("cargo built no siptoken rlib")
        return self._rlib


def runner(lang, code, directives, workdir, env):
    """The shell line that runs the block (its code is in a file in workdir)."""
    if lang == "sh":
        (workdir / "block.sh").write_text(code)
        return f"source {shlex.quote(str(workdir / 'block.sh'))}"
    if lang == "rust":
        src = workdir / "block.rs"
        src.write_text(code)
        deps = ROOT / "target" / "release" / "deps"
        return (f"rustc --edition 2021 -O --crate-name readme_block {src} -o {workdir / 'block'} "
                f"--extern siptoken={env.rlib()} -L dependency={deps} && {workdir / 'block'}")
    if lang == "python":
        (workdir / "block.py").write_text(code)
        return f"{env.venv()} {workdir / 'block.py'}"
    if lang == "js":
        node = env.node_dir()
        prelude = "\n".join(directives.get("prelude", []))
        block = node / ("block.mjs" if re.search(r"^import ", code, re.M) else "block.js")
        block.write_text(prelude + "\n" + code)
        return f"node --experimental-websocket --no-warnings {block}"
    if lang == "php":
        (workdir / "block.php").write_text(code)
        return ("SIPTOKEN_LIB=/usr/lib/libsiptoken.so SIPTOKEN_HEADER=/usr/include/siptoken.h "
                f"php {workdir / 'block.php'}")
    raise SystemExit(f"README.md: no runner for ```{lang} blocks (see tests/readme/run.py)")


def run_block(n, line, lang, code, directives, env):
    if "ci" in directives:
        ci = (ROOT / ".ci/run").read_text()
        cmd = code.strip()
        if lang != "sh" or not re.search(r"^exec " + re.escape(cmd) + r"$", ci, re.M):
            print(f"block {n} (README.md line {line}): `{cmd}` is not what .ci/run executes")
            return False
        print(f"block {n} (line {line}, {lang}): the CI entry point, run by .ci/run itself")
        return
    workdir = Path(tempfile.mkdtemp(dir=env.scratch, prefix=f"block{n}-"))
    cwd = ROOT if directives.get("cwd") == ["repo"] else workdir
    setup = "\n".join(directives.get("setup", []))
    check = "\n".join(directives.get("check", []))
    teardown = "\n".join(directives.get("teardown", []))
    out = workdir / "out.txt"
    if lang == "conf":
        names = directives.get("file")
        if not names:
            raise SystemExit(f"README.md:{line}: a conf block needs `file:`")
        (cwd / names[0]).write_text(code)
        (cwd / names[0]).chmod(0o600)
        body = ":"
    else:
        body = runner(lang, code, directives, workdir, env)
    head = f"""set -euo pipefail
has() {{ local all; all=$(cat); grep -q "$@" <<<"$all"; }}
cd {shlex.quote(str(cwd))}
teardown() {{
cd {shlex.quote(str(cwd))}
{teardown}
}}
trap teardown EXIT
{setup}
"""
    if "background" in directives:
        script = head + f"""
# Its own process group (setsid), so that stopping it stops whatever it started.
setsid bash -c {shlex.quote("set -euo pipefail; " + body)} > {out} 2> {workdir / 'err.txt'} &
bg=$!
stop() {{ kill -TERM -- -$bg 2>/dev/null || true; wait $bg 2>/dev/null || true; teardown; }}
trap stop EXIT
cd {shlex.quote(str(workdir))}   # where out.txt is
for i in $(seq 200); do
  if ( {check} ) >/dev/null 2>&1; then ( {check} ); exit 0; fi
  kill -0 $bg 2>/dev/null || {{ cat {workdir / 'err.txt'} >&2; echo "the block exited" >&2; exit 1; }}
  sleep 0.1
done
cat {out} {workdir / 'err.txt'} >&2
echo "check did not pass within 20 s" >&2
exit 1
"""
    else:
        script = head + f"""
{{ {body} ; }} | tee {out}
cd {shlex.quote(str(workdir))}   # where out.txt is
{check}
"""
    t0 = time.monotonic()
    r = subprocess.run(["bash", "-c", script], stdin=subprocess.DEVNULL)
    dt = time.monotonic() - t0
    if r.returncode != 0:
        print(f"block {n} (README.md line {line}, {lang}): FAILED (exit {r.returncode})")
        return False
    print(f"block {n} (README.md line {line}, {lang}): ok ({dt:.1f} s)")
    return True


def main():
    # Another file (a broken copy, to see this test fail): tests/readme/run.py FILE
    readme = Path(sys.argv[1]).resolve() if len(sys.argv) > 1 else ROOT / "README.md"
    blocks = list(parse(readme))
    passed = failed = 0
    with tempfile.TemporaryDirectory(prefix="readme-test-") as scratch:
        env = Env(Path(scratch))
        for n, (line, lang, code, directives) in enumerate(blocks, 1):
            if not lang:
                print(f"block {n} (README.md line {line}): has no language (see tests/readme/run.py)")
                failed += 1
                continue
            ok = run_block(n, line, lang, code, directives, env)
            if ok is False:
                failed += 1
            else:
                passed += 1
    print(f"readme: {passed} passed, {failed} failed")
    return 1 if failed or not passed else 0


if __name__ == "__main__":
    sys.exit(main())
