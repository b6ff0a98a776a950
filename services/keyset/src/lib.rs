//! The page cursor of every list (jobs, dead letters, events): `c1.<µs>.<id>`, the position of
//! a page's last item as microseconds since the Unix epoch (1 to 18 digits, or `-` and 1 to 17)
//! and its id as 32 lowercase hex digits. `c1` versions the format.
//!
//! This is exactly the pattern of `schemas/common/page-cursor.json`, so a cursor the contract
//! calls valid always decodes, and one it calls invalid never does. Every such instant (about
//! 1200 BC to AD 33000) is one that PostgreSQL (from 4713 BC), SQLite, MongoDB and chrono
//! hold, and every instant an RFC 3339 date-time can name (years 0 to 9999) has a cursor. A
//! cursor is a position, not a list: any valid cursor starts any list after that point.

use uuid::Uuid;

const VERSION: &str = "c1";
/// Most digits of the microseconds after 1970 (below 10^18 µs, AD 33658) and before it (above
/// -10^17 µs, 1199 BC: PostgreSQL refuses anything before 4713 BC).
const MAX_DIGITS_AFTER: usize = 18;
const MAX_DIGITS_BEFORE: usize = 17;

/// Why a cursor does not decode.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum CursorError {
    #[error("not a page cursor (c1.<microseconds>.<32 hex digits>)")]
    Malformed,
    #[error("the instant is out of range")]
    OutOfRange,
}

/// The position a page ends at: its last item's instant and id.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Position {
    pub micros: i64,
    pub id: Uuid,
}

impl Position {
    /// The cursor text, or `None` for an instant outside the format (never one of years 0 to
    /// 9999).
    pub fn encode(self) -> Option<String> {
        let cursor = format!("{VERSION}.{}.{}", self.micros, self.id.simple());
        Self::decode(&cursor).is_ok().then_some(cursor)
    }

    pub fn decode(cursor: &str) -> Result<Self, CursorError> {
        let mut parts = cursor.split('.');
        let (Some(VERSION), Some(micros), Some(id), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(CursorError::Malformed);
        };
        let (digits, max) = match micros.strip_prefix('-') {
            Some(digits) => (digits, MAX_DIGITS_BEFORE),
            None => (micros, MAX_DIGITS_AFTER),
        };
        if digits.is_empty()
            || digits.len() > max
            || !digits.bytes().all(|b| b.is_ascii_digit())
            || id.len() != 32
            || !id.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
        {
            return Err(CursorError::Malformed);
        }
        let micros = micros.parse().map_err(|_| CursorError::OutOfRange)?;
        let id = Uuid::try_parse(id).map_err(|_| CursorError::Malformed)?;
        Ok(Self { micros, id })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn positions_round_trip_at_the_edges_of_the_format() {
        for micros in [
            0,
            1,
            -1,
            1_795_000_000_123_456,
            999_999_999_999_999_999,
            -99_999_999_999_999_999,
            -62_167_219_200_000_000, // 0000-01-01
            253_402_300_799_999_999, // 9999-12-31T23:59:59.999999
        ] {
            let position = Position {
                micros,
                id: Uuid::new_v4(),
            };
            let cursor = position.encode().expect("within the format");
            assert_eq!(Position::decode(&cursor), Ok(position), "{cursor}");
        }
        for micros in [1_000_000_000_000_000_000, -100_000_000_000_000_000] {
            let beyond = Position {
                micros,
                id: Uuid::nil(),
            };
            assert_eq!(beyond.encode(), None);
        }
    }

    #[test]
    fn anything_else_is_refused() {
        let id = "0b4bd3a494b44b4e9a353a1d6f6c9d11";
        for bad in [
            String::new(),
            "0".into(),
            format!("c2.1.{id}"),
            format!("c1..{id}"),
            format!("c1.-.{id}"),
            format!("c1.+1.{id}"),
            format!("c1.1e3.{id}"),
            format!("c1.1000000000000000000.{id}"),
            format!("c1.-100000000000000000.{id}"),
            format!("c1.1.{}", id.to_uppercase()),
            format!("c1.1.{}", &id[1..]),
            "c1.1.0b4bd3a4-94b4-4b4e-9a35-3a1d6f6c9d11".into(),
            format!("c1.1.{id}.x"),
        ] {
            assert!(Position::decode(&bad).is_err(), "{bad:?}");
        }
    }
}
