//! Auto-reply templates (R-A1): a subject, a text body and an optional HTML body with the
//! placeholders `{{subject}}`, `{{case_number}}`, `{{case_name}}`, `{{contact_name}}` and
//! `{{account_name}}`; and the case tag every case mail's subject carries (R-A1, R-S3).
//!
//! A template is checked when it is set (an unknown or unclosed placeholder is refused, so a
//! typo is an error for the operator, not a literal `{{contat_name}}` in a customer's inbox).
//! Values come from mail and records, so they are made safe for where they go: escaped in HTML,
//! on one line in a subject; a missing value renders as nothing.

use crate::cases::link::case_tags;
use crate::dispatch::mime::one_line;
use crate::error::Invalid;
use crate::types::CaseNumber;

/// What a template can say.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Placeholder {
    /// The incoming email's subject.
    Subject,
    CaseNumber,
    CaseName,
    ContactName,
    AccountName,
}

impl Placeholder {
    pub const ALL: [Placeholder; 5] = [
        Placeholder::Subject,
        Placeholder::CaseNumber,
        Placeholder::CaseName,
        Placeholder::ContactName,
        Placeholder::AccountName,
    ];

    /// As written between the braces.
    pub fn name(self) -> &'static str {
        match self {
            Placeholder::Subject => "subject",
            Placeholder::CaseNumber => "case_number",
            Placeholder::CaseName => "case_name",
            Placeholder::ContactName => "contact_name",
            Placeholder::AccountName => "account_name",
        }
    }

    fn value(self, v: &TemplateValues) -> String {
        match self {
            Placeholder::Subject => v.subject.clone(),
            Placeholder::CaseNumber => v.case_number.map(|n| n.to_string()),
            Placeholder::CaseName => v.case_name.clone(),
            Placeholder::ContactName => v.contact_name.clone(),
            Placeholder::AccountName => v.account_name.clone(),
        }
        .unwrap_or_default()
    }
}

/// The values of one rendering; `None` renders as nothing.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TemplateValues {
    pub subject: Option<String>,
    pub case_number: Option<CaseNumber>,
    pub case_name: Option<String>,
    pub contact_name: Option<String>,
    pub account_name: Option<String>,
}

/// Where a template's output goes, which decides how values are inserted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target {
    /// A text body: values as they are.
    Text,
    /// An HTML body: values HTML-escaped.
    Html,
    /// A subject: one line; values lose their line breaks and other control characters.
    Subject,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Part {
    Literal(String),
    Value(Placeholder),
}

/// A checked template.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Template {
    source: String,
    target: Target,
    parts: Vec<Part>,
}

impl Template {
    /// A text-body template.
    pub fn parse(source: &str) -> Result<Template, Invalid> {
        Template::parse_for(Target::Text, source)
    }

    /// An HTML-body template.
    pub fn parse_html(source: &str) -> Result<Template, Invalid> {
        Template::parse_for(Target::Html, source)
    }

    /// A subject template: one line.
    pub fn parse_subject(source: &str) -> Result<Template, Invalid> {
        if source.chars().any(char::is_control) {
            return Err(Invalid::value(
                "a subject template must be one line, without control characters",
            ));
        }
        Template::parse_for(Target::Subject, source)
    }

    fn parse_for(target: Target, source: &str) -> Result<Template, Invalid> {
        let mut parts = Vec::new();
        let mut rest = source;
        while let Some(open) = rest.find("{{") {
            if open > 0 {
                parts.push(Part::Literal(rest[..open].to_string()));
            }
            let after = &rest[open + 2..];
            let Some(close) = after.find("}}") else {
                let shown: String = rest[open..].chars().take(30).collect();
                return Err(Invalid::value(format!(
                    "unclosed placeholder {shown:?}: a placeholder ends with }}}}"
                )));
            };
            let name = after[..close].trim();
            let placeholder = Placeholder::ALL
                .into_iter()
                .find(|p| p.name() == name)
                .ok_or_else(|| {
                    let known: Vec<String> = Placeholder::ALL
                        .iter()
                        .map(|p| format!("{{{{{}}}}}", p.name()))
                        .collect();
                    Invalid::value(format!(
                        "unknown placeholder {{{{{name}}}}}: the placeholders are {}",
                        known.join(", ")
                    ))
                })?;
            parts.push(Part::Value(placeholder));
            rest = &after[close + 2..];
        }
        if !rest.is_empty() {
            parts.push(Part::Literal(rest.to_string()));
        }
        Ok(Template {
            source: source.to_string(),
            target,
            parts,
        })
    }

    /// The template as the operator wrote it (what is stored).
    pub fn source(&self) -> &str {
        &self.source
    }

    pub fn target(&self) -> Target {
        self.target
    }

    pub fn render(&self, values: &TemplateValues) -> String {
        let mut out = String::with_capacity(self.source.len());
        for part in &self.parts {
            match part {
                Part::Literal(s) => out.push_str(s),
                Part::Value(p) => {
                    let v = p.value(values);
                    match self.target {
                        Target::Text => out.push_str(&v),
                        Target::Html => escape_html(&v, &mut out),
                        Target::Subject => out.push_str(&one_line(&v)),
                    }
                }
            }
        }
        out
    }
}

