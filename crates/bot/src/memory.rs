//! Conversation memory limits: which stored turns go with the next question.
//!
//! A "turn" in `MEMORY_MAX_TURNS` is one exchange: a user message and the answer to it.
//! Oldest messages are dropped first; the history never starts with an assistant message,
//! since every provider expects a conversation to open with the user.

use crate::domain::{Role, Turn};

/// How many stored messages a conversation keeps (two per turn).
pub fn messages_to_keep(max_turns: usize) -> usize {
    max_turns.saturating_mul(2)
}

/// Trims `history` (oldest first) to at most `max_turns` exchanges and, together with the
/// new message of `new_chars` characters, at most `max_chars` characters.
pub fn fit(
    mut history: Vec<Turn>,
    max_turns: usize,
    max_chars: usize,
    new_chars: usize,
) -> Vec<Turn> {
    let keep = messages_to_keep(max_turns);
    if history.len() > keep {
        history.drain(..history.len() - keep);
    }
    let mut total: usize = new_chars
        + history
            .iter()
            .map(|t| t.content.chars().count())
            .sum::<usize>();
    let mut drop = 0;
    while drop < history.len() && (total > max_chars || history[drop].role == Role::Assistant) {
        total -= history[drop].content.chars().count();
        drop += 1;
    }
    history.drain(..drop);
    history
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(role: Role, s: &str) -> Turn {
        Turn {
            role,
            content: s.to_owned(),
        }
    }

    fn conv(n: usize, len: usize) -> Vec<Turn> {
        (0..n)
            .flat_map(|i| {
                [
                    t(Role::User, &format!("{i:0>len$}")),
                    t(Role::Assistant, &format!("{i:0>len$}")),
                ]
            })
            .collect()
    }

    #[test]
    fn trimming_table() {
        struct Case {
            history: Vec<Turn>,
            max_turns: usize,
            max_chars: usize,
            new_chars: usize,
            want_len: usize,
            want_first: Option<&'static str>,
        }
        let cases = [
            // Fits: unchanged.
            Case {
                history: conv(3, 2),
                max_turns: 20,
                max_chars: 1000,
                new_chars: 5,
                want_len: 6,
                want_first: Some("00"),
            },
            // Turn limit: keeps the newest 2 exchanges.
            Case {
                history: conv(5, 2),
                max_turns: 2,
                max_chars: 1000,
                new_chars: 5,
                want_len: 4,
                want_first: Some("03"),
            },
            // Char limit: 10 chars per message, 45 allowed with 5 new → 4 messages.
            Case {
                history: conv(5, 10),
                max_turns: 20,
                max_chars: 45,
                new_chars: 5,
                want_len: 4,
                want_first: Some("0000000003"),
            },
            // Dropping by chars would start with an assistant message: drop it too.
            Case {
                history: conv(3, 10),
                max_turns: 20,
                max_chars: 35,
                new_chars: 5,
                want_len: 2,
                want_first: Some("0000000002"),
            },
            // A new message larger than the budget leaves no history.
            Case {
                history: conv(3, 2),
                max_turns: 20,
                max_chars: 10,
                new_chars: 50,
                want_len: 0,
                want_first: None,
            },
            // Zero turns: no history at all.
            Case {
                history: conv(3, 2),
                max_turns: 0,
                max_chars: 1000,
                new_chars: 5,
                want_len: 0,
                want_first: None,
            },
            // A stored history that opens with an answer loses it.
            Case {
                history: vec![
                    t(Role::Assistant, "a"),
                    t(Role::User, "b"),
                    t(Role::Assistant, "c"),
                ],
                max_turns: 20,
                max_chars: 100,
                new_chars: 1,
                want_len: 2,
                want_first: Some("b"),
            },
        ];
        for (i, c) in cases.into_iter().enumerate() {
            let got = fit(c.history, c.max_turns, c.max_chars, c.new_chars);
            assert_eq!(got.len(), c.want_len, "case {i}");
            assert_eq!(
                got.first().map(|t| t.content.as_str()),
                c.want_first,
                "case {i}"
            );
            assert!(got.first().is_none_or(|t| t.role == Role::User), "case {i}");
        }
    }

    #[test]
    fn counts_characters_not_bytes() {
        let history = vec![t(Role::User, "ééééé"), t(Role::Assistant, "ööööö")];
        assert_eq!(fit(history, 20, 10, 0).len(), 2);
    }
}
