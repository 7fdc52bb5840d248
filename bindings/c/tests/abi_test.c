/*
 * Tests of libsiptoken through its C header, run in CI under valgrind (no leaks, no invalid
 * reads):
 *   - every vector file in the directory given as argv[1] (every tests/vectors/NAME.json): each valid
 *     token verifies to the expected format, app, kid and claims, each valid entry's claims
 *     re-issue and verify round trip, each invalid token is rejected with the expected code;
 *   - NULL and invalid UTF-8 for every pointer argument of every function;
 *   - key ring files (reading, io and invalid_keyring errors without key material);
 *   - one key ring shared by 8 pthreads issuing and verifying at the same time.
 *
 * Build: cc -std=c11 -I bindings/c/include abi_test.c -L target/release -lsiptoken -ljansson -lpthread
 * Run:   ./abi_test tests/vectors
 */
#define _POSIX_C_SOURCE 200809L
#include <dirent.h>
#include <jansson.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "siptoken.h"

static int checks;
static int failures;

#define CHECK(cond, ...)                                                   \
    do {                                                                   \
        checks++;                                                          \
        if (!(cond)) {                                                     \
            failures++;                                                    \
            fprintf(stderr, "FAIL %s:%d: (%s) ", __FILE__, __LINE__, #cond); \
            fprintf(stderr, __VA_ARGS__);                                  \
            fputc('\n', stderr);                                           \
        }                                                                  \
    } while (0)

static const char RING[] =
    "CRM=8263D535FFFFFFFF7B0F60\n"
    "CRM.k1=6df47ad8f2f90da985fbf76635e800cf0d3ba883ad8b7d592f8f9c30e0b62ac2\n";
static const char CLAIMS[] =
    "{\"login\":\"crm1\",\"password\":\"p<&\\\"'\xc3\xbc\",\"domain\":\"sip.example.org\"}";
/* "CR\xffM": invalid UTF-8 at offset 2. */
static const char BAD[] = {'C', 'R', (char)0xff, 'M', 0};

static siptoken_keyring *ring_from(const char *text) {
    siptoken_keyring *ring = NULL;
    char *err = NULL;
    int rc = siptoken_keyring_from_str(text, &ring, &err);
    CHECK(rc == 0 && ring != NULL && err == NULL, "keyring_from_str: %d %s", rc, err ? err : "");
    siptoken_free(err);
    return ring;
}

/* Verifies with options; returns the parsed result (caller json_decref's) or NULL. */
static json_t *verify_json(const siptoken_keyring *ring, const char *token, const char *options) {
    char *result = NULL, *err = NULL;
    int rc = siptoken_verify(ring, token, options, &result, &err);
    CHECK(rc == 0 && result != NULL && err == NULL, "verify returned %d (%s): %s", rc,
          siptoken_error_code(rc), err ? err : "");
    json_t *parsed = NULL;
    if (result) {
        json_error_t jerr;
        parsed = json_loads(result, 0, &jerr);
        CHECK(parsed != NULL, "result is not JSON: %s", jerr.text);
    }
    siptoken_free(result);
    siptoken_free(err);
    return parsed;
}

static char *options_for(json_t *doc, int allow_legacy) {
    json_t *o = json_pack("{s:b, s:O, s:O, s:O}", "allow_legacy", allow_legacy, "leeway_seconds",
                          json_object_get(doc, "leeway_seconds"), "max_lifetime_seconds",
                          json_object_get(doc, "max_lifetime_seconds"), "now",
                          json_object_get(doc, "now"));
    char *s = json_dumps(o, JSON_COMPACT);
    json_decref(o);
    return s;
}

static int vector_tokens;

static void run_vector_file(const char *path) {
    json_error_t jerr;
    json_t *doc = json_load_file(path, 0, &jerr);
    CHECK(doc != NULL, "%s: %s", path, jerr.text);
    if (!doc) return;
    siptoken_keyring *ring = ring_from(json_string_value(json_object_get(doc, "keyring")));
    char *opts_legacy = options_for(doc, 1);
    char *opts_strict = options_for(doc, 0);
    size_t i;
    json_t *v;

    json_array_foreach(json_object_get(doc, "valid"), i, v) {
        const char *name = json_string_value(json_object_get(v, "name"));
        const char *token = json_string_value(json_object_get(v, "token"));
        const char *format = json_string_value(json_object_get(v, "format"));
        json_t *claims = json_object_get(v, "claims");
        vector_tokens++;
        json_t *r = verify_json(ring, token, opts_legacy);
        if (!r) continue;
        CHECK(json_is_true(json_object_get(r, "valid")), "%s [%s]: not valid: %s", path, name,
              json_string_value(json_object_get(r, "message")));
        CHECK(json_equal(json_object_get(r, "format"), json_object_get(v, "format")), "%s [%s]: format", path, name);
        CHECK(json_equal(json_object_get(r, "app"), json_object_get(v, "app")), "%s [%s]: app", path, name);
        json_t *kid = json_object_get(v, "kid");
        if (kid) {
            CHECK(json_equal(json_object_get(r, "kid"), kid), "%s [%s]: kid", path, name);
        } else if (strcmp(format, "legacy") == 0) {
            CHECK(json_is_null(json_object_get(r, "kid")), "%s [%s]: legacy kid is null", path, name);
        }
        CHECK(json_equal(json_object_get(r, "claims"), claims), "%s [%s]: claims differ", path, name);
        json_decref(r);

        /* Round trip: the same claims issued again (same format and app) verify to themselves;
         * only expires (and for v1 issued and id) may be added. */
        char *claims_text = json_dumps(claims, JSON_COMPACT);
        char *issued = NULL, *err = NULL;
        int rc = siptoken_issue(ring, json_string_value(json_object_get(v, "app")), claims_text,
                                strcmp(format, "legacy") == 0, &issued, &err);
        CHECK(rc == 0 && issued != NULL, "%s [%s]: re-issue: %d %s", path, name, rc, err ? err : "");
        if (issued) {
            /* Claims without expires get now + 300 from the real clock: verify at real time then. */
            const char *opts = json_object_get(claims, "expires") ? opts_legacy : "{\"allow_legacy\":true}";
            json_t *r2 = verify_json(ring, issued, opts);
            if (r2) {
                json_t *got = json_object_get(r2, "claims");
                const char *key;
                json_t *value;
                CHECK(json_is_true(json_object_get(r2, "valid")), "%s [%s]: re-issued token invalid: %s", path,
                      name, json_string_value(json_object_get(r2, "message")));
                json_object_foreach(claims, key, value) {
                    CHECK(json_equal(json_object_get(got, key), value), "%s [%s]: claim %s changed", path, name, key);
                }
                json_object_foreach(got, key, value) {
                    int added = json_object_get(claims, key) == NULL;
                    CHECK(!added || strcmp(key, "expires") == 0 ||
                              (strcmp(format, "v1") == 0 && (strcmp(key, "issued") == 0 || strcmp(key, "id") == 0)),
                          "%s [%s]: claim %s appeared", path, name, key);
                }
                json_decref(r2);
            }
        }
        siptoken_free(issued);
        siptoken_free(err);
        free(claims_text);
    }

    json_array_foreach(json_object_get(doc, "invalid"), i, v) {
        const char *name = json_string_value(json_object_get(v, "name"));
        const char *want = json_string_value(json_object_get(v, "error"));
        int allow = json_is_true(json_object_get(v, "allow_legacy"));
        vector_tokens++;
        json_t *r = verify_json(ring, json_string_value(json_object_get(v, "token")), allow ? opts_legacy : opts_strict);
        if (!r) continue;
        const char *got = json_string_value(json_object_get(r, "error"));
        CHECK(json_is_false(json_object_get(r, "valid")), "%s [%s]: accepted", path, name);
        CHECK(got && strcmp(got, want) == 0, "%s [%s]: error %s, want %s", path, name, got ? got : "(none)", want);
        const char *msg = json_string_value(json_object_get(r, "message"));
        CHECK(msg && *msg, "%s [%s]: no message", path, name);
        json_decref(r);
    }
    free(opts_legacy);
    free(opts_strict);
    siptoken_keyring_free(ring);
    json_decref(doc);
}

static int ends_with(const char *s, const char *suffix) {
    size_t n = strlen(s), m = strlen(suffix);
    return n >= m && strcmp(s + n - m, suffix) == 0;
}

static void run_vectors(const char *dir) {
    DIR *d = opendir(dir);
    CHECK(d != NULL, "cannot open %s", dir);
    if (!d) return;
    int files = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (!ends_with(e->d_name, ".json")) continue;
        char path[4096];
        snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
        run_vector_file(path);
        files++;
    }
    closedir(d);
    CHECK(files > 0, "no vector files in %s", dir);
    printf("vectors: %d files, %d tokens\n", files, vector_tokens);
}

