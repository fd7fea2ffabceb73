//! `keel`: the one binary. `keel` / `keel serve` runs the router (DESIGN §1), which
//! starts `keel shard` processes (a hidden subcommand of this same binary that reads its
//! `keel_shard::ShardConfig` as TOML from stdin); `keel bench` is the vector benchmark
//! client.

#![deny(unsafe_code)]

mod alloc;
mod bench;
mod clients;
mod cmd;
mod conn;
mod handoff;
mod link;
mod router;
mod streak;


use clap::{Args, Parser, Subcommand};
use std::path::PathBuf;
use std::process::ExitCode;

/// keel — a Redis-compatible key-value and vector store for machines where something
/// else owns most of the memory.
#[derive(Parser, Debug)]
#[command(name = "keel", version, about, args_conflicts_with_subcommands = true)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    #[command(flatten)]
    serve: ServeArgs,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Run the server in the foreground (the default).
    Serve(ServeArgs),
    /// Load an .fvecs data set into a running keel and measure search QPS, latency and recall.
    Bench(bench::BenchArgs),
    /// Internal: one shard process, started by the router; reads its configuration
    /// (TOML, `keel_shard::ShardConfig`) from stdin.
    #[command(hide = true)]
    Shard,
}

/// Server flags; they override the TOML file given by `--config`.
#[derive(Args, Debug, Clone, Default)]
pub struct ServeArgs {
    /// TOML config file (keys: data_dir, resp_addr, shards, durability, segment_bytes,
    /// inline_value_max, cache_bytes, inflight_bytes, router_threads, max_bulk_len, shard_handoff,
    /// client_query_buffer_limit, max_frame_len, enable_debug_command, shard_timeout,
    /// databases).
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
    /// Data directory [default: ./data].
    #[arg(long, value_name = "DIR")]
    data_dir: Option<PathBuf>,
    /// RESP listen address [default: 127.0.0.1:6379]; port 0 picks a free port.
    #[arg(long, value_name = "HOST:PORT")]
    resp_addr: Option<String>,
    /// Shard processes [default: online CPUs]; fixed for a data dir.
    #[arg(long, value_name = "N")]
    shards: Option<u32>,
    /// When writes are acknowledged: relaxed | kernel | power [default: kernel].
    #[arg(long, value_name = "TIER")]
    durability: Option<String>,
    /// Router executor threads [default: online CPUs].
    #[arg(long, value_name = "N", hide = true)]
    router_threads: Option<usize>,
    /// Hand single-shard connections to their shard process: true | false [default: true].
    #[arg(long, value_name = "BOOL", hide = true)]
    shard_handoff: Option<bool>,
    /// Value cache budget per shard, bytes, 1 MiB ..= 1 TiB [default: 33554432 (32 MiB)].
    #[arg(long, value_name = "BYTES")]
    cache_bytes: Option<u64>,
    /// Budget per shard of value bytes read and not yet sent, bytes, 64 KiB ..= 1 TiB
    /// [default: 8388608 (8 MiB)].
    #[arg(long, value_name = "BYTES")]
    inflight_bytes: Option<u64>,
}

fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_env("KEEL_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_target(false)
        .init();
}

/// Exit status after a panic (sysexits' `EX_SOFTWARE`).
const PANIC_EXIT: i32 = 70;

/// Makes any panic, on any thread, end the process: logged with the thread's name and
/// what happens next, then `exit(70)`. A half-dead server (a router executor thread
/// gone, its clients hanging; a shard task gone, its requests never answered) is worse
/// than a restart: the router's supervisor restarts a shard that exits, and systemd
/// (`Restart=on-failure`) the router; a router's shards stop when it is gone.
fn exit_on_panic(role: String, then: &'static str) {
    std::panic::set_hook(Box::new(move |info| {
        let thread = std::thread::current();
        let msg = info
            .payload()
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| info.payload().downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "(no message)".into());
        let at = info.location().map(|l| l.to_string()).unwrap_or_default();
        tracing::error!(
            "{role}: thread {} panicked at {at}: {msg}; exiting with status {PANIC_EXIT} ({then})",
            thread.name().unwrap_or("unnamed")
        );
        std::process::exit(PANIC_EXIT);
    }));
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Some(Command::Bench(args)) => match bench::run(args) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("keel bench: {e:#}");
                ExitCode::from(1)
            }
        },
        Some(Command::Shard) => {
            init_logging();
            run_shard()
        }
        Some(Command::Serve(args)) => serve(args),
        None => serve(cli.serve),
    }
}

fn serve(args: ServeArgs) -> ExitCode {
    init_logging();
    exit_on_panic("router".into(), "its shards stop; a service manager restarts keel");
    router::main(args)
}

/// `keel shard`: reads the configuration from stdin and runs the shard. A configuration
/// that cannot be read is one `keel shard: …` line on stderr and exit code 2, before
/// anything is touched.
fn run_shard() -> ExitCode {
    let cfg = match std::io::read_to_string(std::io::stdin())
        .map_err(|e| format!("read stdin: {e}"))
        .and_then(|text| keel_shard::ShardConfig::from_toml(&text))
    {
        Ok(c) => c,
        Err(e) => {
            eprintln!("keel shard: invalid configuration on stdin: {e}");
            return ExitCode::from(2);
        }
    };
    let id = cfg.id;
    exit_on_panic(format!("shard {id}"), "the router restarts it");
    keel_shard::set_release_freed(alloc::release_freed);
    alloc::set_dirty_decay_ms(alloc::SHARD_DIRTY_DECAY_MS);
    match keel_shard::run(cfg) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!("shard {id} stopped: {e:#}");
            ExitCode::from(1)
        }
    }
}
