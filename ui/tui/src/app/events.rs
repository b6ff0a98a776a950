//! The live tail of lifecycle events: newest on top, each event once (by `eventId`, however
//! often the stream and the stored pages deliver it), held back while paused, and paged into
//! the past from the event log.

use std::collections::HashSet;

use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::FetchState;
use super::list::ListCursor;
use crate::contracts::event_envelope::{EventEnvelope, EventType};
use crate::contracts::event_page::EventPage;
use crate::contracts::page_cursor::PageCursor;

/// Events kept in memory; the oldest go first (they can be paged in again).
pub const CAPACITY: usize = 5_000;

#[derive(Debug, Default)]
pub struct EventsState {
    pub type_filter: Option<EventType>,
    /// Shown, newest first.
    pub items: Vec<EventEnvelope>,
    /// Ids of `items` and `held`.
    seen: HashSet<Uuid>,
    /// Arrived while paused, oldest first.
    pub held: Vec<EventEnvelope>,
    pub paused: bool,
    /// The next older page of the event log; `None` when the oldest shown is the oldest there
    /// is, or when the list was trimmed (then `before` the oldest is asked instead).
    pub next_cursor: Option<PageCursor>,
    /// Whether older events exist beyond `items` (as far as known).
    pub more: bool,
    pub cursor: ListCursor,
    /// The first page (filled when the view opens, and after the stream was down).
    pub first: FetchState,
    pub older: FetchState,
}

impl EventsState {
    fn id(event: &EventEnvelope) -> Uuid {
        *event.event_id
    }

    fn fits(&self, event: &EventEnvelope) -> bool {
        self.type_filter.is_none_or(|t| t == event.event_type)
    }

    pub fn set_filter(&mut self, filter: Option<EventType>) {
        let paused = self.paused;
        *self = Self {
            type_filter: filter,
            paused,
            ..Self::default()
        };
    }

    /// A live event: shown on top, or held while paused. Returns whether it is new.
    pub fn live(&mut self, event: EventEnvelope, height: usize) -> bool {
        if !self.fits(&event) || !self.seen.insert(Self::id(&event)) {
            return false;
        }
        if self.paused {
            self.held.push(event);
        } else {
            self.show_on_top(vec![event], height);
        }
        true
    }

    /// Pauses or resumes; resuming shows what was held.
    pub fn toggle_pause(&mut self, height: usize) {
        self.paused = !self.paused;
        if !self.paused {
            let held = std::mem::take(&mut self.held);
            self.show_on_top(held, height);
        }
    }

    /// `newer` (oldest first) on top of the list, keeping the selected event in place on the
    /// screen unless the view follows the newest (the selection is on top).
    fn show_on_top(&mut self, newer: Vec<EventEnvelope>, height: usize) {
        if newer.is_empty() {
            return;
        }
        let count = newer.len();
        let following = self.cursor.selected == 0;
        let mut items: Vec<EventEnvelope> = newer.into_iter().rev().collect();
        items.append(&mut self.items);
        self.items = items;
        if !following {
            let selected = self.cursor.selected + count;
            self.cursor.follow(Some(selected), self.items.len(), height);
        }
        self.trim();
    }

    fn trim(&mut self) {
        if self.items.len() > CAPACITY {
            for gone in self.items.drain(CAPACITY..) {
                self.seen.remove(&gone.event_id);
            }
            self.next_cursor = None;
            self.more = true;
        }
    }

    /// A page from the event log: the newest page (merged by time with what the stream
    /// brought) or the next older one (appended). Returns whether anything was added.
    pub fn page(&mut self, page: EventPage, older: bool, height: usize) -> bool {
        let fresh: Vec<EventEnvelope> = page
            .items
            .into_iter()
            .filter(|e| self.fits(e) && !self.seen.contains(&Self::id(e)))
            .collect();
        if older {
            self.next_cursor = page.next_cursor;
            self.more = self.next_cursor.is_some();
        } else if self.items.is_empty() {
            self.more = page.next_cursor.is_some();
            self.next_cursor = page.next_cursor;
        }
        if fresh.is_empty() {
            return false;
        }
        let selected = self.items.get(self.cursor.selected).map(Self::id);
        for event in &fresh {
            self.seen.insert(Self::id(event));
        }
        if self.paused && !older {
            // Catching up while paused: held like live events.
            self.held.extend(fresh.into_iter().rev());
            self.held.sort_by_key(|e| (e.occurred_at, *e.event_id));
            return true;
        }
        self.items.extend(fresh);
        self.items
            .sort_by_key(|e| std::cmp::Reverse((e.occurred_at, *e.event_id)));
        let index = selected.and_then(|id| self.items.iter().position(|e| Self::id(e) == id));
        if self.cursor.selected != 0 || older {
            self.cursor.follow(index, self.items.len(), height);
        }
        self.trim();
        true
    }

    /// What to ask for the next older page: the cursor, or `before` the oldest shown.
    pub fn older_request(&self) -> Option<(Option<PageCursor>, Option<DateTime<Utc>>)> {
        if !self.more {
            return None;
        }
        match &self.next_cursor {
            Some(cursor) => Some((Some(cursor.clone()), None)),
            None => self.items.last().map(|e| (None, Some(e.occurred_at))),
        }
    }

    /// The newest event shown or held: catching up after the stream was down starts there.
    pub fn newest(&self) -> Option<DateTime<Utc>> {
        self.items
            .first()
            .map(|e| e.occurred_at)
            .max(self.held.last().map(|e| e.occurred_at))
    }

    pub fn selected(&self) -> Option<&EventEnvelope> {
        self.items.get(self.cursor.selected)
    }
}
