//! Values that can only hold what they say: a normalised email address, a Message-ID as
//! received, a case number. Each is parsed once where it enters (a header, a flag, an API
//! field, a stored item) and serialises as the plain string or number it wraps, so stored
//! items and queue messages keep their shape.

use serde::{Deserialize, Serialize};

use crate::error::Invalid;

/// Longest Message-ID kept verbatim (R-I2); keys derived from longer ones are hashed.
pub const MAX_MESSAGE_ID_BYTES: usize = 64 * 1024;

/// An email address, normalised: trimmed, one pair of angle brackets removed, lower case (the
/// local part too: nobody relies on case there). It has one `@` with a non-empty local part
/// and a dotted domain, at most 254 bytes, and no whitespace, control characters or the
/// characters that separate addresses in a header (`<>,;"`), so it can never smuggle a second
/// recipient or a header line into a message.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct EmailAddress(String);

impl EmailAddress {
    pub fn parse(raw: &str) -> Result<Self, Invalid> {
        let a = raw
            .trim()
            .trim_start_matches('<')
            .trim_end_matches('>')
            .to_lowercase();
        let shape_ok = a.split_once('@').is_some_and(|(local, domain)| {
            !local.is_empty()
                && !domain.contains('@')
                && domain.contains('.')
                && !domain.starts_with('.')
                && !domain.ends_with('.')
        });
        let chars_ok = !a
            .chars()
            .any(|c| c.is_whitespace() || c.is_control() || "<>,;\"".contains(c));
        if a.len() > 254 || !shape_ok || !chars_ok {
            return Err(Invalid::value(format!("{raw:?} is not an email address")));
        }
        Ok(EmailAddress(a))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Whether `raw` is an address as written, with nothing to trim or unwrap (the form
    /// operators type into a flag or a file).
    pub fn is_plain(raw: &str) -> bool {
        EmailAddress::parse(raw).is_ok_and(|a| a.0.eq_ignore_ascii_case(raw))
    }

    /// The domain, after the `@`.
    pub fn domain(&self) -> &str {
        self.0.split_once('@').map(|(_, d)| d).unwrap_or_default()
    }
}

impl TryFrom<String> for EmailAddress {
    type Error = Invalid;
    fn try_from(s: String) -> Result<Self, Invalid> {
        EmailAddress::parse(&s)
    }
}

impl From<EmailAddress> for String {
    fn from(a: EmailAddress) -> String {
        a.0
    }
}

impl std::str::FromStr for EmailAddress {
    type Err = Invalid;
    fn from_str(s: &str) -> Result<Self, Invalid> {
        EmailAddress::parse(s)
    }
}

impl std::fmt::Display for EmailAddress {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.pad(&self.0)
    }
}

impl AsRef<str> for EmailAddress {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

/// A Message-ID as received: surrounding whitespace and one pair of angle brackets removed,
/// the rest verbatim even when it is not RFC-valid (R-I2). Never empty, at most
/// [`MAX_MESSAGE_ID_BYTES`].
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct MessageId(String);

impl MessageId {
    pub fn parse(raw: &str) -> Result<Self, Invalid> {
        let id = crate::ids::normalize_message_id(raw)
            .ok_or_else(|| Invalid::value("a Message-ID must not be empty"))?;
        if id.len() > MAX_MESSAGE_ID_BYTES {
            return Err(Invalid::value(format!(
                "a Message-ID may be at most {MAX_MESSAGE_ID_BYTES} bytes"
            )));
        }
        Ok(MessageId(id))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// As a header carries it: `<id>`.
    pub fn bracketed(&self) -> String {
        format!("<{}>", self.0)
    }
}

impl TryFrom<String> for MessageId {
    type Error = Invalid;
    fn try_from(s: String) -> Result<Self, Invalid> {
        MessageId::parse(&s)
    }
}

impl From<MessageId> for String {
    fn from(m: MessageId) -> String {
        m.0
    }
}

impl std::fmt::Display for MessageId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.pad(&self.0)
    }
}

/// A case number: positive, global to the deployment, never reused (R-C7).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "u64", into = "u64")]
pub struct CaseNumber(u64);

impl CaseNumber {
    pub fn new(n: u64) -> Result<Self, Invalid> {
        if n == 0 {
            return Err(Invalid::value("case numbers start at 1"));
        }
        Ok(CaseNumber(n))
    }

    pub fn get(self) -> u64 {
        self.0
    }

