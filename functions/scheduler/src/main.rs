//! Lambda wiring only: configuration, clients, handler.

use aws_lambda_events::event::eventbridge::EventBridgeEvent;
use lambda_runtime::{service_fn, Error, LambdaEvent};
use mailroom_aws::{Adapters, Clients, Config};
use mailroom_core::schedule::Selection;

#[tokio::main]
async fn main() -> Result<(), Error> {
    mailroom_runtime::init_tracing();
    // A refused variable is named in the init log (StartupError prints its message).
    let config = Config::from_env_at_start()?;
    let adapters = Adapters::new(&Clients::from_env().await, config);
    let ports = &scheduler::Scheduler::aws(&adapters);
    lambda_runtime::run(service_fn(
        move |event: LambdaEvent<EventBridgeEvent>| async move {
            scheduler::handle(ports, event.payload, &Selection::Due)
                .await
                .map_err(Error::from)
        },
    ))
    .await
}
