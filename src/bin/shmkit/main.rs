//! `shmkit`: the command-line tool of the shmkit crate.
//!
//! - `shmkit demo`: worker processes share counters and values in a named segment; the totals are
//!   checked and the throughput is shown next to a mutex.
//! - `shmkit ls`, `shmkit stat NAME`, `shmkit watch NAME`: look at the segments in `/dev/shm`.
//! - `shmkit rm NAME...`, `shmkit gc`: remove segments nobody uses (`lifecycle.rs`).
//! - `shmkit export NAME...` and `shmkit serve --listen ADDR NAME...`: their metrics for
//!   Prometheus (OpenMetrics or the Prometheus text format), once or over HTTP.
//!
//! Errors print one line (`shmkit: <error>`) and exit with 1; usage errors exit with 2.

#[cfg(not(feature = "loom"))]
mod demo;
#[cfg(not(feature = "loom"))]
mod export;
#[cfg(not(feature = "loom"))]
mod fmt;
#[cfg(not(feature = "loom"))]
mod json;
#[cfg(not(feature = "loom"))]
mod lifecycle;
#[cfg(not(feature = "loom"))]
mod serve;
#[cfg(not(feature = "loom"))]
mod signal;
#[cfg(not(feature = "loom"))]
mod stat;
#[cfg(not(feature = "loom"))]
mod tools;
#[cfg(not(feature = "loom"))]
mod watch;

#[cfg(not(feature = "loom"))]
use clap::{Parser, Subcommand};
#[cfg(not(feature = "loom"))]
use std::path::PathBuf;

/// Share state between processes through shared memory: see it work, and inspect segments.
#[cfg(not(feature = "loom"))]
#[derive(Parser, Debug)]
#[command(name = "shmkit", version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[cfg(not(feature = "loom"))]
#[derive(Subcommand, Debug)]
enum Command {
    /// Spawn worker processes that share counters and values in a segment, check the totals
    /// and compare the throughput with a mutex. Start here: `shmkit demo`.
    Demo(demo::DemoArgs),
    /// List the shmkit segments in /dev/shm, with their users (live processes that map them)
    /// and whether they are stale (no live user).
    Ls {
        /// Also show files that are not shmkit segments and leftover temporary files of
        /// creators that died.
        #[arg(long)]
        all: bool,
        /// One JSON object per line (JSON Lines) instead of the table.
        #[arg(long)]
        json: bool,
    },
    /// Show a segment's header and every object in it with its current value.
    Stat {
        /// Name of the segment in /dev/shm.
        #[arg(required_unless_present = "file")]
        name: Option<String>,
        /// Open a file-backed segment at this path instead of a named one.
        #[arg(long, value_name = "PATH", conflicts_with = "name")]
        file: Option<PathBuf>,
        /// One JSON object instead of the table.
        #[arg(long)]
        json: bool,
    },
    /// Show the objects refreshed in place, with rates per second for counters (Ctrl-C stops).
    Watch {
        /// Name of the segment in /dev/shm.
        #[arg(required_unless_present = "file")]
        name: Option<String>,
        /// Open a file-backed segment at this path instead of a named one.
        #[arg(long, value_name = "PATH", conflicts_with = "name")]
        file: Option<PathBuf>,
        /// Time between refreshes, in milliseconds.
        #[arg(long, default_value_t = 500, value_parser = clap::value_parser!(u64).range(10..))]
        interval: u64,
        /// Stop after this many refreshes (default: until Ctrl-C or the segment is removed).
        #[arg(long)]
        count: Option<u64>,
        /// One JSON object per sample (JSON Lines) instead of the table.
        #[arg(long)]
        json: bool,
    },
    /// Print the metrics of segments once (OpenMetrics, Prometheus text or JSON).
    Export {
        /// Names of segments in /dev/shm.
        #[arg(required_unless_present = "all")]
        names: Vec<String>,
        /// Every shmkit segment in /dev/shm.
        #[arg(long)]
        all: bool,
        /// Output format.
        #[arg(long, value_enum, default_value_t = export::ExportFormat::Openmetrics)]
        format: export::ExportFormat,
    },
    /// Serve the metrics of segments at http://ADDR/metrics, read again at every scrape.
    Serve {
        /// Address to listen on (port 0: any free port; the address is printed).
        #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:9464")]
        listen: String,
        /// Names of segments in /dev/shm.
        #[arg(required_unless_present = "all")]
        names: Vec<String>,
        /// Every shmkit segment in /dev/shm (listed again at every scrape).
        #[arg(long)]
        all: bool,
        /// Always this format (default: OpenMetrics when the scraper's Accept header asks for
        /// it, else the Prometheus text format).
        #[arg(long, value_enum)]
        format: Option<export::ExportFormat>,
    },
    /// Remove shmkit segments (and leftover `.NAME.shmkit-init.*` temporary files) from /dev/shm.
    /// A segment that a live process uses is refused unless --force.
    Rm {
        /// Names in /dev/shm.
        #[arg(required = true)]
        names: Vec<String>,
        /// Remove segments in use too (their users keep their mappings, but whoever opens the
        /// name next gets a new segment), and files that are not shmkit segments.
        #[arg(long)]
        force: bool,
    },
    /// Remove every stale segment (no live user) and leftover temporary files of dead
    /// creators from /dev/shm.
    Gc {
        /// Only list what would be removed.
        #[arg(long)]
        dry_run: bool,
        /// Only consider names that start with this.
        #[arg(long, value_name = "PREFIX", default_value = "")]
        prefix: String,
    },
    /// Internal: one worker process of `shmkit demo`.
    #[command(name = "__worker", hide = true)]
    Worker(demo::WorkerArgs),
}

#[cfg(not(feature = "loom"))]
fn main() {
    let cli = Cli::parse();
    if !matches!(cli.command, Command::Demo(_) | Command::Worker(_)) {
        // `shmkit ls | head`: end quietly when the reader goes away, like other Unix tools.
        // (The demo keeps Rust's default, EPIPE errors, so that it still cleans up.)
        // SAFETY: restoring the default disposition of SIGPIPE before any thread is started.
        unsafe { libc::signal(libc::SIGPIPE, libc::SIG_DFL) };
    }
    let result = match cli.command {
        Command::Demo(args) => demo::run(args),
        Command::Worker(args) => demo::worker(args),
        Command::Ls { all, json } => lifecycle::ls(all, json),
        Command::Stat { name, file, json } => stat::stat(&tools::Target::new(name, file), json),
        Command::Watch {
            name,
            file,
            interval,
            count,
            json,
        } => watch::watch(
            &tools::Target::new(name, file),
            &watch::WatchArgs {
                interval: std::time::Duration::from_millis(interval),
                count,
                json,
            },
        ),
        Command::Export { names, all, format } => {
            export::export(&export::Segments { names, all }, format)
        }
        Command::Serve {
            listen,
            names,
            all,
            format,
        } => serve::serve(&listen, &export::Segments { names, all }, format),
        Command::Rm { names, force } => lifecycle::rm(&names, force),
        Command::Gc { dry_run, prefix } => lifecycle::gc(dry_run, &prefix),
    };
    match result {
        Ok(code) => std::process::exit(code),
        Err(e) => {
            eprintln!("shmkit: {e}");
            std::process::exit(1);
        }
    }
}

/// Under the `loom` feature the library has no segments; the tool has nothing to do.
#[cfg(feature = "loom")]
fn main() {
    eprintln!("shmkit: this build has the `loom` feature (model checking only); build without it");
    std::process::exit(1);
}
