//! The `ward` command: the agent daemon and its policy tools.
use std::{io::IsTerminal, process::ExitCode};

use clap::Parser;
use ward::control::FlowFilter;

mod cli;

use cli::{CheckFormat, Cli, Command, FleetCommand, PolicyCommand};

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::GenerateAssets { out } => {
            ward::commands::generate_assets(<Cli as clap::CommandFactory>::command(), &out)
                .unwrap_or_else(|e| fail(&e))
        }
        Command::Check {
            paths,
            trusted_keys,
            config,
            strict,
            format,
        } => ward::commands::check(
            &paths,
            &ward::commands::CheckOptions {
                strict,
                json: format == CheckFormat::Json,
                config,
                trusted_keys,
            },
        ),
        Command::Explain {
            policy,
            config,
            trusted_keys,
            live,
            socket,
            from,
            to,
            service,
        } => {
            let args = ward::commands::ExplainArgs {
                policy: policy.as_deref(),
                config: config.as_deref(),
                trusted_keys: &trusted_keys,
                live: live.then_some(socket.path.as_path()),
                from: &from,
                to: &to,
                service: &service,
            };
            let (out, err) = (std::io::stdout(), std::io::stderr());
            ward::commands::explain(&args, &mut out.lock(), &mut err.lock())
        }
        Command::Fleet {
            command: FleetCommand::Status { prometheus, job },
        } => {
            let (out, err) = (std::io::stdout(), std::io::stderr());
            ward::commands::fleet_status(&prometheus, &job, &mut out.lock(), &mut err.lock())
                .unwrap_or_else(|e| fail(&e.into()))
        }
        Command::Policy { command } => policy(command),
        Command::Uninstall { config } => {
            ward::commands::uninstall(&config, &mut std::io::stdout().lock())
                .unwrap_or_else(|e| fail(&e))
        }
        Command::Run {
            config,
            detach_on_exit,
            reset_state,
            force_policy,
        } => {
            // Before any thread starts (the runtime's workers included).
            ward::daemon::configure_allocator();
            tracing_subscriber::fmt()
                .with_writer(std::io::stderr)
                .with_env_filter(
                    tracing_subscriber::EnvFilter::try_from_default_env()
                        .unwrap_or_else(|_| "info".into()),
                )
                .init();
            // Two workers besides the daemon's own loop (on this thread): a flood of
            // events keeps the event reader busy, never the control socket, reloads,
            // the commit-confirm deadline or the tamper watch.
            let runtime = match tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
            {
                Ok(r) => r,
                Err(e) => return fail(&e.into()),
            };
            let options = ward::daemon::RunOptions {
                detach_on_exit,
                reset_state,
                force_policy,
            };
            match runtime.block_on(ward::daemon::run(&config, options)) {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => fail(&e),
            }
        }
        Command::Status { socket, json } => {
            ward::commands::status(&socket.path, json, &mut std::io::stdout().lock())
                .unwrap_or_else(|e| fail(&e))
        }
        Command::Flows {
            socket,
            verdict,
            zone,
            addr,
            port,
            since,
            no_follow,
            json,
        } => {
            let options = ward::commands::FlowsOptions {
                filter: FlowFilter {
                    verdict,
                    zone,
                    addr,
                    port,
                },
                json,
                since,
                follow: !no_follow,
            };
            let (out, err) = (std::io::stdout(), std::io::stderr());
            ward::commands::flows(&socket.path, &options, &mut out.lock(), &mut err.lock())
                .unwrap_or_else(|e| fail(&e))
        }
        Command::Top {
            socket,
            interval,
            once,
        } => {
            let stdout = std::io::stdout();
            let clear = stdout.is_terminal();
            ward::commands::top(&socket.path, interval, once, clear, &mut stdout.lock())
                .unwrap_or_else(|e| fail(&e))
        }
        Command::Reload { socket, force } => {
            ward::commands::reload(&socket.path, None, force, &mut std::io::stdout().lock())
                .unwrap_or_else(|e| fail(&e))
        }
        Command::Apply {
            socket,
            confirm_within,
            force,
        } => ward::commands::reload(
            &socket.path,
            Some(confirm_within),
            force,
            &mut std::io::stdout().lock(),
        )
        .unwrap_or_else(|e| fail(&e)),
        Command::Confirm { socket } => {
            ward::commands::confirm(&socket.path, &mut std::io::stdout().lock())
                .unwrap_or_else(|e| fail(&e))
        }
        Command::Quarantine {
            socket,
            ip,
            ttl,
            reason,
            list,
        } => {
            let out = &mut std::io::stdout().lock();
            let done = match (ip, list) {
                (Some(ip), _) => ward::commands::quarantine(
                    &socket.path,
                    &ip,
                    ttl,
                    reason.as_deref().unwrap_or(""),
                    out,
                ),
                (None, _) => ward::commands::list_quarantines(&socket.path, out),
            };
            done.unwrap_or_else(|e| fail(&e))
        }
        Command::Breakglass {
            socket,
            from,
            to,
            service,
            duration,
            reason,
            list: _,
            end,
        } => {
            let out = &mut std::io::stdout().lock();
            let done = match (from, to, service, duration, reason, end) {
                (Some(from), Some(to), Some(service), Some(duration), Some(reason), _) => {
                    let args = ward::commands::BreakglassArgs {
                        from: &from,
                        to: &to,
                        service: &service,
                        duration,
                        reason: &reason,
                    };
                    ward::commands::breakglass(&socket.path, &args, out)
                }
                (.., Some(id)) => ward::commands::end_breakglass(&socket.path, id, out),
                _ => ward::commands::list_breakglass(&socket.path, out),
            };
            done.unwrap_or_else(|e| fail(&e))
        }
        Command::Release { socket, ip } => {
            ward::commands::release(&socket.path, &ip, &mut std::io::stdout().lock())
                .unwrap_or_else(|e| fail(&e))
        }
    }
}

/// Runs a `ward policy …` subcommand.
fn policy(command: PolicyCommand) -> ExitCode {
    let out = &mut std::io::stdout().lock();
    match command {
        // Exit 1 means "differences": other failures exit 2, like invalid input.
        PolicyCommand::Diff {
            old,
            new,
            trusted_keys,
            json,
        } => {
            ward::commands::policy_diff(&old, &new, json, &trusted_keys, out).unwrap_or_else(|e| {
                fail(&e);
                ExitCode::from(2)
            })
        }
        PolicyCommand::Services { json } => {
            ward::commands::policy_services(json, out).unwrap_or_else(|e| fail(&e))
        }
        PolicyCommand::Keygen { out: prefix } => {
            ward::commands::keygen(&prefix, out).unwrap_or_else(|e| fail(&e))
        }
        PolicyCommand::Sign {
            key,
            tests,
            version,
            strict,
            dir,
            output,
        } => {
            let options = ward::commands::SignOptions {
                tests: tests.as_deref(),
                version,
                strict,
            };
            let err = &mut std::io::stderr().lock();
            ward::commands::sign(&key, options, &dir, &output, out, err)
                .unwrap_or_else(|e| fail(&e))
        }
        PolicyCommand::Test { policy, tests } => {
            ward::commands::policy_test(&policy, &tests, out, &mut std::io::stderr().lock())
        }
        PolicyCommand::Verify {
            trusted_keys,
            bundle,
        } => ward::commands::verify(&trusted_keys, &bundle, out).unwrap_or_else(|e| fail(&e)),
    }
}

/// Prints an error as one line (its causes joined) and returns failure.
fn fail(e: &anyhow::Error) -> ExitCode {
    eprintln!("ward: error: {e:#}");
    ExitCode::FAILURE
}
