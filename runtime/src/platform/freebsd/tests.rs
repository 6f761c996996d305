//! Tests of the FreeBSD executor against the model kernel.
