//! RTP port pairs for the SIP leg: an even port for RTP and the next one for RTCP (RFC 3550
//! §11), bound on `rtp_address` from the `rtp_ports` range.
//!
//! Allocation walks the range from a cursor that keeps moving (starting at a random pair), so
//! a pair just released is the last to be reused and stray packets of an ended call do not reach
//! the next one. A pair that cannot be bound (in use by another process) is skipped.

use std::fmt;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::str::FromStr;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};

use tokio::net::UdpSocket;

use super::buffers;
use super::stamped;

/// A `rtp_ports` value: `FIRST-LAST`, inclusive, holding at least one even/odd pair.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PortRange {
    /// First port (rounded up to even when allocating).
    pub first: u16,
    /// Last port.
    pub last: u16,
}

/// A bad `rtp_ports` value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error(
    "rtp_ports must be FIRST-LAST with 1024 <= FIRST < LAST <= 65535 and room for an even/odd pair"
)]
pub struct PortRangeError;

impl FromStr for PortRange {
    type Err = PortRangeError;
    fn from_str(s: &str) -> Result<PortRange, PortRangeError> {
        let (a, b) = s.split_once('-').ok_or(PortRangeError)?;
        let first: u16 = a.trim().parse().map_err(|_| PortRangeError)?;
        let last: u16 = b.trim().parse().map_err(|_| PortRangeError)?;
        let r = PortRange { first, last };
        if first < 1024 || first >= last || r.pairs() == 0 {
            return Err(PortRangeError);
        }
        Ok(r)
    }
}

impl fmt::Display for PortRange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}-{}", self.first, self.last)
    }
}

impl<'de> serde::Deserialize<'de> for PortRange {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<PortRange, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

impl PortRange {
    /// The first even port of the range.
    fn base(&self) -> u32 {
        u32::from(self.first).next_multiple_of(2)
    }

    /// How many RTP/RTCP pairs fit.
    pub fn pairs(&self) -> u32 {
        let last = u32::from(self.last);
        if self.base() + 1 > last {
            0
        } else {
            (last - self.base()).div_ceil(2)
        }
    }
}

/// The two sockets of a port pair.
#[derive(Debug)]
pub struct PortPair {
    /// RTP, on the even port.
    pub rtp: UdpSocket,
    /// RTCP, on the next port.
    pub rtcp: UdpSocket,
}

impl PortPair {
    /// The RTP port.
    pub fn port(&self) -> u16 {
        self.rtp.local_addr().map_or(0, |a| a.port())
    }
}

/// Hands out port pairs from a range.
#[derive(Debug)]
pub struct PortAllocator {
    address: IpAddr,
    range: PortRange,
    cursor: AtomicU32,
    /// Whether the RTP sockets' buffer sizes were logged (once: they are the same for all).
    buffers_logged: AtomicBool,
}

impl PortAllocator {
    /// An allocator binding on `address` within `range`.
    pub fn new(address: IpAddr, range: PortRange) -> PortAllocator {
        let start = rand::random::<u32>() % range.pairs().max(1);
        PortAllocator {
            address,
            range,
            cursor: AtomicU32::new(start),
            buffers_logged: AtomicBool::new(false),
        }
    }

    /// Binds the next free pair; an error when every pair of the range is taken.
    pub fn allocate(&self) -> io::Result<PortPair> {
        let pairs = self.range.pairs();
        for _ in 0..pairs {
            let i = self.cursor.fetch_add(1, Ordering::Relaxed) % pairs.max(1);
            let port = (self.range.base() + 2 * i) as u16;
            let Ok(rtp) = bind(SocketAddr::new(self.address, port)) else {
                continue;
            };
            let Ok(rtcp) = bind(SocketAddr::new(self.address, port + 1)) else {
                continue;
            };
            // Only RTP carries a packet every 20 ms; RTCP keeps the default buffers and is not
            // stamped (the relay's delay histogram is RTP's).
            if let Err(e) = stamped::enable(&rtp) {
                tracing::debug!("RTP socket: no receive timestamps: {e}");
            }
            let granted = buffers::enlarge(&rtp);
            if !self.buffers_logged.swap(true, Ordering::Relaxed) {
                match granted {
                    Ok(g) => tracing::debug!(
                        "RTP sockets: receive buffer {} bytes, send buffer {} bytes (asked {} and {})",
                        g.receive,
                        g.send,
                        buffers::RECEIVE_BUFFER,
                        buffers::SEND_BUFFER
                    ),
                    Err(e) => tracing::debug!("RTP sockets: buffer sizes unknown: {e}"),
                }
            }
            return Ok(PortPair { rtp, rtcp });
        }
        Err(io::Error::new(
            io::ErrorKind::AddrInUse,
            format!("no free RTP port pair in {}", self.range),
        ))
    }
}

fn bind(addr: SocketAddr) -> io::Result<UdpSocket> {
    let s = std::net::UdpSocket::bind(addr)?;
    s.set_nonblocking(true)?;
    UdpSocket::from_std(s)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges() {
        let r: PortRange = "20000-29999".parse().unwrap();
        assert_eq!((r.first, r.last, r.pairs()), (20000, 29999, 5000));
        assert_eq!(r.to_string(), "20000-29999");
        assert_eq!("20001-20003".parse::<PortRange>().unwrap().pairs(), 1);
        assert_eq!(" 3000 - 3001 ".parse::<PortRange>().unwrap().pairs(), 1);
        for bad in [
            "",
            "20000",
            "20000-",
            "a-b",
            "30000-20000",
            "20000-20000",
            "20001-20002",
            "80-90",
            "1-65536",
        ] {
            assert_eq!(bad.parse::<PortRange>(), Err(PortRangeError), "{bad}");
        }
    }

    #[tokio::test]
    async fn pairs_are_even_odd_and_distinct_until_the_range_is_full() {
        // A small range on loopback; ports taken by others are skipped, so only check what
        // we got.
        let first = 41_000 + (std::process::id() % 1000) as u16 * 20;
        let range = PortRange {
            first,
            last: first + 7,
        };
        let a = PortAllocator::new("127.0.0.1".parse().unwrap(), range);
        let mut got = Vec::new();
        while let Ok(pair) = a.allocate() {
            let (p, q) = (pair.port(), pair.rtcp.local_addr().unwrap().port());
            assert_eq!((p % 2, q), (0, p + 1));
            assert!((first..=first + 7).contains(&p));
            if let Some(expected) = buffers::expected_here() {
                let rtp = socket2::SockRef::from(&pair.rtp);
                assert_eq!(rtp.recv_buffer_size().unwrap(), expected.receive);
                assert_eq!(rtp.send_buffer_size().unwrap(), expected.send);
            }
            got.push(pair);
        }
        let mut ports: Vec<u16> = got.iter().map(PortPair::port).collect();
        ports.sort();
        ports.dedup();
        assert_eq!(ports.len(), got.len());
        assert!(got.len() <= 4);
        let e = a.allocate().unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::AddrInUse);
        // A range built by hand with no pair in it is an error, not a panic.
        let none = PortAllocator::new(
            "127.0.0.1".parse().unwrap(),
            PortRange {
                first: 5001,
                last: 5001,
            },
        );
        assert!(none.allocate().is_err());
        // Released pairs are reused.
        if !got.is_empty() {
            got.pop();
            assert!(a.allocate().is_ok());
        }
    }
}
