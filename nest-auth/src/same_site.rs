//! The `SameSite` attribute of the cookies nest-auth sets: a setting of the authenticator and
//! of each cookie.

/// The cookie's `SameSite` attribute.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum SameSite {
    /// Sent on same-site requests only.
    Strict,
    /// Also sent on top-level navigations from other sites (default).
    #[default]
    Lax,
    /// Sent on cross-site requests too; needs `Secure`.
    None,
}
