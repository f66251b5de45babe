//! The session cookie.

use actix_web::cookie::{Cookie, SameSite};

/// How the session cookie is named and flagged. Over https it is
/// `__Host-schoolsignal`, Secure; over plain http (development on localhost only:
/// production refuses a non-https public URL) the browser would drop a Secure
/// cookie, so it is `schoolsignal` without Secure. Both are HttpOnly, SameSite=Strict,
/// Path=/ and without Domain.
#[derive(Debug, Clone, Copy)]
pub struct CookiePolicy {
    pub secure: bool,
}

impl CookiePolicy {
    pub fn for_public_url(public_url: &str) -> Self {
        CookiePolicy {
            secure: public_url.starts_with("https://"),
        }
    }

    pub fn name(self) -> &'static str {
        if self.secure {
            "__Host-schoolsignal"
        } else {
            "schoolsignal"
        }
    }

    pub fn cookie(self, value: String) -> Cookie<'static> {
        Cookie::build(self.name(), value)
            .path("/")
            .http_only(true)
            .secure(self.secure)
            .same_site(SameSite::Strict)
            .finish()
    }

    pub fn removal(self) -> Cookie<'static> {
        let mut cookie = self.cookie(String::new());
        cookie.make_removal();
        cookie
    }
}
