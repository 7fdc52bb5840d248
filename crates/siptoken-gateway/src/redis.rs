//! The shared single-use store on Redis (`replay_store = "redis://…"`), so that several gateway
//! instances accept each token once between them.
//!
//! One command does the work: `SET siptoken:used:<token id> 1 NX EX <seconds until the token
//! expires>` — Redis sets the key only if it is absent, atomically, so of two gateways
//! presenting the same token at the same moment exactly one gets `OK` (first use) and the other
//! a nil reply (replayed). The client is a minimal RESP2 implementation over TCP (connect,
//! optional `AUTH` and `SELECT`, `SET`): small enough to read in full, with a bounded reply size
//! and a bounded time for every call ([`RedisStore::new`]'s `timeout` covers connecting,
//! authenticating, sending and the reply). Idle connections are pooled; a connection that
//! fails or times out is dropped, and the next call connects afresh, so the gateway recovers by
//! itself when Redis comes back.

use std::fmt;
use std::sync::Mutex;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use zeroize::Zeroizing;

use super::replay::{ReplayStore, ReplayStoreError, StoreFuture};
use siptoken::TokenId;

/// Prefix of every key the gateway writes.
pub const KEY_PREFIX: &str = "siptoken:used:";

/// Largest reply accepted from the server, bytes (the store only ever reads short replies).
const MAX_REPLY: usize = 64 * 1024;

/// Idle connections kept for reuse.
const MAX_IDLE: usize = 16;

/// A parsed `redis://[[user]:password@]host[:port][/db]` address. `Display` and `Debug` never
/// show the credentials.
#[derive(Clone, PartialEq, Eq)]
pub struct RedisUrl {
    /// Host name or IP address (IPv6 without brackets).
    pub host: String,
    /// TCP port, default 6379.
    pub port: u16,
    /// Database number (`SELECT`), default 0.
    pub db: u32,
    /// ACL user name (Redis 6+), when given.
    pub username: Option<String>,
    /// Password for `AUTH`, when given.
    pub password: Option<Zeroizing<String>>,
}

impl RedisUrl {
    /// Parses a `redis://` URL. Errors never quote the password.
    pub fn parse(url: &str) -> Result<RedisUrl, String> {
        let rest = url.strip_prefix("redis://").ok_or_else(|| {
            if url.starts_with("rediss://") {
                "rediss:// (Redis over TLS) is not supported; use redis:// on a trusted network"
                    .to_owned()
            } else {
                "a Redis replay store URL must start with redis://".to_owned()
            }
        })?;
        let (authority, path) = match rest.find('/') {
            Some(i) => (&rest[..i], &rest[i + 1..]),
            None => (rest, ""),
        };
        let (userinfo, hostport) = match authority.rfind('@') {
            Some(i) => (Some(&authority[..i]), &authority[i + 1..]),
            None => (None, authority),
        };
        let (username, password) = match userinfo {
            None => (None, None),
            Some(u) => {
                let (user, pass) = u.split_once(':').unwrap_or(("", u));
                let user = (!user.is_empty())
                    .then(|| percent_decode(user))
                    .transpose()?;
                let pass = percent_decode(pass)
                    .map_err(|_| "the password in the Redis URL is badly percent-encoded")?;
                (user, (!pass.is_empty()).then(|| Zeroizing::new(pass)))
            }
        };
        let (host, port) = if let Some(v6) = hostport.strip_prefix('[') {
            let (h, after) = v6
                .split_once(']')
                .ok_or("unclosed [ in the Redis URL host")?;
            (h, after.strip_prefix(':'))
        } else {
            match hostport.rsplit_once(':') {
                Some((h, p)) => (h, Some(p)),
                None => (hostport, None),
            }
        };
        if host.is_empty() {
            return Err("the Redis URL has no host".into());
        }
        let port = match port {
            None => 6379,
            Some(p) => p
                .parse::<u16>()
                .ok()
                .filter(|p| *p != 0)
                .ok_or_else(|| format!("bad port {p:?} in the Redis URL"))?,
        };
        let db = match path.trim_end_matches('/') {
            "" => 0,
            d => d
                .parse()
                .map_err(|_| format!("bad database number {d:?} in the Redis URL"))?,
        };
        Ok(RedisUrl {
            host: host.to_owned(),
            port,
            db,
            username,
            password,
        })
    }
}

fn percent_decode(s: &str) -> Result<String, String> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' {
            let hex = b.get(i + 1..i + 3).ok_or("bad percent-encoding")?;
            let v = u8::from_str_radix(std::str::from_utf8(hex).map_err(|_| "bad %")?, 16)
                .map_err(|_| "bad percent-encoding")?;
            out.push(v);
            i += 3;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8(out).map_err(|_| "percent-encoding is not UTF-8".to_owned())
}

