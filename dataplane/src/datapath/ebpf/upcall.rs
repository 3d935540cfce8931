//! The eBPF datapath's slow path, seen from a PMD: [`UpcallPort`] hands it
//! the packets the kernel missed (each with the port it came in on), and
//! [`OffloadUpcall`] installs each translation in the kernel before the PMD
//! runs it on that packet (which is so not lost). A translation the kernel
//! cannot run stays cached in the PMD, which then serves those packets as
//! they keep coming up.

use super::table::{Install, InstallError, KernelTable};
use crate::action::l3_offset;
use crate::flow::{Field, FlowKey};
use crate::packet::{Batch, CtMeta, PacketBuf, PacketMeta, TunnelMeta, BUF_SIZE, HEADROOM, TUN_MD_SLOTS};
use crate::pmd::{Frames, Upcall, UpcallError, UpcallReply};
use crate::port::{Port, PortNo, PortStats};
use crate::DropReason;
use rvs_bpf::dp::abi::event;
use rvs_bpf::dp::EventReader;
use std::sync::{Arc, Mutex};

/// The datapath port number the upcall port sits at in its PMD (beyond any
/// switch port the kernel knows).
pub const UPCALL_PORT: PortNo = rvs_bpf::dp::abi::MAX_PORTS as PortNo;

/// Misses from the kernel, as received packets.
pub struct UpcallPort {
    reader: EventReader,
    stats: PortStats,
}

impl UpcallPort {
    /// Packets from `reader`.
    pub fn new(reader: EventReader) -> Self {
        UpcallPort {
            reader,
            stats: PortStats::default(),
        }
    }
}

/// The metadata of a packet the kernel recirculated, from its pass state:
/// the key's words 0..7 (in_port, recirc_id, tunnel, ct_*), as
/// `FlowKey::extract` fills them from a [`PacketMeta`].
pub fn pass_meta(words: &[u64; 8], depth: u32, mark: u32) -> PacketMeta {
    let mut k = FlowKey::default();
    k.w[..8].copy_from_slice(words);
    let mut md = [0u32; TUN_MD_SLOTS];
    for (i, m) in md.iter_mut().enumerate() {
        *m = k.get(Field::TunMd(i as u8)) as u32;
    }
    PacketMeta {
        in_port: k.get(Field::InPort) as u32,
        recirc_id: k.get(Field::RecircId) as u32,
        tunnel: TunnelMeta {
            tun_id: k.get(Field::TunId),
            src: k.get(Field::TunSrc) as u32,
            dst: k.get(Field::TunDst) as u32,
            flags: k.get(Field::TunFlags) as u16,
            tos: k.get(Field::TunTos) as u8,
            ttl: k.get(Field::TunTtl) as u8,
            md_present: k.get(Field::TunMdPresent) as u8,
            md,
        },
        recirc_depth: depth.min(u8::MAX as u32) as u8,
        mark,
        ct: CtMeta {
            state: k.get(Field::CtState) as u8,
            zone: k.get(Field::CtZone) as u16,
            mark: k.get(Field::CtMark) as u32,
            label: k.get(Field::CtLabel) as u32,
        },
        head_only: false,
    }
}

/// Make a header-only copy parse as a whole packet: the IP and UDP lengths
/// say what is there (the key does not hold lengths, so it is the packet's).
fn fit_lengths(d: &mut [u8]) {
    let Some((l3, ty)) = l3_offset(d) else { return };
    let rest = d.len().saturating_sub(l3);
    let (l4, proto) = match ty {
        0x0800 if rest >= 20 => {
            d[l3 + 2..l3 + 4].copy_from_slice(&(rest as u16).to_be_bytes());
            let ihl = (d[l3] & 0x0f) as usize * 4;
            (l3 + ihl, d[l3 + 9])
        }
        0x86dd if rest >= 40 => {
            d[l3 + 4..l3 + 6].copy_from_slice(&((rest - 40) as u16).to_be_bytes());
            (l3 + 40, d[l3 + 6])
        }
        _ => return,
    };
    if proto == 17 && d.len() >= l4 + 8 {
        let ulen = (d.len() - l4) as u16;
        d[l4 + 4..l4 + 6].copy_from_slice(&ulen.to_be_bytes());
    }
}

