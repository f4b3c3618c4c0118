//! Removes the `<think>…</think>` reasoning that models such as DeepSeek-R1 and Qwen3
//! print before their answer. One filter serves whole answers and streams alike, so a
//! streamed answer reads exactly like the same answer received in one piece.

const OPEN: &str = "<think>";
const CLOSE: &str = "</think>";

/// Removes every `<think>…</think>` block, and an unclosed `<think>` through the end (an
/// answer cut off while the model was still reasoning), then trims the result.
pub fn strip_thinking(text: &str) -> String {
    let mut filter = ThinkFilter::default();
    let mut out = filter.push(text);
    out.push_str(&filter.finish());
    out
}

/// Incremental [`strip_thinking`]: feed chunks, get what can be shown so far.
///
/// Holds back what it cannot decide yet: a chunk ending in `<thi` might open a block, and
/// trailing white space might end the answer (where it is trimmed).
#[derive(Debug, Default)]
pub(crate) struct ThinkFilter {
    inside: bool,
    /// Unread input: at most a possible partial tag.
    pending: String,
    /// White space that is only shown if more text follows.
    held_space: String,
    started: bool,
}

impl ThinkFilter {
    /// Takes the next chunk and returns the text that is now certain to be shown.
    pub(crate) fn push(&mut self, chunk: &str) -> String {
        self.pending.push_str(chunk);
        let mut visible = String::new();
        loop {
            let tag = if self.inside { CLOSE } else { OPEN };
            match self.pending.find(tag) {
                Some(at) => {
                    if !self.inside {
                        visible.push_str(&self.pending[..at]);
                    }
                    self.pending.drain(..at + tag.len());
                    self.inside = !self.inside;
                }
                None => {
                    let keep = partial_tag_len(&self.pending, tag);
                    let decided = self.pending.len() - keep;
                    if !self.inside {
                        visible.push_str(&self.pending[..decided]);
                    }
                    self.pending.drain(..decided);
                    break;
                }
            }
        }
        self.trimmed(visible)
    }

    /// Ends the input: a partial `<think` was plain text, an unclosed block is dropped.
    pub(crate) fn finish(&mut self) -> String {
        let rest = std::mem::take(&mut self.pending);
        let out = if self.inside {
            String::new()
        } else {
            self.trimmed(rest)
        };
        self.held_space.clear();
        out
    }

    fn trimmed(&mut self, text: String) -> String {
        let text = if self.started {
            text.as_str()
        } else {
            text.trim_start()
        };
        let body = text.trim_end();
        if body.is_empty() {
            self.held_space.push_str(text);
            return String::new();
        }
        self.started = true;
        let mut out = std::mem::take(&mut self.held_space);
        out.push_str(body);
        self.held_space.push_str(&text[body.len()..]);
        out
    }
}

/// Length of the longest end of `text` that is a proper start of `tag`.
fn partial_tag_len(text: &str, tag: &str) -> usize {
    (1..tag.len())
        .rev()
        .find(|&n| text.ends_with(&tag[..n]))
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table() {
        let cases = [
            ("plain answer", "plain answer"),
            ("  padded\n", "padded"),
            ("<think>hmm</think>Answer", "Answer"),
            ("<think>\nstep 1\nstep 2\n</think>\n\nAnswer.", "Answer."),
            ("Before <think>x</think> after", "Before  after"),
            ("a<think>1</think>b<think>2</think>c", "abc"),
            ("<think>still reasoning when cut off", ""),
            ("Answer <think>late and unclosed", "Answer"),
            ("<think></think>", ""),
            (
                "no tags but < and > and <thin",
                "no tags but < and > and <thin",
            ),
            (
                "</think> stray close is text",
                "</think> stray close is text",
            ),
            ("<think>a<think>b</think>c", "c"),
            ("", ""),
        ];
        for (input, expected) in cases {
            assert_eq!(strip_thinking(input), expected, "input: {input:?}");
        }
    }

    fn streamed(chunks: &[&str]) -> String {
        let mut filter = ThinkFilter::default();
        let mut out: String = chunks.iter().map(|c| filter.push(c)).collect();
        out.push_str(&filter.finish());
        out
    }

    #[test]
    fn blocks_split_across_chunks() {
        assert_eq!(streamed(&["<th", "ink>secret</th", "ink>", "Hi"]), "Hi");
        assert_eq!(
            streamed(&["<", "t", "h", "i", "n", "k", ">x<", "/", "think>ok"]),
            "ok"
        );
        assert_eq!(
            streamed(&["Hello <thi", "s is not a tag"]),
            "Hello <this is not a tag"
        );
        assert_eq!(streamed(&["ends with <thi"]), "ends with <thi");
        assert_eq!(
            streamed(&["<think>x</think>", "\n\n", "  Answer", "  ", "\n"]),
            "Answer"
        );
        assert_eq!(streamed(&["a ", " ", "b"]), "a  b");
    }

    #[test]
    fn nothing_is_shown_while_thinking() {
        let mut filter = ThinkFilter::default();
        assert_eq!(filter.push("<think>long"), "");
        assert_eq!(filter.push(" reasoning"), "");
        assert_eq!(filter.push("</think>\n"), "");
        assert_eq!(filter.push("Yes"), "Yes");
        assert_eq!(filter.push(" and"), " and");
    }

    #[test]
    fn multibyte_text_survives_splitting() {
        assert_eq!(
            streamed(&["héllo ", "<think>ü</think>", "wörld ✓"]),
            "héllo wörld ✓"
        );
    }

    mod chunking {
        use super::*;
        use proptest::prelude::*;

        proptest! {
            #[test]
            fn any_split_gives_the_same_text(
                text in "(<think>|</think>|<th|ink>|[a-c ]|\n|é){0,40}",
                cuts in proptest::collection::vec(any::<prop::sample::Index>(), 0..6),
            ) {
                let boundaries: Vec<usize> = text.char_indices().map(|(i, _)| i).collect();
                let mut points: Vec<usize> = cuts
                    .iter()
                    .filter(|_| !boundaries.is_empty())
                    .map(|ix| boundaries[ix.index(boundaries.len())])
                    .collect();
                points.sort_unstable();
                points.dedup();
                let mut chunks = Vec::new();
                let mut start = 0;
                for p in points {
                    chunks.push(&text[start..p]);
                    start = p;
                }
                chunks.push(&text[start..]);
                prop_assert_eq!(streamed(&chunks), strip_thinking(&text));
            }
        }
    }
}
