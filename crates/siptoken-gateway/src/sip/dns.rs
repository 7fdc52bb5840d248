//! Locating the registrar (RFC 3263 §4): NAPTR → SRV → A/AAAA, giving an ordered list of
//! candidates — (transport, address) pairs — that the REGISTER tries in turn until one answers
//! (RFC 3263 §4.3).
//!
//! The DNS itself is hickory-resolver's (tokio): queries to `dns_servers` (else the name
//! servers of /etc/resolv.conf) over UDP, repeated over TCP when an answer comes back
//! truncated, and one cache for every registration that keeps each answer for its TTL. What is
//! written here is what RFC 3263 adds on top and no crate provides: which NAPTR records the
//! gateway can use, RFC 2782's weighted order of SRV records, and the candidate list itself,
//! filtered by the address family `sip_bind` can reach and by `allowed_registrars`.

use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use hickory_resolver::config::{
    ConnectionConfig, LookupIpStrategy, NameServerConfig, ResolverConfig,
};
use hickory_resolver::net::runtime::TokioRuntimeProvider;
use hickory_resolver::net::NetError;
use hickory_resolver::proto::rr::{RData, RecordType};
use hickory_resolver::TokioResolver;

use super::allowed_registrars::AllowedRegistrars;
use super::transport::Kind;

/// At most this many candidates are tried for one registration (a hostile zone could list
/// hundreds of SRV records and addresses).
pub const MAX_CANDIDATES: usize = 16;

/// How long one DNS query may take before the resolver retries it (once).
const QUERY_TIMEOUT: Duration = Duration::from_secs(2);

/// The transports the gateway speaks, in the order it prefers them when the DNS offers a
/// choice without saying (no NAPTR records, SRV records for several).
const TRANSPORTS: [Kind; 3] = [Kind::Udp, Kind::Tcp, Kind::Tls];

/// One place to send the REGISTER to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Candidate {
    /// The transport to use there.
    pub transport: Kind,
    /// The registrar's (or outbound proxy's) address.
    pub addr: SocketAddr,
}

/// What to locate: the host a token names, and what the token fixes.
#[derive(Debug, Clone, Copy)]
pub struct Target<'a> {
    /// `outboundProxy`, else `domain`: a host name or an IP address (IPv6 possibly bracketed).
    pub host: &'a str,
    /// The token's `port`: no SRV or NAPTR lookups then (RFC 3263 §4.2).
    pub port: Option<u16>,
    /// The token's `transport`: no NAPTR lookup then (RFC 3263 §4.1).
    pub transport: Option<Kind>,
    /// Whether SIP over TLS is available (a trusted CA set is configured).
    pub tls: bool,
}

/// How one DNS lookup failed (the resolver's error, reduced to what the gateway acts on).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LookupFailure {
    /// The name exists with no such records, or does not exist.
    NoRecords,
    /// No answer in time.
    Timeout,
    /// Any other failure (a refused query, an unreachable name server, a malformed answer).
    Failed,
}

impl From<&NetError> for LookupFailure {
    fn from(e: &NetError) -> LookupFailure {
        if e.is_no_records_found() {
            LookupFailure::NoRecords
        } else if matches!(e, NetError::Timeout) {
            LookupFailure::Timeout
        } else {
            LookupFailure::Failed
        }
    }
}

/// Why no candidate could be given.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LocateError {
    /// The host name matches no host pattern of `allowed_registrars` (nothing was looked up).
    NameNotAllowed,
    /// The host is an IP address, or every address found, outside the networks of
    /// `allowed_registrars`.
    AddressNotAllowed,
    /// A lookup failed, and nothing else was found.
    Lookup {
        /// The name looked up.
        name: String,
        /// How it failed.
        failure: LookupFailure,
    },
    /// The names were found but have no address the gateway can reach from `sip_bind`.
    NoAddress {
        /// The host the token names.
        host: String,
    },
    /// The SRV records say the service is not offered there (a target of `.`, RFC 2782).
    NotOffered {
        /// The host the token names.
        host: String,
    },
    /// No resolver: the system's configuration could not be read and no `dns_servers` are set.
    NoResolver,
    /// The whole lookup took longer than the SIP transaction timeout.
    Timeout,
}

