//! Opening files under `.wg/` without following links wg did not make.
//!
//! An agent that can write into `.wg/` (one running unboxed, or a person's mistake) could plant
//! `.wg/tasks/a/handler.log -> ~/.bashrc`, or replace a whole task directory by a link, and
//! wg, which runs outside every sandbox, would then write where the link points. So every
//! path under `.wg/` is opened one component at a time from the project root (`openat` with
//! `O_NOFOLLOW`): a link or a non-regular file anywhere from `.wg` down is refused with an
//! error that names it ([`Refused`]), and nothing is written through it.
//!
//! The project root itself (everything above `.wg`) is the user's choice and is followed.
//! A path with no `.wg` component (a test's temporary file) has only its last component
//! checked.

use std::ffi::{CString, OsStr};
use std::fs::File;
use std::io::{self, Read};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Component, Path, PathBuf};

/// What a refused path is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Found {
    Symlink,
    /// A FIFO, socket, device or (where a file was expected) a directory.
    NotRegular,
    /// Where a directory was expected.
    NotDirectory,
}

impl Found {
    fn describe(self) -> &'static str {
        match self {
            Found::Symlink => "a symbolic link",
            Found::NotRegular => "not a regular file",
            Found::NotDirectory => "not a directory",
        }
    }
}

/// A path under `.wg/` that wg will not open, carried inside an `io::Error` (kind
/// `InvalidData`) so every caller's error names it; [`refused`] finds it again.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "refusing {path}: it is {}; wg never follows a link or opens a special file it did not make under .wg/ (remove it if you did not put it there)",
    found.describe()
)]
pub struct Refused {
    pub path: PathBuf,
    pub found: Found,
}

impl From<Refused> for io::Error {
    fn from(r: Refused) -> io::Error {
        io::Error::new(io::ErrorKind::InvalidData, r)
    }
}

/// The [`Refused`] inside `e`, if that is what `e` is (directly or as its source).
pub fn refused<'e>(e: &'e (dyn std::error::Error + 'static)) -> Option<&'e Refused> {
    let mut cur: Option<&'e (dyn std::error::Error + 'static)> = Some(e);
    while let Some(err) = cur {
        if let Some(r) = err.downcast_ref::<Refused>() {
            return Some(r);
        }
        if let Some(io) = err.downcast_ref::<io::Error>() {
            if let Some(r) = io.get_ref().and_then(|i| i.downcast_ref::<Refused>()) {
                return Some(r);
            }
        }
        cur = err.source();
    }
    None
}

/// How a file is opened.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Read,
    /// Read and write, existing file only.
    ReadWrite,
    /// Read and append, created (with its directories) when missing.
    Append,
    /// Read and write, created (with its directories) when missing.
    Create,
}

impl Mode {
    fn flags(self) -> libc::c_int {
        match self {
            Mode::Read => libc::O_RDONLY,
            Mode::ReadWrite => libc::O_RDWR,
            Mode::Append => libc::O_RDWR | libc::O_APPEND | libc::O_CREAT,
            Mode::Create => libc::O_RDWR | libc::O_CREAT,
        }
    }
    fn creates(self) -> bool {
        matches!(self, Mode::Append | Mode::Create)
    }
}

/// The path split where checking starts: the part wg follows (up to the project root) and
/// the components below it that must be real directories and files.
fn split(path: &Path) -> (PathBuf, Vec<&OsStr>) {
    let comps: Vec<Component> = path.components().collect();
    let anchor = comps
        .iter()
        .rposition(|c| c.as_os_str() == ".wg")
        .unwrap_or(comps.len().saturating_sub(1));
    let base: PathBuf = comps[..anchor].iter().collect();
    let rest = comps[anchor..].iter().map(|c| c.as_os_str()).collect();
    (base, rest)
}

fn cstr(name: &OsStr) -> io::Result<CString> {
    CString::new(name.as_bytes()).map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))
}

fn last_error() -> io::Error {
    io::Error::last_os_error()
}

