//! The shared single-use store on Redis (`replay_store = "redis://…"`, and its Sentinel and
//! Cluster forms, each also over TLS), so that several gateway instances accept each token once
//! between them.
//!
//! One command does the work: `SET siptoken:used:<token id> 1 NX EX <seconds until the token
//! expires>` — Redis sets the key only if it is absent, atomically, so of two gateways
//! presenting the same token at the same moment exactly one gets `OK` (first use) and the other
//! a nil reply (replayed). With `replay_store_min_replicas = N` a `WAIT N` follows in the same
//! round trip, and a key that did not reach N replicas is deleted again and the login refused:
//! a failover can then never lose a key and let its token in twice.
//!
//! The protocol, TLS (rustls with the gateway's *ring* provider), Sentinel master discovery and
//! Cluster slot routing are the `redis` crate's. Written here: the URL forms (the crate has no
//! URL for Sentinel or Cluster), and the connection policy — one multiplexed connection shared
//! by every login, dropped on any error or timeout and made afresh (through Sentinel, so after a
//! failover the new master) by the next call, which retries once when the connection it found
//! had gone stale. The crate's `ConnectionManager` is not used: it keeps a failed connection
//! attempt (a refused `AUTH`, say) until the process restarts, and it cannot follow a Sentinel
//! failover. Every call is bounded in full by `replay_store_timeout_ms`.

use std::fmt;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use redis::aio::{ConnectionLike, MultiplexedConnection};
use redis::cluster::{ClusterClient, ClusterClientBuilder};
use redis::cluster_async::ClusterConnection;
use redis::sentinel::{SentinelClient, SentinelClientBuilder, SentinelServerType};
use redis::{
    AsyncConnectionConfig, Client, ConnectionAddr, ConnectionInfo, IntoConnectionInfo,
    RedisConnectionInfo, RedisError, TlsCertificates, TlsMode, Value,
};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::CertificateDer;
use zeroize::Zeroizing;

use super::replay::{ReplayStore, ReplayStoreError, StoreFuture};
use siptoken::TokenId;

/// Prefix of every key the gateway writes.
pub const KEY_PREFIX: &str = "siptoken:used:";

/// Port of a Redis server when the URL names none.
pub const DEFAULT_PORT: u16 = 6379;

/// Port of a Redis Sentinel when the URL names none.
pub const DEFAULT_SENTINEL_PORT: u16 = 26379;

/// One `host[:port]` of a Redis URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Node {
    /// Host name or IP address (IPv6 without brackets).
    pub host: String,
    /// TCP port.
    pub port: u16,
}

impl fmt::Display for Node {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.host.contains(':') {
            write!(f, "[{}]:{}", self.host, self.port)
        } else {
            write!(f, "{}:{}", self.host, self.port)
        }
    }
}

/// How the gateway finds the Redis server that holds a key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Deployment {
    /// One server: `redis://` or `rediss://`.
    Single(Node),
    /// The master of a Sentinel-monitored group, asked of the sentinels: `redis+sentinel://`.
    Sentinel {
        /// The sentinels, asked in this order.
        sentinels: Vec<Node>,
        /// The monitored group's name (`sentinel monitor <name> …`).
        master: String,
        /// Also authenticate to the sentinels, with the URL's credentials.
        sentinel_auth: bool,
    },
    /// A Redis Cluster, discovered from these seed nodes: `redis+cluster://`.
    Cluster(Vec<Node>),
}

/// A parsed replay store URL. `Display` and `Debug` never show the credentials.
///
/// ```text
/// redis://[[user]:password@]host[:port][/db]
/// rediss://[[user]:password@]host[:port][/db]
/// redis+sentinel://[[user]:password@]host[:port][,host[:port]…]/master[?db=N][&sentinel_auth=true]
/// redis+cluster://[[user]:password@]host[:port][,host[:port]…]
/// ```
///
/// `rediss+sentinel://` and `rediss+cluster://`: the same over TLS (to the sentinels and to
/// every Redis server).
#[derive(Clone, PartialEq, Eq)]
pub struct RedisUrl {
    /// Where the keys live.
    pub deployment: Deployment,
    /// TLS to every server, sentinels included (`rediss…://`).
    pub tls: bool,
    /// Database number (`SELECT`), default 0.
    pub db: u32,
    /// ACL user name (Redis 6+), when given.
    pub username: Option<String>,
    /// Password for `AUTH`, when given.
    pub password: Option<Zeroizing<String>>,
}

