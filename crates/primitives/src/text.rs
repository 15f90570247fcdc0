//! Bounding text that may quote outside input (a parser's error names the offending value), so
//! no answer or log line grows with what a client sent.

/// How much of an error text any server of the node passes on, in bytes.
pub const MAX_ERROR_TEXT: usize = 256;

/// `text` cut to at most `max` bytes on a character boundary, saying how long it was when cut.
pub fn bounded(text: &str, max: usize) -> String {
    if text.len() <= max {
        return text.to_owned();
    }
    let mut end = max;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}… ({} bytes in all)", &text[..end], text.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn test_bounded_cuts_on_a_character_boundary() {
        assert_eq!(bounded("short", 10), "short");
        let long = "é".repeat(100);
        let cut = bounded(&long, 11);
        assert!(cut.starts_with(&"é".repeat(5)), "{cut}");
        assert!(!cut.starts_with(&"é".repeat(6)), "{cut}");
        assert!(cut.ends_with("(200 bytes in all)"), "{cut}");
    }
}
