"""Tests of the Python binding against the real libsiptoken.

    SIPTOKEN_LIB=target/release/libsiptoken.so python3 -m unittest discover -s bindings/python/tests -v

Runs every file in tests/vectors/ ($SIPTOKEN_VECTORS overrides the directory), 8 threads on one
key ring, the error paths, and, when $SIPTOKEN_CLI names the siptoken binary, a byte-for-byte
comparison of verify results with `siptoken verify --json --show-password`.
"""

import ctypes
import glob
import json
import os
import subprocess
import tempfile
import threading
import time
import unittest
from pathlib import Path

import siptoken
from siptoken import KeyRing, SipTokenError

ROOT = Path(__file__).resolve().parents[3]
VECTORS = os.environ.get("SIPTOKEN_VECTORS", str(ROOT / "tests" / "vectors"))
RING = (
    "CRM=8263D535FFFFFFFF7B0F60\n"
    "CRM.k1=6df47ad8f2f90da985fbf76635e800cf0d3ba883ad8b7d592f8f9c30e0b62ac2\n"
)
CLAIMS = {"login": "crm1", "password": "p<&\"'ü", "domain": "sip.example.org", "port": 5060}


def vector_files():
    files = sorted(glob.glob(os.path.join(VECTORS, "*.json")))
    assert files, f"no vector files in {VECTORS}"
    return files


def options(doc, allow_legacy):
    return {
        "allow_legacy": allow_legacy,
        "leeway_seconds": doc["leeway_seconds"],
        "max_lifetime_seconds": doc["max_lifetime_seconds"],
        "now": doc["now"],
    }


class Vectors(unittest.TestCase):
    def test_every_vector(self):
        tokens = 0
        for path in vector_files():
            doc = json.loads(Path(path).read_text(encoding="utf-8"))
            with KeyRing.from_str(doc["keyring"]) as ring:
                for v in doc["valid"]:
                    with self.subTest(file=path, valid=v["name"]):
                        r = ring.verify(v["token"], options(doc, True))
                        self.assertTrue(r["valid"], r)
                        self.assertEqual(r["format"], v["format"])
                        self.assertEqual(r["app"], v["app"])
                        if "kid" in v:
                            self.assertEqual(r["kid"], v["kid"])
                        elif v["format"] == "legacy":
                            self.assertIsNone(r["kid"])
                        self.assertEqual(r["claims"], v["claims"])
                        # Re-issuing the same claims gives a token that verifies to them.
                        token = ring.issue(v["app"], v["claims"], legacy=v["format"] == "legacy")
                        opts = options(doc, True) if "expires" in v["claims"] else {"allow_legacy": True}
                        again = ring.verify(token, opts)
                        self.assertTrue(again["valid"], again)
                        added = set(again["claims"]) - set(v["claims"])
                        allowed = {"expires"} | ({"issued", "id"} if v["format"] == "v1" else set())
                        self.assertLessEqual(added, allowed)
                        for k, value in v["claims"].items():
                            self.assertEqual(again["claims"][k], value, k)
                    tokens += 1
                for v in doc["invalid"]:
                    with self.subTest(file=path, invalid=v["name"]):
                        r = ring.verify(v["token"], options(doc, v["allow_legacy"]))
                        self.assertFalse(r["valid"])
                        self.assertEqual(r["error"], v["error"])
                        self.assertTrue(r["message"])
                    tokens += 1
        print(f"\nvectors: {len(vector_files())} files, {tokens} tokens")

    @unittest.skipUnless(os.environ.get("SIPTOKEN_CLI"), "set SIPTOKEN_CLI to the siptoken binary")
    def test_same_bytes_as_the_cli(self):
        cli = os.environ["SIPTOKEN_CLI"]
        for path in vector_files():
            doc = json.loads(Path(path).read_text(encoding="utf-8"))
            with tempfile.NamedTemporaryFile("w", suffix=".conf") as keys:
                os.chmod(keys.name, 0o600)
                keys.write(doc["keyring"])
                keys.flush()
                ring = KeyRing.open(keys.name)
                entries = [(v, True) for v in doc["valid"]] + [(v, v["allow_legacy"]) for v in doc["invalid"]]
                for v, allow in entries:
                    with self.subTest(file=path, name=v["name"]):
                        args = [cli, "verify", "--keys", keys.name, "--json", "--show-password",
                                "--now", str(doc["now"]), "--leeway", f"{doc['leeway_seconds']}s",
                                "--max-lifetime", f"{doc['max_lifetime_seconds']}s", "-"]
                        if allow:
                            args.insert(2, "--allow-legacy")
                        out = subprocess.run(args, input=v["token"], capture_output=True, text=True)
                        self.assertIn(out.returncode, (0, 1), out.stderr)
                        mine = ring.verify_json(v["token"], options(doc, allow))
                        self.assertEqual(out.stdout.strip(), mine)
                ring.close()


