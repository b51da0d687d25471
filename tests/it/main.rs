//! One integration test binary (faster to link than one per file). A module per area.

// First, so that its macros (`wait_until!`) are in scope in every module below.
#[macro_use]
mod common;

mod bad_input;
mod bridge;
mod cli;
mod coordinator;
mod coordinator_codex;
mod coordinator_crash;
mod coordinator_scale;
mod cutoffs;
mod disk_full;
mod docs;
mod endpoint_faults;
mod evaluate;
mod faults;
mod first_run;
mod git_store;
mod guest;
mod handler;
mod handler_chat;
mod handler_claude;
mod handler_failures;
mod keyless;
mod landing;
mod links;
mod live_config;
mod llama;
mod missing_clis;
mod old_store;
mod people;
mod proxy;
mod replay;
mod sandbox;
mod screens;
mod settings;
mod shell;
mod slurm;
mod smoke;
mod store;
mod top;
mod until_done;
mod web;
mod workspace;
