//! The scope grammar: any text either parses or is refused, never panics; whatever parses
//! prints back to text that parses to the same scopes.
#![no_main]

use cardgate_token::{MAX_SCOPES, Scope, parse_scopes};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &str| {
    // Several `scope` parameters, one a line, as a query string may repeat them.
    let Ok(scopes) = parse_scopes(data.split('\n')) else {
        return;
    };
    assert!(scopes.len() <= MAX_SCOPES);
    for scope in &scopes {
        let printed = scope.to_string();
        let again: Scope = printed.parse().unwrap_or_else(|e| panic!("{printed}: {e}"));
        assert_eq!(&again, scope);
    }
});
