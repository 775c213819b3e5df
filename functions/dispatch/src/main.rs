//! Lambda wiring only: configuration, clients, handler.

use aws_lambda_events::event::sqs::SqsEvent;
use lambda_runtime::{service_fn, Error, LambdaEvent};
use mailroom_aws::{Adapters, Clients, Config};

#[tokio::main]
async fn main() -> Result<(), Error> {
    mailroom_runtime::init_tracing();
    // A refused variable is named in the init log (StartupError prints its message).
    let config = Config::from_env_at_start()?;
    let adapters = Adapters::new(&Clients::from_env().await, config);
    let dispatch = &adapters.dispatch();
    lambda_runtime::run(service_fn(move |event: LambdaEvent<SqsEvent>| async move {
        let (response, _) = dispatch::handle(dispatch, event.payload).await;
        Ok::<_, Error>(response)
    }))
    .await
}
