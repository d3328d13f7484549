//! The browser's one HTTP event stream, as plain Rust (docs/PROTOCOL.md,
//! "One stream for several members"): which members it carries, the query
//! that asks for each from where it is, and whose each event is.
//!
//! A member that goes on across a new stream (the set of members changed,
//! or another tab took the stream over) is asked for from its last message,
//! and its link gets no second `welcome` or `synced`: only what came after
//! that message. Plain Rust, with native tests.

use serde::{Deserialize, Serialize};

use super::sse::resume_query;
use super::sse::SseItem;

/// What a link asks of the stream (it crosses tabs).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Want {
    /// The link's own key, unique in the browser.
    pub key: String,
    /// The member's query without its position: `group=…&name=…[&with=…]`.
    pub query: String,
    /// Where the link started: `&since=…&epoch=…`, or nothing.
    pub start: String,
    /// The id of the last message it got (`{epoch}:{seq}`), if any.
    pub last_id: Option<String>,
    /// It has had its `synced`: a new stream's `welcome` and `synced` are
    /// not for it.
    pub synced: bool,
    /// It long-polls (a proxy holds streams back): the browser's stream
    /// is polled while any member does.
    #[serde(default)]
    pub poll: bool,
}

impl Want {
    /// The member's query from where it is now.
    fn query_from_here(&self) -> String {
        let position = self.last_id.as_deref().and_then(resume_query).unwrap_or_else(|| self.start.clone());
        format!("{}{position}", self.query)
    }

    /// Notes what `item` tells of the link's position.
    pub fn heard(&mut self, item: &SseItem) {
        if let SseItem::Data { data, id, .. } = item {
            if id.is_some() {
                self.last_id.clone_from(id);
            }
            if kind(data) == Some(Kind::Synced) {
                self.synced = true;
            }
        }
    }
}

/// The stream's members, in the order the next stream will name them.
#[derive(Debug, Default)]
pub struct SharedMembers {
    members: Vec<Member>,
    /// The set changed since the current stream was asked for.
    changed: bool,
    /// The keys the last query named, in its order.
    named: Vec<String>,
    /// Whose each `member: {index}` of the current stream (or poll session)
    /// is: the members it was opened with. Members leave and join again
    /// (re-appended) at once, but the stream numbers its events so until a
    /// new one replaces it; by the list's own places, a left member's
    /// events would go to the member after it.
    on_stream: Vec<String>,
}

#[derive(Debug)]
struct Member {
    want: Want,
    /// On the current stream: its `welcome` and `synced` are dropped until
    /// that `synced` has passed.
    skipping: bool,
    /// The server ended it (its `event: close`): left out of the next.
    gone: bool,
}

impl SharedMembers {
    /// Adds `want`, or replaces the member with its key.
    pub fn want(&mut self, want: Want) {
        self.members.retain(|member| member.want.key != want.key);
        self.members.push(Member { want, skipping: false, gone: false });
        self.changed = true;
    }

    /// Takes the member `key` out.
    pub fn remove(&mut self, key: &str) {
        let before = self.members.len();
        self.members.retain(|member| member.want.key != key);
        self.changed |= self.members.len() != before;
    }

    /// Whether a new stream is to be asked for.
    pub fn changed(&self) -> bool {
        self.changed
    }

    /// The keys of the members the current stream carries.
    pub fn keys(&self) -> Vec<String> {
        self.members.iter().filter(|member| !member.gone).map(|member| member.want.key.clone()).collect()
    }

    /// A new stream: its query (`m=…&m=…`, each member from where it is),
    /// or `None` when no member is left. Members that had their `synced`
    /// go on without a second one.
    pub fn restart(&mut self) -> Option<String> {
        self.changed = false;
        self.members.retain(|member| !member.gone);
        let query = self.query();
        self.fresh_session();
        query
    }

    /// The query that asks for every member from where it is now (a long
    /// poll names it each time: a node that does not hold the session
    /// opens one from there). Notes whom it names: a stream or session
    /// opened from it numbers its members so.
    pub fn query(&mut self) -> Option<String> {
        let named = self.members.iter().filter(|member| !member.gone);
        self.named = named.clone().map(|member| member.want.key.clone()).collect();
        let query: Vec<String> = named.map(|member| format!("m={}", encode(&member.want.query_from_here()))).collect();
        (!query.is_empty()).then(|| query.join("&"))
    }

    /// The server opened its members afresh (a new stream, a new poll
    /// session) from the last query: those that had their `synced` get no
    /// second one, and its events are numbered as that query named them.
    pub fn fresh_session(&mut self) {
        for member in &mut self.members {
            member.skipping = member.want.synced;
        }
        self.on_stream.clone_from(&self.named);
    }

    /// Whether the stream is polled: some member long-polls.
    pub fn poll(&self) -> bool {
        self.members.iter().any(|member| member.want.poll)
    }