impl LocateError {
    /// Whether `allowed_registrars` refused the registrar.
    pub fn is_not_allowed(&self) -> bool {
        matches!(
            self,
            LocateError::NameNotAllowed | LocateError::AddressNotAllowed
        )
    }
}

/// Short and free of addresses: the text may reach the client.
impl fmt::Display for LocateError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LocateError::NameNotAllowed => {
                f.write_str("the registrar's name is not in allowed_registrars")
            }
            LocateError::AddressNotAllowed => {
                f.write_str("the registrar's address is not in allowed_registrars")
            }
            LocateError::Lookup { name, failure } => {
                let name = name.trim_end_matches('.');
                match failure {
                    LookupFailure::NoRecords => write!(f, "{name} has no address in DNS"),
                    LookupFailure::Timeout => write!(f, "DNS lookup of {name} timed out"),
                    LookupFailure::Failed => write!(f, "DNS lookup of {name} failed"),
                }
            }
            LocateError::NoAddress { host } => {
                write!(f, "{host} has no address reachable from sip_bind")
            }
            LocateError::NotOffered { host } => {
                write!(
                    f,
                    "DNS says {host} offers no SIP service (SRV target \".\")"
                )
            }
            LocateError::NoResolver => f.write_str("no DNS resolver is configured"),
            LocateError::Timeout => f.write_str("DNS lookups took too long"),
        }
    }
}

impl std::error::Error for LocateError {}

/// The default port of a transport (RFC 3261 §19.1.2: 5061 for TLS).
pub fn default_port(kind: Kind) -> u16 {
    match kind {
        Kind::Udp | Kind::Tcp => 5060,
        Kind::Tls => 5061,
    }
}

/// The SRV service name of a transport (RFC 3263 §4.1: TLS is `_sips._tcp`).
fn srv_prefix(kind: Kind) -> &'static str {
    match kind {
        Kind::Udp => "_sip._udp",
        Kind::Tcp => "_sip._tcp",
        Kind::Tls => "_sips._tcp",
    }
}

/// A name as the resolver is asked for it: fully qualified, so no search domain is tried.
fn fqdn(name: &str) -> String {
    if name.ends_with('.') {
        name.to_owned()
    } else {
        format!("{name}.")
    }
}

/// One NAPTR record, as far as RFC 3263 uses it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Naptr {
    /// Lower first.
    pub order: u16,
    /// Lower first, within one order.
    pub preference: u16,
    /// `S` for records that lead to SRV records (the only ones RFC 3263 uses).
    pub flags: String,
    /// `SIP+D2U`, `SIP+D2T`, `SIPS+D2T`, …
    pub services: String,
    /// The SRV name to look up.
    pub replacement: String,
}

/// The NAPTR records the gateway can follow, in order (RFC 3263 §4.1, RFC 3403): flag `S`, a
/// service it speaks (`SIP+D2U` UDP, `SIP+D2T` TCP, `SIPS+D2T` TLS when `tls`), sorted by order
/// then preference; each with its transport and SRV name.
pub fn usable_naptr(mut records: Vec<Naptr>, tls: bool) -> Vec<(Kind, String)> {
    records.sort_by_key(|r| (r.order, r.preference));
    records
        .into_iter()
        .filter(|r| r.flags.eq_ignore_ascii_case("s"))
        .filter_map(|r| {
            let kind = match r.services.to_ascii_uppercase().as_str() {
                "SIP+D2U" => Kind::Udp,
                "SIP+D2T" => Kind::Tcp,
                "SIPS+D2T" if tls => Kind::Tls,
                _ => return None,
            };
            Some((kind, r.replacement))
        })
        .collect()
}

/// One SRV record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Srv {
    /// Lower is tried first.
    pub priority: u16,
    /// Among equal priorities, the share of first choices (RFC 2782 weighting).
    pub weight: u16,
    /// Port at the target.
    pub port: u16,
    /// Target host name.
    pub target: String,
}

