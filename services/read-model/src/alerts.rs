//! `/alerts`: the active alerts of Alertmanager (`GET {url}/api/v2/alerts?active=true`),
//! reduced to the contract's `Alert`. Always an answer: when no URL is configured the source is
//! `not-configured`; when Alertmanager cannot be reached, answers with an error status, or
//! answers something that is not a list of alerts, the source is `unavailable` with the reason
//! in `detail`. Alerts are sorted by severity (critical first), then newest first.

use std::collections::HashMap;
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::Deserialize;

use crate::ReadModelError;
use crate::contracts::alert::{Alert, AlertSeverity, AlertState};
use crate::contracts::alert_list::{AlertList, AlertSource};

pub(crate) struct AlertClient {
    /// The alerts endpoint, when configured.
    endpoint: Option<String>,
    http: reqwest::Client,
}

/// One alert as Alertmanager's API v2 (`gettableAlert`) describes it; only what is used.
#[derive(Debug, Deserialize)]
struct GettableAlert {
    #[serde(default)]
    labels: HashMap<String, String>,
    #[serde(default)]
    annotations: HashMap<String, String>,
    #[serde(rename = "startsAt")]
    starts_at: DateTime<Utc>,
    #[serde(rename = "endsAt", default)]
    ends_at: Option<DateTime<Utc>>,
    #[serde(default)]
    fingerprint: Option<String>,
    #[serde(default)]
    status: Option<GettableStatus>,
}

#[derive(Debug, Deserialize)]
struct GettableStatus {
    state: String,
}

impl AlertClient {
    pub(crate) fn new(url: Option<String>, timeout: Duration) -> Result<Self, ReadModelError> {
        let endpoint = url
            .map(|u| u.trim().trim_end_matches('/').to_string())
            .filter(|u| !u.is_empty())
            .map(|u| format!("{u}/api/v2/alerts?active=true"));
        let http = reqwest::Client::builder()
            .timeout(timeout)
            .connect_timeout(timeout)
            .build()
            .map_err(ReadModelError::HttpClient)?;
        Ok(Self { endpoint, http })
    }

    pub(crate) async fn active(&self) -> AlertList {
        let Some(endpoint) = &self.endpoint else {
            return AlertList {
                source: AlertSource::NotConfigured,
                detail: Some("no Alertmanager URL is configured".into()),
                alerts: Vec::new(),
            };
        };
        match self.fetch(endpoint).await {
            Ok(alerts) => AlertList {
                source: AlertSource::Alertmanager,
                detail: None,
                alerts,
            },
            Err(detail) => {
                tracing::warn!(%detail, "Alertmanager unavailable");
                AlertList {
                    source: AlertSource::Unavailable,
                    detail: Some(detail),
                    alerts: Vec::new(),
                }
            }
        }
    }

    async fn fetch(&self, endpoint: &str) -> Result<Vec<Alert>, String> {
        let response = self
            .http
            .get(endpoint)
            .send()
            .await
            .map_err(|e| format!("Alertmanager cannot be reached: {}", error_chain(&e)))?;
        let status = response.status();
        if !status.is_success() {
            return Err(format!("Alertmanager answered HTTP {status}"));
        }
        let body = response
            .bytes()
            .await
            .map_err(|e| format!("reading Alertmanager's answer: {}", error_chain(&e)))?;
        let gettable: Vec<GettableAlert> = serde_json::from_slice(&body)
            .map_err(|e| format!("Alertmanager's answer is not a list of alerts: {e}"))?;
        let mut alerts: Vec<Alert> = gettable.into_iter().map(to_contract).collect();
        alerts.sort_by(|a, b| {
            rank(a.severity)
                .cmp(&rank(b.severity))
                .then(b.starts_at.cmp(&a.starts_at))
                .then(a.name.cmp(&b.name))
        });
        Ok(alerts)
    }
}

fn rank(severity: AlertSeverity) -> u8 {
    match severity {
        AlertSeverity::Critical => 0,
        AlertSeverity::Warning => 1,
        AlertSeverity::Info => 2,
    }
}

fn to_contract(alert: GettableAlert) -> Alert {
    let severity = alert
        .labels
        .get("severity")
        .and_then(|s| s.parse().ok())
        .unwrap_or(AlertSeverity::Info);
    // Alertmanager's states are exactly the contract's; anything else is not yet processed.
    let state = alert
        .status
        .and_then(|s| s.state.parse().ok())
        .unwrap_or(AlertState::Unprocessed);
    Alert {
        name: alert
            .labels
            .get("alertname")
            .cloned()
            .unwrap_or_else(|| "(unnamed)".into()),
        severity,
        state,
        summary: alert.annotations.get("summary").cloned(),
        description: alert.annotations.get("description").cloned(),
        runbook_url: alert.annotations.get("runbook_url").cloned(),
        starts_at: alert.starts_at,
        ends_at: alert.ends_at,
        fingerprint: alert.fingerprint,
        labels: alert.labels,
        annotations: alert.annotations,
    }
}

/// An error with its causes ("error sending request: connection refused").
fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn maps_an_alertmanager_alert() {
        let alert: GettableAlert = serde_json::from_value(serde_json::json!({
            "labels": {"alertname": "HighFailureRate", "severity": "page"},
            "annotations": {"summary": "s", "description": "d", "runbook_url": "http://r"},
            "startsAt": "2026-01-31T12:00:00.123Z",
            "endsAt": "2026-01-31T12:05:00Z",
            "fingerprint": "abc",
            "status": {"state": "suppressed", "silencedBy": [], "inhibitedBy": []},
            "receivers": [{"name": "read-model"}],
            "updatedAt": "2026-01-31T12:00:00Z",
            "generatorURL": "http://prometheus"
        }))
        .expect("an Alertmanager alert");
        let alert = to_contract(alert);
        assert_eq!(alert.name, "HighFailureRate");
        assert_eq!(
            alert.severity,
            AlertSeverity::Info,
            "unknown severities are info"
        );
        assert_eq!(alert.state, AlertState::Suppressed);
        assert_eq!(alert.runbook_url.as_deref(), Some("http://r"));
        assert_eq!(alert.fingerprint.as_deref(), Some("abc"));
    }
}