impl Port for UpcallPort {
    fn name(&self) -> &str {
        "upcall"
    }

    fn rx(&mut self, batch: &mut Batch) -> usize {
        if let Err(e) = self.reader.consume() {
            tracing::debug!(%e, "reading upcalls");
        }
        let mut n = 0;
        while !batch.is_full() {
            let Some(e) = self.reader.pop() else { break };
            let head_only = e.ev.cap < e.ev.len;
            let meta = match e.ev.ty {
                event::MISS | event::UNPARSED | event::INNER_MISS => PacketMeta {
                    in_port: e.ev.in_port,
                    mark: e.ev.mark,
                    head_only,
                    ..PacketMeta::default()
                },
                event::PASS => PacketMeta {
                    head_only,
                    ..pass_meta(&e.ev.meta, e.ev.depth, e.ev.mark)
                },
                _ => continue,
            };
            let mut tag = [0u8; 4];
            let tagged = e.ev.vlan_present != 0 && e.data.len() >= 12;
            if tagged {
                // The kernel held the outer tag in skb metadata: put it back
                // where it was on the wire.
                tag[..2].copy_from_slice(&e.ev.vlan_proto.to_ne_bytes());
                tag[2..].copy_from_slice(&e.ev.vlan_tci.to_be_bytes());
            }
            let len = e.data.len() + if tagged { 4 } else { 0 };
            if len > BUF_SIZE - HEADROOM {
                self.stats.rx_dropped += 1;
                continue;
            }
            let ok = batch.push_with(|p: &mut PacketBuf| {
                if tagged {
                    let mut f = Vec::with_capacity(len);
                    f.extend_from_slice(&e.data[..12]);
                    f.extend_from_slice(&tag);
                    f.extend_from_slice(&e.data[12..]);
                    p.set_data(&f)
                } else {
                    p.set_data(&e.data)
                }
            });
            if !ok {
                self.stats.rx_dropped += 1;
                continue;
            }
            let pkts = batch.packets_mut();
            let p = &mut pkts[pkts.len() - 1];
            p.meta = meta;
            if head_only {
                fit_lengths(p.data_mut());
            } else {
                // A VM with tx checksum offload sends partial L4 checksums,
                // fine inside the kernel but not for a frame rvs sends itself.
                crate::action::complete_l4_checksum(p);
            }
            self.stats.rx_packets += 1;
            self.stats.rx_bytes += e.ev.len as u64;
            n += 1;
        }
        self.stats.rx_dropped = self.stats.rx_dropped.max(self.reader.lost());
        n
    }

    fn tx(&mut self, batch: &mut Batch) -> usize {
        // Nothing is ever sent here (no flow names this port).
        let n = batch.len();
        self.stats.tx_dropped += n as u64;
        batch.clear();
        n
    }

    fn stats(&self) -> PortStats {
        self.stats
    }

    fn poll_fd(&self) -> Option<std::os::fd::RawFd> {
        Some(self.reader.fd())
    }

    fn sets_in_port(&self) -> bool {
        true
    }
}

/// The slow path of the eBPF datapath: `inner` translates; each cacheable
/// translation the kernel can run is installed there, and every cacheable
/// one is cached in the PMD as well (packets of a flow through `ct()` keep
/// coming up while their connections are new or closing).
pub struct OffloadUpcall<U: Upcall> {
    inner: U,
    table: Arc<Mutex<KernelTable>>,
}

impl<U: Upcall> OffloadUpcall<U> {
    /// Install `inner`'s translations into `table`.
    pub fn new(inner: U, table: Arc<Mutex<KernelTable>>) -> Self {
        OffloadUpcall { inner, table }
    }
}

/// Lock the kernel table (a thread that panicked holding it left it usable).
pub fn lock_table(t: &Mutex<KernelTable>) -> std::sync::MutexGuard<'_, KernelTable> {
    t.lock().unwrap_or_else(|e| e.into_inner())
}

