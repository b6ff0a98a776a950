//! The terminal: raw mode, the alternate screen and bracketed paste on the way in; all of it
//! undone on the way out, whether the UI quits, is interrupted by a signal, or panics.

use std::io::{IsTerminal, Stdout};

use crossterm::event::{DisableBracketedPaste, EnableBracketedPaste};
use crossterm::execute;
use crossterm::terminal::{
    EnterAlternateScreen, LeaveAlternateScreen, disable_raw_mode, enable_raw_mode,
};
use ratatui::Terminal;
use ratatui::backend::CrosstermBackend;

use crate::TuiError;

pub type Screen = Terminal<CrosstermBackend<Stdout>>;

/// Takes over the terminal; fails clearly when there is none.
pub fn enter() -> Result<Screen, TuiError> {
    if !std::io::stdin().is_terminal() {
        return Err(TuiError::NotATerminal("standard input"));
    }
    if !std::io::stdout().is_terminal() {
        return Err(TuiError::NotATerminal("standard output"));
    }
    install_panic_hook();
    enable_raw_mode().map_err(TuiError::Terminal)?;
    let mut stdout = std::io::stdout();
    if let Err(e) = execute!(stdout, EnterAlternateScreen, EnableBracketedPaste) {
        restore();
        return Err(TuiError::Terminal(e));
    }
    let mut screen = Terminal::new(CrosstermBackend::new(stdout)).map_err(|e| {
        restore();
        TuiError::Terminal(e)
    })?;
    screen.clear().map_err(TuiError::Terminal)?;
    Ok(screen)
}

/// Gives the terminal back as it was (best effort: each step is tried).
pub fn restore() {
    let _ = disable_raw_mode();
    let _ = execute!(
        std::io::stdout(),
        DisableBracketedPaste,
        LeaveAlternateScreen,
        crossterm::cursor::Show
    );
}

/// A panic restores the terminal first, so that its message is readable and the shell usable.
fn install_panic_hook() {
    let previous = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        restore();
        previous(info);
    }));
}
