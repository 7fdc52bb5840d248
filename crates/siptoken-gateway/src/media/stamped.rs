//! Reading a UDP socket with the kernel's receive timestamp of each datagram, so that the
//! relay can measure how long the gateway held a packet: from the moment the kernel queued it
//! on the socket (`SO_TIMESTAMPNS`, read back with `recvmsg`) to the moment its relayed copy
//! was sent. Time spent waiting in the socket's receive buffer for a reader — the part of the
//! delay that grows when the gateway is short of CPU — is counted, which a timestamp taken
//! after `recv_from` returns would miss.
//!
//! Written here because tokio's `UdpSocket` has no `recvmsg` with control messages; `nix`
//! does the system call and parses the control message (no unsafe code here), and tokio's
//! readiness ([`UdpSocket::async_io`], [`UdpSocket::try_io`]) drives it.
//!
//! The kernel stamps with `CLOCK_REALTIME`; the stamp becomes an [`Instant`] by subtracting
//! its age (`SystemTime::now()` minus the stamp, read together with `Instant::now()`) from the
//! monotonic clock. A stamp from the future (the wall clock stepped back) or a missing stamp
//! counts as "arrived now". Linux only (`SO_TIMESTAMPNS`); elsewhere every datagram counts as
//! arrived when it was read.

use std::io;
use std::net::SocketAddr;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use tokio::io::Interest;
use tokio::net::UdpSocket;

#[cfg(target_os = "linux")]
use linux::{read, stamp_socket, CONTROL_SPACE};
#[cfg(not(target_os = "linux"))]
use portable::{read, stamp_socket, CONTROL_SPACE};

/// One datagram read into the caller's buffer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Datagram {
    /// Its length in the buffer.
    pub len: usize,
    /// Where it came from.
    pub source: SocketAddr,
    /// When the kernel received it (`now` when the kernel gave no stamp).
    pub arrived: Instant,
}

/// Asks the kernel to stamp every datagram `socket` receives (Linux; elsewhere datagrams
/// count as arrived when read).
pub fn enable(socket: &UdpSocket) -> io::Result<()> {
    stamp_socket(socket)
}

/// The room a receive needs for its control message (one `SCM_TIMESTAMPNS`); one per reader,
/// reused for every datagram.
pub fn control_buffer() -> Vec<u8> {
    vec![0; CONTROL_SPACE]
}

/// Waits for a datagram and reads it into `buf`, with its receive time.
pub async fn recv_from(
    socket: &UdpSocket,
    buf: &mut [u8],
    control: &mut [u8],
) -> io::Result<Datagram> {
    socket
        .async_io(Interest::READABLE, || read(socket, buf, control))
        .await
}

/// Reads a datagram already waiting on `socket` (`WouldBlock` when there is none).
pub fn try_recv_from(
    socket: &UdpSocket,
    buf: &mut [u8],
    control: &mut [u8],
) -> io::Result<Datagram> {
    socket.try_io(Interest::READABLE, || read(socket, buf, control))
}

#[cfg(target_os = "linux")]
mod linux {
    use std::io::{self, IoSliceMut};
    use std::net::{SocketAddr, SocketAddrV4, SocketAddrV6};
    use std::os::fd::AsRawFd;
    use std::time::{Instant, SystemTime};

    use nix::sys::socket::{
        self, recvmsg, sockopt, ControlMessageOwned, MsgFlags, SockaddrStorage,
    };
    use nix::sys::time::TimeSpec;
    use tokio::net::UdpSocket;

    use super::{arrival, Datagram};

    /// Room for one `SCM_TIMESTAMPNS` control message (`CMSG_SPACE(sizeof(timespec))`).
    pub const CONTROL_SPACE: usize = 64;

    pub fn stamp_socket(socket: &UdpSocket) -> io::Result<()> {
        socket::setsockopt(socket, sockopt::ReceiveTimestampns, &true).map_err(io::Error::from)
    }

    /// One non-blocking `recvmsg`.
    pub fn read(socket: &UdpSocket, buf: &mut [u8], control: &mut [u8]) -> io::Result<Datagram> {
        let mut iov = [IoSliceMut::new(buf)];
        let msg = recvmsg::<SockaddrStorage>(
            socket.as_raw_fd(),
            &mut iov,
            Some(control),
            MsgFlags::MSG_DONTWAIT,
        )
        .map_err(io::Error::from)?;
        let source = msg.address.as_ref().and_then(socket_addr).ok_or_else(|| {
            io::Error::new(io::ErrorKind::InvalidData, "datagram without a source")
        })?;
        let mut stamp = None;
        // (A truncated control message leaves the datagram unstamped, not unread.)
        if let Ok(cmsgs) = msg.cmsgs() {
            for c in cmsgs {
                if let ControlMessageOwned::ScmTimestampns(ts) = c {
                    stamp = since_epoch(ts);
                }
            }
        }
        Ok(Datagram {
            len: msg.bytes,
            source,
            arrived: arrival(stamp, SystemTime::now(), Instant::now()),
        })
    }

