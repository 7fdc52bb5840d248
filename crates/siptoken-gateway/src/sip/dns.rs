//! DNS SRV lookups for locating a SIP server (RFC 3263 §4.2, RFC 2782): a small stub resolver
//! that asks the configured name servers (else those in /etc/resolv.conf) over UDP for
//! `_sip._udp.DOMAIN` / `_sip._tcp.DOMAIN`. A/AAAA lookups of the targets go through the system
//! resolver.

use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use tokio::net::UdpSocket;

/// One SRV record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Srv {
    /// Lower is tried first.
    pub priority: u16,
    /// Among equal priorities, the share of first choices (RFC 2782 weighting).
    pub weight: u16,
    /// Port at the target.
    pub port: u16,
    /// Target host name (without the trailing dot).
    pub target: String,
}

/// Why a lookup failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DnsError {
    /// The name cannot be put in a query.
    BadName,
    /// The answer is not a valid DNS message for our query.
    BadAnswer(&'static str),
    /// The server answered with an error code (other than NXDOMAIN).
    Server(u8),
    /// No server answered in time.
    Timeout,
    /// A socket error.
    Io(String),
}

impl fmt::Display for DnsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DnsError::BadName => f.write_str("name not valid in DNS"),
            DnsError::BadAnswer(why) => write!(f, "bad DNS answer: {why}"),
            DnsError::Server(rcode) => write!(f, "DNS server error (rcode {rcode})"),
            DnsError::Timeout => f.write_str("DNS timeout"),
            DnsError::Io(e) => write!(f, "DNS I/O error: {e}"),
        }
    }
}

impl std::error::Error for DnsError {}

const TYPE_SRV: u16 = 33;
const CLASS_IN: u16 = 1;

/// The name servers listed in /etc/resolv.conf (port 53).
pub fn system_nameservers() -> Vec<SocketAddr> {
    let text = std::fs::read_to_string("/etc/resolv.conf").unwrap_or_default();
    text.lines()
        .filter_map(|l| {
            let mut parts = l.split_whitespace();
            (parts.next() == Some("nameserver"))
                .then(|| parts.next()?.parse::<IpAddr>().ok())
                .flatten()
        })
        .map(|ip| SocketAddr::new(ip, 53))
        .collect()
}

/// A standard recursive query for `name` of type `qtype`.
pub fn build_query(id: u16, name: &str, qtype: u16) -> Result<Vec<u8>, DnsError> {
    let mut q = Vec::with_capacity(name.len() + 18);
    q.extend_from_slice(&id.to_be_bytes());
    q.extend_from_slice(&[0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0]); // RD; one question
    let name = name.trim_end_matches('.');
    if name.is_empty() || name.len() > 253 {
        return Err(DnsError::BadName);
    }
    for label in name.split('.') {
        if label.is_empty() || label.len() > 63 || !label.is_ascii() {
            return Err(DnsError::BadName);
        }
        q.push(label.len() as u8);
        q.extend_from_slice(label.as_bytes());
    }
    q.push(0);
    q.extend_from_slice(&qtype.to_be_bytes());
    q.extend_from_slice(&CLASS_IN.to_be_bytes());
    Ok(q)
}

fn u16_at(b: &[u8], i: usize) -> Result<u16, DnsError> {
    b.get(i..i + 2)
        .map(|s| u16::from_be_bytes([s[0], s[1]]))
        .ok_or(DnsError::BadAnswer("truncated"))
}

