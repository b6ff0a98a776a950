//! `observatory tui`: a live, never-blocking terminal window onto the system (ratatui).
//!
//! It talks to the read model and the gateway only through the generated clients of
//! `observatory-client`. The application is a state machine ([`app::App`]: `update` per
//! message, commands out) drawn by [`ui::draw`], which only reads it; requests and the live
//! stream run on tasks ([`net`]) that send their results back as messages, so a hung or dead
//! read model never freezes the screen. The loop redraws only when something changed (and at
//! most once per frame), so an idle screen costs next to nothing.

pub mod app;
pub mod contracts;
#[cfg(test)]
mod fixtures;
pub mod net;
pub mod terminal;
pub mod text;
pub mod theme;
pub mod ui;

use std::time::{Duration, Instant};

use crossterm::event::{Event, EventStream};
use futures_util::StreamExt;
use tokio::sync::mpsc;

use crate::app::{App, Cmd, Msg, Settings};

/// `observatory tui` (flags, or the environment variables named in `--help`).
#[derive(Debug, Clone, clap::Args)]
pub struct TuiConfig {
    /// The read model's base URL (what the UI shows).
    #[arg(long, value_name = "URL", env = "OBSERVATORY_READ_MODEL_URL", default_value = observatory_cli::DEFAULT_READ_MODEL_URL)]
    pub read_model: String,
    /// The gateway's base URL (where `s` submits).
    #[arg(long, value_name = "URL", env = "OBSERVATORY_GATEWAY_URL", default_value = observatory_cli::DEFAULT_GATEWAY_URL)]
    pub gateway: String,
    /// How often the current view is refreshed, in milliseconds (the live stream updates it
    /// in between).
    #[arg(long, value_name = "MS", env = "OBSERVATORY_TUI_REFRESH_MS", default_value_t = 1000,
          value_parser = clap::value_parser!(u64).range(100..=60_000))]
    pub refresh_ms: u64,
    /// How long a request may take before it counts as failed, in milliseconds.
    #[arg(long, value_name = "MS", env = "OBSERVATORY_TUI_TIMEOUT_MS", default_value_t = 5000,
          value_parser = clap::value_parser!(u64).range(100..=120_000))]
    pub timeout_ms: u64,
    /// Watch only: no submit form.
    #[arg(long, env = "OBSERVATORY_TUI_READ_ONLY")]
    pub read_only: bool,
}

