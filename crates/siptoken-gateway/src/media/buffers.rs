//! Kernel socket buffers for the media sockets: the shared WebRTC socket, which takes every
//! browser's datagrams, and each call's SIP-leg RTP socket.
//!
//! Under load the gateway's threads are sometimes not scheduled for a few milliseconds; the
//! datagrams arriving meanwhile wait in the socket's receive buffer, and once it is full the
//! kernel drops them (the `drops` column of `/proc/net/udp`). The default buffer
//! (`net.core.rmem_default`, 208 KiB on Linux) holds only a few milliseconds of hundreds of
//! calls' packets, so the gateway asks for [`RECEIVE_BUFFER`] and [`SEND_BUFFER`]. The kernel
//! grants at most `net.core.rmem_max` / `net.core.wmem_max` (Linux then doubles the value for
//! its bookkeeping), silently: production hosts should raise those (see
//! `docs/gateway-protocol.md`, "Media"). A buffer is a limit, not an allocation: memory is used
//! only while datagrams wait in it.

use std::io;

use tokio::net::UdpSocket;

/// The receive buffer asked for on each media socket.
pub const RECEIVE_BUFFER: usize = 4 << 20;

/// The send buffer asked for on each media socket (a full one makes a send fail, and the
/// datagram is lost).
pub const SEND_BUFFER: usize = 1 << 20;

/// The buffer sizes a socket has, as the kernel reports them (Linux: twice what it granted).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Granted {
    /// `SO_RCVBUF`.
    pub receive: usize,
    /// `SO_SNDBUF`.
    pub send: usize,
}

impl Granted {
    /// Whether the receive buffer is smaller than [`RECEIVE_BUFFER`] (the host's
    /// `net.core.rmem_max` is below it).
    pub fn receive_capped(&self) -> bool {
        self.receive < RECEIVE_BUFFER
    }
}

/// Asks for [`RECEIVE_BUFFER`] and [`SEND_BUFFER`] on `socket` (best effort: the kernel caps
/// both) and returns what it has now. An error only when the sizes cannot be read back.
pub fn enlarge(socket: &UdpSocket) -> io::Result<Granted> {
    let s = socket2::SockRef::from(socket);
    if let Err(e) = s.set_recv_buffer_size(RECEIVE_BUFFER) {
        tracing::debug!("media socket: receive buffer not enlarged: {e}");
    }
    if let Err(e) = s.set_send_buffer_size(SEND_BUFFER) {
        tracing::debug!("media socket: send buffer not enlarged: {e}");
    }
    Ok(Granted {
        receive: s.recv_buffer_size()?,
        send: s.send_buffer_size()?,
    })
}

/// What [`enlarge`] grants on this host, from `/proc/sys/net/core/{r,w}mem_max` (Linux: the
/// smaller of the ask and the limit, reported doubled); `None` where they cannot be read.
#[cfg(test)]
pub(crate) fn expected_here() -> Option<Granted> {
    fn sysctl(name: &str) -> Option<usize> {
        std::fs::read_to_string(format!("/proc/sys/net/core/{name}"))
            .ok()?
            .trim()
            .parse()
            .ok()
    }
    Some(Granted {
        receive: 2 * RECEIVE_BUFFER.min(sysctl("rmem_max")?),
        send: 2 * SEND_BUFFER.min(sysctl("wmem_max")?),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn buffers_grow_to_what_the_kernel_allows() {
        let socket = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let before = socket2::SockRef::from(&socket).recv_buffer_size().unwrap();
        let granted = enlarge(&socket).unwrap();
        let s = socket2::SockRef::from(&socket);
        assert_eq!(
            granted,
            Granted {
                receive: s.recv_buffer_size().unwrap(),
                send: s.send_buffer_size().unwrap(),
            },
            "the figures are read back from the socket"
        );
        assert!(granted.receive >= before, "{granted:?} < {before}");
        if let Some(expected) = expected_here() {
            assert_eq!(granted, expected);
            assert_eq!(granted.receive_capped(), expected.receive < RECEIVE_BUFFER);
        }
    }
}
