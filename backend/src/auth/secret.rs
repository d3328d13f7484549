//! The secret that signs identities.
//!
//! From `--secret` (its UTF-8 bytes, at least [`MIN_BYTES`]); otherwise
//! generated on first start and kept in a file beside the database, readable
//! by its owner only, so that tokens survive restarts. With the history in
//! memory, a generated secret lives for the process, like the history.

use std::fmt;
use std::fs::OpenOptions;
use std::io::{ErrorKind, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

/// Shortest secret accepted: HS256's key is 32 bytes.
pub const MIN_BYTES: usize = 32;

/// The file a generated secret is kept in, beside the database.
pub const FILE_NAME: &str = "roomcast.secret";

#[derive(Debug, thiserror::Error)]
pub enum SecretError {
    #[error("the secret must be at least {MIN_BYTES} bytes")]
    TooShort,
    #[error("cannot read or create the secret file {path}: {source}")]
    File { path: PathBuf, source: std::io::Error },
    #[error("no randomness from the operating system: {0}")]
    Random(getrandom::Error),
}

/// Signing key bytes. Never printed.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(Vec<u8>);

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(…)")
    }
}

impl Secret {
    /// A secret given by the operator.
    pub fn from_text(text: &str) -> Result<Self, SecretError> {
        if text.len() < MIN_BYTES {
            return Err(SecretError::TooShort);
        }
        Ok(Self(text.as_bytes().to_vec()))
    }

    /// A new random secret: 32 random bytes, kept as 64 hex digits.
    pub fn generate() -> Self {
        Self::try_generate().expect("the operating system provides randomness")
    }

    fn try_generate() -> Result<Self, SecretError> {
        let mut bytes = [0u8; 32];
        getrandom::getrandom(&mut bytes).map_err(SecretError::Random)?;
        Ok(Self(crate::hex::hex(&bytes).into_bytes()))
    }

    /// The secret kept in `dir`, created (mode 0600) if there is none yet.
    pub fn load_or_create(dir: &Path) -> Result<Self, SecretError> {
        let path = dir.join(FILE_NAME);
        let file_error = |source| SecretError::File { path: path.clone(), source };
        crate::owner_only::create_dir(dir).map_err(file_error)?;
        match std::fs::read_to_string(&path) {
            Ok(text) => return Self::from_text(text.trim()),
            Err(err) if err.kind() == ErrorKind::NotFound => {}
            Err(err) => return Err(file_error(err)),
        }
        let secret = Self::try_generate()?;
        // `create_new`: of two servers starting at once, one writes and the
        // other reads what it wrote.
        match OpenOptions::new().write(true).create_new(true).mode(0o600).open(&path) {
            Ok(mut file) => {
                file.write_all(&secret.0).and_then(|()| file.sync_all()).map_err(file_error)?;
                tracing::info!(path = %path.display(), "created a new secret for signing identities");
                Ok(secret)
            }
            Err(err) if err.kind() == ErrorKind::AlreadyExists => {
                Self::from_text(std::fs::read_to_string(&path).map_err(file_error)?.trim())
            }
            Err(err) => Err(file_error(err)),
        }
    }

    pub fn bytes(&self) -> &[u8] {
        &self.0
    }
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use super::*;

    #[test]
    fn short_secrets_are_refused() {
        assert!(matches!(Secret::from_text("too short"), Err(SecretError::TooShort)));
        assert!(Secret::from_text(&"x".repeat(MIN_BYTES)).is_ok());
    }

    #[test]
    fn a_generated_secret_is_kept_owner_only_and_reused() {
        let dir = std::env::temp_dir().join(format!("roomcast-secret-{}", uuid::Uuid::new_v4()));
        let first = Secret::load_or_create(&dir).unwrap();
        let mode = std::fs::metadata(dir.join(FILE_NAME)).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        assert_eq!(Secret::load_or_create(&dir).unwrap(), first);
        assert_ne!(Secret::generate(), first);
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn the_secret_is_never_printed() {
        assert_eq!(format!("{:?}", Secret::generate()), "Secret(…)");
    }
}
