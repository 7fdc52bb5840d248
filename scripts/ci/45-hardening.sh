#!/usr/bin/env bash
# Hardening (issue 7): the gateway's shared single-use store on a real redis-server (two gateway
# processes racing the same token), Redis down / silent behaviour. Peers are started by the
# tests themselves on loopback; SIPTOKEN_GATEWAY_PEERS=1 enables the tests that need them.
set -euo pipefail
cd "$(dirname "$0")/../.."
source scripts/lib.sh

need_apt redis-server
export SIPTOKEN_GATEWAY_PEERS=1

hardening_tests=(--test gateway_redis)

step "hardening: rustfmt" rustfmt --edition 2021 --check src/gateway/redis.rs tests/gateway_redis.rs
step "hardening: clippy" cargo clippy --features gateway --lib --bin siptoken-gateway "${hardening_tests[@]}" -- -D warnings
step "hardening: Redis store unit tests (RESP parser, URLs, timeouts)" cargo test --features gateway --lib gateway::redis
step "hardening: integration tests (redis-server, two gateways)" cargo test --features gateway "${hardening_tests[@]}"
