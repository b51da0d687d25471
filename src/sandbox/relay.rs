//! The path from an agent in a box without network to the credential proxy on the host's
//! loopback: inside, `wg sandbox-init` listens on the proxy's own address (the box's
//! loopback) and pipes each connection to a Unix socket bound into the box; outside, the
//! handler listens on that socket and pipes each connection to the proxy. The agent keeps
//! the address it is given; only bytes cross.

use std::io;
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

/// Copies both ways until either side closes, then closes both.
fn pipe<A, B>(a: A, b: B)
where
    A: io::Read + io::Write + Send + 'static + TryCloneShutdown,
    B: io::Read + io::Write + Send + 'static + TryCloneShutdown,
{
    let (Ok(mut a2), Ok(mut b2)) = (a.try_clone_(), b.try_clone_()) else {
        return;
    };
    let (mut a, mut b) = (a, b);
    std::thread::spawn(move || {
        let _ = io::copy(&mut a2, &mut b2);
        b2.shutdown_write();
    });
    let _ = io::copy(&mut b, &mut a);
    a.shutdown_write();
}

/// What `pipe` needs of both stream kinds.
trait TryCloneShutdown: Sized {
    fn try_clone_(&self) -> io::Result<Self>;
    fn shutdown_write(&self);
}

impl TryCloneShutdown for TcpStream {
    fn try_clone_(&self) -> io::Result<Self> {
        self.try_clone()
    }
    fn shutdown_write(&self) {
        let _ = self.shutdown(Shutdown::Write);
    }
}

impl TryCloneShutdown for UnixStream {
    fn try_clone_(&self) -> io::Result<Self> {
        self.try_clone()
    }
    fn shutdown_write(&self) {
        let _ = self.shutdown(Shutdown::Write);
    }
}

/// Inside the box: accepts on `listen` (the box's loopback) and pipes to the socket `to`.
/// Runs until the process ends.
pub fn inside(listen: SocketAddr, to: PathBuf) -> io::Result<()> {
    let l = TcpListener::bind(listen)?;
    std::thread::spawn(move || {
        for conn in l.incoming().flatten() {
            let to = to.clone();
            std::thread::spawn(move || {
                let _ = conn.set_nodelay(true);
                if let Ok(up) = UnixStream::connect(&to) {
                    pipe(conn, up);
                }
            });
        }
    });
    Ok(())
}

/// Outside: the handler's end, listening on a Unix socket until dropped.
pub struct Outside {
    path: PathBuf,
    stop: Arc<AtomicBool>,
}

impl Outside {
    /// Listens on `path` and pipes each connection to `to` (the proxy).
    pub fn start(path: &Path, to: SocketAddr) -> io::Result<Outside> {
        let l = UnixListener::bind(path)?;
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        std::thread::spawn(move || {
            for conn in l.incoming() {
                if flag.load(Ordering::SeqCst) {
                    return;
                }
                let Ok(conn) = conn else { continue };
                std::thread::spawn(move || {
                    if let Ok(up) = TcpStream::connect(to) {
                        let _ = up.set_nodelay(true);
                        pipe(conn, up);
                    }
                });
            }
        });
        Ok(Outside {
            path: path.to_path_buf(),
            stop,
        })
    }
}

impl Drop for Outside {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // Wakes the accept so the thread sees the flag.
        let _ = UnixStream::connect(&self.path);
        let _ = std::fs::remove_file(&self.path);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Read, Write};

    #[test]
    fn bytes_cross_both_relays_both_ways() {
        let dir = tempfile::tempdir().unwrap();
        let echo = TcpListener::bind("127.0.0.1:0").unwrap();
        let echo_addr = echo.local_addr().unwrap();
        std::thread::spawn(move || {
            let (mut c, _) = echo.accept().unwrap();
            let mut buf = [0u8; 5];
            c.read_exact(&mut buf).unwrap();
            c.write_all(&buf).unwrap();
        });
        let sock = dir.path().join("proxy.sock");
        let _out = Outside::start(&sock, echo_addr).unwrap();
        let free = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap();
        inside(free, sock).unwrap();
        let mut c = TcpStream::connect(free).unwrap();
        c.write_all(b"hello").unwrap();
        let mut back = [0u8; 5];
        c.read_exact(&mut back).unwrap();
        assert_eq!(&back, b"hello");
    }
}
