//! Splitting long markdown into parts Webex accepts (7439 bytes each): under the byte limit,
//! in order, at paragraph then line boundaries, never inside a fenced code block unless
//! that block alone is too long, in which case it is closed and reopened across parts.

/// Webex rejects `text`/`markdown` longer than this many UTF-8 bytes.
pub const MAX_MESSAGE_BYTES: usize = 7439;

/// Split `text` into parts of at most `max_bytes` UTF-8 bytes each, in order.
///
/// Breaks fall at paragraph (blank line) boundaries first, then line boundaries, then,
/// for a single over-long line, at char boundaries (after whitespace where possible).
/// A fenced code block (` ``` ` or `~~~`, optional language tag) is never split unless
/// it alone is longer than `max_bytes`; then each part that ends inside it closes the
/// fence and the next part reopens it with the same opening line, so every part renders
/// on its own. Concatenating the parts, minus those added fence lines and the trimmed
/// whitespace between parts, gives the original content. A text that fits is returned
/// unchanged as one part; an empty text gives no parts.
///
/// Never panics. A split block is reopened with its fence and language tag only (the
/// first word of the info string, at most 16 bytes). Limits: a block whose opening fence
/// line is longer than half of `max_bytes`, or whose fence (reopen plus close line) takes
/// more than half of it, cannot be wrapped in every part and is split like prose; below
/// 64 bytes the limit can be exceeded where a single character does not fit. A part that
/// continues a prose line cut inside a run of three or more backticks or tildes (a run
/// longer than the part) starts with a `\` escape, so it renders as text, not as a fence.
/// Inside a code block no escape exists: a code line that ends in a stretch of only
/// whitespace and the fence's own character longer than a part ends up with a last piece
/// that reads as the closing line, which closes the block early (the byte limit holds).
pub fn split_markdown(text: &str, max_bytes: usize) -> Vec<String> {
    split_parts(text, max_bytes)
        .into_iter()
        .map(|part| part.text)
        .collect()
}

/// [`split_markdown`], at most `max_parts` parts: a longer answer is cut, and its last
/// part ends with `cut_line` on a line of its own (still under `max_bytes`, fences
/// balanced). Returns the parts and whether the text was cut. `max_parts` of 0 counts as 1.
pub fn split_markdown_at_most(
    text: &str,
    max_bytes: usize,
    max_parts: usize,
    cut_line: &str,
) -> (Vec<String>, bool) {
    let max_parts = max_parts.max(1);
    let mut parts = split_markdown(text, max_bytes);
    if parts.len() <= max_parts {
        return (parts, false);
    }
    parts.truncate(max_parts);
    let last = parts.pop().unwrap_or_default();
    // The last part is complete markdown on its own (a split block is closed at its end),
    // so splitting it again keeps the fences balanced and leaves room for the cut line.
    let room = max_bytes.saturating_sub(cut_line.len() + 2);
    let head = split_markdown(&last, room)
        .into_iter()
        .next()
        .unwrap_or_default();
    parts.push(if head.is_empty() {
        cut_line.to_owned()
    } else {
        format!("{head}\n\n{cut_line}")
    });
    (parts, true)
}

/// One output part and whether a fence line was added at either end.
#[derive(Debug)]
#[cfg_attr(
    not(test),
    expect(
        dead_code,
        reason = "the flags let the tests strip exactly the added fence lines"
    )
)]
pub(crate) struct Part {
    pub(crate) text: String,
    /// Starts with a copy of the opening fence line of a block begun in an earlier part.
    pub(crate) reopened: bool,
    /// Ends with an added closing fence line (the block continues in the next part).
    pub(crate) closed: bool,
    /// Starts with an added `\`: the part continues a long prose line at a run of
    /// backticks or tildes, which would otherwise open a code fence.
    pub(crate) escaped: bool,
}

pub(crate) fn split_parts(text: &str, max_bytes: usize) -> Vec<Part> {
    if text.is_empty() {
        return Vec::new();
    }
    if text.len() <= max_bytes {
        return vec![Part {
            text: text.to_owned(),
            reopened: false,
            closed: false,
            escaped: false,
        }];
    }
    Splitter::new(text, max_bytes).run()
}

/// A line of the input, as byte offsets.
#[derive(Debug, Clone, Copy)]
struct Line {
    start: usize,
    /// Start of the next line (after the `\n`), or the text's length.
    end: usize,
    /// End of the line without its `\n` / `\r\n`.
    content_end: usize,
    /// End of the line without trailing whitespace.
    trimmed_end: usize,
    blank: bool,
}