    /// Whose `item` of the current stream is, and whether its link gets it;
    /// a comment is the stream's (`None`), and so is what comes for a member
    /// that left since the stream opened.
    pub fn route(&mut self, item: SseItem) -> Option<(String, SseItem)> {
        let index = match &item {
            SseItem::Data { member, .. } | SseItem::Close { member, .. } => (*member)?,
            SseItem::Comment => return None,
        };
        let key = self.on_stream.get(index)?;
        let member = self.members.iter_mut().find(|member| member.want.key == *key).filter(|member| !member.gone)?;
        member.want.heard(&item);
        match &item {
            SseItem::Close { .. } => member.gone = true,
            SseItem::Data { data, .. } if member.skipping => match kind(data) {
                Some(Kind::Welcome) => return None,
                Some(Kind::Synced) => {
                    member.skipping = false;
                    return None;
                }
                _ => {}
            },
            _ => {}
        }
        Some((member.want.key.clone(), item))
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Welcome,
    Synced,
}

/// Whether `data` (a JSON server event) is a `welcome` or a `synced`.
fn kind(data: &str) -> Option<Kind> {
    #[derive(Deserialize)]
    struct Head<'a> {
        #[serde(rename = "type", borrow)]
        kind: std::borrow::Cow<'a, str>,
    }
    match serde_json::from_str::<Head<'_>>(data).ok()?.kind.as_ref() {
        "welcome" => Some(Kind::Welcome),
        "synced" => Some(Kind::Synced),
        _ => None,
    }
}

