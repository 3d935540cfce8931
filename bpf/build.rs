//! Compile the XDP program with clang through libbpf-cargo's skeleton builder;
//! the object is embedded in the library and opened with libbpf-rs at run time.

use libbpf_cargo::SkeletonBuilder;
use std::env;
use std::path::PathBuf;

/// (source, object) of each program.
const PROGRAMS: [(&str, &str); 2] = [
    ("src/bpf/xsk_redirect.bpf.c", "xsk_redirect.bpf.o"),
    ("src/bpf/rvs_dp.bpf.c", "rvs_dp.bpf.o"),
];

fn main() {
    let out = PathBuf::from(env::var_os("OUT_DIR").expect("OUT_DIR is set by cargo"));
    // Debian keeps asm/types.h under the multiarch include directory.
    let arch = env::var("CARGO_CFG_TARGET_ARCH").unwrap_or_else(|_| "x86_64".into());
    let multiarch = format!("-I/usr/include/{arch}-linux-gnu");
    for (src, obj) in PROGRAMS {
        SkeletonBuilder::new()
            .source(src)
            .obj(out.join(obj))
            .clang_args([multiarch.as_str(), "-Wall", "-Werror"])
            .build()
            .unwrap_or_else(|e| {
                panic!("building {src} failed (are clang and libbpf-dev installed? run `make deps`): {e:#}")
            });
        println!("cargo:rerun-if-changed={src}");
    }
    println!("cargo:rerun-if-changed=src/bpf/rvs_dp.h");
}
