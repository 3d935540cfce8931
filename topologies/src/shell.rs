//! [`Shell`]: runs the iproute2 / rvs / iperf3 commands a lab is made of, and
//! with `--explain` prints each one first, so a student can replay the lab by
//! hand. Every command is a plain argv (no shell in between).

use anyhow::{bail, Context, Result};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

/// Runs commands; stops early once Ctrl-C or SIGTERM arrived.
#[derive(Clone)]
pub struct Shell {
    explain: bool,
    stop: Arc<AtomicBool>,
}

/// `argv` as one line a shell would accept (quotes where needed).
pub fn quoted(argv: &[&str]) -> String {
    argv.iter()
        .map(|a| {
            if !a.is_empty()
                && a.chars()
                    .all(|c| c.is_ascii_alphanumeric() || "-_./:=,@+%".contains(c))
            {
                a.to_string()
            } else {
                format!("'{}'", a.replace('\'', r"'\''"))
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

impl Shell {
    /// A shell that prints commands when `explain` is set. `stop` is raised by
    /// the signal handler.
    pub fn new(explain: bool, stop: Arc<AtomicBool>) -> Shell {
        Shell { explain, stop }
    }

    /// True once Ctrl-C or SIGTERM arrived.
    pub fn stopped(&self) -> bool {
        self.stop.load(Ordering::Relaxed)
    }

    /// Fail when the run was interrupted (called between steps).
    pub fn check(&self) -> Result<()> {
        if self.stopped() {
            bail!("interrupted");
        }
        Ok(())
    }

    /// Print a comment line in `--explain` output.
    pub fn note(&self, text: &str) {
        if self.explain {
            println!("# {text}");
        }
    }

    fn show(&self, argv: &[&str]) {
        if self.explain {
            println!("$ {}", quoted(argv));
        }
    }

    /// Run `argv` to the end with its output captured.
    fn output(&self, argv: &[&str]) -> Result<std::process::Output> {
        self.check()?;
        self.show(argv);
        command(argv)
            .output()
            .with_context(|| format!("cannot start {}", argv[0]))
    }

    /// Run `argv` to the end, its output discarded; `None` if it cannot start.
    fn status(&self, argv: &[&str]) -> Option<std::process::ExitStatus> {
        self.show(argv);
        command(argv)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .ok()
    }

    /// Run `argv`; fail with its stderr unless it exits 0. Returns stdout.
    pub fn run(&self, argv: &[&str]) -> Result<String> {
        let out = self.output(argv)?;
        if !out.status.success() {
            bail!(
                "`{}` failed ({}): {}",
                quoted(argv),
                out.status,
                String::from_utf8_lossy(&out.stderr).trim()
            );
        }
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    }

    /// Run `argv` and report only whether it exited 0 (probes such as a ping
    /// that is expected to fail). Output is discarded.
    pub fn succeeds(&self, argv: &[&str]) -> bool {
        self.status(argv).is_some_and(|s| s.success())
    }

    /// Run `argv` for clean-up: errors are ignored (the thing may be gone),
    /// and an interrupt does not stop it.
    pub fn cleanup(&self, argv: &[&str]) {
        let _ = self.status(argv);
    }

    /// Run `argv` with its output appended to `log`, and wait for it (a
    /// daemon that detaches keeps writing there).
    pub fn run_logged(&self, argv: &[&str], log: &Path) -> Result<()> {
        let mut child = self.start(argv, log)?;
        let st = child.wait()?;
        if !st.success() {
            bail!("`{}` failed ({st}); see {}", quoted(argv), log.display());
        }
        Ok(())
    }

    /// Start `argv` in the background with its output appended to `log`.
    pub fn start(&self, argv: &[&str], log: &Path) -> Result<Child> {
        self.check()?;
        self.show(argv);
        let f = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(log)
            .with_context(|| format!("opening {}", log.display()))?;
        command(argv)
            .stdout(f.try_clone()?)
            .stderr(f)
            .spawn()
            .with_context(|| format!("cannot start {}", argv[0]))
    }

    /// Run `argv` and return its stdout whatever its exit status (a ping
    /// that lost some replies still has output to read).
    pub fn capture(&self, argv: &[&str]) -> Result<String> {
        Ok(String::from_utf8_lossy(&self.output(argv)?.stdout).into_owned())
    }

    /// Start `argv` in the background with its stdout captured.
    pub fn spawn(&self, argv: &[&str]) -> Result<Child> {
        self.check()?;
        if self.explain {
            println!("$ {} &", quoted(argv));
        }
        command(argv)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .with_context(|| format!("cannot start {}", argv[0]))
    }

    /// Run `argv` inside namespace `ns` (`ip netns exec NS ...`).
    pub fn run_in(&self, ns: &str, argv: &[&str]) -> Result<String> {
        self.run(&in_ns(ns, argv))
    }
}

/// `argv` as a command with no stdin (nothing the lab runs reads input).
fn command(argv: &[&str]) -> Command {
    let mut c = Command::new(argv[0]);
    c.args(&argv[1..]).stdin(Stdio::null());
    c
}

/// `ip netns exec NS argv...`
pub fn in_ns<'a>(ns: &'a str, argv: &[&'a str]) -> Vec<&'a str> {
    let mut v = vec!["ip", "netns", "exec", ns];
    v.extend_from_slice(argv);
    v
}

/// A child process that is killed and reaped when this goes out of scope
/// (on an early return too): a probe's helper never outlives its step.
pub struct KillOnDrop(pub std::process::Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        if matches!(self.0.try_wait(), Ok(None)) {
            let _ = self.0.kill();
        }
        let _ = self.0.wait();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commands_print_as_a_shell_reads_them() {
        assert_eq!(
            quoted(&["ip", "-n", "rl1n1", "addr", "add", "198.18.0.1/24", "dev", "x"]),
            "ip -n rl1n1 addr add 198.18.0.1/24 dev x"
        );
        assert_eq!(quoted(&["sh", "-c", "a b", "it's"]), r"sh -c 'a b' 'it'\''s'");
        assert_eq!(quoted(&[""]), "''");
    }

    #[test]
    fn failures_say_which_command_and_why() {
        let sh = Shell::new(false, Arc::default());
        let e = sh
            .run(&["ls", "/nonexistent-rvs-lab-path"])
            .unwrap_err()
            .to_string();
        assert!(e.contains("ls /nonexistent-rvs-lab-path"), "{e}");
        assert!(sh.run(&["true"]).is_ok());
        assert!(!sh.succeeds(&["false"]));
        let stop = Arc::new(AtomicBool::new(true));
        let e = Shell::new(false, stop).run(&["true"]).unwrap_err();
        assert!(e.to_string().contains("interrupted"));
    }
}
