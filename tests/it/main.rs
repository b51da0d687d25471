//! One integration test binary (faster to link than one per file). A module per area.

mod bad_input;
mod bridge;
mod cli;
mod common;
mod coordinator;
mod coordinator_codex;
mod docs;
mod endpoint_faults;
mod evaluate;
mod faults;
mod first_run;
mod git_store;
mod handler;
mod handler_chat;
mod handler_claude;
mod handler_failures;
mod keyless;
mod people;
mod proxy;
mod replay;
mod shell;
mod slurm;
mod smoke;
mod store;
mod top;
mod workspace;
