//! For tests that make user code panic on purpose: a hook that keeps those panics out of the
//! output, and a recycling-channel value whose `Reset` panics before it clears anything.
#![allow(dead_code)] // each binary uses what it needs

/// Installs, once per test binary, a panic hook that prints every panic except those whose
/// message contains `marker`. A failed `assert_eq!`, `assert_ne!` or message-less `assert!`
/// (a message that starts with "assertion") is printed even when it quotes the marker: an
/// assertion that compares a payload with a planned message must not fail silently.
pub fn quiet_panics_containing(marker: &'static str) {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let default = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            let msg = info
                .payload()
                .downcast_ref::<String>()
                .map(String::as_str)
                .or_else(|| info.payload().downcast_ref::<&str>().copied())
                .unwrap_or("");
            if !msg.contains(marker) || msg.starts_with("assertion") {
                default(info);
            }
        }));
    });
}

/// A recycling slot's value whose `reset` panics, before clearing anything, while `failing` is
/// above 0 (one failure per call), with the message "expected: reset failed": the case where a
/// slot keeps a message a reset did not clear.
#[derive(Default)]
pub struct Ids {
    pub ids: Vec<usize>,
    pub failing: u8,
}

impl thrifty::Reset for Ids {
    fn reset(&mut self) {
        if self.failing > 0 {
            self.failing -= 1;
            panic!("expected: reset failed");
        }
        self.ids.clear();
    }
}