/// A fenced code block.
#[derive(Debug, Clone)]
pub(crate) struct Fence {
    open_start: usize,
    /// Start of the first body line.
    open_end: usize,
    /// Start of the closing line; `None` when the block runs to the end of the text.
    close_start: Option<usize>,
    /// Past the closing line (or the text's length).
    end: usize,
    /// The opening line as written (indent, fence, language tag), used to reopen.
    reopen: String,
    /// The closing line as written, or a matching fence when the block is unclosed.
    close: String,
    /// Longer than the limit on its own, so breaks inside it are allowed.
    split: bool,
    /// Split, and its fence lines are short enough to repeat in every part. A block
    /// with absurdly long fence lines is split like prose instead of never fitting.
    wrap: bool,
}

impl Fence {
    fn body_end(&self) -> usize {
        self.close_start.unwrap_or(self.end)
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Level {
    Paragraph,
    Line,
}

struct Splitter<'a> {
    text: &'a str,
    max: usize,
    lines: Vec<Line>,
    fences: Vec<Fence>,
    /// For each line, the fence whose opening, body or closing line it is.
    line_fence: Vec<Option<usize>>,
    /// `last_content[k]`: the trimmed end of the last non-blank line before line `k`.
    last_content: Vec<usize>,
}

fn split_lines(text: &str) -> Vec<Line> {
    let mut lines = Vec::new();
    let mut start = 0;
    for raw in text.split_inclusive('\n') {
        let end = start + raw.len();
        let content = raw.strip_suffix('\n').unwrap_or(raw);
        let content = content.strip_suffix('\r').unwrap_or(content);
        let trimmed = content.trim_end();
        lines.push(Line {
            start,
            end,
            content_end: start + content.len(),
            trimmed_end: start + trimmed.len(),
            blank: trimmed.trim_start().is_empty(),
        });
        start = end;
    }
    lines
}

/// A fence opening line: any indentation, then three or more backticks or tildes; a
/// backtick fence's info string may not contain a backtick (CommonMark). Indentation is
/// not limited to three spaces because code blocks nested in list items are common in
/// model output.
fn open_marker(content: &str) -> Option<(char, usize)> {
    let t = content.trim_start_matches([' ', '\t']);
    let ch = t.chars().next().filter(|c| *c == '`' || *c == '~')?;
    let count = t.chars().take_while(|c| *c == ch).count();
    let info = &t[count * ch.len_utf8()..];
    (count >= 3 && !(ch == '`' && info.contains('`'))).then_some((ch, count))
}

fn closes(content: &str, ch: char, count: usize) -> bool {
    let t = content.trim();
    t.len() >= count && t.chars().all(|c| c == ch)
}

/// The fenced blocks of `text` with their line numbers, `split`/`wrap` left false.
fn find_fences(text: &str, lines: &[Line]) -> (Vec<Fence>, Vec<Option<usize>>) {
    let mut fences: Vec<Fence> = Vec::new();
    let mut line_fence = vec![None; lines.len()];
    let mut open: Option<(usize, char, usize)> = None;
    for (k, line) in lines.iter().enumerate() {
        let content = &text[line.start..line.content_end];
        match open {
            None => {
                if let Some((ch, count)) = open_marker(content) {
                    let indent = content.len() - content.trim_start_matches([' ', '\t']).len();
                    open = Some((fences.len(), ch, count));
                    line_fence[k] = Some(fences.len());
                    fences.push(Fence {
                        open_start: line.start,
                        open_end: line.end,
                        close_start: None,
                        end: text.len(),
                        reopen: reopen_line(content, ch, count),
                        close: format!("{}{}", &content[..indent], ch.to_string().repeat(count)),
                        split: false,
                        wrap: false,
                    });
                }
            }
            Some((idx, ch, count)) => {
                line_fence[k] = Some(idx);
                if closes(content, ch, count)
                    && let Some(fence) = fences.get_mut(idx)
                {
                    fence.close_start = Some(line.start);
                    fence.end = line.end;
                    fence.close = content.trim_end().to_owned();
                    open = None;
                }
            }
        }
    }
    (fences, line_fence)
}

/// The line that reopens a block in the next part: the same indentation and fence, and
/// the language tag only (the first word of the info string, at most 16 bytes), so a long
/// info string cannot crowd the part out. Renderers only look at the language.
fn reopen_line(content: &str, ch: char, count: usize) -> String {
    let indent = content.len() - content.trim_start_matches([' ', '\t']).len();
    let rest = content[indent..].trim_start_matches(ch);
    let info = rest.trim_start();
    let gap = &rest[..rest.len() - info.len()];
    let lang = info.split_whitespace().next().unwrap_or("");
    let mut end = lang.len().min(16);
    while !lang.is_char_boundary(end) {
        end -= 1;
    }
    format!(
        "{}{}{}{}",
        &content[..indent],
        ch.to_string().repeat(count),
        if lang.is_empty() { "" } else { gap },
        &lang[..end]
    )
}

/// Whether `text` ends inside an unclosed fenced code block.
#[cfg(test)]
fn ends_inside_fence(text: &str) -> bool {
    let lines = split_lines(text);
    let (fences, _) = find_fences(text, &lines);
    fences.last().is_some_and(|f| f.close_start.is_none())
}

/// When `piece` (a line or piece of one inside the block opened by `open`) would read as
/// a closing line, the length of its start that would not: its indentation and one fence
/// character fewer than the opening fence has (a closing fence needs at least as many).
fn short_of_closing(piece: &str, open: &str) -> Option<usize> {
    let (ch, count) = open_marker(open)?;
    if !closes(piece, ch, count) {
        return None;
    }
    let indent = piece.len() - piece.trim_start().len();
    Some(indent + (count - 1) * ch.len_utf8())
}

fn starts_with_fence_marker(s: &str) -> bool {
    let t = s.trim_start_matches([' ', '\t']);
    t.starts_with("```") || t.starts_with("~~~")
}

impl<'a> Splitter<'a> {
    fn new(text: &'a str, max: usize) -> Self {
        let lines = split_lines(text);
        let (mut fences, line_fence) = find_fences(text, &lines);
        for fence in &mut fences {
            let block = text[fence.open_start..fence.end].trim_end();
            fence.split = block.len() > max;
            // Reopen line + newline + at least some body + newline + close line must
            // leave room for real content, or the parts would be all fence.
            // The first part carries the whole opening line, the others the shorter
            // reopen line: the longer of the two sets the room left for code.
            // Untrimmed: trailing whitespace of the opening line is copied into the part.
            // `open_len` already counts the opening line's break; the reopen line needs one.
            let open_len = fence.open_end - fence.open_start;
            fence.wrap = fence.split
                && open_len.max(fence.reopen.len() + 1) + 1 + fence.close.len() <= max / 2;
        }
        let mut last_content = Vec::with_capacity(lines.len() + 1);
        let mut last = 0;
        for line in &lines {
            last_content.push(last);
            if !line.blank {
                last = line.trimmed_end;
            }
        }
        last_content.push(last);
        Splitter {
            text,
            max,
            lines,
            fences,
            line_fence,
            last_content,
        }
    }