/// A replay store URL that does not parse. The messages never quote the credentials.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UrlError {
    /// Not one of the supported schemes.
    #[error(
        "a Redis replay store URL starts with redis://, rediss://, redis+sentinel://, \
         rediss+sentinel://, redis+cluster:// or rediss+cluster://"
    )]
    Scheme,
    /// No host at all.
    #[error("the Redis URL has no host")]
    NoHost,
    /// A port that is not a number between 1 and 65535.
    #[error("bad port {0:?} in the Redis URL")]
    Port(String),
    /// `[` without `]`.
    #[error("unclosed [ in a host of the Redis URL")]
    UnclosedBracket,
    /// Several hosts where one is expected.
    #[error(
        "a redis:// URL names one host: use redis+sentinel:// or redis+cluster:// for several"
    )]
    SeveralHosts,
    /// A database that is not a number.
    #[error("bad database number {0:?} in the Redis URL")]
    Db(String),
    /// Bad `%XX` escapes in the credentials or the master name.
    #[error("badly percent-encoded user name, password or master name in the Redis URL")]
    PercentEncoding,
    /// A Sentinel URL without the master's name.
    #[error(
        "a Sentinel URL names the master after the hosts: redis+sentinel://host:port,…/MASTER"
    )]
    NoMasterName,
    /// A path where the form has none (Cluster: database 0 only).
    #[error("unexpected path {0:?} in the Redis URL")]
    Path(String),
    /// A query parameter this form does not take.
    #[error("unknown or bad parameter {0:?} in the Redis URL")]
    Parameter(String),
    /// A `#fragment` (the `redis` crate's `#insecure` turns certificate checks off).
    #[error("the Redis URL has a '#' (percent-encode it as %23 in a password; #insecure is not supported)")]
    Fragment,
}

impl RedisUrl {
    /// Parses a replay store URL (forms in the type's documentation). Errors never quote the
    /// password.
    pub fn parse(url: &str) -> Result<RedisUrl, UrlError> {
        enum Form {
            Single,
            Sentinel,
            Cluster,
        }
        let (scheme, rest) = url.split_once("://").ok_or(UrlError::Scheme)?;
        let (form, tls) = match scheme {
            "redis" => (Form::Single, false),
            "rediss" => (Form::Single, true),
            "redis+sentinel" => (Form::Sentinel, false),
            "rediss+sentinel" => (Form::Sentinel, true),
            "redis+cluster" => (Form::Cluster, false),
            "rediss+cluster" => (Form::Cluster, true),
            _ => return Err(UrlError::Scheme),
        };
        if rest.contains('#') {
            return Err(UrlError::Fragment);
        }
        // The credentials end at the last '@' (a password may hold an unencoded '@'); Config's
        // Debug hides the same span.
        let (userinfo, rest) = match rest.rfind('@') {
            Some(i) => (Some(&rest[..i]), &rest[i + 1..]),
            None => (None, rest),
        };
        let (rest, query) = match rest.split_once('?') {
            Some((r, q)) => (r, Some(q)),
            None => (rest, None),
        };
        let (hosts, path) = match rest.split_once('/') {
            Some((h, p)) => (h, p),
            None => (rest, ""),
        };
        let (username, password) = match userinfo {
            None => (None, None),
            Some(u) => {
                let (user, pass) = u.split_once(':').unwrap_or(("", u));
                let user = (!user.is_empty()).then(|| decode(user)).transpose()?;
                let pass = Zeroizing::new(decode(pass)?);
                (user, (!pass.is_empty()).then_some(pass))
            }
        };
        let default_port = match form {
            Form::Sentinel => DEFAULT_SENTINEL_PORT,
            _ => DEFAULT_PORT,
        };
        let nodes = hosts
            .split(',')
            .map(|h| parse_node(h, default_port))
            .collect::<Result<Vec<_>, _>>()?;
        let mut params = Params::parse(query)?;
        let (deployment, db) = match form {
            Form::Single => {
                let [node] = <[Node; 1]>::try_from(nodes).map_err(|_| UrlError::SeveralHosts)?;
                let db = match path.trim_end_matches('/') {
                    "" => 0,
                    d => d.parse().map_err(|_| UrlError::Db(d.to_owned()))?,
                };
                (Deployment::Single(node), db)
            }
            Form::Sentinel => {
                let master = decode(path.trim_end_matches('/'))?;
                if master.is_empty() {
                    return Err(UrlError::NoMasterName);
                }
                if master.contains('/') {
                    return Err(UrlError::Path(path.to_owned()));
                }
                let db = match params.take("db") {
                    None => 0,
                    Some(d) => d.parse().map_err(|_| UrlError::Db(d.to_owned()))?,
                };
                let sentinel_auth = match params.take("sentinel_auth") {
                    None | Some("false") => false,
                    Some("true") => true,
                    Some(v) => return Err(UrlError::Parameter(format!("sentinel_auth={v}"))),
                };
                let deployment = Deployment::Sentinel {
                    sentinels: nodes,
                    master,
                    sentinel_auth,
                };
                (deployment, db)
            }
            Form::Cluster => {
                if !path.is_empty() {
                    return Err(UrlError::Path(path.to_owned()));
                }
                (Deployment::Cluster(nodes), 0)
            }
        };
        params.finish()?;
        Ok(RedisUrl {
            deployment,
            tls,
            db,
            username,
            password,
        })
    }

