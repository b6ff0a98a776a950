//! Keyset cursors of the job and dead-letter lists: the `(timestamp, id)` of a page's last
//! item, in the one cursor format of every list ([`observatory_keyset`]), which is the
//! contract's `PageCursor` pattern.

use chrono::{DateTime, Utc};
use observatory_keyset::Position;
use uuid::Uuid;

use crate::error::{Result, StoreError};

/// Position after which the next page starts (pages are newest first).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Keyset {
    pub at: DateTime<Utc>,
    pub id: Uuid,
}

impl Keyset {
    /// Microseconds are PostgreSQL's timestamp precision, so the position is exact. `None`
    /// for an instant outside the format (never one of years 0 to 9999).
    pub fn encode(self) -> Option<String> {
        Position {
            micros: self.at.timestamp_micros(),
            id: self.id,
        }
        .encode()
    }

    pub fn decode(cursor: &str) -> Result<Self> {
        let position = Position::decode(cursor)
            .map_err(|_| StoreError::InvalidCursor("not a cursor issued by this service"))?;
        // Always in range: the format holds only instants from 1199 BC to AD 33658.
        let at = DateTime::from_timestamp_micros(position.micros)
            .ok_or(StoreError::InvalidCursor("bad timestamp"))?;
        Ok(Self {
            at,
            id: position.id,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_rejects_garbage() {
        let keyset = Keyset {
            at: DateTime::from_timestamp_micros(1_795_000_000_123_456).unwrap(),
            id: Uuid::new_v4(),
        };
        let cursor = keyset.encode().expect("encodable");
        assert_eq!(Keyset::decode(&cursor).unwrap(), keyset);
        // The earliest and latest instants of the format decode (PostgreSQL holds them).
        for micros in ["-99999999999999999", "999999999999999999"] {
            let cursor = format!("c1.{micros}.0b4bd3a494b44b4e9a353a1d6f6c9d11");
            assert!(Keyset::decode(&cursor).is_ok(), "{cursor}");
        }
        for bad in [
            "",
            "zz",
            "6a6f62737c317c32",
            "c1.-210000000000000000.0b4bd3a494b44b4e9a353a1d6f6c9d11",
            "c1.1.not-a-uuid",
        ] {
            assert!(
                matches!(Keyset::decode(bad), Err(StoreError::InvalidCursor(_))),
                "{bad:?} must be rejected"
            );
        }
    }
}
