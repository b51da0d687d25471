//! Following `graph.jsonl` as it grows, for a long-running reader (the coordinator): each
//! read parses only the lines appended since the last one, so its cost is what changed, not
//! the size of the graph.
//!
//! Appends only ever add whole lines after the end; anything else (a compaction, `wg rm`,
//! `wg archive`, a hand edit, a git checkout) replaces the file or rewrites bytes already
//! read. Those are caught by the inode, by a file shorter than what was read, or by the last
//! line read no longer being where it was, and answered with a full parse through
//! [`Store::load`], which validates every line as every reader does.

use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom};
use std::os::unix::fs::MetadataExt;

use super::{Graph, Result, Store, StoreError};

use crate::model::Task;

/// How many bytes before the read position are kept to check that nothing was rewritten.
const CHECK_BYTES: usize = 256;

/// What changed in the graph since the previous read.
#[derive(Debug)]
pub enum Update {
    /// The file was replaced or rewritten (or this is the first read): the whole graph.
    Full(Graph),
    /// The records appended since the previous read, oldest first. The last one for an id
    /// wins, as in the file.
    Appended(Vec<Task>),
}

/// The position of a reader in `graph.jsonl`.
#[derive(Debug, Default)]
pub struct Follower {
    /// 0 before the first read: the first read is always a full one.
    inode: u64,
    /// Bytes of complete lines read so far.
    read_to: u64,
    /// The last bytes before `read_to`, as read.
    check: Vec<u8>,
}

impl Follower {
    pub fn new() -> Follower {
        Follower::default()
    }

    /// Reads what changed since the previous call.
    pub fn read(&mut self, store: &Store) -> Result<Update> {
        let path = store.layout.graph();
        let mut file = match File::open(&path) {
            Ok(f) => f,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return self.full(store),
            Err(e) => return Err(StoreError::io("open", &path)(e)),
        };
        let meta = file.metadata().map_err(StoreError::io("stat", &path))?;
        if self.inode == 0 || meta.ino() != self.inode || meta.len() < self.read_to {
            return self.full(store);
        }
        if meta.len() == self.read_to && self.unchanged(&mut file)? {
            return Ok(Update::Appended(Vec::new()));
        }
        let start = self.read_to - self.check.len() as u64;
        let mut bytes = Vec::with_capacity((meta.len() - start) as usize);
        file.seek(SeekFrom::Start(start))
            .and_then(|_| file.read_to_end(&mut bytes))
            .map_err(StoreError::io("read", &path))?;
        if !bytes.starts_with(&self.check) {
            return self.full(store);
        }
        let new = &bytes[self.check.len()..];
        // Only complete lines: a final line without its newline is an append in flight.
        let Some(end) = memchr::memrchr(b'\n', new).map(|i| i + 1) else {
            return Ok(Update::Appended(Vec::new()));
        };
        let mut tasks = Vec::new();
        for line in new[..end].split(|b| *b == b'\n') {
            if line.iter().all(u8::is_ascii_whitespace) {
                continue;
            }
            match serde_json::from_slice::<Task>(line) {
                // A tombstone (`wg rm`) removes records: the full read applies it.
                Ok(t) if t.is_tombstone() => return self.full(store),
                Ok(t) => tasks.push(t),
                // Not a plain record: let the full parse judge it (and name the line).
                Err(_) => return self.full(store),
            }
        }
        let read_to = self.read_to + end as u64;
        self.remember(&bytes[..self.check.len() + end], read_to);
        Ok(Update::Appended(tasks))
    }

    /// Whether the bytes before the read position are still those read (a same-size
    /// rewrite in place is the only change that keeps the inode and the length).
    fn unchanged(&self, file: &mut File) -> Result<bool> {
        let mut now = vec![0; self.check.len()];
        let start = self.read_to - self.check.len() as u64;
        let ok = file
            .seek(SeekFrom::Start(start))
            .and_then(|_| file.read_exact(&mut now))
            .is_ok();
        Ok(ok && now == self.check)
    }

    fn remember(&mut self, read: &[u8], read_to: u64) {
        let keep = read.len().min(CHECK_BYTES);
        self.check = read[read.len() - keep..].to_vec();
        self.read_to = read_to;
    }

