//! The daemon: loads the configuration, runs the datapath, and serves the
//! control socket (`RUN_DIR/rvs.sock`, mode 0600, one JSON request per line).

use super::commands::{handle, State};
use super::datapath::Datapath;
use super::proto::{Reply, Request};
use crate::config::{Config, ConfigError};
use crate::switch::Switch;
use crate::upcall::lock;
use rvs_dataplane::pmd::{PmdConfig, PollMode};
use std::io::{BufRead, BufReader, Write};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use thiserror::Error;

/// How the daemon runs.
#[derive(Clone, Debug)]
pub struct DaemonOptions {
    /// Configuration file.
    pub db: PathBuf,
    /// Directory of the control socket.
    pub run_dir: PathBuf,
    /// PMD threads.
    pub pmd_threads: usize,
    /// Polling mode.
    pub poll: PollMode,
    /// Start empty when the configuration cannot be used (moving it aside).
    pub start_empty: bool,
    /// Where to serve Prometheus metrics (`None`: off).
    pub metrics: Option<std::net::SocketAddr>,
    /// Cache sizes and policies of every PMD (EMC insertion probability,
    /// megaflow `max-idle`).
    pub pmd: PmdConfig,
}

/// Why the daemon would not start.
#[derive(Error, Debug)]
pub enum DaemonError {
    /// Another daemon serves this run directory.
    #[error("another rvs daemon is running on {0} (its socket answers)")]
    Busy(PathBuf),
    /// The configuration is unusable.
    #[error("{0} (start with --start-empty to set it aside and start empty)")]
    Config(ConfigError),
    /// A file or socket operation failed.
    #[error("{what}: {source}")]
    Io {
        /// What was being done.
        what: String,
        /// Cause.
        source: std::io::Error,
    },
}

fn io(what: impl Into<String>) -> impl FnOnce(std::io::Error) -> DaemonError {
    let what = what.into();
    move |source| DaemonError::Io { what, source }
}

/// The control socket's path in a run directory.
pub fn socket_path(run_dir: &Path) -> PathBuf {
    run_dir.join("rvs.sock")
}

fn load_switch(opts: &DaemonOptions) -> Result<Switch, DaemonError> {
    let loaded = Config::load(&opts.db).and_then(|c| c.map(|c| c.apply()).transpose());
    match loaded {
        Ok(Some(sw)) => Ok(sw),
        Ok(None) => Ok(Switch::new()),
        Err(e) if opts.start_empty => {
            let aside = opts.db.with_extension(format!("bad-{}", std::process::id()));
            tracing::error!("{e}; moved to {} and starting empty", aside.display());
            std::fs::rename(&opts.db, &aside).map_err(io(format!("moving {} aside", opts.db.display())))?;
            Ok(Switch::new())
        }
        Err(e) => Err(DaemonError::Config(e)),
    }
}

/// Run until `stop` is set.
pub fn run(opts: &DaemonOptions, stop: Arc<AtomicBool>) -> Result<(), DaemonError> {
    std::fs::create_dir_all(&opts.run_dir).map_err(io(format!("creating {}", opts.run_dir.display())))?;
    let sock = socket_path(&opts.run_dir);
    if sock.exists() {
        if UnixStream::connect(&sock).is_ok() {
            return Err(DaemonError::Busy(sock));
        }
        tracing::warn!("removing stale socket {}", sock.display());
        std::fs::remove_file(&sock).map_err(io(format!("removing {}", sock.display())))?;
    }
    let sw = Arc::new(Mutex::new(load_switch(opts)?));
    let mut dp = Datapath::start(&sw, opts.pmd_threads, opts.poll, opts.pmd, None)
        .map_err(io("starting PMD threads"))?;
    for w in dp.sync(&sw) {
        tracing::warn!("{w}");
    }
    let state = Arc::new(Mutex::new(State {
        sw: sw.clone(),
        dp,
        db: opts.db.clone(),
    }));
    if let Some(addr) = opts.metrics {
        let (st, sw2) = (state.clone(), sw.clone());
        let bound = super::metrics::serve(addr, move || {
            let snaps = st.lock().unwrap_or_else(|e| e.into_inner()).dp.snapshots();
            super::metrics::render(&lock(&sw2), &snaps).unwrap_or_else(|e| format!("# error: {e}\n"))
        })
        .map_err(io(format!("metrics on {addr}")))?;
        tracing::info!("metrics on http://{bound}/metrics");
    }
    let listener = UnixListener::bind(&sock).map_err(io(format!("binding {}", sock.display())))?;
    std::fs::set_permissions(&sock, std::fs::Permissions::from_mode(0o600))
        .map_err(io(format!("chmod {}", sock.display())))?;
    listener
        .set_nonblocking(true)
        .map_err(io("non-blocking socket"))?;
    tracing::info!("listening on {}", sock.display());
    let mut last_tick = Instant::now();
    while !stop.load(Ordering::Relaxed) {
        match listener.accept() {
            Ok((conn, _)) => {
                let st = state.clone();
                std::thread::spawn(move || serve(conn, st));
            }
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                std::thread::sleep(Duration::from_millis(20))
            }
            Err(e) => tracing::warn!("accept: {e}"),
        }
        if last_tick.elapsed() >= Duration::from_secs(1) {
            let mut st = state.lock().unwrap_or_else(|e| e.into_inner());
            st.dp.credit(&sw);
            lock(&sw).expire();
            let warnings = st.dp.sync(&sw);
            for w in warnings {
                tracing::debug!("{w}");
            }
            last_tick = Instant::now();
        }
    }
    let _ = std::fs::remove_file(&sock);
    let st = Arc::try_unwrap(state)
        .ok()
        .map(|m| m.into_inner().unwrap_or_else(|e| e.into_inner()));
    if let Some(st) = st {
        st.dp.stop();
    }
    Ok(())
}

/// Serve one client: a reply for every line, malformed or not.
fn serve(conn: UnixStream, state: Arc<Mutex<State>>) {
    let Ok(mut out) = conn.try_clone() else { return };
    for line in BufReader::new(conn).lines() {
        let Ok(line) = line else { break };
        if line.trim().is_empty() {
            continue;
        }
        let reply = match serde_json::from_str::<Request>(&line) {
            Ok(req) => {
                let mut st = state.lock().unwrap_or_else(|e| e.into_inner());
                handle(&mut st, &req)
            }
            Err(e) => Reply::err(format!("malformed request: {e}")),
        };
        let mut text = serde_json::to_string(&reply).unwrap_or_else(|_| "{\"ok\":false}".into());
        text.push('\n');
        if out.write_all(text.as_bytes()).is_err() {
            break;
        }
    }
}

/// Send one request to the daemon on `run_dir` and wait for the reply.
pub fn request(run_dir: &Path, req: &Request) -> std::io::Result<Reply> {
    let sock = socket_path(run_dir);
    let mut conn = UnixStream::connect(&sock)?;
    let mut text = serde_json::to_string(req).map_err(std::io::Error::other)?;
    text.push('\n');
    conn.write_all(text.as_bytes())?;
    let mut line = String::new();
    BufReader::new(conn).read_line(&mut line)?;
    serde_json::from_str(&line).map_err(std::io::Error::other)
}