impl fmt::Display for RedisUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let auth = if self.password.is_some() { "***@" } else { "" };
        if self.host.contains(':') {
            write!(f, "redis://{auth}[{}]:{}/{}", self.host, self.port, self.db)
        } else {
            write!(f, "redis://{auth}{}:{}/{}", self.host, self.port, self.db)
        }
    }
}

impl fmt::Debug for RedisUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

/// A RESP2 reply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reply {
    /// `+OK`.
    Simple(String),
    /// `-ERR …`.
    Error(String),
    /// `:42`.
    Integer(i64),
    /// `$3\r\nabc` or the nil bulk string `$-1`.
    Bulk(Option<Vec<u8>>),
    /// `*2\r\n…` or the nil array `*-1`.
    Array(Option<Vec<Reply>>),
}

/// Parses one reply from the start of `buf`: `Ok(None)` when more bytes are needed, else the
/// reply and the number of bytes it took. Malformed input is an error, never a panic.
pub fn parse_reply(buf: &[u8]) -> Result<Option<(Reply, usize)>, String> {
    parse_at(buf, 0, 0)
}

fn parse_at(buf: &[u8], at: usize, depth: usize) -> Result<Option<(Reply, usize)>, String> {
    if depth > 8 {
        return Err("Redis reply nested too deeply".into());
    }
    let Some(end) = memchr::memmem::find(&buf[at..], b"\r\n").map(|i| at + i) else {
        return Ok(None);
    };
    let Some(&kind) = buf.get(at) else {
        return Ok(None);
    };
    let line = std::str::from_utf8(&buf[at + 1..end])
        .map_err(|_| "Redis reply line is not UTF-8".to_owned())?;
    let next = end + 2;
    let int = || -> Result<i64, String> {
        line.parse()
            .map_err(|_| format!("bad length or integer {line:?} in a Redis reply"))
    };
    match kind {
        b'+' => Ok(Some((Reply::Simple(line.to_owned()), next))),
        b'-' => Ok(Some((Reply::Error(line.to_owned()), next))),
        b':' => Ok(Some((Reply::Integer(int()?), next))),
        b'$' => {
            let n = int()?;
            if n == -1 {
                return Ok(Some((Reply::Bulk(None), next)));
            }
            let n = usize::try_from(n).map_err(|_| "negative bulk length in a Redis reply")?;
            if n > MAX_REPLY {
                return Err("Redis reply too long".into());
            }
            if buf.len() < next + n + 2 {
                return Ok(None);
            }
            if &buf[next + n..next + n + 2] != b"\r\n" {
                return Err("bulk string not terminated by CRLF in a Redis reply".into());
            }
            Ok(Some((
                Reply::Bulk(Some(buf[next..next + n].to_vec())),
                next + n + 2,
            )))
        }
        b'*' => {
            let n = int()?;
            if n == -1 {
                return Ok(Some((Reply::Array(None), next)));
            }
            let n = usize::try_from(n).map_err(|_| "negative array length in a Redis reply")?;
            if n > 1024 {
                return Err("Redis reply array too long".into());
            }
            let mut items = Vec::with_capacity(n);
            let mut pos = next;
            for _ in 0..n {
                match parse_at(buf, pos, depth + 1)? {
                    None => return Ok(None),
                    Some((r, p)) => {
                        items.push(r);
                        pos = p;
                    }
                }
            }
            Ok(Some((Reply::Array(Some(items)), pos)))
        }
        other => Err(format!(
            "unexpected byte 0x{other:02x} at the start of a Redis reply"
        )),
    }
}

/// Encodes a command as a RESP array of bulk strings.
pub fn encode_command(args: &[&[u8]]) -> Vec<u8> {
    let mut out = Vec::with_capacity(16 + args.iter().map(|a| a.len() + 16).sum::<usize>());
    out.extend_from_slice(format!("*{}\r\n", args.len()).as_bytes());
    for a in args {
        out.extend_from_slice(format!("${}\r\n", a.len()).as_bytes());
        out.extend_from_slice(a);
        out.extend_from_slice(b"\r\n");
    }
    out
}

/// One connection to Redis.
struct Conn {
    stream: TcpStream,
    buf: Vec<u8>,
}