    /// The subject tag that files a reply under this case (R-L2, R-A1).
    pub fn tag(self) -> String {
        format!("[#{}]", self.0)
    }
}

impl TryFrom<u64> for CaseNumber {
    type Error = Invalid;
    fn try_from(n: u64) -> Result<Self, Invalid> {
        CaseNumber::new(n)
    }
}

impl From<CaseNumber> for u64 {
    fn from(n: CaseNumber) -> u64 {
        n.0
    }
}

/// Compares with a plain number (tests and counters hold them as such).
impl PartialEq<u64> for CaseNumber {
    fn eq(&self, other: &u64) -> bool {
        self.0 == *other
    }
}

impl std::str::FromStr for CaseNumber {
    type Err = Invalid;
    fn from_str(s: &str) -> Result<Self, Invalid> {
        let n = s
            .trim()
            .parse::<u64>()
            .map_err(|_| Invalid::value(format!("{s:?} is not a case number")))?;
        CaseNumber::new(n)
    }
}

impl std::fmt::Display for CaseNumber {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        std::fmt::Display::fmt(&self.0, f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A small deterministic generator (no extra dependency): xorshift over a seed.
    struct Gen(u64);
    impl Gen {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            self.0
        }
        fn text(&mut self, alphabet: &[char], max: usize) -> String {
            let n = (self.next() % (max as u64 + 1)) as usize;
            (0..n)
                .map(|_| alphabet[(self.next() % alphabet.len() as u64) as usize])
                .collect()
        }
    }

    const ALPHABET: &[char] = &[
        'a', 'B', 'z', '0', '.', '@', '-', '_', '+', ' ', '\t', '\r', '\n', '<', '>', ',', ';',
        '"', 'é', 'Ж', '\u{0}', ':',
    ];

    #[test]
    fn any_parsed_address_is_normal_single_and_header_safe() {
        let mut g = Gen(0x9e37_79b9_7f4a_7c15);
        let mut accepted = 0;
        for _ in 0..20_000 {
            let raw = g.text(ALPHABET, 24);
            let Ok(a) = EmailAddress::parse(&raw) else {
                continue;
            };
            accepted += 1;
            let s = a.as_str();
            assert_eq!(s, s.to_lowercase(), "{raw:?}");
            assert_eq!(s.matches('@').count(), 1, "{raw:?}");
            assert!(
                !s.chars().any(|c| c.is_whitespace() || c.is_control()),
                "{raw:?}"
            );
            assert!(!s.contains([',', ';', '<', '>', '"']), "{raw:?}");
            // Parsing is idempotent and serde round-trips through the plain string.
            assert_eq!(EmailAddress::parse(s).unwrap(), a);
            let json = serde_json::to_string(&a).unwrap();
            assert_eq!(serde_json::from_str::<EmailAddress>(&json).unwrap(), a);
        }
        assert!(accepted > 0, "the generator produced no valid address");
        assert_eq!(
            EmailAddress::parse(" <Ann@Example.COM> ").unwrap().as_str(),
            "ann@example.com"
        );
        for bad in [
            "",
            "ann",
            "@x.test",
            "ann@x",
            "a b@x.test",
            "a@x.test\r\nBcc: b@y.test",
            "a@b@c.test",
        ] {
            assert!(EmailAddress::parse(bad).is_err(), "{bad:?}");
        }
        assert!(serde_json::from_str::<EmailAddress>("\"not an address\"").is_err());
    }

    #[test]
    fn message_ids_keep_their_text_and_refuse_empty_or_huge() {
        let mut g = Gen(42);
        for _ in 0..5_000 {
            let raw = g.text(ALPHABET, 30);
            if let Ok(id) = MessageId::parse(&raw) {
                assert!(!id.as_str().is_empty());
                assert_eq!(MessageId::parse(&id.bracketed()).unwrap(), id, "{raw:?}");
            }
        }
        assert_eq!(MessageId::parse(" <a@b> ").unwrap().as_str(), "a@b");
        assert_eq!(
            MessageId::parse("not rfc valid").unwrap().as_str(),
            "not rfc valid"
        );
        assert!(MessageId::parse("<>").is_err());
        assert!(MessageId::parse(&"x".repeat(MAX_MESSAGE_ID_BYTES + 1)).is_err());
    }

    #[test]
    fn case_numbers_are_positive_and_serialise_as_numbers() {
        let mut g = Gen(7);
        for _ in 0..1_000 {
            let n = g.next() >> 1;
            match CaseNumber::new(n) {
                Ok(c) => {
                    assert_eq!(c.get(), n);
                    assert_eq!(c.to_string().parse::<CaseNumber>().unwrap(), c);
                    assert_eq!(serde_json::to_string(&c).unwrap(), n.to_string());
                }
                Err(_) => assert_eq!(n, 0),
            }
        }
        assert_eq!(CaseNumber::new(42).unwrap().tag(), "[#42]");
        assert!("0".parse::<CaseNumber>().is_err() && "x".parse::<CaseNumber>().is_err());
        assert!(serde_json::from_str::<CaseNumber>("0").is_err());
    }
}
