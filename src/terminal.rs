//! The local terminal of an interactive session (`postgres|mysql shell`): raw mode for as long
//! as the session lasts, and its size for the remote terminal.
//!
//! In raw mode every key, Ctrl-C included, goes to the client in the container, as with
//! `kubectl exec -it`; the guard puts the settings back when it is dropped, so every way out of
//! the session (the client exits, an error, SIGTERM or SIGHUP handled by the caller) restores
//! the terminal.

use std::io::IsTerminal;
use std::os::fd::BorrowedFd;

use rustix::termios::{self, OptionalActions, Termios};

fn stdin_fd() -> BorrowedFd<'static> {
    // SAFETY: fd 0 stays open for the life of the process (we never close it).
    unsafe { BorrowedFd::borrow_raw(0) }
}

/// Is our stdin a terminal?
pub fn stdin_is_terminal() -> bool {
    std::io::stdin().is_terminal()
}

/// The size of the terminal on stdin as (columns, rows); `None` when it cannot be read or is
/// unknown (0×0, e.g. a pty nobody sized).
pub fn size() -> Option<(u16, u16)> {
    let w = termios::tcgetwinsize(stdin_fd()).ok()?;
    (w.ws_col > 0 && w.ws_row > 0).then_some((w.ws_col, w.ws_row))
}

/// Raw mode on the terminal on stdin until dropped.
pub struct RawMode {
    saved: Termios,
}

impl RawMode {
    /// Switches the terminal on stdin to raw mode; the settings before are restored on drop.
    pub fn enable() -> std::io::Result<RawMode> {
        let saved = termios::tcgetattr(stdin_fd())?;
        let mut raw = saved.clone();
        raw.make_raw();
        // `Now`, not `Flush`: what was typed while the session was connecting is the client's.
        termios::tcsetattr(stdin_fd(), OptionalActions::Now, &raw)?;
        Ok(RawMode { saved })
    }
}

impl Drop for RawMode {
    fn drop(&mut self) {
        if let Err(e) = termios::tcsetattr(stdin_fd(), OptionalActions::Now, &self.saved) {
            tracing::warn!("cannot restore the terminal settings: {e}; run `reset`");
        }
    }
}
