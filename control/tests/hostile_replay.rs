//! Root-only: a pcap of hostile and valid frames, made here, replayed with
//! tcpreplay into a live daemon (namespaces this test makes and removes), with
//! AF_XDP ports, with AF_PACKET ports, and with the eBPF datapath (the kernel
//! runs the flows; what its parser does not fully understand comes up to
//! userspace, which applies the policy). Afterwards the daemon is
//! alive, every hostile frame is counted under the drop reason the README's
//! policy gives it, and the valid frames reached the other side byte for byte
//! (VLAN-tagged ones included, with their tags).

use pcap_file::pcap::{PcapHeader, PcapPacket, PcapReader, PcapWriter};
use rvs_dataplane::testing::netns::{root_or_skip, sh, Netns, TwoHosts};
use rvs_dataplane::testing::*;
use std::collections::BTreeMap;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

mod common;
use common::{kernel_hits, rvs_ok, spawn_daemon_with};

fn set16(f: &mut [u8], at: usize, v: u16) {
    f[at..at + 2].copy_from_slice(&v.to_be_bytes());
}

/// What happens to a 9000-byte frame: nothing (not sent: XDP on veth caps
/// the MTU), dropped as `oversize` (AF_PACKET buffers), or forwarded whole
/// (the eBPF datapath, by a kernel flow).
#[derive(Clone, Copy, PartialEq)]
enum Jumbo {
    NotSent,
    Oversize,
    Forwarded,
}

