//! The keyset cursor of [`EventLog::list_events`](crate::EventLog::list_events), shared by
//! every adapter so that a cursor means the same position whichever adapter produced it.

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
    /// Version tag, so that a later cursor format can tell old cursors apart.
    const TAG: &'static str = "e1";

    pub(crate) fn of(event: &EventEnvelope) -> Self {
        Self {
            millis: event.occurred_at.timestamp_millis(),
            event_id: event.event_id.0,
        }
    }

    pub(crate) fn encode(self) -> PageCursor {
        let text = format!("{}.{}.{}", Self::TAG, self.millis, self.event_id.simple());
        // 2 + 1 + at most 20 + 1 + 32 characters: always within the contract's 1..=512.
        PageCursor::try_from(text).expect("an encoded cursor is always a valid PageCursor")
    }

    pub(crate) fn decode(cursor: &PageCursor) -> Result<Self> {
        let text = cursor.as_str();
        let malformed = |reason| EventLogError::MalformedCursor {
            cursor: text.to_string(),
            reason,
        };
        let mut parts = text.split('.');
        let (Some(tag), Some(millis), Some(event_id), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(malformed("expected three dot-separated parts"));
        };
        if tag != Self::TAG {
            return Err(malformed("unknown cursor version"));
        }
        let millis = millis
            .parse::<i64>()
            .map_err(|_| malformed("the position is not a timestamp"))?;
        let event_id = Uuid::try_parse(event_id)
            .map_err(|_| malformed("the position does not name an event"))?;
        Ok(Self { millis, event_id })
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
        for text in [
            "x",
            "e1.12",
            "e1.12.not-a-uuid",
            "e2.12.5f0c2a7e1d3b4c8e9f6a2b7d8e9c0a14",
            "e1.twelve.5f0c2a7e1d3b4c8e9f6a2b7d8e9c0a14",
            "e1.12.5f0c2a7e1d3b4c8e9f6a2b7d8e9c0a14.extra",
        ] {
            let cursor = PageCursor::try_from(text).expect("valid PageCursor text");
            assert!(
                matches!(
                    CursorPosition::decode(&cursor),
                    Err(EventLogError::MalformedCursor { .. })
                ),
                "{text}"
            );
        }
    }
}
