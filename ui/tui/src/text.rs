//! How values read on screen: short ids, times, durations, one-line and pretty JSON. Every
//! string that came from the network passes through [`clean`] (from the CLI): a job's payload
//! or error message must never reach the terminal as an escape sequence.

use chrono::{DateTime, Utc};
use serde_json::{Map, Value};
use uuid::Uuid;

pub use observatory_cli::{clean, duration};

/// The first 8 hex digits of an id: what the tables show and what `/` accepts back.
pub fn short_id(id: &Uuid) -> String {
    id.simple().to_string()[..8].to_owned()
}

/// `12:00:04` (UTC), for tables where the day is the same.
pub fn clock(t: &DateTime<Utc>) -> String {
    t.format("%H:%M:%S").to_string()
}

/// `2026-11-23 12:00:04.500Z`.
pub fn precise(t: &DateTime<Utc>) -> String {
    t.format("%Y-%m-%d %H:%M:%S%.3fZ").to_string()
}

/// `12:00:04` today, `11-23 12:00` another day.
pub fn when(t: &DateTime<Utc>, now: &DateTime<Utc>) -> String {
    if t.date_naive() == now.date_naive() {
        clock(t)
    } else {
        t.format("%m-%d %H:%M").to_string()
    }
}

/// The time between two instants, compactly: `350 ms`, `1.5 s`, `2 m 05 s`, `3 h 02 m`.
pub fn span(from: &DateTime<Utc>, to: &DateTime<Utc>) -> String {
    let ms = (*to - *from).num_milliseconds().max(0);
    if ms < 60_000 {
        #[allow(clippy::cast_precision_loss)] // below a minute: exact
        return duration(ms as f64);
    }
    let seconds = ms / 1000;
    if seconds < 3600 {
        format!("{} m {:02} s", seconds / 60, seconds % 60)
    } else {
        format!("{} h {:02} m", seconds / 3600, (seconds % 3600) / 60)
    }
}

/// A JSON object on one line, cleaned.
pub fn json_line(map: &Map<String, Value>) -> String {
    clean(&Value::Object(map.clone()).to_string())
}

/// A JSON value pretty-printed, one cleaned line per line.
pub fn json_lines(value: &Value) -> Vec<String> {
    serde_json::to_string_pretty(value)
        .unwrap_or_else(|_| value.to_string())
        .lines()
        .map(clean)
        .collect()
}

/// `text` cut to `width` characters, with `…` when cut.
pub fn fit(text: &str, width: usize) -> String {
    if text.chars().count() <= width {
        return text.to_owned();
    }
    if width == 0 {
        return String::new();
    }
    let mut cut: String = text.chars().take(width - 1).collect();
    cut.push('…');
    cut
}

/// A thousands-separated count: `12,345`.
pub fn count(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn values_read_compactly() {
        let id = Uuid::parse_str("0b4bd3a4-94b4-4b4e-9a35-3a1d6f6c9d11").expect("uuid");
        assert_eq!(short_id(&id), "0b4bd3a4");
        let t = Utc
            .with_ymd_and_hms(2026, 11, 23, 12, 0, 4)
            .single()
            .expect("t");
        assert_eq!(clock(&t), "12:00:04");
        assert_eq!(when(&t, &t), "12:00:04");
        let later = t + chrono::TimeDelta::days(1);
        assert_eq!(when(&t, &later), "11-23 12:00");
        assert_eq!(
            span(&t, &(t + chrono::TimeDelta::milliseconds(350))),
            "350 ms"
        );
        assert_eq!(span(&t, &(t + chrono::TimeDelta::seconds(125))), "2 m 05 s");
        assert_eq!(span(&t, &(t + chrono::TimeDelta::minutes(182))), "3 h 02 m");
        assert_eq!(span(&later, &t), "0 ms", "never negative");
        assert_eq!(fit("abcdef", 4), "abc…");
        assert_eq!(fit("abc", 4), "abc");
        assert_eq!(count(1_234_567), "1,234,567");
        assert_eq!(count(12), "12");
    }

    #[test]
    fn network_text_loses_its_control_characters() {
        let mut map = Map::new();
        map.insert("m".into(), Value::String("\u{1b}[2Jgone".into()));
        assert!(!json_line(&map).contains('\u{1b}'));
        assert!(
            json_lines(&Value::Object(map))
                .iter()
                .all(|l| !l.contains('\u{1b}'))
        );
    }
}
