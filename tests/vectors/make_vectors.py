#!/usr/bin/env python3
"""Writes tests/vectors/siptoken.json: the project's own token test vectors.

This is a second, independent implementation of docs/token-format.md in Python with the
`cryptography` package (no code shared with the Rust crate), so that the vectors check the Rust
code rather than echo it. Nonces and ids are derived from each vector's name, so the output is
reproducible: `python3 tests/vectors/make_vectors.py --check` fails when the committed file differs.

tests/vectors/independent.json comes from yet another implementation (shared/vectors).
"""
import hashlib
import hmac
import json
import sys
from pathlib import Path

from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

NOW = 1764120000
LEEWAY = 30
MAX_LIFETIME = 86400

KEYS = {
    "CRM": "8263D535FFFFFFFF7B0F60",
    "CRM.k1": "6df47ad8f2f90da985fbf76635e800cf0d3ba883ad8b7d592f8f9c30e0b62ac2",
    "CRM.k2": "fe162ce2b39d1cd78bbb0f2bcd59ed2aedcbe4b0bf4e8675fd84581dd1eb3a35",
    # Same key bytes as CRM.k1 under another application: the tag must bind the app name.
    "OTHER.k1": "6df47ad8f2f90da985fbf76635e800cf0d3ba883ad8b7d592f8f9c30e0b62ac2",
    "V1ONLY.main": "0f1e2d3c4b5a69788796a5b4c3d2e1f00112233445566778899aabbccddeeff0",
    "LEGONLY": "00112233445566778899aabbccddeeff",
}


def ctr(key: bytes, iv: bytes, data: bytes) -> bytes:
    enc = Cipher(algorithms.AES(key), modes.CTR(iv)).encryptor()
    return enc.update(data) + enc.finalize()


def legacy_key(app: str) -> bytes:
    return bytes.fromhex(KEYS[app]).ljust(16, b"\0")


def seal_legacy(app: str, xml: bytes) -> str:
    return app + ":" + ctr(legacy_key(app), bytes(16), xml).hex()


def derived(name: str, what: str) -> bytes:
    return hashlib.sha256((what + "\0" + name).encode()).digest()[:16]


def seal_v1(app: str, kid: str, xml: bytes, nonce: bytes) -> str:
    key = bytes.fromhex(KEYS[f"{app}.{kid}"])
    sign_key, enc_key = key[:16], key[16:]
    prefix = f"{app}:v1.{kid}.".encode()
    ct = ctr(enc_key, nonce, xml)
    tag = hmac.new(sign_key, prefix + nonce + ct, hashlib.sha256).digest()
    return prefix.decode() + (nonce + ct + tag).hex()


def ascii_lower(s: str) -> str:
    return "".join(chr(ord(c) + 32) if "A" <= c <= "Z" else c for c in s)


def single_use_key(fmt: str, app: str, claims: dict) -> str:
    """docs/token-format.md section 6: the key a single-use store remembers a token by."""
    if fmt == "v1":
        return claims["id"]

    def field(value: str) -> bytes:
        data = value.encode()
        return len(data).to_bytes(4, "big") + data

    domain = ascii_lower(claims["domain"])
    if domain.endswith("."):
        domain = domain[:-1]
    auth = claims.get("authenticationName", claims["login"])
    data = (b"siptoken legacy account\0" + field(app) + field(ascii_lower(claims["login"]))
            + field(domain) + field(ascii_lower(auth)))
    return hashlib.sha256(data).digest()[:16].hex()


def esc(value: str) -> str:
    out = value.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    out = out.replace('"', "&quot;").replace("'", "&apos;")
    return out.replace("\t", "&#9;").replace("\n", "&#10;").replace("\r", "&#13;")


def root(attrs) -> str:
    return "<root " + " ".join(f'{k}="{esc(v)}"' for k, v in attrs) + "/>"


def v1_attrs(name, login="op", expires=NOW + 300, issued=NOW - 10, extra=()):
    return [
        ("login", login),
        ("password", "pw-" + login),
        ("domain", "sip.example.org"),
        ("expires", str(expires)),
        ("issued", str(issued)),
        ("id", derived(name, "id").hex()),
        *extra,
    ]


valid, invalid = [], []


def add_valid(name, fmt, app, xml, claims, kid=None):
    data = xml.encode() if isinstance(xml, str) else xml
    entry = {"name": name, "format": fmt, "app": app}
    if fmt == "v1":
        nonce = derived(name, "nonce")
        token = seal_v1(app, kid, data, nonce)
        entry.update(kid=kid, key=KEYS[f"{app}.{kid}"], nonce=nonce.hex())
    else:
        token = seal_legacy(app, data)
        entry.update(key=KEYS[app])
    entry.update(xml=data.decode(), token=token, claims=claims,
                 single_use_key=single_use_key(fmt, app, claims))
    valid.append(entry)


