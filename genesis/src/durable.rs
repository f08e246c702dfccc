//! Writing large files durably without one long stall at the end.
//!
//! Linux keeps written pages in memory until a sync (or until far more is dirty than one
//! archive), so the `fsync` that makes a 1 GiB download or upload durable would write the whole
//! gigabyte at the end, while nothing else happens. [`FlushingFile`] asks a helper thread to sync
//! what was written every few megabytes, so the disk works while the data still streams in and
//! the final sync finds little left to do. It changes when bytes reach the disk, never what
//! reaches it: the caller still makes the file durable with [`FlushingFile::sync_all`].

use std::fs::File;
use std::io::{self, Write};
use std::sync::mpsc::{SyncSender, TrySendError, sync_channel};
use std::thread::JoinHandle;

/// Bytes written between background syncs.
pub const FLUSH_EVERY_BYTES: u64 = 64 * 1024 * 1024;

/// A file whose written pages a helper thread syncs to disk as the writing goes on.
pub struct FlushingFile {
    file: File,
    since_flush: u64,
    wake: Option<SyncSender<()>>,
    flusher: Option<JoinHandle<io::Result<()>>>,
}

impl FlushingFile {
    pub fn new(file: File) -> io::Result<Self> {
        let clone = file.try_clone()?;
        // One pending request at most: a sync still running covers the bytes of the next.
        let (wake, requests) = sync_channel::<()>(1);
        let flusher = std::thread::Builder::new()
            .name("flush".into())
            .spawn(move || {
                for () in requests {
                    clone.sync_data()?;
                }
                Ok(())
            })?;
        Ok(Self {
            file,
            since_flush: 0,
            wake: Some(wake),
            flusher: Some(flusher),
        })
    }

    /// Stops the helper and makes the file durable (data and metadata).
    pub fn sync_all(mut self) -> io::Result<()> {
        self.stop_flusher()?;
        self.file.flush()?;
        self.file.sync_all()
    }

    fn stop_flusher(&mut self) -> io::Result<()> {
        self.wake = None;
        match self.flusher.take() {
            Some(handle) => handle
                .join()
                .map_err(|_| io::Error::other("the flush thread panicked"))?,
            None => Ok(()),
        }
    }
}

impl Write for FlushingFile {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.file.write(buf)?;
        self.since_flush += n as u64;
        if self.since_flush >= FLUSH_EVERY_BYTES {
            self.since_flush = 0;
            if let Some(wake) = &self.wake {
                match wake.try_send(()) {
                    Ok(()) | Err(TrySendError::Full(())) => {}
                    // The helper stopped on an error: the final sync reports it.
                    Err(TrySendError::Disconnected(())) => self.wake = None,
                }
            }
        }
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.file.flush()
    }
}

impl Drop for FlushingFile {
    fn drop(&mut self) {
        let _ = self.stop_flusher();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn what_is_written_is_what_is_read_back() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f");
        let mut f = FlushingFile::new(File::create(&path).unwrap()).unwrap();
        let piece = vec![7u8; 1 << 20];
        for _ in 0..(FLUSH_EVERY_BYTES / (1 << 20) * 2 + 3) {
            f.write_all(&piece).unwrap();
        }
        f.sync_all().unwrap();
        let len = std::fs::metadata(&path).unwrap().len();
        assert_eq!(len, (FLUSH_EVERY_BYTES / (1 << 20) * 2 + 3) * (1 << 20));
    }
}
