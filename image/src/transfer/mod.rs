//! Moving images between the store and files: import (OCI layout, `docker save` archive,
//! plain root-filesystem tarball) and export (OCI layout or archive).

pub mod export;
pub mod import;
