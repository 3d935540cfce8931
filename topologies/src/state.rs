//! The lab's state file: what one `up` created (namespaces, processes, run
//! directory), written before each thing is created, so `down` (or the clean-up
//! after a failure) removes exactly that and nothing else.

use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// A process the lab started, known by its pidfile.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LabProcess {
    /// What it is (`rvs daemon`, `agent`, `iperf3 server`).
    pub role: String,
    /// The node or VM it serves.
    pub on: String,
    /// Its pidfile.
    pub pidfile: PathBuf,
    /// The executable's file name, checked before signalling (a PID can be reused).
    pub comm: String,
}

/// Everything one lab run created.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LabState {
    /// Topology name.
    pub topology: String,
    /// Per-run prefix of every name.
    pub prefix: String,
    /// The overlay really used (`geneve`, `vxlan`).
    pub overlay: String,
    /// Namespaces, in creation order.
    pub namespaces: Vec<String>,
    /// Processes started.
    pub processes: Vec<LabProcess>,
    /// Directory of sockets, configuration, pidfiles and logs.
    pub run_dir: PathBuf,
    /// File systems mounted (a node's bpffs), in mount order.
    #[serde(default)]
    pub mounts: Vec<PathBuf>,
    /// Unix time (ms) `up` started, and when it finished (0: not finished).
    pub started_ms: u64,
    /// When `up` finished.
    pub ready_ms: u64,
}

impl LabState {
    /// The state file of topology `name` under `dir`.
    pub fn path(dir: &Path, name: &str) -> PathBuf {
        dir.join(format!("{name}.json"))
    }

    /// Read the state file, `None` when there is none.
    pub fn load(path: &Path) -> Result<Option<LabState>> {
        match std::fs::read_to_string(path) {
            Ok(text) => {
                Ok(Some(serde_json::from_str(&text).with_context(|| {
                    format!("{}: not a lab state file", path.display())
                })?))
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e).with_context(|| format!("reading {}", path.display())),
        }
    }

    /// Write the state file atomically (temporary file, then rename).
    pub fn save(&self, path: &Path) -> Result<()> {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        }
        let tmp = path.with_extension("json.tmp");
        std::fs::write(&tmp, serde_json::to_string_pretty(self)?)
            .with_context(|| format!("writing {}", tmp.display()))?;
        std::fs::rename(&tmp, path).with_context(|| format!("renaming to {}", path.display()))
    }
}

/// The PID in `pidfile` when that process is alive and runs `comm`.
pub fn live_pid(pidfile: &Path, comm: &str) -> Option<u32> {
    let pid: u32 = std::fs::read_to_string(pidfile).ok()?.trim().parse().ok()?;
    runs(pid, comm).then_some(pid)
}

/// True while process `pid` is alive and runs `comm` (also after it removed
/// its own pidfile on the way out, as OVS's daemons do).
pub fn runs(pid: u32, comm: &str) -> bool {
    let Ok(running) = std::fs::read_to_string(format!("/proc/{pid}/comm")) else {
        return false;
    };
    // A zombie whose threads are all gone has closed its sockets: as good as
    // gone (its parent may not reap it soon). The leader of a killed
    // multi-threaded process turns zombie first, while its other threads
    // still close the files (AF_XDP sockets take a while).
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return false;
    };
    let state = stat
        .rsplit_once(')')
        .and_then(|(_, r)| r.split_whitespace().next())
        .unwrap_or("X");
    let threads = std::fs::read_dir(format!("/proc/{pid}/task")).map_or(0, |d| d.count());
    let dead = (state == "Z" || state == "X") && threads <= 1;
    // comm is cut to 15 bytes by the kernel.
    let want: String = comm.chars().take(15).collect();
    running.trim() == want && !dead
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn state_round_trips_and_a_missing_file_is_no_lab() {
        let dir = tempfile::tempdir().unwrap();
        let p = LabState::path(dir.path(), "two-node-geneve");
        assert_eq!(LabState::load(&p).unwrap(), None);
        let s = LabState {
            topology: "two-node-geneve".into(),
            prefix: "rl42".into(),
            namespaces: vec!["rl42n1".into()],
            processes: vec![LabProcess {
                role: "rvs daemon".into(),
                on: "n1".into(),
                pidfile: dir.path().join("n1.pid"),
                comm: "rvs".into(),
            }],
            ..Default::default()
        };
        s.save(&p).unwrap();
        assert_eq!(LabState::load(&p).unwrap(), Some(s));
        std::fs::write(&p, "{").unwrap();
        assert!(LabState::load(&p).is_err());
    }

    #[test]
    fn a_pidfile_names_a_live_process_only_if_it_runs_the_program() {
        let dir = tempfile::tempdir().unwrap();
        let pf = dir.path().join("me.pid");
        std::fs::write(&pf, format!("{}\n", std::process::id())).unwrap();
        let me = std::fs::read_to_string("/proc/self/comm").unwrap();
        assert_eq!(live_pid(&pf, me.trim()), Some(std::process::id()));
        assert_eq!(live_pid(&pf, "not-this-one"), None);
        std::fs::write(&pf, "4194305\n").unwrap();
        assert_eq!(live_pid(&pf, me.trim()), None);
        // A child that exited and was not reaped yet is a zombie: not live.
        let mut child = std::process::Command::new("true").spawn().unwrap();
        std::fs::write(&pf, format!("{}\n", child.id())).unwrap();
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
        while std::fs::read_to_string(format!("/proc/{}/stat", child.id())).is_ok_and(|s| !s.contains(") Z"))
            && std::time::Instant::now() < deadline
        {
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
        assert_eq!(live_pid(&pf, "true"), None);
        child.wait().unwrap();
    }
}
