//! The panic hook of the fuzz targets whose interpreters make panics on purpose and catch them.

/// Keeps quiet the panics whose message contains `expected`, and hands every other panic to the
/// hook installed before (libfuzzer-sys's, which reports a crash). Installs once per process.
pub fn quiet_expected_panics(expected: &'static str) {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let report = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            let payload = info.payload();
            let message = payload
                .downcast_ref::<String>()
                .map(String::as_str)
                .or_else(|| payload.downcast_ref::<&str>().copied())
                .unwrap_or("");
            if !message.contains(expected) {
                report(info);
            }
        }));
    });
}