fn escape_html(s: &str, out: &mut String) {
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
}

/// An account's auto-reply templates, checked together with the field at fault named as the
/// CLI names it (`subject`, `body`, `html`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AutoReplyTemplates {
    pub subject: Template,
    pub text: Template,
    pub html: Option<Template>,
}

/// One auto-reply's subject and bodies.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rendered {
    pub subject: String,
    pub text: String,
    pub html: Option<String>,
}

impl AutoReplyTemplates {
    pub fn parse(subject: &str, text: &str, html: Option<&str>) -> Result<Self, Invalid> {
        let named = |field: &'static str| move |e: Invalid| Invalid::new(field, e.message);
        Ok(AutoReplyTemplates {
            subject: Template::parse_subject(subject).map_err(named("subject"))?,
            text: Template::parse(text).map_err(named("body"))?,
            html: html
                .map(Template::parse_html)
                .transpose()
                .map_err(named("html"))?,
        })
    }

    /// The rendered reply; with a case, its subject carries `[#N]` exactly once.
    pub fn render(&self, values: &TemplateValues) -> Rendered {
        let subject = self.subject.render(values);
        Rendered {
            subject: match values.case_number {
                Some(case) => tag_subject(&subject, case),
                None => subject,
            },
            text: self.text.render(values),
            html: self.html.as_ref().map(|h| h.render(values)),
        }
    }
}

/// Reply and forward prefixes, compared without case, that a case tag goes after.
const REPLY_PREFIXES: &[&str] = &[
    "re", "fw", "fwd", "aw", "wg", "sv", "vs", "antw", "tr", "rv",
];

/// The leading run of reply/forward prefixes (`Re: Fwd: `), and the rest.
fn split_reply_prefixes(s: &str) -> (&str, &str) {
    let mut end = 0;
    loop {
        let rest = &s[end..];
        let Some(colon) = rest.find(':') else { break };
        let word = rest[..colon].trim_start();
        if !REPLY_PREFIXES.iter().any(|p| p.eq_ignore_ascii_case(word)) {
            break;
        }
        let after = &rest[colon + 1..];
        end += colon + 1 + (after.len() - after.trim_start().len());
    }
    (&s[..end], &s[end..])
}

