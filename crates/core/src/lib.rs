//! The pure core of kubectl-rails: reads a Rails app folder and the spec file, validates the
//! spec, and renders it to Kubernetes objects.
//!
//! It must never touch the network, read the clock or the process environment: everything it
//! needs comes in as arguments, so its output is deterministic and testable without a cluster.

pub mod detect;
pub mod digest;
pub mod dotenv;
pub mod duration;
pub mod file;
pub mod gateway;
pub mod judge;
pub mod kamal;
pub mod model;
pub mod propose;
pub mod rbac;
pub mod render;
pub mod schedule;
pub mod schema;
pub mod validate;
pub mod version;

pub use model::{AppSpec, ImageSpec, SPEC_PATH};
