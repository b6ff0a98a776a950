//! The read model's live stream (`GET /stream`, `text/event-stream`) as typed events. The
//! generated client hands the stream over as bytes (OpenAPI cannot describe server-sent
//! events); [`events`] parses them with [`SseParser`] and decodes each message's `data:` as
//! the contract's `EventEnvelope`, which is what the read model sends.

use futures_util::{Stream, StreamExt};

use crate::contracts::event_envelope::EventEnvelope;
use crate::read_model::ByteStream;

/// One server-sent event: its `event:` name (if any) and its `data:` lines joined by `\n`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SseMessage {
    pub event: Option<String>,
    pub data: String,
}

/// Splits a `text/event-stream` into messages, as the HTML standard's parsing rules say:
/// lines end with LF, CRLF or CR; a blank line dispatches; `:` starts a comment; `field:
/// value` loses one leading space; several `data:` lines join with `\n`. Messages may arrive
/// split across chunks anywhere, even inside a UTF-8 character.
#[derive(Debug, Default)]
pub struct SseParser {
    line: Vec<u8>,
    /// The previous chunk ended with CR: an LF at the start of the next one is its CRLF.
    after_cr: bool,
    event: Option<String>,
    data: Option<String>,
}

impl SseParser {
    /// Feeds `chunk`; returns the messages it completed.
    pub fn push(&mut self, chunk: &[u8]) -> Vec<SseMessage> {
        let mut messages = Vec::new();
        for &byte in chunk {
            let after_cr = std::mem::replace(&mut self.after_cr, false);
            match byte {
                b'\n' if after_cr => {}
                b'\n' | b'\r' => {
                    self.after_cr = byte == b'\r';
                    let line = std::mem::take(&mut self.line);
                    if let Some(message) = self.line_ended(&String::from_utf8_lossy(&line)) {
                        messages.push(message);
                    }
                }
                _ => self.line.push(byte),
            }
        }
        messages
    }

    fn line_ended(&mut self, line: &str) -> Option<SseMessage> {
        if line.is_empty() {
            let data = self.data.take();
            let event = self.event.take();
            return data.map(|data| SseMessage { event, data });
        }
        if line.starts_with(':') {
            return None;
        }
        let (field, value) = match line.split_once(':') {
            Some((field, value)) => (field, value.strip_prefix(' ').unwrap_or(value)),
            None => (line, ""),
        };
        match field {
            "event" => self.event = Some(value.to_owned()),
            "data" => match &mut self.data {
                Some(data) => {
                    data.push('\n');
                    data.push_str(value);
                }
                None => self.data = Some(value.to_owned()),
            },
            _ => {} // id, retry and unknown fields: the read model sends none of them.
        }
        None
    }
}

/// Why the live stream yielded no event.
#[derive(Debug, thiserror::Error)]
pub enum LiveError {
    /// The connection failed or ended with an error.
    #[error("the live stream broke: {0}")]
    Transport(#[from] reqwest::Error),
    /// A message whose data is not an `EventEnvelope` (a newer or broken server).
    #[error("the live stream sent an event that is not an EventEnvelope ({error}): {data}")]
    Malformed { data: String, error: String },
}

/// The events of a `GET /stream` answer, in order. The stream ends when the connection does.
pub fn events(stream: ByteStream) -> impl Stream<Item = Result<EventEnvelope, LiveError>> {
    let mut parser = SseParser::default();
    stream.into_inner().flat_map(move |chunk| {
        let items: Vec<Result<EventEnvelope, LiveError>> = match chunk {
            Err(error) => vec![Err(LiveError::Transport(error))],
            Ok(bytes) => parser
                .push(&bytes)
                .into_iter()
                .map(|message| {
                    serde_json::from_str(&message.data).map_err(|e| LiveError::Malformed {
                        error: e.to_string(),
                        data: message.data,
                    })
                })
                .collect(),
        };
        futures_util::stream::iter(items)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn message(event: Option<&str>, data: &str) -> SseMessage {
        SseMessage {
            event: event.map(str::to_owned),
            data: data.to_owned(),
        }
    }

    #[test]
    fn messages_are_split_on_blank_lines_and_comments_are_skipped() {
        let mut parser = SseParser::default();
        let got = parser.push(b": keep-alive\n\nevent: job.created\ndata: {\"a\":1}\n\ndata:x\n");
        assert_eq!(got, vec![message(Some("job.created"), "{\"a\":1}")]);
        assert_eq!(parser.push(b"\n"), vec![message(None, "x")]);
    }

    #[test]
    fn every_line_ending_and_any_split_point_give_the_same_messages() {
        let text = "event: job.failed\r\ndata: {\"é\":\r\ndata:  2}\r\n\r\n:c\revent:e\rdata:d\r\r";
        let expected = vec![
            message(Some("job.failed"), "{\"é\":\n 2}"),
            message(Some("e"), "d"),
        ];
        let bytes = text.as_bytes();
        for split in 0..=bytes.len() {
            let mut parser = SseParser::default();
            let mut got = parser.push(&bytes[..split]);
            got.extend(parser.push(&bytes[split..]));
            assert_eq!(got, expected, "split at {split}");
        }
        let mut parser = SseParser::default();
        let got: Vec<SseMessage> = bytes.iter().flat_map(|b| parser.push(&[*b])).collect();
        assert_eq!(got, expected, "one byte at a time");
    }

    #[test]
    fn an_event_without_data_dispatches_nothing() {
        let mut parser = SseParser::default();
        assert!(parser.push(b"event: lonely\n\n").is_empty());
        assert_eq!(
            parser.push(b"data: later\n\n"),
            vec![message(None, "later")]
        );
    }
}
