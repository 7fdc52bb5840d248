//! Gateway metrics, rendered in the Prometheus text exposition format at `GET /metrics`.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

/// Upper bounds (seconds) of the login latency histogram buckets.
pub const LATENCY_BUCKETS: [f64; 12] = [
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
];

/// Counters and gauges shared by every session.
#[derive(Default)]
pub struct Metrics {
    /// Open WebSocket sessions.
    pub sessions: AtomicI64,
    /// Accounts currently registered (or authenticated without registration).
    pub registered: AtomicI64,
    /// SIP client transactions started (each REGISTER sent, not counting retransmissions).
    pub sip_transactions: AtomicU64,
    /// UDP retransmissions of REGISTER requests.
    pub sip_retransmissions: AtomicU64,
    /// Requests from registrars answered (OPTIONS keep-alives and others).
    pub sip_requests_answered: AtomicU64,
    /// Refreshes that succeeded.
    pub refreshes: AtomicU64,
    /// Calls to the shared single-use store that failed (down, timed out, refused).
    pub replay_store_errors: AtomicU64,
    /// Calls in progress (placed, ringing or established).
    pub calls: AtomicI64,
    calls_ended: Mutex<BTreeMap<&'static str, u64>>,
    logins: Mutex<BTreeMap<(&'static str, &'static str), u64>>,
    closed: Mutex<BTreeMap<&'static str, u64>>,
    latency: Mutex<Histogram>,
}

#[derive(Default)]
struct Histogram {
    counts: [u64; LATENCY_BUCKETS.len()],
    sum: f64,
    count: u64,
}

impl Metrics {
    /// Counts a login attempt by outcome (`registered`, `authenticated`, `error`) and error code
    /// (empty when none).
    pub fn login(&self, outcome: &'static str, code: &'static str) {
        bump(&self.logins, (outcome, code));
    }

    /// Counts a connection the gateway closed because a limit was hit (`handshake_timeout`,
    /// `http_idle_timeout`, `tls_handshake_failed`, `proxy_header_invalid`, `connection_limit`,
    /// `connection_limit_per_ip`, `login_timeout`, `idle_timeout`, `message_too_big`).
    pub fn closed(&self, reason: &'static str) {
        bump(&self.closed, reason);
    }

    /// Counts an ended call by its end reason.
    pub fn call_ended(&self, reason: &'static str) {
        bump(&self.calls_ended, reason);
    }

    /// Records the time from a login message to `registered` / `authenticated`.
    pub fn observe_login_latency(&self, d: Duration) {
        let s = d.as_secs_f64();
        let mut h = lock(&self.latency);
        for (i, b) in LATENCY_BUCKETS.iter().enumerate() {
            if s <= *b {
                h.counts[i] += 1;
            }
        }
        h.sum += s;
        h.count += 1;
    }

