//! Mail: what a step's email says ([`templates`], [`context`]), how it is built
//! ([`message`]) and how it leaves ([`transport`], over SMTP through [`smtp`]).

pub mod compose;
pub mod context;
pub mod header;
pub mod message;
pub mod sendmail;
pub mod smtp;
pub mod templates;
pub mod transport;

pub use message::Audience;
pub use templates::{Rendered, Templates};
pub use transport::{Mailer, SendError};