/* Expects a call to fail with `code` and the message `want` (when not NULL). */
static void expect_error(const char *what, int rc, char *err, int code, const char *want) {
    CHECK(rc == code, "%s: returned %d (%s), want %d (%s)", what, rc, siptoken_error_code(rc), code,
          siptoken_error_code(code));
    CHECK(err != NULL, "%s: no message", what);
    if (err && want) CHECK(strcmp(err, want) == 0, "%s: message \"%s\", want \"%s\"", what, err, want);
    siptoken_free(err);
}

/* Calls first, then checks: the error slot is read only after the call. */
#define EXPECT(what, call, code, want)                  \
    do {                                                \
        err = NULL;                                     \
        int rc_ = (call);                               \
        expect_error(what, rc_, err, code, want);       \
    } while (0)

static void test_null_and_invalid_utf8(void) {
    siptoken_keyring *ring = ring_from(RING);
    siptoken_keyring *out = (siptoken_keyring *)&out; /* must be reset to NULL */
    char *s = (char *)&s;
    char *err = NULL;
    const char *null_msg[] = {"argument `path` is NULL", "argument `out` is NULL", "argument `text` is NULL",
                              "argument `ring` is NULL", "argument `app` is NULL", "argument `claims_json` is NULL",
                              "argument `token` is NULL", "argument `result_json` is NULL"};

    /* NULL for every required pointer, with and without an error slot. */
    EXPECT("open(NULL)", siptoken_keyring_open(NULL, &out, &err), SIPTOKEN_ERR_NULL_ARGUMENT, null_msg[0]);
    CHECK(out == NULL, "open: out reset");
    CHECK(siptoken_keyring_open(NULL, &out, NULL) == SIPTOKEN_ERR_NULL_ARGUMENT, "open(NULL, err=NULL)");
    EXPECT("open(out=NULL)", siptoken_keyring_open("/dev/null", NULL, &err), SIPTOKEN_ERR_NULL_ARGUMENT, null_msg[1]);
    EXPECT("from_str(NULL)", siptoken_keyring_from_str(NULL, &out, &err), SIPTOKEN_ERR_NULL_ARGUMENT, null_msg[2]);
    CHECK(siptoken_keyring_from_str(NULL, &out, NULL) == SIPTOKEN_ERR_NULL_ARGUMENT, "from_str(NULL, err=NULL)");
    EXPECT("from_str(out=NULL)", siptoken_keyring_from_str(RING, NULL, &err), SIPTOKEN_ERR_NULL_ARGUMENT, null_msg[1]);
    CHECK(out == NULL, "from_str: out stays NULL");

    EXPECT("issue(ring=NULL)", siptoken_issue(NULL, "CRM", CLAIMS, 0, &s, &err), SIPTOKEN_ERR_NULL_ARGUMENT, null_msg[3]);
    CHECK(s == NULL, "issue: token reset");
    EXPECT("issue(app=NULL)", siptoken_issue(ring, NULL, CLAIMS, 0, &s, &err), SIPTOKEN_ERR_NULL_ARGUMENT, null_msg[4]);
    EXPECT("issue(claims=NULL)", siptoken_issue(ring, "CRM", NULL, 0, &s, &err), SIPTOKEN_ERR_NULL_ARGUMENT, null_msg[5]);
    EXPECT("issue(token=NULL)", siptoken_issue(ring, "CRM", CLAIMS, 0, NULL, &err), SIPTOKEN_ERR_NULL_ARGUMENT, null_msg[6]);
    CHECK(siptoken_issue(NULL, NULL, NULL, 0, NULL, NULL) == SIPTOKEN_ERR_NULL_ARGUMENT, "issue(all NULL)");

    EXPECT("verify(ring=NULL)", siptoken_verify(NULL, "CRM:00", NULL, &s, &err), SIPTOKEN_ERR_NULL_ARGUMENT, null_msg[3]);
    EXPECT("verify(token=NULL)", siptoken_verify(ring, NULL, NULL, &s, &err), SIPTOKEN_ERR_NULL_ARGUMENT, null_msg[6]);
    EXPECT("verify(result=NULL)", siptoken_verify(ring, "CRM:00", NULL, NULL, &err), SIPTOKEN_ERR_NULL_ARGUMENT, null_msg[7]);
    CHECK(siptoken_verify(NULL, NULL, NULL, NULL, NULL) == SIPTOKEN_ERR_NULL_ARGUMENT, "verify(all NULL)");
    CHECK(s == NULL, "verify: result stays NULL");

    siptoken_free(NULL);
    siptoken_keyring_free(NULL);

    /* Invalid UTF-8 in every string argument. */
#define UTF8_MSG(arg) "argument `" arg "` is not valid UTF-8 (invalid byte at offset 2)"
    EXPECT("open(bad)", siptoken_keyring_open(BAD, &out, &err), SIPTOKEN_ERR_INVALID_UTF8, UTF8_MSG("path"));
    EXPECT("from_str(bad)", siptoken_keyring_from_str(BAD, &out, &err), SIPTOKEN_ERR_INVALID_UTF8, UTF8_MSG("text"));
    CHECK(out == NULL, "bad utf8: out stays NULL");
    EXPECT("issue(app bad)", siptoken_issue(ring, BAD, CLAIMS, 0, &s, &err), SIPTOKEN_ERR_INVALID_UTF8, UTF8_MSG("app"));
    EXPECT("issue(claims bad)", siptoken_issue(ring, "CRM", BAD, 1, &s, &err), SIPTOKEN_ERR_INVALID_UTF8, UTF8_MSG("claims_json"));
    EXPECT("verify(token bad)", siptoken_verify(ring, BAD, NULL, &s, &err), SIPTOKEN_ERR_INVALID_UTF8, UTF8_MSG("token"));
    EXPECT("verify(options bad)", siptoken_verify(ring, "CRM:00", BAD, &s, &err), SIPTOKEN_ERR_INVALID_UTF8, UTF8_MSG("options_json"));
    CHECK(s == NULL, "bad utf8: outputs stay NULL");

    /* Other caller errors. */
    EXPECT("issue(bad json)", siptoken_issue(ring, "CRM", "{\"login\":", 0, &s, &err), SIPTOKEN_ERR_INVALID_JSON, NULL);
    EXPECT("issue(missing)", siptoken_issue(ring, "CRM", "{\"login\":\"a\"}", 0, &s, &err), SIPTOKEN_ERR_MISSING_FIELD, NULL);
    EXPECT("issue(unknown app)", siptoken_issue(ring, "NOPE", CLAIMS, 0, &s, &err), SIPTOKEN_ERR_UNKNOWN_APP, NULL);
    EXPECT("verify(bad options)", siptoken_verify(ring, "CRM:00", "{\"now\":\"soon\"}", &s, &err), SIPTOKEN_ERR_INVALID_JSON, NULL);
    CHECK(s == NULL, "errors: outputs stay NULL");

    /* Codes and version. */
    CHECK(strcmp(siptoken_error_code(0), "ok") == 0, "code 0");
    CHECK(strcmp(siptoken_error_code(SIPTOKEN_ERR_BAD_SIGNATURE), "bad_signature") == 0, "code 4");
    CHECK(strcmp(siptoken_error_code(SIPTOKEN_ERR_IO), "io") == 0, "code 15");
    CHECK(strcmp(siptoken_error_code(SIPTOKEN_ERR_INVALID_UTF8), "invalid_utf8") == 0, "code 17");
    CHECK(strcmp(siptoken_error_code(SIPTOKEN_ERR_INTERNAL), "internal") == 0, "code 18");
    CHECK(strcmp(siptoken_error_code(-7), "unknown") == 0, "code -7");
    CHECK(strcmp(siptoken_error_code(19), "unknown") == 0, "code 19");
    CHECK(strlen(siptoken_version()) > 0, "version");
    siptoken_keyring_free(ring);
}

