//! The channel's errors: one per operation, each handing back what the caller gave it.
//!
//! A failed send returns its message (for `send_with`, its closure), so nothing is lost. Every
//! error implements `Debug` without needing `T: Debug`, a lowercase `Display`, and
//! `std::error::Error`.

use std::{error, fmt};

/// [`Sender::send`](super::Sender::send) failed: every receiver is gone. Holds the message.
///
/// Match on it to recover the message when the consumers are gone (to log it, or send it
/// elsewhere); `unwrap` it where a vanished consumer is a bug.
///
/// # Examples
/// ```
/// let (tx, rx) = thrifty::channel::bounded(1);
/// drop(rx);
/// assert_eq!(tx.send(7).unwrap_err().into_inner(), 7);
/// ```
///
/// # Allocation and cost
/// None: a plain value that hands the message back; making it allocates nothing.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct SendError<T>(pub T);

impl<T> SendError<T> {
    /// The message that was not sent.
    pub fn into_inner(self) -> T {
        self.0
    }
}

/// [`Sender::try_send`](super::Sender::try_send) failed. Either way the message comes back.
///
/// Match on `Full` to shed or retry later instead of waiting; `Disconnected` means stop
/// producing. Use the blocking [`Sender::send`](super::Sender::send) where waiting is
/// acceptable.
///
/// # Examples
/// ```
/// use thrifty::channel::{bounded, TrySendError};
///
/// let (tx, rx) = bounded(1);
/// tx.try_send(1).unwrap();
/// assert_eq!(tx.try_send(2), Err(TrySendError::Full(2)));
/// drop(rx);
/// assert_eq!(tx.try_send(3), Err(TrySendError::Disconnected(3)));
/// ```
///
/// # Allocation and cost
/// None: a plain value that hands the message back; making it allocates nothing.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum TrySendError<T> {
    /// Every slot holds a message: the receivers are behind. (In a recycling channel, also
    /// while the next slot in line is still inside a receiver's `recv_with` closure.)
    Full(T),
    /// Every receiver is gone.
    Disconnected(T),
}

impl<T> TrySendError<T> {
    /// The message that was not sent.
    pub fn into_inner(self) -> T {
        match self {
            Self::Full(v) | Self::Disconnected(v) => v,
        }
    }
    /// Whether the channel was full.
    pub fn is_full(&self) -> bool {
        matches!(self, Self::Full(_))
    }
    /// Whether every receiver was gone.
    pub fn is_disconnected(&self) -> bool {
        matches!(self, Self::Disconnected(_))
    }
}

/// [`Sender::send_timeout`](super::Sender::send_timeout) failed. Either way the message comes
/// back.
///
/// Use it where a producer may wait, but not for ever (a request with a deadline): `Timeout`
/// hands the message back to shed or retry.
///
/// # Examples
/// ```
/// use std::time::Duration;
/// use thrifty::channel::{bounded, SendTimeoutError};
///
/// let (tx, rx) = bounded(1);
/// tx.send(1).unwrap();
/// let err = tx.send_timeout(2, Duration::from_millis(5)).unwrap_err();
/// assert!(err.is_timeout());
/// assert_eq!(err.into_inner(), 2);
/// drop(rx);
/// let err = tx.send_timeout(3, Duration::from_millis(5));
/// assert_eq!(err, Err(SendTimeoutError::Disconnected(3)));
/// ```
///
/// # Allocation and cost
/// None: a plain value that hands the message back; making it allocates nothing.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum SendTimeoutError<T> {
    /// The channel stayed full until the timeout (in a recycling channel, or the next slot in
    /// line stayed inside a receiver's `recv_with` closure).
    Timeout(T),
    /// Every receiver is gone.
    Disconnected(T),
}

impl<T> SendTimeoutError<T> {
    /// The message that was not sent.
    pub fn into_inner(self) -> T {
        match self {
            Self::Timeout(v) | Self::Disconnected(v) => v,
        }
    }
    /// Whether the timeout passed.
    pub fn is_timeout(&self) -> bool {
        matches!(self, Self::Timeout(_))
    }
    /// Whether every receiver was gone.
    pub fn is_disconnected(&self) -> bool {
        matches!(self, Self::Disconnected(_))
    }
}

