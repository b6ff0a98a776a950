//! Opaque keyset cursors: the `(timestamp, id)` of the last item of a page, hex-encoded so
//! that clients treat it as a token. Each list has its own kind, so a cursor of one list is
//! rejected by another.

use chrono::{DateTime, Datelike, Utc};
use uuid::Uuid;

use crate::error::{Result, StoreError};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum CursorKind {
    Jobs,
    DeadLetters,
}

impl CursorKind {
    fn tag(self) -> &'static str {
        match self {
            Self::Jobs => "jobs",
            Self::DeadLetters => "dead-letters",
        }
    }
}

/// Position after which the next page starts (pages are newest first).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Keyset {
    pub at: DateTime<Utc>,
    pub id: Uuid,
}

impl Keyset {
    /// `hex("<kind>|<microseconds since epoch>|<uuid>")`. Microseconds are PostgreSQL's
    /// timestamp precision, so the position is exact.
    pub fn encode(self, kind: CursorKind) -> String {
        let plain = format!("{}|{}|{}", kind.tag(), self.at.timestamp_micros(), self.id);
        plain.bytes().map(|b| format!("{b:02x}")).collect()
    }

    pub fn decode(cursor: &str, kind: CursorKind) -> Result<Self> {
        let invalid = StoreError::InvalidCursor;
        if !cursor.len().is_multiple_of(2) || cursor.len() > 512 {
            return Err(invalid("not a cursor issued by this service"));
        }
        let bytes = (0..cursor.len())
            .step_by(2)
            .map(|i| {
                cursor
                    .get(i..i + 2)
                    .and_then(|pair| u8::from_str_radix(pair, 16).ok())
            })
            .collect::<Option<Vec<u8>>>()
            .ok_or(invalid("not hexadecimal"))?;
        let plain =
            String::from_utf8(bytes).map_err(|_| invalid("not a cursor issued by this service"))?;
        let mut parts = plain.split('|');
        let (Some(tag), Some(micros), Some(id), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(invalid("not a cursor issued by this service"));
        };
        if tag != kind.tag() {
            return Err(invalid("cursor belongs to a different list"));
        }
        // Years 1 to 9999 only: every store holds them (PostgreSQL refuses years before
        // 4713 BC), and no job was created outside them.
        let at = micros
            .parse::<i64>()
            .ok()
            .and_then(DateTime::from_timestamp_micros)
            .filter(|at| (1..=9999).contains(&at.year()))
            .ok_or(invalid("bad timestamp"))?;
        let id = Uuid::try_parse(id).map_err(|_| invalid("bad id"))?;
        Ok(Self { at, id })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_rejects_other_kinds_and_garbage() {
        let keyset = Keyset {
            at: DateTime::from_timestamp_micros(1_795_000_000_123_456).unwrap(),
            id: Uuid::new_v4(),
        };
        let cursor = keyset.encode(CursorKind::Jobs);
        assert!(cursor.len() <= 512, "fits the PageCursor contract");
        assert_eq!(Keyset::decode(&cursor, CursorKind::Jobs).unwrap(), keyset);
        assert!(matches!(
            Keyset::decode(&cursor, CursorKind::DeadLetters),
            Err(StoreError::InvalidCursor(_))
        ));
        let hex = |s: &str| s.bytes().map(|b| format!("{b:02x}")).collect::<String>();
        for (first_and_last_day, year) in [("-62135596800000000", 1), ("253402300799999999", 9999)]
        {
            let cursor = hex(&format!(
                "jobs|{first_and_last_day}|0b4bd3a4-94b4-4b4e-9a35-3a1d6f6c9d11"
            ));
            let decoded = Keyset::decode(&cursor, CursorKind::Jobs).expect("in range");
            assert_eq!(decoded.at.year(), year);
        }
        for bad in [
            String::new(),
            "abc".into(),
            "zz".into(),
            "é1".into(),
            cursor[..cursor.len() - 2].to_string(),
            hex("jobs|1|2|3"),
            hex("jobs|notanumber|0b4bd3a4-94b4-4b4e-9a35-3a1d6f6c9d11"),
            hex("jobs|9223372036854775807|0b4bd3a4-94b4-4b4e-9a35-3a1d6f6c9d11"),
            // Before 4713 BC (PostgreSQL's first day), and after 9999.
            hex("jobs|-210000000000000000|0b4bd3a4-94b4-4b4e-9a35-3a1d6f6c9d11"),
            hex("jobs|-62135596800000001|0b4bd3a4-94b4-4b4e-9a35-3a1d6f6c9d11"),
            hex("jobs|253402300800000000|0b4bd3a4-94b4-4b4e-9a35-3a1d6f6c9d11"),
            hex("jobs|1|not-a-uuid"),
            "a".repeat(1024),
        ] {
            assert!(
                matches!(
                    Keyset::decode(&bad, CursorKind::Jobs),
                    Err(StoreError::InvalidCursor(_))
                ),
                "{bad:?} must be rejected"
            );
        }
    }
}
