//! The Basic `Authorization` header of the token endpoint: any header value either yields
//! credentials or a malformed-request error, never a panic.
#![no_main]

use actix_web::http::header::HeaderValue;
use cardgate_authz::Credentials;
use cardgate_server::input::{MAX_USERNAME_LEN, basic_credentials};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    // Bytes no HTTP/1 parser would hand over as a header value never reach the handler.
    let Ok(value) = HeaderValue::from_bytes(data) else {
        return;
    };
    if let Ok(Credentials::Password { username, .. }) = basic_credentials(&value) {
        assert!(username.chars().count() <= MAX_USERNAME_LEN);
    }
});
