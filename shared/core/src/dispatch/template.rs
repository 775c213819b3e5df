//! Auto-reply templates (R-A1). Interim version; the full one (HTML escaping, subject tags)
//! replaces it.

use crate::error::Invalid;

pub const PLACEHOLDERS: [&str; 5] = [
    "subject",
    "case_number",
    "case_name",
    "contact_name",
    "account_name",
];

#[derive(Debug, Clone, Default)]
pub struct TemplateValues {
    pub subject: String,
    pub case_number: String,
    pub case_name: String,
    pub contact_name: String,
    pub account_name: String,
}

#[derive(Debug, Clone)]
pub struct Template(String);

impl Template {
    pub fn parse(text: &str) -> Result<Template, Invalid> {
        let mut rest = text;
        while let Some(i) = rest.find("{{") {
            let after = &rest[i + 2..];
            let Some(j) = after.find("}}") else {
                return Err(Invalid::value("an unclosed {{ placeholder"));
            };
            let name = after[..j].trim();
            if !PLACEHOLDERS.contains(&name) {
                return Err(Invalid::value(format!(
                    "unknown placeholder {{{{{name}}}}} (known: {})",
                    PLACEHOLDERS.join(", ")
                )));
            }
            rest = &after[j + 2..];
        }
        Ok(Template(text.to_string()))
    }

    pub fn render(&self, v: &TemplateValues) -> String {
        let mut out = self.0.clone();
        for (name, value) in [
            ("subject", &v.subject),
            ("case_number", &v.case_number),
            ("case_name", &v.case_name),
            ("contact_name", &v.contact_name),
            ("account_name", &v.account_name),
        ] {
            out = out.replace(&format!("{{{{{name}}}}}"), value);
        }
        out
    }
}
