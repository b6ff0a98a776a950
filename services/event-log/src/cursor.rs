//! The keyset cursor of [`EventLog::list_events`](crate::EventLog::list_events), shared by
//! every adapter so that a cursor means the same position whichever adapter produced it.

use observatory_keyset::Position;
use uuid::Uuid;

use crate::contracts::event_envelope::EventEnvelope;
use crate::contracts::page_cursor::PageCursor;
use crate::{EventLogError, Result};

/// The keyset position a page ends at: the last item's `(occurredAt, eventId)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct CursorPosition {
    /// occurredAt in milliseconds since the Unix epoch (the precision listings order by).
    pub(crate) millis: i64,
    pub(crate) event_id: Uuid,
}

impl CursorPosition {
    pub(crate) fn of(event: &EventEnvelope) -> Self {
        Self {
            millis: event.occurred_at.timestamp_millis(),
            event_id: event.event_id.0,
        }
    }

    /// The cursor of every list ([`observatory_keyset`]), in microseconds. An instant outside
    /// its range (never one an RFC 3339 date-time can name) is clamped to the range's edge.
    pub(crate) fn encode(self) -> PageCursor {
        const EDGE_MILLIS: i64 = 99_999_999_999_999; // within the format both ways
        let micros = self.millis.clamp(-EDGE_MILLIS, EDGE_MILLIS) * 1000;
        let text = Position {
            micros,
            id: self.event_id,
        }
        .encode()
        .expect("a clamped position is within the cursor format");
        PageCursor::try_from(text).expect("the cursor format is the PageCursor pattern")
    }

    pub(crate) fn decode(cursor: &PageCursor) -> Result<Self> {
        let text = cursor.as_str();
        let position = Position::decode(text).map_err(|_| EventLogError::MalformedCursor {
            cursor: text.to_string(),
            reason: "not a page cursor (c1.<microseconds>.<32 hex digits>)",
        })?;
        Ok(Self {
            millis: position.micros.div_euclid(1000),
            event_id: position.id,
        })
    }
}

/// The `next_cursor` of a page: the last item's position, when more items follow it.
pub(crate) fn next_cursor(items: &[EventEnvelope], has_more: bool) -> Option<PageCursor> {
    match items.last() {
        Some(last) if has_more => Some(CursorPosition::of(last).encode()),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursor_positions_round_trip() {
        let position = CursorPosition {
            millis: 1_795_435_200_123,
            event_id: Uuid::new_v4(),
        };
        assert_eq!(
            CursorPosition::decode(&position.encode()).ok(),
            Some(position)
        );
    }

    #[test]
    fn malformed_cursors_are_rejected() {
        // (The PageCursor type already refuses text outside the pattern.)
        for text in ["x", "e1.12.5f0c2a7e1d3b4c8e9f6a2b7d8e9c0a14", "c1.12"] {
            let refused = PageCursor::try_from(text)
                .map_err(|_| ())
                .and_then(|cursor| CursorPosition::decode(&cursor).map_err(|_| ()));
            assert!(refused.is_err(), "{text}");
        }
    }

    #[test]
    fn every_cursor_of_the_format_is_a_position() {
        let cursor =
            PageCursor::try_from("c1.-1500.5f0c2a7e1d3b4c8e9f6a2b7d8e9c0a14").expect("the pattern");
        let position = CursorPosition::decode(&cursor).expect("a position");
        assert_eq!(position.millis, -2);
    }
}
