//! Graceful shutdown: on SIGTERM `cardgate` stops accepting, lets the requests in flight
//! finish, and exits 0.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use crate::running::Dev;

/// The password grant of alice, as a form body.
const FORM: &str = "grant_type=password&username=alice&password=alice-dev-password\
                    &service=registry.dev.local&scope=repository%3Aacme%2Fweb%3Apull";

/// Reads one response whose body has a `Content-Length`; returns the head and the body.
fn read_response(stream: &mut TcpStream) -> (String, String) {
    let mut buffer = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        let text = String::from_utf8_lossy(&buffer).into_owned();
        if let Some((head, body)) = text.split_once("\r\n\r\n") {
            let length = head
                .lines()
                .find_map(|l| {
                    let (name, value) = l.split_once(':')?;
                    name.eq_ignore_ascii_case("content-length")
                        .then(|| value.trim().parse::<usize>().ok())?
                })
                .unwrap_or(0);
            if body.len() >= length {
                return (head.to_owned(), body.to_owned());
            }
        }
        let read = stream.read(&mut chunk).unwrap();
        assert!(read > 0, "connection closed mid-response: {text:?}");
        buffer.extend_from_slice(&chunk[..read]);
    }
}

/// A connection the server has certainly accepted (it answered a request on it), holding a
/// token request whose body is only half sent.
fn held_request(base: &str) -> TcpStream {
    let address = base.trim_start_matches("http://");
    let mut stream = TcpStream::connect(address).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    stream
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: cardgate\r\n\r\n")
        .unwrap();
    let (head, _) = read_response(&mut stream);
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    let (first, _) = FORM.split_at(FORM.len() / 2);
    write!(
        stream,
        "POST /v1/registry HTTP/1.1\r\nHost: cardgate\r\nConnection: close\r\n\
         Content-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\n\r\n{first}",
        FORM.len()
    )
    .unwrap();
    stream.flush().unwrap();
    stream
}

#[tokio::test]
async fn sigterm_finishes_requests_in_flight_refuses_new_ones_and_exits_0() {
    let mut dev = Dev::start(&[("CARDGATE__SERVER__SHUTDOWN_TIMEOUT_SECONDS", "20")]).await;
    let held: Vec<TcpStream> = (0..3).map(|_| held_request(&dev.base)).collect();
    // Let the handlers start reading the bodies.
    tokio::time::sleep(Duration::from_millis(300)).await;

    let signalled = Instant::now();
    dev.signal("TERM").await;
    tokio::time::sleep(Duration::from_millis(500)).await;

    // New connections are refused while the old ones finish.
    let address = dev.base.trim_start_matches("http://").to_owned();
    let refused = TcpStream::connect(&address);
    assert!(
        refused.is_err(),
        "a new connection was accepted after SIGTERM"
    );
    assert!(dev.child.try_wait().unwrap().is_none(), "exited too early");

    // The requests in flight complete, with tokens.
    let (_, second) = FORM.split_at(FORM.len() / 2);
    for mut stream in held {
        stream.write_all(second.as_bytes()).unwrap();
        let (head, body) = read_response(&mut stream);
        assert!(head.starts_with("HTTP/1.1 200"), "{head}\n{body}");
        let body: serde_json::Value = serde_json::from_str(&body).unwrap();
        assert!(body["access_token"].as_str().is_some_and(|t| !t.is_empty()));
    }

    let status = dev.exit_status().await;
    assert!(status.success(), "{status:?}\n{}", dev.logs());
    assert!(
        signalled.elapsed() < Duration::from_secs(20),
        "shutdown took the whole timeout"
    );
    assert!(
        dev.logs()
            .contains("SIGTERM received; starting graceful shutdown")
    );
}