/// Reads a (possibly compressed) name at `pos`; returns it and the position after it.
fn read_name(b: &[u8], mut pos: usize) -> Result<(String, usize), DnsError> {
    let mut name = String::new();
    let mut end = None;
    for _hops in 0..128 {
        let len = *b.get(pos).ok_or(DnsError::BadAnswer("truncated name"))? as usize;
        match len {
            0 => {
                return Ok((name, end.unwrap_or(pos + 1)));
            }
            l if l & 0xc0 == 0xc0 => {
                let ptr = (u16_at(b, pos)? & 0x3fff) as usize;
                end.get_or_insert(pos + 2);
                if ptr >= b.len() {
                    return Err(DnsError::BadAnswer("bad compression pointer"));
                }
                pos = ptr;
            }
            l if l & 0xc0 == 0 => {
                let label = b
                    .get(pos + 1..pos + 1 + l)
                    .ok_or(DnsError::BadAnswer("truncated label"))?;
                if !name.is_empty() {
                    name.push('.');
                }
                name.push_str(&String::from_utf8_lossy(label));
                if name.len() > 255 {
                    return Err(DnsError::BadAnswer("name too long"));
                }
                pos += 1 + l;
            }
            _ => return Err(DnsError::BadAnswer("bad label type")),
        }
    }
    Err(DnsError::BadAnswer("compression loop"))
}

