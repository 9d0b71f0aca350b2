//! `rebootguard-lab`: test-only tools for rebootguard's lab. For now one
//! subcommand, `apiserver`, runs kubesim for manual use with kubectl.

use std::path::PathBuf;

use anyhow::Context as _;
use clap::{Parser, Subcommand};

/// Test-only lab for rebootguard.
#[derive(Debug, Parser)]
#[command(name = "rebootguard-lab", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run kubesim, the in-memory Kubernetes API server, on 127.0.0.1.
    ///
    /// Point kubectl at it with the kubeconfig it writes. Faults and request
    /// counts are under /kubesim/ (see docs/kubesim.md).
    Apiserver(ApiserverArgs),
}

#[derive(Debug, clap::Args)]
struct ApiserverArgs {
    /// Port on 127.0.0.1 (0 picks a free one).
    #[arg(long, default_value_t = 6443)]
    port: u16,
    /// Kubernetes minor version reported by /version (kubectl picks its
    /// client by it).
    #[arg(long, default_value_t = 33, value_parser = clap::value_parser!(u32).range(27..=33))]
    minor: u32,
    /// Write a kubeconfig for this server here.
    #[arg(long)]
    kubeconfig: Option<PathBuf>,
    /// Keep gracefully deleted pods Terminating (as on a dead node) instead
    /// of removing them when their grace period ends.
    #[arg(long)]
    hold_terminating: bool,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_writer(std::io::stderr)
        .init();
    let cli = Cli::parse();
    match cli.command {
        Command::Apiserver(args) => apiserver(args).await,
    }
}

async fn apiserver(args: ApiserverArgs) -> anyhow::Result<()> {
    let options = kubesim::Options {
        port: args.port,
        version_minor: args.minor,
        pod_termination: if args.hold_terminating {
            kubesim::PodTermination::Hold
        } else {
            kubesim::PodTermination::Kubelet
        },
        ..kubesim::Options::default()
    };
    let sim = kubesim::KubeSim::with_options(options)
        .await
        .with_context(|| format!("failed to start kubesim on port {}", args.port))?;
    let kubeconfig = match args.kubeconfig {
        Some(path) => {
            std::fs::write(&path, sim.kubeconfig_yaml())
                .with_context(|| format!("failed to write the kubeconfig to {}", path.display()))?;
            path
        }
        None => sim.kubeconfig_path().to_owned(),
    };
    println!("kubesim serving {}", sim.url());
    println!("export KUBECONFIG={}", kubeconfig.display());
    tokio::signal::ctrl_c()
        .await
        .context("failed to wait for Ctrl-C")?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn apiserver_flags() {
        let cli = Cli::try_parse_from([
            "rebootguard-lab",
            "apiserver",
            "--port",
            "0",
            "--minor",
            "31",
        ])
        .unwrap();
        let Command::Apiserver(a) = cli.command;
        assert_eq!((a.port, a.minor, a.hold_terminating), (0, 31, false));
        assert!(Cli::try_parse_from(["rebootguard-lab", "apiserver", "--minor", "34"]).is_err());
    }

    #[test]
    fn clap_definition_is_consistent() {
        use clap::CommandFactory;
        Cli::command().debug_assert();
    }
}