/// [`Receiver::recv`](super::Receiver::recv) failed: the channel is empty and every sender is
/// gone.
///
/// Match on it to end a consumer loop cleanly once every sender is gone (or use
/// [`Receiver::iter`](super::Receiver::iter), which ends there).
///
/// # Examples
/// ```
/// use thrifty::channel::{bounded, RecvError};
///
/// let (tx, rx) = bounded(1);
/// tx.send("last").unwrap();
/// drop(tx);
/// assert_eq!(rx.recv(), Ok("last")); // what is queued comes first
/// assert_eq!(rx.recv(), Err(RecvError));
/// ```
///
/// # Allocation and cost
/// None: a unit value; making it allocates nothing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RecvError;

/// [`Receiver::try_recv`](super::Receiver::try_recv) found no message.
///
/// Match on `Empty` to do other work and poll again; `Disconnected` means nothing more will
/// come.
///
/// # Examples
/// ```
/// use thrifty::channel::{bounded, TryRecvError};
///
/// let (tx, rx) = bounded::<u8>(1);
/// assert_eq!(rx.try_recv(), Err(TryRecvError::Empty));
/// drop(tx);
/// assert_eq!(rx.try_recv(), Err(TryRecvError::Disconnected));
/// ```
///
/// # Allocation and cost
/// None: a fieldless value; making it allocates nothing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TryRecvError {
    /// Nothing is queued now. (In a recycling channel, also while the next message in line is
    /// still inside its sender's `send_with` closure.)
    Empty,
    /// Nothing is queued and every sender is gone: nothing ever will be.
    Disconnected,
}

impl TryRecvError {
    /// Whether the channel was only empty for now.
    pub fn is_empty(&self) -> bool {
        matches!(self, Self::Empty)
    }
    /// Whether every sender was gone.
    pub fn is_disconnected(&self) -> bool {
        matches!(self, Self::Disconnected)
    }
}

/// [`Receiver::recv_timeout`](super::Receiver::recv_timeout) found no message.
///
/// Use it where a consumer waits, but wants to wake up now and then (to check a shutdown flag,
/// flush a batch): `Timeout` says nothing came in time.
///
/// # Examples
/// ```
/// use std::time::Duration;
/// use thrifty::channel::{bounded, RecvTimeoutError};
///
/// let (tx, rx) = bounded::<u8>(1);
/// let wait = Duration::from_millis(5);
/// assert_eq!(rx.recv_timeout(wait), Err(RecvTimeoutError::Timeout));
/// drop(tx);
/// assert_eq!(rx.recv_timeout(wait), Err(RecvTimeoutError::Disconnected));
/// ```
///
/// # Allocation and cost
/// None: a fieldless value; making it allocates nothing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RecvTimeoutError {
    /// Nothing arrived before the timeout (in a recycling channel, or the next message in line
    /// stayed inside its sender's `send_with` closure).
    Timeout,
    /// Nothing is queued and every sender is gone.
    Disconnected,
}

impl RecvTimeoutError {
    /// Whether the timeout passed.
    pub fn is_timeout(&self) -> bool {
        matches!(self, Self::Timeout)
    }
    /// Whether every sender was gone.
    pub fn is_disconnected(&self) -> bool {
        matches!(self, Self::Disconnected)
    }
}

impl<T> fmt::Debug for SendError<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SendError(..)")
    }
}

impl<T> fmt::Debug for TrySendError<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Full(_) => "Full(..)",
            Self::Disconnected(_) => "Disconnected(..)",
        })
    }
}

impl<T> fmt::Debug for SendTimeoutError<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Timeout(_) => "Timeout(..)",
            Self::Disconnected(_) => "Disconnected(..)",
        })
    }
}

impl<T> fmt::Display for SendError<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("sending on a channel whose receivers are all gone")
    }
}

impl<T> fmt::Display for TrySendError<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Full(_) => "sending on a full channel",
            Self::Disconnected(_) => "sending on a channel whose receivers are all gone",
        })
    }
}

impl<T> fmt::Display for SendTimeoutError<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Timeout(_) => "timed out sending on a full channel",
            Self::Disconnected(_) => "sending on a channel whose receivers are all gone",
        })
    }
}

impl fmt::Display for RecvError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("receiving on an empty channel whose senders are all gone")
    }
}

impl fmt::Display for TryRecvError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Empty => "receiving on an empty channel",
            Self::Disconnected => "receiving on an empty channel whose senders are all gone",
        })
    }
}

