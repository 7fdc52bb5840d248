"""Issue and verify per call from Python: through libsiptoken via ctypes (siptoken.KeyRing) side
by side with the same v1 work done natively in Python (cryptography's AES-128-CTR, hmac with
SHA-256, bytes.hex, xml.etree.ElementTree, claim and time checks), in the same run. Run by
benches/bindings/compare.sh.

    SIPTOKEN_LIB=target/release/libsiptoken.so PYTHONPATH=bindings/python \
        python3 benches/bindings/bench.py [ITERATIONS] [ROUNDS]
"""

import hashlib
import hmac
import os
import platform
import re
import statistics
import sys
import time
import xml.etree.ElementTree as ET
from xml.sax.saxutils import escape

import cryptography
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

import siptoken

KEY = bytes.fromhex("6df47ad8f2f90da985fbf76635e800cf0d3ba883ad8b7d592f8f9c30e0b62ac2")
# A realistic account: the XML is about 300 bytes once expires, issued and id are added.
CLAIMS = {
    "login": "crm1", "authenticationName": "crm1-auth", "password": "s3cr&lt;t-Pa55word!",
    "domain": "sip.example.org", "outboundProxy": "proxy.example.org", "port": 5060,
    "visibleName": "Operator 1 (Sales)", "transport": "udp", "registered": "true",
}
ATTR_ESCAPES = {'"': "&quot;", "'": "&apos;", "\t": "&#9;", "\n": "&#10;", "\r": "&#13;"}
TOKEN_RE = re.compile(r"([A-Za-z0-9_-]{1,32}):v1\.([A-Za-z0-9_-]{1,32})\.([0-9a-f]+)")
ID_RE = re.compile(r"[0-9a-f]{32}")


def claims_xml(claims):
    return "<root" + "".join(f' {k}="{escape(str(v), ATTR_ESCAPES)}"' for k, v in claims.items()) + "/>"


def native_issue(app, kid, key, claims, ttl=300):
    """v1 issue in plain Python (docs/token-format.md)."""
    now = int(time.time())
    claims = {**claims, "expires": now + ttl, "issued": now, "id": os.urandom(16).hex()}
    xml = claims_xml(claims).encode()
    nonce = os.urandom(16)
    enc = Cipher(algorithms.AES(key[16:]), modes.CTR(nonce)).encryptor()
    ct = enc.update(xml) + enc.finalize()
    prefix = f"{app}:v1.{kid}.".encode()
    tag = hmac.new(key[:16], prefix + nonce + ct, hashlib.sha256).digest()
    return prefix.decode() + (nonce + ct + tag).hex()


def rejected(code):
    return {"valid": False, "error": code}


def native_verify(keys, token, leeway=30, max_lifetime=86400):
    """v1 verify in plain Python: the same checks as the library (size, syntax, key, tag, XML,
    claims, times)."""
    token = token.strip()
    if len(token) > 8192:
        return rejected("too_large")
    m = TOKEN_RE.fullmatch(token)
    if not m or len(m[3]) % 2:
        return rejected("malformed")
    app, kid, body_hex = m.groups()
    key = keys.get(f"{app}.{kid}")
    if key is None:
        return rejected("unknown_key")
    body = bytes.fromhex(body_hex)
    if len(body) < 49:
        return rejected("malformed")
    nonce, ct, tag = body[:16], body[16:-32], body[-32:]
    expected = hmac.new(key[:16], f"{app}:v1.{kid}.".encode() + nonce + ct, hashlib.sha256).digest()
    if not hmac.compare_digest(expected, tag):
        return rejected("bad_signature")
    dec = Cipher(algorithms.AES(key[16:]), modes.CTR(nonce)).decryptor()
    xml = dec.update(ct) + dec.finalize()
    try:
        text = xml.decode("utf-8")
        if "<!DOCTYPE" in text.upper():
            return rejected("invalid_xml")
        root = ET.fromstring(text)
    except (UnicodeDecodeError, ET.ParseError):
        return rejected("invalid_xml")
    if root.tag != "root" or len(root):
        return rejected("invalid_xml")
    claims = dict(root.attrib)
    for required in ("login", "password", "domain", "expires", "issued", "id"):
        if required not in claims:
            return rejected("missing_field")
    port = claims.get("port")
    if (not claims["expires"].isdigit() or not claims["issued"].isdigit() or not ID_RE.fullmatch(claims["id"])
            or (port is not None and not (port.isdigit() and 1 <= int(port) <= 65535))):
        return rejected("invalid_field")
    now = int(time.time())
    expires, issued = int(claims["expires"]), int(claims["issued"])
    if now > expires + leeway:
        return rejected("expired")
    if issued > now + leeway:
        return rejected("not_yet_valid")
    if expires - issued > max_lifetime:
        return rejected("lifetime_too_long")
    return {"valid": True, "format": "v1", "app": app, "kid": kid, "claims": claims}


def per_call(f, n):
    t = time.perf_counter_ns()
    for _ in range(n):
        f()
    return (time.perf_counter_ns() - t) / 1e3 / n


def main():
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 20000
    rounds = int(sys.argv[2]) if len(sys.argv) > 2 else 7
    keys = {"CRM.k1": KEY}
    ring = siptoken.KeyRing.from_str(f"CRM.k1={KEY.hex()}\n")

    # Same work, both ways: each side accepts the other's tokens with the same claims.
    ffi_token = ring.issue("CRM", CLAIMS)
    native_token = native_issue("CRM", "k1", KEY, CLAIMS)
    a, b = native_verify(keys, ffi_token), ring.verify(native_token)
    if not (a["valid"] and b["valid"] and a["claims"].keys() == b["claims"].keys()
            and a["claims"]["password"] == b["claims"]["password"] == CLAIMS["password"]):
        sys.exit(f"the native and ctypes implementations disagree: {a} {b}")
    tampered = ffi_token[:-1] + ("1" if ffi_token[-1] == "0" else "0")
    if native_verify(keys, tampered)["error"] != "bad_signature" or ring.verify(tampered)["error"] != "bad_signature":
        sys.exit("tampering not detected")

    ops = {
        "issue v1": (lambda: ring.issue("CRM", CLAIMS), lambda: native_issue("CRM", "k1", KEY, CLAIMS)),
        "verify v1": (lambda: ring.verify(ffi_token), lambda: native_verify(keys, ffi_token)),
        # The result as the library returns it (JSON text, e.g. to hand on), without json.loads.
        "verify_json": (lambda: ring.verify_json(ffi_token), lambda: native_verify(keys, ffi_token)),
    }
    print(f"Python {platform.python_version()}, ctypes over libsiptoken {siptoken.version()}, "
          f"cryptography {cryptography.__version__}; XML {len(claims_xml(b['claims']).encode())} bytes, "
          f"token {len(ffi_token)} bytes; {n} calls x {rounds} rounds, median")
    print(f"{'Python':<12} {'ctypes us/call':>14} {'native us/call':>14} {'ratio ctypes/native':>20}")
    for name, (ffi, native) in ops.items():
        per_call(ffi, n // 10)
        per_call(native, n // 10)
        tf, tn = [], []
        for _ in range(rounds):  # interleaved, so both see the same machine state
            tf.append(per_call(ffi, n))
            tn.append(per_call(native, n))
        mf, mn = statistics.median(tf), statistics.median(tn)
        print(f"{name:<12} {mf:>14.2f} {mn:>14.2f} {mf / mn:>20.2f}")


if __name__ == "__main__":
    main()
