//! Changes to flannel's subnet.env, seen the moment they happen.
//!
//! inotify watches the file's directory (`/run/flannel`) for anything that
//! creates, replaces, changes or removes an entry, and its parent (`/run`)
//! for the directory itself coming and going: flannel and rebootguard both
//! write the file by renaming a temp file into place, and a wiped `/run`
//! takes the directory with it.

use std::os::fd::AsFd;
use std::path::Path;

use nix::sys::inotify::{AddWatchFlags, InitFlags, Inotify, WatchDescriptor};
use tokio::io::unix::AsyncFd;
use tokio::sync::mpsc;

/// What happened to the file's directory.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Change {
    /// Something in the directory changed (the file written, replaced, removed).
    File,
    /// The kernel dropped events: everything must be re-read.
    Overflow,
}

struct Fd(Inotify);

impl std::os::fd::AsRawFd for Fd {
    fn as_raw_fd(&self) -> std::os::fd::RawFd {
        std::os::fd::AsRawFd::as_raw_fd(&self.0.as_fd())
    }
}

/// Watches the directory of `file`; every change goes to `changes`.
/// Fails only when inotify itself cannot be used.
pub fn watch(
    file: &Path,
    changes: mpsc::Sender<Change>,
) -> nix::Result<tokio::task::JoinHandle<()>> {
    let dir = file.parent().unwrap_or(Path::new("/")).to_path_buf();
    let parent = dir.parent().unwrap_or(Path::new("/")).to_path_buf();
    let name = dir
        .file_name()
        .map(|n| n.to_os_string())
        .unwrap_or_default();
    let inotify = Inotify::init(InitFlags::IN_NONBLOCK | InitFlags::IN_CLOEXEC)?;
    // SAFETY: `Inotify` owns its descriptor and closes it only when
    // dropped, which happens when the `AsyncFd` (its owner) is dropped.
    let fd = unsafe { AsyncFd::register_with_interest(Fd(inotify), tokio::io::Interest::READABLE) }
        .map_err(|e| nix::Error::try_from(std::io::Error::from(e)).unwrap_or(nix::Error::EIO))?;
    Ok(tokio::spawn(async move {
        let dir_flags = AddWatchFlags::IN_CREATE
            | AddWatchFlags::IN_DELETE
            | AddWatchFlags::IN_MODIFY
            | AddWatchFlags::IN_CLOSE_WRITE
            | AddWatchFlags::IN_MOVED_TO
            | AddWatchFlags::IN_MOVED_FROM
            | AddWatchFlags::IN_ATTRIB
            | AddWatchFlags::IN_DELETE_SELF
            | AddWatchFlags::IN_MOVE_SELF;
        let parent_flags = AddWatchFlags::IN_CREATE
            | AddWatchFlags::IN_MOVED_TO
            | AddWatchFlags::IN_DELETE
            | AddWatchFlags::IN_MOVED_FROM;
        let inotify = &fd.get_ref().0;
        if let Err(e) = inotify.add_watch(&parent, parent_flags) {
            tracing::warn!(
                "cannot watch {}: {e}; relying on the periodic check",
                parent.display()
            );
        }
        let mut dir_watch: Option<WatchDescriptor> = add(inotify, &dir, dir_flags);
        loop {
            let mut guard = match fd.readable().await {
                Ok(guard) => guard,
                Err(e) => {
                    tracing::warn!("inotify failed: {e}; relying on the periodic check");
                    return;
                }
            };
            let events = match guard.try_io(|inner| {
                inner
                    .get_ref()
                    .0
                    .read_events()
                    .map_err(std::io::Error::from)
            }) {
                Ok(Ok(events)) => events,
                Ok(Err(e)) if e.kind() == std::io::ErrorKind::WouldBlock => continue,
                Ok(Err(e)) => {
                    tracing::warn!("inotify failed: {e}; relying on the periodic check");
                    return;
                }
                Err(_would_block) => continue,
            };
            let mut change = None;
            for event in events {
                if event.mask.contains(AddWatchFlags::IN_Q_OVERFLOW) {
                    change = Some(Change::Overflow);
                    continue;
                }
                if Some(event.wd) == dir_watch {
                    if event.mask.intersects(
                        AddWatchFlags::IN_DELETE_SELF
                            | AddWatchFlags::IN_MOVE_SELF
                            | AddWatchFlags::IN_IGNORED,
                    ) {
                        dir_watch = None;
                    }
                    change.get_or_insert(Change::File);
                } else if event.name.as_deref() == Some(name.as_os_str()) {
                    // The directory itself came or went.
                    dir_watch = add(inotify, &dir, dir_flags).or(dir_watch);
                    change.get_or_insert(Change::File);
                }
            }
            if let Some(change) = change
                && changes.send(change).await.is_err()
            {
                return;
            }
        }
    }))
}

fn add(inotify: &Inotify, dir: &Path, flags: AddWatchFlags) -> Option<WatchDescriptor> {
    inotify.add_watch(dir, flags).ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    async fn next(rx: &mut mpsc::Receiver<Change>) -> Option<Change> {
        tokio::time::timeout(Duration::from_secs(2), rx.recv())
            .await
            .ok()
            .flatten()
    }

    #[tokio::test]
    async fn sees_the_file_and_its_directory_come_and_go() {
        let root = tempfile::tempdir().expect("tempdir");
        let dir = root.path().join("run/flannel");
        let file = dir.join("subnet.env");
        std::fs::create_dir_all(root.path().join("run")).expect("mkdir");
        let (tx, mut rx) = mpsc::channel(16);
        let _task = watch(&file, tx).expect("inotify");
        tokio::time::sleep(Duration::from_millis(50)).await;

        std::fs::create_dir(&dir).expect("mkdir");
        assert_eq!(next(&mut rx).await, Some(Change::File), "directory created");
        std::fs::write(dir.join(".tmp"), "x").expect("write");
        std::fs::rename(dir.join(".tmp"), &file).expect("rename");
        assert_eq!(
            next(&mut rx).await,
            Some(Change::File),
            "file renamed into place"
        );
        while tokio::time::timeout(Duration::from_millis(100), rx.recv())
            .await
            .is_ok()
        {}
        std::fs::remove_file(&file).expect("rm");
        assert_eq!(next(&mut rx).await, Some(Change::File), "file removed");
        // A wiped /run: the directory goes, comes back, and is watched again.
        std::fs::remove_dir_all(&dir).expect("rm -r");
        assert_eq!(next(&mut rx).await, Some(Change::File));
        while tokio::time::timeout(Duration::from_millis(100), rx.recv())
            .await
            .is_ok()
        {}
        std::fs::create_dir(&dir).expect("mkdir");
        assert_eq!(next(&mut rx).await, Some(Change::File));
        while tokio::time::timeout(Duration::from_millis(100), rx.recv())
            .await
            .is_ok()
        {}
        std::fs::write(&file, "FLANNEL_MTU=1450\n").expect("write");
        assert_eq!(
            next(&mut rx).await,
            Some(Change::File),
            "watched again after the wipe"
        );
    }
}
