//! Names and parameters from peers, made safe to log: at most [`MAX_LOGGED_CHARS`] characters,
//! control characters escaped (no forged log lines, no terminal escapes), and the size of what
//! was cut said.

use std::fmt;

/// Characters of a peer's string kept in a log line.
pub const MAX_LOGGED_CHARS: usize = 128;

/// Displays a peer's string clipped and escaped (see the module docs).
pub struct Clipped<'a>(pub &'a str);

impl fmt::Display for Clipped<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (shown, c) in self.0.chars().enumerate() {
            if shown == MAX_LOGGED_CHARS {
                return write!(f, "…({} bytes in all)", self.0.len());
            }
            if c.is_control() {
                write!(f, "{}", c.escape_default())?;
            } else {
                write!(f, "{c}")?;
            }
        }
        Ok(())
    }
}

/// A peer's string, clipped and escaped.
pub fn clipped(value: &str) -> Clipped<'_> {
    Clipped(value)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_names_pass_and_control_characters_are_escaped() {
        assert_eq!(clipped("live").to_string(), "live");
        assert_eq!(
            clipped("a\nfake=line\u{1b}[31m").to_string(),
            "a\\nfake=line\\u{1b}[31m"
        );
    }

    #[test]
    fn long_names_are_cut_and_say_their_size() {
        let long = "x".repeat(10_000);
        let shown = clipped(&long).to_string();
        assert!(shown.starts_with(&"x".repeat(MAX_LOGGED_CHARS)));
        assert!(shown.ends_with("…(10000 bytes in all)"), "{shown}");
        assert!(shown.len() < 200);
        let multibyte = "é".repeat(200);
        assert!(
            clipped(&multibyte)
                .to_string()
                .ends_with("(400 bytes in all)")
        );
    }
}