    fn len(&self) -> usize {
        self.text.len()
    }

    /// Index of the line containing `pos` (`lines.len()` for the end of the text).
    fn line_at(&self, pos: usize) -> usize {
        if pos >= self.len() {
            return self.lines.len();
        }
        self.lines
            .partition_point(|l| l.start <= pos)
            .saturating_sub(1)
    }

    fn fence_of_line(&self, k: usize) -> Option<&Fence> {
        self.line_fence
            .get(k)
            .copied()
            .flatten()
            .and_then(|i| self.fences.get(i))
    }

    /// The wrapped block whose body contains `pos`: a part starting there must reopen it,
    /// a part ending there must close it.
    fn wrapped_at(&self, pos: usize) -> Option<&Fence> {
        self.fence_of_line(self.line_at(pos))
            .filter(|f| f.wrap && f.open_end <= pos && pos < f.body_end())
    }

    /// Whether a part may end at line start `p`.
    fn allowed(&self, p: usize) -> bool {
        let Some(fence) = self.fence_of_line(self.line_at(p)) else {
            return true;
        };
        if p == fence.open_start {
            return true;
        }
        // Breaking right after the opening line or right before the closing line
        // would leave a part with an empty code block.
        fence.split && !(fence.wrap && (p == fence.open_end || Some(p) == fence.close_start))
    }

    fn level(&self, p: usize) -> Level {
        let k = self.line_at(p);
        let prev_blank = k
            .checked_sub(1)
            .and_then(|i| self.lines.get(i))
            .is_some_and(|l| l.blank);
        let here_blank = self.lines.get(k).is_none_or(|l| l.blank);
        if prev_blank || here_blank {
            Level::Paragraph
        } else {
            Level::Line
        }
    }

    fn prefix_len(&self, s: usize) -> usize {
        self.wrapped_at(s)
            .map_or(usize::from(self.needs_escape(s)), |f| f.reopen.len() + 1)
    }

    /// Whether a part starting at `s` continues a prose line where a run of backticks or
    /// tildes begins: at a line start that run would open a fence, so it gets a `\`.
    /// `cut_point` avoids such cuts; only a run longer than the part leaves no choice.
    fn needs_escape(&self, s: usize) -> bool {
        self.wrapped_at(s).is_none()
            && self.lines.get(self.line_at(s)).is_some_and(|l| l.start < s)
            && starts_with_fence_marker(&self.text[s..])
    }

