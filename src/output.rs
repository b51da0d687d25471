//! All stdout goes through the printer: human text, or JSON when `--json` is given. Notes
//! for people go to stderr through [`stderr`], which never panics.

use std::io::{self, Write};

use serde::Serialize;

pub struct Printer {
    pub json: bool,
}

impl Printer {
    pub fn new(json: bool) -> Printer {
        Printer { json }
    }

    /// Prints a value as pretty JSON.
    pub fn json<T: Serialize + ?Sized>(&self, value: &T) -> io::Result<()> {
        // Stdout is line-buffered: without this buffer, pretty JSON costs one write(2) per
        // line, which was most of `wg ready --json` on large graphs.
        let mut out = io::BufWriter::with_capacity(1 << 16, io::stdout().lock());
        serde_json::to_writer_pretty(&mut out, value).map_err(io::Error::other)?;
        out.write_all(b"\n")?;
        out.flush()
    }

    /// Prints one line of human text.
    pub fn line(&self, text: impl AsRef<str>) -> io::Result<()> {
        let mut out = io::BufWriter::with_capacity(1 << 16, io::stdout().lock());
        out.write_all(text.as_ref().as_bytes())?;
        out.write_all(b"\n")?;
        out.flush()
    }

    /// Prints human text or JSON, whichever was asked for.
    pub fn either<T: Serialize + ?Sized>(
        &self,
        value: &T,
        human: impl FnOnce() -> String,
    ) -> io::Result<()> {
        if self.json {
            self.json(value)
        } else {
            let text = human();
            if text.is_empty() {
                return Ok(());
            }
            self.line(text.trim_end_matches('\n'))
        }
    }
}

/// Writes `text` to stderr as is. A stderr that cannot be written (`2>/dev/full`, a closed
/// pipe) is ignored: there is nowhere left to report it, and the command's outcome (its exit
/// code, its files) must not change because of it. `eprint!` would panic instead.
pub fn stderr(text: &str) {
    let _ = io::stderr().lock().write_all(text.as_bytes());
}
