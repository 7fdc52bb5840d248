//! The `siptoken-gateway` command line (also the source of `man/siptoken-gateway.8`).

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;

use clap::Parser;

use super::config::{Config, ConfigError};

/// WebSocket-to-SIP gateway: verifies siptoken tokens from browsers and registers their SIP
/// accounts with digest authentication, so that SIP passwords never reach the browser.
#[derive(Debug, Parser)]
#[command(
    name = "siptoken-gateway",
    version,
    about = "WebSocket-to-SIP gateway: verifies siptoken tokens and registers their SIP accounts",
    long_about = "WebSocket-to-SIP gateway: a browser presents a siptoken token over a WebSocket \
        at /ws; the gateway verifies it with its key ring and performs the SIP REGISTER (digest \
        authentication) itself, so the SIP password never reaches the browser. It refreshes the \
        registration until the socket closes, the client logs out or the gateway stops, and \
        then unregisters.\n\nHTTP endpoints: GET / (demo page), GET /healthz, GET /metrics \
        (Prometheus), GET /ws (WebSocket). The protocol is described in docs/gateway-protocol.md.",
    after_help = "Command-line options override the configuration file. Logging: --log or \
        SIPTOKEN_GATEWAY_LOG (e.g. info, debug, siptoken=debug). Stop with SIGTERM or SIGINT: \
        every registered account is unregistered before the process exits."
)]
pub struct Cli {
    /// TOML configuration file (see examples/gateway.toml).
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// HTTP/WebSocket listen address [default: 127.0.0.1:8088].
    #[arg(long, value_name = "ADDR")]
    pub listen: Option<SocketAddr>,
    /// Key ring file (APP=HEX legacy keys, APP.KID=HEX v1 keys).
    #[arg(long, value_name = "FILE")]
    pub keys: Option<PathBuf>,
    /// Accept legacy (unauthenticated Web Call Server) tokens.
    #[arg(long)]
    pub allow_legacy: bool,
    /// Local IP address for SIP sockets [default: 0.0.0.0].
    #[arg(long, value_name = "ADDR")]
    pub sip_bind: Option<IpAddr>,
    /// Allow WebSocket upgrades from this origin besides the gateway's own (repeatable).
    #[arg(long = "allowed-origin", value_name = "ORIGIN")]
    pub allowed_origins: Vec<String>,
    /// Log filter (tracing env-filter syntax).
    #[arg(
        long,
        value_name = "FILTER",
        env = "SIPTOKEN_GATEWAY_LOG",
        default_value = "info"
    )]
    pub log: String,
    /// Check the configuration and the key ring, then exit.
    #[arg(long)]
    pub check: bool,
}

impl Cli {
    /// The configuration file (or defaults) with this command line's overrides applied.
    pub fn config(&self) -> Result<Config, ConfigError> {
        let mut c = match &self.config {
            Some(p) => Config::load(p)?,
            None => Config::default(),
        };
        if let Some(l) = self.listen {
            c.listen = l;
        }
        if let Some(k) = &self.keys {
            c.keys = Some(k.clone());
        }
        if self.allow_legacy {
            c.allow_legacy = true;
        }
        if let Some(b) = self.sip_bind {
            c.sip_bind = b;
        }
        c.allowed_origins
            .extend(self.allowed_origins.iter().cloned());
        c.validate()?;
        Ok(c)
    }
}

/// The man page `siptoken-gateway(8)`, generated from the command definition.
pub fn man_page() -> String {
    use clap::CommandFactory;
    let cmd = Cli::command().version(env!("CARGO_PKG_VERSION"));
    let mut out = Vec::new();
    clap_mangen::Man::new(cmd)
        .section("8")
        .render(&mut out)
        .expect("rendering into memory cannot fail");
    String::from_utf8(out).expect("clap_mangen writes UTF-8")
}
