<?php
/**
 * Issue and verify per call from PHP: through libsiptoken via FFI (the SipToken\KeyRing class)
 * side by side with the same v1 work done natively in PHP (openssl_encrypt + hash_hmac +
 * bin2hex to issue; hex2bin + hash_hmac + hash_equals + openssl_decrypt + SimpleXML + claim and
 * time checks to verify), in the same run. Run by benches/bindings/compare.sh.
 *
 *     SIPTOKEN_LIB=target/release/libsiptoken.so php benches/bindings/bench.php [ITERATIONS] [ROUNDS]
 */

declare(strict_types=1);

require __DIR__ . '/../../bindings/php/SipToken.php';

const KEY_HEX = '6df47ad8f2f90da985fbf76635e800cf0d3ba883ad8b7d592f8f9c30e0b62ac2';
// A realistic account: the XML is about 300 bytes once expires, issued and id are added.
const CLAIMS = [
    'login' => 'crm1', 'authenticationName' => 'crm1-auth', 'password' => 's3cr&lt;t-Pa55word!',
    'domain' => 'sip.example.org', 'outboundProxy' => 'proxy.example.org', 'port' => 5060,
    'visibleName' => 'Operator 1 (Sales)', 'transport' => 'udp', 'registered' => 'true',
];

function xml_attr(string $v): string
{
    return strtr(htmlspecialchars($v, ENT_QUOTES | ENT_XML1 | ENT_SUBSTITUTE, 'UTF-8'),
        ["\t" => '&#9;', "\n" => '&#10;', "\r" => '&#13;']);
}

/** The claims element: attributes in the given order, escaped as the format requires. */
function claims_xml(array $claims): string
{
    $xml = '<root';
    foreach ($claims as $name => $value) {
        $xml .= ' ' . $name . '="' . xml_attr((string) $value) . '"';
    }
    return $xml . '/>';
}

/** v1 issue in plain PHP (docs/token-format.md). */
function native_issue(string $app, string $kid, string $key, array $claims, int $ttl = 300): string
{
    $now = time();
    $claims += ['expires' => $now + $ttl, 'issued' => $now, 'id' => bin2hex(random_bytes(16))];
    $xml = claims_xml($claims);
    $nonce = random_bytes(16);
    $ct = openssl_encrypt($xml, 'aes-128-ctr', substr($key, 16, 16), OPENSSL_RAW_DATA, $nonce);
    $prefix = "$app:v1.$kid.";
    $tag = hash_hmac('sha256', $prefix . $nonce . $ct, substr($key, 0, 16), true);
    return $prefix . bin2hex($nonce . $ct . $tag);
}

function rejected(string $code): array
{
    return ['valid' => false, 'error' => $code];
}

/** v1 verify in plain PHP: the same checks as the library (size, syntax, key, tag, XML, claims, times). */
function native_verify(array $keys, string $token, int $leeway = 30, int $maxLifetime = 86400): array
{
    $token = trim($token);
    if (strlen($token) > 8192) {
        return rejected('too_large');
    }
    if (!preg_match('/^([A-Za-z0-9_-]{1,32}):v1\.([A-Za-z0-9_-]{1,32})\.([0-9a-f]+)$/D', $token, $m)
        || strlen($m[3]) % 2 !== 0) {
        return rejected('malformed');
    }
    [, $app, $kid, $hex] = $m;
    $key = $keys["$app.$kid"] ?? null;
    if ($key === null) {
        return rejected('unknown_key');
    }
    $body = hex2bin($hex);
    if (strlen($body) < 49) {
        return rejected('malformed');
    }
    $nonce = substr($body, 0, 16);
    $ct = substr($body, 16, -32);
    $tag = hash_hmac('sha256', "$app:v1.$kid." . $nonce . $ct, substr($key, 0, 16), true);
    if (!hash_equals($tag, substr($body, -32))) {
        return rejected('bad_signature');
    }
    $xml = openssl_decrypt($ct, 'aes-128-ctr', substr($key, 16, 16), OPENSSL_RAW_DATA, $nonce);
    if (preg_match('//u', $xml) !== 1 || stripos($xml, '<!DOCTYPE') !== false) {
        return rejected('invalid_xml');
    }
    $root = simplexml_load_string($xml, 'SimpleXMLElement', LIBXML_NONET | LIBXML_NOERROR | LIBXML_NOWARNING);
    if ($root === false || $root->getName() !== 'root' || $root->count() !== 0) {
        return rejected('invalid_xml');
    }
    $claims = [];
    foreach ($root->attributes() as $name => $value) {
        $claims[$name] = (string) $value;
    }
    foreach (['login', 'password', 'domain', 'expires', 'issued', 'id'] as $required) {
        if (!isset($claims[$required])) {
            return rejected('missing_field');
        }
    }
    if (!ctype_digit($claims['expires']) || !ctype_digit($claims['issued'])
        || !preg_match('/^[0-9a-f]{32}$/D', $claims['id'])
        || (isset($claims['port']) && (!ctype_digit($claims['port']) || (int) $claims['port'] < 1 || (int) $claims['port'] > 65535))) {
        return rejected('invalid_field');
    }
    $now = time();
    $expires = (int) $claims['expires'];
    $issued = (int) $claims['issued'];
    if ($now > $expires + $leeway) {
        return rejected('expired');
    }
    if ($issued > $now + $leeway) {
        return rejected('not_yet_valid');
    }
    if ($expires - $issued > $maxLifetime) {
        return rejected('lifetime_too_long');
    }
    return ['valid' => true, 'format' => 'v1', 'app' => $app, 'kid' => $kid, 'claims' => $claims];
}

