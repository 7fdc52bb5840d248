<?php
/**
 * siptoken for PHP 8.2+: issue and verify siptoken tokens in-process through libsiptoken (the
 * siptoken C ABI, contract in docs/c-abi.md) with PHP's FFI extension.
 *
 *     require 'bindings/php/SipToken.php';
 *     $ring  = SipToken\KeyRing::open('/etc/siptoken/keys.conf');
 *     $token = $ring->issue('CRM', ['login' => 'crm1', 'password' => $pw, 'domain' => 'sip.example.org']);
 *     $ring->verify($token);   // ['valid' => true, 'format' => 'v1', 'app' => 'CRM', 'kid' => ..., 'claims' => [...]]
 *
 * The library is `$SIPTOKEN_LIB` (default: target/release/libsiptoken.so of this checkout if it
 * exists, else `libsiptoken.so` from the system's library path); the header is
 * `$SIPTOKEN_HEADER` (default: bindings/c/include/siptoken.h of this checkout). Call
 * SipToken\Library::load() first to choose other paths.
 */

declare(strict_types=1);

namespace SipToken;

/** A libsiptoken call failed: getCode() is the C return code, $errorName its stable name. */
final class SipTokenException extends \RuntimeException
{
    /** The stable error name, e.g. "missing_field" (table in docs/c-abi.md). */
    public readonly string $errorName;

    public function __construct(int $code, string $message)
    {
        $this->errorName = Library::errorName($code);
        parent::__construct("$message ({$this->errorName})", $code);
    }
}

/** Loads libsiptoken once per process. */
final class Library
{
    private static ?\FFI $ffi = null;

    /** Loads the header and the library (idempotent unless paths are given). */
    public static function load(?string $library = null, ?string $header = null): \FFI
    {
        if (self::$ffi !== null && $library === null && $header === null) {
            return self::$ffi;
        }
        $root = dirname(__DIR__, 2);
        $header ??= getenv('SIPTOKEN_HEADER') ?: "$root/bindings/c/include/siptoken.h";
        $library ??= getenv('SIPTOKEN_LIB') ?: (is_file("$root/target/release/libsiptoken.so")
            ? "$root/target/release/libsiptoken.so" : 'libsiptoken.so');
        $text = @file_get_contents($header);
        if ($text === false) {
            throw new \RuntimeException("cannot read the siptoken header $header (set SIPTOKEN_HEADER)");
        }
        // FFI::cdef takes declarations only: drop the C++ guard and the preprocessor lines.
        $text = preg_replace('/^#ifdef __cplusplus$.*?^#endif.*?$/ms', '', $text);
        $text = preg_replace('/^#.*$/m', '', $text);
        try {
            return self::$ffi = \FFI::cdef($text, $library);
        } catch (\FFI\Exception $e) {
            throw new \RuntimeException("cannot load libsiptoken from $library (set SIPTOKEN_LIB): {$e->getMessage()}");
        }
    }

    /** The loaded library's version. */
    public static function version(): string
    {
        return self::load()->siptoken_version();
    }

    /** The stable name of a return code ("ok" for 0, "unknown" if none). */
    public static function errorName(int $code): string
    {
        return self::load()->siptoken_error_code($code);
    }

    /** A `char *` output slot. */
    public static function slot(): \FFI\CData
    {
        return self::load()->new('char *');
    }

    /** Copies and frees (wipes) a string returned by the library; null for NULL. */
    public static function take(\FFI\CData $slot): ?string
    {
        if (\FFI::isNull($slot)) {
            return null;
        }
        $s = \FFI::string($slot);
        self::load()->siptoken_free($slot);
        return $s;
    }

    /** Throws SipTokenException for a non-zero code, freeing the message either way. */
    public static function check(int $rc, \FFI\CData $err): void
    {
        $message = self::take($err);
        if ($rc !== 0) {
            throw new SipTokenException($rc, $message ?? self::errorName($rc));
        }
    }

    /** Refuses strings that C would silently cut at a NUL byte. */
    public static function arg(string $value, string $name): string
    {
        if (str_contains($value, "\0")) {
            throw new \InvalidArgumentException("$name contains a NUL byte");
        }
        return $value;
    }

    /** JSON text for a claims or options array (an object, even when empty). */
    public static function json(array|string $value): string
    {
        return is_string($value) ? $value
            : json_encode((object) $value, JSON_THROW_ON_ERROR | JSON_UNESCAPED_UNICODE | JSON_UNESCAPED_SLASHES);
    }
}

/**
 * An immutable key ring held by libsiptoken. Freed (and its keys wiped) when the object is
 * destroyed or close() is called.
 */
final class KeyRing
{
    private function __construct(private ?\FFI\CData $ring)
    {
    }

    private static function make(string $function, string $arg): self
    {
        $ffi = Library::load();
        $out = $ffi->new('siptoken_keyring *');
        $err = Library::slot();
        $rc = $ffi->$function($arg, \FFI::addr($out), \FFI::addr($err));
        Library::check($rc, $err);
        return new self($out);
    }

    /** Reads a key ring file; throws SipTokenException (io, invalid_keyring). */
    public static function open(string $path): self
    {
        return self::make('siptoken_keyring_open', Library::arg($path, 'path'));
    }

    /** Parses key ring text; throws SipTokenException (invalid_keyring). */
    public static function fromString(string $text): self
    {
        return self::make('siptoken_keyring_from_str', Library::arg($text, 'text'));
    }

    private function ring(): \FFI\CData
    {
        return $this->ring ?? throw new \LogicException('the key ring is closed');
    }

    /**
     * Issues a token for $app. $claims maps XML attribute names (login, password, domain, ...)
     * to strings or numbers, optionally with ttl_seconds (or is JSON text). v1 unless $legacy.
     */
    public function issue(string $app, array|string $claims, bool $legacy = false): string
    {
        $ffi = Library::load();
        $token = Library::slot();
        $err = Library::slot();
        $rc = $ffi->siptoken_issue($this->ring(), Library::arg($app, 'app'),
            Library::arg(Library::json($claims), 'claims'), $legacy ? 1 : 0, \FFI::addr($token), \FFI::addr($err));
        Library::check($rc, $err);
        return Library::take($token);
    }

    /**
     * Verifies $token; returns the JSON text `siptoken verify --json --show-password` prints.
     * $options: allow_legacy, leeway_seconds, max_lifetime_seconds, require_legacy_expiry, now,
     * show_password (default true; false leaves the password out: null).
     */
    public function verifyJson(string $token, array|string|null $options = null): string
    {
        $ffi = Library::load();
        $result = Library::slot();
        $err = Library::slot();
        $opts = $options === null ? null : Library::arg(Library::json($options), 'options');
        $rc = $ffi->siptoken_verify($this->ring(), Library::arg($token, 'token'), $opts,
            \FFI::addr($result), \FFI::addr($err));
        Library::check($rc, $err);
        return Library::take($result);
    }

    /**
     * Like verifyJson(), decoded: ['valid' => true, 'format', 'app', 'kid', 'claims'] or
     * ['valid' => false, 'error', 'message']. Throws only for caller errors (bad options).
     */
    public function verify(string $token, array|string|null $options = null): array
    {
        return json_decode($this->verifyJson($token, $options), true, 8, JSON_THROW_ON_ERROR);
    }

    /** Releases the key ring and wipes its keys. Idempotent. */
    public function close(): void
    {
        if ($this->ring !== null) {
            Library::load()->siptoken_keyring_free($this->ring);
            $this->ring = null;
        }
    }

    public function __destruct()
    {
        $this->close();
    }
}