class Api(unittest.TestCase):
    def setUp(self):
        self.ring = KeyRing.from_str(RING)

    def tearDown(self):
        self.ring.close()

    def test_round_trip_v1_and_legacy(self):
        for legacy in (False, True):
            token = self.ring.issue("CRM", CLAIMS, legacy=legacy)
            self.assertEqual(token.startswith("CRM:v1.k1."), not legacy)
            r = self.ring.verify(token, allow_legacy=True)
            self.assertTrue(r["valid"], r)
            self.assertEqual(r["claims"]["password"], CLAIMS["password"])
            self.assertEqual(r["claims"]["port"], "5060")
            expires = int(r["claims"]["expires"])
            self.assertTrue(time.time() + 290 < expires <= time.time() + 301, "default TTL 300 s")
        # Legacy is refused unless allowed.
        legacy_token = self.ring.issue("CRM", CLAIMS, legacy=True)
        self.assertEqual(self.ring.verify(legacy_token)["error"], "legacy_disabled")

    def test_show_password_false_leaves_the_password_out(self):
        # Issue 14, item 9: callers that only need the claims need not receive the password.
        for legacy in (False, True):
            token = self.ring.issue("CRM", CLAIMS, legacy=legacy)
            r = self.ring.verify(token, allow_legacy=True, show_password=False)
            self.assertTrue(r["valid"], r)
            self.assertIsNone(r["claims"]["password"])
            self.assertEqual(r["claims"]["login"], "crm1")
            text = self.ring.verify_json(token, {"allow_legacy": True, "show_password": False})
            self.assertNotIn("p<&", text)
            self.assertEqual(self.ring.verify(token, allow_legacy=True)["claims"]["password"], CLAIMS["password"])
        with self.assertRaises(SipTokenError) as e:
            self.ring.verify(token, show_password="no")
        self.assertEqual(e.exception.code, "invalid_json")

    def test_rejections_are_results(self):
        token = self.ring.issue("CRM", dict(CLAIMS, ttl_seconds=10))
        r = self.ring.verify(token, now=int(time.time()) + 10 + 31)
        self.assertEqual((r["valid"], r["error"]), (False, "expired"))
        tampered = token[:-1] + ("0" if token[-1] != "0" else "1")
        self.assertEqual(self.ring.verify(tampered)["error"], "bad_signature")

    def test_errors_carry_codes(self):
        cases = [
            (lambda: self.ring.issue("CRM", {"login": "a"}), "missing_field", 7),
            (lambda: self.ring.issue("CRM", "[1]"), "invalid_json", 14),
            (lambda: self.ring.issue("NOPE", CLAIMS), "unknown_app", 2),
            (lambda: self.ring.issue("CRM", dict(CLAIMS, port="99999")), "invalid_field", 8),
            (lambda: self.ring.verify("CRM:00", alow_legacy=True), "invalid_json", 14),
            (lambda: KeyRing.from_str("CRM.k1=00112233"), "invalid_keyring", 13),
            (lambda: KeyRing.open("/nonexistent/keys.conf"), "io", 15),
            (lambda: self.ring.issue(b"CR\xffM", CLAIMS), "invalid_utf8", 17),
            (lambda: self.ring.verify(b"CRM:\xff"), "invalid_utf8", 17),
            (lambda: self.ring.issue("CRM", dict(CLAIMS, login="\udc80")), "invalid_utf8", 17),
        ]
        for call, code, number in cases:
            with self.subTest(code=code):
                with self.assertRaises(SipTokenError) as cm:
                    call()
                self.assertEqual((cm.exception.code, cm.exception.number), (code, number))
                self.assertTrue(cm.exception.message)
                self.assertNotIn("00112233", str(cm.exception))
        with self.assertRaises(ValueError):
            self.ring.verify("CRM:00\0")

    def test_key_ring_file_and_close(self):
        with tempfile.NamedTemporaryFile("w", suffix=".conf") as f:
            f.write(RING)
            f.flush()
            with KeyRing.open(Path(f.name)) as ring:
                self.assertTrue(ring.verify(ring.issue("CRM", CLAIMS))["valid"])
            with self.assertRaises(ValueError):
                ring.issue("CRM", CLAIMS)
            ring.close()  # idempotent

    def test_codes_and_version(self):
        self.assertEqual(siptoken.error_name(0), "ok")
        self.assertEqual(siptoken.error_name(4), "bad_signature")
        self.assertEqual(siptoken.error_name(16), "null_argument")
        self.assertEqual(siptoken.error_name(99), "unknown")
        self.assertRegex(siptoken.version(), r"^\d+\.\d+\.\d+")

    def test_null_arguments_through_raw_ctypes(self):
        lib = siptoken.load_library()
        out, err = ctypes.c_void_p(), ctypes.c_void_p()
        ring = self.ring._handle
        calls = [
            lambda: lib.siptoken_keyring_open(None, ctypes.byref(out), ctypes.byref(err)),
            lambda: lib.siptoken_keyring_from_str(None, ctypes.byref(out), ctypes.byref(err)),
            lambda: lib.siptoken_keyring_from_str(RING.encode(), None, ctypes.byref(err)),
            lambda: lib.siptoken_issue(None, b"CRM", b"{}", 0, ctypes.byref(out), ctypes.byref(err)),
            lambda: lib.siptoken_issue(ring, None, b"{}", 0, ctypes.byref(out), ctypes.byref(err)),
            lambda: lib.siptoken_issue(ring, b"CRM", None, 0, ctypes.byref(out), ctypes.byref(err)),
            lambda: lib.siptoken_issue(ring, b"CRM", b"{}", 0, None, ctypes.byref(err)),
            lambda: lib.siptoken_verify(None, b"CRM:00", None, ctypes.byref(out), ctypes.byref(err)),
            lambda: lib.siptoken_verify(ring, None, None, ctypes.byref(out), ctypes.byref(err)),
            lambda: lib.siptoken_verify(ring, b"CRM:00", None, None, ctypes.byref(err)),
            lambda: lib.siptoken_verify(ring, b"CRM:00", None, None, None),
        ]
        for i, call in enumerate(calls):
            with self.subTest(call=i):
                self.assertEqual(call(), 16)
                self.assertIsNone(out.value)
                if err.value:
                    msg = ctypes.string_at(err.value).decode()
                    lib.siptoken_free(err.value)
                    err.value = None
                    self.assertRegex(msg, r"^argument `\w+` is NULL$")
        lib.siptoken_free(None)
        lib.siptoken_keyring_free(None)


class Threads(unittest.TestCase):
    def test_eight_threads_share_one_ring(self):
        ring = KeyRing.from_str(RING)
        rounds, done, errors = 200, [0] * 8, []

        def work(t):
            try:
                for i in range(rounds):
                    login = f"op{t}-{i}"
                    claims = {"login": login, "password": f"pw{i}", "domain": "sip.example.org"}
                    legacy = i % 4 == 3
                    r = ring.verify(ring.issue("CRM", claims, legacy=legacy), allow_legacy=legacy)
                    if not (r["valid"] and r["claims"]["login"] == login):
                        raise AssertionError(r)
                    done[t] += 1
            except Exception as e:  # reported below
                errors.append(e)

        threads = [threading.Thread(target=work, args=(t,)) for t in range(8)]
        for th in threads:
            th.start()
        for th in threads:
            th.join()
        ring.close()
        self.assertEqual(errors, [])
        self.assertEqual(done, [rounds] * 8)


if __name__ == "__main__":
    unittest.main()
