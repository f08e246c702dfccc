//! Small disks for storage-fault tests, made by the test and gone when it ends: a tmpfs of a
//! given size, and an ext4 file system on a loop device whose backing file lives on such a
//! tmpfs. The second looks roomy to the node, but its writes fail once the tmpfs behind it is
//! full: a disk whose fsync fails. Needs root.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, bail};

fn run(program: &str, args: &[&str]) -> anyhow::Result<String> {
    let out = Command::new(program)
        .args(args)
        .output()
        .with_context(|| format!("running {program}"))?;
    if !out.status.success() {
        bail!(
            "{program} {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
}

/// Free bytes for an unprivileged writer on `path`'s file system.
pub fn free_bytes(path: &Path) -> anyhow::Result<u64> {
    let st = rustix::fs::statvfs(path).with_context(|| format!("statvfs {}", path.display()))?;
    Ok(st.f_bavail.saturating_mul(st.f_frsize))
}

/// Writes `bytes` of filler into `path`, in 1 MiB writes (stops early if the disk fills).
pub fn fill(path: &Path, bytes: u64) -> anyhow::Result<u64> {
    use std::io::Write;
    let mut f = std::fs::File::create(path)?;
    let chunk = vec![0xa5u8; 1 << 20];
    let mut written = 0u64;
    while written < bytes {
        let n = chunk
            .len()
            .min(usize::try_from(bytes - written).unwrap_or(usize::MAX));
        if f.write_all(&chunk[..n]).is_err() {
            break;
        }
        written += n as u64;
    }
    let _ = f.sync_all();
    Ok(written)
}

/// A tmpfs mounted at a directory until dropped.
pub struct Tmpfs {
    pub path: PathBuf,
}

impl Tmpfs {
    pub fn mount(path: &Path, size_mib: u64) -> anyhow::Result<Self> {
        std::fs::create_dir_all(path)?;
        let p = path.to_string_lossy();
        run(
            "mount",
            &[
                "-t",
                "tmpfs",
                "-o",
                &format!("size={size_mib}m,mode=0700"),
                "tmpfs",
                &p,
            ],
        )
        .context("mounting a tmpfs (the storage-fault tests need root)")?;
        Ok(Self { path: path.into() })
    }

    /// Grows (or shrinks) the tmpfs in place.
    pub fn resize(&self, size_mib: u64) -> anyhow::Result<()> {
        let p = self.path.to_string_lossy();
        run("mount", &["-o", &format!("remount,size={size_mib}m"), &p])?;
        Ok(())
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = run("umount", &["-l", &self.path.to_string_lossy()]);
    }
}

/// ext4 of `fs_mib` on a loop device backed by a sparse file on a tmpfs of `backing_mib`.
pub struct LoopDisk {
    pub backing: Tmpfs,
    pub device: String,
    pub mount: PathBuf,
    mounted: bool,
}

impl LoopDisk {
    pub fn create(
        work: &Path,
        mount: &Path,
        fs_mib: u64,
        backing_mib: u64,
    ) -> anyhow::Result<Self> {
        let backing = Tmpfs::mount(&work.join("backing"), backing_mib)?;
        let image = backing.path.join("disk.img");
        run(
            "truncate",
            &["-s", &format!("{fs_mib}M"), &image.to_string_lossy()],
        )?;
        let device = run("losetup", &["-f", "--show", &image.to_string_lossy()])?;
        let mut disk = Self {
            backing,
            device,
            mount: mount.into(),
            mounted: false,
        };
        run("mkfs.ext4", &["-q", "-F", &disk.device])?;
        disk.mount_fs()?;
        Ok(disk)
    }

    pub fn mount_fs(&mut self) -> anyhow::Result<()> {
        std::fs::create_dir_all(&self.mount)?;
        run("mount", &[&self.device, &self.mount.to_string_lossy()])?;
        self.mounted = true;
        Ok(())
    }

    /// Unmounts, checks and repairs the file system as an operator would after a disk fault
    /// (`e2fsck -fy`), and mounts it again.
    pub fn repair(&mut self) -> anyhow::Result<()> {
        if self.mounted {
            run("umount", &[&self.mount.to_string_lossy()])?;
            self.mounted = false;
        }
        // e2fsck exits 1 or 2 when it repaired something: that is what it is for here.
        let status = Command::new("e2fsck")
            .args(["-fy", &self.device])
            .output()
            .context("running e2fsck")?
            .status;
        if !matches!(status.code(), Some(0..=2)) {
            bail!("e2fsck could not repair {}: {status}", self.device);
        }
        self.mount_fs()
    }
}

impl Drop for LoopDisk {
    fn drop(&mut self) {
        if self.mounted {
            let _ = run("umount", &["-l", &self.mount.to_string_lossy()]);
        }
        let _ = run("losetup", &["-d", &self.device]);
    }
}
