//! wg: a file-based task coordinator for AI coding agents.
//!
//! `main.rs` only parses the command line and calls [`cli::run`]; everything else is here so
//! tests and the coordinator can call it.

pub mod agent_events;
pub mod bridge;
pub mod cli;
pub mod config;
pub mod conversation;
pub mod coordinator;
pub mod env;
pub mod error;
pub mod evaluate;
pub mod executor;
pub mod exit;
pub mod handler;
pub mod http;
pub mod lifecycle;
pub mod logging;
pub mod model;
pub mod outcome;
pub mod output;
pub mod pricing;
pub mod process;
pub mod slurm;
pub mod store;
pub mod time;
pub mod top;
pub mod workspace;