/// (frame, None = must be delivered as is, Some(reason) = must be dropped so).
fn corpus(jumbo: Jumbo) -> Vec<(Vec<u8>, Option<&'static str>)> {
    let mut v: Vec<(Vec<u8>, Option<&'static str>)> = Vec::new();
    let ok = |f: Vec<u8>| (f, None);
    // Valid traffic.
    v.push(ok(udp4_min()));
    v.push(ok(tcp4(1000, 80, true, 100)));
    v.push(ok(icmp4_echo(7, 1)));
    v.push(ok(arp_request()));
    v.push(ok(udp6(53, 5353)));
    v.push(ok(udp4_fragment(0, true)));
    v.push(ok(udp4_fragment(10, false)));
    v.push(ok(with_vlan(&udp4_min(), 0x8100, 0x2064)));
    v.push(ok(with_vlan(&with_vlan(&udp4_min(), 0x8100, 10), 0x88a8, 200)));
    v.push(ok(udp4(MAC_A, MAC_B, IP_A, IP_B, 1, 2, 1472)));
    let mut padded = udp4(MAC_A, MAC_B, IP_A, IP_B, 1, 2, 0);
    padded.extend_from_slice(&[0; 18]);
    v.push(ok(padded));

    // Hostile: each with the reason it must be counted under.
    let bad = |f: Vec<u8>, why: &'static str| (f, Some(why));
    v.push(bad(udp4([0; 6], MAC_B, IP_A, IP_B, 1, 2, 18), "invalid_src_mac"));
    v.push(bad(
        udp4([0xff; 6], MAC_B, IP_A, IP_B, 1, 2, 18),
        "invalid_src_mac",
    ));
    v.push(bad(
        udp4([0x01, 0, 0x5e, 0, 0, 9], MAC_B, IP_A, IP_B, 1, 2, 18),
        "invalid_src_mac",
    ));
    v.push(bad(
        with_vlan(
            &with_vlan(&with_vlan(&udp4_min(), 0x8100, 1), 0x8100, 2),
            0x88a8,
            3,
        ),
        "vlan_too_many_tags",
    ));
    let mut f = udp4_min();
    set16(&mut f, 16, 400); // IPv4 total length beyond the frame
    v.push(bad(f, "malformed_ipv4"));
    let mut f = udp4_min();
    f[14] = 0x44; // IHL 4
    v.push(bad(f, "malformed_ipv4"));
    let mut f = udp6(1, 2);
    set16(&mut f, 18, 0);
    v.push(bad(f, "malformed_ipv6"));
    let mut f = udp6(1, 2);
    set16(&mut f, 18, 900);
    v.push(bad(f, "malformed_ipv6"));
    let mut f = udp6(1, 2);
    f[20] = 0; // hop-by-hop whose option overruns it
    let plen = u16::from_be_bytes([f[18], f[19]]) + 8;
    set16(&mut f, 18, plen);
    f.splice(54..54, [17, 0, 1, 9, 0, 0, 0, 0]);
    v.push(bad(f, "malformed_ipv6"));
    let mut f = udp4_min();
    set16(&mut f, 38, 30); // UDP length != IP payload
    v.push(bad(f, "malformed_udp"));
    let mut f = tcp4(1, 2, false, 0);
    f[46] = 0x30; // data offset 3
    v.push(bad(f, "malformed_tcp"));
    let mut f = icmp4_echo(1, 1);
    f.truncate(38);
    set16(&mut f, 16, 24);
    v.push(bad(f, "malformed_icmp"));
    let mut f = arp_request();
    f[15] = 6; // htype 6 (IEEE 802)
    v.push(bad(f, "malformed_arp"));
    let mut f = arp_request();
    f[19] = 16; // plen 16
    f.extend_from_slice(&[0; 24]);
    v.push(bad(f, "malformed_arp"));
    match jumbo {
        Jumbo::NotSent => {}
        Jumbo::Oversize => v.push(bad(udp4(MAC_A, MAC_B, IP_A, IP_B, 1, 2, 8900), "oversize")),
        Jumbo::Forwarded => v.push(ok(udp4(MAC_A, MAC_B, IP_A, IP_B, 1, 2, 8900))),
    }
    // A valid frame last: forwarding still works after all of the above.
    v.push(ok(udp4(MAC_A, MAC_B, IP_A, IP_B, 9, 9, 18)));
    v
}

fn write_pcap(path: &Path, frames: &[&[u8]]) {
    let file = std::fs::File::create(path).unwrap();
    let mut w = PcapWriter::with_header(file, PcapHeader::default()).unwrap();
    for (i, f) in frames.iter().enumerate() {
        w.write_packet(&PcapPacket::new(
            Duration::from_millis(i as u64),
            f.len() as u32,
            f,
        ))
        .unwrap();
    }
}

fn read_pcap(path: &Path) -> Vec<Vec<u8>> {
    let mut r = PcapReader::new(std::fs::File::open(path).unwrap()).unwrap();
    let mut out = Vec::new();
    while let Some(p) = r.next_packet() {
        out.push(p.unwrap().data.into_owned());
    }
    out
}

struct Daemon(Child);

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn drops(dir: &Path) -> BTreeMap<String, u64> {
    let v: serde_json::Value =
        serde_json::from_str(&rvs_ok(dir, &["--format", "json", "pmd-stats"])).unwrap();
    let mut m = BTreeMap::new();
    for p in v.as_array().unwrap() {
        for (k, n) in p["drops"].as_object().unwrap() {
            *m.entry(k.clone()).or_insert(0) += n.as_u64().unwrap();
        }
    }
    m
}

/// `kind`: the ports' type (`afxdp`, `afpacket`: the afxdp datapath;
/// `system`: the ebpf one).
fn replay(kind: &str) {
    let mut ns = Netns::new(match kind {
        "afxdp" => "rvhx",
        "afpacket" => "rvhp",
        _ => "rvhe",
    });
    let TwoHosts {
        h1,
        h2,
        sw,
        a,
        b,
        sa,
        sb,
    } = ns.two_hosts(None);
    // AF_PACKET ports carry jumbo frames up to the MTU (and drop what is over
    // their buffers); XDP on veth caps the MTU, so the AF_XDP run has none;
    // TC programs see whatever the device receives.
    let jumbo = match kind {
        "afxdp" => Jumbo::NotSent,
        "afpacket" => Jumbo::Oversize,
        _ => Jumbo::Forwarded,
    };
    if jumbo != Jumbo::NotSent {
        for (n, d) in [(&h1, &a), (&sw, &sa), (&sw, &sb), (&h2, &b)] {
            sh(&["ip", "-n", n, "link", "set", d, "mtu", "9000"]);
        }
    }
    let dir = tempfile::tempdir().unwrap();
    let datapath = if kind == "system" { "ebpf" } else { "afxdp" };
    let d = Daemon(spawn_daemon_with(Some(&sw), dir.path(), datapath));
    let p = dir.path();
    rvs_ok(p, &["add-br", "br0"]);
    rvs_ok(p, &["add-port", "br0", &sa, &format!("type={kind}")]);
    rvs_ok(p, &["add-port", "br0", &sb, &format!("type={kind}")]);
    // One way, no learning: what arrives on sa goes to sb as it is.
    rvs_ok(p, &["del-flows", "br0"]);
    rvs_ok(
        p,
        &["add-flow", "br0", &format!("in_port={sa},actions=output:{sb}")],
    );

    let frames = corpus(jumbo);
    let input = p.join("corpus.pcap");
    let all: Vec<&[u8]> = frames.iter().map(|(f, _)| &f[..]).collect();
    write_pcap(&input, &all);
    let captured = p.join("out.pcap");
    let mut tcpdump = Command::new("ip")
        // -Z root: tcpdump would drop to its own user, which cannot write in
        // the test's private directory.
        .args([
            "netns",
            "exec",
            &h2,
            "tcpdump",
            "-Z",
            "root",
            "-i",
            &b,
            "--immediate-mode",
            "-U",
            "-s",
            "0",
            "-w",
        ])
        .arg(&captured)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // tcpdump says "listening on" once it captures.
    {
        use std::io::Read;
        let mut err = tcpdump.stderr.take().unwrap();
        let mut seen = Vec::new();
        let mut byte = [0u8; 1];
        while !String::from_utf8_lossy(&seen).contains("listening on") {
            assert_eq!(
                err.read(&mut byte).unwrap(),
                1,
                "tcpdump ended: {}",
                String::from_utf8_lossy(&seen)
            );
            seen.push(byte[0]);
        }
        // Keep reading so that its last words do not meet a closed pipe.
        std::thread::spawn(move || {
            let mut rest = String::new();
            let _ = err.read_to_string(&mut rest);
            eprintln!("tcpdump: {rest}");
        });
    }
    let before = drops(p);
    let out = Command::new("ip")
        .args(["netns", "exec", &h1, "tcpreplay", "-q", "-i", &a, "--pps", "200"])
        .arg(&input)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "tcpreplay: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let want_delivered: Vec<&Vec<u8>> = frames
        .iter()
        .filter(|(_, r)| r.is_none())
        .map(|(f, _)| f)
        .collect();
    let mut want_drops: BTreeMap<String, u64> = BTreeMap::new();
    for (_, r) in &frames {
        if let Some(r) = r {
            *want_drops.entry(r.to_string()).or_insert(0) += 1;
        }
    }
    // Wait until every hostile frame is counted (the PMD may still be at work).
    let deadline = Instant::now() + Duration::from_secs(10);
    let got = loop {
        let now = drops(p);
        let delta: BTreeMap<String, u64> = now
            .iter()
            .map(|(k, n)| (k.clone(), n - before.get(k).copied().unwrap_or(0)))
            .filter(|(_, n)| *n > 0)
            .collect();
        if delta == want_drops || Instant::now() > deadline {
            break delta;
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    std::thread::sleep(Duration::from_millis(300));
    sh(&["kill", "-INT", &tcpdump.id().to_string()]);
    let _ = tcpdump.wait();
    assert_eq!(got, want_drops, "{kind}: drops by reason");
    let delivered = read_pcap(&captured);
    if delivered.len() != want_delivered.len() {
        eprintln!("{}\n{}", rvs_ok(p, &["pmd-stats"]), rvs_ok(p, &["port-stats"]));
    }
    assert_eq!(
        delivered.len(),
        want_delivered.len(),
        "{kind}: delivered {} of {} valid frames",
        delivered.len(),
        want_delivered.len()
    );
    for (i, (got, want)) in delivered.iter().zip(&want_delivered).enumerate() {
        assert_eq!(got, *want, "{kind}: valid frame {i} changed on the way");
    }
    if kind == "system" {
        // The valid frames after the first went by the kernel's flow.
        let show = rvs_ok(p, &["dpctl", "show"]);
        let hits = kernel_hits(&show);
        assert!(
            hits >= want_delivered.len() as u64 - 1,
            "kernel hits {hits}: {show}"
        );
    }
    // Alive and answering.
    assert!(rvs_ok(p, &["show"]).contains("Bridge br0"));
    drop(d);
}

#[test]
fn root_hostile_pcap_through_afxdp_ports() {
    if root_or_skip("hostile_pcap_through_afxdp_ports") {
        replay("afxdp");
    }
}

#[test]
fn root_hostile_pcap_through_afpacket_ports() {
    if root_or_skip("hostile_pcap_through_afpacket_ports") {
        replay("afpacket");
    }
}

#[test]
fn root_hostile_pcap_through_the_ebpf_datapath() {
    if root_or_skip("hostile_pcap_through_the_ebpf_datapath") {
        replay("system");
    }
}
