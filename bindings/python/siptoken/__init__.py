"""Issue and verify siptoken tokens through libsiptoken (the siptoken C ABI), with ctypes.

A thin layer: every call goes to the C library (contract in docs/c-abi.md), which does the
parsing, cryptography and checks. Nothing is compiled at install time.

    ring = KeyRing.open("/etc/siptoken/keys.conf")
    token = ring.issue("CRM", {"login": "crm1", "password": pw, "domain": "sip.example.org"})
    ring.verify(token)  # {"valid": True, "format": "v1", "app": "CRM", "kid": ..., "claims": {...}}

Errors raise SipTokenError, whose ``code`` is the stable name (``"missing_field"``) and
``number`` the C return code (7).
"""

import ctypes
import ctypes.util
import json
import os
import threading
from pathlib import Path
from typing import Any, Dict, Mapping, Optional, Union

__all__ = ["KeyRing", "SipTokenError", "version", "error_name", "load_library"]

_Text = Union[str, bytes]

_lib: Optional[ctypes.CDLL] = None
_lib_lock = threading.Lock()


class SipTokenError(Exception):
    """A call to libsiptoken failed.

    ``code`` is the stable error name (``"invalid_json"``, ``"unknown_app"``, ...; the table is
    in docs/c-abi.md), ``number`` the C return code, ``message`` the library's message.
    """

    def __init__(self, number: int, message: str):
        self.number = number
        self.code = error_name(number)
        self.message = message
        super().__init__(f"{message} ({self.code})")


def _candidates():
    env = os.environ.get("SIPTOKEN_LIB")
    if env:
        yield env
        return
    here = Path(__file__).resolve().parent
    yield str(here / "libsiptoken.so")
    # A source checkout: bindings/python/siptoken -> target/release.
    yield str(here.parent.parent.parent / "target" / "release" / "libsiptoken.so")
    found = ctypes.util.find_library("siptoken")
    if found:
        yield found
    yield "libsiptoken.so"


def _declare(lib: ctypes.CDLL) -> ctypes.CDLL:
    p, out = ctypes.c_char_p, ctypes.POINTER(ctypes.c_void_p)
    sigs = {
        "siptoken_keyring_open": (ctypes.c_int, [p, out, out]),
        "siptoken_keyring_from_str": (ctypes.c_int, [p, out, out]),
        "siptoken_keyring_free": (None, [ctypes.c_void_p]),
        "siptoken_issue": (ctypes.c_int, [ctypes.c_void_p, p, p, ctypes.c_int, out, out]),
        "siptoken_verify": (ctypes.c_int, [ctypes.c_void_p, p, p, out, out]),
        "siptoken_free": (None, [ctypes.c_void_p]),
        "siptoken_version": (ctypes.c_char_p, []),
        "siptoken_error_code": (ctypes.c_char_p, [ctypes.c_int]),
    }
    for name, (restype, argtypes) in sigs.items():
        fn = getattr(lib, name)
        fn.restype = restype
        fn.argtypes = argtypes
    return lib


def load_library(path: Optional[str] = None) -> ctypes.CDLL:
    """Loads libsiptoken (once per process) and returns it.

    Looks at ``path``, then ``$SIPTOKEN_LIB``, a copy inside this package, ``target/release`` of
    the source checkout, and the system's library path.
    """
    global _lib
    with _lib_lock:
        if _lib is not None and path is None:
            return _lib
        errors = []
        for candidate in [path] if path else _candidates():
            try:
                lib = _declare(ctypes.CDLL(candidate))
            except OSError as e:
                errors.append(f"{candidate}: {e}")
                continue
            if _lib is None:
                _lib = lib
            return lib
        raise OSError(
            "libsiptoken not found; build it with `cargo build --release -p siptoken-ffi` and "
            "set SIPTOKEN_LIB to target/release/libsiptoken.so (" + "; ".join(errors) + ")"
        )


def version() -> str:
    """The version of the loaded libsiptoken."""
    return load_library().siptoken_version().decode()


def error_name(number: int) -> str:
    """The stable name of a libsiptoken return code (``"ok"`` for 0, ``"unknown"`` if none)."""
    return load_library().siptoken_error_code(number).decode()


def _arg(value: Optional[_Text], name: str) -> Optional[bytes]:
    """Encodes a string argument. ``bytes`` go as they are (the library checks UTF-8)."""
    if value is None:
        return None
    if isinstance(value, str):
        try:
            data = value.encode("utf-8")
        except UnicodeEncodeError as e:
            raise SipTokenError(17, f"argument `{name}` is not valid UTF-8 ({e.reason})") from None
    elif isinstance(value, (bytes, bytearray)):
        data = bytes(value)
    else:
        raise TypeError(f"{name} must be str or bytes, not {type(value).__name__}")
    if b"\0" in data:
        raise ValueError(f"{name} contains a NUL character")
    return data


