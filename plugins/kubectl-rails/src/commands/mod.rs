//! One module per subcommand (`console` serves `dbconsole` too). Each takes its arguments and
//! the [`Context`](crate::context::Context), asks and prints; the crates do the work.

pub(crate) mod accessory;
pub(crate) mod build;
pub(crate) mod canary;
pub(crate) mod complete;
pub(crate) mod console;
pub(crate) mod cron;
pub(crate) mod deploy;
pub(crate) mod destroy;
pub(crate) mod diff;
pub(crate) mod doctor;
pub(crate) mod env;
pub(crate) mod exec;
pub(crate) mod explain;
pub(crate) mod init;
pub(crate) mod logs;
pub(crate) mod maintenance;
pub(crate) mod migrate;
pub(crate) mod rbac;
pub(crate) mod releases;
pub(crate) mod render;
pub(crate) mod review;
pub(crate) mod rollback;
pub(crate) mod run;
pub(crate) mod scale;
pub(crate) mod secrets;
pub(crate) mod status;
