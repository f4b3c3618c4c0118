//! Cuts a streamed body into frames: Server-Sent Events (OpenAI-style, Anthropic, Gemini)
//! or newline-delimited JSON (Ollama). Bytes arrive in arbitrary pieces, so lines are
//! reassembled before they are decoded.

use std::collections::VecDeque;

/// How a provider frames its stream.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Framing {
    Sse,
    Ndjson,
}

/// One SSE event (`event:` name and joined `data:` lines) or one NDJSON line.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Frame {
    pub(crate) event: Option<String>,
    pub(crate) data: String,
}

#[derive(Debug)]
pub(crate) struct FrameDecoder {
    framing: Framing,
    line: Vec<u8>,
    event: Option<String>,
    data: Option<String>,
}

impl FrameDecoder {
    pub(crate) fn new(framing: Framing) -> Self {
        FrameDecoder {
            framing,
            line: Vec::new(),
            event: None,
            data: None,
        }
    }

    /// Takes the next piece of the body and appends the frames it completes.
    pub(crate) fn push(&mut self, bytes: &[u8], out: &mut VecDeque<Frame>) {
        for piece in bytes.split_inclusive(|b| *b == b'\n') {
            self.line.extend_from_slice(piece);
            if self.line.last() == Some(&b'\n') {
                let line = std::mem::take(&mut self.line);
                self.line_done(&line, out);
            }
        }
    }

    /// The body ended: a last line without its newline, or an event without its blank
    /// line, still counts; servers are not all careful about the final terminator.
    pub(crate) fn finish(&mut self, out: &mut VecDeque<Frame>) {
        let line = std::mem::take(&mut self.line);
        if !line.is_empty() {
            self.line_done(&line, out);
        }
        self.dispatch(out);
    }

    fn line_done(&mut self, raw: &[u8], out: &mut VecDeque<Frame>) {
        let text = String::from_utf8_lossy(raw);
        let line = text.trim_end_matches(['\n', '\r']);
        match self.framing {
            Framing::Ndjson => {
                if !line.trim().is_empty() {
                    out.push_back(Frame {
                        event: None,
                        data: line.to_owned(),
                    });
                }
            }
            Framing::Sse => self.sse_line(line, out),
        }
    }

    fn sse_line(&mut self, line: &str, out: &mut VecDeque<Frame>) {
        if line.is_empty() {
            self.dispatch(out);
            return;
        }
        if line.starts_with(':') {
            return;
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
            _ => {}
        }
    }

    fn dispatch(&mut self, out: &mut VecDeque<Frame>) {
        let event = self.event.take();
        if let Some(data) = self.data.take() {
            out.push_back(Frame { event, data });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decode(framing: Framing, pieces: &[&[u8]]) -> Vec<Frame> {
        let mut decoder = FrameDecoder::new(framing);
        let mut out = VecDeque::new();
        for piece in pieces {
            decoder.push(piece, &mut out);
        }
        decoder.finish(&mut out);
        out.into_iter().collect()
    }

    fn frame(event: Option<&str>, data: &str) -> Frame {
        Frame {
            event: event.map(str::to_owned),
            data: data.to_owned(),
        }
    }

    #[test]
    fn sse_events_with_names_comments_and_crlf() {
        let body = b": keep-alive\r\nevent: ping\r\ndata: {}\r\n\r\nevent: message_stop\ndata: {\"a\":1}\n\n";
        assert_eq!(
            decode(Framing::Sse, &[body]),
            vec![
                frame(Some("ping"), "{}"),
                frame(Some("message_stop"), "{\"a\":1}")
            ]
        );
    }

    #[test]
    fn sse_split_anywhere_even_inside_a_character() {
        let body = "data: {\"t\":\"héllo\"}\n\ndata: [DONE]\n\n".as_bytes();
        for cut in 0..body.len() {
            let (a, b) = body.split_at(cut);
            assert_eq!(
                decode(Framing::Sse, &[a, b]),
                vec![frame(None, "{\"t\":\"héllo\"}"), frame(None, "[DONE]")],
                "cut at {cut}"
            );
        }
    }

    #[test]
    fn sse_multi_line_data_and_missing_final_blank_line() {
        assert_eq!(
            decode(Framing::Sse, &[b"data:a\ndata: b\n\ndata: last"]),
            vec![frame(None, "a\nb"), frame(None, "last")]
        );
    }

    #[test]
    fn ndjson_lines_and_last_line_without_newline() {
        assert_eq!(
            decode(
                Framing::Ndjson,
                &[b"{\"a\":1}\n\n{\"b\"", b":2}\r\n{\"c\":3}"]
            ),
            vec![
                frame(None, "{\"a\":1}"),
                frame(None, "{\"b\":2}"),
                frame(None, "{\"c\":3}")
            ]
        );
    }
}