    fn scheme(&self) -> &'static str {
        match (&self.deployment, self.tls) {
            (Deployment::Single(_), false) => "redis",
            (Deployment::Single(_), true) => "rediss",
            (Deployment::Sentinel { .. }, false) => "redis+sentinel",
            (Deployment::Sentinel { .. }, true) => "rediss+sentinel",
            (Deployment::Cluster(_), false) => "redis+cluster",
            (Deployment::Cluster(_), true) => "rediss+cluster",
        }
    }

    /// The connection parameters for one server (a single server, a master found by the
    /// sentinels, a cluster node).
    fn connection_info(&self, node: &Node) -> Result<ConnectionInfo, RedisError> {
        let addr = if self.tls {
            ConnectionAddr::TcpTls {
                host: node.host.clone(),
                port: node.port,
                insecure: false,
                tls_params: None,
            }
        } else {
            ConnectionAddr::Tcp(node.host.clone(), node.port)
        };
        Ok(addr
            .into_connection_info()?
            .set_redis_settings(self.redis_settings()))
    }

    fn redis_settings(&self) -> RedisConnectionInfo {
        let mut r = RedisConnectionInfo::default().set_db(i64::from(self.db));
        if let Some(u) = &self.username {
            r = r.set_username(u);
        }
        if let Some(p) = &self.password {
            r = r.set_password(p.as_str());
        }
        r
    }
}

/// The `?a=b&c=d` parameters, each taken at most once; [`Params::finish`] refuses leftovers.
struct Params<'a>(Vec<(&'a str, &'a str)>);

impl<'a> Params<'a> {
    fn parse(query: Option<&'a str>) -> Result<Params<'a>, UrlError> {
        let mut out = Vec::new();
        for pair in query.unwrap_or("").split('&').filter(|p| !p.is_empty()) {
            let (k, v) = pair
                .split_once('=')
                .ok_or_else(|| UrlError::Parameter(pair.to_owned()))?;
            if out.iter().any(|(seen, _)| *seen == k) {
                return Err(UrlError::Parameter(pair.to_owned()));
            }
            out.push((k, v));
        }
        Ok(Params(out))
    }

    fn take(&mut self, key: &str) -> Option<&'a str> {
        let i = self.0.iter().position(|(k, _)| *k == key)?;
        Some(self.0.remove(i).1)
    }

    fn finish(self) -> Result<(), UrlError> {
        match self.0.first() {
            None => Ok(()),
            Some((k, v)) => Err(UrlError::Parameter(format!("{k}={v}"))),
        }
    }
}

fn decode(s: &str) -> Result<String, UrlError> {
    // `percent_decode_str` passes a '%' not followed by two hex digits through unchanged:
    // refuse it instead, so that a mistyped password is an error and not another password.
    let b = s.as_bytes();
    let bad_escape = b.iter().enumerate().any(|(i, &c)| {
        c == b'%'
            && !b
                .get(i + 1..i + 3)
                .is_some_and(|h| h.iter().all(u8::is_ascii_hexdigit))
    });
    if bad_escape {
        return Err(UrlError::PercentEncoding);
    }
    percent_encoding::percent_decode_str(s)
        .decode_utf8()
        .map(|c| c.into_owned())
        .map_err(|_| UrlError::PercentEncoding)
}

fn parse_node(hostport: &str, default_port: u16) -> Result<Node, UrlError> {
    let (host, port) = if let Some(v6) = hostport.strip_prefix('[') {
        let (h, after) = v6.split_once(']').ok_or(UrlError::UnclosedBracket)?;
        match after {
            "" => (h, None),
            a => (
                h,
                Some(a.strip_prefix(':').ok_or(UrlError::Port(a.to_owned()))?),
            ),
        }
    } else {
        match hostport.rsplit_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (hostport, None),
        }
    };
    if host.is_empty() {
        return Err(UrlError::NoHost);
    }
    let port = match port {
        None => default_port,
        Some(p) => p
            .parse::<u16>()
            .ok()
            .filter(|p| *p != 0)
            .ok_or_else(|| UrlError::Port(p.to_owned()))?,
    };
    Ok(Node {
        host: host.to_owned(),
        port,
    })
}