/// Orders SRV records for trying (RFC 2782): by priority, and within one priority by repeated
/// weighted random choice (`random` gives uniform `u32`s; zero weights come first in the pool
/// and are picked only when the running sum allows it, as the RFC describes).
pub fn order(mut records: Vec<Srv>, mut random: impl FnMut() -> u32) -> Vec<Srv> {
    records.sort_by_key(|r| (r.priority, r.weight != 0));
    let mut out = Vec::with_capacity(records.len());
    while !records.is_empty() {
        let prio = records[0].priority;
        let end = records.iter().take_while(|r| r.priority == prio).count();
        let mut group: Vec<Srv> = records.drain(..end).collect();
        while !group.is_empty() {
            let sum: u64 = group.iter().map(|r| r.weight as u64).sum();
            let pick = if sum == 0 {
                0
            } else {
                let target = random() as u64 % (sum + 1);
                let mut running = 0;
                group
                    .iter()
                    .position(|r| {
                        running += r.weight as u64;
                        running >= target
                    })
                    .unwrap_or(group.len() - 1)
            };
            out.push(group.remove(pick));
        }
    }
    out
}

/// A name to resolve to addresses, with the transport and port to use there.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hop {
    /// Transport.
    pub transport: Kind,
    /// Host name (an SRV target, or the token's host).
    pub name: String,
    /// Port.
    pub port: u16,
}

/// The result of one SRV query.
enum SrvAnswer {
    /// Records, ordered (RFC 2782).
    Found(Vec<Srv>),
    /// No records (or an error, logged: the caller falls back as if there were none).
    Nothing,
    /// Only a `.` target: the service is decidedly not offered (RFC 2782).
    NotOffered,
}

/// Builds the candidate list from resolved hops, in order: each hop's addresses in the order the
/// resolver gave them, without addresses `bind` cannot reach (another family, when `bind` is not
/// a wildcard) or `allowed` refuses, without duplicates, at most [`MAX_CANDIDATES`].
/// `AddressNotAllowed` when `allowed` refused every address there was.
pub fn candidates(
    hops: &[(Hop, Vec<IpAddr>)],
    bind: IpAddr,
    allowed: &AllowedRegistrars,
) -> Result<Vec<Candidate>, LocateError> {
    let mut out: Vec<Candidate> = Vec::new();
    let mut refused = 0;
    for (hop, ips) in hops {
        for &ip in ips {
            if !bind.is_unspecified() && ip.is_ipv4() != bind.is_ipv4() {
                continue;
            }
            if !allowed.allows_addr(ip) {
                refused += 1;
                continue;
            }
            let c = Candidate {
                transport: hop.transport,
                addr: SocketAddr::new(ip, hop.port),
            };
            if !out.contains(&c) && out.len() < MAX_CANDIDATES {
                out.push(c);
            }
        }
    }
    if out.is_empty() && refused > 0 {
        return Err(LocateError::AddressNotAllowed);
    }
    Ok(out)
}

/// The registrar locator: hickory's resolver (its cache shared by every registration, since
/// clones share it) and the `srv_lookup` switch.
#[derive(Clone, Debug)]
pub struct Resolver {
    dns: Option<TokioResolver>,
    srv_lookup: bool,
}

impl Resolver {
    /// A resolver asking `servers` (UDP, and TCP on truncation; empty: the name servers of
    /// /etc/resolv.conf, with its options), looking up A and AAAA records as `bind` can use
    /// them (only one family when `bind` is a specific address). `srv_lookup = false` skips
    /// NAPTR and SRV. Without a usable configuration only IP addresses can be located (logged).
    pub fn new(servers: &[SocketAddr], srv_lookup: bool, bind: IpAddr) -> Resolver {
        let builder = if servers.is_empty() {
            match TokioResolver::builder_tokio() {
                Ok(b) => Some(b),
                Err(e) => {
                    tracing::warn!("cannot read the system's DNS configuration ({e}): only registrars given as IP addresses can be reached (set dns_servers)");
                    None
                }
            }
        } else {
            let name_servers = servers
                .iter()
                .map(|s| {
                    let mut udp = ConnectionConfig::udp();
                    udp.port = s.port();
                    let mut tcp = ConnectionConfig::tcp();
                    tcp.port = s.port();
                    NameServerConfig::new(s.ip(), true, vec![udp, tcp])
                })
                .collect();
            Some(TokioResolver::builder_with_config(
                ResolverConfig::from_parts(None, Vec::new(), name_servers),
                TokioRuntimeProvider::default(),
            ))
        };
        let dns = builder.and_then(|mut b| {
            let o = b.options_mut();
            o.timeout = QUERY_TIMEOUT;
            o.attempts = 2;
            o.ip_strategy = match bind {
                IpAddr::V4(a) if a.is_unspecified() => LookupIpStrategy::Ipv4AndIpv6,
                IpAddr::V6(a) if a.is_unspecified() => LookupIpStrategy::Ipv6AndIpv4,
                IpAddr::V4(_) => LookupIpStrategy::Ipv4Only,
                IpAddr::V6(_) => LookupIpStrategy::Ipv6Only,
            };
            b.build()
                .inspect_err(|e| tracing::warn!("cannot build the DNS resolver: {e}"))
                .ok()
        });
        Resolver { dns, srv_lookup }
    }

