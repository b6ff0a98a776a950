//! The monitoring configuration in `k8s/observability/` against the real tools and the real
//! system: promtool and amtool accept it and every rule test passes, and every series that an
//! alerting rule, a recording rule or a dashboard panel names is exported by a role of a running
//! `observatory up` (expressions parsed with a PromQL parser, not matched by a pattern).

mod support;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use promql_parser::parser::{Expr, VectorSelector};
use promql_parser::util::{ExprVisitor, walk_expr};
use serde_json::Value;
use support::{free_port, observatory};

fn observability_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../k8s/observability")
}

/// Runs `program args` in `dir`; panics with its output unless it succeeds.
fn run_ok(dir: &Path, program: &str, args: &[&str]) -> String {
    let output = Command::new(program)
        .args(args)
        .current_dir(dir)
        .output()
        .unwrap_or_else(|e| {
            panic!("cannot run {program} ({e}): apt-get install -y prometheus prometheus-alertmanager (`cargo xtask test` installs them)")
        });
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(
        output.status.success(),
        "`{program} {}` failed:\n{text}",
        args.join(" ")
    );
    text
}

fn files(dir: &Path, extension: &str) -> Vec<PathBuf> {
    let mut found: Vec<PathBuf> = std::fs::read_dir(dir)
        .map(|entries| {
            entries
                .filter_map(Result::ok)
                .map(|e| e.path())
                .filter(|p| p.extension().is_some_and(|e| e == extension))
                .collect()
        })
        .unwrap_or_default();
    found.sort();
    found
}

fn relative(paths: &[PathBuf], base: &Path) -> Vec<String> {
    paths
        .iter()
        .map(|p| {
            p.strip_prefix(base)
                .unwrap_or(p)
                .to_string_lossy()
                .into_owned()
        })
        .collect()
}

#[test]
fn promtool_and_amtool_accept_the_configuration_and_every_rule_test_passes() {
    let dir = observability_dir();
    for config in ["prometheus.yml", "prometheus-k8s.yml"] {
        run_ok(&dir, "promtool", &["check", "config", config]);
    }
    let rules = relative(&files(&dir.join("rules"), "yml"), &dir);
    assert!(!rules.is_empty(), "no rule files in {}", dir.display());
    let mut args = vec!["check", "rules"];
    args.extend(rules.iter().map(String::as_str));
    run_ok(&dir, "promtool", &args);
    let tests = relative(&files(&dir.join("tests"), "yml"), &dir);
    assert!(!tests.is_empty(), "no promtool rule tests");
    let mut args = vec!["test", "rules"];
    args.extend(tests.iter().map(String::as_str));
    let report = run_ok(&dir, "promtool", &args);
    eprintln!("{report}");
    run_ok(&dir, "amtool", &["check-config", "alertmanager.yml"]);
}

/// The metric names an expression selects (`name{…}`, `name[5m]`, `{__name__="name"}`).
#[derive(Default)]
struct Names(BTreeSet<String>);

impl ExprVisitor for Names {
    type Error = ();

    fn pre_visit(&mut self, expr: &Expr) -> Result<bool, ()> {
        let selector: Option<&VectorSelector> = match expr {
            Expr::VectorSelector(vs) => Some(vs),
            Expr::MatrixSelector(ms) => Some(&ms.vs),
            _ => None,
        };
        if let Some(vs) = selector {
            let by_matcher = vs
                .matchers
                .matchers
                .iter()
                .find(|m| m.name == "__name__")
                .map(|m| m.value.clone());
            match vs.name.clone().or(by_matcher) {
                Some(name) => {
                    self.0.insert(name);
                }
                None => panic!("a selector without a metric name: {vs}"),
            }
        }
        Ok(true)
    }
}

fn names_in(expr: &str, whence: &str) -> BTreeSet<String> {
    let parsed = promql_parser::parser::parse(expr)
        .unwrap_or_else(|e| panic!("{whence}: not PromQL ({e}):\n{expr}"));
    let mut names = Names::default();
    let _ = walk_expr(&mut names, &parsed);
    names.0
}

/// Every `expr` of a Grafana dashboard (panels nest in rows).
fn panel_expressions(value: &Value, out: &mut Vec<String>) {
    match value {
        Value::Object(members) => {
            if let Some(Value::String(expr)) = members.get("expr") {
                out.push(expr.clone());
            }
            for member in members.values() {
                panel_expressions(member, out);
            }
        }
        Value::Array(items) => items.iter().for_each(|i| panel_expressions(i, out)),
        _ => {}
    }
}