/// Why the UI could not run.
#[derive(Debug, thiserror::Error)]
pub enum TuiError {
    #[error(
        "observatory tui needs a terminal, but its {0} is not one (run it in a terminal; for scripts use `observatory jobs` and `observatory job`)"
    )]
    NotATerminal(&'static str),
    #[error(transparent)]
    Invalid(Box<observatory_cli::CliError>),
    #[error("the terminal failed: {0}")]
    Terminal(#[source] std::io::Error),
    #[error(transparent)]
    Client(#[from] net::ClientError),
}

/// Whether `o` can start a browser here: a local display, and no SSH session.
fn can_open_browser() -> bool {
    let ssh = ["SSH_CONNECTION", "SSH_TTY", "SSH_CLIENT"]
        .iter()
        .any(|v| std::env::var_os(v).is_some());
    let display = cfg!(target_os = "macos")
        || ["DISPLAY", "WAYLAND_DISPLAY"]
            .iter()
            .any(|v| std::env::var_os(v).is_some_and(|d| !d.is_empty()));
    display && !ssh
}

/// Starts the system's browser on `url`, without waiting for it.
fn open_url(url: &str) -> std::io::Result<()> {
    let opener = if cfg!(target_os = "macos") {
        "open"
    } else {
        "xdg-open"
    };
    std::process::Command::new(opener)
        .arg(url)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .map(drop)
}

/// Runs the UI until the user quits (or SIGTERM/SIGHUP/SIGINT), then restores the terminal.
pub async fn run(config: TuiConfig) -> Result<(), TuiError> {
    let read_model = observatory_cli::parse_base_url("--read-model", &config.read_model)
        .map_err(|e| TuiError::Invalid(Box::new(e)))?;
    let gateway = observatory_cli::parse_base_url("--gateway", &config.gateway)
        .map_err(|e| TuiError::Invalid(Box::new(e)))?;
    let settings = Settings {
        read_model_url: read_model.clone(),
        gateway_url: gateway.clone(),
        refresh: Duration::from_millis(config.refresh_ms),
        read_only: config.read_only,
        can_open_browser: can_open_browser(),
        theme: theme::Theme::from_environment(),
    };
    let mut screen = terminal::enter()?;
    let result = run_on(
        &mut screen,
        settings,
        Duration::from_millis(config.timeout_ms),
    )
    .await;
    terminal::restore();
    result
}

async fn run_on(
    screen: &mut terminal::Screen,
    settings: Settings,
    timeout: Duration,
) -> Result<(), TuiError> {
    // Bounded: a flood of live events waits for the UI instead of filling memory.
    let (tx, mut rx) = mpsc::channel::<Msg>(1024);
    let network = net::Network::new(
        &settings.read_model_url,
        &settings.gateway_url,
        timeout,
        tx.clone(),
    )?;
    let stream = tokio::spawn(net::stream(settings.read_model_url.clone(), tx.clone()));
    let size = screen.size().map_err(TuiError::Terminal)?;
    let refresh = settings.refresh;
    let mut app = App::new(settings, chrono::Utc::now(), (size.width, size.height));
    let mut keys = EventStream::new();
    let mut refresh_timer = tokio::time::interval(refresh);
    refresh_timer.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    refresh_timer.tick().await; // the first tick is now: `start` covers it
    let mut clock = tokio::time::interval(Duration::from_secs(1));
    clock.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    let mut signals = Signals::new();

    let frame = Duration::from_millis(16);
    let mut last_draw: Option<Instant> = None;
    let mut pending = app.start();
    loop {
        for cmd in std::mem::take(&mut pending) {
            match cmd {
                Cmd::Fetch(request) => network.spawn(request),
                Cmd::OpenUrl(url) => {
                    if let Err(e) = open_url(&url) {
                        let failed = Msg::OpenFailed {
                            url,
                            reason: e.to_string(),
                        };
                        pending.extend(app.update(failed));
                    }
                }
            }
        }
        if app.should_quit() {
            break;
        }
        // Draw when something changed, at most once per frame.
        let due = last_draw.map(|t| t + frame);
        if app.is_dirty() && due.is_none_or(|d| Instant::now() >= d) {
            app.take_dirty();
            screen
                .draw(|f| ui::draw(f, &app))
                .map_err(TuiError::Terminal)?;
            last_draw = Some(Instant::now());
        }
        let wake = if app.is_dirty() { due } else { None };
        let msg = tokio::select! {
            biased;
            event = keys.next() => match event {
                Some(Ok(Event::Key(key))) => Some(Msg::Key(key)),
                Some(Ok(Event::Paste(text))) => Some(Msg::Paste(text)),
                Some(Ok(Event::Resize(width, height))) => Some(Msg::Resize { width, height }),
                Some(Ok(_)) => None,
                Some(Err(e)) => return Err(TuiError::Terminal(e)),
                None => break,
            },
            () = signals.next() => break,
            Some(msg) = rx.recv() => Some(msg),
            _ = refresh_timer.tick() => Some(Msg::Refresh),
            _ = clock.tick() => Some(Msg::Tick(chrono::Utc::now())),
            () = sleep_until(wake) => None,
        };
        if let Some(msg) = msg {
            pending.extend(app.update(msg));
            // Take what else is ready, so that a burst of events costs one frame.
            for _ in 0..256 {
                match rx.try_recv() {
                    Ok(msg) => pending.extend(app.update(msg)),
                    Err(_) => break,
                }
            }
        }
    }
    stream.abort();
    Ok(())
}

async fn sleep_until(deadline: Option<Instant>) {
    match deadline {
        Some(deadline) => tokio::time::sleep_until(deadline.into()).await,
        None => std::future::pending().await,
    }
}

/// SIGTERM, SIGHUP and SIGINT end the UI like `q` (raw mode turns Ctrl-C into a key, so
/// SIGINT comes only from `kill`).
struct Signals {
    #[cfg(unix)]
    streams: Vec<tokio::signal::unix::Signal>,
}

impl Signals {
    fn new() -> Self {
        #[cfg(unix)]
        {
            use tokio::signal::unix::{SignalKind, signal};
            let streams = [
                SignalKind::terminate(),
                SignalKind::hangup(),
                SignalKind::interrupt(),
            ]
            .into_iter()
            .filter_map(|kind| signal(kind).ok())
            .collect();
            Self { streams }
        }
        #[cfg(not(unix))]
        Self {}
    }

    async fn next(&mut self) {
        #[cfg(unix)]
        {
            if self.streams.is_empty() {
                return std::future::pending().await;
            }
            let waits = self.streams.iter_mut().map(|s| Box::pin(s.recv()));
            futures_util::future::select_all(waits).await;
        }
        #[cfg(not(unix))]
        std::future::pending().await
    }
}
