//! Credential envelope encryption (R-F8): AES-256-GCM under one data key per deployment; KMS
//! wraps the data key (with an encryption context); the account name is the associated data.
//! The wrapped key lives in DynamoDB; each process unwraps it once and keeps it in memory, so
//! polling 1,000 accounts costs one KMS call per Lambda instance, not one per account.
//!
//! Only provisioning ([`KmsSecretBox::create_data_key`], from `provision::provision`) and
//! sealing (the operator adding an account) create the data key. Opening never does: a poller
//! that finds no key refuses with the reason, since a new key would open none of the stored
//! passwords and would hide that the old one is gone.

use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Nonce};
use aws_sdk_kms::primitives::Blob;
use aws_sdk_kms::types::DataKeySpec;
use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use mailroom_core::error::{StoreError, StoreResult};
use mailroom_core::keys::{CONFIG_PK, DATA_KEY_SK};
use mailroom_core::model::{SealedSecret, Secret};
use mailroom_core::ports::SecretBox;
use rand::RngCore;
use tokio::sync::Mutex;

use crate::dynamo::item::{key, n, s, Item};
use crate::dynamo::DynamoStore;
use crate::errors::sdk_error;

/// The encryption context the data key is wrapped under; IAM conditions the poller's
/// `kms:Decrypt` on it (`iam::Via::DataKey`).
pub const CONTEXT_KEY: &str = "mailroom:purpose";
pub const CONTEXT_VALUE: &str = "imap-credentials";

struct DataKey {
    id: String,
    cipher: Aes256Gcm,
}

pub struct KmsSecretBox {
    kms: aws_sdk_kms::Client,
    key_id: String,
    store: DynamoStore,
    cached: Mutex<Option<std::sync::Arc<DataKey>>>,
}

/// A stored key or a sealed secret that does not check out: the same every time, permanent.
fn err(context: &str, e: impl Into<Box<dyn std::error::Error + Send + Sync>>) -> StoreError {
    StoreError::permanent(context.to_string(), e)
}

impl KmsSecretBox {
    pub fn new(
        kms: aws_sdk_kms::Client,
        key_id: &str,
        table: &str,
        dynamodb: aws_sdk_dynamodb::Client,
    ) -> Self {
        KmsSecretBox {
            kms,
            key_id: key_id.to_string(),
            store: DynamoStore::new(dynamodb, table),
            cached: Mutex::new(None),
        }
    }

    fn item_key() -> Item {
        key(CONFIG_PK, DATA_KEY_SK)
    }

    /// Creates the deployment's data key unless it exists; returns its id. Idempotent, and
    /// safe when several provisioners race: the first stored key wins.
    pub async fn create_data_key(&self) -> StoreResult<String> {
        if let Some((id, _)) = self.read_wrapped().await? {
            return Ok(id);
        }
        Ok(self.create_key().await?.id)
    }

    /// The deployment's data key: cached, else read and unwrapped; when there is none, created
    /// only if `create` (sealing), else refused.
    async fn data_key(&self, create: bool) -> StoreResult<std::sync::Arc<DataKey>> {
        let mut cached = self.cached.lock().await;
        if let Some(k) = cached.as_ref() {
            return Ok(k.clone());
        }
        let key = match self.read_wrapped().await? {
            Some((id, wrapped)) => self.unwrap_key(id, wrapped).await?,
            None if create => self.create_key().await?,
            None => {
                // The whole reason in the context: it is what the account status shows.
                return Err(err(
                    format!(
                        "open secret: no credential data key ({CONFIG_PK}/{DATA_KEY_SK}) in \
                         table {}: the stack was not provisioned, or the item was removed. A \
                         new key would open none of the stored passwords: restore the item \
                         (point-in-time recovery) or provision and add the accounts again",
                        self.store.table()
                    )
                    .as_str(),
                    "data key missing",
                ));
            }
        };
        let key = std::sync::Arc::new(key);
        *cached = Some(key.clone());
        Ok(key)
    }

    async fn read_wrapped(&self) -> StoreResult<Option<(String, Vec<u8>)>> {
        let Some(item) = self.store.get_item(Self::item_key(), "data key").await? else {
            return Ok(None);
        };
        let id = item
            .get("key_id")
            .and_then(|v| v.as_s().ok())
            .ok_or_else(|| err("read data key", "key_id missing"))?
            .clone();
        let wrapped = item
            .get("wrapped")
            .and_then(|v| v.as_s().ok())
            .ok_or_else(|| err("read data key", "wrapped key missing"))?;
        let wrapped = B64.decode(wrapped).map_err(|e| err("read data key", e))?;
        Ok(Some((id, wrapped)))
    }

