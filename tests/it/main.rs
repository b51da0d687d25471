//! One integration test binary (faster to link than one per file). A module per area.

mod common;
mod handler;
mod handler_failures;
mod smoke;
