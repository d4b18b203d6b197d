//! The `ward` command: the agent daemon and its policy tools.
use std::{path::PathBuf, process::ExitCode};

use clap::{Parser, Subcommand};

/// Ward: zone allow-lists enforced in the kernel (XDP ingress, TC egress).
#[derive(Parser)]
#[command(name = "ward", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Validate zone policy files or directories (exit 0 valid, 1 invalid).
    Check {
        /// Policy files or directories of `*.toml` files, merged into one policy.
        #[arg(required = true)]
        paths: Vec<PathBuf>,
    },
    /// Explain the verdict for one flow: prints `allow` or `deny` first, then why.
    Explain {
        /// Policy file or directory.
        #[arg(long)]
        policy: PathBuf,
        /// Source address.
        src: String,
        /// Destination address.
        dst: String,
        /// Service: `tcp/PORT`, `udp/PORT` or `icmp`.
        service: String,
    },
    /// Run the agent: enforce the policy on the configured interfaces until SIGTERM.
    Run {
        /// Agent configuration file.
        #[arg(long, default_value = "/etc/ward/agent.toml")]
        config: PathBuf,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Check { paths } => ward::commands::check(&paths),
        Command::Explain {
            policy,
            src,
            dst,
            service,
        } => ward::commands::explain(&policy, &src, &dst, &service).unwrap_or_else(|e| fail(&e)),
        Command::Run { config } => {
            tracing_subscriber::fmt()
                .with_writer(std::io::stderr)
                .with_env_filter(
                    tracing_subscriber::EnvFilter::try_from_default_env()
                        .unwrap_or_else(|_| "info".into()),
                )
                .init();
            let runtime = match tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            {
                Ok(r) => r,
                Err(e) => return fail(&e.into()),
            };
            match runtime.block_on(ward::daemon::run(&config)) {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => fail(&e),
            }
        }
    }
}

/// Prints an error as one line (its causes joined) and returns failure.
fn fail(e: &anyhow::Error) -> ExitCode {
    eprintln!("ward: error: {e:#}");
    ExitCode::FAILURE
}
