//! Settings from the environment, refused at load with the variable named.

use mailroom_core::limits::{ConfigError, Limits};

/// A refused start as a function's `main` returns it. Rust prints an error returned from `main`
/// with `{:?}`, so this Debug is the message itself: the log reads
/// `Error: invalid configuration: MAILROOM_TABLE: is required`, not a struct dump or a quoted
/// string.
pub struct StartupError(Box<dyn std::error::Error + Send + Sync>);

impl StartupError {
    pub fn new(cause: impl Into<Box<dyn std::error::Error + Send + Sync>>) -> Self {
        StartupError(cause.into())
    }
}

impl std::fmt::Debug for StartupError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        std::fmt::Display::fmt(&self.0, f)
    }
}

impl std::fmt::Display for StartupError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        std::fmt::Display::fmt(&self.0, f)
    }
}

impl std::error::Error for StartupError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.0.source()
    }
}

/// Names of the deployed resources (from template.yaml outputs, or the local stack).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resources {
    pub table: String,
    pub bucket: String,
    pub poll_queue_url: String,
    pub ingest_queue_url: String,
    /// Events for dispatch (auto-replies, notifications): `case.created`, `email.linked`.
    pub dispatch_queue_url: String,
    /// Key id, ARN or `alias/...`.
    pub kms_key_id: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    pub resources: Resources,
    pub limits: Limits,
    /// R-F8b: IMAP hosts on private, loopback or link-local addresses are refused unless set.
    pub allow_private_hosts: bool,
    /// Accounts with `security: plain` (IMAP without TLS, the password in clear) are refused,
    /// when added and when polled, unless set (`MAILROOM_ALLOW_PLAINTEXT`). The local stack sets
    /// it; a deployed stack does not.
    pub allow_plaintext: bool,
    /// Extra PEM certificate(s) to trust for IMAP TLS (a private CA, or the local stack's).
    pub imap_ca_file: Option<String>,
    /// Dispatch: how long a bounced address gets no notification email
    /// (`MAILROOM_FAILING_DAYS`, 1-365, default 7) and the verified address notification
    /// emails come from (`MAILROOM_NOTIFY_FROM`; unset: the group address of the mail).
    pub dispatch: mailroom_core::dispatch::DispatchSettings,
    /// The SES configuration set sends go through (`MAILROOM_SES_CONFIGURATION_SET`): its
    /// event destination publishes bounces and complaints to the feedback topic.
    pub ses_configuration_set: Option<String>,
}

impl Config {
    /// Reads `MAILROOM_*` variables through `get` (the process environment in production).
    pub fn from_lookup(get: impl Fn(&str) -> Option<String>) -> Result<Config, ConfigError> {
        let required = |name: &'static str| -> Result<String, ConfigError> {
            get(name)
                .filter(|v| !v.trim().is_empty())
                .ok_or_else(|| ConfigError::new(name, "is required"))
        };
        let defaults = Limits::default();
        let limits = Limits {
            fetch_portion: number(&get, "MAILROOM_FETCH_PORTION", defaults.fetch_portion)?,
            max_message_bytes: number(
                &get,
                "MAILROOM_MAX_MESSAGE_BYTES",
                defaults.max_message_bytes,
            )?,
            fetch_batch_bytes: number(
                &get,
                "MAILROOM_FETCH_BATCH_BYTES",
                defaults.fetch_batch_bytes,
            )?,
            fetch_batch_messages: number(
                &get,
                "MAILROOM_FETCH_BATCH_MESSAGES",
                defaults.fetch_batch_messages,
            )?,
            ingest_bytes_in_flight: number(
                &get,
                "MAILROOM_INGEST_BYTES_IN_FLIGHT",
                defaults.ingest_bytes_in_flight,
            )?,
            ingest_cache_seconds: number(
                &get,
                "MAILROOM_INGEST_CACHE_SECONDS",
                defaults.ingest_cache_seconds,
            )?,
            ..defaults
        };
        limits.validate()?;
        let allow_private_hosts = flag(&get, "MAILROOM_ALLOW_PRIVATE_HOSTS")?;
        let allow_plaintext = flag(&get, "MAILROOM_ALLOW_PLAINTEXT")?;
        let failing_days: i64 = number(&get, "MAILROOM_FAILING_DAYS", 7)?;
        if !(1..=365).contains(&failing_days) {
            return Err(ConfigError::new(
                "MAILROOM_FAILING_DAYS",
                format!("must be between 1 and 365, not {failing_days}"),
            ));
        }
        let notify_from = match get("MAILROOM_NOTIFY_FROM").filter(|v| !v.trim().is_empty()) {
            Some(a) => Some(
                mailroom_core::types::EmailAddress::parse(&a)
                    .map_err(|e| ConfigError::new("MAILROOM_NOTIFY_FROM", e.message))?,
            ),
            None => None,
        };
        Ok(Config {
            resources: Resources {
                table: required("MAILROOM_TABLE")?,
                bucket: required("MAILROOM_BUCKET")?,
                poll_queue_url: required("MAILROOM_POLL_QUEUE_URL")?,
                ingest_queue_url: required("MAILROOM_INGEST_QUEUE_URL")?,
                dispatch_queue_url: required("MAILROOM_DISPATCH_QUEUE_URL")?,
                kms_key_id: required("MAILROOM_KMS_KEY_ID")?,
            },
            limits,
            allow_private_hosts,
            allow_plaintext,
            imap_ca_file: get("MAILROOM_IMAP_CA_FILE").filter(|v| !v.is_empty()),
            ses_configuration_set: get("MAILROOM_SES_CONFIGURATION_SET")
                .filter(|v| !v.trim().is_empty()),
            dispatch: mailroom_core::dispatch::DispatchSettings {
                failing_for: chrono::Duration::days(failing_days),
                notify_from,
            },
        })
    }

    pub fn from_env() -> Result<Config, ConfigError> {
        Config::from_lookup(|k| std::env::var(k).ok())
    }

    /// [`Config::from_env`] for a Lambda's `main`: see [`StartupError`].
    pub fn from_env_at_start() -> Result<Config, StartupError> {
        Config::from_env().map_err(StartupError::new)
    }
}