    /// The candidates for `target` in the order to try them (RFC 3263 §4):
    ///
    /// - an IP address: that address, with the token's port and transport (else the default
    ///   port and UDP); no lookups;
    /// - a name with a port: its A/AAAA records, the token's transport (else UDP);
    /// - a name without a port, transport given: the SRV records of that transport
    ///   (`_sip._udp`, `_sip._tcp`, `_sips._tcp`), else A/AAAA with the default port;
    /// - a name, neither: its NAPTR records choose among the transports the gateway speaks;
    ///   without usable ones, the SRV records of each (UDP, TCP, then TLS); without any, A/AAAA
    ///   and port 5060 over UDP.
    ///
    /// SRV targets are resolved (A/AAAA) in RFC 2782 order. `allowed` is applied before anything
    /// is looked up (to the name) and to every address found; `bind` drops addresses of a family
    /// it cannot reach. At most `timeout` in all.
    pub async fn locate(
        &self,
        target: &Target<'_>,
        bind: IpAddr,
        allowed: &AllowedRegistrars,
        timeout: Duration,
    ) -> Result<Vec<Candidate>, LocateError> {
        let bare = target.host.trim_start_matches('[').trim_end_matches(']');
        if let Ok(ip) = bare.parse::<IpAddr>() {
            if !allowed.allows_literal(ip) {
                return Err(LocateError::AddressNotAllowed);
            }
            let transport = target.transport.unwrap_or(Kind::Udp);
            let port = target.port.unwrap_or(default_port(transport));
            return Ok(vec![Candidate {
                transport,
                addr: SocketAddr::new(ip, port),
            }]);
        }
        if !allowed.allows_name(bare) {
            return Err(LocateError::NameNotAllowed);
        }
        let dns = self.dns.as_ref().ok_or(LocateError::NoResolver)?;
        tokio::time::timeout(timeout, self.resolve(dns, bare, target, bind, allowed))
            .await
            .map_err(|_| LocateError::Timeout)?
    }

    async fn resolve(
        &self,
        dns: &TokioResolver,
        host: &str,
        target: &Target<'_>,
        bind: IpAddr,
        allowed: &AllowedRegistrars,
    ) -> Result<Vec<Candidate>, LocateError> {
        let hops = self.hops(dns, host, target).await?;
        let mut resolved = Vec::with_capacity(hops.len());
        let mut failure = None;
        let mut found = 0;
        for hop in hops {
            if found >= MAX_CANDIDATES {
                break;
            }
            match dns.lookup_ip(fqdn(&hop.name)).await {
                Ok(ips) => {
                    let ips: Vec<IpAddr> = ips.iter().collect();
                    found += ips.len();
                    resolved.push((hop, ips));
                }
                Err(error) => {
                    tracing::debug!(name = %hop.name, "A/AAAA lookup failed: {error}");
                    failure.get_or_insert(LocateError::Lookup {
                        name: hop.name,
                        failure: LookupFailure::from(&error),
                    });
                }
            }
        }
        let list = candidates(&resolved, bind, allowed)?;
        tracing::debug!(%host, candidates = ?list, "registrar located");
        if list.is_empty() {
            return Err(failure.unwrap_or(LocateError::NoAddress {
                host: host.to_owned(),
            }));
        }
        Ok(list)
    }