fn open_base(base: &Path) -> io::Result<OwnedFd> {
    let base = if base.as_os_str().is_empty() {
        Path::new(".")
    } else {
        base
    };
    let c = cstr(base.as_os_str())?;
    // SAFETY: `c` is a valid NUL-terminated string; the returned fd is owned below.
    let fd = unsafe {
        libc::open(
            c.as_ptr(),
            libc::O_RDONLY | libc::O_DIRECTORY | libc::O_CLOEXEC,
        )
    };
    if fd < 0 {
        let e = last_error();
        return Err(io::Error::new(
            e.kind(),
            format!("cannot open {}: {e}", base.display()),
        ));
    }
    // SAFETY: `fd` was just returned by open and is owned by nobody else.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// What `name` in `dir` is, without following it.
fn kind_at(dir: &OwnedFd, name: &CString) -> Option<libc::mode_t> {
    // SAFETY: zeroed stat is a valid out-parameter; `name` is NUL-terminated.
    let mut st: libc::stat = unsafe { std::mem::zeroed() };
    let r = unsafe {
        libc::fstatat(
            dir.as_raw_fd(),
            name.as_ptr(),
            &mut st,
            libc::AT_SYMLINK_NOFOLLOW,
        )
    };
    (r == 0).then_some(st.st_mode & libc::S_IFMT)
}

fn refusal(dir: &OwnedFd, name: &CString, at: &Path, dir_expected: bool) -> Option<Refused> {
    let found = match kind_at(dir, name)? {
        libc::S_IFLNK => Found::Symlink,
        // A directory where a file belongs keeps the system's own error (`EISDIR`).
        libc::S_IFDIR => return None,
        libc::S_IFREG if !dir_expected => return None,
        _ if dir_expected => Found::NotDirectory,
        _ => Found::NotRegular,
    };
    Some(Refused {
        path: at.to_path_buf(),
        found,
    })
}

/// Opens `name` in `dir` as a directory, never through a link; creates it when `create`.
fn open_dir_at(dir: &OwnedFd, name: &OsStr, at: &Path, create: bool) -> io::Result<OwnedFd> {
    if name == ".." {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("{}: `..` under .wg/", at.display()),
        ));
    }
    let c = cstr(name)?;
    let flags = libc::O_RDONLY | libc::O_DIRECTORY | libc::O_NOFOLLOW | libc::O_CLOEXEC;
    for _ in 0..2 {
        // SAFETY: `dir` is an open directory fd and `c` NUL-terminated.
        let fd = unsafe { libc::openat(dir.as_raw_fd(), c.as_ptr(), flags) };
        if fd >= 0 {
            // SAFETY: fresh fd, owned here only.
            return Ok(unsafe { OwnedFd::from_raw_fd(fd) });
        }
        let e = last_error();
        if e.kind() == io::ErrorKind::NotFound && create {
            // SAFETY: as above; a concurrent mkdir shows up as EEXIST, which is fine.
            let r = unsafe { libc::mkdirat(dir.as_raw_fd(), c.as_ptr(), 0o755) };
            if r != 0 && last_error().kind() != io::ErrorKind::AlreadyExists {
                let e = last_error();
                return Err(io::Error::new(
                    e.kind(),
                    format!("cannot create {}: {e}", at.display()),
                ));
            }
            continue;
        }
        if let Some(r) = refusal(dir, &c, at, true) {
            return Err(r.into());
        }
        return Err(io::Error::new(
            e.kind(),
            format!("cannot open {}: {e}", at.display()),
        ));
    }
    Err(io::Error::other(format!("cannot open {}", at.display())))
}

/// The directory `path`, opened component by component from `.wg` down without following a
/// link (created when `create`). Usable as `/proc/self/fd/N` by APIs that want a path.
pub fn open_dir(path: &Path, create: bool) -> io::Result<OwnedFd> {
    let (base, rest) = split(path);
    if rest.is_empty() || !rest.iter().any(|c| *c == ".wg") {
        // No `.wg` in the path: nothing of wg's to protect below it.
        if create {
            std::fs::create_dir_all(path)?;
        }
        return open_base(path);
    }
    let mut fd = open_base(&base)?;
    let mut at = base;
    for name in rest {
        at.push(name);
        fd = open_dir_at(&fd, name, &at, create)?;
    }
    Ok(fd)
}

