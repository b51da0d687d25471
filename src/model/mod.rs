//! Pure data types shared by the store, the CLI and the coordinator.

pub mod graph;
pub mod task;
mod task_de;

pub use task::{slugify, validate_id, Task, TaskStatus};
