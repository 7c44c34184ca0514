//! The `ecs-prom` command: parses flags, sets up logging and runs the chosen component.

mod cli;
mod env_vars;

use anyhow::Context;
use clap::Parser;
use cli::{Cli, Command, LogFormat, LogLevel};
use std::io::IsTerminal;
use std::process::ExitCode;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;

fn main() -> ExitCode {
    let cli = Cli::parse();
    init_logging(cli.log_level, cli.log_format);
    let result = match cli.command {
        Command::Exporter(flags) => run_exporter(flags),
        Command::Simulate(flags) => run_simulator(flags),
        Command::DemoApp(flags) => run_demo_app(flags),
        Command::Demo(flags) => run_demo(flags),
        Command::Discovery(flags) => run_discovery(*flags),
        Command::Health(flags) => run_health(flags),
        Command::Agent(flags) => run_agent(flags),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error:#}");
            ExitCode::FAILURE
        }
    }
}

fn init_logging(level: LogLevel, format: LogFormat) {
    let level = match level {
        LogLevel::Debug => tracing::Level::DEBUG,
        LogLevel::Info => tracing::Level::INFO,
        LogLevel::Warn => tracing::Level::WARN,
        LogLevel::Error => tracing::Level::ERROR,
    };
    let filter = tracing_subscriber::filter::LevelFilter::from_level(level);
    match format {
        LogFormat::Logfmt => tracing_subscriber::registry()
            .with(filter)
            .with(
                tracing_logfmt::builder()
                    .layer()
                    .with_writer(std::io::stderr),
            )
            .init(),
        LogFormat::Json => tracing_subscriber::registry()
            .with(filter)
            .with(
                tracing_subscriber::fmt::layer()
                    .json()
                    .with_writer(std::io::stderr),
            )
            .init(),
    }
}

fn run_exporter(flags: cli::ExporterFlags) -> anyhow::Result<()> {
    let address = flags.listen_address.clone();
    let serving = flags.web.clone().finish()?;
    let config = flags.finish(|key| std::env::var(key).ok())?;
    // A sidecar that answers a scrape every few seconds needs no worker pool: one thread
    // keeps its memory and CPU footprint small.
    runtime(Threads::One)?.block_on(async {
        let shutdown = shutdown_signal()?;
        let listener = bind(&address).await?;
        tracing::info!(
            address = %listener.local_addr().map(|a| a.to_string()).unwrap_or(address),
            tls = serving.tls(),
            metadata_uri = %config.metadata_url,
            scope = config.scope.as_str(),
            "ecs-prom exporter listening"
        );
        ecs_exporter::run(config, serving.listener(listener), shutdown)
            .await
            .context("serving metrics")
    })?;
    tracing::info!("ecs-prom exporter stopped");
    Ok(())
}

fn run_simulator(flags: cli::SimulateFlags) -> anyhow::Result<()> {
    let faults = ecs_simulator::Faults {
        latency: flags.fault_latency,
        error_rate: flags.fault_error_rate,
        malformed_rate: flags.fault_malformed_rate,
    };
    // The simulated tasks started a minute ago, so their counters have history from the
    // first scrape on.
    let started = ecs_simulator::now() - 60.0;
    let simulation = ecs_simulator::Simulation::new(flags.seed, usize::from(flags.tasks), started);
    let serving = flags.web.clone().finish()?;
    runtime(Threads::One)?.block_on(async {
        let shutdown = shutdown_signal()?;
        let listener = bind(&flags.listen_address).await?;
        let server_url = format!("http://{}", listener.local_addr().context("reading the bound address")?);
        // The base URLs go to standard output, one per line, for people and scripts alike.
        println!("# ecs-prom simulate: {} simulated tasks; their metadata endpoints:", flags.tasks);
        for task in &simulation.tasks {
            println!(
                "ECS_CONTAINER_METADATA_URI_V4={}  # {}",
                ecs_simulator::metadata_uri(&server_url, &task.id),
                task.platform.launch_type()
            );
        }
        tracing::info!(address = %server_url, tasks = flags.tasks, seed = flags.seed, "ecs-prom simulate listening");
        ecs_simulator::run(simulation, faults, serving.listener(listener), shutdown).await.context("serving the simulation")
    })
}