impl Conn {
    async fn command(&mut self, args: &[&[u8]]) -> Result<Reply, String> {
        let request = Zeroizing::new(encode_command(args));
        self.stream
            .write_all(&request)
            .await
            .map_err(|e| format!("cannot send to Redis: {e}"))?;
        loop {
            if let Some((reply, used)) = parse_reply(&self.buf)? {
                self.buf.drain(..used);
                return Ok(reply);
            }
            if self.buf.len() > MAX_REPLY + 64 {
                return Err("Redis reply too long".into());
            }
            let mut chunk = [0u8; 4096];
            let n = self
                .stream
                .read(&mut chunk)
                .await
                .map_err(|e| format!("cannot read from Redis: {e}"))?;
            if n == 0 {
                return Err("Redis closed the connection".into());
            }
            self.buf.extend_from_slice(&chunk[..n]);
        }
    }
}

/// The Redis-backed [`ReplayStore`].
pub struct RedisStore {
    url: RedisUrl,
    timeout: Duration,
    idle: Mutex<Vec<Conn>>,
}

impl RedisStore {
    /// A store at `url`; `timeout` bounds each [`ReplayStore::first_use`] call in full. Nothing
    /// connects until the first call.
    pub fn new(url: RedisUrl, timeout: Duration) -> RedisStore {
        RedisStore {
            url,
            timeout,
            idle: Mutex::new(Vec::new()),
        }
    }

    async fn connect(&self) -> Result<Conn, String> {
        let stream = TcpStream::connect((self.url.host.as_str(), self.url.port))
            .await
            .map_err(|e| format!("cannot connect to {}: {e}", self.url))?;
        let _ = stream.set_nodelay(true);
        let mut c = Conn {
            stream,
            buf: Vec::new(),
        };
        if let Some(p) = &self.url.password {
            let mut args: Vec<&[u8]> = vec![b"AUTH"];
            if let Some(u) = &self.url.username {
                args.push(u.as_bytes());
            }
            args.push(p.as_bytes());
            match c.command(&args).await? {
                Reply::Simple(_) => {}
                // Redis's own message (e.g. WRONGPASS …) never quotes the password.
                Reply::Error(e) => return Err(format!("Redis refused AUTH: {e}")),
                other => return Err(format!("unexpected reply to AUTH: {other:?}")),
            }
        }
        if self.url.db != 0 {
            let db = self.url.db.to_string();
            match c.command(&[b"SELECT", db.as_bytes()]).await? {
                Reply::Simple(_) => {}
                Reply::Error(e) => return Err(format!("Redis refused SELECT {db}: {e}")),
                other => return Err(format!("unexpected reply to SELECT: {other:?}")),
            }
        }
        Ok(c)
    }

    fn take_idle(&self) -> Option<Conn> {
        self.idle.lock().unwrap_or_else(|p| p.into_inner()).pop()
    }

    fn put_idle(&self, c: Conn) {
        let mut idle = self.idle.lock().unwrap_or_else(|p| p.into_inner());
        if idle.len() < MAX_IDLE {
            idle.push(c);
        }
    }

    async fn set_nx(&self, key: &str, ttl: i64) -> Result<bool, String> {
        let ttl = ttl.to_string();
        let args: [&[u8]; 6] = [b"SET", key.as_bytes(), b"1", b"NX", b"EX", ttl.as_bytes()];
        // An idle connection may have been closed by a Redis restart since its last use: on
        // failure, try once more on a fresh connection. (Should the first SET have landed and
        // only its reply been lost, the retry reads "already used": a refusal, never a second
        // acceptance.)
        let reply = match self.take_idle() {
            Some(mut c) => match c.command(&args).await {
                Ok(r) => {
                    self.put_idle(c);
                    r
                }
                Err(_) => self.fresh_command(&args).await?,
            },
            None => self.fresh_command(&args).await?,
        };
        match reply {
            Reply::Simple(s) if s == "OK" => Ok(true),
            Reply::Bulk(None) => Ok(false),
            Reply::Error(e) => Err(format!("Redis refused SET: {e}")),
            other => Err(format!("unexpected reply to SET: {other:?}")),
        }
    }

