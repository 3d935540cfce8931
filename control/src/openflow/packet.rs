//! PACKET_IN (a packet for the controller), PACKET_OUT (a packet from it,
//! with actions) and PORT_MOD (a port's configuration), OpenFlow 1.3's wire
//! forms.

use super::actions::{decode_actions, encode_actions, Ctx};
use super::error::OfpError;
use super::oxm::{decode_match, encode_match};
use super::wire::{port_from13, port_to13, Put, Reader, HEADER_LEN};
use crate::ofp::{Match, OfAction};

/// A PACKET_IN as sent.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PacketInMsg {
    /// Always NO_BUFFER from rvs (it buffers nothing).
    pub buffer_id: u32,
    /// The packet's whole length.
    pub total_len: u16,
    /// OFPR_* (OpenFlow 1.3's: no_match 0, action 1, invalid_ttl 2).
    pub reason: u8,
    /// Table of the rule that sent it.
    pub table: u8,
    /// That rule's cookie (all ones: none).
    pub cookie: u64,
    /// in_port and the other pipeline fields.
    pub matches: Match,
    /// The packet (or its start).
    pub data: Vec<u8>,
}

/// A PACKET_OUT as sent.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PacketOutMsg {
    /// A buffered packet (rvs has none: only NO_BUFFER is served).
    pub buffer_id: u32,
    /// The port the packet counts as coming from (rvs's numbering:
    /// CONTROLLER 0xfffd, LOCAL 0xfffe, ANY 0xffff).
    pub in_port: u32,
    /// What to do with it.
    pub actions: Vec<OfAction>,
    /// The frame.
    pub data: Vec<u8>,
}

/// A PORT_MOD as sent.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PortModMsg {
    /// The port (rvs's numbering: LOCAL 0xfffe).
    pub port_no: u32,
    /// Its hardware address, as the controller knows it (must match).
    pub hw_addr: [u8; 6],
    /// OFPPC_* bits to set...
    pub config: u32,
    /// ...among these.
    pub mask: u32,
    /// OFPPF_* features to advertise (0: unchanged).
    pub advertise: u32,
}

impl PortModMsg {
    /// Decode the body (after the common header).
    pub fn decode(r: &mut Reader<'_>) -> Result<PortModMsg, OfpError> {
        if r.len() != 32 {
            return Err(OfpError::BAD_REQUEST_LEN);
        }
        let port_no = port_from13(r.u32()?);
        r.skip(4)?;
        let hw_addr = r.array::<6>()?;
        r.skip(2)?;
        let config = r.u32()?;
        let mask = r.u32()?;
        let advertise = r.u32()?;
        r.skip(4)?;
        Ok(PortModMsg {
            port_no,
            hw_addr,
            config,
            mask,
            advertise,
        })
    }

    /// Append the body to `b`.
    pub fn encode(&self, b: &mut Vec<u8>) {
        b.put_u32(port_to13(self.port_no));
        b.put_zeros(4);
        b.extend_from_slice(&self.hw_addr);
        b.put_zeros(2);
        b.put_u32(self.config);
        b.put_u32(self.mask);
        b.put_u32(self.advertise);
        b.put_zeros(4);
    }
}

/// Largest message (its length is 16 bits).
const MAX_MSG: usize = u16::MAX as usize;

impl PacketInMsg {
    /// Decode the body (after the common header).
    pub fn decode(r: &mut Reader<'_>) -> Result<PacketInMsg, OfpError> {
        let buffer_id = r.u32()?;
        let total_len = r.u16()?;
        let reason = r.u8()?;
        let table = r.u8()?;
        let cookie = r.u64()?;
        let matches = decode_match(r)?;
        r.skip(2)?;
        Ok(PacketInMsg {
            buffer_id,
            total_len,
            reason,
            table,
            cookie,
            matches,
            data: r.rest().to_vec(),
        })
    }

    /// Append the body to `b`, which holds the message from its header on
    /// (the packet is cut so the message stays within 64 KiB).
    pub fn encode(&self, b: &mut Vec<u8>, at: usize) -> Result<(), OfpError> {
        b.put_u32(self.buffer_id);
        b.put_u16(self.total_len);
        b.put_u8(self.reason);
        b.put_u8(self.table);
        b.put_u64(self.cookie);
        encode_match(b, &self.matches)?;
        b.put_zeros(2);
        let room = MAX_MSG.saturating_sub(b.len() - at);
        b.extend_from_slice(&self.data[..self.data.len().min(room)]);
        Ok(())
    }
}

impl PacketOutMsg {
    /// Decode the body (after the common header).
    pub fn decode(r: &mut Reader<'_>) -> Result<PacketOutMsg, OfpError> {
        let buffer_id = r.u32()?;
        let in_port = port_from13(r.u32()?);
        let actions_len = r.u16()? as usize;
        r.skip(6)?;
        let mut acts = r.sub(actions_len)?;
        let actions = decode_actions(&mut acts)?;
        Ok(PacketOutMsg {
            buffer_id,
            in_port,
            actions,
            data: r.rest().to_vec(),
        })
    }

    /// Append the body to `b`.
    pub fn encode(&self, b: &mut Vec<u8>) -> Result<(), OfpError> {
        b.put_u32(self.buffer_id);
        b.put_u32(port_to13(self.in_port));
        let len_at = b.len();
        b.put_u16(0);
        b.put_zeros(6);
        let start = b.len();
        encode_actions(b, &self.actions, &Ctx::of(&Match::default()))?;
        let n = u16::try_from(b.len() - start).map_err(|_| OfpError::BAD_REQUEST_LEN)?;
        b[len_at..len_at + 2].copy_from_slice(&n.to_be_bytes());
        b.extend_from_slice(&self.data);
        if b.len() - len_at + 8 + HEADER_LEN > MAX_MSG {
            return Err(OfpError::BAD_REQUEST_LEN);
        }
        Ok(())
    }
}