def add_invalid(name, token, error, allow_legacy=True):
    invalid.append({"name": name, "token": token, "error": error, "allow_legacy": allow_legacy})


def v1_invalid(name, xml, error, app="CRM", kid="k2"):
    data = xml.encode() if isinstance(xml, str) else xml
    add_invalid(name, seal_v1(app, kid, data, derived(name, "nonce")), error)


def main():
    # --- valid -------------------------------------------------------------------------
    name = "v1 declaration, comment and explicit end tag"
    a = v1_attrs(name)
    xml = '<?xml version="1.0" encoding="UTF-8"?>\n<!-- operator -->' + root(a)[:-2] + "></root>\n"
    add_valid(name, "v1", "CRM", xml, dict(a), kid="k2")

    name = "v1 single-quoted attributes and a hex character reference"
    a = v1_attrs(name)
    xml = "<root " + " ".join(f"{k}='{v}'" for k, v in a) + " visibleName='&#x41;gent &#x1D11E;'/>"
    add_valid(name, "v1", "CRM", xml, {**dict(a), "visibleName": "Agent \U0001D11E"}, kid="k2")

    name = "v1 empty password and every escape"
    a = v1_attrs(name)
    a[1] = ("password", "")
    a.append(("visibleName", "<&>\"' \t\r\n ü € 𝄞"))
    add_valid(name, "v1", "CRM", root(a), dict(a), kid="k1")

    name = "v1 expires exactly leeway seconds ago"
    a = v1_attrs(name, expires=NOW - LEEWAY, issued=NOW - 600)
    add_valid(name, "v1", "CRM", root(a), dict(a), kid="k2")

    name = "v1 issued exactly leeway seconds ahead"
    a = v1_attrs(name, expires=NOW + 600, issued=NOW + LEEWAY)
    add_valid(name, "v1", "CRM", root(a), dict(a), kid="k2")

    name = "v1 lifetime exactly the maximum"
    a = v1_attrs(name, expires=NOW + 100, issued=NOW + 100 - MAX_LIFETIME)
    add_valid(name, "v1", "V1ONLY", root(a), dict(a), kid="main")

    name = "v1 one byte of claims is not the minimum body, but a real token is"
    a = v1_attrs(name, login="x")
    add_valid(name, "v1", "V1ONLY", root(a), dict(a), kid="main")

    name = "legacy literal tab and newline are normalised to spaces"
    xml = '<root login="u" password="a\tb\nc" domain="d.example" expires="%d"/>' % (NOW + 60)
    add_valid(name, "legacy", "LEGONLY", xml,
              {"login": "u", "password": "a b c", "domain": "d.example", "expires": str(NOW + 60)})

    name = "legacy with issued and id"
    a = v1_attrs(name)
    add_valid(name, "legacy", "CRM", root(a), dict(a))

    name = "legacy single-use key folds the case of the account and a trailing dot"
    a = [("login", "Op"), ("authenticationName", "OP-Auth"), ("password", "p"),
         ("domain", "SIP.Example.ORG."), ("expires", str(NOW + 60))]
    add_valid(name, "legacy", "LEGONLY", root(a), dict(a))

    # Without `issued` the lifetime is measured from the verifier's clock: `expires` may be at
    # most now + max lifetime + leeway (docs/token-format.md, section 6).
    name = "legacy without issued, expires exactly max lifetime plus leeway ahead"
    a = [("login", "u"), ("password", "p"), ("domain", "d.example"),
         ("expires", str(NOW + MAX_LIFETIME + LEEWAY))]
    add_valid(name, "legacy", "LEGONLY", root(a), dict(a))

    # --- invalid -----------------------------------------------------------------------
    good = valid[0]["token"]
    add_invalid("v1 upper-case hex is not canonical", good.split(".", 2)[0] + "." +
                good.split(".", 2)[1] + "." + good.split(".", 2)[2].upper(), "malformed")
    add_invalid("v1 empty key id", "CRM:v1.." + good.split(".", 2)[2], "malformed")
    add_invalid("only an application name", "CRM:", "malformed")
    add_invalid("unknown version prefix", "CRM:v2.k2." + good.split(".", 2)[2], "malformed")
    add_invalid("application name longer than 32", "A" * 33 + ":00", "malformed")
    add_invalid("exactly 8193 bytes", "CRM:" + "0" * 8189, "too_large")
    add_invalid("exactly 8192 bytes is not too large", "CRM:" + "0" * 8188, "invalid_xml")
    add_invalid("legacy token for an app with only v1 keys",
                seal_legacy("LEGONLY", b"<root/>").replace("LEGONLY", "V1ONLY"), "unknown_key")
    add_invalid("v1 token for an app with only a legacy key",
                good.replace("CRM:v1.k2.", "LEGONLY:v1.k2."), "unknown_key")
    a = v1_attrs("relabel")
    add_invalid("v1 app relabelled to another app holding the same key",
                seal_v1("CRM", "k1", root(a).encode(), derived("relabel", "nonce")).replace("CRM:", "OTHER:"),
                "bad_signature")
    add_invalid("legacy token of an unknown app while legacy is off", "NOPE:00", "legacy_disabled",
                allow_legacy=False)

    v1_invalid("v1 expired one second past the leeway",
               root(v1_attrs("e", expires=NOW - LEEWAY - 1, issued=NOW - 600)), "expired")
    v1_invalid("v1 issued one second past the leeway",
               root(v1_attrs("n", expires=NOW + 600, issued=NOW + LEEWAY + 1)), "not_yet_valid")
    v1_invalid("v1 lifetime one second over the maximum",
               root(v1_attrs("l", expires=NOW + 100, issued=NOW + 99 - MAX_LIFETIME)), "lifetime_too_long")
    add_invalid("legacy without issued, expires one second past max lifetime plus leeway",
                seal_legacy("LEGONLY", root([("login", "u"), ("password", "p"), ("domain", "d.example"),
                                             ("expires", str(NOW + MAX_LIFETIME + LEEWAY + 1))]).encode()),
                "lifetime_too_long")
    add_invalid("legacy without issued, expires in the year 9999",
                seal_legacy("LEGONLY", root([("login", "u"), ("password", "p"), ("domain", "d.example"),
                                             ("expires", "253402300799")]).encode()),
                "lifetime_too_long")
    v1_invalid("v1 expires before issued",
               root(v1_attrs("b", expires=NOW + 10, issued=NOW + 20)), "invalid_field")
    v1_invalid("v1 unknown entity", root(v1_attrs("u"))[:-2] + ' visibleName="&nbsp;"/>', "invalid_xml")
    v1_invalid("v1 invalid UTF-8", root(v1_attrs("8")).encode()[:-2] + b' visibleName="\xc3\x28"/>',
               "invalid_xml")
    v1_invalid("v1 control character reference", root(v1_attrs("c"))[:-2] + ' visibleName="&#1;"/>',
               "invalid_xml")
    v1_invalid("v1 raw less-than in a value", root(v1_attrs("r"))[:-2] + ' visibleName="a<b"/>',
               "invalid_xml")
    v1_invalid("v1 text content", root(v1_attrs("t"))[:-2] + ">hello</root>", "invalid_xml")
    v1_invalid("v1 trailing garbage", root(v1_attrs("g")) + "x", "invalid_xml")
    v1_invalid("v1 processing instruction after the root", root(v1_attrs("p")) + "<?pi x?>",
               "invalid_xml")
    v1_invalid("v1 namespaced attribute", root(v1_attrs("ns"))[:-2] + ' a:b="1"/>', "invalid_xml")
    a = v1_attrs("empty login")
    a[0] = ("login", "")
    v1_invalid("v1 empty login", root(a), "invalid_field")
    v1_invalid("v1 registered is not a boolean", root(v1_attrs("rg", extra=[("registered", "yes")])),
               "invalid_field")
    a = v1_attrs("upper id")
    a[5] = ("id", a[5][1].upper())
    v1_invalid("v1 upper-case id", root(a), "invalid_field")
    v1_invalid("v1 port with a sign", root(v1_attrs("ps", extra=[("port", "+5060")])), "invalid_field")
    v1_invalid("v1 missing domain", root([p for p in v1_attrs("d") if p[0] != "domain"]), "missing_field")
    v1_invalid("v1 missing issued", root([p for p in v1_attrs("i") if p[0] != "issued"]), "missing_field")

    doc = {
        "about": "The project's own token test vectors, written by tests/vectors/make_vectors.py "
        "(Python cryptography; an implementation separate from the Rust crate). Same schema and "
        "rules as independent.json: verify every valid token with the key ring at `now` (leeway "
        "30 s, max lifetime 24 h, legacy allowed) and compare the claims (all values as strings); "
        "sealing `xml` with the key (and nonce) must give `token`; every invalid token must be "
        "rejected with exactly `error`, with legacy acceptance as `allow_legacy` says.",
        "now": NOW,
        "leeway_seconds": LEEWAY,
        "max_lifetime_seconds": MAX_LIFETIME,
        "keyring": "# siptoken vectors key ring\n" + "".join(f"{k}={v}\n" for k, v in KEYS.items()),
        "valid": valid,
        "invalid": invalid,
    }
    text = json.dumps(doc, indent=1, ensure_ascii=False) + "\n"
    out = Path(__file__).with_name("siptoken.json")
    if "--check" in sys.argv:
        if out.read_text(encoding="utf-8") != text:
            sys.exit(f"{out} is stale: run {Path(__file__).name}")
        print(f"{out.name} is up to date ({len(valid)} valid, {len(invalid)} invalid)")
    else:
        out.write_text(text, encoding="utf-8")
        print(f"wrote {out} ({len(valid)} valid, {len(invalid)} invalid)")


main()
