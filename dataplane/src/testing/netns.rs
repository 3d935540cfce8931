//! Scaffolding for root-only tests: whether this run may build network
//! namespaces, and namespaces (with everything in them) that are removed when
//! the test ends, also when it fails. Names carry a per-run prefix.

use std::process::{Command, Output};

/// True when the test may run. As a normal user it prints `skipped: needs
/// root (NAME)` and returns false; under `CI=true` (CI is root) a missing
/// root is a failure, never a silent pass.
pub fn root_or_skip(name: &str) -> bool {
    // SAFETY: geteuid has no preconditions and cannot fail.
    if unsafe { libc::geteuid() } == 0 {
        return true;
    }
    assert!(
        std::env::var_os("CI").is_none(),
        "{name}: CI runs as root; this test must not be skipped there"
    );
    eprintln!("skipped: needs root ({name})");
    false
}

/// Run a command; panic with its stderr when it fails.
pub fn sh(args: &[&str]) -> Output {
    let out = Command::new(args[0])
        .args(&args[1..])
        .output()
        .unwrap_or_else(|e| panic!("{}: {e}", args[0]));
    assert!(
        out.status.success(),
        "{}: {}",
        args.join(" "),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// Namespaces named `PREFIX` + a short name, deleted on drop.
pub struct Netns {
    prefix: String,
    made: Vec<String>,
}

impl Netns {
    /// A set for this run: `tag` plus the PID keeps parallel tests and runs apart.
    pub fn new(tag: &str) -> Netns {
        Netns {
            prefix: format!("{tag}{}", std::process::id() % 100_000),
            made: Vec::new(),
        }
    }

    /// The full name of `short` (namespace or interface).
    pub fn name(&self, short: &str) -> String {
        format!("{}{short}", self.prefix)
    }

    /// Create namespace `short` with loopback up; returns its name.
    pub fn add(&mut self, short: &str) -> String {
        let n = self.name(short);
        sh(&["ip", "netns", "add", &n]);
        self.made.push(n.clone());
        sh(&["ip", "-n", &n, "link", "set", "lo", "up"]);
        n
    }

    /// A veth pair `a` (in namespace `ns_a`) -- `b` (in `ns_b`), both up,
    /// IPv6 off on both so the kernel adds no traffic of its own.
    pub fn veth(&self, ns_a: &str, a: &str, ns_b: &str, b: &str) {
        sh(&[
            "ip", "link", "add", a, "netns", ns_a, "type", "veth", "peer", "name", b, "netns", ns_b,
        ]);
        for (ns, dev) in [(ns_a, a), (ns_b, b)] {
            let _ = Command::new("ip")
                .args(["netns", "exec", ns, "sysctl", "-qw"])
                .arg(format!("net.ipv6.conf.{dev}.disable_ipv6=1"))
                .status();
            sh(&["ip", "-n", ns, "link", "set", dev, "up"]);
        }
    }
}

/// The names of [`Netns::two_hosts`]'s namespaces and interfaces.
pub struct TwoHosts {
    /// Host namespaces.
    pub h1: String,
    /// Second host.
    pub h2: String,
    /// The switch's namespace.
    pub sw: String,
    /// h1's interface.
    pub a: String,
    /// h2's interface.
    pub b: String,
    /// The switch's end of `a`'s veth.
    pub sa: String,
    /// The switch's end of `b`'s veth.
    pub sb: String,
}

impl Netns {
    /// The usual test topology: hosts `h1` and `h2`, each joined by a veth
    /// to the switch namespace `sw` (`h1:a -- sw:sa`, `h2:b -- sw:sb`); with
    /// `subnet` ("198.18.62"), `a` gets `SUBNET.1/24` and `b` `SUBNET.2/24`.
    pub fn two_hosts(&mut self, subnet: Option<&str>) -> TwoHosts {
        let t = TwoHosts {
            h1: self.add("h1"),
            h2: self.add("h2"),
            sw: self.add("sw"),
            a: self.name("a"),
            b: self.name("b"),
            sa: self.name("sa"),
            sb: self.name("sb"),
        };
        self.veth(&t.h1, &t.a, &t.sw, &t.sa);
        self.veth(&t.h2, &t.b, &t.sw, &t.sb);
        if let Some(s) = subnet {
            for (ns, dev, host) in [(&t.h1, &t.a, 1), (&t.h2, &t.b, 2)] {
                sh(&[
                    "ip",
                    "-n",
                    ns,
                    "addr",
                    "add",
                    &format!("{s}.{host}/24"),
                    "dev",
                    dev,
                ]);
            }
        }
        t
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        for n in self.made.drain(..).rev() {
            let _ = Command::new("ip").args(["netns", "del", &n]).status();
        }
    }
}
