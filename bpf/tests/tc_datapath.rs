//! The eBPF datapath object loads (the verifier accepts every program) and
//! its parser runs under BPF_PROG_TEST_RUN. The equivalence with userspace
//! is tested in rvs-dataplane, which knows the flow key.

use rvs_bpf::dp::TcDatapath;

fn is_root() -> bool {
    nix::unistd::geteuid().is_root()
}

#[test]
fn root_the_datapath_loads_and_parses() {
    if !is_root() {
        assert!(
            std::env::var_os("CI").is_none(),
            "CI runs as root: this test must not be skipped there"
        );
        eprintln!("skipped: needs root (BPF)");
        return;
    }
    let dp = TcDatapath::load(None, &[]).expect("the verifier accepts the datapath");
    // Ethernet/IPv4/UDP 198.18.0.10:1000 -> 198.18.0.11:2000
    let mut f = vec![2, 0, 0, 0, 0, 0x0b, 2, 0, 0, 0, 0, 0x0a, 0x08, 0x00];
    f.extend_from_slice(&[
        0x45, 0, 0, 28, 0, 0, 0, 0, 64, 17, 0, 0, 198, 18, 0, 10, 198, 18, 0, 11,
    ]);
    f.extend_from_slice(&[0x03, 0xe8, 0x07, 0xd0, 0, 8, 0, 0]);
    let (upcall, key) = dp.test_extract(&f).unwrap();
    assert!(!upcall);
    assert_eq!(key[9], 0x0200_0000_000a, "eth_src");
    assert_eq!(key[8], 0x0800 << 48 | 0x0200_0000_000b, "eth_type, eth_dst");
    assert_eq!(key[16], 1000 | 2000 << 16, "tp_src, tp_dst");
    // A zero source MAC is userspace's to refuse.
    f[6..12].copy_from_slice(&[0; 6]);
    assert!(dp.test_extract(&f).unwrap().0);
}
