//! Root-only: AF_XDP frame accounting. Ten million frames go from one AF_XDP
//! socket to another over a veth pair (in a namespace this test creates and
//! removes); at the end every UMEM frame is back where it belongs.

use rvs_dataplane::packet::{Batch, PacketMeta};
use rvs_dataplane::port::{AfXdpConfig, AfXdpPort, Port};
use rvs_dataplane::testing::udp4_min;
use std::process::Command;
use std::time::{Duration, Instant};

const FRAMES: u64 = 10_000_000;

struct Ns(String);

impl Drop for Ns {
    fn drop(&mut self) {
        let _ = Command::new("ip").args(["netns", "del", &self.0]).status();
    }
}

fn sh(args: &[&str]) {
    let out = Command::new(args[0]).args(&args[1..]).output().unwrap();
    assert!(
        out.status.success(),
        "{}: {}",
        args.join(" "),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn root_ten_million_frames_and_no_frame_leaks() {
    if !rvs_dataplane::testing::netns::root_or_skip("ten_million_frames_and_no_frame_leaks") {
        return;
    }
    let ns = Ns(format!("rvsu{}", std::process::id() % 100_000));
    let (a, b) = (format!("{}a", ns.0), format!("{}b", ns.0));
    sh(&["ip", "netns", "add", &ns.0]);
    sh(&[
        "ip", "-n", &ns.0, "link", "add", &a, "type", "veth", "peer", "name", &b,
    ]);
    sh(&["ip", "-n", &ns.0, "link", "set", &a, "up"]);
    sh(&["ip", "-n", &ns.0, "link", "set", &b, "up"]);
    let name = ns.0.clone();
    std::thread::spawn(move || {
        let f = std::fs::File::open(format!("/run/netns/{name}")).unwrap();
        nix::sched::setns(f, nix::sched::CloneFlags::CLONE_NEWNET).unwrap();
        let mut tx = AfXdpPort::open(&AfXdpConfig::new(&a), None).expect("AF_XDP on a");
        let mut rx = AfXdpPort::open(&AfXdpConfig::new(&b), None).expect("AF_XDP on b");
        let frame = udp4_min();
        // Both directions at once, as forwarded TCP does (data one way, acks
        // the other): rings then take fewer frames than offered now and then,
        // the case a frame-accounting bug once hid in.
        let (mut a_out, mut b_out) = (Batch::new(64), Batch::new(64));
        let mut inb = Batch::new(64);
        let (mut sent, mut got) = (0u64, 0u64);
        let deadline = Instant::now() + Duration::from_secs(240);
        while sent < FRAMES && Instant::now() < deadline {
            for (port, out) in [(&mut tx, &mut a_out), (&mut rx, &mut b_out)] {
                while !out.is_full() && sent + (out.len() as u64) < FRAMES {
                    out.push_copy(&frame, PacketMeta::default());
                }
                sent += port.tx(out) as u64;
                inb.clear();
                got += port.rx(&mut inb) as u64;
            }
        }
        // Drain: let the kernel finish sends and deliveries.
        let settle = Instant::now() + Duration::from_secs(5);
        while Instant::now() < settle
            && (got < sent || tx.free_frames() < 4096 / 2 || rx.free_frames() < 4096 / 2)
        {
            for port in [&mut tx, &mut rx] {
                inb.clear();
                got += port.rx(&mut inb) as u64;
                port.tx(&mut Batch::new(0));
            }
        }
        assert_eq!(sent, FRAMES, "sent everything within the time limit");
        assert_eq!(
            (tx.frame_errors(), rx.frame_errors()),
            (0, 0),
            "no frame was ever in two places"
        );
        assert!(
            tx.frames_accounted() && rx.frames_accounted(),
            "frame bookkeeping is consistent"
        );
        // Each port keeps half of its 4096 frames on its fill ring for
        // receiving; the rest are free again (all tx completions came back).
        assert!(tx.free_frames() >= 4096 / 2 && rx.free_frames() >= 4096 / 2);
        // Delivery is best effort (the receiver can fall behind: fill ring
        // empty, rx ring full); the frames themselves must all come home.
        let x = rx.xdp_stats();
        // (The kernel's own IPv6 neighbour discovery adds a few frames.)
        assert!(
            got <= sent + 16 && got >= sent / 100 * 99,
            "received {got} of {sent}: {x:?}"
        );
        eprintln!("{sent} frames sent, {got} received; receiver: {x:?}");
    })
    .join()
    .unwrap();
}
