//! A disk that cannot take a write (full, over quota, or failing with EIO) holds dispatch
//! instead of stopping the coordinator: nothing new starts, running agents go on, and the
//! write that failed is tried again with a growing wait until it goes through; then dispatch
//! resumes by itself. The hold is shown in `.wg/service/hold.json` (for `wg service status`
//! and `wg top`) and announced by webhook (`dispatch-held`, `dispatch-resumed`).
//!
//! `hold.json` is written in place into a file of fixed size made when the coordinator
//! starts, so that saying "the disk is full" never needs a new block of the full disk.

use std::io::Write;
use std::os::unix::fs::FileExt;
use std::path::PathBuf;
use std::time::{Duration, Instant, SystemTime};

use serde::{Deserialize, Serialize};

use super::{notify, Coordinator};
use crate::store::Layout;
use crate::time::{format_rfc3339, now_rfc3339};

/// The first wait before a held write is tried again; it doubles up to [`LONGEST_WAIT`].
const FIRST_WAIT: Duration = Duration::from_millis(500);
const LONGEST_WAIT: Duration = Duration::from_secs(30);
/// Size of `hold.json`: room for the longest reason, written without growing the file.
const STATE_SIZE: usize = 4096;

/// Why an error is the machine's disk refusing a write, in its own words (`None`: it is not).
pub fn disk_fault(e: &anyhow::Error) -> Option<String> {
    e.chain().find_map(|c| {
        let io = c.downcast_ref::<std::io::Error>()?;
        let disk = matches!(
            io.kind(),
            std::io::ErrorKind::StorageFull | std::io::ErrorKind::QuotaExceeded
        ) || io.raw_os_error() == Some(libc::EIO);
        disk.then(|| format!("{e:#}"))
    })
}

/// The wait after `attempts` failed tries.
pub fn backoff(attempts: u32) -> Duration {
    FIRST_WAIT
        .saturating_mul(1u32 << attempts.saturating_sub(1).min(16))
        .min(LONGEST_WAIT)
}

/// A hold in force.
#[derive(Debug, Clone)]
pub struct Hold {
    pub since: SystemTime,
    pub reason: String,
    /// Tries that failed so far, the first one included.
    pub attempts: u32,
    pub next_try: Instant,
}

/// A hold as `wg service status` and `wg top` show it.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct HoldView {
    pub since: String,
    pub reason: String,
    pub attempts: u32,
    pub next_try: String,
}

impl Hold {
    fn view(&self) -> HoldView {
        let wait = self.next_try.saturating_duration_since(Instant::now());
        HoldView {
            since: format_rfc3339(self.since),
            reason: self.reason.clone(),
            attempts: self.attempts,
            next_try: format_rfc3339(SystemTime::now() + wait),
        }
    }
}

pub fn state_file(layout: &Layout) -> PathBuf {
    layout.service_dir().join("hold.json")
}

/// The hold a running coordinator last wrote, if it holds dispatch now.
pub fn read(layout: &Layout) -> Option<HoldView> {
    let bytes = std::fs::read(state_file(layout)).ok()?;
    serde_json::from_slice(bytes.trim_ascii()).ok()
}

/// Makes `hold.json` at its full size while there is room (blanks: no hold).
pub fn prepare(layout: &Layout) -> std::io::Result<()> {
    let mut f = std::fs::File::create(state_file(layout))?;
    f.write_all(&[b' '; STATE_SIZE])
}

/// Overwrites `hold.json` in place: `None` blanks it.
fn write(layout: &Layout, hold: Option<&HoldView>) -> std::io::Result<()> {
    let mut bytes = match hold {
        Some(h) => serde_json::to_vec(h).expect("a hold always serializes"),
        None => Vec::new(),
    };
    // A reason longer than the file is cut in the middle of nothing: the view is dropped.
    if bytes.len() > STATE_SIZE {
        bytes.clear();
    }
    bytes.resize(STATE_SIZE, b' ');
    let f = std::fs::OpenOptions::new()
        .write(true)
        .open(state_file(layout))?;
    f.write_all_at(&bytes, 0)
}

impl Coordinator {
    /// Whether dispatch may run now: no hold, or its next try is due.
    pub(super) fn hold_due(&self) -> bool {
        self.hold
            .as_ref()
            .is_none_or(|h| Instant::now() >= h.next_try)
    }

