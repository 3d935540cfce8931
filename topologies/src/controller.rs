//! The lab's OpenFlow controller: `controllers/neutron_agent.py` under
//! os-ken (from the venv `scripts/install-deps.sh` makes), in the underlay
//! namespace with the underlay bridge's address, started by pidfile. Every
//! rvs node's br-int and br-tun dial it with fail mode secure and take their
//! rules from it, as neutron's OVS agent programs them over OpenFlow.

use crate::lab::{Lab, UNDERLAY};
use crate::topology::ControllerKind;
use anyhow::{bail, Context, Result};
use std::path::PathBuf;
use std::time::{Duration, Instant};

/// The agent, as the lab writes it into the controller's run directory.
const AGENT: &str = include_str!("../controllers/neutron_agent.py");

/// Pidfile name (without `.pid`) in the underlay's run directory.
const PIDNAME: &str = "osken";

/// Where the venv is: `$RVS_VENV`, else the first `.venv` with an
/// `osken-manager` above this program or the current directory.
pub fn venv() -> Result<PathBuf> {
    if let Some(v) = std::env::var_os("RVS_VENV") {
        return Ok(PathBuf::from(v));
    }
    let starts = [std::env::current_exe().ok(), std::env::current_dir().ok()];
    for start in starts.into_iter().flatten() {
        for dir in start.ancestors() {
            let v = dir.join(".venv");
            if v.join("bin/osken-manager").exists() {
                return Ok(v);
            }
        }
    }
    bail!("no .venv with osken-manager found (run scripts/install-deps.sh, or set RVS_VENV)")
}

/// Start the controller (before the nodes, so they find it at once).
pub fn start(lab: &mut Lab) -> Result<()> {
    let Some(c) = lab.topo.controller.clone() else {
        return Ok(());
    };
    let ControllerKind::OsKen = c.kind;
    let venv = venv()?;
    let dir = lab.node_dir(UNDERLAY);
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    let agent = dir.join("neutron_agent.py");
    std::fs::write(&agent, AGENT).with_context(|| format!("writing {}", agent.display()))?;
    let networks: Vec<serde_json::Value> = lab
        .topo
        .networks
        .iter()
        .map(|n| serde_json::json!({"vni": n.vni, "vlan": lab.topo.local_vlan(&n.name).unwrap_or(1)}))
        .collect();
    let config = dir.join("agent.json");
    std::fs::write(&config, serde_json::json!({ "networks": networks }).to_string())
        .with_context(|| format!("writing {}", config.display()))?;
    lab.sh.note(&format!(
        "the controller: os-ken with neutron_agent.py on {}:{} (the underlay bridge's address)",
        c.ip, c.port
    ));
    let pidfile = lab.record_process(UNDERLAY, "os-ken controller", PIDNAME, "osken-manager")?;
    let ns = lab.ns(UNDERLAY);
    let manager = venv.join("bin/osken-manager").display().to_string();
    let (env, pf, ip, port) = (
        format!("RVS_AGENT_CONFIG={}", config.display()),
        pidfile.display().to_string(),
        c.ip.to_string(),
        c.port.to_string(),
    );
    let agent = agent.display().to_string();
    lab.sh.start(
        &[
            "ip",
            "netns",
            "exec",
            &ns,
            "env",
            &env,
            &manager,
            "--pid-file",
            &pf,
            "--ofp-listen-host",
            &ip,
            "--ofp-tcp-listen-port",
            &port,
            &agent,
        ],
        &dir.join("osken.log"),
    )?;
    // Listening before the nodes dial (they would retry, with backoff).
    let deadline = Instant::now() + Duration::from_secs(30);
    while !lab.sh.succeeds(&[
        "ip",
        "netns",
        "exec",
        &ns,
        "bash",
        "-c",
        &format!("exec 3<>/dev/tcp/{ip}/{port}"),
    ]) {
        if Instant::now() >= deadline {
            bail!(
                "the controller does not listen on {ip}:{port}: see {}",
                dir.join("osken.log").display()
            );
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    Ok(())
}

/// Point `node`'s br-int and br-tun at the controller, fail mode secure
/// (neutron's setting: without the agent, nothing forwards).
pub fn attach(lab: &Lab, node: &str) -> Result<()> {
    let Some(c) = &lab.topo.controller else {
        return Ok(());
    };
    let target = format!("tcp:{}:{}", c.ip, c.port);
    for br in ["br-int", "br-tun"] {
        crate::rvs_node::rvs(lab, node, &["set-fail-mode", br, "secure"])?;
        crate::rvs_node::rvs(lab, node, &["set-controller", br, &target])?;
    }
    Ok(())
}

/// Wait until the controller has programmed every node's br-tun (its learn
/// rule is there).
pub fn wait_programmed(lab: &Lab) -> Result<()> {
    if lab.topo.controller.is_none() {
        return Ok(());
    }
    for n in &lab.topo.nodes {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            lab.sh.check()?;
            let dump = crate::rvs_node::rvs(lab, &n.name, &["dump-flows", "br-tun"])?;
            if dump.contains("learn(") {
                break;
            }
            if Instant::now() >= deadline {
                bail!(
                    "node {}: the controller did not program br-tun within 60 s:\n{dump}",
                    n.name
                );
            }
            std::thread::sleep(Duration::from_millis(200));
        }
    }
    Ok(())
}
