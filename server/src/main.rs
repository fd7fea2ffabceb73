//! `keel`: the one binary. `keel` / `keel serve` runs the router (DESIGN §1), which
//! starts `keel shard …` processes (a hidden subcommand of this same binary);
//! `keel bench` is the vector benchmark client.

#[global_allocator]
static GLOBAL: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

mod affinity;
mod bench;
mod clients;
mod cmd;
mod conn;
mod handoff;
mod link;
mod meta;
mod router;


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
    /// Internal: one shard process, started by the router.
    #[command(hide = true)]
    Shard(ShardArgs),
}

/// Server flags; they override the TOML file given by `--config`.
#[derive(Args, Debug, Clone, Default)]
pub struct ServeArgs {
    /// TOML config file (keys: data_dir, resp_addr, shards, durability, segment_bytes,
    /// inline_value_max, router_threads, max_bulk_len, shard_handoff).
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
}

#[derive(Args, Debug)]
struct ShardArgs {
    #[arg(long)]
    id: u32,
    #[arg(long)]
    shards: u32,
    #[arg(long)]
    dir: PathBuf,
    #[arg(long)]
    socket: PathBuf,
    #[arg(long)]
    core: Option<usize>,
    #[arg(long)]
    durability: String,
    #[arg(long)]
    segment_bytes: u64,
    #[arg(long)]
    inline_value_max: usize,
    #[arg(long)]
    max_bulk_len: usize,
    #[arg(long)]
    max_request_len: usize,
    #[arg(long)]
    max_frame_len: usize,
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
        Some(Command::Shard(args)) => {
            init_logging();
            exit_on_panic(format!("shard {}", args.id), "the router restarts it");
            run_shard(args)
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

fn run_shard(a: ShardArgs) -> ExitCode {
    let durability = match a.durability.parse::<keel_config::Durability>() {
        Ok(d) => router::storage_durability(d),
        Err(e) => {
            eprintln!("keel shard: {e}");
            return ExitCode::from(2);
        }
    };
    let cfg = keel_shard::ShardConfig {
        id: a.id,
        n_shards: a.shards,
        dir: a.dir,
        socket: a.socket,
        core: a.core,
        store: keel_storage::StoreOptions {
            durability,
            segment_bytes: a.segment_bytes,
            inline_value_max: a.inline_value_max,
            ..Default::default()
        },
        max_bulk_len: a.max_bulk_len,
        max_request_len: a.max_request_len,
        max_frame_len: a.max_frame_len,
    };
    match keel_shard::run(cfg) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!("shard {} stopped: {e:#}", a.id);
            ExitCode::from(1)
        }
    }
}
