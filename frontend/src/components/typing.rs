use yew::prelude::*;

use crate::session::TypingLine;

#[derive(Properties, PartialEq)]
pub struct TypingProps {
    pub line: Option<TypingLine>,
}

/// Who else is typing, between the timeline and the composer. It keeps its
/// line's height when empty, so the layout does not jump. Screen readers
/// hear a new line once, politely; the line going away is not announced
/// (`aria-relevant`: additions and text, not removals). Names are text, each
/// isolated from the words around it, as in the timeline.
#[function_component]
pub fn Typing(props: &TypingProps) -> Html {
    let name = |name: &String| html! { <span class="typer" dir="auto">{ name.clone() }</span> };
    let line = match &props.line {
        None => html! {},
        Some(TypingLine::One(one)) => html! { <>{ name(one) }{ " is typing…" }</> },
        Some(TypingLine::Two(first, second)) => {
            html! { <>{ name(first) }{ " and " }{ name(second) }{ " are typing…" }</> }
        }
        Some(many @ TypingLine::Many(_)) => html! { { many.to_string() } },
    };
    html! {
        <p class="typing" data-testid="typing" aria-live="polite" aria-atomic="true" aria-relevant="additions text">
            { line }
        </p>
    }
}