static void test_keyring_files(void) {
    char path[] = "/tmp/siptoken-abi-test-XXXXXX";
    int fd = mkstemp(path);
    CHECK(fd >= 0, "mkstemp");
    if (fd < 0) return;
    const char bad[] = "# ring\nCRM.k1=00112233445566778899\n";
    CHECK(write(fd, bad, sizeof bad - 1) == (ssize_t)(sizeof bad - 1), "write");
    close(fd);
    siptoken_keyring *ring = NULL;
    char *err = NULL;
    int rc = siptoken_keyring_open(path, &ring, &err);
    CHECK(rc == SIPTOKEN_ERR_INVALID_KEYRING && ring == NULL, "invalid ring: %d", rc);
    CHECK(err && strstr(err, "line 2") && !strstr(err, "00112233"), "message names the line, not the key: %s",
          err ? err : "");
    siptoken_free(err);

    FILE *f = fopen(path, "w");
    fputs(RING, f);
    fclose(f);
    err = NULL;
    rc = siptoken_keyring_open(path, &ring, &err);
    CHECK(rc == 0 && ring && !err, "open: %d %s", rc, err ? err : "");
    char *token = NULL;
    rc = siptoken_issue(ring, "CRM", CLAIMS, 1, &token, NULL);
    CHECK(rc == 0 && token && strncmp(token, "CRM:", 4) == 0 && token[4] != 'v', "legacy issue");
    siptoken_free(token);
    siptoken_keyring_free(ring);
    unlink(path);

    err = NULL;
    rc = siptoken_keyring_open(path, &ring, &err);
    CHECK(rc == SIPTOKEN_ERR_IO && ring == NULL && err && strstr(err, path), "missing file: %d", rc);
    siptoken_free(err);
}

