//! Child side: device nodes and the /dev symlinks. In a user namespace
//! mknod is not allowed, so the host's node is bind-mounted instead.

use std::os::fd::RawFd;

use super::{resolve, RootfsPlan};
use crate::init::fail::{ChildResult, Step, StepContext};
use crate::sys::{self, Errno};

pub fn create_all(plan: &RootfsPlan, root: RawFd) -> ChildResult<()> {
    if !plan.setup_dev {
        return Ok(());
    }
    let old = sys::umask(0);
    let mut res = resolve::Resolver::new(root);
    let r = nodes(plan, &mut res).and_then(|_| links(plan, &mut res));
    sys::umask(old);
    r
}

fn nodes(plan: &RootfsPlan, res: &mut resolve::Resolver) -> ChildResult<()> {
    for (i, d) in plan.devices.iter().enumerate() {
        let path = d.path.to_bytes();
        if plan.bind_devices {
            let fd = res.ensure(path, false).step_at(Step::Device, i)?;
            let mut buf = [0u8; 64];
            let r = sys::mount(
                Some(&d.host),
                sys::proc_fd_path(&mut buf, fd),
                None,
                libc::MS_BIND,
                None,
            );
            sys::close(fd);
            r.step_at(Step::Device, i)?;
            res.mounted_on(path);
        } else {
            res.with_parent(path, |dir, name| {
                match sys::mknodat(dir, name, d.mode, d.dev) {
                    Ok(()) | Err(Errno(libc::EEXIST)) => {}
                    Err(e) => return Err(e),
                }
                sys::fchownat_nofollow(dir, name, d.uid, d.gid)
            })
            .step_at(Step::Device, i)?;
        }
    }
    Ok(())
}

fn links(plan: &RootfsPlan, res: &mut resolve::Resolver) -> ChildResult<()> {
    for (i, (target, link)) in plan.dev_links.iter().enumerate() {
        res.with_parent(link.to_bytes(), |dir, name| {
            if target.to_bytes() == b"pts/ptmx" {
                // Replace whatever /dev/ptmx the image or a mount left there.
                let _ = sys::unlinkat(dir, name, 0);
            }
            match sys::symlinkat(target, dir, name) {
                Ok(()) | Err(Errno(libc::EEXIST)) => Ok(()),
                Err(e) => Err(e),
            }
        })
        .step_at(Step::DevSymlink, i)?;
    }
    Ok(())
}
