//! The derived index beside `graph.jsonl`: one sorted line per task id with its status, where
//! its latest record lives, and its dependencies. It lets a writer check "is this id new, do
//! these dependencies exist, would this edge close a cycle" with binary searches instead of
//! parsing the whole graph.
//!
//! ```text
//! wg-index 1 inode=… covered=… lines=… live=… archive=… seal_size=… seal_mtime=…
//! <id>\t<status>\t<g|a><byte offset>\t<dep>,<dep>…
//! ```
//!
//! `covered` is how many bytes of `graph.jsonl` the entries describe; lines after it (the
//! tail) are parsed by every writer. The header is fixed-width so that a writer can re-seal
//! it in place after each append: `seal_size` and `seal_mtime` are the graph file's size and
//! mtime right after the last wg write. Any other change to the file (a hand edit, a crash
//! between append and seal, a compaction by an older binary) shows up as a mismatch and the
//! index is rebuilt from a full parse, which validates every line.

use std::fs::OpenOptions;
use std::io;
use std::os::unix::fs::FileExt;
use std::path::Path;

use crate::model::TaskStatus;

const MAGIC: &str = "wg-index 1";

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Header {
    pub inode: u64,
    pub covered: u64,
    pub lines: u64,
    pub live: u64,
    pub archive: u64,
    pub seal_size: u64,
    pub seal_mtime: u64,
}

impl Header {
    fn render(&self) -> String {
        format!(
            "{MAGIC} inode={:020} covered={:020} lines={:012} live={:012} archive={:020} seal_size={:020} seal_mtime={:020}\n",
            self.inode, self.covered, self.lines, self.live, self.archive, self.seal_size, self.seal_mtime
        )
    }

    fn parse(line: &str) -> Option<Header> {
        let rest = line.strip_prefix(MAGIC)?;
        let mut h = Header::default();
        for field in rest.split_whitespace() {
            let (k, v) = field.split_once('=')?;
            let v: u64 = v.parse().ok()?;
            match k {
                "inode" => h.inode = v,
                "covered" => h.covered = v,
                "lines" => h.lines = v,
                "live" => h.live = v,
                "archive" => h.archive = v,
                "seal_size" => h.seal_size = v,
                "seal_mtime" => h.seal_mtime = v,
                _ => return None,
            }
        }
        Some(h)
    }
}

/// Where the latest record of a task is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Loc {
    Graph(u64),
    Archive(u64),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub status: TaskStatus,
    pub loc: Loc,
    pub after: Vec<String>,
}

impl Entry {
    fn render(&self, id: &str, out: &mut Vec<u8>) {
        out.extend_from_slice(id.as_bytes());
        out.push(b'\t');
        out.extend_from_slice(self.status.as_str().as_bytes());
        out.push(b'\t');
        match self.loc {
            Loc::Graph(o) => out.extend_from_slice(format!("g{o}").as_bytes()),
            Loc::Archive(o) => out.extend_from_slice(format!("a{o}").as_bytes()),
        }
        out.push(b'\t');
        out.extend_from_slice(self.after.join(",").as_bytes());
        out.push(b'\n');
    }

    fn parse(line: &[u8]) -> Option<(&str, Entry)> {
        let line = std::str::from_utf8(line).ok()?;
        let mut parts = line.split('\t');
        let id = parts.next()?;
        let status = parts.next()?.parse().ok()?;
        let loc = parts.next()?;
        let loc = match loc.split_at_checked(1)? {
            ("g", o) => Loc::Graph(o.parse().ok()?),
            ("a", o) => Loc::Archive(o.parse().ok()?),
            _ => return None,
        };
        let after = parts.next()?;
        let after = if after.is_empty() {
            Vec::new()
        } else {
            after.split(',').map(str::to_string).collect()
        };
        Some((id, Entry { status, loc, after }))
    }
}

/// An index file mapped into memory; lookups are binary searches over its sorted lines.
///
/// Mapped rather than read: a `wg add` on 100,000 tasks touches a few pages of a 3 MB index
/// instead of copying all of it (the copy was most of the command's time). The file is only
/// ever replaced by rename (a mapping keeps the old inode) or re-sealed in place under the
/// writer lock, never truncated, so the mapping stays valid for the writer's lifetime.
#[derive(Debug)]
pub struct Index {
    buf: memmap2::Mmap,
    body: usize,
    pub header: Header,
}

impl Index {
    /// Reads the index; `None` when it is missing or unreadable (then it is rebuilt).
    pub fn load(path: &Path) -> Option<Index> {
        let file = std::fs::File::open(path).ok()?;
        // SAFETY: see the type's comment: wg never truncates or rewrites an index in place
        // (only the fixed-width header, which is parsed below, before any later reseal).
        let buf = unsafe { memmap2::Mmap::map(&file) }.ok()?;
        let nl = buf.iter().position(|b| *b == b'\n')?;
        let header = Header::parse(std::str::from_utf8(&buf[..nl]).ok()?)?;
        if buf.last() != Some(&b'\n') {
            return None;
        }
        Some(Index {
            buf,
            body: nl + 1,
            header,
        })
    }

