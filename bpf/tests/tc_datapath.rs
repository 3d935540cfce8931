//! The eBPF datapath object loads (the verifier accepts every program) and
//! its parser runs under BPF_PROG_TEST_RUN. The equivalence with userspace
//! is tested in rvs-dataplane, which knows the flow key.

use rvs_bpf::dp::TcDatapath;

/// Root runs the test; otherwise it says it was skipped (CI, which is
/// root, must never skip it).
fn root_or_skip() -> bool {
    if nix::unistd::geteuid().is_root() {
        return true;
    }
    assert!(
        std::env::var_os("CI").is_none(),
        "CI runs as root: this test must not be skipped there"
    );
    eprintln!("skipped: needs root (BPF)");
    false
}

#[test]
fn root_the_datapath_loads_and_parses() {
    if !root_or_skip() {
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

/// A bpffs of the test's own, unmounted (and removed) when the test ends.
struct Bpffs(tempfile::TempDir);

impl Drop for Bpffs {
    fn drop(&mut self) {
        let _ = nix::mount::umount(self.0.path());
    }
}

/// A restarted daemon adopts the maps an earlier one pinned, but only maps
/// of its own layout and ABI: anything else (another rvs version's) is
/// replaced, never run by programs that read it differently.
#[test]
fn root_pinned_maps_are_adopted_only_when_they_fit() {
    use libbpf_rs::{MapCore, MapFlags, MapHandle, MapType};
    use rvs_bpf::dp::abi::{Config, ABI};
    if !root_or_skip() {
        return;
    }
    let fs = Bpffs(tempfile::tempdir().unwrap());
    rvs_bpf::dp::ensure_bpffs(fs.0.path()).unwrap();
    let pins = fs.0.path().join("dp");
    let gen = |g| Config {
        gen: g,
        ..Config::default()
    };

    let dp = TcDatapath::load(Some(&pins), &[]).unwrap();
    assert!(!dp.adopted());
    dp.set_config(&gen(7)).unwrap();
    drop(dp);
    let dp = TcDatapath::load(Some(&pins), &[]).unwrap();
    assert!(dp.adopted(), "the pinned maps are reused");
    assert_eq!(dp.config().unwrap().gen, 7);
    drop(dp);

    // The same maps, written by another ABI.
    let other = Config {
        abi: ABI + 1,
        ..gen(8)
    };
    MapHandle::from_pinned_path(pins.join("config"))
        .unwrap()
        .update(&0u32.to_ne_bytes(), bytemuck::bytes_of(&other), MapFlags::ANY)
        .unwrap();
    let dp = TcDatapath::load(Some(&pins), &[]).unwrap();
    assert!(!dp.adopted(), "maps of another ABI are not adopted");
    assert_eq!(dp.config().unwrap().gen, 0, "a fresh table");
    dp.set_config(&gen(9)).unwrap();
    drop(dp);

    // A map of another shape where one of ours was pinned.
    std::fs::remove_file(pins.join("counters")).unwrap();
    let opts = libbpf_rs::libbpf_sys::bpf_map_create_opts {
        sz: std::mem::size_of::<libbpf_rs::libbpf_sys::bpf_map_create_opts>() as _,
        ..Default::default()
    };
    let mut odd = MapHandle::create(MapType::Array, Some("counters"), 4, 4, 1, &opts).unwrap();
    odd.pin(pins.join("counters")).unwrap();
    let dp = TcDatapath::load(Some(&pins), &[]).unwrap();
    assert!(!dp.adopted(), "maps of another shape are not adopted");
    assert_eq!(dp.config().unwrap().gen, 0);
    assert_eq!(dp.counters().unwrap(), [0; rvs_bpf::dp::abi::N_COUNTERS]);
    dp.unpin().unwrap();
}
