//! The crate path through a re-export, and guards/layers written above `#[controller]`.

mod reexport {
    pub use nest_core as core;
}

use nest_core::prelude::*;

struct Open;

impl CanActivate for Open {
    fn can_activate<'a>(
        &'a self,
        _: &'a nest_core::extract::RequestCtx,
    ) -> futures_util::future::BoxFuture<'a, bool> {
        Box::pin(async { true })
    }
}

struct Reexported;

#[use_guards(Open)]
#[nest_core::prelude::controller("/r", crate = "crate::reexport::core")]
impl Reexported {
    #[nest_core::prelude::get("/")]
    #[sse]
    async fn events(&self) -> SseBody {
        get_sse_stream(SseOptions::new()).1
    }
}

fn main() {
    assert!(NestApp::new().controller(Reexported).into_service().is_ok());
}
