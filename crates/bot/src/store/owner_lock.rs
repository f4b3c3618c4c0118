//! On SQLite one `serve` owns the database: an OS lock on a file next to it.

use super::*;

/// SQLite: the advisory lock on `<database file>.lock` that makes one `serve` process the
/// database's owner, held as long as this value lives (the OS drops it when the process
/// dies, `kill -9` included). Other subcommands do not take it.
#[derive(Debug)]
pub struct OwnerLock {
    _file: std::fs::File,
    path: std::path::PathBuf,
}

impl OwnerLock {
    /// The lock file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Takes the lock of the SQLite database at `url`; `Ok(None)` for PostgreSQL and
    /// in-memory SQLite, where there is no file to own.
    pub fn acquire(url: &str) -> std::result::Result<Option<OwnerLock>, OwnerLockError> {
        if Backend::of_url(url).processes() != Processes::One {
            return Ok(None);
        }
        let Some(db) = sqlite_path(url) else {
            return Ok(None);
        };
        let path = std::path::PathBuf::from(format!("{db}.lock"));
        let io = |source| OwnerLockError::Io {
            path: path.clone(),
            source,
        };
        if let Some(dir) = path.parent()
            && !dir.as_os_str().is_empty()
        {
            std::fs::create_dir_all(dir).map_err(io)?;
        }
        let file = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .map_err(io)?;
        match file.try_lock() {
            Ok(()) => Ok(Some(OwnerLock { _file: file, path })),
            Err(std::fs::TryLockError::WouldBlock) => Err(OwnerLockError::InUse(path)),
            Err(std::fs::TryLockError::Error(source)) => Err(io(source)),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum OwnerLockError {
    #[error(
        "the database is in use by another process (another `serve` holds the lock {0}); \
         stop it first, or give this one another DATABASE_URL"
    )]
    InUse(std::path::PathBuf),
    #[error("cannot lock the database ({path}): {source}")]
    Io {
        path: std::path::PathBuf,
        source: std::io::Error,
    },
}
