//! All stdout goes through the printer: human text, or JSON when `--json` is given.

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
