//! Text editing for the prompts (`:` and `/`) and the submit form: a single line, and a small
//! multi-line area for JSON. Positions are in characters, never bytes, so any UTF-8 is safe.

use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};

/// One line of text with a cursor.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LineInput {
    text: String,
    /// Cursor position, in characters.
    cursor: usize,
}

impl LineInput {
    pub fn with_text(text: &str) -> Self {
        Self {
            text: text.to_owned(),
            cursor: text.chars().count(),
        }
    }

    pub fn text(&self) -> &str {
        &self.text
    }

    pub fn cursor(&self) -> usize {
        self.cursor
    }

    pub fn set(&mut self, text: &str) {
        *self = Self::with_text(text);
    }

    fn byte(&self, at: usize) -> usize {
        self.text
            .char_indices()
            .nth(at)
            .map_or(self.text.len(), |(i, _)| i)
    }

    pub fn insert_str(&mut self, text: &str) {
        for c in text.chars().filter(|c| !c.is_control()) {
            let at = self.byte(self.cursor);
            self.text.insert(at, c);
            self.cursor += 1;
        }
    }

    /// Applies an editing key; `false` when the key is not an editing key.
    pub fn edit(&mut self, key: &KeyEvent) -> bool {
        let ctrl = key.modifiers.contains(KeyModifiers::CONTROL);
        match key.code {
            KeyCode::Char('u') if ctrl => {
                let at = self.byte(self.cursor);
                self.text.replace_range(..at, "");
                self.cursor = 0;
            }
            KeyCode::Char('a') if ctrl => self.cursor = 0,
            KeyCode::Char('e') if ctrl => self.cursor = self.text.chars().count(),
            KeyCode::Char('w') if ctrl => {
                let chars: Vec<char> = self.text.chars().collect();
                let mut start = self.cursor;
                while start > 0 && chars[start - 1] == ' ' {
                    start -= 1;
                }
                while start > 0 && chars[start - 1] != ' ' {
                    start -= 1;
                }
                let (from, to) = (self.byte(start), self.byte(self.cursor));
                self.text.replace_range(from..to, "");
                self.cursor = start;
            }
            KeyCode::Char(c) if !ctrl => self.insert_str(&c.to_string()),
            KeyCode::Backspace if self.cursor > 0 => {
                self.cursor -= 1;
                let at = self.byte(self.cursor);
                self.text.remove(at);
            }
            KeyCode::Delete if self.cursor < self.text.chars().count() => {
                let at = self.byte(self.cursor);
                self.text.remove(at);
            }
            KeyCode::Left => self.cursor = self.cursor.saturating_sub(1),
            KeyCode::Right => self.cursor = (self.cursor + 1).min(self.text.chars().count()),
            KeyCode::Home => self.cursor = 0,
            KeyCode::End => self.cursor = self.text.chars().count(),
            KeyCode::Backspace | KeyCode::Delete => {}
            _ => return false,
        }
        true
    }
}

/// Several lines of text with a cursor (the payload's JSON).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TextArea {
    lines: Vec<LineInput>,
    row: usize,
}

impl Default for TextArea {
    fn default() -> Self {
        Self {
            lines: vec![LineInput::default()],
            row: 0,
        }
    }
}

impl TextArea {
    pub fn with_text(text: &str) -> Self {
        let mut lines: Vec<LineInput> = text.split('\n').map(LineInput::with_text).collect();
        if lines.is_empty() {
            lines.push(LineInput::default());
        }
        let row = lines.len() - 1;
        Self { lines, row }
    }

    pub fn text(&self) -> String {
        self.lines
            .iter()
            .map(LineInput::text)
            .collect::<Vec<_>>()
            .join("\n")
    }

    pub fn lines(&self) -> impl Iterator<Item = &str> {
        self.lines.iter().map(LineInput::text)
    }