impl fmt::Display for RecvTimeoutError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Timeout => "timed out receiving on an empty channel",
            Self::Disconnected => "receiving on an empty channel whose senders are all gone",
        })
    }
}

/// A send that found every receiver gone, as the `try_` and timed forms report it: lets `?`
/// carry a [`send`](super::Sender::send) error out of a function that returns theirs.
impl<T> From<SendError<T>> for TrySendError<T> {
    fn from(e: SendError<T>) -> Self {
        Self::Disconnected(e.0)
    }
}

/// As `From<SendError<T>> for TrySendError<T>`.
impl<T> From<SendError<T>> for SendTimeoutError<T> {
    fn from(e: SendError<T>) -> Self {
        Self::Disconnected(e.0)
    }
}

/// A receive that found the channel empty and every sender gone, as the `try_` form reports it.
impl From<RecvError> for TryRecvError {
    fn from(_: RecvError) -> Self {
        Self::Disconnected
    }
}

/// As `From<RecvError> for TryRecvError`.
impl From<RecvError> for RecvTimeoutError {
    fn from(_: RecvError) -> Self {
        Self::Disconnected
    }
}

impl<T> error::Error for SendError<T> {}
impl<T> error::Error for TrySendError<T> {}
impl<T> error::Error for SendTimeoutError<T> {}
impl error::Error for RecvError {}
impl error::Error for TryRecvError {}
impl error::Error for RecvTimeoutError {}

#[cfg(test)]
mod tests {
    use super::*;
    use std::error::Error;

    /// A message type without `Debug`, so the errors' `Debug` cannot lean on it.
    #[derive(PartialEq, Eq)]
    struct Opaque(u32);

    /// Each error's `Debug` names its variant without needing `T: Debug`, its `Display` names
    /// the cause in lowercase, it is a `std::error::Error` with no source, its predicates
    /// answer for its variant alone, and `into_inner` hands back the very message that failed.
    /// Fails if a message is lost or swapped, a predicate answers for the wrong variant, or a
    /// text names the wrong cause.
    #[test]
    fn each_error_names_its_cause_and_hands_back_the_message() {
        fn check(e: &dyn Error, debug: &str, display: &str) {
            assert_eq!(format!("{e:?}"), debug);
            assert_eq!(e.to_string(), display);
            assert!(e.source().is_none(), "{display}");
        }
        let gone = "sending on a channel whose receivers are all gone";
        let drained = "receiving on an empty channel whose senders are all gone";

        let e = SendError(Opaque(1));
        check(&e, "SendError(..)", gone);
        assert!(e.into_inner() == Opaque(1));

        let full = TrySendError::Full(Opaque(2));
        check(&full, "Full(..)", "sending on a full channel");
        assert!(full.is_full() && !full.is_disconnected());
        assert!(full.into_inner() == Opaque(2));
        let closed = TrySendError::Disconnected(Opaque(3));
        check(&closed, "Disconnected(..)", gone);
        assert!(closed.is_disconnected() && !closed.is_full());
        assert!(closed.into_inner() == Opaque(3));

        let late = SendTimeoutError::Timeout(Opaque(4));
        check(&late, "Timeout(..)", "timed out sending on a full channel");
        assert!(late.is_timeout() && !late.is_disconnected());
        assert!(late.into_inner() == Opaque(4));
        let closed = SendTimeoutError::Disconnected(Opaque(5));
        check(&closed, "Disconnected(..)", gone);
        assert!(closed.is_disconnected() && !closed.is_timeout());
        assert!(closed.into_inner() == Opaque(5));

        check(&RecvError, "RecvError", drained);

        let empty = TryRecvError::Empty;
        check(&empty, "Empty", "receiving on an empty channel");
        assert!(empty.is_empty() && !empty.is_disconnected());
        let closed = TryRecvError::Disconnected;
        check(&closed, "Disconnected", drained);
        assert!(closed.is_disconnected() && !closed.is_empty());

        let late = RecvTimeoutError::Timeout;
        check(&late, "Timeout", "timed out receiving on an empty channel");
        assert!(late.is_timeout() && !late.is_disconnected());
        let closed = RecvTimeoutError::Disconnected;
        check(&closed, "Disconnected", drained);
        assert!(closed.is_disconnected() && !closed.is_timeout());
    }
}