fn run_demo_app(flags: cli::DemoAppFlags) -> anyhow::Result<()> {
    let address = flags.listen_address.clone();
    let serving = flags.web.clone().finish()?;
    let config = flags.finish(|key| std::env::var(key).ok());
    // Under load the application serves many requests at once: use every core.
    runtime(Threads::PerCore)?.block_on(async {
        let shutdown = shutdown_signal()?;
        let listener = bind(&address).await?;
        tracing::info!(
            address = %listener.local_addr().map(|a| a.to_string()).unwrap_or(address),
            load_rps = config.load_requests_per_second,
            traces = config.otlp.as_ref().map(|o| o.traces_url.as_str()).unwrap_or("off"),
            "ecs-prom demo-app listening"
        );
        demo_app::run(config, serving.listener(listener), shutdown)
            .await
            .context("serving the demo app")
    })
}

fn run_demo(flags: cli::DemoFlags) -> anyhow::Result<()> {
    let config = flags.finish(std::io::stdout().is_terminal(), |key| {
        std::env::var(key).ok()
    })?;
    runtime(Threads::PerCore)?.block_on(async {
        let shutdown = shutdown_signal()?;
        demo::run(config, shutdown).await
    })
}

fn run_agent(flags: cli::AgentFlags) -> anyhow::Result<()> {
    let address = flags.listen_address.clone();
    let serving = flags.web.clone().finish()?;
    let run = flags.finish(|key| std::env::var(key).ok())?;
    let options = run.options;
    if let Some(config) = run.generated_config {
        write_generated_config(&options.config_file, &config)?;
    }
    // One thread: scraping and sending wait on the network almost all the time, and a single
    // thread keeps the agent's CPU and memory small, as a sidecar's must be.
    runtime(Threads::One)?.block_on(async {
        let shutdown = shutdown_signal()?;
        let listener = bind(&address).await?;
        tracing::info!(
            address = %listener.local_addr().map(|a| a.to_string()).unwrap_or(address),
            config = %options.config_file.display(),
            storage = %options.storage.path.display(),
            "ecs-prom agent listening"
        );
        agent::run(options, serving.listener(listener), shutdown)
            .await
            .context("running the agent")
    })?;
    tracing::info!("ecs-prom agent stopped");
    Ok(())
}

/// Writes the configuration `--ecs.task` made where the agent reads it (next to its queues,
/// where a user can look at it).
fn write_generated_config(path: &std::path::Path, config: &str) -> anyhow::Result<()> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    std::fs::write(path, config).with_context(|| format!("writing {}", path.display()))
}

/// GETs the URL once, http:// or https://; success is a 2xx answer within the timeout (a
/// redirect is not followed, so it is a failure). The answer's body is read up to 64 KiB and
/// printed only, in part, when the answer is not a success.
fn run_health(flags: cli::HealthFlags) -> anyhow::Result<()> {
    web::parse_url(&flags.url).with_context(|| format!("--url {}", flags.url))?;
    let client = web::Client::new(flags.timeout).with_max_body_bytes(64 * 1024);
    runtime(Threads::One)?.block_on(async {
        let answer = client.get(&flags.url).send().await.context("unhealthy")?;
        if !answer.status.is_success() {
            let said = String::from_utf8_lossy(&answer.body[..answer.body.len().min(200)])
                .trim()
                .to_owned();
            anyhow::bail!(
                "unhealthy: GET {} answered HTTP {}: {said}",
                flags.url,
                answer.status.as_u16()
            );
        }
        Ok(())
    })
}