/// A true/false switch; unset is false.
fn flag(get: &impl Fn(&str) -> Option<String>, name: &'static str) -> Result<bool, ConfigError> {
    match get(name).as_deref().map(str::trim) {
        None | Some("") | Some("false") | Some("0") => Ok(false),
        Some("true") | Some("1") => Ok(true),
        Some(other) => Err(ConfigError::new(
            name,
            format!("must be true or false, not {other:?}"),
        )),
    }
}

fn number<T: std::str::FromStr + Copy>(
    get: &impl Fn(&str) -> Option<String>,
    name: &'static str,
    default: T,
) -> Result<T, ConfigError> {
    match get(name) {
        None => Ok(default),
        Some(v) if v.trim().is_empty() => Ok(default),
        Some(v) => v
            .trim()
            .parse()
            .map_err(|_| ConfigError::new(name, format!("{v:?} is not a number"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn env(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let map: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        move |k| map.get(k).cloned()
    }

    const BASE: &[(&str, &str)] = &[
        ("MAILROOM_TABLE", "t"),
        ("MAILROOM_BUCKET", "b"),
        ("MAILROOM_POLL_QUEUE_URL", "p"),
        ("MAILROOM_INGEST_QUEUE_URL", "i"),
        ("MAILROOM_DISPATCH_QUEUE_URL", "d"),
        ("MAILROOM_KMS_KEY_ID", "alias/k"),
    ];

    #[test]
    fn loads_and_names_the_bad_field() {
        let c = Config::from_lookup(env(BASE)).unwrap();
        assert_eq!(c.limits.fetch_portion, 200);
        assert!(!c.allow_private_hosts);
        assert!(
            !c.allow_plaintext,
            "plaintext IMAP is refused unless allowed"
        );

        let err = Config::from_lookup(env(&BASE[1..])).unwrap_err();
        assert_eq!(err.field, "MAILROOM_TABLE");

        let mut bad = BASE.to_vec();
        bad.push(("MAILROOM_FETCH_PORTION", "lots"));
        assert_eq!(
            Config::from_lookup(env(&bad)).unwrap_err().field,
            "MAILROOM_FETCH_PORTION"
        );
        let mut bad = BASE.to_vec();
        bad.push(("MAILROOM_ALLOW_PRIVATE_HOSTS", "maybe"));
        assert_eq!(
            Config::from_lookup(env(&bad)).unwrap_err().field,
            "MAILROOM_ALLOW_PRIVATE_HOSTS"
        );
        let mut bad = BASE.to_vec();
        bad.push(("MAILROOM_ALLOW_PLAINTEXT", "yes"));
        assert_eq!(
            Config::from_lookup(env(&bad)).unwrap_err().field,
            "MAILROOM_ALLOW_PLAINTEXT"
        );
        let mut local = BASE.to_vec();
        local.push(("MAILROOM_ALLOW_PLAINTEXT", "true"));
        assert!(Config::from_lookup(env(&local)).unwrap().allow_plaintext);
    }

    #[test]
    fn a_refused_start_prints_the_message_not_a_struct() {
        let err = StartupError::new(Config::from_lookup(env(&BASE[1..])).unwrap_err());
        let boxed: Box<dyn std::error::Error + Send + Sync> = err.into();
        // What `main` prints for a returned error.
        assert_eq!(
            format!("{boxed:?}"),
            "invalid configuration: MAILROOM_TABLE: is required"
        );
    }
}