/** Median per-call time in microseconds of $rounds rounds of $n calls. */
function per_call(callable $f, int $n): float
{
    $t = hrtime(true);
    for ($i = 0; $i < $n; $i++) {
        $f();
    }
    return (hrtime(true) - $t) / 1e3 / $n;
}

function median(array $xs): float
{
    sort($xs);
    $c = count($xs);
    return $c % 2 ? $xs[intdiv($c, 2)] : ($xs[$c / 2 - 1] + $xs[$c / 2]) / 2;
}

$n = (int) ($argv[1] ?? 20000);
$rounds = (int) ($argv[2] ?? 7);
$key = hex2bin(KEY_HEX);
$keys = ['CRM.k1' => $key];
$ring = SipToken\KeyRing::fromString('CRM.k1=' . KEY_HEX . "\n");

// Same work, both ways: each side accepts the other's tokens with the same claims.
$ffiToken = $ring->issue('CRM', CLAIMS);
$nativeToken = native_issue('CRM', 'k1', $key, CLAIMS);
$a = native_verify($keys, $ffiToken);
$b = $ring->verify($nativeToken);
if (!$a['valid'] || !$b['valid'] || $a['claims']['password'] !== $b['claims']['password']
    || count($a['claims']) !== count($b['claims'])) {
    fwrite(STDERR, "the native and FFI implementations disagree\n");
    exit(1);
}
$tampered = substr($ffiToken, 0, -1) . ($ffiToken[-1] === '0' ? '1' : '0');
if (native_verify($keys, $tampered)['error'] !== 'bad_signature' || $ring->verify($tampered)['error'] !== 'bad_signature') {
    fwrite(STDERR, "tampering not detected\n");
    exit(1);
}
$xmlLen = strlen(claims_xml($b['claims']));

$ops = [
    'issue v1' => [fn () => $ring->issue('CRM', CLAIMS), fn () => native_issue('CRM', 'k1', $key, CLAIMS)],
    'verify v1' => [fn () => $ring->verify($ffiToken), fn () => native_verify($keys, $ffiToken)],
    // The result as the library returns it (JSON text, e.g. to hand on), without json_decode.
    'verifyJson' => [fn () => $ring->verifyJson($ffiToken), fn () => native_verify($keys, $ffiToken)],
];
printf("PHP %s, FFI over libsiptoken %s, OpenSSL %s; XML %d bytes, token %d bytes; %d calls x %d rounds, median\n",
    PHP_VERSION, SipToken\Library::version(), OPENSSL_VERSION_TEXT, $xmlLen, strlen($ffiToken), $n, $rounds);
printf("%-12s %14s %14s %18s\n", 'PHP', 'FFI us/call', 'native us/call', 'ratio FFI/native');
foreach ($ops as $name => [$ffi, $native]) {
    per_call($ffi, intdiv($n, 10));
    per_call($native, intdiv($n, 10));
    $tf = $tn = [];
    for ($r = 0; $r < $rounds; $r++) { // interleaved, so both see the same machine state
        $tf[] = per_call($ffi, $n);
        $tn[] = per_call($native, $n);
    }
    printf("%-12s %14.2f %14.2f %18.2f\n", $name, median($tf), median($tn), median($tf) / median($tn));
}
