//! A typed stream takes its own events only: another enum's event, or an untyped `SseEvent`,
//! does not compile.

use std::sync::Arc;

use nest_core::prelude::*;

#[derive(serde::Serialize, schemars::JsonSchema)]
struct Token {
    text: String,
}

#[derive(SseEvents)]
enum Answer {
    Token(Token),
    Done,
}

#[derive(SseEvents)]
enum Presence {
    Joined(String),
}

struct Chat;

impl Controller for Chat {
    fn routes(r: &mut Routes<Self>) {
        r.sse("/answer", |_: Arc<Self>| async {
            let (writer, body) = get_typed_sse_stream::<Answer>(SseOptions::new());
            writer.write(Answer::Token(Token { text: "hi".into() })).unwrap();
            writer.write(Presence::Joined("ada".into())).unwrap();
            writer.write(SseEvent::data("untyped")).unwrap();
            writer.write(Answer::Done).unwrap();
            body
        });
    }
}

fn main() {}
