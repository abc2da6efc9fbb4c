//! Slow clients: a body must arrive within `server.body_timeout_seconds` (408), and one client
//! address has at most `server.max_requests_per_address` requests in progress (429), so that
//! hundreds of connections trickling their bodies never keep other clients out.

use std::net::{IpAddr, Ipv4Addr};
use std::time::{Duration, Instant};

use cardgate_server::Application;
use reqwest::StatusCode;
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::mpsc;
use tokio::task::JoinSet;

use crate::Sent;
use crate::cards::seeded;
use crate::cards_settings;
use crate::description;
use crate::{parse_answer, test_settings};

/// The slow connections held at once: as many as one address may have in progress.
const TRICKLERS: u32 = 300;
/// The body deadline of the test's server, in seconds.
const BODY_TIMEOUT: u64 = 8;
/// How often a trickler sends a byte of its body.
const TRICKLE_EVERY: Duration = Duration::from_secs(2);

/// What a trickler was answered: status, body, and how long after its head.
struct Answer {
    status: u16,
    body: String,
    after: Duration,
}

/// The head of a POST of a 1000-byte body to `path`.
fn head(address: &str, path: &str, content_type: &str, expect_continue: bool) -> String {
    let expect = if expect_continue {
        "Expect: 100-continue\r\n"
    } else {
        ""
    };
    format!(
        "POST {path} HTTP/1.1\r\nHost: {address}\r\nContent-Type: {content_type}\r\n\
         Content-Length: 1000\r\n{expect}\r\n"
    )
}

/// A slow client: sends a valid head asking `100 Continue`, waits for it (the server is then
/// reading its body), says so on `held`, then sends its body one byte every
/// [`TRICKLE_EVERY`] until shortly before the deadline, and returns what it is answered.
async fn trickle(address: String, path: &'static str, held: mpsc::Sender<()>) -> Answer {
    let content_type = if path.contains("admin") {
        "application/json"
    } else {
        "application/x-www-form-urlencoded"
    };
    let mut stream = TcpStream::connect(&address).await.unwrap();
    stream
        .write_all(head(&address, path, content_type, true).as_bytes())
        .await
        .unwrap();
    let started = Instant::now();
    let mut answer = Vec::new();
    let mut buffer = [0u8; 4096];
    while !answer.windows(4).any(|w| w == b"\r\n\r\n") {
        let read = stream.read(&mut buffer).await.unwrap();
        assert!(read > 0, "closed before 100 Continue");
        answer.extend_from_slice(&buffer[..read]);
    }
    let interim = String::from_utf8_lossy(&answer).into_owned();
    assert!(interim.starts_with("HTTP/1.1 100 Continue"), "{interim}");
    answer.clear();
    held.send(()).await.unwrap();
    // Stop sending a second before the deadline: the answer is then never lost to a reset.
    let stop_sending = Duration::from_secs(BODY_TIMEOUT - 1);
    loop {
        tokio::select! {
            read = stream.read(&mut buffer) => match read {
                Ok(0) | Err(_) => break,
                Ok(n) => answer.extend_from_slice(&buffer[..n]),
            },
            () = tokio::time::sleep(TRICKLE_EVERY), if started.elapsed() < stop_sending => {
                let _ = stream.write_all(b"x").await;
            }
        }
    }
    let (status, body) = parse_answer(&answer);
    Answer {
        status,
        body,
        after: started.elapsed(),
    }
}

