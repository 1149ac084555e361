//! End-to-end tests of `kubectl rails`, run through kubectl's plugin lookup. Tests that need a
//! cluster use the local test control plane (`tests/cluster/up`); each gets its own namespace.

mod netfakes;
mod support;

mod auth;

mod cluster_scripts;
mod cluster_smoke;
mod conventions;
mod corpus;
mod deploy;
mod destinations;
mod doctor;
mod exec;
mod explain;
mod faults;
mod first_deploy;
mod hardening;
mod help;
mod init_render;
mod kamal;
mod lease;
mod masking;
mod prompts;
mod rails_apps;
mod reach;
mod real;
mod scale;
mod secrets;
mod wild;
