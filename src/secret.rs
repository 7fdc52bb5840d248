//! What the secret newtypes ([`crate::Password`], [`crate::keys::LegacyKey`]) share: zeroized on
//! drop and never shown by `Debug`.
//!
//! Written as a `macro_rules!` rather than with `zeroize`'s derive feature, which would add a
//! proc-macro crate to the core library's dependencies for six lines per type.

/// Implements `Zeroize`, `Drop` (zeroizing), `ZeroizeOnDrop` and a redacting `Debug`
/// (`Name(<redacted>)`) for a tuple struct whose one field is the secret.
macro_rules! secret_newtype {
    ($name:ident) => {
        impl zeroize::Zeroize for $name {
            fn zeroize(&mut self) {
                zeroize::Zeroize::zeroize(&mut self.0);
            }
        }

        impl Drop for $name {
            fn drop(&mut self) {
                zeroize::Zeroize::zeroize(&mut self.0);
            }
        }

        impl zeroize::ZeroizeOnDrop for $name {}

        impl std::fmt::Debug for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(concat!(stringify!($name), "(<redacted>)"))
            }
        }
    };
}

pub(crate) use secret_newtype;