#[tokio::test]
async fn hundreds_of_trickling_bodies_are_bounded_per_address_and_time_out_while_others_are_served()
{
    let (url, _, _) = seeded(None).await;
    let timeout = BODY_TIMEOUT.to_string();
    let limit = TRICKLERS.to_string();
    let settings = cards_settings(
        &url,
        &[
            ("CARDGATE__SERVER__BODY_TIMEOUT_SECONDS", &timeout),
            ("CARDGATE__SERVER__MAX_REQUESTS_PER_ADDRESS", &limit),
        ],
    );
    let app = Application::build(&settings).await.unwrap();
    let address = format!("127.0.0.1:{}", app.port());
    tokio::spawn(app.run_until_stopped());

    // 300 slow bodies from 127.0.0.1, to the token form and the admin login alike.
    let (held, mut holding) = mpsc::channel(TRICKLERS as usize);
    let mut tricklers = JoinSet::new();
    for i in 0..TRICKLERS {
        let path = if i % 2 == 0 {
            "/v1/registry"
        } else {
            "/v1/admin/login"
        };
        tricklers.spawn(trickle(address.clone(), path, held.clone()));
    }
    drop(held);
    for _ in 0..TRICKLERS {
        tokio::time::timeout(Duration::from_secs(30), holding.recv())
            .await
            .expect("the server never read all the slow bodies")
            .unwrap();
    }

    // The 301st from the same address is refused at once, long before any deadline.
    let started = Instant::now();
    let mut one_more = TcpStream::connect(&address).await.unwrap();
    one_more
        .write_all(
            head(
                &address,
                "/v1/registry",
                "application/x-www-form-urlencoded",
                false,
            )
            .as_bytes(),
        )
        .await
        .unwrap();
    one_more.write_all(b"g").await.unwrap();
    let mut raw = Vec::new();
    tokio::time::timeout(Duration::from_secs(5), one_more.read_to_end(&mut raw))
        .await
        .expect("the 301st slow request was not answered")
        .unwrap();
    let refused_after = started.elapsed();
    let (status, body) = parse_answer(&raw);
    assert_eq!(status, 429, "{body}");
    let body: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(body["error"], "too_many_requests");
    assert!(refused_after < Duration::from_secs(2), "{refused_after:?}");

    // Meanwhile, another client (127.0.0.2) is served promptly: tokens and admin logins.
    let other = reqwest::Client::builder()
        .local_address(IpAddr::V4(Ipv4Addr::new(127, 0, 0, 2)))
        .build()
        .unwrap();
    for _ in 0..5 {
        let started = Instant::now();
        let response = other
            .get(format!(
                "http://{address}/v1/registry?service=registry.test&scope=repository:acme/web:pull"
            ))
            .basic_auth("alice", Some("wonderland"))
            .sent()
            .await;
        assert_eq!(response.status(), StatusCode::OK);
        let body: Value = response.json().await.unwrap();
        assert!(body["token"].is_string());
        let login = other
            .post(format!("http://{address}/v1/admin/login"))
            .json(&json!({"username": "alice", "password": "wonderland"}))
            .sent()
            .await;
        assert_eq!(login.status(), StatusCode::OK);
        let took = started.elapsed();
        assert!(took < Duration::from_secs(3), "{took:?}");
    }

    // The slow bodies never arrive: each is answered 408 at the deadline, its connection closed.
    let all = tokio::time::timeout(Duration::from_secs(BODY_TIMEOUT + 20), async {
        let mut answers = Vec::new();
        while let Some(answer) = tricklers.join_next().await {
            answers.push(answer.unwrap());
        }
        answers
    })
    .await
    .expect("slow bodies were held beyond their deadline");
    assert_eq!(all.len(), TRICKLERS as usize);
    for answer in all {
        assert_eq!(answer.status, 408, "{}", answer.body);
        let body: Value = serde_json::from_str(&answer.body).unwrap();
        assert_eq!(body["error"], "invalid_request");
        assert!(
            description(&body).contains(&format!("within {BODY_TIMEOUT} seconds")),
            "{body}"
        );
        assert!(
            answer.after >= Duration::from_secs(BODY_TIMEOUT - 1),
            "{:?}",
            answer.after
        );
    }
}

#[tokio::test]
async fn a_chunked_body_that_never_ends_is_408_and_its_connection_closed() {
    let (settings, _) = test_settings(&[("CARDGATE__SERVER__BODY_TIMEOUT_SECONDS", "2")]);
    let app = Application::build(&settings).await.unwrap();
    let address = format!("127.0.0.1:{}", app.port());
    tokio::spawn(app.run_until_stopped());
    let mut stream = TcpStream::connect(&address).await.unwrap();
    stream
        .write_all(
            format!(
                "POST /v1/registry HTTP/1.1\r\nHost: {address}\r\n\
                 Content-Type: application/x-www-form-urlencoded\r\n\
                 Transfer-Encoding: chunked\r\n\r\n1\r\ng\r\n"
            )
            .as_bytes(),
        )
        .await
        .unwrap();
    // The server answers and closes: the read ends, rather than waiting for more chunks.
    let mut raw = Vec::new();
    tokio::time::timeout(Duration::from_secs(10), stream.read_to_end(&mut raw))
        .await
        .expect("the connection was kept open after the deadline")
        .unwrap();
    let (status, body) = parse_answer(&raw);
    assert_eq!(status, 408, "{body}");
    let body: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(body["error"], "invalid_request");
}