    fn since_epoch(ts: TimeSpec) -> Option<std::time::Duration> {
        let secs = u64::try_from(ts.tv_sec()).ok()?;
        let nanos = u32::try_from(ts.tv_nsec()).ok()?;
        Some(std::time::Duration::new(secs, nanos))
    }

    fn socket_addr(a: &SockaddrStorage) -> Option<SocketAddr> {
        if let Some(v4) = a.as_sockaddr_in() {
            return Some(SocketAddr::V4(SocketAddrV4::from(*v4)));
        }
        let v6 = a.as_sockaddr_in6()?;
        Some(SocketAddr::V6(SocketAddrV6::from(*v6)))
    }
}

#[cfg(not(target_os = "linux"))]
mod portable {
    use std::io;
    use std::time::Instant;

    use tokio::net::UdpSocket;

    use super::Datagram;

    pub const CONTROL_SPACE: usize = 0;

    pub fn stamp_socket(_: &UdpSocket) -> io::Result<()> {
        Ok(())
    }

    pub fn read(socket: &UdpSocket, buf: &mut [u8], _: &mut [u8]) -> io::Result<Datagram> {
        let (len, source) = socket.try_recv_from(buf)?;
        Ok(Datagram {
            len,
            source,
            arrived: Instant::now(),
        })
    }
}

/// The [`Instant`] of a kernel stamp (time since the Unix epoch), given the wall clock and
/// the monotonic clock read at the same moment.
fn arrival(stamp: Option<Duration>, wall_now: SystemTime, now: Instant) -> Instant {
    let Some(since_epoch) = stamp else { return now };
    match wall_now.duration_since(UNIX_EPOCH + since_epoch) {
        Ok(age) => now.checked_sub(age).unwrap_or(now),
        Err(_) => now,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The stamp is the kernel's, not the read's: a datagram left 60 ms in the receive buffer
    /// arrived 60 ms before it was read.
    #[tokio::test]
    async fn a_datagram_left_waiting_is_stamped_when_it_arrived_not_when_it_was_read() {
        let rx = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        enable(&rx).unwrap();
        let tx = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        tx.send_to(b"hello", rx.local_addr().unwrap())
            .await
            .unwrap();
        let sent = Instant::now();
        std::thread::sleep(Duration::from_millis(60));
        let mut buf = [0u8; 64];
        let mut control = control_buffer();
        let d = recv_from(&rx, &mut buf, &mut control).await.unwrap();
        let read = Instant::now();
        assert_eq!(&buf[..d.len], b"hello");
        assert_eq!(d.source, tx.local_addr().unwrap());
        let waited = read.duration_since(d.arrived);
        assert!(waited >= Duration::from_millis(55), "{waited:?}");
        assert!(d.arrived >= sent.checked_sub(Duration::from_millis(5)).unwrap());
        // Nothing else waiting.
        let e = try_recv_from(&rx, &mut buf, &mut control).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::WouldBlock);
    }

    #[tokio::test]
    async fn an_unstamped_socket_reads_as_arrived_now_and_ipv6_sources_are_kept() {
        let rx = UdpSocket::bind("[::1]:0").await.expect("IPv6 loopback");
        let tx = UdpSocket::bind("[::1]:0").await.unwrap();
        tx.send_to(b"x", rx.local_addr().unwrap()).await.unwrap();
        std::thread::sleep(Duration::from_millis(30));
        let mut buf = [0u8; 8];
        let mut control = control_buffer();
        let before = Instant::now();
        let d = recv_from(&rx, &mut buf, &mut control).await.unwrap();
        assert_eq!(d.source, tx.local_addr().unwrap());
        assert!(
            d.arrived >= before,
            "no stamp asked for: arrived is the read"
        );
    }

    #[test]
    fn stamps_become_instants() {
        let now = Instant::now();
        let wall = SystemTime::now();
        let age = Duration::from_micros(1500);
        let stamped = wall.duration_since(UNIX_EPOCH).unwrap() - age;
        assert_eq!(arrival(Some(stamped), wall, now), now - age);
        // From the future (the wall clock stepped back), or none: now.
        let later = stamped + Duration::from_secs(5);
        assert_eq!(arrival(Some(later), wall, now), now);
        assert_eq!(arrival(None, wall, now), now);
    }

    #[test]
    fn the_control_buffer_holds_a_timestamp() {
        #[cfg(target_os = "linux")]
        assert!(nix::cmsg_space!(nix::sys::time::TimeSpec).len() <= linux::CONTROL_SPACE);
    }
}
