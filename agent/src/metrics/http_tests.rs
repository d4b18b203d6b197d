//! The HTTP answers, against a listener on loopback with a fixed body.
use std::{net::SocketAddr, time::Duration};

use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::{TcpListener, TcpStream},
};

use super::{http::run, CONTENT_TYPE};

/// Sends `request` to `addr` and reads the whole response (bounded in time).
async fn exchange(addr: SocketAddr, request: &[u8]) -> String {
    let talk = async {
        let mut stream = TcpStream::connect(addr).await.expect("connect");
        stream.write_all(request).await.expect("send");
        let mut response = String::new();
        stream.read_to_string(&mut response).await.expect("receive");
        response
    };
    tokio::time::timeout(Duration::from_secs(5), talk)
        .await
        .expect("answered in time")
}

#[tokio::test]
async fn http_answers_200_404_405_400_431_and_500() {
    let listener = TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind loopback");
    let addr = listener.local_addr().expect("local address");
    let server = tokio::spawn(run(listener, || async {
        Ok("ward_test 1\n# EOF\n".to_owned())
    }));

    let ok = exchange(
        addr,
        b"GET /metrics HTTP/1.1\r\nHost: x\r\nAccept: */*\r\n\r\n",
    )
    .await;
    assert!(ok.starts_with("HTTP/1.1 200 OK\r\n"), "{ok}");
    // Header names are case-insensitive (hyper writes them in lower case).
    let head = ok.to_ascii_lowercase();
    assert!(
        head.contains(&format!("\r\ncontent-type: {CONTENT_TYPE}\r\n")),
        "{ok}"
    );
    assert!(head.contains("\r\ncontent-length: 18\r\n"), "{ok}");
    assert!(ok.ends_with("\r\n\r\nward_test 1\n# EOF\n"), "{ok}");
    let query = exchange(addr, b"GET /metrics?x=1 HTTP/1.0\r\n\r\n").await;
    assert!(
        query.starts_with("HTTP/1.0 200 OK\r\n") || query.starts_with("HTTP/1.1 200 OK\r\n"),
        "{query}"
    );

    let missing = exchange(addr, b"GET / HTTP/1.1\r\n\r\n").await;
    assert!(
        missing.starts_with("HTTP/1.1 404 Not Found\r\n"),
        "{missing}"
    );
    let post = exchange(
        addr,
        b"POST /metrics HTTP/1.1\r\nContent-Length: 3\r\n\r\nabc",
    )
    .await;
    assert!(
        post.starts_with("HTTP/1.1 405 Method Not Allowed\r\n"),
        "{post}"
    );
    assert!(
        post.to_ascii_lowercase().contains("\r\nallow: get\r\n"),
        "{post}"
    );
    let garbage = exchange(addr, b"hello\r\n\r\n").await;
    assert!(
        garbage.starts_with("HTTP/1.1 400 Bad Request\r\n"),
        "{garbage}"
    );
    let huge = [
        b"GET /metrics HTTP/1.1\r\nX: ".as_slice(),
        &[b'a'; 10_000],
        b"\r\n\r\n",
    ]
    .concat();
    let huge = exchange(addr, &huge).await;
    assert!(
        huge.starts_with("HTTP/1.1 431 Request Header Fields Too Large\r\n"),
        "{huge}"
    );
    server.abort();

    let listener = TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind loopback");
    let addr = listener.local_addr().expect("local address");
    let server = tokio::spawn(run(listener, || async {
        Err("map WARD_CT: gone".to_owned())
    }));
    let failed = exchange(addr, b"GET /metrics HTTP/1.1\r\n\r\n").await;
    assert!(
        failed.starts_with("HTTP/1.1 500 Internal Server Error\r\n"),
        "{failed}"
    );
    assert!(failed.ends_with("map WARD_CT: gone\n"), "{failed}");
    server.abort();
}