/// Opens the file `path` as `mode` says, refusing a link or a non-regular file anywhere
/// from `.wg` down.
pub fn open(path: &Path, mode: Mode) -> io::Result<File> {
    let (Some(parent), Some(name)) = (path.parent(), path.file_name()) else {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("{}: not a file path", path.display()),
        ));
    };
    let dir = open_dir(parent, mode.creates())?;
    let c = cstr(name)?;
    // O_NONBLOCK: opening a planted FIFO must not hang; it is refused just below.
    let flags = mode.flags() | libc::O_NOFOLLOW | libc::O_CLOEXEC | libc::O_NONBLOCK;
    // SAFETY: `dir` is an open directory fd and `c` NUL-terminated.
    let fd = unsafe { libc::openat(dir.as_raw_fd(), c.as_ptr(), flags, 0o644 as libc::c_uint) };
    if fd < 0 {
        let e = last_error();
        if let Some(r) = refusal(&dir, &c, path, false) {
            return Err(r.into());
        }
        return Err(io::Error::new(
            e.kind(),
            format!("cannot open {}: {e}", path.display()),
        ));
    }
    // SAFETY: fresh fd, owned here only.
    let file = File::from(unsafe { OwnedFd::from_raw_fd(fd) });
    if !file.metadata()?.file_type().is_file() {
        return Err(Refused {
            path: path.to_path_buf(),
            found: Found::NotRegular,
        }
        .into());
    }
    // Back to blocking I/O for a regular file (no effect on it, but callers expect it).
    // SAFETY: fcntl on an fd we own.
    unsafe {
        let fl = libc::fcntl(file.as_raw_fd(), libc::F_GETFL);
        libc::fcntl(file.as_raw_fd(), libc::F_SETFL, fl & !libc::O_NONBLOCK);
    }
    Ok(file)
}

/// The whole file, read without following links.
pub fn read(path: &Path) -> io::Result<Vec<u8>> {
    let mut f = open(path, Mode::Read)?;
    let mut out = Vec::new();
    f.read_to_end(&mut out)?;
    Ok(out)
}

pub fn read_to_string(path: &Path) -> io::Result<String> {
    String::from_utf8(read(path)?).map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))
}

/// `create_dir_all` that never creates through a link under `.wg/`.
pub fn create_dir_all(path: &Path) -> io::Result<()> {
    open_dir(path, true).map(drop)
}

/// A path that names `name` inside the already opened `dir` (via `/proc/self/fd`), for APIs
/// that only take paths (rename, temp files). Valid while `dir` is open.
pub fn in_dir(dir: &OwnedFd, name: &OsStr) -> PathBuf {
    Path::new(&format!("/proc/self/fd/{}", dir.as_raw_fd())).join(name)
}

/// Renames `from` to `to` in the same directory without following a link on the way there.
pub fn rename_in_dir(from: &Path, to: &Path) -> io::Result<()> {
    let (Some(parent), Some(a), Some(b)) = (from.parent(), from.file_name(), to.file_name()) else {
        return Err(io::Error::from(io::ErrorKind::InvalidInput));
    };
    let dir = open_dir(parent, false)?;
    let (ca, cb) = (cstr(a)?, cstr(b)?);
    // SAFETY: fds and strings valid for the call; renameat never follows the last component.
    let r = unsafe { libc::renameat(dir.as_raw_fd(), ca.as_ptr(), dir.as_raw_fd(), cb.as_ptr()) };
    if r != 0 {
        let e = last_error();
        return Err(io::Error::new(
            e.kind(),
            format!("cannot rename {}: {e}", from.display()),
        ));
    }
    Ok(())
}

/// The entries of `dir` that wg would refuse: links and special files. Directories are
/// allowed but not entered. A `dir` that is itself a link is the one finding. Sorted by path.
pub fn scan_dir(dir: &Path) -> Vec<Refused> {
    match std::fs::symlink_metadata(dir) {
        Ok(m) if m.file_type().is_symlink() => {
            return vec![Refused {
                path: dir.to_path_buf(),
                found: Found::Symlink,
            }]
        }
        Ok(_) => {}
        Err(_) => return Vec::new(),
    }
    let Ok(rd) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut out: Vec<Refused> = rd
        .flatten()
        .filter_map(|e| {
            let t = e.file_type().ok()?;
            let found = if t.is_symlink() {
                Found::Symlink
            } else if t.is_file() || t.is_dir() {
                return None;
            } else {
                Found::NotRegular
            };
            Some(Refused {
                path: e.path(),
                found,
            })
        })
        .collect();
    out.sort_by(|a, b| a.path.cmp(&b.path));
    out
}