/// Parses the answer to an SRV query with this `id`: the SRV records (empty for NXDOMAIN or no
/// data), in the order to try them (see [`order`]).
pub fn parse_srv_answer(id: u16, b: &[u8]) -> Result<Vec<Srv>, DnsError> {
    if b.len() < 12 {
        return Err(DnsError::BadAnswer("shorter than a header"));
    }
    if u16_at(b, 0)? != id {
        return Err(DnsError::BadAnswer("id mismatch"));
    }
    if b[2] & 0x80 == 0 {
        return Err(DnsError::BadAnswer("not a response"));
    }
    match b[3] & 0x0f {
        0 => {}
        3 => return Ok(Vec::new()), // NXDOMAIN
        rcode => return Err(DnsError::Server(rcode)),
    }
    let (qd, an) = (u16_at(b, 4)?, u16_at(b, 6)?);
    let mut pos = 12;
    for _ in 0..qd {
        pos = read_name(b, pos)?.1 + 4;
    }
    let mut out = Vec::new();
    for _ in 0..an {
        let (_, p) = read_name(b, pos)?;
        let rtype = u16_at(b, p)?;
        let rdlen = u16_at(b, p + 8)? as usize;
        let rdata = p + 10;
        if rdata + rdlen > b.len() {
            return Err(DnsError::BadAnswer("truncated record"));
        }
        if rtype == TYPE_SRV {
            if rdlen < 7 {
                return Err(DnsError::BadAnswer("short SRV record"));
            }
            let (target, _) = read_name(b, rdata + 6)?;
            if !target.is_empty() {
                out.push(Srv {
                    priority: u16_at(b, rdata)?,
                    weight: u16_at(b, rdata + 2)?,
                    port: u16_at(b, rdata + 4)?,
                    target,
                });
            }
        }
        pos = rdata + rdlen;
    }
    Ok(order(out, rand::random))
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

/// Looks up SRV records for `name`, asking each server in turn (one query each, `timeout`
/// per server).
pub async fn lookup_srv(
    servers: &[SocketAddr],
    name: &str,
    timeout: Duration,
) -> Result<Vec<Srv>, DnsError> {
    let id: u16 = rand::random();
    let query = build_query(id, name, TYPE_SRV)?;
    let mut last = DnsError::Timeout;
    for server in servers {
        let bind: SocketAddr = if server.is_ipv4() {
            "0.0.0.0:0".parse().expect("literal")
        } else {
            "[::]:0".parse().expect("literal")
        };
        let sock = UdpSocket::bind(bind)
            .await
            .map_err(|e| DnsError::Io(e.to_string()))?;
        if let Err(e) = sock.connect(server).await {
            last = DnsError::Io(e.to_string());
            continue;
        }
        if let Err(e) = sock.send(&query).await {
            last = DnsError::Io(e.to_string());
            continue;
        }
        let mut buf = vec![0u8; 4096];
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            match tokio::time::timeout_at(deadline, sock.recv(&mut buf)).await {
                Err(_) => {
                    last = DnsError::Timeout;
                    break;
                }
                Ok(Err(e)) => {
                    last = DnsError::Io(e.to_string());
                    break;
                }
                Ok(Ok(n)) => match parse_srv_answer(id, &buf[..n]) {
                    // A stray or spoofed datagram with another id: keep waiting.
                    Err(DnsError::BadAnswer("id mismatch")) => continue,
                    r => return r,
                },
            }
        }
    }
    Err(last)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn answer(id: u16, records: &[(u16, u16, u16, &str)]) -> Vec<u8> {
        let mut b = build_query(id, "_sip._udp.example.org", TYPE_SRV).unwrap();
        b[2] = 0x81;
        b[3] = 0x80;
        b[7] = records.len() as u8;
        for (prio, weight, port, target) in records {
            b.extend_from_slice(&[0xc0, 12]); // pointer to the question name
            b.extend_from_slice(&TYPE_SRV.to_be_bytes());
            b.extend_from_slice(&CLASS_IN.to_be_bytes());
            b.extend_from_slice(&60u32.to_be_bytes());
            let mut rdata = Vec::new();
            rdata.extend_from_slice(&prio.to_be_bytes());
            rdata.extend_from_slice(&weight.to_be_bytes());
            rdata.extend_from_slice(&port.to_be_bytes());
            for l in target.split('.') {
                rdata.push(l.len() as u8);
                rdata.extend_from_slice(l.as_bytes());
            }
            rdata.push(0);
            b.extend_from_slice(&(rdata.len() as u16).to_be_bytes());
            b.extend_from_slice(&rdata);
        }
        b
    }

    #[test]
    fn parses_and_orders_srv_records() {
        let b = answer(
            7,
            &[
                (20, 0, 5070, "b.example.org"),
                (10, 5, 5060, "a.example.org"),
                (10, 50, 5062, "c.example.org"),
            ],
        );
        let r = parse_srv_answer(7, &b).unwrap();
        assert_eq!(r.len(), 3);
        assert_eq!(r[2].target, "b.example.org", "priority 20 comes last");
        assert!(r[..2].iter().all(|s| s.priority == 10));
        assert_eq!(
            parse_srv_answer(8, &b),
            Err(DnsError::BadAnswer("id mismatch"))
        );
    }

    #[test]
    fn weights_share_out_the_first_choice() {
        let rec = |t: &str, prio, weight| Srv {
            priority: prio,
            weight,
            port: 5060,
            target: t.into(),
        };
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
    fn nxdomain_is_empty_and_garbage_is_an_error() {
        let mut b = answer(1, &[]);
        b[3] = 0x83;
        assert_eq!(parse_srv_answer(1, &b), Ok(Vec::new()));
        b[3] = 0x82;
        assert_eq!(parse_srv_answer(1, &b), Err(DnsError::Server(2)));
        let good = answer(1, &[(1, 1, 5060, "a.example.org")]);
        for cut in 0..good.len() {
            let _ = parse_srv_answer(1, &good[..cut]);
        }
        for i in 12..good.len() {
            let mut m = good.clone();
            m[i] ^= 0xff;
            let _ = parse_srv_answer(1, &m);
        }
        // A compression pointer to itself must not loop.
        let mut looped = answer(1, &[]);
        looped[7] = 1;
        looped.extend_from_slice(&[0xc0, (looped.len()) as u8]);
        assert!(parse_srv_answer(1, &looped).is_err());
    }

    #[test]
    fn queries_reject_bad_names() {
        assert!(build_query(1, "a..b", TYPE_SRV).is_err());
        assert!(build_query(1, &"x".repeat(64), TYPE_SRV).is_err());
        assert!(build_query(1, "é.example", TYPE_SRV).is_err());
        let q = build_query(0x1234, "_sip._udp.a.b.", TYPE_SRV).unwrap();
        assert_eq!(&q[..2], &[0x12, 0x34]);
        assert_eq!(&q[12..], b"\x04_sip\x04_udp\x01a\x01b\x00\x00\x21\x00\x01");
    }
}
