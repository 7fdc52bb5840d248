<?php
/**
 * Tests of the PHP binding against the real libsiptoken (run with php8.2-cli):
 *
 *     SIPTOKEN_LIB=target/release/libsiptoken.so php bindings/php/tests/run.php [VECTORS_DIR]
 *
 * Every vector file in tests/vectors/, the error paths with their codes, NULL and invalid UTF-8
 * through the raw FFI for every function. Exit status 1 when anything fails.
 */

declare(strict_types=1);

require __DIR__ . '/../SipToken.php';

use SipToken\KeyRing;
use SipToken\Library;
use SipToken\SipTokenException;

$passed = 0;
$failed = 0;

function check(bool $ok, string $what): void
{
    global $passed, $failed;
    if ($ok) {
        $passed++;
    } else {
        $failed++;
        fwrite(STDERR, "FAIL: $what\n");
    }
}

/** Runs $f, expecting a SipTokenException with $name and $code. */
function expectError(callable $f, string $name, int $code, string $what): void
{
    try {
        $f();
        check(false, "$what: no exception");
    } catch (SipTokenException $e) {
        check($e->errorName === $name && $e->getCode() === $code,
            "$what: got {$e->errorName} ({$e->getCode()}), want $name ($code): {$e->getMessage()}");
        check(!str_contains($e->getMessage(), '00112233'), "$what: no key material in the message");
    }
}

const RING = "CRM=8263D535FFFFFFFF7B0F60\nCRM.k1=6df47ad8f2f90da985fbf76635e800cf0d3ba883ad8b7d592f8f9c30e0b62ac2\n";
const CLAIMS = ['login' => 'crm1', 'password' => "p<&\"'ü", 'domain' => 'sip.example.org', 'port' => 5060];

// ---- vectors ----
$dir = $argv[1] ?? dirname(__DIR__, 3) . '/tests/vectors';
$files = glob("$dir/*.json");
check($files !== [] && $files !== false, "vector files in $dir");
$tokens = 0;
foreach ($files as $file) {
    $doc = json_decode(file_get_contents($file), true, 64, JSON_THROW_ON_ERROR);
    $ring = KeyRing::fromString($doc['keyring']);
    $opts = fn (bool $legacy) => ['allow_legacy' => $legacy, 'leeway_seconds' => $doc['leeway_seconds'],
        'max_lifetime_seconds' => $doc['max_lifetime_seconds'], 'now' => $doc['now']];
    foreach ($doc['valid'] as $v) {
        $tokens++;
        $what = basename($file) . " [{$v['name']}]";
        $r = $ring->verify($v['token'], $opts(true));
        check($r['valid'] === true, "$what: valid (" . ($r['message'] ?? '') . ')');
        if (!$r['valid']) {
            continue;
        }
        check($r['format'] === $v['format'], "$what: format");
        check($r['app'] === $v['app'], "$what: app");
        if (array_key_exists('kid', $v)) {
            check($r['kid'] === $v['kid'], "$what: kid");
        } elseif ($v['format'] === 'legacy') {
            check($r['kid'] === null, "$what: legacy kid is null");
        }
        check($r['claims'] == $v['claims'] && count($r['claims']) === count($v['claims']), "$what: claims");
        // Re-issue the same claims: the new token verifies to them.
        $token = $ring->issue($v['app'], $v['claims'], $v['format'] === 'legacy');
        $again = $ring->verify($token, isset($v['claims']['expires']) ? $opts(true) : ['allow_legacy' => true]);
        check($again['valid'] === true, "$what: re-issued token valid");
        foreach ($v['claims'] as $k => $value) {
            check(($again['claims'][$k] ?? null) === $value, "$what: re-issued claim $k");
        }
    }
    foreach ($doc['invalid'] as $v) {
        $tokens++;
        $what = basename($file) . " [{$v['name']}]";
        $r = $ring->verify($v['token'], $opts($v['allow_legacy']));
        check($r['valid'] === false && $r['error'] === $v['error'],
            "$what: error " . ($r['error'] ?? 'none') . ", want {$v['error']}");
        check(($r['message'] ?? '') !== '', "$what: message");
    }
    $ring->close();
}
echo 'vectors: ' . count($files) . " files, $tokens tokens\n";

