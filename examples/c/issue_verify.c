/*
 * Issue and verify a siptoken token in plain C with libsiptoken.
 *
 *   make -C examples/c            # builds issue_verify (shared) and issue_verify_static
 *   printf 's3cr<t' | SIPTOKEN_KEYS=keys.conf examples/c/issue_verify CRM crm1 sip.example.org
 *
 * The key ring comes from the file named by $SIPTOKEN_KEYS and the SIP password from standard
 * input, never from the command line. The program issues a v1 token for the operator, verifies
 * it, shows that a tampered copy is rejected with `bad_signature`, and prints the token.
 */
#define _POSIX_C_SOURCE 200809L /* strdup */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "siptoken.h"

/* Appends `s` to `out` as a JSON string literal; returns the new end or NULL if it won't fit. */
static char *json_string(char *out, const char *end, const char *s) {
    if (out >= end) return NULL;
    *out++ = '"';
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        char esc[8] = {0};
        if (c == '"' || c == '\\') {
            esc[0] = '\\', esc[1] = (char)c;
        } else if (c < 0x20) {
            snprintf(esc, sizeof esc, "\\u%04x", c);
        } else {
            esc[0] = (char)c;
        }
        size_t n = strlen(esc);
        if (out + n >= end) return NULL;
        memcpy(out, esc, n);
        out += n;
    }
    if (out + 1 >= end) return NULL;
    *out++ = '"';
    *out = 0;
    return out;
}

static int fail(const char *what, int rc, char *err) {
    fprintf(stderr, "issue_verify: %s failed: %s (%s)\n", what, err ? err : "", siptoken_error_code(rc));
    siptoken_free(err);
    return 1;
}

int main(int argc, char **argv) {
    if (argc != 4) {
        fprintf(stderr, "usage: SIPTOKEN_KEYS=FILE %s APP LOGIN DOMAIN < password\n", argv[0]);
        return 2;
    }
    const char *app = argv[1], *login = argv[2], *domain = argv[3];
    const char *keys = getenv("SIPTOKEN_KEYS");
    if (!keys) {
        fprintf(stderr, "issue_verify: set SIPTOKEN_KEYS to the key ring file\n");
        return 2;
    }

    char password[256] = {0};
    if (!fgets(password, sizeof password, stdin)) {
        fprintf(stderr, "issue_verify: no password on standard input\n");
        return 2;
    }
    password[strcspn(password, "\r\n")] = 0;

    siptoken_keyring *ring = NULL;
    char *err = NULL;
    int rc = siptoken_keyring_open(keys, &ring, &err);
    if (rc != SIPTOKEN_OK) return fail("reading the key ring", rc, err);

    /* {"login":…,"password":…,"domain":…,"ttl_seconds":120} */
    char claims[1024], *p = claims, *end = claims + sizeof claims;
    p += snprintf(p, (size_t)(end - p), "{\"login\":");
    p = json_string(p, end, login);
    if (p) p += snprintf(p, (size_t)(end - p), ",\"password\":");
    if (p) p = json_string(p, end, password);
    if (p) p += snprintf(p, (size_t)(end - p), ",\"domain\":");
    if (p) p = json_string(p, end, domain);
    if (p && p + 32 < end) p += snprintf(p, (size_t)(end - p), ",\"ttl_seconds\":120}");
    memset(password, 0, sizeof password);
    if (!p || p + 1 >= end) {
        fprintf(stderr, "issue_verify: claims too long\n");
        siptoken_keyring_free(ring);
        return 2;
    }

    char *token = NULL;
    rc = siptoken_issue(ring, app, claims, 0, &token, &err);
    memset(claims, 0, sizeof claims);
    if (rc != SIPTOKEN_OK) {
        siptoken_keyring_free(ring);
        return fail("issuing", rc, err);
    }

    char *result = NULL;
    rc = siptoken_verify(ring, token, NULL, &result, &err);
    if (rc != SIPTOKEN_OK) {
        siptoken_free(token);
        siptoken_keyring_free(ring);
        return fail("verifying", rc, err);
    }
    int valid = strncmp(result, "{\"valid\":true", 13) == 0;
    fprintf(stderr, "verified: %s\n", valid ? "valid" : "INVALID");
    siptoken_free(result); /* holds the password: siptoken_free wipes it */

    /* Flip one hex digit in the tag: the token must now be rejected. */
    char *tampered = strdup(token);
    char *last = tampered + strlen(tampered) - 1;
    *last = *last == '0' ? '1' : '0';
    rc = siptoken_verify(ring, tampered, NULL, &result, &err);
    int rejected = rc == SIPTOKEN_OK && strstr(result, "\"error\":\"bad_signature\"") != NULL;
    fprintf(stderr, "tampered copy: %s\n", rejected ? "rejected (bad_signature)" : "NOT REJECTED");
    siptoken_free(result);
    siptoken_free(err);
    free(tampered);

    printf("%s\n", token);
    siptoken_free(token);
    siptoken_keyring_free(ring);
    return valid && rejected ? 0 : 1;
}
