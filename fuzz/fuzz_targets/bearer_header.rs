//! The Bearer `Authorization` header of the admin API: any header value either yields a
//! session id and token or nothing, never a panic.
#![no_main]

use actix_web::http::header::HeaderValue;
use cardgate_server::input::bearer_session;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(value) = HeaderValue::from_bytes(data) else {
        return;
    };
    if let Some((_, token)) = bearer_session(&value) {
        // The token is the one the header carries, `<session id>.<secret>`.
        assert!(value.to_str().is_ok_and(|v| v.contains(token)));
        assert!(token.contains('.'));
    }
});
