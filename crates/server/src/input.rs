//! The parsers of request input, as pure functions: what the fuzz targets (`fuzz/`) drive.
//! The handlers call exactly these.

pub use crate::admin::bearer_session;
pub use crate::routes::{
    FORM_PARAMETERS, MAX_FORM_BYTES, MAX_USERNAME_LEN, Params, basic_credentials,
};