def _take(lib: ctypes.CDLL, ptr: ctypes.c_void_p) -> Optional[str]:
    """Copies a string returned by the library and frees (and so wipes) the library's copy."""
    if not ptr.value:
        return None
    try:
        return ctypes.string_at(ptr.value).decode("utf-8")
    finally:
        lib.siptoken_free(ptr.value)


def _check(lib: ctypes.CDLL, rc: int, err: ctypes.c_void_p) -> None:
    message = _take(lib, err)
    if rc != 0:
        raise SipTokenError(rc, message or error_name(rc))


class KeyRing:
    """An immutable key ring held by libsiptoken, shareable between threads.

    Make one with :meth:`open` or :meth:`from_str`; :meth:`close` (or the ``with`` statement,
    or garbage collection) releases it and wipes the keys. Do not close a ring that another
    thread is still using.
    """

    def __init__(self, _handle: int, _lib: ctypes.CDLL):
        self._handle: Optional[int] = _handle
        self._lib = _lib

    @classmethod
    def _make(cls, fn_name: str, arg: bytes, lib: Optional[str]) -> "KeyRing":
        dll = load_library(lib)
        out, err = ctypes.c_void_p(), ctypes.c_void_p()
        rc = getattr(dll, fn_name)(arg, ctypes.byref(out), ctypes.byref(err))
        _check(dll, rc, err)
        return cls(out.value, dll)

    @classmethod
    def open(cls, path: Union[str, os.PathLike], *, lib: Optional[str] = None) -> "KeyRing":
        """Reads a key ring file (``NAME=HEX`` lines). Raises SipTokenError (``io``,
        ``invalid_keyring``)."""
        return cls._make("siptoken_keyring_open", _arg(os.fspath(path), "path"), lib)

    @classmethod
    def from_str(cls, text: _Text, *, lib: Optional[str] = None) -> "KeyRing":
        """Parses key ring text. Raises SipTokenError (``invalid_keyring``)."""
        return cls._make("siptoken_keyring_from_str", _arg(text, "text"), lib)

    def _ring(self) -> int:
        if self._handle is None:
            raise ValueError("the key ring is closed")
        return self._handle

    def issue(self, app: _Text, claims: Union[Mapping[str, Any], _Text], legacy: bool = False) -> str:
        """Issues a token for ``app``. ``claims`` maps XML attribute names (``login``,
        ``password``, ``domain``, ...) to strings or numbers, optionally with ``ttl_seconds``;
        a JSON text is accepted too. v1 unless ``legacy``."""
        text = claims if isinstance(claims, (str, bytes, bytearray)) else json.dumps(dict(claims), ensure_ascii=False)
        token, err = ctypes.c_void_p(), ctypes.c_void_p()
        rc = self._lib.siptoken_issue(
            self._ring(),
            _arg(app, "app"),
            _arg(text, "claims_json"),
            1 if legacy else 0,
            ctypes.byref(token),
            ctypes.byref(err),
        )
        _check(self._lib, rc, err)
        return _take(self._lib, token)

    def verify_json(self, token: _Text, options: Optional[Union[Mapping[str, Any], _Text]] = None, **kw: Any) -> str:
        """Verifies ``token`` and returns the result as JSON text, exactly as
        ``siptoken verify --json --show-password`` prints it. Options (``allow_legacy``,
        ``leeway_seconds``, ``max_lifetime_seconds``, ``require_legacy_expiry``, ``now``,
        ``show_password``) come as a mapping, a JSON text, or keyword arguments;
        ``show_password=False`` leaves the password out (``null``)."""
        if kw:
            if isinstance(options, (str, bytes, bytearray)):
                raise TypeError("give options either as JSON text or as keywords, not both")
            options = {**(options or {}), **kw}
        opts = None
        if options is not None:
            opts = options if isinstance(options, (str, bytes, bytearray)) else json.dumps(dict(options), ensure_ascii=False)
        result, err = ctypes.c_void_p(), ctypes.c_void_p()
        rc = self._lib.siptoken_verify(
            self._ring(), _arg(token, "token"), _arg(opts, "options_json"), ctypes.byref(result), ctypes.byref(err)
        )
        _check(self._lib, rc, err)
        return _take(self._lib, result)

    def verify(self, token: _Text, options: Optional[Union[Mapping[str, Any], _Text]] = None, **kw: Any) -> Dict[str, Any]:
        """Like :meth:`verify_json`, parsed: ``{"valid": True, "format", "app", "kid",
        "claims"}`` or ``{"valid": False, "error", "message"}``. Raises only for caller errors
        (``invalid_json`` options, invalid arguments)."""
        return json.loads(self.verify_json(token, options, **kw))

    def close(self) -> None:
        """Releases the key ring and wipes its keys. Idempotent."""
        handle, self._handle = self._handle, None
        if handle is not None:
            self._lib.siptoken_keyring_free(handle)

    def __enter__(self) -> "KeyRing":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def __del__(self) -> None:
        try:
            self.close()
        except Exception:  # interpreter shutdown
            pass

    def __repr__(self) -> str:
        return f"<siptoken.KeyRing {'closed' if self._handle is None else hex(self._handle)}>"
