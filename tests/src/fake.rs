//! Scripted fake brokers for client tests: a loopback listener that hands
//! each accepted connection to a script, and the native frame reader those
//! scripts share.

use std::future::Future;
use std::net::SocketAddr;

use serde::Serialize;
use serde::de::DeserializeOwned;
use sluice_protocol::wire::{ResponseHeader, decode_body, encode_body};
use tokio::io::AsyncReadExt;
use tokio::net::{TcpListener, TcpStream};

/// Reads one whole native frame (its 4-byte length prefix included).
pub async fn read_frame(s: &mut TcpStream) -> std::io::Result<Vec<u8>> {
    let mut frame = vec![0u8; 4];
    s.read_exact(&mut frame).await?;
    let len = u32::from_be_bytes([frame[0], frame[1], frame[2], frame[3]]) as usize;
    frame.resize(4 + len, 0);
    s.read_exact(&mut frame[4..]).await?;
    Ok(frame)
}

/// `response` (one whole native response frame) with its body decoded as
/// `T`, changed by `edit`, and encoded again under the same header (a tail
/// after the body is dropped).
pub fn edited_response<T: Serialize + DeserializeOwned>(
    response: &[u8],
    edit: impl FnOnce(&mut T),
) -> Vec<u8> {
    let (header, _tail) = ResponseHeader::decode(response).expect("a response header");
    let body = &response[14..14 + header.body_len as usize];
    let mut value: T = decode_body(body).expect("a response body");
    edit(&mut value);
    let mut out = Vec::new();
    encode_body(&value, &mut out);
    let header = ResponseHeader {
        body_len: out.len() as u32,
        ..header
    }
    .encode(0)
    .expect("a response header");
    [&header[..], &out].concat()
}

/// Listens on a free loopback port and runs `script(connection, own
/// address)` on a task of its own for every connection accepted, until the
/// runtime ends. Returns the address.
pub async fn spawn<F, Fut>(script: F) -> SocketAddr
where
    F: Fn(TcpStream, SocketAddr) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = std::io::Result<()>> + Send + 'static,
{
    let listener = TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind a loopback port");
    let addr = listener.local_addr().expect("bound address");
    tokio::spawn(async move {
        while let Ok((client, _)) = listener.accept().await {
            tokio::spawn(script(client, addr));
        }
    });
    addr
}