    /// When a held coordinator should wake to try again.
    pub(super) fn hold_wake(&self) -> Option<Instant> {
        self.hold.as_ref().map(|h| h.next_try)
    }

    /// A write failed because of the disk: hold dispatch (or keep holding) and schedule the
    /// next try.
    pub(super) fn hold_dispatch(&mut self, reason: String) {
        let now = Instant::now();
        let hold = self.hold.get_or_insert_with(|| Hold {
            since: SystemTime::now(),
            reason: reason.clone(),
            attempts: 0,
            next_try: now,
        });
        let first = hold.attempts == 0;
        hold.attempts += 1;
        hold.reason = reason.clone();
        let wait = backoff(hold.attempts);
        hold.next_try = now + wait;
        let view = hold.view();
        self.log.line(&format!(
            "dispatch held: {reason}; no new agents; next try in {}",
            humantime::format_duration(wait)
        ));
        if let Err(e) = write(&self.layout, Some(&view)) {
            self.log.line(&format!("cannot show the hold: {e}"));
        }
        if first {
            self.announce_hold("dispatch-held", Some(reason));
        }
    }

    /// The held write went through: dispatch resumes.
    pub(super) fn lift_hold(&mut self) {
        let Some(h) = self.hold.take() else {
            return;
        };
        let held = SystemTime::now()
            .duration_since(h.since)
            .unwrap_or_default();
        self.log.line(&format!(
            "dispatch resumes: the disk takes writes again (held {}, {} tries)",
            humantime::format_duration(Duration::from_secs(held.as_secs())),
            h.attempts
        ));
        if let Err(e) = write(&self.layout, None) {
            self.log.line(&format!("cannot clear the hold: {e}"));
        }
        self.announce_hold("dispatch-resumed", None);
    }

    /// Agents' ends that could not be recorded while the disk refused writes, tried again.
    pub(super) fn retry_deferred_ends(&mut self) -> anyhow::Result<()> {
        while let Some(e) = self.deferred_ends.pop_front() {
            if let Err(err) = self.on_ended(e.clone()) {
                self.deferred_ends.push_front(e);
                return Err(err);
            }
        }
        Ok(())
    }

    fn announce_hold(&self, status: &str, reason: Option<String>) {
        if let Some(n) = &self.notifier {
            let event = notify::Event {
                task: String::new(),
                status: status.to_string(),
                from: None,
                agent: None,
                time: now_rfc3339(),
                reason,
                workspace: None,
                endpoint: None,
            };
            if let Err(e) = n.send(event) {
                self.log.line(&format!("webhook: {e}"));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_disk_refusing_a_write_is_a_disk_fault() {
        let full = anyhow::Error::new(std::io::Error::from(std::io::ErrorKind::StorageFull))
            .context("cannot write agents.json");
        assert!(disk_fault(&full)
            .unwrap()
            .contains("cannot write agents.json"));
        let eio = anyhow::Error::new(std::io::Error::from_raw_os_error(libc::EIO));
        assert!(disk_fault(&eio).is_some());
        let other = anyhow::Error::new(std::io::Error::from(std::io::ErrorKind::NotFound));
        assert!(disk_fault(&other).is_none());
        assert!(disk_fault(&anyhow::anyhow!("corrupt line")).is_none());
    }

    #[test]
    fn the_wait_doubles_up_to_a_cap() {
        assert_eq!(backoff(1), FIRST_WAIT);
        assert_eq!(backoff(2), FIRST_WAIT * 2);
        assert_eq!(backoff(3), FIRST_WAIT * 4);
        assert_eq!(backoff(40), LONGEST_WAIT);
    }

    #[test]
    fn the_state_file_is_rewritten_in_place() {
        let dir = tempfile::tempdir().unwrap();
        let layout = Layout::new(dir.path().join(".wg"));
        std::fs::create_dir_all(layout.service_dir()).unwrap();
        prepare(&layout).unwrap();
        assert_eq!(read(&layout), None);
        let view = HoldView {
            since: "s".into(),
            reason: "No space left on device".into(),
            attempts: 2,
            next_try: "n".into(),
        };
        write(&layout, Some(&view)).unwrap();
        assert_eq!(read(&layout), Some(view));
        write(&layout, None).unwrap();
        assert_eq!(read(&layout), None);
        let len = std::fs::metadata(state_file(&layout)).unwrap().len();
        assert_eq!(len, STATE_SIZE as u64);
    }
}
