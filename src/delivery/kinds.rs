//! The typed words of the email queue: which mail, to whom, in which state, and why
//! an attempt failed. Each is stored through its one conversion.

crate::text_enum! {
    /// The kind of mail. Sign-in links are sent at once, never queued.
    pub enum Kind {
        /// A confidential message is waiting; open it by `open_by`.
        Notice = "notice",
        /// The message has not been opened yet; please open it now.
        Reminder = "reminder",
        /// Please disregard the earlier message; no action needed.
        Withdrawal = "withdrawal",
        /// A sign-in link for the portal, valid for `valid_minutes`.
        SignIn = "signin",
        /// An authenticator app was set up as the account's second factor: call the
        /// operator if it was not you. Sent at once, like a sign-in link; no link.
        FactorEnrolled = "factor_enrolled",
        /// The operator reset the account's second factor. Sent at once; no link.
        FactorReset = "factor_reset",
    }
}

impl Kind {
    /// Whether the mail carries a link to the notice (a "please disregard" has none).
    pub fn carries_link(self) -> bool {
        !matches!(
            self,
            Kind::Withdrawal | Kind::FactorEnrolled | Kind::FactorReset
        )
    }

    /// Whether the mail may hold a URL at all. One that says an account's second
    /// factor changed holds none, so that it cannot be imitated with a link in it:
    /// its reader is told to call the operator instead.
    pub fn carries_url(self) -> bool {
        !matches!(self, Kind::FactorEnrolled | Kind::FactorReset)
    }
}

crate::text_enum! {
    /// Who at the school an email goes to.
    pub enum Recipient {
        Coordinator = "coordinator",
        Deputy = "deputy",
    }
}

crate::text_enum! {
    /// Where an email is. Every email ends in one of the final states.
    pub enum State {
        Pending = "pending",
        Sent = "sent",
        PermanentFailure = "permanent_failure",
        Expired = "expired",
        /// The notice was withdrawn before its email left.
        Cancelled = "cancelled",
    }
}

impl State {
    pub const FINAL: [State; 4] = [
        State::Sent,
        State::PermanentFailure,
        State::Expired,
        State::Cancelled,
    ];
}

/// Why an attempt failed: a reply code or a category, never text from the server
/// (which may echo an address). Stored as its `Display` text in `last_error`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Failure {
    /// An SMTP reply: its code (`550`), or `4xx`/`5xx` when the reply had none.
    Reply(String),
    Timeout,
    /// Connection refused or broken, a TLS failure, a reply we could not read.
    Connection,
    /// Writing an `.eml` file failed.
    File(std::io::ErrorKind),
    /// The template could not be rendered: `missing`, `render`, `subject`, `other`.
    Template(&'static str),
    /// The message could not be built (an address that does not parse).
    Message(&'static str),
}

impl Failure {
    /// Whether the mail server answered and refused: then nobody received the link.
    /// After a timeout or a broken connection the email may have arrived.
    pub fn refused_by_server(&self) -> bool {
        matches!(self, Failure::Reply(_))
    }

    /// The reply code, for a failure that is a reply.
    pub fn reply_code(&self) -> Option<&str> {
        match self {
            Failure::Reply(code) => Some(code),
            _ => None,
        }
    }
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Failure::Reply(code) => write!(f, "smtp {code}"),
            Failure::Timeout => f.write_str("timeout"),
            Failure::Connection => f.write_str("connection"),
            Failure::File(kind) => write!(f, "file: {kind}"),
            Failure::Template(kind) => write!(f, "template: {kind}"),
            Failure::Message(why) => write!(f, "message: {why}"),
        }
    }
}