    async fn fresh_command(&self, args: &[&[u8]]) -> Result<Reply, String> {
        let mut c = self.connect().await?;
        let r = c.command(args).await?;
        self.put_idle(c);
        Ok(r)
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
            match tokio::time::timeout(self.timeout, self.set_nx(&name, ttl)).await {
                Ok(Ok(fresh)) => Ok(fresh),
                Ok(Err(e)) => Err(ReplayStoreError(e)),
                Err(_) => Err(ReplayStoreError(format!(
                    "no answer from {} within {} ms",
                    self.url,
                    self.timeout.as_millis()
                ))),
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls() {
        let u = RedisUrl::parse("redis://127.0.0.1:6380/2").unwrap();
        assert_eq!((u.host.as_str(), u.port, u.db), ("127.0.0.1", 6380, 2));
        assert!(u.password.is_none() && u.username.is_none());
        let u = RedisUrl::parse("redis://redis.internal").unwrap();
        assert_eq!((u.host.as_str(), u.port, u.db), ("redis.internal", 6379, 0));
        let u = RedisUrl::parse("redis://[::1]:7000/").unwrap();
        assert_eq!((u.host.as_str(), u.port), ("::1", 7000));
        assert_eq!(u.to_string(), "redis://[::1]:7000/0");
        let u = RedisUrl::parse("redis://gw:s%40cret%3Apw@h:1/3").unwrap();
        assert_eq!(u.username.as_deref(), Some("gw"));
        assert_eq!(u.password.as_deref().map(String::as_str), Some("s@cret:pw"));
        let u = RedisUrl::parse("redis://:hunter2@h").unwrap();
        assert_eq!(u.username, None);
        assert_eq!(u.password.as_deref().map(String::as_str), Some("hunter2"));
        assert_eq!(u.to_string(), "redis://***@h:6379/0");
        assert!(!format!("{u:?}").contains("hunter2"));
        for bad in [
            "http://h",
            "rediss://h",
            "redis://",
            "redis://h:0",
            "redis://h:70000",
            "redis://h:x",
            "redis://h/x",
            "redis://[::1",
            "redis://:pw%zz@h",
        ] {
            let e = RedisUrl::parse(bad).unwrap_err();
            assert!(!e.contains("pw%zz"), "{e}");
        }
    }

    #[test]
    fn replies() {
        assert_eq!(
            parse_reply(b"+OK\r\nrest").unwrap(),
            Some((Reply::Simple("OK".into()), 5))
        );
        assert_eq!(
            parse_reply(b"$-1\r\n").unwrap(),
            Some((Reply::Bulk(None), 5))
        );
        assert_eq!(
            parse_reply(b"-ERR no\r\n").unwrap(),
            Some((Reply::Error("ERR no".into()), 9))
        );
        assert_eq!(
            parse_reply(b":-7\r\n").unwrap(),
            Some((Reply::Integer(-7), 5))
        );
        assert_eq!(
            parse_reply(b"$3\r\nabc\r\n").unwrap(),
            Some((Reply::Bulk(Some(b"abc".to_vec())), 9))
        );
        assert_eq!(
            parse_reply(b"*2\r\n:1\r\n$1\r\nx\r\n").unwrap(),
            Some((
                Reply::Array(Some(vec![
                    Reply::Integer(1),
                    Reply::Bulk(Some(b"x".to_vec()))
                ])),
                15
            ))
        );
        // Every strict prefix of a reply is "need more", never an error or a panic.
        let whole = b"*3\r\n+OK\r\n$5\r\nhello\r\n*1\r\n:12\r\n";
        for cut in 0..whole.len() {
            assert_eq!(parse_reply(&whole[..cut]), Ok(None), "cut at {cut}");
        }
        assert!(parse_reply(whole).unwrap().is_some());
        for bad in [
            &b"?x\r\n"[..],
            b"$abc\r\n",
            b"$-2\r\n",
            b"$3\r\nabcde",
            b":1.5\r\n",
            b"$99999999\r\n",
            b"*99999\r\n",
            b"*1\r\n*1\r\n*1\r\n*1\r\n*1\r\n*1\r\n*1\r\n*1\r\n*1\r\n*1\r\n:1\r\n",
        ] {
            assert!(
                parse_reply(bad).is_err(),
                "{:?}",
                String::from_utf8_lossy(bad)
            );
        }
    }

    #[test]
    fn commands_are_resp_arrays_of_bulk_strings() {
        assert_eq!(
            encode_command(&[b"SET", b"k", b"1", b"NX", b"EX", b"60"]),
            b"*6\r\n$3\r\nSET\r\n$1\r\nk\r\n$1\r\n1\r\n$2\r\nNX\r\n$2\r\nEX\r\n$2\r\n60\r\n"
        );
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
        let store = RedisStore::new(url, Duration::from_millis(200));
        let t = std::time::Instant::now();
        let e = store
            .first_use(TokenId([1; 16]), 100, 10)
            .await
            .unwrap_err();
        assert!(e.0.contains("no answer"), "{e}");
        assert!(t.elapsed() < Duration::from_secs(2));
        hold.abort();
    }
}
