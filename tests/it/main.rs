//! One integration test binary (faster to link than one per file). A module per area.

mod bridge;
mod common;
mod evaluate;
mod smoke;
