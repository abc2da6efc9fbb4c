//! The cardgate HTTP application: the token endpoint, the JWKS, health probes, and the settings
//! that build them. This is the only crate that knows HTTP; it depends on the token core and the
//! plugin crates, never the other way round.

mod admin;
mod console;
mod error;
pub mod input;
mod limits;
mod metrics;
pub mod plugins;
pub mod registry_events;
pub mod settings;
mod startup;
pub mod throttle;
mod token;

pub use error::TokenError;
pub use settings::{Settings, SettingsError, SettingsSource};
pub use startup::{Application, JELLYFISH_REALM_PATH, StartupError};
