//! From layers to a container's root file system: the hostile-input unpacker, the storage
//! drivers that keep unpacked chains (directory copies, ZFS clones), and the fd-anchored
//! tree removal both use.

pub mod remove;
pub mod storage;
pub mod unpack;
