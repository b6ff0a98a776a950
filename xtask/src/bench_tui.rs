//! `cargo xtask bench --tui`: what the terminal UI costs. Against `observatory up` (release)
//! with `--jobs` jobs in its store (submitted through the gateway by the load generator, kept
//! in `target/bench-tui/` for the next run), it measures from outside, in tmux:
//! - time to the first screen with data (process start → the overview shows the totals), and
//!   to the first page of the jobs list (key `2` → rows on screen), several times each;
//! - CPU used by the UI while it sits on the overview of an idle system for 30 s
//!   (utime + stime from /proc).

use crate::system::{Ports, System, free_port};
use anyhow::{Context, Result, bail};
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

/// How many times each start is measured.
const RUNS: usize = 5;
/// How long the UI sits idle while its CPU is measured.
const IDLE: Duration = Duration::from_secs(30);

pub fn run(root: &Path, bin: &Path, jobs: u64) -> Result<()> {
    let data = root.join("target/bench-tui");
    let marker = data.join("jobs");
    let seeded: u64 = std::fs::read_to_string(&marker)
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(0);
    if seeded != jobs {
        let _ = std::fs::remove_dir_all(&data);
    }
    std::fs::create_dir_all(&data)?;
    let ports = Ports {
        gateway: free_port()?,
        read_model: free_port()?,
        processor: free_port()?,
        metrics_engine: free_port()?,
    };
    let mut system = System::start_up_in(root, bin, &ports, "warn", Some(&data))?;
    let (gateway, read_model) = (
        format!("http://{}", ports.gateway),
        format!("http://{}", ports.read_model),
    );
    if seeded != jobs {
        eprintln!(
            "==> seeding {jobs} jobs through the gateway (kept in {} for later runs)",
            data.display()
        );
        // Below the embedded broker's capacity, so that none is refused.
        let status = Command::new(bin.join("observatory-bench"))
            .args(["--gateway", &gateway, "--read-model", &read_model])
            .args(["--jobs", &jobs.to_string(), "--rate", "1000"])
            .status()
            .context("running observatory-bench")?;
        if !status.success() {
            bail!("seeding failed (see above)");
        }
        std::fs::write(&marker, jobs.to_string())?;
    }

    let command = format!(
        "{} tui --read-model {read_model} --gateway {gateway}",
        bin.join("observatory").display()
    );
    let mut first_screen = Vec::new();
    let mut jobs_page = Vec::new();
    for _ in 0..RUNS {
        let started = Instant::now();
        let tmux = Tmux::start(&command)?;
        tmux.wait_for(|s| {
            s.contains("submitted") && s.contains("● live") && !s.contains("Loading")
        })?;
        first_screen.push(started.elapsed());
        let pressed = Instant::now();
        tmux.keys("2")?;
        tmux.wait_for(|s| s.contains("COMPLETED"))?;
        jobs_page.push(pressed.elapsed());
    }

    eprintln!(
        "==> CPU of the idle UI on the overview, {} s",
        IDLE.as_secs()
    );
    let tmux = Tmux::start(&command)?;
    tmux.wait_for(|s| s.contains("submitted") && s.contains("● live"))?;
    let pid = tmux.ui_pid()?;
    std::thread::sleep(Duration::from_secs(2));
    let before = cpu_ticks(pid)?;
    std::thread::sleep(IDLE);
    let used = cpu_ticks(pid)? - before;
    #[allow(clippy::cast_precision_loss)]
    let percent = used as f64 / clock_ticks()? / IDLE.as_secs_f64() * 100.0;
    drop(tmux);
    system.stop();

    println!("observatory tui against observatory up with {jobs} jobs ({RUNS} runs each):");
    println!(
        "  first screen with data (start → totals shown): {}",
        summary(&first_screen)
    );
    println!(
        "  first page of the jobs list (key 2 → rows):     {}",
        summary(&jobs_page)
    );
    println!(
        "  CPU while idle on the overview for {} s: {percent:.2} % of one core ({used} ticks)",
        IDLE.as_secs()
    );
    Ok(())
}

