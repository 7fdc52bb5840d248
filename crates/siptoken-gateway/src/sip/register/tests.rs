//! The driver on real loopback sockets against a registrar played by the test: what the
//! machine's unit tests cannot show (the shared UDP socket's ICMP errors, a connection that
//! closes).

use super::*;
use crate::sip::message::{self, Message};
use std::net::{Ipv4Addr, SocketAddr};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream, UdpSocket};

const WITHIN: Duration = Duration::from_secs(5);

fn lo() -> IpAddr {
    IpAddr::from(Ipv4Addr::LOCALHOST)
}

fn account(kind: Kind, port: u16) -> Account {
    Account::new(AccountClaims {
        login: "crm1",
        domain: "sip.test",
        auth_name: "crm1",
        password: "pw",
        display_name: None,
        outbound_proxy: Some("127.0.0.1"),
        port: Some(port),
        transport: Some(kind),
    })
    .unwrap()
}

fn settings() -> SipSettings {
    SipSettings {
        bind: lo(),
        t1: Duration::from_millis(100),
        t2: Duration::from_millis(400),
        transaction_timeout: Duration::from_secs(5),
        ..SipSettings::default()
    }
}

fn task(account: Account, events: mpsc::UnboundedSender<(u64, Report)>) -> Task {
    Task {
        account,
        settings: settings(),
        calls: None,
        metrics: Arc::new(Metrics::default()),
        reports: Reports { id: 1, events },
    }
}

async fn event(events: &mut mpsc::UnboundedReceiver<(u64, Report)>) -> Event {
    match tokio::time::timeout(WITHIN, events.recv())
        .await
        .expect("an event in time")
        .expect("the task is alive")
        .1
    {
        Report::Registration(e) => e,
        other => panic!("not a registration event: {other:?}"),
    }
}

/// Issue 14 item 5: one ICMP port-unreachable on the shared UDP socket (forged by anyone who
/// can guess its port, or from a registrar that restarts) ended every registration waiting on
/// it. Now the registration keeps retransmitting, and the registrar's answer to a
/// retransmission registers it.
#[tokio::test]
async fn one_icmp_error_does_not_end_a_registration() {
    let peer: SocketAddr = {
        let s = std::net::UdpSocket::bind((lo(), 0)).unwrap();
        s.local_addr().unwrap()
    };
    let (tx, mut events) = mpsc::unbounded_channel();
    // The first REGISTER meets a closed port: the kernel answers with ICMP.
    let _commands = spawn(task(account(Kind::Udp, peer.port()), tx), ());
    tokio::time::sleep(Duration::from_millis(50)).await;
    let registrar = UdpSocket::bind(peer).await.unwrap();
    let answer = async {
        let mut buf = vec![0u8; 65535];
        let (n, from) = registrar.recv_from(&mut buf).await.unwrap();
        let (req, _) = message::parse(&buf[..n], false).unwrap();
        let ok = message::response_to(&req, 200, "OK", "r1", "Expires: 600\r\n");
        registrar.send_to(ok.as_bytes(), from).await.unwrap();
    };
    tokio::time::timeout(WITHIN, answer)
        .await
        .expect("a retransmission reaches the registrar");
    assert_eq!(event(&mut events).await, Event::Registered { expires: 600 });
}

/// Reads one SIP message from a TCP stream.
async fn read_message(s: &mut TcpStream, buf: &mut Vec<u8>) -> Message {
    loop {
        match message::parse(buf, true) {
            Ok((m, used)) => {
                buf.drain(..used);
                return m;
            }
            Err(message::ParseError::Incomplete) => {}
            Err(e) => panic!("{e}"),
        }
        let n = tokio::time::timeout(WITHIN, s.read_buf(buf))
            .await
            .expect("a message in time")
            .unwrap();
        assert!(n > 0, "the gateway closed the connection");
    }
}

/// The driver's glue on TCP: register, answer an OPTIONS, replace a connection the registrar
/// closed (the new REGISTER removes the old Contact), unregister when the session goes away.
#[tokio::test]
async fn registers_answers_reconnects_and_unregisters_over_tcp() {
    let registrar = TcpListener::bind((lo(), 0)).await.unwrap();
    let port = registrar.local_addr().unwrap().port();
    let (tx, mut events) = mpsc::unbounded_channel();
    let task = task(account(Kind::Tcp, port), tx);
    let metrics = task.metrics.clone();
    let commands = spawn(task, ());

    let (mut conn, _) = registrar.accept().await.unwrap();
    let mut buf = Vec::new();
    let req = read_message(&mut conn, &mut buf).await;
    assert_eq!(req.list("contact").len(), 1);
    let ok = message::response_to(&req, 200, "OK", "r1", "");
    conn.write_all(ok.as_bytes()).await.unwrap();
    assert_eq!(event(&mut events).await, Event::Registered { expires: 600 });

    let options =
        "OPTIONS sip:st-x@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/TCP 127.0.0.1;branch=z9hG4bKo\r\n\
                   From: <sip:ka@x>;tag=9\r\nTo: <sip:st-x@x>\r\nCall-ID: ka\r\nCSeq: 4 OPTIONS\r\n\
                   Content-Length: 0\r\n\r\n";
    conn.write_all(options.as_bytes()).await.unwrap();
    let answer = read_message(&mut conn, &mut buf).await;
    assert_eq!(
        (answer.code(), answer.cseq()),
        (Some(200), Some((4, "OPTIONS")))
    );

    // The registrar closes the idle connection: a new one, and a REGISTER on it that also
    // removes the old Contact.
    drop(conn);
    let (mut conn, _) = tokio::time::timeout(WITHIN, registrar.accept())
        .await
        .unwrap()
        .unwrap();
    let mut buf = Vec::new();
    let req = read_message(&mut conn, &mut buf).await;
    let contacts = req.list("contact");
    assert_eq!(contacts.len(), 2, "{contacts:?}");
    assert!(contacts[1].ends_with(";expires=0"), "{contacts:?}");
    let ok = message::response_to(&req, 200, "OK", "r1", "");
    conn.write_all(ok.as_bytes()).await.unwrap();
    assert_eq!(event(&mut events).await, Event::Registered { expires: 600 });

    drop(commands);
    let req = read_message(&mut conn, &mut buf).await;
    assert_eq!(req.header("expires"), Some("0"));
    let ok = message::response_to(&req, 200, "OK", "r1", "");
    conn.write_all(ok.as_bytes()).await.unwrap();
    assert_eq!(event(&mut events).await, Event::Unregistered);
    assert_eq!(metrics.sip_transactions.load(Ordering::Relaxed), 3);
    assert_eq!(metrics.sip_requests_answered.load(Ordering::Relaxed), 1);
    assert_eq!(metrics.refreshes.load(Ordering::Relaxed), 1);
}

#[test]
fn settings_give_the_machine_its_timers() {
    let t = SipSettings {
        expires: 120,
        transaction_timeout: Duration::from_secs(9),
        tcp_keepalive: Duration::ZERO,
        ..SipSettings::default()
    }
    .timing();
    assert_eq!(
        (t.expires, t.timer_f, t.keepalive, t.t1),
        (
            120,
            Duration::from_secs(9),
            Duration::ZERO,
            Duration::from_millis(500)
        )
    );
}
