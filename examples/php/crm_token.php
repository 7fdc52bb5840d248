<?php
/**
 * A CRM page handler that gives the logged-in operator's browser phone a short-lived siptoken
 * token instead of the SIP password. The browser passes the token to the WebRTC-SIP gateway,
 * which alone holds the key, so the password never reaches the browser.
 *
 * As a web endpoint (PHP's built-in server for a try; any SAPI in production):
 *     SIPTOKEN_KEYS=/etc/siptoken/keys.conf php -S 127.0.0.1:8080 examples/php/crm_token.php
 *     GET /softphone/token  (with the CRM session cookie)  ->  {"token": "...", "expires_in": 120}
 *
 * From the command line it handles one request for a demo operator and then checks the token the
 * way the gateway would:
 *     SIPTOKEN_KEYS=keys.conf php examples/php/crm_token.php
 */

declare(strict_types=1);

require __DIR__ . '/../../bindings/php/SipToken.php';

use SipToken\KeyRing;
use SipToken\SipTokenException;

const APP = 'CRM';
const TOKEN_TTL = 120;

/**
 * The operator's SIP account, as the CRM's database would return it. Here: one demo row, whose
 * password comes from the environment (never from code or the command line).
 */
function sipAccountOf(int $operatorId): ?array
{
    $rows = [
        42 => ['login' => 'crm42', 'domain' => 'sip.example.org', 'visibleName' => 'Operator 42',
            'outboundProxy' => 'proxy.example.org', 'port' => 5060, 'transport' => 'udp',
            'password' => getenv('CRM_DEMO_SIP_PASSWORD') ?: 'demo-pa$$<&>'],
    ];
    return $rows[$operatorId] ?? null;
}

/**
 * Handles GET /softphone/token for the session's operator. Returns [status, body].
 */
function handleTokenRequest(array $session, KeyRing $ring): array
{
    $operatorId = $session['operator_id'] ?? null;
    if (!is_int($operatorId)) {
        return [401, ['error' => 'not logged in']];
    }
    $account = sipAccountOf($operatorId);
    if ($account === null) {
        return [404, ['error' => 'this operator has no SIP account']];
    }
    try {
        $token = $ring->issue(APP, $account + ['ttl_seconds' => TOKEN_TTL]);
    } catch (SipTokenException $e) {
        // The message never holds the password or key; log it, show the browser only the code.
        error_log("siptoken: issuing for operator $operatorId failed: {$e->getMessage()}");
        return [500, ['error' => $e->errorName]];
    }
    return [200, ['token' => $token, 'expires_in' => TOKEN_TTL]];
}

$keys = getenv('SIPTOKEN_KEYS');
if ($keys === false || $keys === '') {
    fwrite(STDERR, "set SIPTOKEN_KEYS to the key ring file\n");
    exit(2);
}
// A real deployment keeps one KeyRing per worker process (e.g. in a static) and reuses it.
$ring = KeyRing::open($keys);

if (PHP_SAPI !== 'cli') {
    session_start();
    [$status, $body] = handleTokenRequest($_SESSION, $ring);
    http_response_code($status);
    header('Content-Type: application/json');
    header('Cache-Control: no-store');
    echo json_encode($body, JSON_UNESCAPED_SLASHES);
    return;
}

// Command line: one request for operator 42, one without a session.
[$status, $body] = handleTokenRequest(['operator_id' => 42], $ring);
echo "GET /softphone/token (operator 42) -> $status ", json_encode($body, JSON_UNESCAPED_SLASHES), "\n";
[$anonStatus, $anonBody] = handleTokenRequest([], $ring);
echo "GET /softphone/token (no session)  -> $anonStatus ", json_encode($anonBody), "\n";

// What the gateway does with the token (it holds the same key ring).
$result = $ring->verify($body['token'] ?? '');
$ok = $status === 200 && $anonStatus === 401 && $result['valid'] === true
    && $result['claims']['login'] === 'crm42' && $result['claims']['visibleName'] === 'Operator 42';
echo 'gateway check: ', $result['valid'] ? "valid v1 token for {$result['claims']['login']}" : $result['error'], "\n";
exit($ok ? 0 : 1);