fn summary(times: &[Duration]) -> String {
    let mut ms: Vec<f64> = times.iter().map(|d| d.as_secs_f64() * 1000.0).collect();
    ms.sort_by(f64::total_cmp);
    let median = ms.get(ms.len() / 2).copied().unwrap_or(0.0);
    let max = ms.last().copied().unwrap_or(0.0);
    format!("median {median:.0} ms, max {max:.0} ms")
}

/// utime + stime of `pid`, in clock ticks.
fn cpu_ticks(pid: u32) -> Result<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .with_context(|| format!("reading /proc/{pid}/stat"))?;
    // Fields after the command name (which may contain spaces) start after the last ')'.
    let rest = stat.rsplit_once(')').map(|(_, r)| r).unwrap_or("");
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let field = |i: usize| -> Result<u64> {
        fields
            .get(i)
            .and_then(|f| f.parse().ok())
            .with_context(|| format!("field {i} of /proc/{pid}/stat"))
    };
    // utime and stime are fields 14 and 15 of stat; here 11 and 12 (state is 0).
    Ok(field(11)? + field(12)?)
}

fn clock_ticks() -> Result<f64> {
    let out = Command::new("getconf").arg("CLK_TCK").output()?;
    String::from_utf8_lossy(&out.stdout)
        .trim()
        .parse()
        .context("getconf CLK_TCK")
}

/// One tmux server of the bench's own, with the UI in a 120×40 window.
struct Tmux {
    socket: String,
}

impl Tmux {
    fn start(command: &str) -> Result<Self> {
        let tmux = Self {
            socket: format!("obs-bench-{}", std::process::id()),
        };
        let _ = tmux.run(&["kill-server"]);
        let out = tmux.run(&[
            "new-session",
            "-d",
            "-s",
            "tui",
            "-x",
            "120",
            "-y",
            "40",
            command,
        ])?;
        if !out.status.success() {
            bail!("tmux: {}", String::from_utf8_lossy(&out.stderr));
        }
        Ok(tmux)
    }

    fn run(&self, args: &[&str]) -> Result<std::process::Output> {
        Command::new("tmux")
            .args(["-L", &self.socket])
            .args(args)
            .env_remove("TMUX")
            .output()
            .context("running tmux (apt-get install tmux)")
    }

    fn keys(&self, keys: &str) -> Result<()> {
        self.run(&["send-keys", "-t", "tui", keys]).map(drop)
    }

    fn wait_for(&self, check: impl Fn(&str) -> bool) -> Result<()> {
        let started = Instant::now();
        loop {
            let out = self.run(&["capture-pane", "-p", "-t", "tui"])?;
            let screen = String::from_utf8_lossy(&out.stdout);
            if check(&screen) {
                return Ok(());
            }
            if started.elapsed() > Duration::from_secs(60) {
                bail!("the UI did not show what was expected within 60 s:\n{screen}");
            }
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    /// The UI's process: the pane's, or its child when a shell runs it.
    fn ui_pid(&self) -> Result<u32> {
        let out = self.run(&["list-panes", "-t", "tui", "-F", "#{pane_pid}"])?;
        let pane: u32 = String::from_utf8_lossy(&out.stdout)
            .trim()
            .parse()
            .context("the pane's pid")?;
        let is_ui = |pid: u32| {
            std::fs::read_to_string(format!("/proc/{pid}/comm"))
                .is_ok_and(|c| c.trim() == "observatory")
        };
        if is_ui(pane) {
            return Ok(pane);
        }
        for entry in std::fs::read_dir("/proc")?.flatten() {
            let Some(pid) = entry
                .file_name()
                .to_str()
                .and_then(|n| n.parse::<u32>().ok())
            else {
                continue;
            };
            let parent = std::fs::read_to_string(format!("/proc/{pid}/stat"))
                .ok()
                .and_then(|s| s.rsplit_once(')').map(|(_, r)| r.to_owned()))
                .and_then(|r| {
                    r.split_whitespace()
                        .nth(1)
                        .and_then(|p| p.parse::<u32>().ok())
                });
            if parent == Some(pane) && is_ui(pid) {
                return Ok(pid);
            }
        }
        bail!("the UI's process was not found under tmux pane {pane}")
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        let _ = self.run(&["kill-server"]);
    }
}
