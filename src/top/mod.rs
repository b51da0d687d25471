//! `wg top`: a live view of a project's tasks and agents. [`model`] reads the files into a
//! snapshot, [`render`] draws a snapshot (pure, tested with ratatui's test backend), [`live`]
//! runs the terminal loop.

pub mod live;
pub mod model;
pub mod render;
