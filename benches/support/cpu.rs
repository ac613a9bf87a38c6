//! CPU time of the bench process, to print beside wall-clock rates: on a shared
//! machine a rate alone does not say whether the code or the machine changed.

#![allow(dead_code)] // each bench uses part of it

use std::time::Duration;

/// User and system CPU time of this process so far, every thread included.
#[derive(Clone, Copy, Debug)]
pub struct Cpu {
    pub user: Duration,
    pub sys: Duration,
}

impl Cpu {
    /// Now.
    pub fn now() -> Cpu {
        // SAFETY: getrusage only writes the struct it is given.
        let usage = unsafe {
            let mut u = std::mem::zeroed::<libc::rusage>();
            libc::getrusage(libc::RUSAGE_SELF, &mut u);
            u
        };
        let tv = |t: libc::timeval| Duration::new(t.tv_sec as u64, t.tv_usec as u32 * 1000);
        Cpu {
            user: tv(usage.ru_utime),
            sys: tv(usage.ru_stime),
        }
    }

    /// User plus system time.
    pub fn total(self) -> Duration {
        self.user + self.sys
    }

    /// The time spent since `earlier`.
    pub fn since(self, earlier: Cpu) -> Cpu {
        Cpu {
            user: self.user - earlier.user,
            sys: self.sys - earlier.sys,
        }
    }
}
