//! Colours, and what replaces them when `NO_COLOR` is set (https://no-color.org): then every
//! state stays readable from its text and from bold/reversed/underlined attributes alone.

use ratatui::style::{Color, Modifier, Style};

use crate::contracts::alert::AlertSeverity;
use crate::contracts::job::JobStatus;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Theme {
    color: bool,
}

impl Theme {
    pub const COLOR: Self = Self { color: true };
    pub const PLAIN: Self = Self { color: false };

    /// Colours unless `NO_COLOR` is set to anything non-empty.
    pub fn from_environment() -> Self {
        match std::env::var_os("NO_COLOR") {
            Some(value) if !value.is_empty() => Self::PLAIN,
            _ => Self::COLOR,
        }
    }

    fn fg(&self, color: Color) -> Style {
        if self.color {
            Style::new().fg(color)
        } else {
            Style::new()
        }
    }

    pub fn status(&self, status: JobStatus) -> Style {
        match status {
            JobStatus::Pending => self.fg(Color::Gray),
            JobStatus::Running => self.fg(Color::Cyan),
            JobStatus::Retrying => self.fg(Color::Yellow),
            JobStatus::Completed => self.fg(Color::Green),
            JobStatus::Failed => self.fg(Color::Red),
            JobStatus::DeadLettered => self.fg(Color::Magenta).add_modifier(Modifier::BOLD),
        }
    }

    pub fn severity(&self, severity: AlertSeverity) -> Style {
        match severity {
            AlertSeverity::Critical => self.fg(Color::Red).add_modifier(Modifier::BOLD),
            AlertSeverity::Warning => self.fg(Color::Yellow),
            AlertSeverity::Info => self.fg(Color::Blue),
        }
    }

    /// The selected row: reversed in both modes, so it shows without colour.
    pub fn selected(&self) -> Style {
        Style::new().add_modifier(Modifier::REVERSED)
    }

    pub fn title(&self) -> Style {
        Style::new().add_modifier(Modifier::BOLD)
    }

    pub fn header(&self) -> Style {
        self.fg(Color::Yellow).add_modifier(Modifier::BOLD)
    }

    pub fn dim(&self) -> Style {
        if self.color {
            Style::new().fg(Color::DarkGray)
        } else {
            Style::new().add_modifier(Modifier::DIM)
        }
    }

    pub fn key(&self) -> Style {
        self.fg(Color::Cyan).add_modifier(Modifier::BOLD)
    }

    pub fn active_tab(&self) -> Style {
        if self.color {
            Style::new()
                .fg(Color::Black)
                .bg(Color::Cyan)
                .add_modifier(Modifier::BOLD)
        } else {
            Style::new().add_modifier(Modifier::BOLD | Modifier::REVERSED)
        }
    }

    pub fn live(&self) -> Style {
        self.fg(Color::Green).add_modifier(Modifier::BOLD)
    }

    pub fn warning(&self) -> Style {
        self.fg(Color::Yellow).add_modifier(Modifier::BOLD)
    }

    pub fn error(&self) -> Style {
        self.fg(Color::Red).add_modifier(Modifier::BOLD)
    }

    /// Data that is not current any more.
    pub fn stale(&self) -> Style {
        self.fg(Color::Yellow)
            .add_modifier(Modifier::BOLD | Modifier::UNDERLINED)
    }

    pub fn completed(&self) -> Style {
        self.fg(Color::Green)
    }

    pub fn failed(&self) -> Style {
        self.fg(Color::Red)
    }

    pub fn submitted(&self) -> Style {
        self.fg(Color::Blue)
    }

    pub fn uses_color(&self) -> bool {
        self.color
    }
}
