//! One module per subcommand.

pub(crate) mod deploy;
pub(crate) mod diff;
pub(crate) mod init;
pub(crate) mod releases;
pub(crate) mod render;
pub(crate) mod rollback;
pub(crate) mod secrets;
pub(crate) mod status;
