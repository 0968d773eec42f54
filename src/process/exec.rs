//! The program the container runs: argv, envp and the PATH candidates,
//! prepared as C arrays before the fork; the child only picks and execs.

use std::ffi::{CStr, CString};

use crate::error::Result;
use crate::init::fail::{ChildResult, Step};
use crate::namespaces::cstring;
use crate::sys::{self, Errno};

const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// A NULL-terminated array of C strings that owns its strings.
#[derive(Debug, Default)]
pub struct CArray {
    strings: Vec<CString>,
    ptrs: Vec<*const libc::c_char>,
}

impl CArray {
    pub fn new(items: &[String]) -> Result<CArray> {
        let strings = items
            .iter()
            .map(|s| cstring(s))
            .collect::<Result<Vec<_>>>()?;
        let mut ptrs: Vec<*const libc::c_char> = strings.iter().map(|s| s.as_ptr()).collect();
        ptrs.push(std::ptr::null());
        Ok(CArray { strings, ptrs })
    }

    pub fn ptrs(&self) -> &[*const libc::c_char] {
        &self.ptrs
    }

    pub fn first(&self) -> Option<&CStr> {
        self.strings.first().map(|s| s.as_c_str())
    }
}

/// The executable to run: candidates in PATH order (or the one path given).
#[derive(Debug, Default)]
pub struct ExecPlan {
    pub argv: CArray,
    pub envp: CArray,
    pub candidates: Vec<CString>,
}

impl ExecPlan {
    pub fn new(args: &[String], env: &[String]) -> Result<ExecPlan> {
        let arg0 = args.first().map(String::as_str).unwrap_or("");
        let candidates = if arg0.contains('/') {
            vec![cstring(arg0)?]
        } else {
            let path = env
                .iter()
                .rev()
                .find_map(|e| e.strip_prefix("PATH="))
                .unwrap_or(DEFAULT_PATH);
            path.split(':')
                .map(|d| if d.is_empty() { "." } else { d })
                .map(|d| cstring(&format!("{}/{arg0}", d.trim_end_matches('/'))))
                .collect::<Result<Vec<_>>>()?
        };
        Ok(ExecPlan {
            argv: CArray::new(args)?,
            envp: CArray::new(env)?,
            candidates,
        })
    }

    /// Child side: the first candidate that is an executable file.
    pub fn find(&self) -> ChildResult<usize> {
        self.candidates
            .iter()
            .position(|c| sys::is_executable(c))
            .ok_or(crate::init::fail::Fail {
                step: Step::FindExecutable,
                idx: 0,
                errno: Errno(libc::ENOENT),
            })
    }

    /// Child side: execve the chosen candidate; returns only on failure.
    pub fn exec(&self, which: usize) -> Errno {
        match self.candidates.get(which) {
            Some(path) => sys::execve(path, self.argv.ptrs(), self.envp.ptrs()),
            None => Errno(libc::ENOENT),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn path_lookup_candidates() {
        let p = ExecPlan::new(&["sh".into()], &["PATH=/bin:/usr/bin/".into()]).unwrap();
        let c: Vec<_> = p.candidates.iter().map(|c| c.to_str().unwrap()).collect();
        assert_eq!(c, ["/bin/sh", "/usr/bin/sh"]);
        let p = ExecPlan::new(&["/x/y".into(), "a".into()], &[]).unwrap();
        assert_eq!(p.candidates.len(), 1);
        assert_eq!(p.argv.ptrs().len(), 3);
        assert!(p.argv.ptrs()[2].is_null());
    }
}
