#!/usr/bin/env bash
# Hardening (issue 7): the gateway's shared single-use store on a real redis-server (two gateway
# processes racing the same token), Redis down / silent behaviour, Redis over TLS, Sentinel
# failover during logins, a 3-node Redis Cluster (issue 12); the gateway's limits
# (handshake and idle timeouts, message size, per-IP rate, sessions, silent registrars); and the
# secrets tests (the CLI and the gateway at the most verbose logging, against Kamailio: no
# password, key or whole token in any output); TLS (wss:// with a certificate the test makes, SIP
# over TLS to Kamailio's tls module); connection-level abuse (login deadline, per-address caps,
# idle HTTP/2 connections, request bodies, DNS rebinding) and front proxies (X-Forwarded-For,
# Forwarded, PROXY protocol v2; issue 14). Peers are started by the
# tests themselves on loopback; the tests that need them are #[ignore]d in a plain `cargo test`
# and run here with --include-ignored.
set -euo pipefail
cd "$(dirname "$0")/../.."
source scripts/lib.sh

need_apt redis-server redis-sentinel redis-tools kamailio kamailio-tls-modules openssl

hardening_tests=(--test gateway_redis --test gateway_limits --test secrets_gateway --test gateway_tls
  --test gateway_abuse --test gateway_proxies)
# The gateway process is not dumpable (issue 14, item 10).
hardening_tests+=(--test gateway_core_dumps)

step "hardening: Redis, TLS and client-address unit tests (URLs, timeouts, PEM files, proxies)" \
  cargo test -p siptoken-gateway --lib -- redis tls client_addr proxy_protocol ratelimit admission origin session_clock
step "hardening: secrets in the CLI's output" cargo test -p siptoken-cli --test secrets_cli
step "hardening: integration tests (redis-server, -sentinel, cluster and two gateways, limits, abuse, proxies, secrets, TLS)" \
  cargo test -p siptoken-gateway "${hardening_tests[@]}" -- --include-ignored \
  --skip ten_thousand_http2_streams_at_the_defaults  # full scale: in 70-load.sh
