//! End to end: `observatory tui` in a real terminal (tmux) against `observatory up`. A job is
//! submitted through the form with keys, followed until COMPLETED in the jobs view and in its
//! timeline; then the process serving the read model stops (the indicator says offline) and
//! starts again on the same ports and data (the indicator says live again).

use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

mod support;
use support::{free_port, observatory};

/// Upper bound of every wait.
const WAIT: Duration = Duration::from_secs(60);

/// `observatory up` on fixed ports, so that it can be restarted where the UI looks for it.
struct Up {
    child: Child,
}

impl Up {
    fn start(ports: &[u16; 4], data: &std::path::Path) -> Self {
        let addr = |port: u16| format!("127.0.0.1:{port}");
        let child = observatory()
            .arg("up")
            .args(["--gateway-addr", &addr(ports[0])])
            .args(["--read-model-addr", &addr(ports[1])])
            .args(["--processor-addr", &addr(ports[2])])
            .args(["--metrics-engine-addr", &addr(ports[3])])
            .arg("--data-dir")
            .arg(data)
            .env("RUST_LOG", "warn")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("starting observatory up");
        let up = Self { child };
        let ready = format!("http://{}/readyz", addr(ports[1]));
        wait("the read model to be ready", || {
            Command::new("curl")
                .args(["-fsS", "-o", "/dev/null", &ready])
                .status()
                .is_ok_and(|s| s.success())
                .then_some(())
        });
        up
    }

