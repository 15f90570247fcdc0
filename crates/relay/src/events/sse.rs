//! A server-sent events parser (the WHATWG `text/event-stream` format), fed the body's chunks
//! as they arrive: lines may be split anywhere between chunks, and end in `\n`, `\r\n` or `\r`.

/// One dispatched event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Message {
    /// The `event:` field (`message` when the event named none).
    pub(crate) event: String,
    /// The `data:` lines, joined with `\n`.
    pub(crate) data: String,
}

/// A line longer than the parser's limit: the stream is not one this client can follow.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("event stream line longer than {0} bytes")]
pub(crate) struct LineTooLong(pub(crate) usize);

/// Parses a stream chunk by chunk.
#[derive(Debug)]
pub(crate) struct Parser {
    max_line: usize,
    line: Vec<u8>,
    /// The last chunk ended in `\r`: a `\n` opening the next one belongs to that line end.
    after_cr: bool,
    event: Option<String>,
    data: Option<String>,
}

impl Parser {
    /// A parser that refuses lines longer than `max_line` bytes (the buffer never grows past).
    pub(crate) const fn new(max_line: usize) -> Self {
        Self {
            max_line,
            line: Vec::new(),
            after_cr: false,
            event: None,
            data: None,
        }
    }

    /// Feeds `chunk`, returning the events it completed.
    pub(crate) fn push(&mut self, chunk: &[u8]) -> Result<Vec<Message>, LineTooLong> {
        let mut out = Vec::new();
        for &byte in chunk {
            let after_cr = std::mem::replace(&mut self.after_cr, false);
            match byte {
                b'\n' if after_cr => {}
                b'\n' | b'\r' => {
                    self.after_cr = byte == b'\r';
                    let line = std::mem::take(&mut self.line);
                    if let Some(message) = self.line_done(&line) {
                        out.push(message);
                    }
                }
                _ => {
                    if self.line.len() == self.max_line {
                        return Err(LineTooLong(self.max_line));
                    }
                    self.line.push(byte);
                }
            }
        }
        Ok(out)
    }

    fn line_done(&mut self, line: &[u8]) -> Option<Message> {
        if line.is_empty() {
            // A blank line dispatches; an event without data is dropped, as browsers do.
            let event = self.event.take();
            let data = self.data.take()?;
            return Some(Message {
                event: event.unwrap_or_else(|| "message".to_owned()),
                data,
            });
        }
        // A line starting with ':' is a comment (keep-alives).
        if line.first() == Some(&b':') {
            return None;
        }
        let text = String::from_utf8_lossy(line);
        let (field, value) = match text.split_once(':') {
            Some((field, value)) => (field, value.strip_prefix(' ').unwrap_or(value)),
            None => (text.as_ref(), ""),
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
            // `id` and `retry` steer browser reconnects; this client has its own policy.
            _ => {}
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn message(event: &str, data: &str) -> Message {
        Message {
            event: event.to_owned(),
            data: data.to_owned(),
        }
    }

    #[test]
    fn test_events_split_anywhere_across_chunks_parse_the_same() {
        let stream = b": keep-alive\n\nevent: payload_attributes\ndata: {\"a\":1}\n\n\
                       event:head\r\ndata:x\r\ndata: y\r\n\r\ndata: plain\r\r";
        let expected = vec![
            message("payload_attributes", "{\"a\":1}"),
            message("head", "x\ny"),
            message("message", "plain"),
        ];
        for split in 0..stream.len() {
            let mut parser = Parser::new(64);
            let mut got = parser.push(&stream[..split]).expect("short lines");
            got.extend(parser.push(&stream[split..]).expect("short lines"));
            assert_eq!(got, expected, "split at {split}");
        }
    }

    #[test]
    fn test_a_line_over_the_limit_is_refused() {
        let mut parser = Parser::new(8);
        assert_eq!(parser.push(b"data: 12"), Ok(Vec::new()));
        assert_eq!(parser.push(b"3"), Err(LineTooLong(8)));
    }

    #[test]
    fn test_an_event_without_data_is_not_dispatched() {
        let mut parser = Parser::new(64);
        assert_eq!(
            parser.push(b"event: head\n\ndata: d\n\n"),
            Ok(vec![message("message", "d")])
        );
    }
}
