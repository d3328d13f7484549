//! Whether the user is looking at this tab: it is visible
//! (`document.visibilityState`) and has the focus (`document.hasFocus()`);
//! a message counts as read only then. And the events after which that
//! may have changed.

use std::rc::Rc;

use gloo_events::EventListener;

/// The tab is visible and focused.
pub fn attended() -> bool {
    let Some(document) = web_sys::window().and_then(|window| window.document()) else { return false };
    document.visibility_state() == web_sys::VisibilityState::Visible && document.has_focus().unwrap_or(false)
}

/// Calls `changed` whenever the tab may have become attended: shown again,
/// or focused. (Losing either needs nothing: reads are checked when made.)
pub fn on_change(changed: impl Fn() + 'static) -> Vec<EventListener> {
    let Some(window) = web_sys::window() else { return Vec::new() };
    let changed = Rc::new(changed);
    let listen = |target: &web_sys::EventTarget, event: &'static str| {
        let changed = changed.clone();
        EventListener::new(target, event, move |_| changed())
    };
    let mut listeners = vec![listen(&window, "focus")];
    if let Some(document) = window.document() {
        listeners.push(listen(&document, "visibilitychange"));
    }
    listeners
}
