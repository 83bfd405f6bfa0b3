//! `berth registry …`: the registry server face of the binary.

use std::io::Write;
use std::path::PathBuf;

use anyhow::Context;
use berth_registry::server::gc::{self, GcOptions};
use berth_registry::server::{self, RegistryConfig};
use clap::{Args, Subcommand};

#[derive(Args)]
pub struct RegistryArgs {
    #[command(subcommand)]
    command: RegistryCommand,
}

#[derive(Subcommand)]
enum RegistryCommand {
    /// Serve an OCI distribution registry
    Serve(ServeArgs),
    /// Remove blobs that no manifest references (stop the registry first)
    Gc(GcArgs),
}

#[derive(Args)]
struct ServeArgs {
    /// Address to listen on [default: 127.0.0.1:5000]
    #[arg(long)]
    addr: Option<String>,
    /// Storage root [default: /var/lib/berth-registry]
    #[arg(long)]
    root: Option<PathBuf>,
    /// htpasswd file with bcrypt entries (enables authentication)
    #[arg(long)]
    htpasswd: Option<PathBuf>,
    /// Configuration file (YAML, or JSON if it ends in .json)
    #[arg(long)]
    config: Option<PathBuf>,
    /// TLS certificate chain (PEM)
    #[arg(long, requires = "tls_key")]
    tls_cert: Option<PathBuf>,
    /// TLS private key (PEM)
    #[arg(long, requires = "tls_cert")]
    tls_key: Option<PathBuf>,
}

#[derive(Args)]
struct GcArgs {
    /// Storage root [default: /var/lib/berth-registry]
    #[arg(long)]
    root: Option<PathBuf>,
    /// Configuration file whose root to use
    #[arg(long)]
    config: Option<PathBuf>,
    /// Only report what would be removed
    #[arg(long)]
    dry_run: bool,
    /// Also delete manifests that no tag reaches
    #[arg(long)]
    delete_untagged: bool,
}

fn load_config(path: Option<&PathBuf>) -> anyhow::Result<RegistryConfig> {
    Ok(match path {
        Some(p) => RegistryConfig::from_file(p)?,
        None => RegistryConfig::default(),
    })
}

fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_env("BERTH_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .try_init();
}

pub fn run(args: RegistryArgs) -> anyhow::Result<()> {
    init_logging();
    match args.command {
        RegistryCommand::Serve(a) => serve(a),
        RegistryCommand::Gc(a) => gc(a),
    }
}

fn serve(a: ServeArgs) -> anyhow::Result<()> {
    let mut config = load_config(a.config.as_ref())?;
    if let Some(v) = a.addr {
        config.addr = v;
    }
    if let Some(v) = a.root {
        config.root = v;
    }
    if let Some(v) = a.htpasswd {
        config.htpasswd = Some(v);
    }
    if let (Some(c), Some(k)) = (a.tls_cert, a.tls_key) {
        config.tls_cert = Some(c);
        config.tls_key = Some(k);
    }
    let threads = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(2);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(threads)
        .max_blocking_threads(64)
        .thread_keep_alive(std::time::Duration::from_secs(10))
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    rt.block_on(async move {
        let shutdown = async {
            use tokio::signal::unix::{signal, SignalKind};
            match (
                signal(SignalKind::terminate()),
                signal(SignalKind::interrupt()),
            ) {
                (Ok(mut term), Ok(mut int)) => {
                    tokio::select! {
                        _ = term.recv() => {}
                        _ = int.recv() => {}
                    }
                }
                _ => std::future::pending::<()>().await,
            }
        };
        let secure = config.tls_cert.is_some();
        server::run(config, shutdown, |addr| {
            // Scripts and tests read this line to learn the bound address (e.g. for :0).
            let mut out = std::io::stdout();
            let _ = writeln!(
                out,
                "berth registry listening on {}://{addr}",
                if secure { "https" } else { "http" }
            );
            let _ = out.flush();
        })
        .await
    })?;
    Ok(())
}

fn gc(a: GcArgs) -> anyhow::Result<()> {
    let mut config = load_config(a.config.as_ref())?;
    if let Some(v) = a.root {
        config.root = v;
    }
    let report = gc::collect(
        &config.root,
        GcOptions {
            dry_run: a.dry_run,
            delete_untagged: a.delete_untagged,
        },
    )?;
    let verb = if a.dry_run { "would delete" } else { "deleted" };
    for (repo, d) in &report.manifests_deleted {
        println!("{verb} manifest {repo}@{d}");
    }
    for (d, size) in &report.blobs_deleted {
        println!("{verb} blob {d} ({size} bytes)");
    }
    println!(
        "{} manifests and {} blobs ({} bytes) {verb}; {} blobs kept",
        report.manifests_deleted.len(),
        report.blobs_deleted.len(),
        report.bytes_freed(),
        report.blobs_kept
    );
    Ok(())
}