    /// The names to resolve, in order (RFC 3263 §4.1 and §4.2).
    async fn hops(
        &self,
        dns: &TokioResolver,
        host: &str,
        target: &Target<'_>,
    ) -> Result<Vec<Hop>, LocateError> {
        let direct = |transport: Kind, port: u16| {
            vec![Hop {
                transport,
                name: host.to_owned(),
                port,
            }]
        };
        if let Some(port) = target.port {
            return Ok(direct(target.transport.unwrap_or(Kind::Udp), port));
        }
        if !self.srv_lookup {
            let t = target.transport.unwrap_or(Kind::Udp);
            return Ok(direct(t, default_port(t)));
        }
        let srv_name = |kind: Kind| format!("{}.{host}", srv_prefix(kind));
        if let Some(kind) = target.transport {
            return match srv(dns, &srv_name(kind)).await {
                SrvAnswer::Found(records) => Ok(srv_hops(kind, records)),
                SrvAnswer::Nothing => Ok(direct(kind, default_port(kind))),
                SrvAnswer::NotOffered => Err(LocateError::NotOffered {
                    host: host.to_owned(),
                }),
            };
        }
        let mut hops = Vec::new();
        let naptr = naptr(dns, host).await;
        for (kind, replacement) in usable_naptr(naptr, target.tls) {
            if let SrvAnswer::Found(records) = srv(dns, &replacement).await {
                hops.extend(srv_hops(kind, records));
            }
        }
        if !hops.is_empty() {
            return Ok(hops);
        }
        // No usable NAPTR records: the SRV records of every transport the gateway speaks.
        let [udp_name, tcp_name, tls_name] = TRANSPORTS.map(srv_name);
        let (udp, tcp, tls) = tokio::join!(srv(dns, &udp_name), srv(dns, &tcp_name), async {
            if target.tls {
                srv(dns, &tls_name).await
            } else {
                SrvAnswer::Nothing
            }
        },);
        let mut not_offered = 0;
        for (kind, answer) in TRANSPORTS.into_iter().zip([udp, tcp, tls]) {
            match answer {
                SrvAnswer::Found(records) => hops.extend(srv_hops(kind, records)),
                SrvAnswer::NotOffered => not_offered += 1,
                SrvAnswer::Nothing => {}
            }
        }
        if hops.is_empty() {
            if not_offered > 0 {
                return Err(LocateError::NotOffered {
                    host: host.to_owned(),
                });
            }
            return Ok(direct(Kind::Udp, default_port(Kind::Udp)));
        }
        Ok(hops)
    }
}

fn srv_hops(transport: Kind, records: Vec<Srv>) -> Vec<Hop> {
    records
        .into_iter()
        .map(|r| Hop {
            transport,
            name: r.target,
            port: r.port,
        })
        .collect()
}

/// The records of type `rtype` at `name` that `pick` takes (none when the lookup fails; a
/// failure other than "no such records" is logged).
async fn records<T>(
    dns: &TokioResolver,
    name: &str,
    rtype: RecordType,
    pick: impl Fn(&RData) -> Option<T>,
) -> Vec<T> {
    match dns.lookup(fqdn(name), rtype).await {
        Ok(lookup) => lookup
            .answers()
            .iter()
            .filter_map(|r| pick(&r.data))
            .collect(),
        Err(e) => {
            if !e.is_no_records_found() {
                tracing::debug!(%name, "{rtype} lookup failed ({e}): as if there were none");
            }
            Vec::new()
        }
    }
}

/// The NAPTR records of `host` (none when the lookup fails).
async fn naptr(dns: &TokioResolver, host: &str) -> Vec<Naptr> {
    let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
    records(dns, host, RecordType::NAPTR, |data| match data {
        RData::NAPTR(n) => Some(Naptr {
            order: n.order,
            preference: n.preference,
            flags: text(&n.flags),
            services: text(&n.services),
            replacement: n.replacement.to_ascii(),
        }),
        _ => None,
    })
    .await
}

