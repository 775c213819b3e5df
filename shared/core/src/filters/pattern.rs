//! Patterns with `*` wildcards: whole value, case-insensitive (Unicode lower case), matched in
//! linear time. A pattern is split at `*` into literal pieces; the first must be a prefix, the
//! last a suffix, and the middle ones are found left to right with a linear substring search.
//! No regex, no backtracking.

use serde::{Deserialize, Serialize};

use crate::error::Invalid;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pattern {
    raw: String,
    /// Lower-cased literal pieces between `*`s.
    pieces: Vec<String>,
    leading_star: bool,
    trailing_star: bool,
}

impl Pattern {
    pub fn new(raw: &str) -> Result<Self, Invalid> {
        if raw.trim().is_empty() {
            return Err(Invalid::value("a pattern must not be empty"));
        }
        if raw.chars().count() > 500 {
            return Err(Invalid::value("a pattern may be at most 500 characters"));
        }
        let folded = raw.trim().to_lowercase();
        Ok(Pattern {
            raw: raw.trim().to_string(),
            leading_star: folded.starts_with('*'),
            trailing_star: folded.ends_with('*'),
            pieces: folded
                .split('*')
                .filter(|p| !p.is_empty())
                .map(str::to_string)
                .collect(),
        })
    }

    pub fn as_str(&self) -> &str {
        &self.raw
    }

    /// Whole-value, case-insensitive (Unicode lower case), `*` matches any run.
    pub fn matches(&self, value: &str) -> bool {
        self.matches_folded(&value.trim().to_lowercase())
    }

    /// As [`Self::matches`] for a value already trimmed and lower-cased (fold once per email,
    /// not once per filter).
    pub fn matches_folded(&self, value: &str) -> bool {
        let mut rest = value;
        let n = self.pieces.len();
        if n == 0 {
            return self.leading_star || value.is_empty(); // "*" matches anything
        }
        for (i, piece) in self.pieces.iter().enumerate() {
            let first = i == 0;
            let last = i == n - 1;
            if first && !self.leading_star {
                if !rest.starts_with(piece.as_str()) {
                    return false;
                }
                rest = &rest[piece.len()..];
                if last && !self.trailing_star {
                    return rest.is_empty();
                }
                continue;
            }
            if last && !self.trailing_star {
                return rest.len() >= piece.len() && rest.ends_with(piece.as_str());
            }
            match rest.find(piece.as_str()) {
                Some(at) => rest = &rest[at + piece.len()..],
                None => return false,
            }
        }
        true
    }
}

impl Serialize for Pattern {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.raw)
    }
}

impl<'de> Deserialize<'de> for Pattern {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Pattern::new(&s).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn patterns_are_whole_value_case_insensitive_and_unicode_aware() {
        let p = |s| Pattern::new(s).unwrap();
        assert!(p("*@example.com").matches("Ann@Example.COM"));
        assert!(!p("*@example.com").matches("ann@example.com.evil"));
        assert!(p("invoice*").matches("Invoice 42"));
        assert!(!p("invoice").matches("Invoice 42"), "whole value");
        assert!(p("*rechnung*").matches("Ihre RECHNUNG für März"));
        assert!(p("ÄRGER*").matches("ärger über alles"));
        assert!(p("a*b*c").matches("aXbYc"));
        assert!(!p("a*b*c").matches("aXcYb"));
        assert!(p("*").matches("anything"));
        assert!(p("ab*ab").matches("abab"));
        assert!(!p("ab*ab").matches("aba"));
        assert!(Pattern::new("  ").is_err());
    }

    #[test]
    fn matching_is_linear_on_adversarial_input() {
        // A backtracking matcher takes exponential time here; ours stays instant.
        let value = "a".repeat(20_000);
        let pattern = Pattern::new(&format!("{}b", "*a".repeat(200))).unwrap();
        let start = std::time::Instant::now();
        assert!(!pattern.matches(&value));
        assert!(start.elapsed() < std::time::Duration::from_secs(1));
    }
}