impl fmt::Display for RedisUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let auth = if self.password.is_some() || self.username.is_some() {
            "***@"
        } else {
            ""
        };
        write!(f, "{}://{auth}", self.scheme())?;
        let join = |f: &mut fmt::Formatter<'_>, nodes: &[Node]| {
            for (i, n) in nodes.iter().enumerate() {
                write!(f, "{}{n}", if i == 0 { "" } else { "," })?;
            }
            Ok(())
        };
        match &self.deployment {
            Deployment::Single(n) => write!(f, "{n}/{}", self.db),
            Deployment::Sentinel {
                sentinels,
                master,
                sentinel_auth,
            } => {
                join(f, sentinels)?;
                write!(f, "/{master}?db={}", self.db)?;
                if *sentinel_auth {
                    f.write_str("&sentinel_auth=true")?;
                }
                Ok(())
            }
            Deployment::Cluster(nodes) => join(f, nodes),
        }
    }
}

impl fmt::Debug for RedisUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

/// The settings of a [`RedisStore`] besides its URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoreSettings {
    /// Bounds each [`ReplayStore::first_use`] call in full (`replay_store_timeout_ms`).
    pub timeout: Duration,
    /// PEM bundle of the CAs trusted for `rediss://` (`replay_store_tls_ca_file`); `None`: the
    /// system's (rustls-native-certs: `SSL_CERT_FILE`, else the OS store).
    pub tls_ca_file: Option<PathBuf>,
    /// Replicas that must hold a new key before its token is accepted
    /// (`replay_store_min_replicas`); 0: the master's `OK` suffices.
    pub min_replicas: u32,
}

/// A store that cannot be set up (at start-up, before any connection).
#[derive(Debug, thiserror::Error)]
pub enum SetupError {
    /// The CA file cannot be read.
    #[error("cannot read replay_store_tls_ca_file {path}: {source}")]
    CaFile {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The CA file holds no PEM certificate (every connection would fail its check).
    #[error("replay_store_tls_ca_file {0} holds no PEM certificate")]
    NoCertificate(PathBuf),
    /// The `redis` crate refuses the parameters (a malformed certificate, say).
    #[error("cannot set up the Redis client for {url}: {source}")]
    Client {
        /// The store, credentials hidden.
        url: String,
        /// Why.
        #[source]
        source: RedisError,
    },
}

/// Makes connections to where the keys live.
enum Connector {
    Single(Client),
    Sentinel(tokio::sync::Mutex<SentinelClient>),
    Cluster(ClusterClient),
}

/// A connection that every login shares (both kinds are cheap clones of one handle).
#[derive(Clone)]
enum Conn {
    Server(MultiplexedConnection),
    Cluster(ClusterConnection),
}

/// The Redis-backed [`ReplayStore`].
pub struct RedisStore {
    /// The URL as shown in logs (credentials hidden).
    shown: String,
    timeout: Duration,
    min_replicas: u32,
    connector: Connector,
    connection_config: AsyncConnectionConfig,
    /// The shared connection and its generation (so a failed call drops only the connection it
    /// used, not a newer one another call has made since).
    current: tokio::sync::Mutex<Option<(u64, Conn)>>,
    generations: AtomicU64,
}

impl RedisStore {
    /// A store at `url`. Nothing connects until the first call; the CA file is read now.
    pub fn new(url: RedisUrl, settings: StoreSettings) -> Result<RedisStore, SetupError> {
        let shown = url.to_string();
        let client_error = |source| SetupError::Client {
            url: shown.clone(),
            source,
        };
        let certificates = match &settings.tls_ca_file {
            Some(path) => {
                let pem = std::fs::read(path).map_err(|source| SetupError::CaFile {
                    path: path.clone(),
                    source,
                })?;
                if CertificateDer::pem_slice_iter(&pem).next().is_none() {
                    return Err(SetupError::NoCertificate(path.clone()));
                }
                Some(TlsCertificates {
                    client_tls: None,
                    root_cert: Some(pem),
                })
            }
            None => None,
        };
        let timeout = settings.timeout;
        let connector = match &url.deployment {
            Deployment::Single(node) => {
                let info = url.connection_info(node).map_err(client_error)?;
                let client = match (&certificates, url.tls) {
                    (Some(certs), true) => Client::build_with_tls(info, certs.clone()),
                    _ => Client::open(info),
                };
                Connector::Single(client.map_err(client_error)?)
            }
            Deployment::Sentinel {
                sentinels,
                master,
                sentinel_auth,
            } => {
                let addrs = sentinels.iter().map(|n| {
                    if url.tls {
                        ConnectionAddr::TcpTls {
                            host: n.host.clone(),
                            port: n.port,
                            insecure: false,
                            tls_params: None,
                        }
                    } else {
                        ConnectionAddr::Tcp(n.host.clone(), n.port)
                    }
                });
                let mut b = SentinelClientBuilder::new(addrs, master, SentinelServerType::Master)
                    .map_err(client_error)?
                    .set_client_to_redis_db(i64::from(url.db));
                if url.tls {
                    // The master the sentinels name: its certificate must be valid for the
                    // address they give (its IP, or its name with announce-hostnames).
                    b = b.set_client_to_redis_tls_mode(TlsMode::Secure);
                    if let Some(certs) = &certificates {
                        b = b
                            .set_client_to_redis_certificates(certs.clone())
                            .set_client_to_sentinel_certificates(certs.clone());
                    }
                }
                if let Some(u) = &url.username {
                    b = b.set_client_to_redis_username(u);
                    if *sentinel_auth {
                        b = b.set_client_to_sentinel_username(u);
                    }
                }
                if let Some(p) = &url.password {
                    b = b.set_client_to_redis_password(p.as_str());
                    if *sentinel_auth {
                        b = b.set_client_to_sentinel_password(p.as_str());
                    }
                }
                Connector::Sentinel(tokio::sync::Mutex::new(b.build().map_err(client_error)?))
            }
            Deployment::Cluster(nodes) => {
                let infos = nodes
                    .iter()
                    .map(|n| url.connection_info(n))
                    .collect::<Result<Vec<_>, _>>()
                    .map_err(client_error)?;
                // Few retries inside the cluster client (a MOVED, a node being replaced): the
                // call's own timeout is the bound, and a failure surfaces as store_unavailable.
                let mut b = ClusterClientBuilder::new(infos);
                if let Some(certs) = certificates.clone().filter(|_| url.tls) {
                    b = b.certs(certs);
                }
                let b = b
                    .connection_timeout(timeout)
                    .response_timeout(timeout)
                    .retries(2)
                    .min_retry_wait(10)
                    .max_retry_wait(100);
                Connector::Cluster(b.build().map_err(client_error)?)
            }
        };
        Ok(RedisStore {
            shown,
            timeout,
            min_replicas: settings.min_replicas,
            connector,
            connection_config: AsyncConnectionConfig::new()
                .set_connection_timeout(Some(timeout))
                .set_response_timeout(Some(timeout)),
            current: tokio::sync::Mutex::new(None),
            generations: AtomicU64::new(0),
        })
    }

