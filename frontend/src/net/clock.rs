//! Times as the user reads them: the browser's locale and time zone.

use wasm_bindgen::JsValue;

/// A Unix time in milliseconds as a local date and time, such as
/// "12 Mar 2025, 14:05" (the browser's locale decides the form).
pub fn local_time(ms: u64) -> String {
    let date = js_sys::Date::new(&JsValue::from_f64(ms as f64));
    let options = js_sys::Object::new();
    for (key, value) in [("dateStyle", "medium"), ("timeStyle", "short")] {
        let _ = js_sys::Reflect::set(&options, &key.into(), &value.into());
    }
    // "default": the browser's own locale.
    date.to_locale_string("default", &options).into()
}
