//! OpenFlow 1.3 instructions to and from a rule's action list. rvs keeps
//! one list, as ovs-ofctl writes it (`actions=...,write_metadata:..,
//! goto_table:N`); on the wire the plain actions are APPLY_ACTIONS and the
//! rest take the instruction order the spec fixes.

use super::actions::{decode_actions, encode_actions, Ctx};
use super::error::OfpError;
use super::wire::{Put, Reader};
use crate::ofp::OfAction;

const GOTO_TABLE: u16 = 1;
const WRITE_METADATA: u16 = 2;
const WRITE_ACTIONS: u16 = 3;
const APPLY_ACTIONS: u16 = 4;
const CLEAR_ACTIONS: u16 = 5;
const METER: u16 = 6;

/// Decode the instructions (the rest of `r`) of a rule in table `table`.
pub fn decode_instructions(r: &mut Reader<'_>, table: u8) -> Result<Vec<OfAction>, OfpError> {
    let (mut apply, mut clear, mut write, mut meta, mut goto) = (None, false, None, None, None);
    let mut seen = 0u32;
    while !r.is_empty() {
        let typ = r.u16().map_err(|_| OfpError::BAD_INST_LEN)?;
        let len = r.u16().map_err(|_| OfpError::BAD_INST_LEN)? as usize;
        if len < 8 || !len.is_multiple_of(8) {
            return Err(OfpError::BAD_INST_LEN);
        }
        let mut body = r.sub(len - 4).map_err(|_| OfpError::BAD_INST_LEN)?;
        let mut body = Reader::new(body.rest(), OfpError::BAD_INST_LEN);
        if (1..=6).contains(&typ) {
            if seen & (1 << typ) != 0 {
                // An instruction type at most once per rule.
                return Err(OfpError::UNSUP_INST);
            }
            seen |= 1 << typ;
        }
        match typ {
            GOTO_TABLE => {
                let t = body.u8()?;
                if t <= table || t == 0xff {
                    return Err(OfpError::BAD_INST_TABLE_ID);
                }
                goto = Some(t);
            }
            WRITE_METADATA => {
                body.skip(4)?;
                meta = Some((body.u64()?, body.u64()?));
            }
            WRITE_ACTIONS | APPLY_ACTIONS => {
                body.skip(4)?;
                let acts = decode_actions(&mut body)?;
                if typ == APPLY_ACTIONS {
                    apply = Some(acts);
                } else {
                    write = Some(acts);
                }
            }
            CLEAR_ACTIONS => clear = true,
            METER => return Err(OfpError::UNSUP_INST),
            0xffff => return Err(OfpError::BAD_INST_EXPERIMENTER),
            _ => return Err(OfpError::UNKNOWN_INST),
        }
    }
    let mut out = apply.unwrap_or_default();
    if clear {
        out.push(OfAction::ClearActions);
    }
    if let Some(w) = write {
        out.push(OfAction::WriteActions(w));
    }
    if let Some((value, mask)) = meta {
        out.push(OfAction::WriteMetadata { value, mask });
    }
    if let Some(t) = goto {
        out.push(OfAction::GotoTable(t));
    }
    if out.is_empty() {
        // No instructions: drop, spelt as the flow parser spells it.
        out.push(OfAction::Drop);
    }
    Ok(out)
}

/// Encode a rule's action list as instructions.
pub fn encode_instructions(buf: &mut Vec<u8>, actions: &[OfAction], ctx: &Ctx) -> Result<(), OfpError> {
    let plain: Vec<OfAction> = actions
        .iter()
        .filter(|a| {
            !matches!(
                a,
                OfAction::ClearActions
                    | OfAction::WriteActions(_)
                    | OfAction::WriteMetadata { .. }
                    | OfAction::GotoTable(_)
            )
        })
        .cloned()
        .collect();
    if !plain.is_empty() {
        action_list(buf, APPLY_ACTIONS, &plain, ctx)?;
    }
    if actions.contains(&OfAction::ClearActions) {
        buf.put_u16(CLEAR_ACTIONS);
        buf.put_u16(8);
        buf.put_zeros(4);
    }
    for a in actions {
        if let OfAction::WriteActions(w) = a {
            action_list(buf, WRITE_ACTIONS, w, ctx)?;
        }
    }
    for a in actions {
        if let OfAction::WriteMetadata { value, mask } = a {
            buf.put_u16(WRITE_METADATA);
            buf.put_u16(24);
            buf.put_zeros(4);
            buf.put_u64(*value);
            buf.put_u64(*mask);
        }
    }
    for a in actions {
        if let OfAction::GotoTable(t) = a {
            buf.put_u16(GOTO_TABLE);
            buf.put_u16(8);
            buf.put_u8(*t);
            buf.put_zeros(3);
        }
    }
    Ok(())
}

fn action_list(buf: &mut Vec<u8>, typ: u16, acts: &[OfAction], ctx: &Ctx) -> Result<(), OfpError> {
    let start = buf.len();
    buf.put_u16(typ);
    buf.put_u16(0);
    buf.put_zeros(4);
    encode_actions(buf, acts, ctx)?;
    let len = buf.len() - start;
    buf.set_u16(start + 2, len as u16);
    Ok(())
}
