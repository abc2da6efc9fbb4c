//! The OAuth2 token form (and the GET query string, read by the same parser): any body is
//! parsed or refused as a malformed request, never a panic.
#![no_main]

use cardgate_server::input::{FORM_PARAMETERS, MAX_FORM_BYTES, Params};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    // Larger bodies are refused before they are parsed.
    if data.len() > MAX_FORM_BYTES {
        return;
    }
    let Ok(form) = Params::parse(data, FORM_PARAMETERS) else {
        return;
    };
    let _ = form.client_id();
    for name in FORM_PARAMETERS {
        let _ = form.required(name);
    }
    let _ = form.scopes();
});