    /// The shared connection, made now when there is none: (generation, connection, made now).
    async fn connection(&self) -> Result<(u64, Conn, bool), RedisError> {
        // Held while connecting: one connection attempt at a time, the others wait for it.
        let mut current = self.current.lock().await;
        if let Some((generation, conn)) = &*current {
            return Ok((*generation, conn.clone(), false));
        }
        let conn = match &self.connector {
            Connector::Single(client) => Conn::Server(
                client
                    .get_multiplexed_async_connection_with_config(&self.connection_config)
                    .await?,
            ),
            Connector::Sentinel(sentinel) => {
                // The sentinels name the master (and the crate checks that it says it is one).
                let master = sentinel.lock().await.async_get_client().await?;
                Conn::Server(
                    master
                        .get_multiplexed_async_connection_with_config(&self.connection_config)
                        .await?,
                )
            }
            Connector::Cluster(client) => Conn::Cluster(client.get_async_connection().await?),
        };
        let generation = self.generations.fetch_add(1, Ordering::Relaxed) + 1;
        *current = Some((generation, conn.clone()));
        Ok((generation, conn, true))
    }

    /// Drops the shared connection if it is still the one of `generation`.
    async fn forget(&self, generation: u64) {
        let mut current = self.current.lock().await;
        if current.as_ref().is_some_and(|(g, _)| *g == generation) {
            *current = None;
        }
    }

    /// The crate's own timeouts (the same as the call's) read as the call's.
    fn failure(&self, source: RedisError) -> ReplayStoreError {
        if source.is_timeout() {
            self.timed_out()
        } else {
            ReplayStoreError::Redis {
                store: self.shown.clone(),
                source,
            }
        }
    }

    fn timed_out(&self) -> ReplayStoreError {
        ReplayStoreError::Timeout {
            store: self.shown.clone(),
            ms: self.timeout.as_millis(),
        }
    }

