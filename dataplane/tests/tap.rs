//! Root-only: a tap port (the bridge's LOCAL port) in a namespace this test
//! creates: frames the kernel sends on it are received, frames written to it
//! reach the kernel.

use rvs_dataplane::packet::{Batch, PacketMeta};
use rvs_dataplane::port::{Port, TapPort};
use std::process::Command;
use std::time::{Duration, Instant};

struct Ns(String);

impl Drop for Ns {
    fn drop(&mut self) {
        let _ = Command::new("ip").args(["netns", "del", &self.0]).status();
    }
}

fn ip(args: &[&str]) {
    let out = Command::new("ip").args(args).output().unwrap();
    assert!(
        out.status.success(),
        "ip {}: {}",
        args.join(" "),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn root_tap_port_talks_to_the_kernel() {
    if !rvs_dataplane::testing::netns::root_or_skip("tap_port_talks_to_the_kernel") {
        return;
    }
    let ns = Ns(format!("rvst{}", std::process::id() % 100_000));
    ip(&["netns", "add", &ns.0]);
    let (name, dev) = (ns.0.clone(), format!("{}t", ns.0));
    std::thread::spawn(move || {
        let f = std::fs::File::open(format!("/run/netns/{name}")).unwrap();
        nix::sched::setns(f, nix::sched::CloneFlags::CLONE_NEWNET).unwrap();
        let mut tap = TapPort::open(&dev).expect("tap");
        ip(&["addr", "add", "198.18.50.1/24", "dev", &dev]);
        ip(&["link", "set", &dev, "up"]);
        // The kernel ARPs for a neighbour on the tap's subnet: we receive it.
        let _ = Command::new("ping")
            .args(["-c", "1", "-W", "1", "198.18.50.2"])
            .output();
        let mut b = Batch::new(32);
        let deadline = Instant::now() + Duration::from_secs(3);
        let mut arp = None;
        while arp.is_none() && Instant::now() < deadline {
            b.clear();
            tap.rx(&mut b);
            arp = b
                .packets()
                .iter()
                .find(|p| p.data().len() >= 42 && p.data()[12..14] == [0x08, 0x06])
                .map(|p| p.data().to_vec());
        }
        let arp = arp.expect("the kernel's ARP request came out of the tap");
        assert_eq!(&arp[38..42], &[198, 18, 50, 2], "asking for 198.18.50.2");
        // Answer it: the kernel learns the neighbour from our frame.
        let mut reply = Vec::new();
        let them: [u8; 6] = arp[6..12].try_into().unwrap();
        let me = [2, 0, 0, 0, 0x50, 2];
        reply.extend_from_slice(&them);
        reply.extend_from_slice(&me);
        reply.extend_from_slice(&[0x08, 0x06, 0, 1, 0x08, 0, 6, 4, 0, 2]);
        reply.extend_from_slice(&me);
        reply.extend_from_slice(&[198, 18, 50, 2]);
        reply.extend_from_slice(&them);
        reply.extend_from_slice(&[198, 18, 50, 1]);
        b.clear();
        b.push_copy(&reply, PacketMeta::default());
        assert_eq!(tap.tx(&mut b), 1);
        let deadline = Instant::now() + Duration::from_secs(3);
        loop {
            let out = Command::new("ip")
                .args(["neigh", "show", "198.18.50.2", "dev", &dev])
                .output()
                .unwrap();
            if String::from_utf8_lossy(&out.stdout).contains("02:00:00:00:50:02") {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "the kernel never learned our ARP reply"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        assert!(tap.stats().rx_packets >= 1 && tap.stats().tx_packets == 1);
    })
    .join()
    .unwrap();
}