/// `text` as one value of a query string.
fn encode(text: &str) -> String {
    text.bytes()
        .map(|byte| match byte {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => char::from(byte).to_string(),
            _ => format!("%{byte:02X}"),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn want(key: &str, group: &str) -> Want {
        Want {
            key: key.into(),
            query: format!("group={group}&name=Ann"),
            start: String::new(),
            last_id: None,
            synced: false,
            poll: false,
        }
    }

    fn data(member: usize, text: &str, id: Option<&str>) -> SseItem {
        SseItem::Data { data: text.into(), id: id.map(Into::into), member: Some(member) }
    }

    const WELCOME: &str = r#"{"type":"welcome"}"#;
    const SYNCED: &str = r#"{"type":"synced","seq":4}"#;
    const MESSAGE: &str = r#"{"type":"message","seq":5}"#;

    #[test]
    fn each_member_from_where_it_is() {
        let mut members = SharedMembers::default();
        assert_eq!(members.restart(), None, "nobody: no stream");
        members.want(want("a", "lobby"));
        members.want(Want { start: "&since=3&epoch=e1".into(), ..want("b", "dm-x") });
        assert!(members.changed());
        assert_eq!(
            members.restart().as_deref(),
            Some("m=group%3Dlobby%26name%3DAnn&m=group%3Ddm-x%26name%3DAnn%26since%3D3%26epoch%3De1")
        );
        assert!(!members.changed());
        assert_eq!(members.keys(), ["a", "b"]);
    }

    #[test]
    fn events_go_to_their_member_and_a_member_goes_on_without_a_second_welcome() {
        let mut members = SharedMembers::default();
        members.want(want("a", "lobby"));
        members.restart();
        for text in [WELCOME, SYNCED] {
            assert_eq!(members.route(data(0, text, None)), Some(("a".into(), data(0, text, None))));
        }
        assert_eq!(members.route(data(0, MESSAGE, Some("e1:5"))).map(|(key, _)| key).as_deref(), Some("a"));
        assert_eq!(members.route(SseItem::Comment), None, "the stream's own");
        assert_eq!(members.route(data(3, MESSAGE, None)), None, "no such member");

        // Another tab's room joins: a new stream, "a" from its last message.
        members.want(want("b", "other"));
        assert_eq!(
            members.restart().as_deref(),
            Some("m=group%3Dlobby%26name%3DAnn%26since%3D5%26epoch%3De1&m=group%3Dother%26name%3DAnn")
        );
        assert_eq!(members.route(data(0, WELCOME, None)), None, "not a second welcome for a");
        assert_eq!(members.route(data(1, WELCOME, None)).map(|(key, _)| key).as_deref(), Some("b"));
        assert_eq!(members.route(data(0, MESSAGE, Some("e1:6"))).map(|(key, _)| key).as_deref(), Some("a"));
        assert_eq!(members.route(data(0, SYNCED, None)), None, "nor a second synced");
        assert!(members.route(data(0, MESSAGE, Some("e1:7"))).is_some());
    }

    #[test]
    fn a_closed_member_is_left_out_of_the_next_stream() {
        let mut members = SharedMembers::default();
        members.want(want("a", "lobby"));
        members.want(want("b", "other"));
        members.restart();
        let close = SseItem::Close { code: 1013, reason: String::new(), member: Some(0) };
        assert_eq!(members.route(close.clone()), Some(("a".into(), close.clone())));
        assert_eq!(members.route(data(0, MESSAGE, None)), None, "nothing after its close");
        assert_eq!(members.keys(), ["b"]);
        assert_eq!(members.restart().as_deref(), Some("m=group%3Dother%26name%3DAnn"));
        members.remove("b");
        assert!(members.changed());
        assert_eq!(members.restart(), None);
    }

    #[test]
    fn polls_name_every_member_from_where_it_is_and_a_new_session_skips_the_second_welcome() {
        let mut members = SharedMembers::default();
        members.want(want("a", "lobby"));
        assert!(!members.poll());
        members.want(Want { poll: true, ..want("b", "other") });
        assert!(members.poll(), "one member polls: the stream is polled");
        members.restart();
        for text in [WELCOME, SYNCED] {
            assert!(members.route(data(0, text, None)).is_some(), "the first session's welcome and synced pass");
        }
        members.route(data(0, MESSAGE, Some("e1:5")));
        assert_eq!(
            members.query().as_deref(),
            Some("m=group%3Dlobby%26name%3DAnn%26since%3D5%26epoch%3De1&m=group%3Dother%26name%3DAnn")
        );
        members.fresh_session();
        assert_eq!(members.route(data(0, WELCOME, None)), None, "a new session's welcome, not for a");
        assert!(members.route(data(1, WELCOME, None)).is_some(), "b never had its synced");
    }

    /// Whose `item` is, if its link gets it.
    fn key_of(members: &mut SharedMembers, item: SseItem) -> Option<String> {
        members.route(item).map(|(key, _)| key)
    }

    fn three_on_a_stream(poll: bool) -> SharedMembers {
        let mut members = SharedMembers::default();
        for (key, group) in [("a", "lobby"), ("b", "other"), ("c", "third")] {
            members.want(Want { poll, ..want(key, group) });
        }
        members.restart();
        members
    }

    #[test]
    fn a_member_that_leaves_takes_no_other_members_events_until_the_new_stream() {
        let mut members = three_on_a_stream(false);
        members.remove("b");
        // The running stream still numbers its members a, b, c.
        assert_eq!(key_of(&mut members, data(1, MESSAGE, Some("e1:8"))), None, "b's: b left");
        assert_eq!(key_of(&mut members, data(2, MESSAGE, Some("e1:9"))).as_deref(), Some("c"));
        assert_eq!(
            members.restart().as_deref(),
            Some("m=group%3Dlobby%26name%3DAnn&m=group%3Dthird%26name%3DAnn%26since%3D9%26epoch%3De1"),
            "a did not move, c from its own message"
        );
        assert_eq!(key_of(&mut members, data(1, MESSAGE, Some("e1:10"))).as_deref(), Some("c"), "the new stream's");
    }

    #[test]
    fn a_member_that_joins_again_keeps_its_place_on_the_running_stream() {
        let mut members = three_on_a_stream(false);
        // A tab that took the stream over hears b again (after `hello`).
        members.want(want("b", "other"));
        assert_eq!(key_of(&mut members, data(1, MESSAGE, Some("e1:8"))).as_deref(), Some("b"));
        assert_eq!(key_of(&mut members, data(2, MESSAGE, Some("e1:9"))).as_deref(), Some("c"));
        assert_eq!(
            members.restart().as_deref(),
            Some(
                "m=group%3Dlobby%26name%3DAnn&m=group%3Dthird%26name%3DAnn%26since%3D9%26epoch%3De1\
                 &m=group%3Dother%26name%3DAnn%26since%3D8%26epoch%3De1"
            ),
        );
        assert_eq!(key_of(&mut members, data(1, MESSAGE, None)).as_deref(), Some("c"), "the new stream's order");
    }

    #[test]
    fn a_poll_session_numbers_its_members_as_it_was_opened() {
        let mut members = three_on_a_stream(true);
        members.remove("b");
        let named = members.query();
        assert_eq!(named.as_deref(), Some("m=group%3Dlobby%26name%3DAnn&m=group%3Dthird%26name%3DAnn"));
        // The node held the session: its members are still a, b, c.
        assert_eq!(key_of(&mut members, data(1, MESSAGE, Some("e1:8"))), None, "b's: b left");
        assert_eq!(key_of(&mut members, data(2, MESSAGE, Some("e1:9"))).as_deref(), Some("c"));
        // Another node opened one afresh from the poll's query: a, c.
        members.query();
        members.fresh_session();
        assert_eq!(key_of(&mut members, data(1, MESSAGE, Some("e1:10"))).as_deref(), Some("c"));
        assert_eq!(key_of(&mut members, data(2, MESSAGE, None)), None);
    }

    #[test]
    fn a_want_notes_its_position_for_the_tab_that_takes_the_stream_over() {
        let mut want = want("a", "lobby");
        want.heard(&data(0, WELCOME, None));
        assert!(!want.synced);
        want.heard(&data(0, MESSAGE, Some("e2:9")));
        want.heard(&data(0, SYNCED, Some("e2:9")));
        assert!(want.synced);
        assert_eq!(want.query_from_here(), "group=lobby&name=Ann&since=9&epoch=e2");
    }
}