    /// `SET key 1 NX EX ttl` (and `WAIT`), on the shared connection; on a failure of a
    /// connection that was already there (closed by a restart or a failover since its last
    /// use), once more on a fresh one. Should the first `SET` have landed and only its reply
    /// been lost, the second reads "already used": a refusal, never a second acceptance.
    async fn record(
        &self,
        key: &str,
        ttl: i64,
        in_use: &mut Option<u64>,
    ) -> Result<bool, ReplayStoreError> {
        let failed = |source: RedisError| self.failure(source);
        // Two tries at most: the second connection may be another call's, not new either.
        let mut retried = false;
        loop {
            let (generation, conn, fresh) = self.connection().await.map_err(failed)?;
            *in_use = Some(generation);
            match self.set_nx(conn, key, ttl).await {
                Ok(r) => {
                    if matches!(r, Err(ReplayStoreError::NotReplicated { .. })) {
                        // A master that lost its replicas may be one the sentinels have just
                        // replaced: ask them again on the next call.
                        self.forget(generation).await;
                    }
                    return r;
                }
                Err(e) => {
                    self.forget(generation).await;
                    if fresh || retried {
                        return Err(failed(e));
                    }
                    retried = true;
                }
            }
        }
    }

    /// One round trip: the `SET`, and the `WAIT` when replicas are required. The outer error is
    /// the connection's or the server's (the connection is then dropped), the inner one the
    /// answer's.
    async fn set_nx(
        &self,
        conn: Conn,
        key: &str,
        ttl: i64,
    ) -> Result<Result<bool, ReplayStoreError>, RedisError> {
        match conn {
            Conn::Server(c) => self.set_nx_on(c, key, ttl).await,
            Conn::Cluster(c) => self.set_nx_on(c, key, ttl).await,
        }
    }