impl<U: Upcall> Upcall for OffloadUpcall<U> {
    fn upcall(&mut self, key: &FlowKey, pkt: &PacketBuf) -> Result<UpcallReply, UpcallError> {
        let mut r = self.inner.upcall(key, pkt)?;
        if !r.cacheable {
            return Ok(r);
        }
        let mut mask = r.mask;
        mask.set_exact(Field::InPort);
        mask.set_exact(Field::RecircId);
        let mut t = lock_table(&self.table);
        let at = r.seen.unwrap_or_else(|| t.seen_now());
        let ins = Install {
            key,
            mask: &mask,
            actions: &r.actions,
            deps: &r.deps,
            tag: r.tag,
            at,
        };
        match t.install(&ins) {
            // It stays cached here too: what comes up again (packets of
            // connections the kernel does not answer for yet, a packet that
            // raced the install) is served without translating again; idle
            // here, it expires.
            Ok(()) => {}
            Err(InstallError::Stale) => r.cacheable = false,
            Err(InstallError::Bpf(e)) => tracing::warn!(%e, "installing a kernel flow"),
            Err(e) => tracing::debug!(%e, "flow stays in userspace"),
        }
        Ok(r)
    }

    fn userspace(
        &mut self,
        key: &FlowKey,
        pkt: &PacketBuf,
        cookie: u32,
        out: &mut Frames,
    ) -> Result<(), DropReason> {
        self.inner.userspace(key, pkt, cookie, out)
    }

    fn end_batch(&mut self, drops: &mut crate::drop::DropCounters) {
        self.inner.end_batch(drops)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{tcp4, udp4, with_vlan, IP_A, IP_B, MAC_A, MAC_B};

    #[test]
    fn a_pass_state_gives_back_the_metadata_that_made_it() {
        let f = udp4(MAC_A, MAC_B, IP_A, IP_B, 7, 8, 100);
        let mut meta = PacketMeta {
            in_port: 3,
            recirc_id: 77,
            recirc_depth: 2,
            mark: 9,
            ..PacketMeta::default()
        };
        meta.tunnel.tun_id = 5001;
        meta.tunnel.src = 0xc612_0002;
        meta.tunnel.dst = 0xc612_0001;
        meta.tunnel.flags = 5;
        meta.tunnel.tos = 4;
        meta.tunnel.ttl = 63;
        meta.tunnel.md_present = 0b10_0001;
        meta.tunnel.md = [1, 0, 0, 0, 0, 0xdead_beef];
        meta.ct = CtMeta {
            state: 0x2a,
            zone: 513,
            mark: 0x8000_0001,
            label: 0xffff_0000,
        };
        for m in [
            meta,
            PacketMeta {
                tunnel: TunnelMeta::default(),
                ..meta
            },
            PacketMeta {
                ct: CtMeta::default(),
                ..meta
            },
        ] {
            let (k, _) = FlowKey::extract(&f, &m).unwrap();
            let words: [u64; 8] = k.w[..8].try_into().unwrap();
            assert_eq!(pass_meta(&words, 2, 9), m);
        }
    }

    #[test]
    fn header_only_copies_parse_to_the_packets_key() {
        for f in [
            udp4(MAC_A, MAC_B, IP_A, IP_B, 7, 8, 3000),
            tcp4(1, 2, true, 3000),
            with_vlan(&udp4(MAC_A, MAC_B, IP_A, IP_B, 7, 8, 3000), 0x8100, 5),
        ] {
            let (whole, _) = FlowKey::extract(&f, &PacketMeta::default()).unwrap();
            let mut head = f[..256].to_vec();
            assert!(
                FlowKey::extract(&head, &PacketMeta::default()).is_err(),
                "cut: lengths lie"
            );
            fit_lengths(&mut head);
            let (k, _) = FlowKey::extract(&head, &PacketMeta::default()).unwrap();
            assert_eq!(k, whole);
        }
    }
}
