//! What the log says about a request, read from a log captured for the whole test binary.

use std::io::Write;
use std::sync::{Arc, Mutex, OnceLock, PoisonError};

use tracing_subscriber::fmt::MakeWriter;

use crate::{ALICE, spawn_app};

/// Everything the server crate logs at `info` and above, from every test of this binary.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .extend_from_slice(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> MakeWriter<'a> for Captured {
    type Writer = Captured;

    fn make_writer(&'a self) -> Self::Writer {
        self.clone()
    }
}

impl Captured {
    /// The log so far, once installed as the process's subscriber.
    fn installed() -> &'static Captured {
        static LOG: OnceLock<Captured> = OnceLock::new();
        LOG.get_or_init(|| {
            let captured = Captured::default();
            tracing_subscriber::fmt()
                .with_writer(captured.clone())
                .with_ansi(false)
                .with_env_filter("cardgate_server=info")
                .init();
            captured
        })
    }

    fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap_or_else(PoisonError::into_inner)).into_owned()
    }
}

#[tokio::test]
async fn the_token_log_line_tells_anonymous_requests_from_basic_ones() {
    let log = Captured::installed();
    let app = spawn_app().await;
    app.token(
        "service=registry.test&scope=repository:public/anonymous-probe:pull",
        None,
    )
    .await;
    app.token(
        "service=registry.test&scope=repository:public/basic-probe:pull",
        ALICE,
    )
    .await;
    let text = log.text();
    let line = |probe: &str| {
        text.lines()
            .find(|l| l.contains("token issued") && l.contains(probe))
            .unwrap_or_else(|| panic!("no token line for {probe} in:\n{text}"))
            .to_owned()
    };
    let anonymous = line("anonymous-probe");
    assert!(anonymous.contains(r#"via="anonymous""#), "{anonymous}");
    let basic = line("basic-probe");
    assert!(basic.contains(r#"via="basic""#), "{basic}");
}
