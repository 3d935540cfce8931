//! Compile the XDP program with clang through libbpf-cargo's skeleton builder;
//! the object is embedded in the library and opened with libbpf-rs at run time.

use libbpf_cargo::SkeletonBuilder;
use std::env;
use std::path::PathBuf;

const SRC: &str = "src/bpf/xsk_redirect.bpf.c";

fn main() {
    let out = PathBuf::from(env::var_os("OUT_DIR").expect("OUT_DIR is set by cargo"));
    // Debian keeps asm/types.h under the multiarch include directory.
    let arch = env::var("CARGO_CFG_TARGET_ARCH").unwrap_or_else(|_| "x86_64".into());
    let multiarch = format!("-I/usr/include/{arch}-linux-gnu");
    SkeletonBuilder::new()
        .source(SRC)
        .obj(out.join("xsk_redirect.bpf.o"))
        .clang_args([multiarch.as_str(), "-Wall"])
        .build()
        .unwrap_or_else(|e| {
            panic!("building {SRC} failed (are clang and libbpf-dev installed? run `make deps`): {e:#}")
        });
    println!("cargo:rerun-if-changed={SRC}");
}