/// `observatory up` on free ports, killed when dropped.
struct Up(Child);

impl Drop for Up {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

async fn scrape(base: &str) -> String {
    let started = Instant::now();
    loop {
        if let Ok(answer) = reqwest::get(format!("{base}/readyz")).await
            && answer.status() == 200
        {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "{base} not ready within a minute"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    reqwest::get(format!("{base}/metrics"))
        .await
        .expect("scrape")
        .text()
        .await
        .expect("text")
}

/// The series names an exposition can hold: each family, and a histogram's or summary's parts.
fn exported_names(exposition: &str, into: &mut BTreeSet<String>) {
    for line in exposition.lines() {
        let Some(rest) = line.strip_prefix("# TYPE ") else {
            continue;
        };
        let mut words = rest.split_whitespace();
        let (Some(name), Some(kind)) = (words.next(), words.next()) else {
            continue;
        };
        into.insert(name.to_owned());
        if kind == "histogram" || kind == "summary" {
            for part in ["_bucket", "_sum", "_count"] {
                into.insert(format!("{name}{part}"));
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn every_series_a_rule_or_a_panel_names_is_exported_by_a_running_system() {
    let ports: Vec<u16> = (0..4).map(|_| free_port()).collect();
    let _up = Up(observatory()
        .args([
            "up",
            "--gateway-addr",
            &format!("127.0.0.1:{}", ports[0]),
            "--read-model-addr",
            &format!("127.0.0.1:{}", ports[1]),
            "--processor-addr",
            &format!("127.0.0.1:{}", ports[2]),
            "--metrics-engine-addr",
            &format!("127.0.0.1:{}", ports[3]),
        ])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("starting observatory up"));
    let mut exported = BTreeSet::new();
    for port in &ports {
        exported_names(
            &scrape(&format!("http://127.0.0.1:{port}")).await,
            &mut exported,
        );
    }
    // Written by Prometheus itself, for every target and every alert.
    for own in ["up", "ALERTS", "ALERTS_FOR_STATE"] {
        exported.insert(own.to_owned());
    }

    let dir = observability_dir();
    let mut recorded = BTreeSet::new();
    let mut used: Vec<(String, String)> = Vec::new();
    let mut expressions = 0;
    for file in files(&dir.join("rules"), "yml") {
        let text = std::fs::read_to_string(&file).expect("a rule file");
        let doc: serde_yaml::Value = serde_yaml::from_str(&text).expect("YAML");
        let groups = doc["groups"].as_sequence().expect("groups").clone();
        for rule in groups
            .iter()
            .flat_map(|g| g["rules"].as_sequence().cloned().unwrap_or_default())
        {
            let expr = rule["expr"].as_str().expect("every rule has an expr");
            let name = rule["alert"]
                .as_str()
                .or(rule["record"].as_str())
                .expect("an alert or a record");
            if let Some(record) = rule["record"].as_str() {
                recorded.insert(record.to_owned());
            }
            expressions += 1;
            for metric in names_in(expr, name) {
                used.push((name.to_owned(), metric));
            }
        }
    }
    let mut panels = 0;
    for file in files(&dir.join("grafana/dashboards"), "json") {
        let dashboard: Value =
            serde_json::from_str(&std::fs::read_to_string(&file).expect("a dashboard"))
                .expect("dashboard JSON");
        let mut exprs = Vec::new();
        panel_expressions(&dashboard, &mut exprs);
        for expr in exprs {
            panels += 1;
            let whence = format!("{} panel query", file.display());
            for metric in names_in(&expr, &whence) {
                used.push((whence.clone(), metric));
            }
        }
    }
    assert!(expressions > 0, "no rules read from {}", dir.display());
    let missing: Vec<String> = used
        .iter()
        .filter(|(_, metric)| !exported.contains(metric) && !recorded.contains(metric))
        .map(|(whence, metric)| format!("{whence}: {metric}"))
        .collect();
    assert!(
        missing.is_empty(),
        "series named but neither exported nor recorded:\n  {}\n\nexported:\n  {}",
        missing.join("\n  "),
        exported.iter().cloned().collect::<Vec<_>>().join("\n  ")
    );
    eprintln!(
        "{expressions} rule expressions and {panels} panel queries name {} distinct series, every one exported or recorded",
        used.iter().map(|(_, m)| m).collect::<BTreeSet<_>>().len()
    );
}