/* ---- 8 threads, one key ring ---- */

#define THREADS 8
static int rounds = 100;

struct worker {
    const siptoken_keyring *ring;
    int id;
    int ok;
};

static void *work(void *arg) {
    struct worker *w = arg;
    char claims[256], login[64], *token = NULL, *result = NULL, *err = NULL;
    for (int i = 0; i < rounds; i++) {
        int legacy = i % 4 == 3;
        snprintf(login, sizeof login, "\"login\":\"op%d-%d\"", w->id, i);
        snprintf(claims, sizeof claims, "{%s,\"password\":\"pw%d\",\"domain\":\"sip.example.org\",\"ttl_seconds\":60}",
                 login, i);
        if (siptoken_issue(w->ring, "CRM", claims, legacy, &token, &err) != 0) break;
        if (siptoken_verify(w->ring, token, legacy ? "{\"allow_legacy\":true}" : NULL, &result, &err) != 0) break;
        int good = strncmp(result, "{\"valid\":true", 13) == 0 && strstr(result, login) != NULL;
        siptoken_free(token);
        siptoken_free(result);
        token = result = NULL;
        if (!good) break;
        w->ok++;
    }
    siptoken_free(token);
    siptoken_free(result);
    siptoken_free(err);
    return NULL;
}

static void test_threads(void) {
    siptoken_keyring *ring = ring_from(RING);
    pthread_t threads[THREADS];
    struct worker workers[THREADS];
    for (int t = 0; t < THREADS; t++) {
        workers[t] = (struct worker){ring, t, 0};
        CHECK(pthread_create(&threads[t], NULL, work, &workers[t]) == 0, "pthread_create");
    }
    for (int t = 0; t < THREADS; t++) {
        pthread_join(threads[t], NULL);
        CHECK(workers[t].ok == rounds, "thread %d: %d of %d rounds", t, workers[t].ok, rounds);
    }
    siptoken_keyring_free(ring);
    printf("threads: %d x %d issue+verify on one key ring\n", THREADS, rounds);
}

int main(int argc, char **argv) {
    if (argc < 2) {
        fprintf(stderr, "usage: %s VECTORS_DIR [ROUNDS]\n", argv[0]);
        return 2;
    }
    if (argc > 2) rounds = atoi(argv[2]);
    run_vectors(argv[1]);
    test_null_and_invalid_utf8();
    test_keyring_files();
    test_threads();
    printf("%d passed, %d failed\n", checks - failures, failures);
    return failures ? 1 : 0;
}