    async fn set_nx_on<C: ConnectionLike + Send>(
        &self,
        mut conn: C,
        key: &str,
        ttl: i64,
    ) -> Result<Result<bool, ReplayStoreError>, RedisError> {
        // The replicas get half the call's time, so that a refusal (and its DEL) still fits.
        let wait_ms = u64::try_from(self.timeout.as_millis() / 2)
            .unwrap_or(u64::MAX)
            .max(1);
        let mut pipe = redis::pipe();
        pipe.cmd("SET").arg(key).arg(1).arg("NX").arg("EX").arg(ttl);
        if self.min_replicas > 0 {
            // In a cluster the pipeline goes to the key's master, the WAIT with it.
            pipe.cmd("WAIT").arg(self.min_replicas).arg(wait_ms);
        }
        let replies: Vec<Value> = pipe.query_async(&mut conn).await?;
        let unexpected = |reply: &Value| {
            Ok(Err(ReplayStoreError::UnexpectedReply {
                store: self.shown.clone(),
                reply: format!("{reply:?}"),
            }))
        };
        let fresh = match replies.first() {
            Some(Value::Okay) => true,
            Some(Value::Nil) => false,
            Some(other) => return unexpected(other),
            None => return unexpected(&Value::Nil),
        };
        if !fresh || self.min_replicas == 0 {
            return Ok(Ok(fresh));
        }
        let acked = match replies.get(1) {
            Some(Value::Int(n)) => u64::try_from(*n).unwrap_or(0),
            Some(other) => return unexpected(other),
            None => return unexpected(&Value::Nil),
        };
        if acked >= u64::from(self.min_replicas) {
            return Ok(Ok(true));
        }
        // Not on enough replicas: a failover now could lose the key. Un-spend the token (best
        // effort: if the DEL fails too, the key expires with the token) and refuse the login.
        let _: Result<i64, _> = redis::cmd("DEL").arg(key).query_async(&mut conn).await;
        Ok(Err(ReplayStoreError::NotReplicated {
            store: self.shown.clone(),
            acked,
            wanted: self.min_replicas,
            waited_ms: wait_ms,
        }))
    }
}

impl ReplayStore for RedisStore {
    fn first_use(
        &self,
        key: TokenId,
        until: i64,
        now: i64,
    ) -> StoreFuture<'_, Result<bool, ReplayStoreError>> {
        Box::pin(async move {
            let name = format!("{KEY_PREFIX}{key}");
            let ttl = until.saturating_sub(now).max(1);
            let mut in_use = None;
            let outcome =
                tokio::time::timeout(self.timeout, self.record(&name, ttl, &mut in_use)).await;
            match outcome {
                Ok(r) => r,
                Err(_) => {
                    // A server that stopped answering (hung, or cut off without a reset) keeps
                    // its TCP connection open: drop it, so the next call connects (and asks the
                    // sentinels) afresh.
                    if let Some(generation) = in_use {
                        self.forget(generation).await;
                    }
                    Err(self.timed_out())
                }
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(ms: u64) -> StoreSettings {
        StoreSettings {
            timeout: Duration::from_millis(ms),
            tls_ca_file: None,
            min_replicas: 0,
        }
    }

    #[test]
    fn single_server_urls() {
        let u = RedisUrl::parse("redis://127.0.0.1:6380/2").unwrap();
        assert_eq!(u.deployment, Deployment::Single(node("127.0.0.1", 6380)));
        assert_eq!((u.db, u.tls), (2, false));
        assert!(u.password.is_none() && u.username.is_none());
        let u = RedisUrl::parse("redis://redis.internal").unwrap();
        assert_eq!(
            u.deployment,
            Deployment::Single(node("redis.internal", 6379))
        );
        assert_eq!(u.db, 0);
        let u = RedisUrl::parse("redis://[::1]:7000/").unwrap();
        assert_eq!(u.deployment, Deployment::Single(node("::1", 7000)));
        assert_eq!(u.to_string(), "redis://[::1]:7000/0");
        let u = RedisUrl::parse("redis://[::1]").unwrap();
        assert_eq!(u.deployment, Deployment::Single(node("::1", 6379)));
        let u = RedisUrl::parse("redis://gw:s%40cret%3Apw@h:1/3").unwrap();
        assert_eq!(u.username.as_deref(), Some("gw"));
        assert_eq!(u.password.as_deref().map(String::as_str), Some("s@cret:pw"));
        // An unencoded '@' in the password: the credentials end at the last one.
        let u = RedisUrl::parse("redis://:p@ss@h").unwrap();
        assert_eq!(u.password.as_deref().map(String::as_str), Some("p@ss"));
        let u = RedisUrl::parse("redis://:hunter2@h").unwrap();
        assert_eq!(u.username, None);
        assert_eq!(u.password.as_deref().map(String::as_str), Some("hunter2"));
        assert_eq!(u.to_string(), "redis://***@h:6379/0");
        assert!(!format!("{u:?}").contains("hunter2"));
        let u = RedisUrl::parse("rediss://:hunter2@redis.example.org:6380/1").unwrap();
        assert!(u.tls);
        assert_eq!(u.to_string(), "rediss://***@redis.example.org:6380/1");
    }

    #[test]
    fn sentinel_and_cluster_urls() {
        let u =
            RedisUrl::parse("redis+sentinel://gw:hunter2@10.0.0.1,10.0.0.2:5000,[::1]/mymaster")
                .unwrap();
        assert_eq!(
            u.deployment,
            Deployment::Sentinel {
                sentinels: vec![
                    node("10.0.0.1", 26379),
                    node("10.0.0.2", 5000),
                    node("::1", 26379)
                ],
                master: "mymaster".into(),
                sentinel_auth: false,
            }
        );
        assert_eq!(u.db, 0);
        assert_eq!(
            u.to_string(),
            "redis+sentinel://***@10.0.0.1:26379,10.0.0.2:5000,[::1]:26379/mymaster?db=0"
        );
        assert!(!format!("{u:?}").contains("hunter2"));
        let u =
            RedisUrl::parse("redis+sentinel://s1:1,s2:2/m%2Done/?db=3&sentinel_auth=true").unwrap();
        assert_eq!(u.db, 3);
        assert!(
            matches!(&u.deployment, Deployment::Sentinel { master, sentinel_auth: true, .. } if master == "m-one")
        );
        assert_eq!(
            u.to_string(),
            "redis+sentinel://s1:1,s2:2/m-one?db=3&sentinel_auth=true"
        );
        let u = RedisUrl::parse("redis+cluster://:hunter2@n1:7000,n2:7001,n3").unwrap();
        assert_eq!(
            u.deployment,
            Deployment::Cluster(vec![node("n1", 7000), node("n2", 7001), node("n3", 6379)])
        );
        assert_eq!(u.to_string(), "redis+cluster://***@n1:7000,n2:7001,n3:6379");
        let u = RedisUrl::parse("rediss+cluster://:hunter2@n1:7000").unwrap();
        assert!(u.tls);
        assert_eq!(u.to_string(), "rediss+cluster://***@n1:7000");
        let u = RedisUrl::parse("rediss+sentinel://:hunter2@s1/m").unwrap();
        assert!(u.tls);
        assert_eq!(u.to_string(), "rediss+sentinel://***@s1:26379/m?db=0");
    }

    #[test]
    fn bad_urls_are_specific_errors_that_never_quote_the_password() {
        for (bad, want) in [
            ("http://:pw@h", UrlError::Scheme),
            ("redis:/h", UrlError::Scheme),
            ("redis://", UrlError::NoHost),
            ("redis://:pw@", UrlError::NoHost),
            ("redis://h:0", UrlError::Port("0".into())),
            ("redis://:pw@h:70000", UrlError::Port("70000".into())),
            ("redis://h:x", UrlError::Port("x".into())),
            ("redis://[::1]x", UrlError::Port("x".into())),
            ("redis://h/x", UrlError::Db("x".into())),
            ("redis://[::1", UrlError::UnclosedBracket),
            ("redis://:pw%zz@h", UrlError::PercentEncoding),
            ("redis://:pw%4@h", UrlError::PercentEncoding),
            ("redis://:pw%ff@h", UrlError::PercentEncoding),
            ("redis://:pw@a,b", UrlError::SeveralHosts),
            ("redis://:pw@h?db=1", UrlError::Parameter("db=1".into())),
            ("rediss://:pw@h#insecure", UrlError::Fragment),
            ("redis://:p#w@h", UrlError::Fragment),
            ("redis+sentinel://:pw@a,b", UrlError::NoMasterName),
            ("redis+sentinel://:pw@a,b/", UrlError::NoMasterName),
            ("redis+sentinel://a/m/1", UrlError::Path("m/1".into())),
            ("redis+sentinel://a/m?db=x", UrlError::Db("x".into())),
            (
                "redis+sentinel://a/m?db=1&db=2",
                UrlError::Parameter("db=2".into()),
            ),
            (
                "redis+sentinel://a/m?sentinel_auth=yes",
                UrlError::Parameter("sentinel_auth=yes".into()),
            ),
            (
                "redis+sentinel://a/m?timeout",
                UrlError::Parameter("timeout".into()),
            ),
            ("redis+sentinel://a,,b/m", UrlError::NoHost),
            ("redis+cluster://:pw@a,b/1", UrlError::Path("1".into())),
            ("redis+cluster://a,b?x=1", UrlError::Parameter("x=1".into())),
            ("rediss+sentinel://:pw@a", UrlError::NoMasterName),
            ("rediss+cluster://:pw@a/0", UrlError::Path("0".into())),
        ] {
            let e = RedisUrl::parse(bad).unwrap_err();
            assert_eq!(e, want, "{bad}");
            assert!(!e.to_string().contains("pw"), "{bad}: {e}");
        }
    }

    fn node(host: &str, port: u16) -> Node {
        Node {
            host: host.into(),
            port,
        }
    }

    #[test]
    fn an_unreadable_empty_or_broken_ca_file_is_a_setup_error() {
        let url = RedisUrl::parse("rediss://:hunter2@127.0.0.1:1").unwrap();
        let dir = tempfile::tempdir().unwrap();
        let empty = dir.path().join("empty.pem");
        std::fs::write(&empty, "not a certificate\n").unwrap();
        let broken = dir.path().join("broken.pem");
        let pem = "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n";
        std::fs::write(&broken, pem).unwrap();
        for (path, want) in [
            (
                PathBuf::from("/nonexistent/ca.pem"),
                "cannot read replay_store_tls_ca_file /nonexistent/ca.pem",
            ),
            (empty, "empty.pem holds no PEM certificate"),
            (broken, "cannot set up"),
        ] {
            let mut s = settings(100);
            s.tls_ca_file = Some(path.clone());
            let e = RedisStore::new(url.clone(), s).err().unwrap().to_string();
            assert!(e.contains(want), "{e}");
            assert!(!e.contains("hunter2"), "{e}");
        }
    }

    #[tokio::test]
    async fn a_server_that_never_answers_fails_within_the_timeout() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let hold = tokio::spawn(async move {
            let mut held = Vec::new();
            while let Ok((s, _)) = listener.accept().await {
                held.push(s);
            }
        });
        let url = RedisUrl::parse(&format!("redis://127.0.0.1:{port}")).unwrap();
        let store = RedisStore::new(url, settings(200)).unwrap();
        for _ in 0..2 {
            let t = std::time::Instant::now();
            let e = store
                .first_use(TokenId([1; 16]), 100, 10)
                .await
                .unwrap_err();
            assert!(matches!(e, ReplayStoreError::Timeout { .. }), "{e}");
            assert!(
                e.to_string().contains("no answer from redis://127.0.0.1"),
                "{e}"
            );
            assert!(t.elapsed() < Duration::from_secs(2));
        }
        hold.abort();
    }

    #[tokio::test]
    async fn a_refused_connection_is_a_prompt_redis_error() {
        let port = {
            let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            l.local_addr().unwrap().port()
        };
        let url = RedisUrl::parse(&format!("redis://:hunter2@127.0.0.1:{port}")).unwrap();
        let store = RedisStore::new(url, settings(2000)).unwrap();
        let t = std::time::Instant::now();
        let e = store
            .first_use(TokenId([1; 16]), 100, 10)
            .await
            .unwrap_err();
        assert!(matches!(e, ReplayStoreError::Redis { .. }), "{e}");
        assert!(t.elapsed() < Duration::from_secs(1), "{:?}", t.elapsed());
        let shown = e.to_string();
        assert!(
            shown.contains("redis://***@127.0.0.1") && !shown.contains("hunter2"),
            "{shown}"
        );
    }
}
