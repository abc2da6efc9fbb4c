//! Key loading: any text given as the private key, or as a certificate to publish, is loaded
//! or refused with an error, never a panic.
#![no_main]

use cardgate_token::{PublishedKey, SigningKey};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &str| {
    let _ = SigningKey::from_pem(data, None, None, None);
    let _ = PublishedKey::from_certificate_pem(data, None);
});
