//! The Fieldbook server as a library; `main.rs` is a thin command line around it, and the
//! end-to-end tests start it the same way.

pub mod admin;
pub mod api;
pub mod app;
pub mod asye;
pub mod auth;
pub mod cli;
pub mod cluster;
pub mod config;
pub mod config_file;
pub mod cpd;
pub mod erasure;
pub mod error;
pub mod expertise;
pub mod ledger_file;
pub mod metrics;
pub mod org;
pub mod resources;
pub mod retention;
pub mod scim;
pub mod state;
pub mod storage;
pub mod subject_access;
pub mod sync;
pub mod telemetry;
pub mod web;

pub use app::Server;
pub use config::ServerConfig;