    async fn unwrap_key(&self, id: String, wrapped: Vec<u8>) -> StoreResult<DataKey> {
        let resp = self
            .kms
            .decrypt()
            .key_id(&self.key_id)
            .ciphertext_blob(Blob::new(wrapped))
            .encryption_context(CONTEXT_KEY, CONTEXT_VALUE)
            .encryption_context("mailroom:key-id", &id)
            .send()
            .await
            .map_err(|e| sdk_error("unwrap data key with KMS", e))?;
        let plain = resp
            .plaintext
            .ok_or_else(|| StoreError::backend("unwrap data key", "KMS returned no plaintext"))?;
        Ok(DataKey {
            cipher: Aes256Gcm::new_from_slice(plain.as_ref())
                .map_err(|_| err("unwrap data key", "data key is not 256 bits"))?,
            id,
        })
    }

    async fn create_key(&self) -> StoreResult<DataKey> {
        let mut id_bytes = [0u8; 8];
        rand::thread_rng().fill_bytes(&mut id_bytes);
        let id: String = id_bytes.iter().map(|b| format!("{b:02x}")).collect();
        let resp = self
            .kms
            .generate_data_key()
            .key_id(&self.key_id)
            .key_spec(DataKeySpec::Aes256)
            .encryption_context(CONTEXT_KEY, CONTEXT_VALUE)
            .encryption_context("mailroom:key-id", &id)
            .send()
            .await
            .map_err(|e| sdk_error("generate data key with KMS", e))?;
        let wrapped = resp
            .ciphertext_blob
            .ok_or_else(|| StoreError::backend("generate data key", "no ciphertext"))?;
        let plain = resp
            .plaintext
            .ok_or_else(|| StoreError::backend("generate data key", "no plaintext"))?;
        let mut item = Self::item_key();
        item.insert("key_id".into(), s(&id));
        item.insert("wrapped".into(), s(B64.encode(wrapped.as_ref())));
        item.insert("v".into(), n(1));
        if self.store.put_if_absent(item, "store data key").await? {
            Ok(DataKey {
                cipher: Aes256Gcm::new_from_slice(plain.as_ref())
                    .map_err(|_| err("generate data key", "not 256 bits"))?,
                id,
            })
        } else {
            // Another process created it first: use theirs, so every secret has one key.
            let (id, wrapped) = self
                .read_wrapped()
                .await?
                .ok_or_else(|| StoreError::backend("read data key", "vanished after conflict"))?;
            self.unwrap_key(id, wrapped).await
        }
    }
}

impl KmsSecretBox {
    /// Seals under the data key, created first only if `create` and there is none.
    async fn seal_with(
        &self,
        account: &str,
        secret: &Secret,
        create: bool,
    ) -> StoreResult<SealedSecret> {
        let key = self.data_key(create).await?;
        let mut nonce = [0u8; 12];
        rand::thread_rng().fill_bytes(&mut nonce);
        let ciphertext = key
            .cipher
            .encrypt(
                Nonce::from_slice(&nonce),
                Payload {
                    msg: secret.expose().as_bytes(),
                    aad: account.as_bytes(),
                },
            )
            .map_err(|_| err("seal secret", "encryption failed"))?;
        Ok(SealedSecret {
            key_id: key.id.clone(),
            nonce: B64.encode(nonce),
            ciphertext: B64.encode(ciphertext),
        })
    }
}

impl SecretBox for KmsSecretBox {
    async fn seal(&self, account: &str, secret: &Secret) -> StoreResult<SealedSecret> {
        self.seal_with(account, secret, true).await
    }

    async fn open(&self, account: &str, sealed: &SealedSecret) -> StoreResult<Secret> {
        let key = self.data_key(false).await?;
        if key.id != sealed.key_id {
            return Err(err(
                "open secret",
                format!("sealed under unknown data key {}", sealed.key_id),
            ));
        }
        let nonce = B64
            .decode(&sealed.nonce)
            .map_err(|e| err("open secret", e))?;
        if nonce.len() != 12 {
            return Err(err("open secret", "nonce is not 96 bits"));
        }
        let ciphertext = B64
            .decode(&sealed.ciphertext)
            .map_err(|e| err("open secret", e))?;
        let plain = key
            .cipher
            .decrypt(
                Nonce::from_slice(&nonce),
                Payload {
                    msg: &ciphertext,
                    aad: account.as_bytes(),
                },
            )
            .map_err(|_| {
                err(
                    "open secret",
                    "authentication failed (wrong account or tampered)",
                )
            })?;
        String::from_utf8(plain)
            .map(Secret::new)
            .map_err(|_| err("open secret", "not UTF-8"))
    }
}

/// The envelope as the functions use it: sealing under the deployment's existing data key
/// only, never creating one (provisioning and the operator CLI do, `iam` grants no function
/// `kms:GenerateDataKey`). The API seals the passwords it is given through this.
pub struct ExistingKey<'a>(pub &'a KmsSecretBox);

impl SecretBox for ExistingKey<'_> {
    async fn seal(&self, account: &str, secret: &Secret) -> StoreResult<SealedSecret> {
        self.0.seal_with(account, secret, false).await
    }

    async fn open(&self, account: &str, sealed: &SealedSecret) -> StoreResult<Secret> {
        self.0.open(account, sealed).await
    }
}
