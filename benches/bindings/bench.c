/*
 * The C baseline for benches/bindings/compare.sh: siptoken_issue and siptoken_verify per call
 * straight from C, with the same claims as bench.php and bench.py (what the bindings add on top
 * is their own call and marshalling cost).
 *
 *   cc -O2 -I bindings/c/include benches/bindings/bench.c -L target/release -lsiptoken -o bench_c
 *   ./bench_c [ITERATIONS] [ROUNDS]
 */
#define _POSIX_C_SOURCE 200809L
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "siptoken.h"

static const char CLAIMS[] =
    "{\"login\":\"crm1\",\"authenticationName\":\"crm1-auth\",\"password\":\"s3cr&lt;t-Pa55word!\","
    "\"domain\":\"sip.example.org\",\"outboundProxy\":\"proxy.example.org\",\"port\":5060,"
    "\"visibleName\":\"Operator 1 (Sales)\",\"transport\":\"udp\",\"registered\":\"true\"}";

static double now_us(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec * 1e6 + t.tv_nsec / 1e3;
}

static int cmp(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

int main(int argc, char **argv) {
    int n = argc > 1 ? atoi(argv[1]) : 20000, rounds = argc > 2 ? atoi(argv[2]) : 7;
    siptoken_keyring *ring = NULL;
    char *token = NULL, *s = NULL;
    if (siptoken_keyring_from_str("CRM.k1=6df47ad8f2f90da985fbf76635e800cf0d3ba883ad8b7d592f8f9c30e0b62ac2", &ring, NULL) ||
        siptoken_issue(ring, "CRM", CLAIMS, 0, &token, NULL) || siptoken_verify(ring, token, NULL, &s, NULL)) {
        fprintf(stderr, "setup failed\n");
        return 1;
    }
    siptoken_free(s);
    double issue[64], verify[64];
    if (rounds > 64) rounds = 64;
    for (int r = 0; r < rounds; r++) {
        double t = now_us();
        for (int i = 0; i < n; i++) {
            siptoken_issue(ring, "CRM", CLAIMS, 0, &s, NULL);
            siptoken_free(s);
        }
        issue[r] = (now_us() - t) / n;
        t = now_us();
        for (int i = 0; i < n; i++) {
            siptoken_verify(ring, token, NULL, &s, NULL);
            siptoken_free(s);
        }
        verify[r] = (now_us() - t) / n;
    }
    qsort(issue, (size_t)rounds, sizeof *issue, cmp);
    qsort(verify, (size_t)rounds, sizeof *verify, cmp);
    printf("C baseline (libsiptoken %s, same claims; %d calls x %d rounds, median)\n", siptoken_version(), n, rounds);
    printf("%-12s %14s\n", "C", "us/call");
    printf("%-12s %14.2f\n%-12s %14.2f\n", "issue v1", issue[rounds / 2], "verify v1", verify[rounds / 2]);
    siptoken_free(token);
    siptoken_keyring_free(ring);
    return 0;
}