    /// Length of `text[s..p].trim_end()` for a line start `p`, in O(1).
    fn trimmed_len(&self, s: usize, p: usize) -> usize {
        self.last_content
            .get(self.line_at(p))
            .copied()
            .unwrap_or(0)
            .saturating_sub(s)
    }

    fn run(self) -> Vec<Part> {
        let mut parts = Vec::new();
        let mut s = 0;
        loop {
            s = self.skip_blank_lines(s);
            if s >= self.len() {
                break;
            }
            let (part, next) = match self.best_break(s) {
                Some(p) => (self.part_until(s, p), p),
                None => self.split_line(s),
            };
            if let Some(part) = part {
                parts.push(part);
            }
            s = next;
        }
        parts
    }

    fn skip_blank_lines(&self, mut s: usize) -> usize {
        while s < self.len() && self.wrapped_at(s).is_none() {
            let Some(line) = self.lines.get(self.line_at(s)) else {
                break;
            };
            if !self.text[s..line.end].trim().is_empty() {
                break;
            }
            s = line.end;
        }
        s
    }

    /// The line start after `s` where the part starting at `s` should end, or `None`
    /// when not even the first line fits.
    fn best_break(&self, s: usize) -> Option<usize> {
        let prefix = self.prefix_len(s);
        let mut best_any: Option<(usize, usize)> = None;
        let mut best_paragraph: Option<(usize, usize)> = None;
        for k in self.line_at(s) + 1..=self.lines.len() {
            let p = self.lines.get(k).map_or(self.len(), |l| l.start);
            let content = prefix + self.trimmed_len(s, p);
            if !self.allowed(p) {
                if content > self.max {
                    break;
                }
                continue;
            }
            let closing = self.wrapped_at(p).filter(|_| p < self.len());
            let size = match closing {
                Some(fence) => prefix + (p - s) + fence.close.len(),
                None => content,
            };
            if size <= self.max {
                best_any = Some((p, size));
                if self.level(p) == Level::Paragraph {
                    best_paragraph = Some((p, size));
                }
            } else if closing.is_some() || content > self.max {
                // Every later break is at least this long: within a block the parts
                // only grow, and past it the closing line counts as content.
                break;
            }
        }
        // Paragraph breaks win unless they would waste more than half of the part,
        // which would turn one long answer into a flood of short messages.
        match (best_paragraph, best_any) {
            (Some((p, size)), Some((_, any))) if size * 2 >= any => Some(p),
            (_, any) => any.map(|(p, _)| p),
        }
    }

    fn part_until(&self, s: usize, p: usize) -> Option<Part> {
        let body = &self.text[s..p];
        if body.trim().is_empty() {
            return None;
        }
        let mut text = String::new();
        let (reopened, escaped) = self.push_reopen(s, &mut text);
        let closing = self.wrapped_at(p).filter(|_| p < self.len());
        match closing {
            Some(fence) => {
                text.push_str(body);
                text.push_str(&fence.close);
            }
            None => text.push_str(body.trim_end()),
        }
        Some(Part {
            text,
            reopened,
            closed: closing.is_some(),
            escaped,
        })
    }

    /// Starts a part at `s`: the reopened fence line of a wrapped block, or the escape of
    /// a marker run. Returns (reopened, escaped).
    fn push_reopen(&self, s: usize, text: &mut String) -> (bool, bool) {
        match self.wrapped_at(s) {
            Some(fence) => {
                text.push_str(&fence.reopen);
                text.push('\n');
                (true, false)
            }
            None if self.needs_escape(s) => {
                text.push('\\');
                (false, true)
            }
            None => (false, false),
        }
    }