    /// A full parse; the position is taken from the file as it is after the parse, or
    /// before it when the file grew meanwhile (the next read then sees the growth).
    fn full(&mut self, store: &Store) -> Result<Update> {
        let path = store.layout.graph();
        let (bytes, inode) = match File::open(&path) {
            Ok(mut f) => {
                let inode = f.metadata().map_err(StoreError::io("stat", &path))?.ino();
                let mut b = Vec::new();
                f.read_to_end(&mut b)
                    .map_err(StoreError::io("read", &path))?;
                (b, inode)
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => (Vec::new(), 0),
            Err(e) => return Err(StoreError::io("open", &path)(e)),
        };
        let records: Vec<Task> = super::jsonl::parse_lines(&path, &bytes)?;
        let complete = memchr::memrchr(b'\n', &bytes).map_or(0, |i| i + 1);
        self.inode = inode.max(1);
        if inode == 0 {
            // No file yet: the next read, whatever it finds, is a full one.
            self.inode = 0;
        }
        self.remember(&bytes[..complete], complete as u64);
        // The same rule as every reader: tombstones, and the cycles that hold their tasks.
        Ok(Update::Full(super::resolve(records)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::Layout;
    use std::io::Write;

    fn rec(id: &str, status: &str) -> String {
        format!(
            "{{\"id\":\"{id}\",\"title\":\"t\",\"status\":\"{status}\",\"created\":\"c\",\"updated\":\"u\"}}\n"
        )
    }

    fn store() -> (tempfile::TempDir, Store) {
        let dir = tempfile::tempdir().unwrap();
        let wg = dir.path().join(".wg");
        std::fs::create_dir_all(&wg).unwrap();
        let s = Store::new(Layout::new(wg));
        (dir, s)
    }

    fn append(s: &Store, text: &str) {
        let mut f = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(s.layout.graph())
            .unwrap();
        f.write_all(text.as_bytes()).unwrap();
    }

    fn ids(u: &Update) -> Vec<String> {
        match u {
            Update::Full(g) => g.tasks.keys().map(|k| format!("full:{k}")).collect(),
            Update::Appended(t) => t.iter().map(|t| format!("{}:{}", t.id, t.status)).collect(),
        }
    }

    #[test]
    fn appends_are_read_once_and_a_torn_line_waits() {
        let (_d, s) = store();
        let mut f = Follower::new();
        assert!(matches!(f.read(&s).unwrap(), Update::Full(g) if g.tasks.is_empty()));
        append(&s, &rec("a", "open"));
        // The file appeared: a new inode, read in full.
        assert_eq!(ids(&f.read(&s).unwrap()), ["full:a"]);
        assert!(ids(&f.read(&s).unwrap()).is_empty());
        append(&s, &rec("b", "open"));
        let half = rec("a", "done");
        append(&s, &half[..10]);
        assert_eq!(ids(&f.read(&s).unwrap()), ["b:open"]);
        append(&s, &half[10..]);
        assert_eq!(ids(&f.read(&s).unwrap()), ["a:done"]);
    }

    #[test]
    fn a_replaced_or_rewritten_file_is_read_in_full() {
        let (_d, s) = store();
        let mut f = Follower::new();
        append(&s, &rec("a", "open"));
        f.read(&s).unwrap();
        // Replaced (a compaction is a rename): new inode.
        let tmp = s.layout.dir().join("tmp");
        std::fs::write(&tmp, rec("b", "open")).unwrap();
        std::fs::rename(&tmp, s.layout.graph()).unwrap();
        assert_eq!(ids(&f.read(&s).unwrap()), ["full:b"]);
        // Rewritten in place with the same length, then grown.
        let mut file = std::fs::OpenOptions::new()
            .write(true)
            .open(s.layout.graph())
            .unwrap();
        file.write_all(rec("c", "open").as_bytes()).unwrap();
        assert_eq!(ids(&f.read(&s).unwrap()), ["full:c"]);
        file.write_all(rec("d", "open").as_bytes()).unwrap();
        assert_eq!(ids(&f.read(&s).unwrap()), ["d:open"]);
        // Truncated: shorter than what was read.
        std::fs::OpenOptions::new()
            .write(true)
            .truncate(true)
            .open(s.layout.graph())
            .unwrap();
        assert!(ids(&f.read(&s).unwrap()).is_empty());
        append(&s, &rec("e", "open"));
        assert_eq!(ids(&f.read(&s).unwrap()), ["e:open"]);
    }

    #[test]
    fn a_bad_appended_line_is_judged_by_the_full_parse() {
        let (_d, s) = store();
        let mut f = Follower::new();
        append(&s, &rec("a", "open"));
        f.read(&s).unwrap();
        append(&s, "{nope\n");
        let err = f.read(&s).unwrap_err().to_string();
        assert!(err.contains(":2:"), "{err}");
    }

    #[test]
    fn a_tombstone_removes_its_task_through_a_full_read() {
        let (_d, s) = store();
        let mut f = Follower::new();
        append(&s, &rec("a", "open"));
        append(&s, &rec("b", "open"));
        f.read(&s).unwrap();
        append(
            &s,
            "{\"id\":\"a\",\"title\":\"t\",\"status\":\"abandoned\",\"created\":\"c\",\"updated\":\"u2\",\"removed\":\"u2\"}\n",
        );
        assert_eq!(ids(&f.read(&s).unwrap()), ["full:b"]);
    }
}