fn run_discovery(flags: cli::DiscoveryFlags) -> anyhow::Result<()> {
    let address = flags.listen_address.clone();
    let serving = flags.web.clone().finish()?;
    let once = flags.once;
    let region_flag = flags.region.clone();
    let role = flags.aws_role();
    let options = aws_api::ClientOptions {
        attempt_timeout: flags.aws_timeout,
        rate_limits: vec![(aws_api::Service::Ecs, flags.ecs_requests_per_second)],
        ..aws_api::ClientOptions::default()
    };
    let env = |key: &str| std::env::var(key).ok();
    let config = flags.finish(env)?;
    // An unusable credential source (a container credentials URL the SDKs would refuse, a
    // profile missing a setting) stops discovery here, before any AWS call.
    let mut aws = aws_api::AwsConfig::load(env).context("AWS credentials")?;
    if let Some(role) = role {
        aws = aws.with_role(role);
    }
    // Discovery waits on AWS most of the time: one thread is plenty.
    runtime(Threads::One)?.block_on(async {
        let region = match region_flag.or_else(|| aws.region.clone()) {
            Some(region) => region,
            None => aws_api::region_of_this_task(env).await?,
        };
        let client = std::sync::Arc::new(aws_api::AwsClient::new(aws, region.clone(), options));
        if once {
            let (snapshot, ok) = discovery::once(&config, client).await;
            print_summary(&snapshot, &config, &region);
            if !ok {
                anyhow::bail!("the refresh failed (see above)");
            }
            return Ok(());
        }
        let shutdown = shutdown_signal()?;
        let listener = bind(&address).await?;
        tracing::info!(
            address = %listener.local_addr().map(|a| a.to_string()).unwrap_or(address),
            region = %region,
            clusters = ?config.clusters,
            namespaces = ?config.namespaces,
            "ecs-prom discovery listening"
        );
        discovery::run(config, client, serving.listener(listener), shutdown)
            .await
            .context("serving discovery")
    })
}

/// What `discovery --once` prints: per source its target count or its error.
fn print_summary(snapshot: &discovery::Snapshot, config: &discovery::Config, region: &str) {
    println!(
        "ecs-prom discovery: {} targets from {} sources in {region}, refreshed in {:.2}s",
        snapshot.targets.len(),
        snapshot.sources.len(),
        snapshot.last_duration.map_or(0.0, |d| d.as_secs_f64())
    );
    for (key, status) in &snapshot.sources {
        match &status.last_error {
            None => println!("  {key}: {} targets", status.targets.len()),
            Some(error) => println!(
                "  {key}: FAILED, {} targets kept: {error}",
                status.targets.len()
            ),
        }
    }
    if let Some(error) = &snapshot.namespaces_error {
        println!("  namespaces parameter: FAILED: {error}");
    }
    if let Some(prometheus) = &config.prometheus_config {
        match &snapshot.config_error {
            None => println!(
                "  prometheus configuration: {} is current",
                prometheus.file.display()
            ),
            Some(error) => println!("  prometheus configuration: FAILED: {error}"),
        }
    }
    if let Some(file) = &config.output_file {
        match &snapshot.files.error {
            None => println!("  file_sd: {}", file.display()),
            Some(error) => println!("  file_sd: FAILED: {error}"),
        }
    }
}

/// How many threads a component's async runtime uses.
enum Threads {
    /// One: a sidecar or a test server that answers a request now and then.
    One,
    /// One per core: a server under load.
    PerCore,
}

fn runtime(threads: Threads) -> anyhow::Result<tokio::runtime::Runtime> {
    let mut builder = match threads {
        Threads::One => tokio::runtime::Builder::new_current_thread(),
        Threads::PerCore => tokio::runtime::Builder::new_multi_thread(),
    };
    builder
        .enable_all()
        .build()
        .context("starting the async runtime")
}

/// Listens on a `--web.listen-address` (`:PORT`: every interface, IPv6 and IPv4).
async fn bind(flag: &str) -> anyhow::Result<tokio::net::TcpListener> {
    Ok(web::listen(flag).await?)
}

/// Registers for SIGTERM (how ECS stops a container) and SIGINT (Ctrl-C), and returns a
/// future that completes on either. Registration happens here, before the caller announces
/// that it is serving, so a signal that arrives right after start-up is never missed (tokio's
/// `ctrl_c()` would only register when first polled).
fn shutdown_signal() -> anyhow::Result<impl std::future::Future<Output = ()>> {
    #[cfg(unix)]
    let (mut terminate, mut interrupt) = {
        use tokio::signal::unix::{SignalKind, signal};
        (
            signal(SignalKind::terminate()).context("installing the SIGTERM handler")?,
            signal(SignalKind::interrupt()).context("installing the SIGINT handler")?,
        )
    };
    Ok(async move {
        #[cfg(unix)]
        tokio::select! {
            _ = interrupt.recv() => {}
            _ = terminate.recv() => {}
        }
        #[cfg(not(unix))]
        let _ = tokio::signal::ctrl_c().await;
        tracing::info!("shutting down");
    })
}