    /// No whole line fits: cut the line at `s` (or, at the opening of a wrapped block,
    /// its first body line) at a char boundary, after whitespace where possible.
    fn split_line(&self, s: usize) -> (Option<Part>, usize) {
        let at_wrapped_open = self
            .fence_of_line(self.line_at(s))
            .filter(|f| f.wrap && f.open_start == s && f.open_end < self.len());
        let start = at_wrapped_open.map_or(s, |f| f.open_end);
        let Some(line) = self.lines.get(self.line_at(start)).copied() else {
            return (None, self.len());
        };
        let in_code = self.wrapped_at(start);
        let suffix = in_code.map_or(0, |f| f.close.len() + 1);
        let budget = self
            .max
            .saturating_sub(self.prefix_len(s) + (start - s) + suffix);
        let mut cut = if line.content_end - start <= budget {
            line.content_end
        } else {
            self.cut_point(start, line.content_end, budget)
        };
        // Inside a block, a piece of a long line that is nothing but the fence's own
        // character (a run longer than the part) would close the block: take fewer of
        // them than the fence has, so it cannot.
        if let Some(fence) = in_code
            && let Some(shorter) = short_of_closing(&self.text[start..cut], &fence.reopen)
        {
            cut = start + shorter;
        }
        // Likewise the rest of the line, which starts the next part: when it would read as
        // the closing line, cut before the line's last other character instead.
        if let Some(fence) = in_code
            && cut < line.content_end
            && short_of_closing(&self.text[cut..line.content_end], &fence.reopen).is_some()
            && let Some((ch, _)) = open_marker(&fence.reopen)
            && let Some((last_other, _)) = self.text[start..cut]
                .trim_end_matches(|c: char| c.is_whitespace() || c == ch)
                .char_indices()
                .last()
            && last_other > 0
        {
            cut = start + last_other;
        }

        let mut next = if cut >= line.content_end {
            line.end
        } else {
            cut
        };
        let body = &self.text[s..cut];
        let mut text = String::new();
        let (reopened, escaped) = self.push_reopen(s, &mut text);
        let mut closed = false;
        match in_code {
            Some(fence) => {
                text.push_str(body);
                text.push('\n');
                text.push_str(&fence.close);
                // The added close stands in for the real one when that comes next.
                if Some(next) == fence.close_start {
                    next = fence.end;
                } else {
                    closed = true;
                }
            }
            None => {
                text.push_str(body.trim_end());
                if next < line.content_end {
                    let rest = &self.text[next..line.content_end];
                    next += rest.len() - rest.trim_start_matches([' ', '\t']).len();
                }
            }
        }
        let part = (!body.trim().is_empty()).then_some(Part {
            text,
            reopened,
            closed,
            escaped,
        });
        // `next > s` already; the guard keeps the loop finite whatever happens above.
        (part, next.max(self.char_after(s)))
    }

    /// The end of the char starting at `pos`, so every step makes progress.
    fn char_after(&self, pos: usize) -> usize {
        pos + self.text[pos..].chars().next().map_or(0, char::len_utf8)
    }

    /// Where to cut `text[start..end]` so the first piece is at most `budget` bytes.
    fn cut_point(&self, start: usize, end: usize, budget: usize) -> usize {
        let text = self.text;
        let hard = text.floor_char_boundary(start + budget);
        if hard <= start {
            // Not even one char fits; take one anyway rather than loop forever.
            return self.char_after(start);
        }
        let mut cut = hard;
        if let Some(w) = text[start..hard].rfind(char::is_whitespace) {
            let after_space =
                start + w + text[start + w..].chars().next().map_or(1, char::len_utf8);
            if after_space - start >= budget / 2 {
                cut = after_space;
            }
        }
        // A piece that starts with ``` or ~~~ would open (or close) a fence in the
        // next part; cut a little earlier instead.
        let mut earlier = cut;
        while earlier > start && starts_with_fence_marker(&text[earlier..end]) {
            earlier = text.floor_char_boundary(earlier - 1);
        }
        if earlier > start { earlier } else { cut }
    }
}

#[cfg(test)]
mod tests {

    #[test]
    fn at_most_cuts_long_answers_and_says_so() {
        const CUT: &str = "*(cut)*";
        let short = "one\n\ntwo";
        assert_eq!(
            super::split_markdown_at_most(short, 100, 2, CUT),
            (vec![short.to_owned()], false)
        );
        let paragraphs: Vec<String> = (0..40)
            .map(|i| format!("paragraph {i} {}", "x".repeat(60)))
            .collect();
        let long = paragraphs.join("\n\n");
        let all = super::split_markdown(&long, 200);
        assert!(all.len() > 3);
        let (parts, cut) = super::split_markdown_at_most(&long, 200, 3, CUT);
        assert!(cut);
        assert_eq!(parts.len(), 3);
        assert_eq!(parts[..2], all[..2]);
        assert!(parts[2].ends_with("\n\n*(cut)*"), "{:?}", parts[2]);
        assert!(parts.iter().all(|p| p.len() <= 200));
        // A cut inside a long code block still closes the fence before the cut line.
        let code = format!("```rust\n{}```", "let x = 1;\n".repeat(200));
        let (parts, cut) = super::split_markdown_at_most(&code, 300, 2, CUT);
        assert!(cut);
        assert_eq!(parts.len(), 2);
        for p in &parts {
            assert!(p.len() <= 300);
            assert_eq!(p.matches("```").count() % 2, 0, "{p:?}");
        }
        assert!(parts[1].ends_with("```\n\n*(cut)*"), "{:?}", parts[1]);
    }

