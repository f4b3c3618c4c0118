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
mod tests;
