//! Lambda wiring only: configuration, clients, token verifier, handler.

use lambda_http::{service_fn, Error, Request};
use mailroom_api::{auth::Verifier, Api, ApiSettings};
use mailroom_aws::{Adapters, Clients, Config};

#[tokio::main]
async fn main() -> Result<(), Error> {
    mailroom_runtime::init_tracing();
    let env = |k: &str| std::env::var(k).ok();
    // A refused variable is named in the init log (StartupError prints its message).
    let config = Config::from_env_at_start()?;
    // The key set inline, from a file, or fetched once from the issuer (MAILROOM_JWKS_URL).
    let verifier = Verifier::load(env)
        .await
        .map_err(mailroom_aws::config::StartupError::new)?;
    let settings =
        ApiSettings::from_lookup(env).map_err(mailroom_aws::config::StartupError::new)?;
    let api = &Api::new(
        Adapters::new(&Clients::from_env().await, config),
        verifier,
        settings,
    );
    lambda_http::run(service_fn(move |req: Request| async move {
        Ok::<_, Error>(api::handle(api, req).await)
    }))
    .await
}