    /// Like a crash: nothing is drained.
    fn kill(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Up {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A tmux server of this test alone (its own socket), with one window running a command.
struct Tmux {
    socket: String,
}

impl Tmux {
    fn start(command: &str) -> Self {
        let socket = format!("obs-tui-{}", uuid::Uuid::new_v4().simple());
        let tmux = Self { socket };
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
        ]);
        assert!(
            out.status.success(),
            "tmux new-session: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        tmux
    }

    fn run(&self, args: &[&str]) -> Output {
        Command::new("tmux")
            .args(["-L", &self.socket])
            .args(args)
            .env_remove("TMUX")
            .output()
            .unwrap_or_else(|e| {
                panic!(
                    "running tmux ({e}): install it (apt-get install tmux); `cargo xtask test` does"
                )
            })
    }

    fn keys(&self, keys: &[&str]) {
        for key in keys {
            let out = self.run(&["send-keys", "-t", "tui", key]);
            assert!(out.status.success(), "send-keys {key}");
        }
    }

    /// Types `text` literally.
    fn type_text(&self, text: &str) {
        let out = self.run(&["send-keys", "-t", "tui", "-l", text]);
        assert!(out.status.success(), "send-keys -l {text}");
    }

    fn screen(&self) -> String {
        String::from_utf8_lossy(&self.run(&["capture-pane", "-p", "-t", "tui"]).stdout).into_owned()
    }

    /// Waits until the screen shows what `check` looks for; returns the screen.
    fn wait_for(&self, what: &str, check: impl Fn(&str) -> bool) -> String {
        let mut last = String::new();
        let started = Instant::now();
        while started.elapsed() < WAIT {
            last = self.screen();
            if check(&last) {
                return last;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        panic!("the screen did not show {what} within {WAIT:?}; it shows:\n{last}");
    }

    fn alive(&self) -> bool {
        self.run(&["has-session", "-t", "tui"]).status.success()
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        let _ = self.run(&["kill-server"]);
    }
}

fn wait<T>(what: &str, mut probe: impl FnMut() -> Option<T>) -> T {
    let started = Instant::now();
    loop {
        if let Some(value) = probe() {
            return value;
        }
        assert!(started.elapsed() < WAIT, "waited {WAIT:?} for {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn submit_follow_and_survive_a_read_model_restart_in_a_real_terminal() {
    let data = std::env::temp_dir().join(format!("obs-tui-{}", uuid::Uuid::new_v4().simple()));
    let ports = [free_port(), free_port(), free_port(), free_port()];
    let up = Up::start(&ports, &data);
    let command = format!(
        "{} tui --read-model http://127.0.0.1:{} --gateway http://127.0.0.1:{} --refresh-ms 250",
        env!("CARGO_BIN_EXE_observatory"),
        ports[1],
        ports[0]
    );
    let tmux = Tmux::start(&command);
    tmux.wait_for("the live indicator", |s| {
        s.contains("● live") && s.contains("Totals")
    });

    // The form: the type and its payload template are there; a key is typed; Ctrl-S sends.
    let key = format!("tui-e2e-{}", uuid::Uuid::new_v4().simple());
    tmux.keys(&["s"]);
    tmux.wait_for("the submit form", |s| {
        s.contains("Submit a job to") && s.contains("\"durationMs\": 0")
    });
    tmux.keys(&["Tab", "Tab", "Tab"]);
    tmux.type_text(&key);
    tmux.keys(&["C-s"]);
    // The new job opens in the detail view and is followed until it is done.
    let detail = tmux.wait_for("the job completed with its timeline", |s| {
        s.contains("COMPLETED") && s.contains("job.completed") && s.contains("· finished")
    });
    for event in ["job.created", "job.started", "job.completed"] {
        assert!(detail.contains(event), "{event} in the timeline:\n{detail}");
    }
    let id = detail
        .lines()
        .find_map(|l| l.split("┌ Job ").nth(1))
        .and_then(|rest| rest.split_whitespace().next())
        .expect("the job's id in the title")
        .to_owned();
    assert!(uuid::Uuid::try_parse(&id).is_ok(), "{id}");

    // The jobs view lists it, COMPLETED.
    tmux.keys(&["2"]);
    tmux.wait_for("the job in the jobs list", |s| {
        s.lines()
            .any(|l| l.contains(&id[..8]) && l.contains("COMPLETED"))
    });

    // The read model goes away: offline, and the data says it is stale.
    up.kill();
    // Said in the status line, and on the data shown, which is marked stale.
    tmux.wait_for("the offline indicator and the stale mark", |s| {
        s.contains("offline since") && s.contains("STALE")
    });
    // It comes back on the same ports and data: live again, the job still there.
    let _up = Up::start(&ports, &data);
    tmux.wait_for("live again", |s| {
        s.contains("● live") && !s.contains("STALE") && s.contains(&id[..8])
    });

    // q quits and gives the terminal back.
    tmux.keys(&["q"]);
    wait("the UI to quit", || (!tmux.alive()).then_some(()));
    let _ = std::fs::remove_dir_all(&data);
}

#[test]
fn without_a_terminal_it_says_so_and_fails() {
    let out = observatory()
        .args(["tui", "--read-model", "http://127.0.0.1:9"])
        .stdin(Stdio::null())
        .output()
        .expect("running observatory tui");
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.starts_with("error: observatory tui needs a terminal"),
        "{stderr}"
    );
    assert_eq!(stderr.lines().count(), 1, "one line: {stderr}");
}

#[test]
fn a_read_model_that_never_answers_does_not_freeze_the_screen() {
    // Accepts connections and never says a word.
    let silent = std::net::TcpListener::bind("127.0.0.1:0").expect("a port");
    let port = silent.local_addr().expect("its address").port();
    let held = std::thread::spawn(move || {
        let mut connections = Vec::new();
        for stream in silent.incoming().take(64) {
            connections.push(stream);
        }
    });
    let command = format!(
        "{} tui --read-model http://127.0.0.1:{port} --gateway http://127.0.0.1:{port} --timeout-ms 3000",
        env!("CARGO_BIN_EXE_observatory"),
    );
    let tmux = Tmux::start(&command);
    tmux.wait_for("the first screen, loading", |s| {
        s.contains("Totals") && s.contains("connecting")
    });
    // Every key is answered while all requests hang.
    tmux.keys(&["2"]);
    tmux.wait_for("the jobs view", |s| {
        s.contains("Jobs") && s.contains("Loading…")
    });
    tmux.keys(&["?"]);
    tmux.wait_for("the help", |s| s.contains("this help (any key closes it)"));
    tmux.keys(&["Escape", "4"]);
    tmux.wait_for("the events view", |s| s.contains("Events · live"));
    // The timeouts turn into a plain statement, not a frozen or blank screen.
    tmux.wait_for("the timeout said", |s| {
        s.contains("offline since") || s.contains("no answer within")
    });
    tmux.keys(&["q"]);
    wait("the UI to quit", || (!tmux.alive()).then_some(()));
    drop(held);
}
