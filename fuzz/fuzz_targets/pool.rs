#![no_main]

#[path = "../ops/pool.rs"]
mod ops;

/// The interpreter makes resets panic on purpose (a poisoned object) and catches them; keep
/// those quiet, and hand every other panic to libfuzzer-sys's hook, which reports a crash.
fn quiet_expected_panics() {
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
            if !message.contains("expected by the fuzzer") {
                report(info);
            }
        }));
    });
}

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    quiet_expected_panics();
    ops::run(data);
});