    use super::*;
    use proptest::prelude::*;

    /// Asserts every documented property of a split and returns the parts.
    fn check(text: &str, max: usize) -> Vec<Part> {
        let parts = split_parts(text, max);
        let original_open = ends_inside_fence(text);
        for (i, part) in parts.iter().enumerate() {
            assert!(
                part.text.len() <= max,
                "part {i} is {} bytes > {max}: {:?}",
                part.text.len(),
                part.text
            );
            if text.len() > max {
                assert!(!part.text.trim().is_empty(), "part {i} is blank");
            }
            let last = i + 1 == parts.len();
            if !(last && original_open) {
                assert!(
                    !ends_inside_fence(&part.text),
                    "part {i} leaves a fence open: {:?}",
                    part.text
                );
            }
            if i > 0 {
                assert_eq!(
                    part.reopened,
                    parts[i - 1].closed,
                    "part {i} reopen/close mismatch"
                );
            }
        }
        assert_eq!(
            content_of(&parts),
            text.chars()
                .filter(|c| !c.is_whitespace())
                .collect::<String>(),
            "content changed"
        );
        parts
    }

    /// The parts' non-whitespace content without the fence lines the splitter added.
    fn content_of(parts: &[Part]) -> String {
        let mut all = String::new();
        for part in parts {
            let mut text = part.text.as_str();
            if part.reopened {
                text = text.split_once('\n').map_or("", |(_, rest)| rest);
            }
            if part.closed {
                text = text.rsplit_once('\n').map_or("", |(body, _)| body);
            }
            if part.escaped {
                text = text.strip_prefix('\\').unwrap_or(text);
            }
            all.extend(text.chars().filter(|c| !c.is_whitespace()));
        }
        all
    }

    fn texts(parts: &[Part]) -> Vec<&str> {
        parts.iter().map(|p| p.text.as_str()).collect()
    }

    #[test]
    fn trivial_inputs() {
        assert!(split_markdown("", 100).is_empty());
        assert_eq!(split_markdown("short", 100), vec!["short"]);
        // Fits: returned byte for byte, trailing newline and all.
        let fits = "# Title\n\n```rust\nfn main() {}\n```\n";
        assert_eq!(split_markdown(fits, 100), vec![fits]);
        assert_eq!(split_markdown("  \n\n ", 64), vec!["  \n\n "]);
        assert_eq!(
            split_markdown(&"x".repeat(MAX_MESSAGE_BYTES), MAX_MESSAGE_BYTES).len(),
            1
        );
        assert_eq!(
            split_markdown(&"x".repeat(MAX_MESSAGE_BYTES + 1), MAX_MESSAGE_BYTES).len(),
            2
        );
    }

    #[test]
    fn splits_at_paragraphs_first() {
        let a = "a".repeat(40);
        let b = "b".repeat(40);
        let c = "c".repeat(40);
        let text = format!("{a}\n{b}\n\n{c}\n");
        let parts = check(&text, 90);
        assert_eq!(texts(&parts), vec![format!("{a}\n{b}"), c.clone()]);
        // With no blank line the break falls at a line boundary.
        let text = format!("{a}\n{b}\n{c}");
        let parts = check(&text, 90);
        assert_eq!(texts(&parts), vec![format!("{a}\n{b}"), c.clone()]);
    }

    #[test]
    fn short_leading_paragraph_does_not_force_a_tiny_part() {
        let text = format!("Hi\n\n{}\n{}", "a".repeat(60), "b".repeat(60));
        let parts = check(&text, 80);
        assert_eq!(
            texts(&parts),
            vec![format!("Hi\n\n{}", "a".repeat(60)), "b".repeat(60)]
        );
    }

    #[test]
    fn long_line_splits_at_whitespace() {
        let words = ["alpha"; 40].join(" ");
        let parts = check(&words, 64);
        assert!(parts.len() > 1);
        for part in &parts {
            // Whole words only: every piece is a run of "alpha" separated by spaces.
            assert!(
                part.text.split(' ').all(|w| w == "alpha"),
                "{:?}",
                part.text
            );
        }
    }

    #[test]
    fn long_line_without_spaces_splits_at_char_boundaries() {
        let text = "x".repeat(1000);
        let parts = check(&text, 64);
        assert_eq!(parts.len(), 1000_usize.div_ceil(64));
        assert!(
            parts
                .iter()
                .take(parts.len() - 1)
                .all(|p| p.text.len() == 64)
        );
    }

