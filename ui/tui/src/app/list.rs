//! Selection and scrolling of a list, kept apart from the rows so that rows can change (new
//! ones above, pages below, live updates) while the selected row stays where the eye is.

/// Which row is selected and which row is at the top of the viewport.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ListCursor {
    pub selected: usize,
    pub offset: usize,
}

/// A movement asked for by a key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Move {
    Up,
    Down,
    PageUp,
    PageDown,
    First,
    Last,
}

impl ListCursor {
    /// Applies `movement` in a list of `len` rows of which `height` are visible.
    pub fn apply(&mut self, movement: Move, len: usize, height: usize) {
        if len == 0 {
            *self = Self::default();
            return;
        }
        let page = height.max(1);
        self.selected = match movement {
            Move::Up => self.selected.saturating_sub(1),
            Move::Down => self.selected + 1,
            Move::PageUp => self.selected.saturating_sub(page),
            Move::PageDown => self.selected + page,
            Move::First => 0,
            Move::Last => len - 1,
        }
        .min(len - 1);
        self.keep_visible(len, height);
    }

    /// Scrolls as little as possible so that the selection is visible.
    pub fn keep_visible(&mut self, len: usize, height: usize) {
        let height = height.max(1);
        self.selected = self.selected.min(len.saturating_sub(1));
        if self.selected < self.offset {
            self.offset = self.selected;
        } else if self.selected >= self.offset + height {
            self.offset = self.selected + 1 - height;
        }
        // No blank rows at the bottom while rows above are scrolled away.
        self.offset = self.offset.min(len.saturating_sub(height));
    }

    /// The rows changed: `selected` is where the selected row is now (`None` when it is
    /// gone, then the row that took its place is selected). The selected row keeps its place
    /// on the screen when the viewport allows.
    pub fn follow(&mut self, selected: Option<usize>, len: usize, height: usize) {
        let on_screen = self.selected.saturating_sub(self.offset);
        let new = selected.unwrap_or(self.selected).min(len.saturating_sub(1));
        self.selected = new;
        self.offset = new.saturating_sub(on_screen);
        self.keep_visible(len, height);
    }

    /// Whether the selection is close enough to the end that the next page should load.
    pub fn near_end(&self, len: usize, height: usize) -> bool {
        self.selected + height.max(1) >= len
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn moves_stay_in_the_list_and_keep_the_selection_visible() {
        let mut c = ListCursor::default();
        c.apply(Move::Down, 10, 4);
        assert_eq!(
            c,
            ListCursor {
                selected: 1,
                offset: 0
            }
        );
        c.apply(Move::PageDown, 10, 4);
        assert_eq!(
            c,
            ListCursor {
                selected: 5,
                offset: 2
            }
        );
        c.apply(Move::Last, 10, 4);
        assert_eq!(
            c,
            ListCursor {
                selected: 9,
                offset: 6
            }
        );
        c.apply(Move::Down, 10, 4);
        assert_eq!(c.selected, 9);
        c.apply(Move::PageUp, 10, 4);
        assert_eq!(
            c,
            ListCursor {
                selected: 5,
                offset: 5
            }
        );
        c.apply(Move::First, 10, 4);
        assert_eq!(
            c,
            ListCursor {
                selected: 0,
                offset: 0
            }
        );
        c.apply(Move::Down, 0, 4);
        assert_eq!(c, ListCursor::default());
    }

    #[test]
    fn rows_inserted_above_do_not_move_the_selected_row_on_screen() {
        let mut c = ListCursor {
            selected: 5,
            offset: 3,
        };
        // Three rows arrived above: the selected row is now at 8.
        c.follow(Some(8), 20, 6);
        assert_eq!(
            c,
            ListCursor {
                selected: 8,
                offset: 6
            }
        );
        // The selected row disappeared: the row that took its index is selected, and the
        // list still fills the viewport.
        c.follow(None, 7, 6);
        assert_eq!(
            c,
            ListCursor {
                selected: 6,
                offset: 1
            }
        );
    }
}
