//! `split_markdown`'s tests: tables, the fuzz findings, and properties.

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