    #[test]
    fn multibyte_text_near_the_boundary() {
        let cases = [
            "😀".repeat(100),                       // 4 bytes each
            "漢字".repeat(100),                     // 3 bytes each
            format!("{}😀😀😀", "a".repeat(62)),    // emoji straddles byte 64
            format!("{} 😀漢字😀", "é".repeat(31)), // 2-byte chars then a space
            "👩‍👩‍👧‍👦".repeat(30),                        // joined emoji sequences
        ];
        for text in &cases {
            for max in [64, 65, 66, 67, 100] {
                let parts = check(text, max);
                assert_eq!(parts.len() > 1, text.len() > max, "{text:?} at {max}");
            }
        }
    }

    #[test]
    fn code_block_stays_whole_when_it_fits() {
        let intro = "Here is the code you asked for, with a short intro line.";
        let code = "```python\nprint('hello')\nprint('world')\n```";
        let outro = "That is all.";
        let text = format!("{intro}\n{code}\n{outro}");
        let parts = check(&text, 64);
        assert_eq!(
            texts(&parts),
            vec![intro.to_owned(), format!("{code}\n{outro}")]
        );
    }

    #[test]
    fn long_code_block_is_closed_and_reopened_with_its_language() {
        let body: String = (0..60)
            .map(|i| format!("    let value_{i} = {i} * 2;\n"))
            .collect();
        let text = format!("Intro paragraph.\n\n```rust\n{body}```\n\nOutro.");
        let parts = check(&text, 200);
        assert!(parts.len() >= 5, "{}", parts.len());
        let code_parts: Vec<_> = parts
            .iter()
            .filter(|p| p.text.contains("let value_"))
            .collect();
        for part in &code_parts {
            assert!(
                part.text.starts_with("```rust\n") || part.text.contains("\n```rust\n"),
                "{:?}",
                part.text
            );
            assert!(part.text.trim_end().ends_with("```") || part.text.contains("```\n\nOutro"));
        }
        assert!(parts.iter().skip(1).any(|p| p.reopened));
        assert!(parts.iter().any(|p| p.closed));
        // Lines of code are never cut.
        for part in &parts {
            for line in part.text.lines().filter(|l| l.contains("let value_")) {
                assert!(line.ends_with(';'), "{line:?}");
            }
        }
    }

    #[test]
    fn a_long_info_string_is_reopened_with_the_language_only() {
        // Found by fuzzing: a long info string used to make the reopen line too big to
        // repeat, so the block was split like prose with unbalanced fences.
        let body = "let x = 1;\n".repeat(40);
        let text = format!("```rust title=\"src/main.rs\" linenos highlight=1-3\n{body}```\n");
        let parts = check(&text, 120);
        assert!(parts.len() > 3);
        for part in parts.iter().skip(1) {
            assert!(part.text.starts_with("```rust\n"), "{:?}", part.text);
        }
    }

    #[test]
    fn tilde_fence_and_long_fences() {
        let body = "line of code\n".repeat(30);
        let text = format!("~~~~ sh\n{body}~~~~\n");
        for part in check(&text, 100) {
            assert!(part.text.starts_with("~~~~ sh\n"), "{:?}", part.text);
            assert!(part.text.ends_with("~~~~"), "{:?}", part.text);
        }
        // A ``` line inside a ```` block is content, not a fence.
        let inner = format!("````md\n```js\n{}```\n````", "x = 1\n".repeat(30));
        for part in check(&inner, 80) {
            assert!(part.text.starts_with("````md\n"), "{:?}", part.text);
        }
    }

    #[test]
    fn a_marker_run_longer_than_a_part_is_escaped_not_opened() {
        // Found by fuzzing: a prose line cut inside a run of backticks or tildes longer
        // than the part left the next part starting with a fence marker.
        for marker in ['`', '~'] {
            let run: String = std::iter::repeat_n(marker, 300).collect();
            let text = format!("intro {run} tail and more words");
            let parts = check(&text, 100);
            assert!(parts.len() > 3, "{:?}", texts(&parts));
            assert!(!parts[0].escaped);
            for part in &parts[1..] {
                if part.text.starts_with(marker) || part.text.starts_with('\\') {
                    assert!(part.escaped, "{:?}", part.text);
                    assert!(part.text.starts_with('\\'));
                }
                assert!(!starts_with_fence_marker(&part.text), "{:?}", part.text);
            }
        }
        // A run that fits is still cut before it, without an escape.
        let text = format!("{} ```not a fence``` end", "word ".repeat(30));
        assert!(check(&text, 100).iter().all(|p| !p.escaped));
    }

