//! The daemon: loads the configuration, runs the datapath, and serves the
//! control socket (`RUN_DIR/rvs.sock`, mode 0600, one JSON request per line).

use super::commands::{handle, State};
use super::datapath::{Datapath, DatapathOptions};
use super::proto::{Reply, Request};
use crate::config::{Config, ConfigError};
use crate::switch::Switch;
use crate::upcall::lock;
use rvs_dataplane::datapath::DatapathKind;
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
    /// megaflow `max-idle`, also the kernel flows').
    pub pmd: PmdConfig,
    /// Which datapath runs the flows.
    pub datapath: DatapathKind,
}

/// Why the daemon would not start.
#[derive(Error, Debug)]
pub enum DaemonError {
    /// Another daemon serves this run directory.
    #[error("another rvs daemon is running on {0} (it holds rvs.lock)")]
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

/// How long start-up waits for devices a killed predecessor still holds
/// (its exit takes 150-200 ms here; then the 1-second tick retries).
const PREDECESSOR_PATIENCE: Duration = Duration::from_secs(2);

/// The run directory's lock file (`rvs.lock`), locked for the daemon's life.
fn lock_run_dir(run_dir: &Path, sock: &Path) -> Result<std::fs::File, DaemonError> {
    let path = run_dir.join("rvs.lock");
    let f = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .map_err(io(format!("opening {}", path.display())))?;
    match f.try_lock() {
        Ok(()) => high_fd(f).map_err(io(format!("moving {} to a high descriptor", path.display()))),
        Err(std::fs::TryLockError::WouldBlock) => Err(DaemonError::Busy(sock.to_path_buf())),
        Err(std::fs::TryLockError::Error(e)) => Err(io(format!("locking {}", path.display()))(e)),
    }
}

/// The lowest descriptor [`high_fd`] moves the lock to.
const LOCK_FD: libc::c_int = 1000;

/// Move `f` to a descriptor above every other one we open. At exit the
/// kernel runs the final closes of a process's files last descriptor first,
/// so the lock on the highest one is released before the AF_XDP sockets,
/// each of whose closes waits for an RCU grace period.
fn high_fd(f: std::fs::File) -> std::io::Result<std::fs::File> {
    use std::os::fd::{AsRawFd, FromRawFd};
    // SAFETY: F_DUPFD_CLOEXEC on our own open fd returns a new fd that nothing else owns.
    let fd = unsafe { libc::fcntl(f.as_raw_fd(), libc::F_DUPFD_CLOEXEC, LOCK_FD) };
    if fd < 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: `fd` was just returned by fcntl and is owned by nobody else.
    Ok(unsafe { std::fs::File::from_raw_fd(fd) })
}

/// Run until `stop` is set.
pub fn run(opts: &DaemonOptions, stop: Arc<AtomicBool>) -> Result<(), DaemonError> {
    std::fs::create_dir_all(&opts.run_dir).map_err(io(format!("creating {}", opts.run_dir.display())))?;
    let sock = socket_path(&opts.run_dir);
    // One daemon per run directory. The lock sits on our highest descriptor,
    // so a killed daemon's exit releases it before the slow part (its AF_XDP
    // sockets and XDP links wait for RCU grace periods as they close): the
    // successor starts at once and takes each device as it comes free.
    let _lock = lock_run_dir(&opts.run_dir, &sock)?;
    if sock.exists() {
        tracing::warn!("removing stale socket {}", sock.display());
        std::fs::remove_file(&sock).map_err(io(format!("removing {}", sock.display())))?;
    }
    let sw = Arc::new(Mutex::new(load_switch(opts)?));
    let dp_opts = DatapathOptions {
        kind: opts.datapath,
        threads: opts.pmd_threads,
        mode: opts.poll,
        pmd: opts.pmd,
        cpu: None,
        // In the run directory's own bpffs: `ip netns exec` gives a daemon a
        // /sys without one, and each run directory is one switch.
        pin_dir: Some(opts.run_dir.join("bpf").join("dp")),
    };
    let mut dp = Datapath::start(&sw, &dp_opts)
        .map_err(io(format!("starting the {} datapath", opts.datapath.name())))?;
    for w in dp.sync_patiently(&sw, PREDECESSOR_PATIENCE) {
        tracing::warn!("{w}");
    }
    dp.revalidate(&sw);
    let state = Arc::new_cyclic(|weak| {
        Mutex::new(State {
            sw: sw.clone(),
            dp,
            db: opts.db.clone(),
            of: super::openflow::Controllers::new(weak.clone()),
        })
    });
    {
        let mut st = state.lock().unwrap_or_else(|e| e.into_inner());
        let st = &mut *st;
        lock(&st.sw).pin_sink = Some(st.of.pin_sink());
        for w in st.of.reconcile(&st.sw) {
            tracing::warn!("{w}");
        }
    }
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
        let mut st = state.lock().unwrap_or_else(|e| e.into_inner());
        st.dp.resolve(&sw);
        st.of.dispatch_removed(&sw);
        if last_tick.elapsed() >= Duration::from_secs(1) {
            st.dp.credit(&sw);
            lock(&sw).expire();
            st.dp.tick();
            let warnings = st.dp.sync(&sw);
            for w in warnings {
                tracing::debug!("{w}");
            }
            // Listeners whose address was busy are tried again.
            let st = &mut *st;
            for w in st.of.reconcile(&st.sw) {
                tracing::debug!("{w}");
            }
            last_tick = Instant::now();
        }
    }
    let _ = std::fs::remove_file(&sock);
    state.lock().unwrap_or_else(|e| e.into_inner()).of.stop_all();
    let st = Arc::try_unwrap(state)
        .ok()
        .map(|m| m.into_inner().unwrap_or_else(|e| e.into_inner()));
    if let Some(st) = st {
        // A clean stop: the daemon leaves for good (kill -9 leaves the
        // kernel datapath forwarding instead).
        st.dp.stop(true);
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

/// The PID of the daemon serving `run_dir`, when one answers. A socket that
/// accepts but never replies (a killed daemon whose exit has not closed its
/// listener yet) is not serving: waiting for a given PID is how a starter
/// knows that its own daemon is up.
pub fn serving_pid(run_dir: &Path) -> Option<u32> {
    let req = Request {
        cmd: "version".into(),
        args: Vec::new(),
        format: Some("json".into()),
    };
    let reply = request_within(run_dir, &req, Some(Duration::from_secs(1)))
        .ok()
        .filter(|r| r.ok)?;
    let v: serde_json::Value = serde_json::from_str(&reply.output).ok()?;
    v.get("pid")?.as_u64().map(|p| p as u32)
}

/// Send one request to the daemon on `run_dir` and wait for the reply.
pub fn request(run_dir: &Path, req: &Request) -> std::io::Result<Reply> {
    request_within(run_dir, req, None)
}

fn request_within(run_dir: &Path, req: &Request, timeout: Option<Duration>) -> std::io::Result<Reply> {
    let sock = socket_path(run_dir);
    let mut conn = UnixStream::connect(&sock)?;
    conn.set_read_timeout(timeout)?;
    let mut text = serde_json::to_string(req).map_err(std::io::Error::other)?;
    text.push('\n');
    conn.write_all(text.as_bytes())?;
    let mut line = String::new();
    BufReader::new(conn).read_line(&mut line)?;
    serde_json::from_str(&line).map_err(std::io::Error::other)
}