/// The SRV records of `name`, ordered.
async fn srv(dns: &TokioResolver, name: &str) -> SrvAnswer {
    let records = records(dns, name, RecordType::SRV, |data| match data {
        RData::SRV(s) => Some(Srv {
            priority: s.priority,
            weight: s.weight,
            port: s.port,
            target: s.target.to_ascii(),
        }),
        _ => None,
    })
    .await;
    let (dot, usable): (Vec<Srv>, Vec<Srv>) = records
        .into_iter()
        .partition(|r| r.target.trim_end_matches('.').is_empty());
    if usable.is_empty() {
        return if dot.is_empty() {
            SrvAnswer::Nothing
        } else {
            SrvAnswer::NotOffered
        };
    }
    tracing::debug!(%name, records = ?usable, "SRV");
    SrvAnswer::Found(order(usable, rand::random))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(t: &str, prio: u16, weight: u16) -> Srv {
        Srv {
            priority: prio,
            weight,
            port: 5060,
            target: t.into(),
        }
    }

    #[test]
    fn weights_share_out_the_first_choice() {
        let records = vec![
            rec("a", 10, 90),
            rec("b", 10, 10),
            rec("z", 5, 0),
            rec("y", 20, 1),
        ];
        let mut seed = 0x2545_f491u32;
        let mut rng = move || {
            seed ^= seed << 13;
            seed ^= seed >> 17;
            seed ^= seed << 5;
            seed
        };
        let mut first_a = 0;
        for _ in 0..2000 {
            let o = order(records.clone(), &mut rng);
            let names: Vec<_> = o.iter().map(|r| r.target.as_str()).collect();
            assert_eq!(names[0], "z");
            assert_eq!(names[3], "y");
            first_a += (names[1] == "a") as u32;
        }
        assert!((1650..=1950).contains(&first_a), "{first_a} of 2000");
    }

    #[test]
    fn priorities_come_first_whatever_the_weights() {
        let records = vec![rec("c", 30, 1000), rec("a", 10, 0), rec("b", 20, 65535)];
        let o = order(records, || u32::MAX);
        let names: Vec<_> = o.iter().map(|r| r.target.as_str()).collect();
        assert_eq!(names, ["a", "b", "c"]);
    }

    fn naptr(order: u16, pref: u16, flags: &str, services: &str, repl: &str) -> Naptr {
        Naptr {
            order,
            preference: pref,
            flags: flags.into(),
            services: services.into(),
            replacement: repl.into(),
        }
    }

    #[test]
    fn naptr_records_pick_the_transports_the_gateway_speaks_in_order() {
        let records = vec![
            naptr(20, 10, "S", "SIP+D2U", "_sip._udp.example.org."),
            naptr(10, 20, "s", "sip+d2t", "_sip._tcp.example.org."),
            naptr(10, 10, "S", "SIPS+D2T", "_sips._tcp.example.org."),
            naptr(5, 10, "S", "SIP+D2S", "_sip._sctp.example.org."),
            naptr(5, 20, "S", "SIP+D2W", "_sip._ws.example.org."),
            naptr(1, 10, "A", "SIP+D2U", "other.example.org."),
            naptr(1, 10, "", "SIP+D2U", "nonterminal.example.org."),
        ];
        let with_tls = usable_naptr(records.clone(), true);
        assert_eq!(
            with_tls,
            [
                (Kind::Tls, "_sips._tcp.example.org.".into()),
                (Kind::Tcp, "_sip._tcp.example.org.".into()),
                (Kind::Udp, "_sip._udp.example.org.".into()),
            ]
        );
        let without_tls = usable_naptr(records, false);
        assert_eq!(without_tls[0].0, Kind::Tcp, "{without_tls:?}");
        assert_eq!(without_tls.len(), 2);
        assert!(usable_naptr(vec![naptr(1, 1, "S", "E2U+sip", "x.")], true).is_empty());
    }

    fn hop(t: Kind, name: &str, port: u16) -> Hop {
        Hop {
            transport: t,
            name: name.into(),
            port,
        }
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    fn sa(s: &str) -> SocketAddr {
        s.parse().unwrap()
    }

    #[test]
    fn candidates_follow_the_hops_then_their_addresses() {
        let hops = vec![
            (
                hop(Kind::Udp, "a", 5070),
                vec![ip("192.0.2.1"), ip("2001:db8::1"), ip("192.0.2.2")],
            ),
            (hop(Kind::Tcp, "b", 5080), vec![ip("192.0.2.3")]),
            (hop(Kind::Udp, "a-again", 5070), vec![ip("192.0.2.1")]),
        ];
        let any = AllowedRegistrars::default();
        let c = candidates(&hops, ip("0.0.0.0"), &any).unwrap();
        let got: Vec<_> = c.iter().map(|c| (c.transport, c.addr)).collect();
        assert_eq!(
            got,
            [
                (Kind::Udp, sa("192.0.2.1:5070")),
                (Kind::Udp, sa("[2001:db8::1]:5070")),
                (Kind::Udp, sa("192.0.2.2:5070")),
                (Kind::Tcp, sa("192.0.2.3:5080")),
            ],
            "in order, the duplicate dropped"
        );
        // A specific bind address reaches its own family only.
        let v4 = candidates(&hops, ip("127.0.0.1"), &any).unwrap();
        assert!(v4.iter().all(|c| c.addr.is_ipv4()) && v4.len() == 3);
        let v6 = candidates(&hops, ip("::1"), &any).unwrap();
        assert_eq!(v6.len(), 1);
        assert_eq!(v6[0].addr, sa("[2001:db8::1]:5070"));
        // The wildcard of either family reaches both.
        assert_eq!(candidates(&hops, ip("::"), &any).unwrap().len(), 4);
    }

    #[test]
    fn candidates_are_capped() {
        let ips: Vec<IpAddr> = (1..=40).map(|i| ip(&format!("192.0.2.{i}"))).collect();
        let hops = vec![(hop(Kind::Udp, "many", 5060), ips)];
        let c = candidates(&hops, ip("0.0.0.0"), &AllowedRegistrars::default()).unwrap();
        assert_eq!(c.len(), MAX_CANDIDATES);
        assert_eq!(c[0].addr, sa("192.0.2.1:5060"));
    }

    #[test]
    fn allowed_registrars_drop_addresses_and_refuse_when_none_is_left() {
        let allowed = AllowedRegistrars::parse(&["10.1.0.0/16".into()]).unwrap();
        let hops = vec![
            (hop(Kind::Udp, "a", 5060), vec![ip("127.0.0.1")]),
            (hop(Kind::Udp, "b", 5060), vec![ip("10.1.0.5")]),
        ];
        let c = candidates(&hops, ip("0.0.0.0"), &allowed).unwrap();
        assert_eq!(c.len(), 1);
        assert_eq!(c[0].addr, sa("10.1.0.5:5060"));
        let inner = vec![(hop(Kind::Udp, "a", 5060), vec![ip("127.0.0.1"), ip("::1")])];
        assert!(matches!(
            candidates(&inner, ip("0.0.0.0"), &allowed),
            Err(LocateError::AddressNotAllowed)
        ));
        // Nothing found at all is not a refusal.
        assert!(candidates(&[], ip("0.0.0.0"), &allowed).unwrap().is_empty());
    }

    #[tokio::test]
    async fn ip_addresses_and_refused_names_need_no_lookup() {
        // A resolver whose only name server is a closed port: any lookup would fail.
        let r = Resolver::new(&[sa("127.0.0.1:9")], true, ip("0.0.0.0"));
        let any = AllowedRegistrars::default();
        let t = |host, port, transport| Target {
            host,
            port,
            transport,
            tls: true,
        };
        let locate = |target: Target<'static>, allowed: AllowedRegistrars| {
            let r = r.clone();
            async move {
                r.locate(&target, ip("0.0.0.0"), &allowed, Duration::from_secs(1))
                    .await
            }
        };
        let c = locate(t("192.0.2.1", None, None), any.clone())
            .await
            .unwrap();
        assert_eq!(
            c,
            [Candidate {
                transport: Kind::Udp,
                addr: sa("192.0.2.1:5060")
            }]
        );
        let c = locate(t("[2001:db8::1]", None, Some(Kind::Tls)), any.clone())
            .await
            .unwrap();
        assert_eq!(
            c,
            [Candidate {
                transport: Kind::Tls,
                addr: sa("[2001:db8::1]:5061")
            }]
        );
        let c = locate(t("2001:db8::1", Some(7000), Some(Kind::Tcp)), any.clone())
            .await
            .unwrap();
        assert_eq!(c[0].addr, sa("[2001:db8::1]:7000"));
        let only = AllowedRegistrars::parse(&["*.example.org".into()]).unwrap();
        assert!(matches!(
            locate(t("127.0.0.1", Some(5060), None), only.clone()).await,
            Err(LocateError::AddressNotAllowed)
        ));
        let t0 = std::time::Instant::now();
        assert!(matches!(
            locate(t("internal.corp", None, None), only).await,
            Err(LocateError::NameNotAllowed)
        ));
        assert!(
            t0.elapsed() < Duration::from_millis(100),
            "no DNS query was made"
        );
    }
}
