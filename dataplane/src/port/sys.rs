//! Small safe wrappers over the few syscalls the device ports need.

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};

/// `-1` -> the last OS error, else the value.
pub(crate) fn cvt(r: libc::c_int) -> io::Result<libc::c_int> {
    if r < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(r)
    }
}

/// Make `fd` non-blocking.
pub(crate) fn set_nonblocking(fd: RawFd) -> io::Result<()> {
    // SAFETY: fcntl on an fd we own, with integer arguments only.
    let flags = cvt(unsafe { libc::fcntl(fd, libc::F_GETFL) })?;
    // SAFETY: as above.
    cvt(unsafe { libc::fcntl(fd, libc::F_SETFL, flags | libc::O_NONBLOCK) })?;
    Ok(())
}

/// Wait until `fd` is readable or `timeout_ms` passes (the adaptive poll mode's sleep).
pub fn wait_readable(fds: &[RawFd], timeout_ms: i32) -> io::Result<usize> {
    poll_readable(fds, timeout_ms).map(|bits| bits.count_ones() as usize)
}

/// Wait until one of `fds` (at most 64) is readable, or closed or failed,
/// or `timeout_ms` passes: bit i of the result is set when `fds[i]` is.
pub fn poll_readable(fds: &[RawFd], timeout_ms: i32) -> io::Result<u64> {
    let mut pfds: Vec<libc::pollfd> = fds
        .iter()
        .take(64)
        .map(|&fd| libc::pollfd {
            fd,
            events: libc::POLLIN,
            revents: 0,
        })
        .collect();
    // SAFETY: `pfds` is a valid, writable array of `pfds.len()` pollfd structs.
    cvt(unsafe { libc::poll(pfds.as_mut_ptr(), pfds.len() as libc::nfds_t, timeout_ms) })?;
    Ok(pfds
        .iter()
        .enumerate()
        .filter(|(_, p)| p.revents != 0)
        .fold(0, |bits, (i, _)| bits | 1 << i))
}

/// Open a socket.
pub(crate) fn socket(domain: libc::c_int, ty: libc::c_int, proto: libc::c_int) -> io::Result<OwnedFd> {
    // SAFETY: plain syscall with integer arguments.
    let fd = cvt(unsafe { libc::socket(domain, ty | libc::SOCK_CLOEXEC, proto) })?;
    // SAFETY: `fd` is a new descriptor that nothing else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// Index of interface `name` (in this network namespace).
pub(crate) fn ifindex(name: &str) -> io::Result<u32> {
    let c = std::ffi::CString::new(name).map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))?;
    // SAFETY: `c` is a valid NUL-terminated string for the duration of the call.
    let i = unsafe { libc::if_nametoindex(c.as_ptr()) };
    if i == 0 {
        Err(io::Error::new(
            io::ErrorKind::NotFound,
            format!("no interface named {name:?}"),
        ))
    } else {
        Ok(i)
    }
}

/// The raw fd, for poll().
pub(crate) fn raw(fd: &OwnedFd) -> RawFd {
    fd.as_raw_fd()
}
