//! Inputs only the operator CLI gives (record adds and JSON-lines imports): pure types, so the
//! adapter stores them and the CLI builds them without either owning the other's concern.

use crate::records::{
    normalize_address, Contact, CrmAccount, Lead, Opportunity, RecordKind, RecordRef,
};

/// A record as the CLI adds or imports it (cases come from email, never from here).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NewRecord {
    Account(CrmAccount),
    Contact(Contact),
    Lead(Lead),
    Opportunity(Opportunity),
}

impl NewRecord {
    /// The record this becomes: contacts and leads are named by address, the rest by name.
    pub fn reference(&self) -> RecordRef {
        match self {
            NewRecord::Account(a) => RecordRef::new(RecordKind::Account, &a.name),
            NewRecord::Contact(c) => RecordRef::new(RecordKind::Contact, &c.email),
            NewRecord::Lead(l) => RecordRef::new(RecordKind::Lead, &l.email),
            NewRecord::Opportunity(o) => RecordRef::new(RecordKind::Opportunity, &o.name),
        }
    }

    /// The addresses linking finds this record by (R-L2), normalised.
    pub fn addresses(&self) -> Vec<String> {
        match self {
            NewRecord::Account(a) => a.emails.iter().map(|e| normalize_address(e)).collect(),
            NewRecord::Contact(c) => vec![normalize_address(&c.email)],
            NewRecord::Lead(l) => vec![normalize_address(&l.email)],
            NewRecord::Opportunity(_) => vec![],
        }
    }

    /// The account a contact's address-index entries carry, so linking resolves it without
    /// another read.
    pub fn indexed_account(&self) -> Option<&str> {
        match self {
            NewRecord::Contact(c) => c.account.as_deref(),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::SCHEMA_VERSION;

    #[test]
    fn a_record_is_named_and_found_by_its_normalised_address() {
        let c = NewRecord::Contact(Contact {
            v: SCHEMA_VERSION,
            name: "Ann".into(),
            email: " Ann@Example.COM ".into(),
            account: Some("Acme".into()),
        });
        assert_eq!(c.reference().to_string(), "contact:ann@example.com");
        assert_eq!(c.addresses(), ["ann@example.com"]);
        assert_eq!(c.indexed_account(), Some("Acme"));
        let o = NewRecord::Opportunity(Opportunity {
            v: SCHEMA_VERSION,
            name: "Deal".into(),
            account: Some("Acme".into()),
        });
        assert!(o.addresses().is_empty());
        assert_eq!(o.indexed_account(), None);
    }
}