    /// (row, column) of the cursor, in characters.
    pub fn cursor(&self) -> (usize, usize) {
        (self.row, self.lines[self.row].cursor())
    }

    /// Pasted text keeps its line breaks.
    pub fn insert_str(&mut self, text: &str) {
        let mut parts = text.split(['\n', '\r']);
        if let Some(first) = parts.next() {
            self.lines[self.row].insert_str(first);
        }
        for part in parts {
            self.newline();
            self.lines[self.row].insert_str(part);
        }
    }

    fn newline(&mut self) {
        let line = &mut self.lines[self.row];
        let chars: Vec<char> = line.text().chars().collect();
        let (head, tail): (String, String) = (
            chars[..line.cursor()].iter().collect(),
            chars[line.cursor()..].iter().collect(),
        );
        *line = LineInput::with_text(&head);
        self.lines.insert(self.row + 1, LineInput::default());
        self.row += 1;
        self.lines[self.row].insert_str(&tail);
        self.lines[self.row].edit(&KeyEvent::from(KeyCode::Home));
    }

    /// Applies an editing key (Enter breaks the line); `false` when it is not one.
    pub fn edit(&mut self, key: &KeyEvent) -> bool {
        match key.code {
            KeyCode::Enter => self.newline(),
            KeyCode::Up if self.row > 0 => self.move_to(self.row - 1),
            KeyCode::Down if self.row + 1 < self.lines.len() => self.move_to(self.row + 1),
            KeyCode::Up | KeyCode::Down => return false,
            KeyCode::Backspace if self.lines[self.row].cursor() == 0 && self.row > 0 => {
                let line = self.lines.remove(self.row);
                self.row -= 1;
                let previous = &mut self.lines[self.row];
                let at = previous.text().chars().count();
                previous.cursor = at;
                previous.insert_str(line.text());
                previous.cursor = at;
            }
            _ => return self.lines[self.row].edit(key),
        }
        true
    }

    fn move_to(&mut self, row: usize) {
        let column = self.lines[self.row].cursor();
        self.row = row;
        let line = &mut self.lines[row];
        let len = line.text().chars().count();
        line.cursor = column.min(len);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys(input: &mut LineInput, codes: &[KeyCode]) {
        for code in codes {
            input.edit(&KeyEvent::from(*code));
        }
    }

    #[test]
    fn a_line_edits_by_character() {
        let mut input = LineInput::default();
        input.insert_str("héllo");
        keys(
            &mut input,
            &[KeyCode::Left, KeyCode::Left, KeyCode::Backspace],
        );
        assert_eq!(input.text(), "hélo");
        keys(
            &mut input,
            &[KeyCode::Home, KeyCode::Delete, KeyCode::Char('H')],
        );
        assert_eq!((input.text(), input.cursor()), ("Hélo", 1));
        input.edit(&KeyEvent::new(KeyCode::Char('w'), KeyModifiers::CONTROL));
        assert_eq!(input.text(), "élo");
        input.insert_str("a\u{1b}[2J");
        assert!(
            !input.text().contains('\u{1b}'),
            "control characters are dropped"
        );
    }

    #[test]
    fn an_area_breaks_and_joins_lines() {
        let mut area = TextArea::with_text("{\"a\": 1}");
        area.edit(&KeyEvent::from(KeyCode::Left));
        area.edit(&KeyEvent::from(KeyCode::Enter));
        assert_eq!(area.text(), "{\"a\": 1\n}");
        assert_eq!(area.cursor(), (1, 0));
        area.edit(&KeyEvent::from(KeyCode::Backspace));
        assert_eq!(area.text(), "{\"a\": 1}");
        area.insert_str("\n\"b\": 2");
        assert_eq!(area.lines().count(), 2);
        assert_eq!(area.cursor(), (1, 6));
        area.edit(&KeyEvent::from(KeyCode::Up));
        assert_eq!(area.cursor(), (0, 6));
    }
}