/// `subject` with `[#N]` for `case` in it exactly once, read as [`crate::cases::link::case_tag`]
/// reads it: a subject that already has our tag once, before any other case's, stays as it is;
/// otherwise every tag of ours goes and one goes in front, after any `Re:`/`Fwd:` prefixes, so
/// it is the first tag a reply's subject shows (a customer's subject naming another case keeps
/// that tag, after ours).
pub fn tag_subject(subject: &str, case: CaseNumber) -> String {
    let tags = case_tags(subject);
    if tags.first().is_some_and(|(_, n)| *n == case)
        && tags.iter().filter(|(_, n)| *n == case).count() == 1
    {
        return subject.to_string();
    }
    let mut s = subject.to_string();
    // A removal can join the halves around it into a new tag (`[#4[#42]2]`): until none is left.
    loop {
        let ours: Vec<_> = case_tags(&s)
            .into_iter()
            .filter(|(_, n)| *n == case)
            .map(|(r, _)| r)
            .collect();
        if ours.is_empty() {
            break;
        }
        for r in ours.into_iter().rev() {
            s.replace_range(r, " ");
        }
    }
    let s = s
        .split(' ')
        .filter(|w| !w.is_empty())
        .collect::<Vec<_>>()
        .join(" ");
    let (prefix, rest) = split_reply_prefixes(&s);
    let prefix = prefix.trim_end();
    let spaced = if prefix.is_empty() { "" } else { " " };
    format!("{prefix}{spaced}{} {rest}", case.tag())
        .trim_end()
        .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cases::link::case_tag;

    fn values() -> TemplateValues {
        TemplateValues {
            subject: Some("Printer <broken> & \"dead\"\r\nBcc: x@evil.example".into()),
            case_number: Some(CaseNumber::new(42).unwrap()),
            case_name: Some("Printer".into()),
            contact_name: Some("Ann O'Neil".into()),
            account_name: None,
        }
    }

    #[test]
    fn placeholders_render_their_values_and_missing_ones_render_empty() {
        let t = Template::parse(
            "Hello {{contact_name}},\ncase {{ case_number }} ({{case_name}}) about \
             {{subject}} at [{{account_name}}].",
        )
        .unwrap();
        assert_eq!(
            t.render(&values()),
            "Hello Ann O'Neil,\ncase 42 (Printer) about Printer <broken> & \"dead\"\r\nBcc: \
             x@evil.example at []."
        );
        assert_eq!(
            t.render(&TemplateValues::default()),
            "Hello ,\ncase  () about  at []."
        );
        assert_eq!(
            Template::parse("no placeholders { } }}")
                .unwrap()
                .render(&values()),
            "no placeholders { } }}"
        );
    }

    #[test]
    fn html_values_are_escaped_and_the_template_itself_is_not() {
        let t = Template::parse_html("<p>Dear <b>{{contact_name}}</b>: {{subject}}</p>").unwrap();
        assert_eq!(
            t.render(&values()),
            "<p>Dear <b>Ann O&#39;Neil</b>: Printer &lt;broken&gt; &amp; &quot;dead&quot;\r\nBcc: \
             x@evil.example</p>"
        );
    }

    #[test]
    fn subject_values_lose_their_line_breaks() {
        let t = Template::parse_subject("Re: {{subject}}").unwrap();
        let s = t.render(&values());
        assert_eq!(s, "Re: Printer <broken> & \"dead\" Bcc: x@evil.example");
        assert!(!s.contains(['\r', '\n']));
        assert!(Template::parse_subject("two\nlines").is_err());
    }

    #[test]
    fn unknown_and_unclosed_placeholders_are_refused_with_the_field_named() {
        let e = Template::parse("Hi {{contat_name}}").unwrap_err();
        assert!(e.message.contains("{{contat_name}}"), "{e}");
        assert!(
            e.message.contains("{{contact_name}}"),
            "lists the known ones: {e}"
        );
        let e = Template::parse("Hi {{contact_name").unwrap_err();
        assert!(e.message.contains("unclosed"), "{e}");

        let e = AutoReplyTemplates::parse("ok", "fine", Some("<p>{{case}}</p>")).unwrap_err();
        assert_eq!(e.field, "html");
        let e = AutoReplyTemplates::parse("{{subject", "fine", None).unwrap_err();
        assert_eq!(e.field, "subject");
        let e = AutoReplyTemplates::parse("ok", "{{nope}}", None).unwrap_err();
        assert_eq!(e.field, "body");
        assert_eq!(e.to_string(), format!("body: {}", e.message));
    }

    #[test]
    fn an_auto_reply_with_a_case_carries_its_tag_once() {
        let t = AutoReplyTemplates::parse(
            "Re: {{subject}}",
            "We opened case {{case_number}}.",
            Some("<p>Case {{case_number}}</p>"),
        )
        .unwrap();
        let mut v = values();
        v.subject = Some("[#42] printer".into());
        let r = t.render(&v);
        assert_eq!(r.subject, "Re: [#42] printer");
        assert_eq!(r.text, "We opened case 42.");
        assert_eq!(r.html.as_deref(), Some("<p>Case 42</p>"));
        v.case_number = None;
        v.subject = Some("printer".into());
        assert_eq!(t.render(&v).subject, "Re: printer");
    }

    #[test]
    fn tag_subject_puts_the_tag_in_exactly_once() {
        let n = CaseNumber::new(42).unwrap();
        let cases = [
            ("printer", "[#42] printer"),
            ("Re: printer", "Re: [#42] printer"),
            ("RE: Fwd:  printer", "RE: Fwd: [#42] printer"),
            ("Re: [#42] printer", "Re: [#42] printer"),
            ("printer [#42]", "printer [#42]"),
            ("[#42] printer [#42]", "[#42] printer"),
            ("Re: [#7] printer", "Re: [#42] [#7] printer"),
            ("[#7] printer [#42]", "[#42] [#7] printer"),
            // Read as case_tag reads it: the inner tag is ours, the outer brackets are text.
            ("[#4[#42]2] x", "[#4[#42]2] x"),
            ("[#4 [#42] 2] [#42]", "[#42] [#4 2]"),
            ("[#042] x", "[#042] x"),
            ("", "[#42]"),
            ("Re:", "Re: [#42]"),
        ];
        for (subject, want) in cases {
            assert_eq!(tag_subject(subject, n), want, "{subject:?}");
        }
    }

    /// A small deterministic generator (no extra dependency): xorshift over a seed.
    struct Gen(u64);
    impl Gen {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            self.0
        }
    }

    #[test]
    fn a_tagged_subject_reads_back_as_its_case_whatever_it_held() {
        const PIECES: &[&str] = &[
            "[#", "]", "42", "4", "2", "7", "[#42]", "[#7]", "[#0]", " ", "Re:", "x", "é", "#",
            "[", "+42", " 42 ",
        ];
        let n = CaseNumber::new(42).unwrap();
        let mut g = Gen(0x853c_49e6_748f_ea9b);
        for _ in 0..20_000 {
            let len = (g.next() % 12) as usize;
            let subject: String = (0..len)
                .map(|_| PIECES[(g.next() % PIECES.len() as u64) as usize])
                .collect();
            let tagged = tag_subject(&subject, n);
            assert_eq!(case_tag(&tagged), Some(n), "{subject:?} -> {tagged:?}");
            let ours = case_tags(&tagged).iter().filter(|(_, c)| *c == n).count();
            assert_eq!(ours, 1, "{subject:?} -> {tagged:?}");
            // Tagging is idempotent: a reply's reply keeps the subject.
            assert_eq!(tag_subject(&tagged, n), tagged, "{subject:?}");
        }
    }
}
