//! Every path under `.wg/`, in one place. Task ids are validated before they become paths.

use std::path::{Path, PathBuf};

use crate::model::task::validate_id;

/// The `.wg/` folder of one project.
#[derive(Debug, Clone)]
pub struct Layout {
    dir: PathBuf,
}

impl Layout {
    pub fn new(dir: impl Into<PathBuf>) -> Layout {
        Layout { dir: dir.into() }
    }

    /// The `.wg/` directory itself.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The project root: the directory holding `.wg/`.
    pub fn project_root(&self) -> PathBuf {
        self.dir
            .parent()
            .map(Path::to_path_buf)
            .unwrap_or_else(|| self.dir.clone())
    }

    pub fn config(&self) -> PathBuf {
        self.dir.join("config.toml")
    }
    pub fn format(&self) -> PathBuf {
        self.dir.join("format")
    }
    pub fn graph(&self) -> PathBuf {
        self.dir.join("graph.jsonl")
    }
    pub fn graph_lock(&self) -> PathBuf {
        self.dir.join("graph.lock")
    }
    pub fn graph_index(&self) -> PathBuf {
        self.dir.join("graph.idx")
    }
    pub fn archive(&self) -> PathBuf {
        self.dir.join("archive.jsonl")
    }
    pub fn tasks_dir(&self) -> PathBuf {
        self.dir.join("tasks")
    }

    /// `.wg/tasks/<id>/`. Panics on an invalid id: callers validate ids at the edge,
    /// and a path must never be built from an unchecked one.
    pub fn task_dir(&self, id: &str) -> PathBuf {
        assert!(
            validate_id(id).is_ok(),
            "task path built from invalid id {id:?}"
        );
        self.tasks_dir().join(id)
    }
    pub fn task_file(&self, id: &str, name: &str) -> PathBuf {
        self.task_dir(id).join(name)
    }
    pub fn task_log(&self, id: &str) -> PathBuf {
        self.task_file(id, "log.jsonl")
    }

    pub fn service_dir(&self) -> PathBuf {
        self.dir.join("service")
    }
    pub fn coordinator_lock(&self) -> PathBuf {
        self.service_dir().join("coordinator.lock")
    }
    /// The last valid config the running coordinator loaded; agents read it (`WG_CONFIG`).
    pub fn running_config(&self) -> PathBuf {
        self.service_dir().join("config.toml")
    }
    pub fn coordinator_log(&self) -> PathBuf {
        self.service_dir().join("coordinator.log")
    }
    pub fn agents_file(&self) -> PathBuf {
        self.service_dir().join("agents.json")
    }
}
