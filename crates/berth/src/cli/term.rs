//! Terminal helpers: is-a-tty, window size, raw mode with guaranteed restore.

use std::os::fd::{AsFd, BorrowedFd};
use std::sync::Mutex;

use nix::sys::termios::{self, SetArg, Termios};

/// Whether `fd` (0, 1, 2) is a terminal.
pub fn is_tty(fd: i32) -> bool {
    // SAFETY: isatty only inspects the descriptor number; an invalid fd just returns 0.
    unsafe { libc::isatty(fd) == 1 }
}

/// `(rows, cols)` of the terminal on `fd`, `None` when it is not a terminal.
pub fn window_size(fd: i32) -> Option<(u16, u16)> {
    let mut ws = libc::winsize {
        ws_row: 0,
        ws_col: 0,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    // SAFETY: TIOCGWINSZ writes a `winsize` into the pointer we pass, which points to a live,
    // properly sized local; the call fails harmlessly on non-terminals.
    let rc = unsafe { libc::ioctl(fd, libc::TIOCGWINSZ, &mut ws) };
    (rc == 0).then_some((ws.ws_row, ws.ws_col))
}

/// The size Docker sends as `ConsoleSize` and in resize calls: stdout's, `(0, 0)` if none.
pub fn stdout_size() -> (u16, u16) {
    window_size(1).unwrap_or((0, 0))
}

fn borrowed(fd: i32) -> BorrowedFd<'static> {
    // SAFETY: 0, 1 and 2 stay open for the whole life of the process.
    unsafe { BorrowedFd::borrow_raw(fd) }
}

/// Terminal settings saved by [`RawMode::enable`], restored once (on drop, or earlier by
/// [`RawMode::restore`], e.g. as soon as the session's output ends).
pub struct RawMode {
    saved: Mutex<Vec<(i32, Termios)>>,
}

impl RawMode {
    /// Puts stdin (and stdout, when it is a terminal too) in raw mode, like Docker's
    /// `setRawTerminal` (`cfmakeraw`: no echo, no line editing, no signals from keys, no
    /// output post-processing). `NORAW` in the environment leaves stdout alone, as in Docker.
    pub fn enable() -> std::io::Result<RawMode> {
        let mut saved = Vec::new();
        let mut fds = vec![0];
        if std::env::var_os("NORAW").is_none() {
            fds.push(1);
        }
        for fd in fds {
            if !is_tty(fd) {
                continue;
            }
            let fdb = borrowed(fd);
            let original = termios::tcgetattr(fdb.as_fd())?;
            let mut raw = original.clone();
            termios::cfmakeraw(&mut raw);
            termios::tcsetattr(fdb.as_fd(), SetArg::TCSANOW, &raw)?;
            saved.push((fd, original));
        }
        Ok(RawMode {
            saved: Mutex::new(saved),
        })
    }

    /// Restores the saved settings (idempotent).
    pub fn restore(&self) {
        let saved = match self.saved.lock() {
            Ok(mut g) => std::mem::take(&mut *g),
            Err(poisoned) => std::mem::take(&mut *poisoned.into_inner()),
        };
        for (fd, t) in saved.into_iter().rev() {
            let _ = termios::tcsetattr(borrowed(fd).as_fd(), SetArg::TCSANOW, &t);
        }
    }
}

impl Drop for RawMode {
    fn drop(&mut self) {
        self.restore();
    }
}

/// Reads a line from the terminal without echo (password prompts).
pub fn read_password(prompt: &str) -> std::io::Result<String> {
    use std::io::{BufRead, Write};
    let mut err = std::io::stderr();
    let _ = err.write_all(prompt.as_bytes());
    let _ = err.flush();
    let stdin = borrowed(0);
    let original = if is_tty(0) {
        let t = termios::tcgetattr(stdin.as_fd())?;
        let mut quiet = t.clone();
        quiet.local_flags.remove(termios::LocalFlags::ECHO);
        termios::tcsetattr(stdin.as_fd(), SetArg::TCSANOW, &quiet)?;
        Some(t)
    } else {
        None
    };
    let mut line = String::new();
    let res = std::io::stdin().lock().read_line(&mut line);
    if let Some(t) = original {
        let _ = termios::tcsetattr(stdin.as_fd(), SetArg::TCSANOW, &t);
        let _ = err.write_all(b"\n");
    }
    res?;
    Ok(line.trim_end_matches(['\n', '\r']).to_string())
}
