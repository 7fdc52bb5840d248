//! The client side of WebSockets over HTTP/2 (RFC 8441), shared by the gateway tests
//! (`tests/gateway/harness.rs`) and the load tool (`examples/gateway_load.rs`): an HTTP/2
//! connection with prior knowledge, and extended CONNECT streams on it.

/// Sends requests on one HTTP/2 connection (cheap to clone: one per stream).
pub type H2Sender = hyper::client::conn::http2::SendRequest<http_body_util::Empty<bytes::Bytes>>;

/// The byte stream under one WebSocket carried by an HTTP/2 stream.
pub type H2Stream = hyper_util::rt::TokioIo<hyper::upgrade::Upgraded>;

/// Opens an HTTP/2 connection (prior knowledge, h2c) over `tcp`; the connection is driven by a
/// task of its own until every sender is dropped.
pub async fn handshake(tcp: tokio::net::TcpStream) -> Result<H2Sender, String> {
    let _ = tcp.set_nodelay(true);
    let (send, conn) =
        hyper::client::conn::http2::Builder::new(hyper_util::rt::TokioExecutor::new())
            .handshake(hyper_util::rt::TokioIo::new(tcp))
            .await
            .map_err(|e| format!("HTTP/2 handshake: {e}"))?;
    tokio::spawn(conn);
    Ok(send)
}

/// Sends an extended CONNECT for `/ws` on `authority` (with `origin`, if any) and returns the
/// response status with, when it is 200, the stream to run the WebSocket on.
///
/// A client may send an extended CONNECT only once the server's SETTINGS allowing it have
/// arrived, so right after [`handshake`] the request is retried for up to about a second.
pub async fn extended_connect(
    send: &H2Sender,
    authority: &str,
    origin: Option<&str>,
) -> Result<(u16, Option<H2Stream>), String> {
    let mut attempts = 0;
    let mut resp = loop {
        let mut req = hyper::Request::builder()
            .method(hyper::Method::CONNECT)
            .uri(format!("http://{authority}/ws"))
            .header("sec-websocket-version", "13")
            .extension(hyper::ext::Protocol::from_static("websocket"));
        if let Some(o) = origin {
            req = req.header("origin", o);
        }
        let req = req
            .body(http_body_util::Empty::new())
            .map_err(|e| format!("request: {e}"))?;
        match send.clone().send_request(req).await {
            Ok(r) => break r,
            Err(_) if attempts < 100 => {
                attempts += 1;
                tokio::time::sleep(std::time::Duration::from_millis(10)).await;
            }
            Err(e) => return Err(format!("extended CONNECT: {e}")),
        }
    };
    let status = resp.status().as_u16();
    if status != 200 {
        return Ok((status, None));
    }
    let upgraded = hyper::upgrade::on(&mut resp)
        .await
        .map_err(|e| format!("upgrade: {e}"))?;
    Ok((status, Some(hyper_util::rt::TokioIo::new(upgraded))))
}