/// Every link or special file wg would refuse in a project's `.wg/`: its own entries, those
/// of `service/`, `tasks/` and each task directory. What the agent CLIs keep in their own
/// state directories (`codex-home/`, a task's `claude/`) is theirs and not looked at.
pub fn scan_project(wg_dir: &Path) -> Vec<Refused> {
    let mut out = scan_dir(wg_dir);
    for sub in ["service", "tasks"] {
        out.extend(scan_dir(&wg_dir.join(sub)));
    }
    if let Ok(rd) = std::fs::read_dir(wg_dir.join("tasks")) {
        let mut dirs: Vec<PathBuf> = rd
            .flatten()
            .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
            .map(|e| e.path())
            .collect();
        dirs.sort();
        for d in dirs {
            out.extend(scan_dir(&d));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;
    use std::os::unix::fs::symlink;

    fn project() -> (tempfile::TempDir, PathBuf) {
        let d = tempfile::tempdir().unwrap();
        let wg = d.path().join(".wg");
        std::fs::create_dir_all(wg.join("tasks/a")).unwrap();
        (d, wg)
    }

    #[test]
    fn files_and_directories_are_created_and_appended() {
        let (_d, wg) = project();
        let p = wg.join("tasks/b/log.jsonl");
        let mut f = open(&p, Mode::Append).unwrap();
        f.write_all(b"x\n").unwrap();
        drop(f);
        open(&p, Mode::Append).unwrap().write_all(b"y\n").unwrap();
        assert_eq!(read(&p).unwrap(), b"x\ny\n");
    }

    #[test]
    fn a_planted_file_link_is_refused_and_its_target_unchanged() {
        let (d, wg) = project();
        let target = d.path().join("bashrc");
        std::fs::write(&target, "mine\n").unwrap();
        let p = wg.join("tasks/a/handler.log");
        symlink(&target, &p).unwrap();
        for mode in [Mode::Read, Mode::Append, Mode::ReadWrite, Mode::Create] {
            let e = open(&p, mode).unwrap_err();
            let r = refused(&e).expect("a refusal");
            assert_eq!(r.path, p);
            assert_eq!(r.found, Found::Symlink);
            assert!(e.to_string().contains("handler.log"), "{e}");
        }
        assert_eq!(std::fs::read_to_string(&target).unwrap(), "mine\n");
    }

    #[test]
    fn a_task_directory_replaced_by_a_link_is_refused() {
        let (d, wg) = project();
        let outside = d.path().join("outside");
        std::fs::create_dir(&outside).unwrap();
        symlink(&outside, wg.join("tasks/b")).unwrap();
        let e = open(&wg.join("tasks/b/outbox.jsonl"), Mode::Append).unwrap_err();
        assert_eq!(refused(&e).unwrap().path, wg.join("tasks/b"));
        assert!(create_dir_all(&wg.join("tasks/b/claude")).is_err());
        assert_eq!(std::fs::read_dir(&outside).unwrap().count(), 0);
    }

    #[test]
    fn the_scan_finds_planted_links_and_special_files_only() {
        let (d, wg) = project();
        std::fs::write(wg.join("tasks/a/log.jsonl"), "").unwrap();
        std::fs::create_dir(wg.join("tasks/a/claude")).unwrap();
        symlink("/etc/passwd", wg.join("tasks/a/claude/inside-is-claudes")).unwrap();
        assert!(scan_project(&wg).is_empty());
        symlink(d.path(), wg.join("tasks/b")).unwrap();
        symlink("/etc/passwd", wg.join("tasks/a/outbox.jsonl")).unwrap();
        let found: Vec<_> = scan_project(&wg).into_iter().map(|r| r.path).collect();
        assert_eq!(
            found,
            vec![wg.join("tasks/b"), wg.join("tasks/a/outbox.jsonl")]
        );
    }

    #[test]
    fn a_fifo_is_refused_without_hanging() {
        let (_d, wg) = project();
        let p = wg.join("tasks/a/inbox.jsonl");
        let c = cstr(p.as_os_str()).unwrap();
        assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o644) }, 0);
        for mode in [Mode::Read, Mode::Append] {
            let e = open(&p, mode).unwrap_err();
            assert_eq!(refused(&e).unwrap().found, Found::NotRegular, "{e}");
        }
    }

    #[test]
    fn links_above_the_project_are_followed_and_rename_stays_in_place() {
        let (d, _wg) = project();
        let alias = d.path().join("alias");
        symlink(d.path(), &alias).unwrap();
        let p = alias.join(".wg/tasks/a/events.jsonl");
        open(&p, Mode::Append).unwrap().write_all(b"e\n").unwrap();
        rename_in_dir(&p, &alias.join(".wg/tasks/a/events.jsonl.1")).unwrap();
        assert_eq!(
            std::fs::read(d.path().join(".wg/tasks/a/events.jsonl.1")).unwrap(),
            b"e\n"
        );
    }
}