    /// The Prometheus text exposition.
    pub fn render(&self) -> String {
        let mut out = String::new();
        let gauges = [
            (
                "siptoken_gateway_sessions",
                "Open WebSocket sessions.",
                &self.sessions,
            ),
            (
                "siptoken_gateway_registered_accounts",
                "Accounts registered (or authenticated) by open sessions.",
                &self.registered,
            ),
            ("siptoken_gateway_calls", "Calls in progress.", &self.calls),
        ];
        for (name, help, v) in gauges {
            let v = v.load(Ordering::Relaxed);
            let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} gauge\n{name} {v}");
        }
        labeled_counter(
            &mut out,
            "siptoken_gateway_calls_ended_total",
            "Calls ended, by reason.",
            &self.calls_ended,
            |reason| format!("reason=\"{reason}\""),
        );
        let counters = [
            (
                "siptoken_gateway_sip_transactions_total",
                "SIP REGISTER transactions sent.",
                &self.sip_transactions,
            ),
            (
                "siptoken_gateway_sip_retransmissions_total",
                "SIP REGISTER retransmissions over UDP.",
                &self.sip_retransmissions,
            ),
            (
                "siptoken_gateway_sip_requests_answered_total",
                "SIP requests from registrars answered (OPTIONS keep-alives).",
                &self.sip_requests_answered,
            ),
            (
                "siptoken_gateway_refreshes_total",
                "Successful registration refreshes.",
                &self.refreshes,
            ),
            (
                "siptoken_gateway_replay_store_errors_total",
                "Single-use store calls that failed (store down, timed out or refusing).",
                &self.replay_store_errors,
            ),
        ];
        for (name, help, v) in counters {
            let v = v.load(Ordering::Relaxed);
            let _ = writeln!(
                out,
                "# HELP {name} {help}\n# TYPE {name} counter\n{name} {v}"
            );
        }
        labeled_counter(
            &mut out,
            "siptoken_gateway_logins_total",
            "Login attempts by outcome and error code.",
            &self.logins,
            |(outcome, code)| format!("outcome=\"{outcome}\",code=\"{code}\""),
        );
        labeled_counter(
            &mut out,
            "siptoken_gateway_connections_closed_total",
            "Connections closed by a limit, by reason.",
            &self.closed,
            |reason| format!("reason=\"{reason}\""),
        );
        let h = lock(&self.latency);
        let name = "siptoken_gateway_login_latency_seconds";
        let _ = writeln!(
            out,
            "# HELP {name} Time from a login message to registered or authenticated.\n# TYPE {name} histogram"
        );
        for (i, b) in LATENCY_BUCKETS.iter().enumerate() {
            let _ = writeln!(out, "{name}_bucket{{le=\"{b}\"}} {}", h.counts[i]);
        }
        let _ = writeln!(out, "{name}_bucket{{le=\"+Inf\"}} {}", h.count);
        let _ = writeln!(out, "{name}_sum {}", h.sum);
        let _ = writeln!(out, "{name}_count {}", h.count);
        out
    }
}

/// The value behind `m`, also when a thread panicked holding it (counters stay usable).
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// Adds one to the count of `key`.
fn bump<K: Ord>(counts: &Mutex<BTreeMap<K, u64>>, key: K) {
    *lock(counts).entry(key).or_default() += 1;
}

/// A counter family with one series per key: HELP, TYPE, then `name{labels} count` lines.
fn labeled_counter<K>(
    out: &mut String,
    name: &str,
    help: &str,
    counts: &Mutex<BTreeMap<K, u64>>,
    labels: impl Fn(&K) -> String,
) {
    let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} counter");
    for (key, n) in lock(counts).iter() {
        let _ = writeln!(out, "{name}{{{}}} {n}", labels(key));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_counters_and_a_cumulative_histogram() {
        let m = Metrics::default();
        m.login("error", "replayed");
        m.login("error", "replayed");
        m.closed("idle_timeout");
        m.observe_login_latency(Duration::from_millis(7));
        m.observe_login_latency(Duration::from_millis(300));
        let text = m.render();
        assert!(
            text.contains("siptoken_gateway_logins_total{outcome=\"error\",code=\"replayed\"} 2")
        );
        assert!(
            text.contains("siptoken_gateway_connections_closed_total{reason=\"idle_timeout\"} 1")
        );
        assert!(text.contains("siptoken_gateway_login_latency_seconds_bucket{le=\"0.01\"} 1"));
        assert!(text.contains("siptoken_gateway_login_latency_seconds_bucket{le=\"0.5\"} 2"));
        assert!(text.contains("siptoken_gateway_login_latency_seconds_count 2"));
    }

    /// `/metrics` is a public contract like the WebSocket protocol: every series the gateway
    /// exposes (its own and the media layer's) has a row in docs/gateway-protocol.md, with the
    /// type the exposition declares.
    #[test]
    fn every_series_is_documented_with_its_type() {
        let doc = include_str!("../../../docs/gateway-protocol.md");
        let mut text = Metrics::default().render();
        crate::media::counters::MediaCounters::default().render(&mut text);
        let mut seen = 0;
        for line in text.lines() {
            let Some(decl) = line.strip_prefix("# TYPE ") else {
                continue;
            };
            let (name, kind) = decl.split_once(' ').expect("name and type");
            let row = doc
                .lines()
                .find(|l| {
                    l.starts_with(&format!("| `{name}`")) || l.starts_with(&format!("| `{name}{{"))
                })
                .unwrap_or_else(|| panic!("{name} is not in docs/gateway-protocol.md"));
            assert!(
                row.contains(&format!("| {kind} |")),
                "{name}: {kind}, doc says {row}"
            );
            seen += 1;
        }
        assert!(seen >= 20, "{seen} series");
    }
}
