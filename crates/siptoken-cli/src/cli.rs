//! The command-line interface definition (also the source of the man pages and completions).

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};
use siptoken::verify::{LEEWAY_LIMIT_SECONDS, LIFETIME_LIMIT_SECONDS};

const AFTER_HELP: &str = "\
EXIT STATUS:
    0  success
    1  the token was rejected (or, with --batch, at least one line failed)
    2  usage, input or configuration error

ENVIRONMENT:
    SIPTOKEN_KEYS  the key ring file used when --keys is not given

KEY RING:
    One NAME=HEX per line, '#' comments. APP=HEX (1 to 16 bytes) is the legacy key of APP;
    APP.KID=HEX (32 bytes) is a v1 key. The last v1 key listed for an app issues, all verify.
    Make one with: siptoken keygen --app CRM >> keys.conf && chmod 600 keys.conf";

/// Issue and verify expiring, encrypted SIP-credential tokens for browser phones.
///
/// A CRM backend turns an operator's SIP account into a short-lived token; the web page hands
/// the opaque token to a WebRTC–SIP gateway, which alone holds the key. The default format (v1)
/// is authenticated; the legacy Web Call Server format is available on request.
#[derive(Debug, Parser)]
#[command(name = "siptoken", version, after_long_help = AFTER_HELP)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Issue a token for a SIP account (one, or one per line with --batch)
    Issue(Box<IssueArgs>),
    /// Verify a token and print its claims
    Verify(VerifyArgs),
    /// Show a token's format, application, key id and sizes, without any key
    Inspect(InspectArgs),
    /// Print a new key ring line with a fresh random key
    Keygen(KeygenArgs),
    /// Print a shell completion script
    Completions(CompletionsArgs),
    /// Write the man pages into a directory
    #[command(hide = true)]
    Manpages(ManpagesArgs),
}

/// Options shared by commands that read a key ring.
#[derive(Debug, Args)]
pub struct KeysArg {
    /// Key ring file (NAME=HEX lines)
    #[arg(long, value_name = "FILE", env = "SIPTOKEN_KEYS")]
    pub keys: PathBuf,
}

/// Issue a token. The password is read from standard input, a file or an environment variable,
/// never from the command line.
#[derive(Debug, Args)]
#[command(after_long_help = "\
EXAMPLES:
    printf '%s' \"$SIP_PASSWORD\" | siptoken issue --keys keys.conf --app CRM \\
        --login crm1 --domain sip.example.org --password-stdin
    siptoken issue --keys keys.conf --app CRM --batch accounts.jsonl > tokens.txt

BATCH INPUT:
    One JSON object per line, keyed by the XML attribute names (login, password, domain,
    authenticationName, outboundProxy, port, visibleName, transport, registered, expires, or
    any other name), string or number values, plus optional ttl_seconds. Output line N is the
    token for input line N, or empty when that line failed (the error goes to stderr).")]
pub struct IssueArgs {
    #[command(flatten)]
    pub keys: KeysArg,

    /// Application name: selects the key
    #[arg(long, value_name = "APP")]
    pub app: String,

    /// SIP user name
    #[arg(
        long,
        value_name = "LOGIN",
        required_unless_present = "batch",
        conflicts_with = "batch"
    )]
    pub login: Option<String>,

    /// SIP domain (also the registrar when there is no outbound proxy)
    #[arg(
        long,
        value_name = "DOMAIN",
        required_unless_present = "batch",
        conflicts_with = "batch"
    )]
    pub domain: Option<String>,

    #[command(flatten)]
    pub password: PasswordSource,

    /// Digest authentication user name, when it differs from the login
    #[arg(long, value_name = "NAME", conflicts_with = "batch")]
    pub auth_name: Option<String>,

    /// Host to send SIP requests to instead of the domain
    #[arg(long, value_name = "HOST", conflicts_with = "batch")]
    pub outbound_proxy: Option<String>,

    /// SIP port of the registrar or proxy
    #[arg(long, value_name = "PORT", value_parser = clap::value_parser!(u16).range(1..), conflicts_with = "batch")]
    pub port: Option<u16>,

    /// Display name
    #[arg(long, value_name = "NAME", conflicts_with = "batch")]
    pub visible_name: Option<String>,

    /// SIP transport
    #[arg(long, value_enum, conflicts_with = "batch")]
    pub transport: Option<TransportArg>,

    /// Tell the gateway not to REGISTER the account (registered="false")
    #[arg(long, conflicts_with = "batch")]
    pub no_register: bool,

    /// An extra claim NAME=VALUE carried as is (repeatable)
    #[arg(long = "claim", value_name = "NAME=VALUE", conflicts_with = "batch")]
    pub claims: Vec<String>,

    /// Time to live: 5m, 300s, 1h 30m; plain numbers are seconds
    #[arg(long, value_name = "DURATION", default_value = "5m", value_parser = parse_duration)]
    pub ttl: std::time::Duration,

    /// Absolute expiry in Unix seconds (instead of --ttl)
    #[arg(long, value_name = "UNIX", conflicts_with_all = ["ttl", "batch"])]
    pub expires: Option<i64>,

    /// v1 key id to sign with (default: the last key of the app in the key ring)
    #[arg(long, value_name = "KID", conflicts_with = "legacy")]
    pub kid: Option<String>,

    /// Issue a legacy Web Call Server token (no integrity protection: avoid unless required)
    #[arg(long)]
    pub legacy: bool,

    /// Pin the clock to these Unix seconds (reproducible output, tests)
    #[arg(long, value_name = "UNIX")]
    pub now: Option<i64>,

    /// Issue one token per JSON line of FILE ('-' for standard input)
    #[arg(long, value_name = "FILE")]
    pub batch: Option<PathBuf>,
}

