#!/usr/bin/env bash
# Hardening (issue 7): the gateway's shared single-use store on a real redis-server (two gateway
# processes racing the same token), Redis down / silent behaviour; the gateway's limits
# (handshake and idle timeouts, message size, per-IP rate, sessions, silent registrars); and the
# secrets tests (the CLI and the gateway at the most verbose logging, against Kamailio: no
# password, key or whole token in any output); TLS (wss:// with a certificate the test makes, SIP
# over TLS to Kamailio's tls module). Peers are started by the
# tests themselves on loopback; SIPTOKEN_GATEWAY_PEERS=1 enables the tests that need them.
set -euo pipefail
cd "$(dirname "$0")/../.."
source scripts/lib.sh

need_apt redis-server kamailio kamailio-tls-modules openssl
export SIPTOKEN_GATEWAY_PEERS=1

hardening_tests=(--test gateway_redis --test gateway_limits --test secrets_cli --test secrets_gateway --test gateway_tls)

step "hardening: rustfmt" rustfmt --edition 2021 --check src/gateway/*.rs tests/gateway_redis.rs tests/gateway_limits.rs tests/secrets_*.rs tests/gateway_tls.rs src/gateway/sip/transport.rs
step "hardening: clippy" cargo clippy --features gateway --lib --bin siptoken-gateway "${hardening_tests[@]}" -- -D warnings
step "hardening: Redis and TLS unit tests (RESP parser, URLs, timeouts, PEM files)" cargo test --features gateway --lib -- gateway::redis gateway::tls
step "hardening: integration tests (redis-server and two gateways, limits, secrets, TLS)" cargo test --features gateway "${hardening_tests[@]}"
