//! TUN devices: open `/dev/net/tun` as a layer-3 device without packet info
//! (`IFF_TUN | IFF_NO_PI`), nonblocking, and read or write one IP packet per call.
//!
//! The device lives as long as its descriptor: closing the fd deletes the device (and its
//! addresses and routes), even after it was moved into another network namespace.

use std::io;
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd};

use crate::error::NetError;

/// Opens `/dev/net/tun` and attaches a new TUN device named `name` (at most 15 bytes).
pub fn open_tun(name: &str) -> Result<OwnedFd, NetError> {
    if name.len() >= libc::IFNAMSIZ {
        return Err(NetError::Spec(format!(
            "interface name `{name}` is too long"
        )));
    }
    // SAFETY: a NUL-terminated literal path and plain flags; the result is checked.
    let fd = unsafe {
        libc::open(
            c"/dev/net/tun".as_ptr(),
            libc::O_RDWR | libc::O_NONBLOCK | libc::O_CLOEXEC,
        )
    };
    if fd < 0 {
        let err = io::Error::last_os_error();
        return Err(match err.raw_os_error() {
            Some(libc::ENOENT) | Some(libc::ENODEV) | Some(libc::ENXIO) => NetError::TunMissing,
            Some(libc::EPERM) | Some(libc::EACCES) => NetError::NotRoot,
            _ => NetError::io("open /dev/net/tun", err),
        });
    }
    // SAFETY: `fd` was just returned by open and is owned by nobody else.
    let fd = unsafe { OwnedFd::from_raw_fd(fd) };
    // SAFETY: ifreq is plain old data, valid when zeroed.
    let mut req: libc::ifreq = unsafe { std::mem::zeroed() };
    for (dst, src) in req.ifr_name.iter_mut().zip(name.bytes()) {
        *dst = src as libc::c_char;
    }
    req.ifr_ifru.ifru_flags = (libc::IFF_TUN | libc::IFF_NO_PI) as libc::c_short;
    // SAFETY: TUNSETIFF reads and writes one ifreq, which outlives the call.
    let rc = unsafe { libc::ioctl(fd.as_raw_fd(), libc::TUNSETIFF as _, &mut req) };
    if rc < 0 {
        let err = io::Error::last_os_error();
        if err.raw_os_error() == Some(libc::EPERM) {
            return Err(NetError::NotRoot);
        }
        return Err(NetError::io(format!("TUNSETIFF {name}"), err));
    }
    Ok(fd)
}

/// Reads one packet; `Ok(None)` when none is waiting.
pub fn read_packet(fd: BorrowedFd<'_>, buf: &mut [u8]) -> io::Result<Option<usize>> {
    // SAFETY: `buf` is valid for `buf.len()` bytes of writes for the call's duration.
    let n = unsafe { libc::read(fd.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len()) };
    if n >= 0 {
        return Ok(Some(n as usize));
    }
    let err = io::Error::last_os_error();
    match err.kind() {
        io::ErrorKind::WouldBlock | io::ErrorKind::Interrupted => Ok(None),
        _ => Err(err),
    }
}

/// Writes one packet.
pub fn write_packet(fd: BorrowedFd<'_>, packet: &[u8]) -> io::Result<()> {
    // SAFETY: `packet` is valid for `packet.len()` bytes of reads for the call's duration.
    let n = unsafe { libc::write(fd.as_raw_fd(), packet.as_ptr().cast(), packet.len()) };
    if n < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}
