//! A mounted directory tree as a source: the walk ([`walk`]), the
//! read-only open and streamed read ([`read`]), the I/O policy of the
//! device it sits on ([`device`]), and the system calls they make relative
//! to directory descriptors (`sys`). Nothing outside this folder hands an
//! evidence path to the kernel.

pub mod device;
pub mod read;
pub(crate) mod sys;
pub mod walk;