    /// The index line of `id`, by binary search over the sorted lines.
    fn find_line(&self, id: &str) -> Option<&[u8]> {
        let buf = &self.buf[..];
        let (mut lo, mut hi) = (self.body, buf.len());
        // Invariant: lo and hi are line starts; the line for `id`, if any, starts in [lo, hi).
        while lo < hi {
            let mid = lo + (hi - lo) / 2;
            let start = memchr::memrchr(b'\n', &buf[lo..mid]).map_or(lo, |i| lo + i + 1);
            let end =
                start + memchr::memchr(b'\n', &buf[start..]).expect("index ends with a newline");
            let line = &buf[start..end];
            let key_end = memchr::memchr(b'\t', line).unwrap_or(line.len());
            match line[..key_end].cmp(id.as_bytes()) {
                std::cmp::Ordering::Equal => return Some(line),
                std::cmp::Ordering::Less => lo = end + 1,
                std::cmp::Ordering::Greater => hi = start,
            }
        }
        None
    }

    pub fn find(&self, id: &str) -> Option<Entry> {
        self.find_line(id).and_then(Entry::parse).map(|(_, e)| e)
    }

    /// Only the status of `id`: no allocation, for readiness checks over many ids.
    pub fn status(&self, id: &str) -> Option<TaskStatus> {
        line_status(self.find_line(id)?)
    }

    /// Every index line, unparsed (with [`line_status`] as a cheap first filter).
    pub fn lines(&self) -> impl Iterator<Item = &[u8]> + '_ {
        self.buf[self.body..]
            .split(|b| *b == b'\n')
            .filter(|l| !l.is_empty())
    }

    /// Every entry in id order. Lines that do not parse are skipped (the index is derived;
    /// a damaged one is caught by its header checks long before this).
    pub fn entries(&self) -> impl Iterator<Item = (&str, Entry)> + '_ {
        self.buf[self.body..]
            .split(|b| *b == b'\n')
            .filter(|l| !l.is_empty())
            .filter_map(Entry::parse)
    }

    pub fn is_empty(&self) -> bool {
        self.body >= self.buf.len()
    }

    pub fn len(&self) -> usize {
        self.buf[self.body..]
            .iter()
            .filter(|b| **b == b'\n')
            .count()
    }
}

/// The status field of an index line.
pub fn line_status(line: &[u8]) -> Option<TaskStatus> {
    let mut fields = line.split(|b| *b == b'\t');
    fields.next()?;
    std::str::from_utf8(fields.next()?).ok()?.parse().ok()
}

/// Parses one index line into its id and entry.
pub fn parse_line(line: &[u8]) -> Option<(&str, Entry)> {
    Entry::parse(line)
}

/// Writes a complete index. Entries must come sorted by id. No fsync: the index is derived,
/// and a damaged or missing one is rebuilt.
pub fn write<'a>(
    path: &Path,
    header: &Header,
    entries: impl Iterator<Item = (&'a str, &'a Entry)>,
) -> io::Result<()> {
    let mut out = header.render().into_bytes();
    for (id, entry) in entries {
        entry.render(id, &mut out);
    }
    super::atomic::write_atomic(path, &out, false)
}

/// Same as [`write`] for entries that are owned.
pub fn write_owned(path: &Path, header: &Header, entries: &[(String, Entry)]) -> io::Result<()> {
    write(path, header, entries.iter().map(|(id, e)| (id.as_str(), e)))
}

/// Rewrites only the fixed-width header, in place.
pub fn reseal(path: &Path, header: &Header) -> io::Result<()> {
    let file = OpenOptions::new().write(true).open(path)?;
    file.write_all_at(header.render().as_bytes(), 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn binary_search_finds_every_entry_and_nothing_else() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("idx");
        let mut entries: Vec<(String, Entry)> = (0..1000)
            .map(|i| {
                (
                    format!("t-{i:04}"),
                    Entry {
                        status: TaskStatus::Open,
                        loc: Loc::Graph(i * 10),
                        after: if i % 3 == 0 {
                            vec!["x".into(), "y".into()]
                        } else {
                            vec![]
                        },
                    },
                )
            })
            .collect();
        entries.sort_by(|a, b| a.0.cmp(&b.0));
        let header = Header {
            live: 1000,
            ..Header::default()
        };
        write_owned(&path, &header, &entries).unwrap();
        let idx = Index::load(&path).unwrap();
        assert_eq!(idx.header, header);
        for (id, e) in &entries {
            assert_eq!(idx.find(id).as_ref(), Some(e), "{id}");
        }
        for missing in ["", "a", "t-", "t-0000a", "t-1000", "z"] {
            assert!(idx.find(missing).is_none(), "{missing}");
        }
        assert_eq!(idx.len(), 1000);
        let mut h2 = header;
        h2.seal_size = 12345;
        reseal(&path, &h2).unwrap();
        assert_eq!(Index::load(&path).unwrap().header, h2);
    }
}
