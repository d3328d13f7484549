//! The HTTP transport's requests: with the link's token, a `GET` of the
//! event stream or a `POST` of commands, and their bodies read.

use wasm_bindgen::{JsCast, JsValue};
use wasm_bindgen_futures::JsFuture;
use web_sys::{AbortSignal, Headers, ReadableStreamDefaultReader, RequestInit, Response};

/// A request with the link's token: a `GET` of the events, or a `POST` of
/// `body`.
pub async fn fetch(url: &str, bearer: &str, body: Option<&str>, signal: Option<&AbortSignal>) -> Option<Response> {
    let headers = Headers::new().ok()?;
    headers.set("Authorization", bearer).ok()?;
    let init = RequestInit::new();
    match body {
        Some(body) => {
            init.set_method("POST");
            headers.set("Content-Type", "application/json").ok()?;
            headers.set("X-Roomcast", "1").ok()?;
            init.set_body(&JsValue::from_str(body));
        }
        None => {
            init.set_method("GET");
            headers.set("Accept", "text/event-stream").ok()?;
        }
    }
    init.set_headers(&headers);
    init.set_signal(signal);
    let promise = web_sys::window()?.fetch_with_str_and_init(url, &init);
    let response: Response = JsFuture::from(promise).await.ok()?.dyn_into().ok()?;
    (response.status() == 200).then_some(response)
}

/// The next chunk of a streaming body; `None` at its end (or on an error).
pub async fn read(reader: &ReadableStreamDefaultReader) -> Option<Vec<u8>> {
    let result: web_sys::ReadableStreamReadResult = JsFuture::from(reader.read()).await.ok()?.unchecked_into();
    if result.get_done().unwrap_or(true) {
        return None;
    }
    Some(js_sys::Uint8Array::new(&result.get_value()).to_vec())
}

/// A whole body as text.
pub async fn text(response: &Response) -> Option<String> {
    JsFuture::from(response.text().ok()?).await.ok()?.as_string()
}