/// Where the password comes from (exactly one, except with --batch).
#[derive(Debug, Args)]
#[group(required = false, multiple = false)]
pub struct PasswordSource {
    /// Read the password from standard input (one trailing newline is removed)
    #[arg(long, conflicts_with = "batch")]
    pub password_stdin: bool,

    /// Read the password from FILE (one trailing newline is removed)
    #[arg(long, value_name = "FILE", conflicts_with = "batch")]
    pub password_file: Option<PathBuf>,

    /// Read the password from the environment variable VAR
    #[arg(long, value_name = "VAR", conflicts_with = "batch")]
    pub password_env: Option<String>,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum TransportArg {
    Udp,
    Tcp,
    Tls,
}

/// Verify a token: prints its claims (password hidden unless asked), or why it was rejected.
#[derive(Debug, Args)]
pub struct VerifyArgs {
    #[command(flatten)]
    pub keys: KeysArg,

    /// Accept legacy (unauthenticated) Web Call Server tokens
    #[arg(long)]
    pub allow_legacy: bool,

    /// Clock leeway for expires and issued (at most 5m)
    #[arg(long, value_name = "DURATION", default_value = "30s", value_parser = parse_leeway)]
    pub leeway: std::time::Duration,

    /// Largest accepted lifetime: expires - issued, or, without issued (legacy), expires - now
    /// - leeway (1s to 7d)
    #[arg(long, value_name = "DURATION", default_value = "24h", value_parser = parse_max_lifetime)]
    pub max_lifetime: std::time::Duration,

    /// Accept legacy tokens that carry no expires claim
    #[arg(long, requires = "allow_legacy")]
    pub allow_no_expiry: bool,

    /// Pin the clock to these Unix seconds (replaying old tokens, tests)
    #[arg(long, value_name = "UNIX")]
    pub now: Option<i64>,

    /// Print exactly one JSON object: {"valid":true,…,"claims":{…}} or {"valid":false,"error":…}
    #[arg(long)]
    pub json: bool,

    /// Include the SIP password in the output
    #[arg(long)]
    pub show_password: bool,

    /// The token ('-' or absent: read it from standard input)
    #[arg(value_name = "TOKEN")]
    pub token: Option<String>,
}

/// Show what a token says about itself without a key: nothing is decrypted.
#[derive(Debug, Args)]
pub struct InspectArgs {
    /// Print one JSON object
    #[arg(long)]
    pub json: bool,

    /// The token ('-' or absent: read it from standard input)
    #[arg(value_name = "TOKEN")]
    pub token: Option<String>,
}

/// Print a key ring line with a fresh key from the operating system's random generator.
#[derive(Debug, Args)]
#[command(after_long_help = "\
EXAMPLES:
    siptoken keygen --app CRM --kid k2 >> keys.conf     # rotate: k2 issues, older keys verify
    siptoken keygen --app CRM --legacy                  # a 16-byte Web Call Server key")]
pub struct KeygenArgs {
    /// Application name
    #[arg(long, value_name = "APP")]
    pub app: String,

    /// Key id (default: k followed by today's UTC date, e.g. k20261126)
    #[arg(long, value_name = "KID", conflicts_with = "legacy")]
    pub kid: Option<String>,

    /// Make a 16-byte legacy key instead of a 32-byte v1 key
    #[arg(long)]
    pub legacy: bool,
}

#[derive(Debug, Args)]
pub struct CompletionsArgs {
    /// The shell
    #[arg(value_enum)]
    pub shell: clap_complete::Shell,
}

#[derive(Debug, Args)]
pub struct ManpagesArgs {
    /// Directory to write siptoken.1 and siptoken-*.1 into
    #[arg(long, value_name = "DIR")]
    pub dir: PathBuf,
}

/// Parses `5m`, `300s`, `1h 30m` (humantime), or a plain number of seconds.
pub fn parse_duration(s: &str) -> Result<std::time::Duration, String> {
    if let Ok(secs) = s.trim().parse::<u64>() {
        return Ok(std::time::Duration::from_secs(secs));
    }
    humantime::parse_duration(s).map_err(|e| format!("{e} (examples: 30s, 5m, 24h)"))
}

/// `--leeway`: a duration of at most [`LEEWAY_LIMIT_SECONDS`] (5 minutes).
fn parse_leeway(s: &str) -> Result<std::time::Duration, String> {
    bounded_duration(s, 0, LEEWAY_LIMIT_SECONDS, "0s to 5m")
}

/// `--max-lifetime`: a duration of 1 s to [`LIFETIME_LIMIT_SECONDS`] (7 days).
fn parse_max_lifetime(s: &str) -> Result<std::time::Duration, String> {
    bounded_duration(s, 1, LIFETIME_LIMIT_SECONDS, "1s to 7d")
}

/// A duration (see [`parse_duration`]) whose whole seconds lie in `min..=max`.
fn bounded_duration(
    s: &str,
    min: u64,
    max: u64,
    range: &str,
) -> Result<std::time::Duration, String> {
    let d = parse_duration(s)?;
    if (min..=max).contains(&d.as_secs()) {
        Ok(d)
    } else {
        Err(format!("must be {range}"))
    }
}
