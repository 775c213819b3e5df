//! Tunables shared by the poller and ingest, validated once at load.

use serde::{Deserialize, Serialize};

/// Hard ceiling for [`Limits::max_message_bytes`] (R-F6: configurable up to 40 MB).
pub const MAX_MESSAGE_BYTES_CEILING: u64 = 40 * 1024 * 1024;

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Limits {
    /// Messages fetched per account and run (R-F2; the reference CRM used 50).
    pub fetch_portion: usize,
    /// Messages above this size are imported with headers and text only (R-F6).
    pub max_message_bytes: u64,
    /// Upper bound on bytes requested by one UID FETCH, so memory stays bounded.
    pub fetch_batch_bytes: u64,
    /// Upper bound on messages requested by one UID FETCH.
    pub fetch_batch_messages: usize,
    /// Bytes kept of a message above `max_message_bytes` (headers and the leading text part).
    pub oversize_head_bytes: u64,
    /// Text or HTML bodies longer than this go to S3 instead of the email item (400 KB items).
    pub inline_body_bytes: usize,
    /// Raw bytes that ingest parses at once, whatever the number of records: a budget, not a
    /// count, so ten 35 MB messages wait for each other instead of exhausting the function's
    /// memory (parsing holds a few copies of a message). One larger message still runs alone.
    #[serde(default = "default_ingest_bytes_in_flight")]
    pub ingest_bytes_in_flight: u64,
    /// Seconds an ingest instance keeps what it read of accounts, filters and users
    /// (`intake::cache`): a CLI change reaches a warm instance within this time; 0 reads on
    /// every batch.
    #[serde(default = "default_ingest_cache_seconds")]
    pub ingest_cache_seconds: u64,
}

fn default_ingest_cache_seconds() -> u64 {
    60
}

fn default_ingest_bytes_in_flight() -> u64 {
    96 * 1024 * 1024
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            fetch_portion: 200,
            max_message_bytes: 25 * 1024 * 1024,
            fetch_batch_bytes: 8 * 1024 * 1024,
            fetch_batch_messages: 50,
            oversize_head_bytes: 1024 * 1024,
            inline_body_bytes: 100 * 1024,
            ingest_bytes_in_flight: default_ingest_bytes_in_flight(),
            ingest_cache_seconds: default_ingest_cache_seconds(),
        }
    }
}

/// A configuration value that was refused, naming the field.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("invalid configuration: {field}: {reason}")]
pub struct ConfigError {
    pub field: &'static str,
    pub reason: String,
}

impl ConfigError {
    pub fn new(field: &'static str, reason: impl Into<String>) -> Self {
        ConfigError {
            field,
            reason: reason.into(),
        }
    }
}

impl Limits {
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.fetch_portion == 0 || self.fetch_portion > 10_000 {
            return Err(ConfigError::new(
                "MAILROOM_FETCH_PORTION",
                "must be between 1 and 10000",
            ));
        }
        if self.max_message_bytes < 64 * 1024 || self.max_message_bytes > MAX_MESSAGE_BYTES_CEILING
        {
            return Err(ConfigError::new(
                "MAILROOM_MAX_MESSAGE_BYTES",
                "must be between 65536 and 41943040 (40 MB)",
            ));
        }
        if self.fetch_batch_bytes < 64 * 1024 {
            return Err(ConfigError::new(
                "MAILROOM_FETCH_BATCH_BYTES",
                "must be at least 65536",
            ));
        }
        if self.ingest_bytes_in_flight < 1024 * 1024 {
            return Err(ConfigError::new(
                "MAILROOM_INGEST_BYTES_IN_FLIGHT",
                "must be at least 1048576 (1 MiB)",
            ));
        }
        if self.ingest_cache_seconds > 3600 {
            return Err(ConfigError::new(
                "MAILROOM_INGEST_CACHE_SECONDS",
                "must be at most 3600 (a CLI change must reach ingest within it)",
            ));
        }
        if self.fetch_batch_messages == 0 {
            return Err(ConfigError::new(
                "MAILROOM_FETCH_BATCH_MESSAGES",
                "must be at least 1",
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid_and_bad_values_name_the_field() {
        assert_eq!(Limits::default().validate(), Ok(()));
        let bad = Limits {
            max_message_bytes: 50 * 1024 * 1024,
            ..Limits::default()
        };
        assert_eq!(
            bad.validate().unwrap_err().field,
            "MAILROOM_MAX_MESSAGE_BYTES"
        );
        let bad = Limits {
            fetch_portion: 0,
            ..Limits::default()
        };
        assert_eq!(bad.validate().unwrap_err().field, "MAILROOM_FETCH_PORTION");
    }
}