    #[test]
    fn a_fence_run_inside_a_long_code_line_does_not_close_the_block() {
        // Found by fuzzing: inside a block, a code line with a run of the fence's own
        // character longer than the part left a part whose line was only that run, which
        // closed the block.
        let run: String = std::iter::repeat_n('`', 150).collect();
        let text = format!(
            "```\n{}\ncode {run} tail\n{}\n```\n",
            "code\n".repeat(20),
            "x".repeat(10)
        );
        let parts = check(&text, 66);
        assert!(parts.len() > 3, "{:?}", texts(&parts));
        // Tildes do not close a backtick block: no need to cut them short.
        let tildes = text.replace('`', "~").replacen("~~~", "```", 1);
        check(&tildes, 66);
    }

    #[test]
    fn the_rest_of_a_cut_code_line_does_not_read_as_the_closing_line() {
        // Found by fuzzing: a long code line ending in whitespace and a fence run was cut so
        // that the next part started with just that tail, which closed the block there.
        let text = format!(
            "```\n{}\ncode {} ```\n```\nafter\n",
            "code\n".repeat(12),
            "x".repeat(40) + &" ".repeat(20)
        );
        for max in 64..90 {
            check(&text, max);
        }
    }

    #[test]
    fn a_piece_as_long_as_the_opening_fence_does_not_close_the_block() {
        // Found by fuzzing: a block closed by a longer fence than it opened with; pieces
        // were kept one character short of the closing line, not of the opening fence.
        let run: String = std::iter::repeat_n('~', 80).collect();
        let text = format!("~~~ode\n{}\nc{run}@x\n~~~~\n", "code\n".repeat(8));
        check(&text, 66);
    }

    #[test]
    fn over_long_code_line_is_cut_inside_the_fence() {
        let text = format!("```\n{}\n```", "y".repeat(300));
        let parts = check(&text, 64);
        for part in &parts {
            assert!(
                part.text.starts_with("```\n") && part.text.ends_with("\n```"),
                "{:?}",
                part.text
            );
        }
    }

    #[test]
    fn unclosed_fence_is_split_and_closed_per_part() {
        let text = format!("```text\n{}", "word ".repeat(100));
        let parts = check(&text, 64);
        assert!(parts.len() > 2);
        assert!(parts[0].closed);
    }

    #[test]
    fn split_never_starts_a_piece_with_a_fence_marker() {
        let text = format!("{}```not a fence```{}", "a".repeat(55), "b".repeat(80));
        let parts = check(&text, 64);
        for part in &parts[1..] {
            assert!(!starts_with_fence_marker(&part.text), "{:?}", part.text);
        }
    }

    #[test]
    fn realistic_answer_at_the_webex_limit() {
        let mut text = String::new();
        for i in 0..40 {
            text.push_str(&format!(
                "## Section {i}\n\nSome prose about topic {i}, ümlauts and 😀.\n\n"
            ));
            text.push_str(&format!(
                "```rust\nfn f{i}() -> u32 {{\n    {i}\n}}\n```\n\n"
            ));
            text.push_str(&"- a list item with some words\n".repeat(5));
        }
        text.push_str("```json\n");
        text.push_str(&"{\"key\": \"value\", \"n\": 12345},\n".repeat(400));
        text.push_str("```\n");
        let parts = check(&text, MAX_MESSAGE_BYTES);
        assert!(parts.len() >= 3);
    }

    #[test]
    fn tiny_limits_do_not_panic() {
        for max in 0..64 {
            let _ = split_parts("```rust\nfn main() {}\n```\n😀 text text\n\n", max);
            let _ = split_parts("a b c d e f g", max);
        }
    }

    fn markdownish() -> impl Strategy<Value = String> {
        let piece = prop_oneof![
            3 => "[a-zA-Z0-9 ]{0,30}",
            1 => "[a-z]{50,200}",
            1 => "[😀漢é ]{1,40}",
            1 => Just(String::new()),
            1 => "(```|~~~|````)[a-z]{0,8}",
            1 => "( {0,3})(```|~~~)",
            1 => "[`~]{1,6}[a-z ]{0,5}",
            1 => "[#>*-] [a-z ]{0,20}",
            1 => "[\t \r]{0,3}",
        ];
        proptest::collection::vec(piece, 0..60).prop_map(|pieces| pieces.join("\n"))
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(512))]

        #[test]
        fn split_properties(text in markdownish(), max in 64usize..400) {
            check(&text, max);
        }

        #[test]
        fn split_never_panics_on_anything(text in "\\PC{0,600}", max in 0usize..300) {
            let parts = split_markdown(&text, max);
            if max >= 64 {
                for part in &parts {
                    prop_assert!(part.len() <= max);
                }
            }
        }
    }
}
