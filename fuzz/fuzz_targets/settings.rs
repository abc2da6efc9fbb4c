//! Settings loading: any `default.toml` is loaded or refused with a message, and so are the
//! settings derived from it without reading other files (realm, lifetimes, plugin chains).
#![no_main]

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::LazyLock;

use cardgate_server::{Settings, SettingsSource};
use libfuzzer_sys::fuzz_target;

/// A folder of this process's own, holding the `default.toml` under test.
static DIR: LazyLock<PathBuf> = LazyLock::new(|| {
    let dir = std::env::temp_dir().join(format!("cardgate-fuzz-settings-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
    dir
});

fuzz_target!(|data: &[u8]| {
    let path = DIR.join("default.toml");
    std::fs::write(&path, data).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let source = SettingsSource {
        config_dir: DIR.clone(),
        profile: None,
        env: HashMap::new(),
    };
    let Ok(settings) = Settings::load(&source) else {
        return;
    };
    let _ = settings.realm_path();
    let _ = settings.token_lifetimes();
    let _ = settings.refresh_lifetime();
    let _ = settings.chains(None);
});
