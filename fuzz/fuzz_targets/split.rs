//! Message splitting: every part within the limit, nothing lost or reordered, and code
//! fences balanced in every part (except the last when the input itself ends inside one).
#![no_main]

use libfuzzer_sys::fuzz_target;

/// The same fence rules as `webex::split` (CommonMark, any indentation): an opening line
/// is three or more backticks or tildes (a backtick fence's info has no backtick); it is
/// closed by a line of only that character, at least as many, surrounded by whitespace.
fn ends_inside_fence(text: &str) -> bool {
    let mut open: Option<(char, usize)> = None;
    for raw in text.split('\n') {
        let line = raw.strip_suffix('\r').unwrap_or(raw);
        match open {
            None => {
                let t = line.trim_start_matches([' ', '\t']);
                if let Some(ch) = t.chars().next().filter(|c| *c == '`' || *c == '~') {
                    let count = t.chars().take_while(|c| *c == ch).count();
                    let info = &t[count * ch.len_utf8()..];
                    if count >= 3 && !(ch == '`' && info.contains('`')) {
                        open = Some((ch, count));
                    }
                }
            }
            Some((ch, count)) => {
                let t = line.trim();
                if t.len() >= count && t.chars().all(|c| c == ch) {
                    open = None;
                }
            }
        }
    }
    open.is_some()
}

fn fence_chars(text: &str) -> usize {
    text.lines()
        .filter(|l| l.trim_start().starts_with("```") || l.trim_start().starts_with("~~~"))
        .map(|l| l.trim().chars().count())
        .max()
        .unwrap_or(0)
}

fuzz_target!(|data: &[u8]| {
    let Some((&first, rest)) = data.split_first() else {
        return;
    };
    let Ok(text) = std::str::from_utf8(rest) else {
        return;
    };
    // Limits from 64 (the documented floor for a strict bound) to a few hundred bytes,
    // so fuzzer-sized inputs really get split.
    let max = 64 + usize::from(first) * 2;
    let parts = webex::split::split_markdown(text, max);
    let input_open = ends_inside_fence(text);
    // The documented limit: a block whose fence lines (opening or reopen line and closing
    // line, each with its line break) take more than half of the limit cannot be repeated
    // in every part, so balance is not promised then. Checked conservatively: every line
    // that could be a fence line (as written, trailing whitespace and all) is short enough
    // that any opening and closing pair fits in half. A closing line may be surrounded by
    // any whitespace (as in `ends_inside_fence`), so any leading whitespace counts here.
    let longest_marker_line = text
        .split('\n')
        .filter(|line| {
            let t = line.trim_start();
            t.starts_with("```") || t.starts_with("~~~")
        })
        .map(str::len)
        .max()
        .unwrap_or(0);
    // Documented limit too: inside a code block, a line that ends in a stretch of only
    // whitespace and fence characters longer than a part is cut into pieces of which the
    // last reads as the closing line. Lines ending in such a stretch (a quarter of the
    // limit or more) are left out of the promise.
    let longest_tail = text
        .split('\n')
        .map(|line| {
            let kept = line.trim_end_matches(|c: char| c.is_whitespace() || c == '`' || c == '~');
            line.len() - kept.len()
        })
        .max()
        .unwrap_or(0);
    let wrappable = 2 * (longest_marker_line + 1) <= max / 2 && longest_tail < max / 4;
    for (i, part) in parts.iter().enumerate() {
        assert!(part.len() <= max, "part {i} is {} bytes > {max}", part.len());
        assert!(!part.trim().is_empty() || text.len() <= max, "part {i} is blank");
        if wrappable && !(i + 1 == parts.len() && input_open) {
            assert!(!ends_inside_fence(part), "part {i} leaves a fence open: {part:?}");
        }
    }
    // Content preserved: the original's non-whitespace characters appear in the parts,
    // in order; anything extra can only be the fence lines added to close and reopen a
    // block split across parts (at most two per part, each a copy of a fence line), and
    // one `\` per part that escapes a run of backticks or tildes a long line was cut in.
    let original: Vec<char> = text.chars().filter(|c| !c.is_whitespace()).collect();
    let produced: Vec<char> = parts
        .iter()
        .flat_map(|p| p.chars())
        .filter(|c| !c.is_whitespace())
        .collect();
    let mut k = 0;
    for c in &produced {
        if k < original.len() && original[k] == *c {
            k += 1;
        }
    }
    assert_eq!(k, original.len(), "content lost or reordered");
    let extra = produced.len() - original.len();
    assert!(
        extra <= 2 * parts.len() * fence_chars(text) + parts.len(),
        "{extra} characters added that are not fence lines"
    );
});
