//! What the server keeps on disk is its user's alone: the data directory
//! it creates is 0700, the database with its `-wal` and `-shm` files 0600
//! (the generated secret is created 0600 by `auth::secret`). The history
//! holds every message, and a usual umask (022) would leave all of it
//! readable by every user of the machine, so the modes are set, not left to
//! the umask.

use std::ffi::OsString;
use std::fs::{DirBuilder, Permissions};
use std::io::{self, ErrorKind};
use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
use std::path::Path;

/// Creates `dir`, with any parent it lacks, owner-only (0700). A directory
/// that exists is left as it is: it may be shared, like `.` or `/var/lib`.
pub fn create_dir(dir: &Path) -> io::Result<()> {
    if dir.is_dir() {
        return Ok(());
    }
    DirBuilder::new().recursive(true).mode(0o700).create(dir)?;
    // The umask can only have taken bits away; this is 0700 whatever it is.
    std::fs::set_permissions(dir, Permissions::from_mode(0o700))
}

/// Makes the SQLite database at `path`, and its `-wal` and `-shm` files if
/// they exist (left by an earlier run), owner-only (0600). SQLite creates
/// its `-wal` and `-shm` files later with the database's mode. A file the
/// server may write but not change the mode of (another user's) is warned
/// about, not refused: it ran before, and it still can.
pub fn restrict_database(path: &Path) {
    for suffix in ["", "-wal", "-shm"] {
        let mut file = OsString::from(path.as_os_str());
        file.push(suffix);
        match std::fs::set_permissions(&file, Permissions::from_mode(0o600)) {
            Err(err) if err.kind() != ErrorKind::NotFound => {
                tracing::warn!(path = %Path::new(&file).display(), %err, "cannot make the file owner-only (0600)");
            }
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mode(path: &Path) -> u32 {
        std::fs::metadata(path).unwrap().permissions().mode() & 0o777
    }

    #[test]
    fn a_created_directory_is_owner_only_and_an_existing_one_is_left_alone() {
        let root = std::env::temp_dir().join(format!("roomcast-owner-only-{}", uuid::Uuid::new_v4()));
        let dir = root.join("data");
        create_dir(&dir).unwrap();
        assert_eq!((mode(&root), mode(&dir)), (0o700, 0o700));
        std::fs::set_permissions(&dir, Permissions::from_mode(0o750)).unwrap();
        create_dir(&dir).unwrap();
        assert_eq!(mode(&dir), 0o750, "not the server's to change");
        std::fs::remove_dir_all(root).unwrap();
    }
}
