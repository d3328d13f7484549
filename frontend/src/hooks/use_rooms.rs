//! `use_rooms`: this identity's room list, for as long as the calling
//! component (the app, above its routes) is mounted; the tab's title
//! carries the total unread.

use std::cell::RefCell;
use std::rc::Rc;

use roomcast_shared::GroupName;
use yew::prelude::*;

use crate::net::rooms_stream::RoomsStream;
use crate::session::rooms::title;
use crate::session::RoomsShown;

/// What the room list view gets.
#[derive(Clone, PartialEq)]
pub struct RoomsHandle {
    pub shown: Rc<RoomsShown>,
    /// Takes a room off the list, on every device.
    pub forget: Callback<GroupName>,
}

#[hook]
pub fn use_rooms() -> RoomsHandle {
    let shown = use_state(Rc::<RoomsShown>::default);
    let stream: Rc<RefCell<Option<RoomsStream>>> = use_mut_ref(|| None);
    {
        let (shown, stream) = (shown.clone(), stream.clone());
        use_effect_with((), move |()| {
            let setter = shown.setter();
            *stream.borrow_mut() = Some(RoomsStream::start(Callback::from(move |now| setter.set(now))));
            move || drop(stream.borrow_mut().take())
        });
    }
    use_effect_with(shown.total_unread, |total| {
        if let Some(document) = web_sys::window().and_then(|window| window.document()) {
            document.set_title(&title(*total));
        }
    });
    // Made once: the stream it reaches lives as long as the hook.
    let forget = use_callback((), move |group: GroupName, ()| {
        if let Some(stream) = stream.borrow().as_ref() {
            stream.forget(group);
        }
    });
    RoomsHandle { shown: (*shown).clone(), forget }
}