// ---- API ----
$ring = KeyRing::fromString(RING);
foreach ([false, true] as $legacy) {
    $token = $ring->issue('CRM', CLAIMS, $legacy);
    check(str_starts_with($token, 'CRM:v1.k1.') === !$legacy, "issue legacy=" . var_export($legacy, true));
    $r = $ring->verify($token, ['allow_legacy' => true]);
    check($r['valid'] && $r['claims']['password'] === CLAIMS['password'] && $r['claims']['port'] === '5060',
        'round trip claims');
    $expires = (int) $r['claims']['expires'];
    check($expires > time() + 290 && $expires <= time() + 301, 'default TTL 300 s');
    // Issue 14, item 9: callers that only need the claims need not receive the password.
    $r = $ring->verify($token, ['allow_legacy' => true, 'show_password' => false]);
    check($r['valid'] && $r['claims']['password'] === null && $r['claims']['login'] === 'crm1',
        'show_password false leaves the password out');
}
check($ring->verify($ring->issue('CRM', CLAIMS, true))['error'] === 'legacy_disabled', 'legacy refused by default');
$token = $ring->issue('CRM', CLAIMS + ['ttl_seconds' => 10]);
$r = $ring->verify($token, ['now' => time() + 41]);
check($r['valid'] === false && $r['error'] === 'expired', 'expired is a result');
$json = $ring->verifyJson($token);
check(str_starts_with($json, '{"valid":true,"format":"v1","app":"CRM","kid":"k1","claims":{'), 'verifyJson text');

expectError(fn () => $ring->issue('CRM', ['login' => 'a']), 'missing_field', 7, 'missing field');
expectError(fn () => $ring->issue('CRM', '[1]'), 'invalid_json', 14, 'claims not an object');
expectError(fn () => $ring->issue('CRM', []), 'missing_field', 7, 'empty claims are an object');
expectError(fn () => $ring->issue('NOPE', CLAIMS), 'unknown_app', 2, 'unknown app');
expectError(fn () => $ring->verify('CRM:00', ['alow_legacy' => true]), 'invalid_json', 14, 'bad option');
expectError(fn () => KeyRing::fromString('CRM.k1=00112233'), 'invalid_keyring', 13, 'bad ring');
expectError(fn () => KeyRing::open('/nonexistent/keys.conf'), 'io', 15, 'missing file');
expectError(fn () => $ring->issue("CR\xffM", CLAIMS), 'invalid_utf8', 17, 'app not UTF-8');
expectError(fn () => $ring->verify("CRM:\xff"), 'invalid_utf8', 17, 'token not UTF-8');
expectError(fn () => KeyRing::fromString("CRM=\xff"), 'invalid_utf8', 17, 'ring text not UTF-8');
expectError(fn () => KeyRing::open("/tmp/\xff"), 'invalid_utf8', 17, 'path not UTF-8');
try {
    $ring->verify("CRM:00\0");
    check(false, 'NUL byte refused');
} catch (\InvalidArgumentException) {
    check(true, 'NUL byte refused');
}
check(Library::errorName(0) === 'ok' && Library::errorName(18) === 'internal' && Library::errorName(99) === 'unknown',
    'error names');
check((bool) preg_match('/^\d+\.\d+\.\d+/', Library::version()), 'version');

$file = tempnam(sys_get_temp_dir(), 'siptoken');
chmod($file, 0600);
file_put_contents($file, RING);
$fromFile = KeyRing::open($file);
unlink($file);
check($fromFile->verify($fromFile->issue('CRM', CLAIMS))['valid'], 'key ring file');
$fromFile->close();
try {
    $fromFile->issue('CRM', CLAIMS);
    check(false, 'closed ring refused');
} catch (\LogicException) {
    check(true, 'closed ring refused');
}

// ---- NULL through the raw FFI, for every pointer argument ----
$ffi = Library::load();
$raw = $ffi->new('siptoken_keyring *');
$ffi->siptoken_keyring_from_str(RING, FFI::addr($raw), null);
$out = Library::slot();
$outRing = $ffi->new('siptoken_keyring *');
$calls = [
    'path' => fn ($e) => $ffi->siptoken_keyring_open(null, FFI::addr($outRing), $e),
    'out' => fn ($e) => $ffi->siptoken_keyring_from_str(RING, null, $e),
    'text' => fn ($e) => $ffi->siptoken_keyring_from_str(null, FFI::addr($outRing), $e),
    'ring' => fn ($e) => $ffi->siptoken_issue(null, 'CRM', '{}', 0, FFI::addr($out), $e),
    'app' => fn ($e) => $ffi->siptoken_issue($raw, null, '{}', 0, FFI::addr($out), $e),
    'claims_json' => fn ($e) => $ffi->siptoken_issue($raw, 'CRM', null, 0, FFI::addr($out), $e),
    'token' => fn ($e) => $ffi->siptoken_verify($raw, null, null, FFI::addr($out), $e),
    'result_json' => fn ($e) => $ffi->siptoken_verify($raw, 'CRM:00', null, null, $e),
];
foreach ($calls as $arg => $call) {
    $err = Library::slot();
    $rc = $call(FFI::addr($err));
    $msg = Library::take($err);
    check($rc === 16 && $msg === "argument `$arg` is NULL", "NULL $arg: $rc $msg");
    check($call(null) === 16, "NULL $arg without an error slot");
}
check(FFI::isNull($out) && FFI::isNull($outRing), 'outputs stay NULL');
$ffi->siptoken_free(null);
$ffi->siptoken_keyring_free(null);
$ffi->siptoken_keyring_free($raw);

echo "$passed passed, $failed failed\n";
exit($failed === 0 ? 0 : 1);
